import ArgumentParser
import Foundation
import TaoMPI
import TaoTasks
import TaoTrain

/// The flags TAO 3.0's commands take on every task, accepted as TAO's notebooks type them.
struct TaoFlags: ParsableArguments {
    @Option(name: [.customShort("k"), .long],
            help: "TAO's model encryption key. Accepted so that TAO command lines run unchanged; tao-swift's files are not encrypted, so it is never needed.")
    var key: String?
    @Option(name: .customLong("gpus"), help: "TAO's GPU count. For train: that many processes (ranks) on this machine, started with Open MPI's mpirun, averaging their gradients each step; other commands run in one process.")
    var gpus = 1
    @Option(name: .customLong("gpu_index"), parsing: .upToNextOption, help: "TAO's GPU indices; accepted, unused on the CPU.")
    var gpuIndex: [Int] = []
    @Option(name: .customLong("log_file"), help: "Also append every log line to this file.")
    var logFile: String?
    @Flag(name: .customLong("use_amp"), help: "TAO's mixed precision: for train, bf16 convolutions and matrix products with fp32 master weights (AVX512-BF16 or AMX; elsewhere fp32, with a note).")
    var useAmp = false
    @Flag(name: [.customShort("v"), .long], help: "TAO's verbose logging; tao-swift always logs the same lines.")
    var verbose = false

    func validate() throws {
        guard gpus >= 1 else { throw ValidationError("--gpus must be at least 1, got \(gpus)") }
        guard gpuIndex.allSatisfy({ $0 >= 0 }) else { throw ValidationError("--gpu_index takes indices ≥ 0") }
    }

    /// Opens the --log_file and says once what the flags that do nothing here mean.
    func apply(quiet: Bool = false, training: Bool = false) throws {
        if let logFile { try LogFile.mirror(to: logFile) }
        var notes: [String] = []
        if key != nil { notes.append("note: -k/--key is not needed: tao-swift's model files are not encrypted") }
        if gpus > 1 && !training { notes.append("note: --gpus \(gpus): this command runs in one process on this machine's CPU cores") }
        if !gpuIndex.isEmpty { notes.append("note: --gpu_index is unused: tao-swift runs on the CPU") }
        if useAmp && !training { notes.append("note: --use_amp is for train; this command runs the model as its file says (for bf16 inference, export --data_type bf16 and run the engine file it writes)") }
        for n in notes {
            if !quiet { print(n) }
            LogFile.write(n)
        }
    }
}

/// The folder a command writes into when -r is not given: the run folder of `model` (the parent of
/// its `weights/` folder) or the model's own folder.
func defaultResultsDir(forModel model: String) -> String {
    let dir = (model as NSString).deletingLastPathComponent
    if (dir as NSString).lastPathComponent == "weights" { return (dir as NSString).deletingLastPathComponent }
    return dir.isEmpty ? "." : dir
}

/// What every task's `train` takes, as TAO's train commands name it.
struct TrainOptions: ParsableArguments {
    @Option(name: [.customShort("e"), .customLong("experiment_spec_file"), .long], help: "The experiment spec file (TAO 3.0 protobuf text format).")
    var experimentSpec: String
    @Option(name: [.customShort("r"), .customLong("results_dir"), .long], help: "Folder for logs, metrics, checkpoints and reports.")
    var resultsDir: String
    @Flag(help: "Print nothing but errors (the log still goes to the results folder).") var quiet = false
    @OptionGroup var tao: TaoFlags
    @Option(name: [.customLong("init_epoch")], help: "Resume from the checkpoint of this epoch in the results folder (0: start afresh).")
    var initEpoch: Int?

    /// Runs `body` on the ranks of this training: under mpirun (a user's own, on one machine or many),
    /// as its rank; with --gpus N > 1, starts N ranks of this same command through mpirun and waits
    /// for them; otherwise in this one process.
    func train(_ body: (any Collective) throws -> Void) throws {
        if MPICollective.launchedByMPI {
            let comm = try MPICollective()
            do {
                try tao.apply(quiet: quiet || comm.rank != 0, training: true)
                if comm.rank == 0, tao.gpus > 1, tao.gpus != comm.size, !quiet {
                    print("note: --gpus \(tao.gpus), but mpirun started \(comm.size) ranks: training on \(comm.size)")
                }
                try body(comm)
            } catch {
                comm.abort(after: error)
            }
            comm.finalize()
            return
        }
        try tao.apply(quiet: quiet, training: true)
        guard tao.gpus > 1 else { return try body(SingleProcess()) }
        try RankLauncher(ranks: tao.gpus, resultsDir: resultsDir, quiet: quiet).run()
    }
}

/// `--gpus N` on one machine: this same command line N times under Open MPI's mpirun.
struct RankLauncher {
    let ranks: Int
    /// The run's results folder, named when the ranks stop with an error.
    let resultsDir: String?
    let quiet: Bool

    func run() throws {
        guard let mpirun = Self.findOnPath("mpirun") else {
            throw TaskError("--gpus \(ranks) starts \(ranks) processes with Open MPI's mpirun, which is not installed (Debian: apt install openmpi-bin libopenmpi-dev)")
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = max(1, cores / ranks)
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var args = ["-np", "\(ranks)", "--bind-to", "none", "-x", "OMP_NUM_THREADS=\(threads)", "-x", "TAO_THREADS=\(threads)"]
        if ranks > cores { args.append("--oversubscribe") }
        if getuid() == 0 { args.append("--allow-run-as-root") }
        args += [exe] + CommandLine.arguments.dropFirst()
        if !quiet { print("training on \(ranks) ranks of \(threads) thread\(threads == 1 ? "" : "s") each: \(mpirun) \(args.joined(separator: " "))") }
        fflush(nil)   // our lines before mpirun's
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TaskError("training on \(ranks) ranks stopped (mpirun exited with status \(p.terminationStatus); the lines above name the rank that failed)."
                            + (resultsDir.map { " The checkpoints in \($0)/weights are intact: run the same command again to resume." } ?? ""))
        }
    }

    static func findOnPath(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
