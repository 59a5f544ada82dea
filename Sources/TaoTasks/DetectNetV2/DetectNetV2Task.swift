import Foundation
import TaoReport
import TaoData
import TaoGraph
import TaoMetrics
import TaoModels
import TaoRuntime
import TaoSpec
import TaoTensor
import TaoTrain

/// `tao detectnet_v2 train`: DetectNet_v2's hooks on the shared training run — TFRecord frames
/// with TAO's augmentation, the rasterized coverage and box targets, TAO's cost, and mAP on the
/// validation fold.
public struct DetectNetV2Task {
    public let config: DetectNetV2Config
    public let specPath: String

    public init(specPath: String) throws {
        config = try DetectNetV2Config(path: specPath)
        self.specPath = specPath
    }

    public var modelName: String { "\(config.arch)\(config.numLayers)" }
    var grid: DetectNetGrid {
        var g = DetectNetGrid(inputWidth: config.inputShape[2], inputHeight: config.inputShape[1])
        g.scale = Double(config.boxScale); g.offset = Double(config.boxOffset)
        return g
    }

    var rasterizer: [RasterizerClassConfig] {
        config.classes.map { c in
            var r = RasterizerClassConfig()
            (r.centerX, r.centerY, r.radiusX, r.radiusY, r.minRadius) = (Double(c.covCenterX), Double(c.covCenterY), Double(c.covRadiusX), Double(c.covRadiusY), Double(c.minRadius))
            return r
        }
    }

    var loss: DetectNetLoss {
        DetectNetLoss(classes: config.classes.map { c in
            var w = DetectNetLoss.ClassWeights()
            (w.classWeight, w.foregroundWeight, w.coverageWeight, w.boxWeight) = (Double(c.classWeight), Double(c.foregroundWeight), Double(c.coverageWeight), Double(c.boxWeight))
            return w
        })
    }

    /// The clustering of each class's grid predictions (`postprocessing_config`).
    public var clustering: [ClusteringConfig] {
        config.classes.map { c in
            ClusteringConfig(coverageThreshold: c.coverageThreshold, eps: c.dbscanEps, minSamples: c.dbscanMinSamples, minimumBoxHeight: c.minimumBoxHeight,
                             confidence: c.dbscanConfidence, nms: c.nms, nmsIoU: c.nmsIoU, nmsConfidence: c.nmsConfidence)
        }
    }

    /// An image resized to the network's canvas, as the network takes it (channels first, 0…1).
    static func canvasInput(_ img: Image, width: Int, height: Int) -> [Float] {
        let c = img.channels, plane = width * height
        let small = DetectionAugmentation(width: width, height: height, channels: c)
            .warp(img, Affine.scaling(Double(width) / Double(img.width), Double(height) / Double(img.height)))
        var x = [Float](repeating: 0, count: c * plane)
        for ch in 0..<c { for i in 0..<plane { x[ch * plane + i] = Float(small.pixels[i * c + ch]) / 255 } }
        return x
    }

    var augmentation: DetectionAugmentation {
        let c = config
        var a = DetectionAugmentation(width: c.inputShape[2], height: c.inputShape[1], channels: c.inputShape[0])
        a.crop = c.crop
        (a.hflip, a.vflip, a.zoomMin, a.zoomMax) = (Double(c.hflip), Double(c.vflip), Double(c.zoomMin), Double(c.zoomMax))
        (a.translateX, a.translateY, a.rotateMax, a.rotateProbability) = (Double(c.translateX), Double(c.translateY), Double(c.rotateMax), Double(c.rotateProbability))
        (a.hueRotation, a.saturationShift, a.contrastScale, a.contrastCenter, a.colorShift) =
            (Double(c.hueRotation), Double(c.saturationShift), Double(c.contrastScale), Double(c.contrastCenter), Double(c.colorShift))
        (a.minBoxWidth, a.minBoxHeight) = (Double(c.minBoxWidth), Double(c.minBoxHeight))
        return a
    }

    /// Detections per image and class from the two outputs of a batch: every cell whose coverage is
    /// above the class's threshold proposes its decoded box, and the proposals are clustered.
    public static func detections(coverage: UnsafePointer<Float>, boxes: UnsafePointer<Float>, batch: Int,
                                  grid g: DetectNetGrid, clustering clusters: [ClusteringConfig]) -> [[[ScoredBox]]] {
        let (h, w, n) = (g.height, g.width, clusters.count), cells = g.height * g.width
        return (0..<batch).map { img in
            (0..<n).map { c in
                var proposals: [ScoredBox] = []
                for i in 0..<h {
                    for j in 0..<w {
                        let cov = Double(coverage[(img * n + c) * cells + i * w + j])
                        guard cov > clusters[c].coverageThreshold else { continue }
                        let v = (0..<4).map { Double(boxes[((img * 4 * n) + 4 * c + $0) * cells + i * w + j]) }
                        proposals.append(ScoredBox(g.decode(v, row: i, column: j), score: cov))
                    }
                }
                return BoxClustering.cluster(proposals, clusters[c])
            }
        }
    }

    /// The detections of a batch with this spec's grid and postprocessing_config.
    public func detections(coverage: UnsafePointer<Float>, boxes: UnsafePointer<Float>, batch: Int) -> [[[ScoredBox]]] {
        Self.detections(coverage: coverage, boxes: boxes, batch: batch, grid: grid, clustering: clustering)
    }
}

extension DetectNetV2Task: TrainableTask {
    public var settings: TrainingSettings {
        let c = config
        let reg = c.regularizer.map { Regularizer($0.kind == "L1" ? .l1 : .l2, weight: $0.weight, scope: [.convWeight]) }
        var s = TrainingSettings(task: "detectnet_v2", modelName: modelName, epochs: c.epochs, batchSize: c.batchSize, seed: c.seed,
                                inputShape: c.inputShape, pretrainedModelPath: c.pretrainedModel,
                                schedule: .softStartAnnealing(min: c.learningRate.min, max: c.learningRate.max, softStart: c.learningRate.softStart,
                                                              annealing: c.learningRate.annealing),
                                regularizer: reg)
        s.notes = c.notes
        return s
    }


    public func makeOptimizer() -> (any Optimizer, decay: Float) {
        (Adam(beta1: config.adam.beta1, beta2: config.adam.beta2, epsilon: config.adam.epsilon), 0)
    }

    public func openData() throws -> any TrainingData { try DetectionData(self) }

    public func buildModel(classes: [String]) throws -> Graph {
        var r = ResNetConfig(depth: config.numLayers, classes: 1, inputShape: Shape(config.inputShape), stemMaxPool: false)
        r.useBatchNorm = config.useBatchNorm; r.allProjections = config.allProjections
        return try DetectNetV2.build(DetectNetV2ModelConfig(backbone: r, classes: classes.count))
    }

    public func readModel(_ path: String) throws -> Checkpoint {
        guard !path.lowercased().hasSuffix(".onnx") else {
            throw TaskError("\(path): a DetectNet_v2 backbone from an ONNX file is not available yet; pretrain with tao classification and name its .tao file")
        }
        return try Checkpoint.read(from: path)
    }

    public func adapt(_ graph: Graph, classes: [String], source: String, card: ModelCard) throws -> Graph {
        guard card.task == "detectnet_v2", graph.outputs.count == 2, graph.shape(of: graph.outputs[0])[0] == classes.count else {
            throw TaskError("\(source) is a \(card.task) model of \(card.classes.count) classes; retrain a pruned DetectNet_v2 model on the classes it was trained for")
        }
        return graph
    }

    public func headParameters(_ graph: Graph) -> [String] {
        graph.parameters.map(\.name).filter { n in DetectNetV2.headLayers.contains { n.hasPrefix($0 + ".") } }
    }

    public func frozen(_ g: Graph) -> (params: Set<String>, batchNorms: Set<String>) {
        frozenLayers(g, prefixes: config.freezeBlocks.flatMap { $0 == 0 ? ["conv1.", "bn1."] : ["layer\($0)."] }, freezeBN: config.freezeBN)
    }

    public func card(classes: [String], epoch: Int) -> ModelCard {
        ModelCard(task: "detectnet_v2", arch: modelName, classes: classes, inputShape: config.inputShape, preprocessMode: "unit", epoch: epoch,
                  decoding: .detectNetV2(stride: grid.stride, scale: config.boxScale, offset: config.boxOffset))
    }

    public func makeValidator(graph: Graph, store: ParameterStore, data: any TrainingData) throws -> any Validator {
        let d = data as! DetectionData
        return DetectNetValidator(task: self, frames: d.val, runner: try ModelRunner(graph: graph, store: store, batch: min(config.batchSize, max(d.val.count, 1))))
    }

    public func describe(train: [(String, Double)], val: [(String, Double)]) -> String {
        (train + val).filter { $0.1.isFinite }.map { k, v in k == "val_mAP" || k.hasPrefix("val_AP") ? String(format: "%@ %.2f%%", k, 100 * v) : String(format: "%@ %.4f", k, v) }.joined(separator: ", ")
    }
}

/// One image ready for the network: its pixels on the canvas and its objects in canvas pixels.
struct DetectionSample {
    var input: [Float]
    var objects: [(classIndex: Int, box: Box)]
}

/// TFRecord frames split into training and validation, loaded and augmented in batches.
final class DetectionData: TrainingData {
    let task: DetectNetV2Task
    let train: [DetectionFrame]
    let val: [DetectionFrame]
    let mapping: ClassMapping
    var order: EpochOrder
    var epoch = 0
    var coverageLoss = 0.0, steps = 0

    init(_ task: DetectNetV2Task) throws {
        let c = task.config
        self.task = task
        mapping = ClassMapping(c.classMapping, targets: c.classes.map(\.name))
        (train, val) = try task.frames()
        guard train.count >= c.batchSize else { throw TaskError("the training data has \(train.count) frames, fewer than one batch of \(c.batchSize)") }
        order = EpochOrder(samples: train.count, batchSize: c.batchSize)
    }

    var classes: [String] { task.config.classes.map(\.name) }
    var summary: String { "on \(train.count) frames (\(classes.joined(separator: ", "))), validating on \(val.count)" }
    var stepsPerEpoch: Int { order.stepsPerEpoch }
    var shard: Shard { get { order.shard } set { order.shard = newValue } }
    var epochMetrics: [(String, Double)] { [] }

    func start(epoch: Int) {
        self.epoch = epoch
        order.start(seed: task.config.seed &+ UInt64(epoch) &* 31337)
    }

    /// A frame on the canvas: decoded, augmented when `rng` is given, its boxes mapped to classes.
    static func sample(_ f: DetectionFrame, _ aug: DetectionAugmentation, mapping: ClassMapping, rng: inout SplitMix64?) throws -> DetectionSample {
        var img = try ImageCodec.decode(path: f.imagePath, channels: aug.channels)
        guard img.width == f.width, img.height == f.height else {
            throw TaskError("\(f.imagePath) is \(img.width)×\(img.height), but its TFRecord says \(f.width)×\(f.height): convert the dataset again")
        }
        var m = aug.base
        if var r = rng {
            m = aug.transform(rng: &r)
            aug.jitterColor(&img, rng: &r)
            rng = r
        }
        let canvas = aug.warp(img, m)
        let plane = aug.width * aug.height
        var input = [Float](repeating: 0, count: aug.channels * plane)
        for c in 0..<aug.channels { for i in 0..<plane { input[c * plane + i] = Float(canvas.pixels[i * aug.channels + c]) / 255 } }
        let objects: [(classIndex: Int, box: Box)] = f.objects.compactMap { o in
            guard let k = mapping.target(of: o.className),
                  let b = aug.transform(box: (Double(o.x1), Double(o.y1), Double(o.x2), Double(o.y2)), m) else { return nil }
            return (k, Box(b.x1, b.y1, b.x2, b.y2))
        }
        return DetectionSample(input: input, objects: objects)
    }

    func step(_ trainer: Trainer) throws -> (loss: Float, samples: Int)? {
        let n = task.config.batchSize
        guard let idx = order.next() else { return nil }
        let aug = task.augmentation, grid = task.grid, raster = task.rasterizer, deadzone = Double(task.config.deadzone)
        let (seed, epoch, frames, mapping) = (task.config.seed, self.epoch, train, self.mapping)
        let prepared = try parallelMap(n) { k -> (DetectionSample, DetectNetTargets) in
            var rng: SplitMix64? = SplitMix64(seed: seed &+ UInt64(epoch) &* 1_000_003 &+ UInt64(idx[k]) &* 7919)
            let s = try Self.sample(frames[idx[k]], aug, mapping: mapping, rng: &rng)
            return (s, DetectNetTargets(objects: s.objects, grid: grid, classes: raster, deadzone: deadzone))
        }
        let samples = prepared.map(\.0), t = prepared.map(\.1)
        let exec = trainer.executor
        let input = exec.inputPointer(0), per = samples[0].input.count
        for (k, s) in samples.enumerated() { s.input.withUnsafeBufferPointer { input.advanced(by: k * per).update(from: $0.baseAddress!, count: per) } }
        let cells = grid.width * grid.height
        let value = try trainer.step { ex in
            self.task.loss(coverage: ex.outputPointer(0), boxes: ex.outputPointer(1), targets: t, cells: cells,
                           coverageGradient: ex.outputGradientPointer(0), boxGradient: ex.outputGradientPointer(1))
        }
        return (value, n)
    }

    func close() {}
}

/// mAP on the validation frames, as `evaluate` computes it: clustered detections against the labels
/// on the network's canvas, each class at its minimum overlap.
struct DetectNetValidator: Validator {
    let task: DetectNetV2Task
    let frames: [DetectionFrame]
    let runner: ModelRunner
    final class Last: @unchecked Sendable { var aps: [ClassAP] = [] }
    let last = Last()

    func run(epoch: Int, last: Bool) throws -> [(String, Double)] {
        guard !frames.isEmpty else { return [] }
        // TAO's evaluation_config: from first_validation_epoch, every validation_period epochs (and the last).
        let c = task.config
        guard last || (epoch >= c.firstValidationEpoch && (epoch - c.firstValidationEpoch) % c.validationPeriod == 0) else {
            return [("val_mAP", .nan)] + c.classes.map { ("val_AP_\($0.name)", .nan) }
        }
        let aps = try task.evaluate(frames, runner, grid: task.grid)
        self.last.aps = aps
        return [("val_mAP", AveragePrecision.mean(aps))] + zip(c.classes, aps).map { ("val_AP_\($0.name)", $1.ap ?? 0) }
    }

    /// The last validation's PR curve of each class (none in an epoch without validation).
    func writeEvents(_ events: EventWriter, step: Int) throws {
        try writePRCurves(zip(task.config.classes.map(\.name), last.aps).map { ($0, $1) }, prefix: "validation", to: events, step: step)
        last.aps = []
    }

    /// Up to eight validation frames on the network's canvas (enlarged to 320 pixels) with the
    /// clustered detections (solid, class and score) and the labels (dashed), in the class colours.
    func picture() throws -> Image? {
        guard !frames.isEmpty else { return nil }
        let aug = task.augmentation, mapping = ClassMapping(task.config.classMapping, targets: task.config.classes.map(\.name))
        let n = min(8, frames.count, runner.batch), per = aug.channels * aug.width * aug.height
        let samples = try (0..<n).map { k -> DetectionSample in
            var none: SplitMix64? = nil
            return try DetectionData.sample(frames[k * frames.count / n], aug, mapping: mapping, rng: &none)
        }
        runner.load(samples.map(\.input), per: per)
        runner.forward()
        let found = DetectNetV2Task.detections(coverage: runner.outputPointer(0), boxes: runner.outputPointer(1), batch: n, grid: task.grid, clustering: task.clustering)
        let names = task.config.classes.map(\.name)
        let zoom = max(1, 320 / max(aug.width, aug.height))
        let items = samples.enumerated().map { k, s -> (image: Image, caption: String, color: RGB) in
            let plane = aug.width * aug.height
            var pixels = [UInt8](repeating: 0, count: plane * aug.channels)
            for c in 0..<aug.channels { for i in 0..<plane { pixels[i * aug.channels + c] = UInt8(max(0, min(255, (s.input[c * plane + i] * 255).rounded()))) } }
            let big = Annotator.resizeNearest(Image(width: aug.width, height: aug.height, channels: aug.channels, pixels: pixels), width: aug.width * zoom, height: aug.height * zoom)
            let z = Double(zoom)
            let truth = s.objects.map { BoxMark(x1: $0.box.x1 * z, y1: $0.box.y1 * z, x2: $0.box.x2 * z, y2: $0.box.y2 * z, label: "", color: RGB.series($0.classIndex), dashed: true) }
            var predicted: [BoxMark] = []
            for (c, boxes) in found[k].enumerated() {
                for d in boxes { predicted.append(BoxMark(x1: d.box.x1 * z, y1: d.box.y1 * z, x2: d.box.x2 * z, y2: d.box.y2 * z,
                                                          label: String(format: "%@ %.2f", names[c], d.score), color: RGB.series(c))) }
            }
            let caption = "\(predicted.count) found, \(truth.count) labelled"
            return (Annotator.draw(big, truth + predicted, lineWidth: 2), caption, RGB.text)
        }
        return Annotator.sheet(items, columns: 4, cell: max(aug.width, aug.height) * zoom)
    }
}
