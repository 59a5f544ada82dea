import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoReport
import TaoRuntime
import TaoTensor

/// What `tao unet evaluate` measured: the pixel confusion matrix and what follows from it.
public struct SegmentationEvaluation: Sendable {
    public var classes: [String]
    public var confusion: ConfusionMatrix
    public var images: Int
    public var meanIoU: Double { confusion.meanIoU }
}

extension UNetTask {
    func checkModel(_ card: ModelCard, _ graph: Graph, path: String) throws {
        guard card.classes == config.classes else {
            throw TaskError("\(path) segments \(card.classes.joined(separator: ", ")), but the spec's classes are \(config.classes.joined(separator: ", "))")
        }
        let shape = graph.shape(of: graph.inputs[0]).dims
        guard shape == config.inputShape else { throw TaskError("\(path) takes \(shape) images; the spec's model_config gives \(config.inputShape)") }
        let out = graph.shape(of: graph.outputs[0]).dims
        guard out.count == 3, out[1] == outputSize.height, out[2] == outputSize.width else {
            throw TaskError("\(path) outputs \(out); the spec's \(config.arch) gives \(outputSize.height)×\(outputSize.width) masks")
        }
    }

    /// `tao unet evaluate`: the confusion matrix of a model (a checkpoint, an engine file or an
    /// exported ONNX file) over the validation images and masks (or the training ones), each class's
    /// IoU, precision, recall and F1, and the mean IoU; printed and written to evaluation.json.
    @discardableResult
    public func evaluate(modelPath: String, resultsDir: String, useTrainingSet: Bool = false, quiet: Bool = false) throws -> SegmentationEvaluation {
        let (results, ck, card) = try Self.openModel(modelPath, resultsDir: resultsDir, quiet: quiet, notes: config.notes) { try checkModel($0, $1, path: modelPath) }
        let (train, val) = try data()
        let set = useTrainingSet ? train : val
        guard !set.isEmpty else { throw TaskError("no images to evaluate on: the spec has no validation images and masks; pass --use_training_set to evaluate on the training data") }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: min(config.batchSize, set.count), engine: Self.engineSettings(card))
        let t0 = Date()
        let m = try confusion(set, runner)
        let r = SegmentationEvaluation(classes: card.classes, confusion: m, images: set.count)
        try report(r, results: results, resultsDir: resultsDir, model: modelPath, card: card, engine: runner.label,
                   data: useTrainingSet ? "training" : "validation", seconds: Date().timeIntervalSince(t0))
        return r
    }

    func report(_ r: SegmentationEvaluation, results: Results, resultsDir: String, model: String, card: ModelCard, engine: String, data: String, seconds: Double) throws {
        let m = r.confusion
        results.log(String(format: "evaluated %@%@ on %d %@ images in %.1f s: mean IoU %.2f%%, pixel accuracy %.2f%%", model, engine,
                           r.images, data, seconds, 100 * m.meanIoU, 100 * m.accuracy))
        let width = max(10, r.classes.map(\.count).max() ?? 0)
        func pct(_ v: Double?) -> String { v.map { String(format: "%8.2f%%", 100 * $0) } ?? "        -" }
        results.log("class".padding(toLength: width, withPad: " ", startingAt: 0) + "       IoU  precision     recall         F1       pixels")
        for (c, name) in r.classes.enumerated() {
            let s = m.scores(c)
            results.log(name.padding(toLength: width, withPad: " ", startingAt: 0) + " " + pct(s.iou) + "  " + pct(s.precision) + "  " + pct(s.recall) + "  " + pct(s.f1)
                        + String(format: " %12d", s.truePixels))
        }
        results.log("confusion matrix (pixels; rows: true class, columns: predicted):")
        for row in m.counts { results.log(row.map { String(format: "%10d", $0) }.joined()) }
        let per = r.classes.indices.map { m.scores($0) }
        try Plots.write(Plots.perClass(title: String(format: "Per class: %@ (mean IoU %.1f%%)", runName(resultsDir), 100 * m.meanIoU), classes: r.classes,
                                       per.map { ($0.precision ?? 0, $0.recall ?? 0, $0.f1 ?? 0) }), to: "\(resultsDir)/plots/per_class")
        let events = try results.events(), step = card.epoch ?? 0
        try events.scalars([("evaluate/mIoU", m.meanIoU)] + zip(r.classes, per).compactMap { n, s in s.iou.map { ("evaluate/IoU_\(n)", $0) } }, step: step)
        try results.writeJSON("evaluation.json", [
            "model": model, "images": r.images, "data": data, "mean_iou": m.meanIoU, "pixel_accuracy": m.accuracy,
            "mean_precision": m.mean(\.precision), "mean_recall": m.mean(\.recall), "mean_f1": m.mean(\.f1),
            "per_class": zip(r.classes, per).map { name, s -> [String: Any] in
                ["class": name, "iou": s.iou ?? NSNull(), "precision": s.precision ?? NSNull(), "recall": s.recall ?? NSNull(), "f1": s.f1 ?? NSNull(),
                 "true_pixels": s.truePixels, "predicted_pixels": s.predictedPixels]
            },
            "confusion_matrix": m.counts,
        ])
        try results.writeSummary()
    }

    /// The colour a class is drawn in (class 0, usually the background, is left undrawn).
    static func color(_ c: Int) -> RGB { RGB.series(max(c - 1, 0)) }

    /// `tao unet inference`: each image (the spec's test images, or `images`) resized to the
    /// network, its per-pixel classes brought back to the image's size (nearest neighbour);
    /// OUTPUT/mask_labels_tlt/STEM.png holds the class indices, OUTPUT/vis_overlay_tlt/STEM.png the
    /// image with each class but the first tinted in its colour.
    @discardableResult
    public func inference(modelPath: String, images: String? = nil, outputDir: String, batchSize: Int? = nil, quiet: Bool = false) throws -> [String] {
        let (results, ck, card) = try Self.openModel(modelPath, resultsDir: outputDir, quiet: quiet, notes: config.notes) { try checkModel($0, $1, path: modelPath) }
        let files: [String]
        if let images {
            files = try imageFiles(under: images)
        } else {
            guard let test = config.test else { throw TaskError("no images: the spec has no test_images_path (or test_data_sources); pass -i IMAGES") }
            files = try pairs(test).map(\.image)
        }
        guard !files.isEmpty else { throw TaskError("\(images ?? "the spec's test images"): no .jpg, .jpeg or .png images found") }
        let (maskDir, overlayDir) = ("\(outputDir)/mask_labels_tlt", "\(outputDir)/vis_overlay_tlt")
        for d in [maskDir, overlayDir] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: min(batchSize ?? config.batchSize, files.count), engine: Self.engineSettings(card))
        let prep = preparation(), classes = card.classes.count, per = config.inputShape.reduce(1, *), pixels = prep.outputWidth * prep.outputHeight
        var progress = ProgressBar(total: files.count, label: "inference", quiet: quiet)
        var counts = [Int](repeating: 0, count: max(classes, 2))
        let t0 = Date()
        for start in stride(from: 0, to: files.count, by: runner.batch) {
            let chunk = Array(files[start..<min(start + runner.batch, files.count)])
            let decoded = try parallelMap(chunk.count) { k -> (Image, [Float]) in
                let img = try ImageCodec.decode(path: chunk[k], channels: 3)
                let s = try prep.load(SegmentationPair(image: chunk[k], mask: nil))
                return (img, prep.input(s.image))
            }
            runner.load(decoded.map(\.1), per: per)
            runner.forward()
            nonisolated(unsafe) let out = UnsafePointer(runner.outputPointer(0))
            let written = try parallelMap(chunk.count) { k -> [UInt8] in
                let img = decoded[k].0
                let small = UNetLoss.predictions(out, image: k, classes: classes, pixels: pixels)
                let mask = prep.maskToImage(small, width: img.width, height: img.height)
                let stem = ((chunk[k] as NSString).lastPathComponent as NSString).deletingPathExtension
                try AtomicFile.write(Data(try ImageCodec.encodePNG(Image(width: img.width, height: img.height, channels: 1, pixels: mask))), to: "\(maskDir)/\(stem).png")
                var overlay = img
                for i in 0..<mask.count where mask[i] > 0 {
                    let c = Self.color(Int(mask[i])), rgb = [c.r, c.g, c.b]
                    for ch in 0..<3 { overlay.pixels[i * 3 + ch] = UInt8((Int(overlay.pixels[i * 3 + ch]) + Int(rgb[ch])) / 2) }
                }
                try AtomicFile.write(Data(try ImageCodec.encodePNG(overlay)), to: "\(overlayDir)/\(stem).png")
                return mask
            }
            for m in written { for v in m where Int(v) < counts.count { counts[Int(v)] += 1 } }
            progress.update(start + chunk.count, "")
        }
        let total = Double(max(counts.reduce(0, +), 1))
        results.log(String(format: "inference with %@%@ on %d images in %.1f s; class masks in %@, overlays in %@", modelPath, runner.label,
                           files.count, Date().timeIntervalSince(t0), maskDir, overlayDir))
        results.log("pixels per class: " + card.classes.enumerated().map { String(format: "%@ %.1f%%", $1, 100 * Double(counts[$0]) / total) }.joined(separator: ", "))
        return files
    }
}

extension UNetTask: ModelTask {
    public static var taskName: String { "unet" }

    /// Images of `imageDir` (spread over the folder) resized as evaluation resizes them.
    public func calibrationBatches(imageDir: String, images: Int, batchSize: Int, inputShape: [Int]) throws -> [Tensor] {
        guard inputShape == config.inputShape else { throw TaskError("the model takes \(inputShape) images; the spec's model_config gives \(config.inputShape)") }
        let prep = preparation()
        return try Self.calibrationBatches(imageDir, images: images, batchSize: batchSize, inputShape: inputShape) {
            prep.input(try prep.load(SegmentationPair(image: $0, mask: nil)).image)
        }
    }

    /// Validation mean IoU, as training's validation measures it.
    public func validationScore(_ graph: Graph, _ store: ParameterStore, classes: [String]) throws -> (name: String, value: Double)? {
        let (_, val) = try data()
        guard !val.isEmpty else { return nil }
        let runner = try ModelRunner(graph: graph, store: store, batch: min(config.batchSize, val.count))
        return ("val_mIoU", try confusion(val, runner).meanIoU)
    }

    /// Training images in their order, resized without augmentation, in batches of the spec's batch size.
    public func batchNormSource(images: Int, inputShape: [Int], classes: [String]) throws -> BatchSource {
        let (train, _) = try data()
        let prep = preparation(), batch = max(1, min(config.batchSize, images, train.count))
        var position = 0
        return BatchSource(next: {
            guard position + batch <= min(images, train.count) else { return nil }
            let chunk = Array(train[position..<(position + batch)])
            position += batch
            let xs = try parallelMap(chunk.count) { k in prep.input(try prep.load(SegmentationPair(image: chunk[k].image, mask: nil)).image) }
            return Tensor(shape: Shape([batch] + inputShape), values: xs.flatMap { $0 })
        })
    }
}
