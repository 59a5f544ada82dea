import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoReport
import TaoRuntime
import TaoTensor

extension YOLOTask {
    func checkModel(_ card: ModelCard, _ graph: Graph, path: String) throws {
        guard card.classes == config.classes else {
            throw TaskError("\(path) detects \(card.classes.joined(separator: ", ")), but the spec's classes are \(config.classes.joined(separator: ", "))")
        }
        let shape = graph.shape(of: graph.inputs[0]).dims
        guard shape == config.inputShape else { throw TaskError("\(path) takes \(shape) images; the spec's augmentation_config gives \(config.inputShape)") }
    }

    /// `tao yolo_v4 evaluate`: AP per class and mAP of a model (a checkpoint, an engine file or an
    /// exported ONNX file) on the validation images (or the training images), each letterboxed,
    /// NMS as nms_config says, matched at eval_config's IoU. Writes evaluation.json and plots/pr_curves.png.
    @discardableResult
    public func evaluate(modelPath: String, resultsDir: String, useTrainingSet: Bool = false, quiet: Bool = false) throws -> DetectionEvaluation {
        let (results, ck, card) = try Self.openModel(modelPath, resultsDir: resultsDir, quiet: quiet, notes: config.notes) { try checkModel($0, $1, path: modelPath) }
        let (train, val) = try frames()
        let set = useTrainingSet ? train : val
        guard !set.isEmpty else { throw TaskError("no images to evaluate on: the spec has no validation data; pass --use_training_set to evaluate on the training data") }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: min(config.evalBatchSize, set.count), engine: Self.engineSettings(card))
        let t0 = Date()
        let aps = try evaluate(set, runner, layout: Self.layout(card, ck.graph))
        let r = DetectionEvaluation(classes: card.classes, perClass: aps, images: set.count)
        try r.report(to: results, resultsDir: resultsDir, model: modelPath, card: card, engine: runner.label, data: useTrainingSet ? "training" : "validation",
                     seconds: Date().timeIntervalSince(t0), apMode: config.apMode, overlap: String(format: "IoU %.2f", config.matchingIoU))
        return r
    }

    /// `tao yolo_v4 inference -i IMAGES -o ANNOTATED -l LABELS -t THRESHOLD`: each image letterboxed,
    /// its detections above the threshold (after NMS) mapped back to the image's pixels; LABELS/NAME.txt
    /// holds them as KITTI lines with the score in the 16th column, ANNOTATED/NAME the image with the boxes.
    @discardableResult
    public func inference(modelPath: String, images: String, annotatedDir: String?, labelsDir: String?, threshold: Double, batchSize: Int? = nil,
                          quiet: Bool = false) throws -> [(String, [DetectedObject])] {
        let logDir = annotatedDir ?? labelsDir ?? "."
        let (results, ck, card) = try Self.openModel(modelPath, resultsDir: logDir, quiet: quiet, notes: config.notes) { try checkModel($0, $1, path: modelPath) }
        let layout = try Self.layout(card, ck.graph)
        let files = try imageFiles(under: images)
        guard !files.isEmpty else { throw TaskError("\(images): no .jpg, .jpeg or .png images found") }
        for dir in [annotatedDir, labelsDir].compactMap({ $0 }) { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: min(batchSize ?? config.evalBatchSize, files.count), engine: Self.engineSettings(card))
        let aug = augmentation, mean = config.imageMean, channels = config.inputShape[0], per = channels * aug.width * aug.height
        var out: [(String, [DetectedObject])] = []
        var progress = ProgressBar(total: files.count, label: "inference", quiet: quiet)
        let t0 = Date()
        for start in stride(from: 0, to: files.count, by: runner.batch) {
            let chunk = Array(files[start..<min(start + runner.batch, files.count)])
            let decoded = try parallelMap(chunk.count) { k -> (Image, YOLOAugmentation.Placement, [Float]) in
                let img = try ImageCodec.decode(path: chunk[k], channels: channels)
                let boxed = aug.letterboxed(LabelledImage(image: img, objects: []))
                return (img, aug.letterbox(imageWidth: img.width, imageHeight: img.height), Self.input(boxed.image, mean: mean))
            }
            runner.load(decoded.map(\.2), per: per)
            runner.forward()
            let found = detections(runner, batch: chunk.count, layout: layout, confidence: threshold)
            let names = card.classes
            let written = try parallelMap(chunk.count) { k -> [DetectedObject] in
                let (img, p, _) = decoded[k]
                var objects: [DetectedObject] = [], colors: [RGB] = []
                for (c, boxes) in found[k].enumerated() {
                    for d in boxes {
                        let b = Self.unbox(d.box, p, aug)
                        objects.append(DetectedObject(className: names[c], box: Box(max(0, b.x1), max(0, b.y1), min(Double(img.width), b.x2), min(Double(img.height), b.y2)), score: d.score))
                        colors.append(RGB.series(c))
                    }
                }
                try DetectedObject.write(objects, colors: colors, image: img, path: chunk[k], outputDir: logDir, labels: labelsDir != nil, annotated: annotatedDir != nil,
                                         labelsDir: labelsDir, imagesDir: annotatedDir)
                return objects
            }
            for (k, objects) in written.enumerated() { out.append((chunk[k], objects)) }
            progress.update(out.count, "")
        }
        let total = out.reduce(0) { $0 + $1.1.count }
        results.log(String(format: "inference with %@%@ on %d images of %@ in %.1f s: %d objects above %.2f%@%@", modelPath, runner.label,
                           files.count, images, Date().timeIntervalSince(t0), total, threshold,
                           labelsDir.map { "; labels in \($0)" } ?? "", annotatedDir.map { "; annotated images in \($0)" } ?? ""))
        return out
    }
}

extension YOLOTask: ModelTask {
    public static var taskName: String { V.flavor.rawValue }

    /// Images of `imageDir` (spread over the folder) letterboxed, as inference feeds them.
    public func calibrationBatches(imageDir: String, images: Int, batchSize: Int, inputShape: [Int]) throws -> [Tensor] {
        guard inputShape == config.inputShape else { throw TaskError("the model takes \(inputShape) images; the spec's augmentation_config gives \(config.inputShape)") }
        let aug = augmentation, mean = config.imageMean, channels = inputShape[0]
        return try Self.calibrationBatches(imageDir, images: images, batchSize: batchSize, inputShape: inputShape) {
            Self.input(aug.letterboxed(LabelledImage(image: try ImageCodec.decode(path: $0, channels: channels), objects: [])).image, mean: mean)
        }
    }

    /// Validation mAP, as training's validation measures it.
    public func validationScore(_ graph: Graph, _ store: ParameterStore, classes: [String]) throws -> (name: String, value: Double)? {
        let (_, val) = try frames()
        guard !val.isEmpty else { return nil }
        let runner = try ModelRunner(graph: graph, store: store, batch: min(config.evalBatchSize, val.count))
        return ("val_mAP", AveragePrecision.mean(try evaluate(val, runner, layout: layout(inputShape: config.inputShape))))
    }

    /// Training images in their order, letterboxed without augmentation, in batches of the spec's batch size.
    public func batchNormSource(images: Int, inputShape: [Int], classes: [String]) throws -> BatchSource {
        let (train, _) = try frames()
        let aug = augmentation, mapping = classMapping, mean = config.imageMean
        let batch = max(1, min(config.batchSize, images, train.count))
        var position = 0
        return BatchSource(next: {
            guard position + batch <= min(images, train.count) else { return nil }
            let chunk = Array(train[position..<(position + batch)])
            position += batch
            let xs = try parallelMap(chunk.count) { k in
                Self.input(aug.letterboxed(try chunk[k].load(channels: inputShape[0], mapping: mapping, keepDifficult: true)).image, mean: mean)
            }
            return Tensor(shape: Shape([batch] + inputShape), values: xs.flatMap { $0 })
        })
    }
}
