import ArgumentParser
import Foundation
import TaoGraph
import TaoTasks

/// What sets TAO's three YOLO commands apart for the subtasks they share so far.
protocol YOLOFlavor {
    static var commandName: String { get }
    static var title: String { get }
    /// How many anchor groups the spec takes (small / mid / big, or mid / big for the tiny model).
    static var scales: Int { get }
}
enum YOLOv3: YOLOFlavor { static let commandName = "yolo_v3", title = "YOLOv3", scales = 3 }
enum YOLOv4: YOLOFlavor { static let commandName = "yolo_v4", title = "YOLOv4", scales = 3 }
enum YOLOv4Tiny: YOLOFlavor { static let commandName = "yolo_v4_tiny", title = "YOLOv4-tiny", scales = 2 }

/// `tao yolo_v3 | yolo_v4 | yolo_v4_tiny …` (for now `kmeans`; training comes with the task).
struct YOLOCommand<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: Flavor.commandName, abstract: "TAO's \(Flavor.title) object detector (so far: kmeans anchors).",
                             subcommands: [KMeansCommand<Flavor>.self])
    }
}

/// `tao yolo_v4 kmeans -l LABELS -i IMAGES -x W -y H -n 9`, with TAO's flags.
struct KMeansCommand<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "kmeans",
            abstract: "Anchor shapes for \(Flavor.commandName) fitted to your boxes, as TAO's kmeans fits them.",
            discussion: """
            Reads the KITTI label folders (-l) with the image folders (-i) they pair with, in order, takes each box's \
            width and height relative to its image, and clusters them by k-medians with 1 − IoU as the distance. Prints \
            the centers, smallest first, in the pixels of a -x by -y network input, as TAO prints them, and as the \
            spec's anchor-shape lines.
            """)
    }
    @Option(name: [.customShort("l"), .customLong("label_folders")], parsing: .upToNextOption, help: "KITTI label folders.")
    var labelFolders: [String]
    @Option(name: [.customShort("i"), .customLong("image_folders")], parsing: .upToNextOption, help: "Image folders, one for each label folder, in the same order.")
    var imageFolders: [String]
    @Option(name: [.customShort("x"), .customLong("size_x")], help: "Network input width.") var sizeX: Int
    @Option(name: [.customShort("y"), .customLong("size_y")], help: "Network input height.") var sizeY: Int
    @Option(name: [.customShort("n"), .customLong("num_clusters")], help: "Number of anchors.") var clusters = Flavor.scales * 3
    @Option(name: .customLong("max_steps"), help: "Rounds of k-medians at most.") var maxSteps = 10_000
    @Option(name: .customLong("min_x"), help: "Leave out boxes not wider than this (network input pixels).") var minX = 0
    @Option(name: .customLong("min_y"), help: "Leave out boxes not taller than this (network input pixels).") var minY = 0
    @Option(name: .customLong("seed"), help: "Seed of the starting centers (TAO's are unseeded).") var seed: UInt64 = 42
    @Option(name: [.customShort("r"), .customLong("results_dir")], help: "Also write the anchors to RESULTS_DIR/anchors.txt.") var resultsDir: String?
    @OptionGroup var tao: TaoFlags

    func validate() throws {
        guard sizeX > 0, sizeY > 0 else { throw ValidationError("-x and -y are the network's input size in pixels, above 0: got \(sizeX) and \(sizeY)") }
        guard clusters > 0 else { throw ValidationError("-n must be at least 1, got \(clusters)") }
    }

    func run() throws {
        try tao.apply()
        let boxes = try AnchorKMeans.boxes(labelFolders: labelFolders, imageFolders: imageFolders,
                                           minWidth: Double(minX) / Double(sizeX), minHeight: Double(minY) / Double(sizeY))
        let (centers, steps) = try AnchorKMeans.fit(boxes, clusters: clusters, seed: seed, maxSteps: maxSteps)
        let lines = ["\(boxes.count) boxes, \(clusters) clusters, \(steps) rounds"] + AnchorKMeans.report(centers, width: sizeX, height: sizeY, scales: Flavor.scales)
        for l in lines { print(l) }
        if let dir = resultsDir {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: "\(dir)/anchors.txt")
        }
    }
}
