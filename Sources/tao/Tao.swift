import ArgumentParser
import TaoTasks

@main
struct Tao: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tao",
        abstract: "Train, evaluate, prune and export computer-vision models on the CPU.",
        discussion: """
        Commands are shaped like NVIDIA TAO 3.0: `tao <task> <subtask> -e SPEC -r RESULTS_DIR`.
        This build provides the engine and its benchmark; tasks arrive one by one.
        """,
        subcommands: [Classification.self, DetectNetV2.self, YOLOCommand<YOLOv3>.self, YOLOCommand<YOLOv4>.self, YOLOCommand<YOLOv4Tiny>.self, UNetCommand.self, DataCommand.self, Benchmark.self]
    )

    static func main() {
        OpenMPSpin.reexecIfNeeded()
        main(nil)
    }
}
