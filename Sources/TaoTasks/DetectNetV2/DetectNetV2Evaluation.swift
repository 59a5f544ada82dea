import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoReport
import TaoRuntime
import TaoSpec
import TaoTensor

/// The AP of every class of a DetectNet_v2 model on a set of frames, with its precision-recall curves.
public struct DetectionEvaluation: Sendable {
    public var classes: [String]
    public var perClass: [ClassAP]
    public var images: Int
    /// Mean over the classes with ground truth.
    public var mAP: Double { AveragePrecision.mean(perClass) }
}

extension DetectNetV2Task {
    /// The training and validation frames of dataset_config: the validation fold's files (TAO names
    /// them <prefix>-fold-000-of-002…) or the validation data source.
    func frames() throws -> (train: [DetectionFrame], val: [DetectionFrame]) {
        let c = config
        var folds: [(frame: DetectionFrame, fold: Int?)] = []
        for s in c.sources {
            for file in try DetectionRecords.files(matching: s.tfrecords) {
                let fold = file.range(of: "-fold-").flatMap { Int(file[$0.upperBound...].prefix(3)) }
                folds += try DetectionRecords.read([file], imageDirectory: s.images, imageExtension: c.imageExtension).map { ($0, fold) }
            }
        }
        switch c.validation {
        case .fold(let f)?:
            let val = folds.filter { $0.fold == f }.map(\.frame)
            guard !val.isEmpty else { throw TaskError("validation_fold \(f): no TFRecord file of \(c.sources.map(\.tfrecords).joined(separator: ", ")) is named -fold-\(String(format: "%03d", f))-") }
            return (folds.filter { $0.fold != f }.map(\.frame), val)
        case .source(let s)?:
            return (folds.map(\.frame), try DetectionRecords.read(try DetectionRecords.files(matching: s.tfrecords), imageDirectory: s.images, imageExtension: c.imageExtension))
        case nil:
            return (folds.map(\.frame), [])
        }
    }

    /// TAO's evaluation_box_config: a box (ground truth or detection) counts only within the class's
    /// height and width limits.
    func withinEvaluationBox(_ b: Box, classIndex: Int) -> Bool {
        guard let e = config.classes[classIndex].evaluationBox else { return true }
        let (w, h) = (b.x2 - b.x1, b.y2 - b.y1)
        return h >= Double(e.minHeight) && w >= Double(e.minWidth) && h <= Double(e.maxHeight) && w <= Double(e.maxWidth)
    }

    /// Runs `frames` (on the training canvas, unaugmented) through `runner` and matches the clustered
    /// detections to the labels as TAO's evaluator does: coordinates rounded to pixels, boxes
    /// outside evaluation_box_config left out, each class at its minimum overlap.
    func evaluate(_ frames: [DetectionFrame], _ runner: ModelRunner, grid: DetectNetGrid) throws -> [ClassAP] {
        let aug = augmentation, mapping = ClassMapping(config.classMapping, targets: config.classes.map(\.name))
        var detections: [Detection] = [], truth: [GroundTruth] = []
        let b = runner.batch, per = aug.channels * aug.width * aug.height
        func rounded(_ x: Box) -> Box { Box(x.x1.rounded(), x.y1.rounded(), x.x2.rounded(), x.y2.rounded()) }
        for start in stride(from: 0, to: frames.count, by: b) {
            let chunk = Array(frames[start..<min(start + b, frames.count)])
            let samples = try parallelMap(chunk.count) { k -> DetectionSample in
                var none: SplitMix64? = nil
                return try DetectionData.sample(chunk[k], aug, mapping: mapping, rng: &none)
            }
            runner.load(samples.map(\.input), per: per)
            for (k, s) in samples.enumerated() {
                for o in s.objects where withinEvaluationBox(rounded(o.box), classIndex: o.classIndex) {
                    truth.append(GroundTruth(image: start + k, classIndex: o.classIndex, box: rounded(o.box)))
                }
            }
            runner.forward()
            let found = Self.detections(coverage: runner.outputPointer(0), boxes: runner.outputPointer(1), batch: chunk.count, grid: grid, clustering: clustering)
            for (k, perClass) in found.enumerated() {
                for (c, boxes) in perClass.enumerated() {
                    for d in boxes where withinEvaluationBox(rounded(d.box), classIndex: c) {
                        detections.append(Detection(image: start + k, classIndex: c, box: rounded(d.box), score: d.score))
                    }
                }
            }
        }
        return AveragePrecision.evaluate(detections: detections, groundTruth: truth, classes: config.classes.count,
                                         iouThreshold: config.classes.map { Double($0.minimumOverlap) },
                                         mode: config.apMode == "integrate" ? .integrate : .sample)
    }

    /// The grid a model's card decodes with, on this spec's canvas.
    func grid(for card: ModelCard) throws -> DetectNetGrid {
        guard case let .detectNetV2(cellSize, scale, offset) = card.decoding else { throw TaskError("the model's outputs are not DetectNet_v2's coverage and boxes") }
        var g = DetectNetGrid(inputWidth: config.inputShape[2], inputHeight: config.inputShape[1], stride: cellSize)
        g.scale = Double(scale); g.offset = Double(offset)
        return g
    }

    /// Checks that a model fits this spec: its classes and input size.
    func checkModel(_ card: ModelCard, _ graph: Graph, path: String) throws {
        let names = config.classes.map(\.name)
        guard card.classes == names else {
            throw TaskError("\(path) detects \(card.classes.joined(separator: ", ")), but the spec's classes are \(names.joined(separator: ", "))")
        }
        let shape = graph.shape(of: graph.inputs[0]).dims
        guard shape == config.inputShape else { throw TaskError("\(path) takes \(shape) images; the spec's preprocessing gives \(config.inputShape)") }
    }

    /// `tao detectnet_v2 evaluate`: AP per class and mAP of a model (a checkpoint, an engine file or
    /// an exported ONNX file) on the validation frames (or the training frames), as the spec's
    /// postprocessing_config and evaluation_config say. Writes evaluation.json and plots/pr_curves.png.
    public func evaluate(modelPath: String, resultsDir: String, useTrainingSet: Bool = false, quiet: Bool = false) throws -> DetectionEvaluation {
        let (results, ck, card) = try Self.openModel(modelPath, resultsDir: resultsDir, quiet: quiet, notes: config.notes) { try checkModel($0, $1, path: modelPath) }
        let (train, val) = try frames()
        let set = useTrainingSet ? train : val
        guard !set.isEmpty else { throw TaskError("no frames to evaluate on: the spec has no validation data (validation_fold or validation_data_source); pass --use_training_set to evaluate on the training data") }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: min(config.batchSize, set.count), engine: Self.engineSettings(card))
        let t0 = Date()
        let aps = try evaluate(set, runner, grid: grid(for: card))
        let r = DetectionEvaluation(classes: card.classes, perClass: aps, images: set.count)
        try r.report(to: results, resultsDir: resultsDir, model: modelPath, card: card, engine: runner.label, data: useTrainingSet ? "training" : "validation",
                     seconds: Date().timeIntervalSince(t0), apMode: config.apMode, overlap: "per-class minimum overlap")
        try results.writeSummary()
        return r
    }
}

// MARK: - Inference

/// One detected object in an original image's pixels.
public struct DetectedObject: Sendable, Equatable {
    public var className: String
    public var box: Box
    public var score: Double
}

extension DetectNetV2Task {
    /// `tao detectnet_v2 inference -e INFERENCE_SPEC -i IMAGES -o OUT`: each image resized to the
    /// spec's input size, its detections clustered as bbox_handler_config says and mapped back to
    /// the image's own pixels; `labels/NAME.txt` holds them as KITTI lines with the score in the
    /// 16th column (kitti_dump), `images_annotated/NAME` the image with the boxes drawn.
    @discardableResult
    public static func inference(specPath: String, modelPath: String?, images: String, outputDir: String, batchSize: Int? = nil,
                                 quiet: Bool = false) throws -> [(String, [DetectedObject])] {
        let spec = try DetectNetV2InferenceConfig(path: specPath)
        let results = try Results(dir: outputDir, quiet: quiet)
        for n in spec.notes { results.log(n) }
        guard let path = modelPath ?? spec.model else { throw TaskError("no model: pass -m MODEL or set inferencer_config.tlt_config.model") }
        let (ck, card) = try loadModel(path)
        results.logImportNotes(card, path)
        guard card.classes == spec.targetClasses else {
            throw TaskError("\(path) detects \(card.classes.joined(separator: ", ")); the spec's target_classes are \(spec.targetClasses.joined(separator: ", ")) (they must be the same, in the same order)")
        }
        let shape = ck.graph.shape(of: ck.graph.inputs[0]).dims
        guard shape == [spec.channels, spec.height, spec.width] else {
            throw TaskError("\(path) takes \(shape) images; the spec says image_channels \(spec.channels), image_height \(spec.height), image_width \(spec.width)")
        }
        guard case let .detectNetV2(cellSize, scale, offset) = card.decoding else { throw TaskError("\(path): not a DetectNet_v2 model") }
        var grid = DetectNetGrid(inputWidth: spec.width, inputHeight: spec.height, stride: cellSize)
        grid.scale = Double(scale); grid.offset = Double(offset)
        let clustering = spec.targetClasses.map { name -> ClusteringConfig in
            let h = spec.handler(name)
            return ClusteringConfig(coverageThreshold: h.coverageThreshold, eps: h.dbscanEps, minSamples: h.dbscanMinSamples, minimumBoxHeight: h.minimumBoxHeight,
                                    confidence: h.dbscanConfidence, nms: h.nms, nmsIoU: h.nmsIoU, nmsConfidence: h.nmsConfidence)
        }
        let files = try imageFiles(under: images)
        guard !files.isEmpty else { throw TaskError("\(images): no .jpg, .jpeg or .png images found") }
        let keep = Set(spec.postprocClasses.isEmpty ? spec.targetClasses : spec.postprocClasses)
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: min(batchSize ?? spec.batchSize, files.count), engine: engineSettings(card))
        let per = spec.channels * spec.width * spec.height
        for sub in ["labels", "images_annotated"] where sub == "labels" ? spec.kittiDump : spec.overlay {
            try FileManager.default.createDirectory(atPath: "\(outputDir)/\(sub)", withIntermediateDirectories: true)
        }
        var out: [(String, [DetectedObject])] = []
        var progress = ProgressBar(total: files.count, label: "inference", quiet: quiet)
        let t0 = Date()
        for start in stride(from: 0, to: files.count, by: runner.batch) {
            let chunk = Array(files[start..<min(start + runner.batch, files.count)])
            let decoded = try parallelMap(chunk.count) { k -> (Image, [Float]) in
                let img = try ImageCodec.decode(path: chunk[k], channels: spec.channels)
                return (img, canvasInput(img, width: spec.width, height: spec.height))
            }
            runner.load(decoded.map(\.1), per: per)
            runner.forward()
            let found = detections(coverage: runner.outputPointer(0), boxes: runner.outputPointer(1), batch: chunk.count, grid: grid, clustering: clustering)
            let written = try parallelMap(chunk.count) { k -> [DetectedObject] in
                let img = decoded[k].0
                let (sx, sy) = (Double(img.width) / Double(spec.width), Double(img.height) / Double(spec.height))
                var objects: [DetectedObject] = []
                for (c, boxes) in found[k].enumerated() where keep.contains(spec.targetClasses[c]) {
                    let name = spec.outputName(spec.targetClasses[c])
                    for d in boxes {
                        let b = Box(max(0, d.box.x1 * sx), max(0, d.box.y1 * sy), min(Double(img.width), d.box.x2 * sx), min(Double(img.height), d.box.y2 * sy))
                        objects.append(DetectedObject(className: name, box: b, score: d.score))
                    }
                }
                let colors = objects.map { o -> RGB in
                    let c = spec.targetClasses.firstIndex { spec.outputName($0) == o.className } ?? 0
                    return spec.handler(spec.targetClasses[c]).color.map { RGB($0.r, $0.g, $0.b) } ?? RGB.series(c)
                }
                try DetectedObject.write(objects, colors: colors, image: img, path: chunk[k], outputDir: outputDir,
                                         labels: spec.kittiDump, annotated: spec.overlay, lineWidth: Double(max(1, spec.lineWidth)))
                return objects
            }
            for (k, objects) in written.enumerated() { out.append((chunk[k], objects)) }
            progress.update(out.count, "")
        }
        let total = out.reduce(0) { $0 + $1.1.count }
        results.log(String(format: "inference with %@%@ on %d images of %@ in %.1f s: %d objects%@%@", path, runner.label,
                           files.count, images, Date().timeIntervalSince(t0), total,
                           spec.kittiDump ? "; labels in \(outputDir)/labels" : "", spec.overlay ? "; annotated images in \(outputDir)/images_annotated" : ""))
        return out
    }
}

extension DetectNetV2Task: ModelTask {
    public static var taskName: String { "detectnet_v2" }

    /// Images of `imageDir` (spread over the folder) resized to the canvas, as inference feeds them.
    public func calibrationBatches(imageDir: String, images: Int, batchSize: Int, inputShape: [Int]) throws -> [Tensor] {
        guard inputShape == config.inputShape else { throw TaskError("the model takes \(inputShape) images; the spec's preprocessing gives \(config.inputShape)") }
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        return try Self.calibrationBatches(imageDir, images: images, batchSize: batchSize, inputShape: inputShape) {
            Self.canvasInput(try ImageCodec.decode(path: $0, channels: c), width: w, height: h)
        }
    }

    /// Validation mAP, as training's validation measures it.
    public func validationScore(_ graph: Graph, _ store: ParameterStore, classes: [String]) throws -> (name: String, value: Double)? {
        let (_, val) = try frames()
        guard !val.isEmpty else { return nil }
        let runner = try ModelRunner(graph: graph, store: store, batch: min(config.batchSize, val.count))
        return ("val_mAP", AveragePrecision.mean(try evaluate(val, runner, grid: grid)))
    }

    /// Training frames in their order, unaugmented on the canvas, in batches of the spec's batch size.
    public func batchNormSource(images: Int, inputShape: [Int], classes: [String]) throws -> BatchSource {
        let (train, _) = try frames()
        let aug = augmentation, mapping = ClassMapping(config.classMapping, targets: config.classes.map(\.name))
        let batch = max(1, min(config.batchSize, images, train.count))
        var position = 0
        return BatchSource(next: {
            guard position + batch <= min(images, train.count) else { return nil }
            let chunk = Array(train[position..<(position + batch)])
            position += batch
            let xs = try parallelMap(chunk.count) { k -> [Float] in
                var none: SplitMix64? = nil
                return try DetectionData.sample(chunk[k], aug, mapping: mapping, rng: &none).input
            }
            return Tensor(shape: Shape([batch] + inputShape), values: xs.flatMap { $0 })
        })
    }
}
