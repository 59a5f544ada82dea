import CMPI
import Foundation
import TaoTrain

/// The ranks of an `mpirun` (Open MPI): allreduce and broadcast through MPI's collectives, each
/// with a deadline so that a rank that died or hangs stops the run on every rank with an error
/// instead of a wait without end.
///
/// Waiting ranks poll the request (spinning for the first 20 ms, then every millisecond) rather
/// than block in MPI, which would spin a core for as long as rank 0 validates and writes its
/// checkpoint; the cores go to the ranks that work.
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int
    public let host: String
    /// Seconds a collective may wait for the other ranks (TAO_COLLECTIVE_TIMEOUT_S; 600 by default):
    /// rank 0's validation and checkpoint at an epoch's end count against it.
    public var timeout: TimeInterval
    /// MPI_THREAD_SERIALIZED or better: any thread may call, one at a time.
    public let callableFromAnyThread: Bool
    private var finalized = false

    /// True where this process was started by mpirun (Open MPI's environment is set).
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Joins the job this process belongs to (call once, from the thread that will train).
    public init() throws {
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided)
        guard rc == MPI_SUCCESS else { throw CollectiveError("MPI_Init failed (\(Self.message(rc)))") }
        callableFromAnyThread = provided >= Int32(MPI_THREAD_SERIALIZED)
        MPI_Comm_set_errhandler(tao_mpi_comm_world(), tao_mpi_errors_return())
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(tao_mpi_comm_world(), &r)
        MPI_Comm_size(tao_mpi_comm_world(), &n)
        (rank, size) = (Int(r), Int(n))
        host = ProcessInfo.processInfo.hostName
        timeout = ProcessInfo.processInfo.environment["TAO_COLLECTIVE_TIMEOUT_S"].flatMap(TimeInterval.init) ?? 600
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        guard size > 1, count > 0 else { return }
        var request = MPI_Request(bitPattern: 0)
        let rc = MPI_Iallreduce(tao_mpi_in_place(), buffer, Int32(count), tao_mpi_float(), tao_mpi_sum(), tao_mpi_comm_world(), &request)
        try wait(rc, &request, "allreduce of \(count) floats")
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        guard size > 1, bytes > 0 else { return }
        var request = MPI_Request(bitPattern: 0)
        let rc = MPI_Ibcast(buffer, Int32(bytes), tao_mpi_byte(), Int32(root), tao_mpi_comm_world(), &request)
        try wait(rc, &request, "broadcast of \(bytes) bytes from rank \(root)")
    }

    private func wait(_ started: Int32, _ request: inout MPI_Request?, _ what: String) throws {
        guard started == MPI_SUCCESS else { throw failure(what, Self.message(started)) }
        let t0 = Date()
        var done: Int32 = 0
        while true {
            let rc = MPI_Test(&request, &done, tao_mpi_status_ignore())
            guard rc == MPI_SUCCESS else { throw failure(what, Self.message(rc)) }
            if done != 0 { return }
            let waited = Date().timeIntervalSince(t0)
            if waited > timeout {
                throw failure(what, "no answer from the other ranks in \(Int(timeout)) s (a rank hung or died; TAO_COLLECTIVE_TIMEOUT_S sets the limit)")
            }
            if waited > 0.02 { usleep(1000) } else { sched_yield() }
        }
    }

    private func failure(_ what: String, _ why: String) -> CollectiveError {
        CollectiveError("rank \(rank) of \(size) on \(host): \(what) failed: \(why)")
    }

    static func message(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Leaves the job normally (every rank, at the end).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// Says what failed on this rank (naming it and its host), then stops every rank of the job.
    public func abort(after error: Error) -> Never {
        let text = error is CollectiveError ? "\(error)" : "rank \(rank) of \(size) on \(host): \(error)"
        FileHandle.standardError.write(Data("error: \(text)\n".utf8))
        abort()
    }

    /// Stops every rank of the job at once, after an error on this one.
    public func abort(code: Int32 = 1) -> Never {
        MPI_Abort(tao_mpi_comm_world(), code)
        exit(code)
    }
}
