import Foundation

/// oneDNN's OpenMP runtime (libgomp) keeps its worker threads spinning after each parallel region
/// (300,000 rounds by default) before they sleep. tao's own parallel loops (Winograd's transforms,
/// the optimizer, decoding and augmenting a batch) run on other threads in between, so with the
/// default they share the cores with threads that only spin: a DetectNet_v2 demo epoch took 69–88 s
/// (mean 78 s over 6 runs) on the 2-core AVX2 EPYC, 66–75 s (mean 71 s over 7) with
/// `GOMP_SPINCOUNT=20000`, while oneDNN-only benchmarks (ResNet-18 training, ResNet-50 and
/// DetectNet_v2 inference) stayed within their noise. libgomp reads
/// the variable once, when it loads, so tao sets it and runs itself again, once; a value the user set
/// (or `OMP_WAIT_POLICY`) is left alone.
enum OpenMPSpin {
    static let rounds = "20000"

    static func reexecIfNeeded() {
        shareCoresBetweenLocalRanks()
        guard getenv("GOMP_SPINCOUNT") == nil, getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("GOMP_SPINCOUNT", rounds, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only when it failed: go on with libgomp's default.
    }

    /// Several ranks of one mpirun on this machine (a user's own `mpirun -np 4 ...`; `--gpus` sets
    /// these itself): each takes its share of the cores, for oneDNN's OpenMP threads (read when
    /// libgomp loads, hence before the exec above) and tao's own parallel loops, unless the user
    /// set them.
    static func shareCoresBetweenLocalRanks() {
        guard let local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap({ Int(String(cString: $0)) }), local > 1 else { return }
        let threads = String(max(1, ProcessInfo.processInfo.activeProcessorCount / local))
        if getenv("OMP_NUM_THREADS") == nil { setenv("OMP_NUM_THREADS", threads, 1) }
        if getenv("TAO_THREADS") == nil { setenv("TAO_THREADS", threads, 1) }
    }
}
