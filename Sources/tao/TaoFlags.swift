import ArgumentParser
import Foundation
import TaoTasks

/// The flags TAO 3.0's commands take on every task, accepted as TAO's notebooks type them.
struct TaoFlags: ParsableArguments {
    @Option(name: [.customShort("k"), .long],
            help: "TAO's model encryption key. Accepted so that TAO command lines run unchanged; tao-swift's files are not encrypted, so it is never needed.")
    var key: String?
    @Option(name: .customLong("gpus"), help: "TAO's GPU count. tao-swift runs on this machine's CPU cores in one process, whatever the value.")
    var gpus = 1
    @Option(name: .customLong("gpu_index"), parsing: .upToNextOption, help: "TAO's GPU indices; accepted, unused on the CPU.")
    var gpuIndex: [Int] = []
    @Option(name: .customLong("log_file"), help: "Also append every log line to this file.")
    var logFile: String?
    @Flag(name: .customLong("use_amp"), help: "TAO's mixed precision. Not available yet: the run is in fp32, and says so.")
    var useAmp = false
    @Flag(name: [.customShort("v"), .long], help: "TAO's verbose logging; tao-swift always logs the same lines.")
    var verbose = false

    func validate() throws {
        guard gpus >= 1 else { throw ValidationError("--gpus must be at least 1, got \(gpus)") }
        guard gpuIndex.allSatisfy({ $0 >= 0 }) else { throw ValidationError("--gpu_index takes indices ≥ 0") }
    }

    /// Opens the --log_file and says once what the flags that do nothing here mean.
    func apply(quiet: Bool = false) throws {
        if let logFile { try LogFile.mirror(to: logFile) }
        var notes: [String] = []
        if key != nil { notes.append("note: -k/--key is not needed: tao-swift's model files are not encrypted") }
        if gpus > 1 { notes.append("note: --gpus \(gpus): tao-swift runs in one process on this machine's CPU cores; training on several processes is not available yet") }
        if !gpuIndex.isEmpty { notes.append("note: --gpu_index is unused: tao-swift runs on the CPU") }
        if useAmp { notes.append("note: --use_amp: mixed precision is not available yet; this run is in fp32") }
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
}
