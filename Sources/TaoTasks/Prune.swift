import Foundation
import TaoData
import TaoGraph
import TaoPrune
import TaoRuntime

extension ModelTask {
    /// `tao <task> prune`: removes filters from a trained model by TAO's criterion and writes the
    /// smaller model; the graph's outputs (the heads) keep every channel. With a spec (`task`), its
    /// batch norms' running statistics are measured again on up to `bnImages` training images
    /// (0: kept as they were), and the task's validation score is reported before pruning, after
    /// it, and after that re-estimation (all before retraining). The report goes to the log and
    /// `prune_report.json` in `resultsDir`.
    @discardableResult
    public static func prune(modelPath: String, output: String, options: PruneOptions, task: Self?,
                             bnImages: Int = 1024, resultsDir: String, quiet: Bool = false) throws -> PruneReport {
        let results = try Results(dir: resultsDir, quiet: quiet)
        let (ck, card) = try loadModel(modelPath)
        let classes = card.classes
        let (graph, store, report) = try Pruner.prune(ck.graph, ck.parameters, options)
        results.log("pruned \(modelPath) with threshold \(options.threshold), normalizer \(options.normalizer.rawValue), equalization \(options.equalization.rawValue), granularity \(options.granularity), min filters \(options.minFilters)")
        results.log(report.text)
        var scores: [(String, Double)] = []
        if let task, let before = try task.validationScore(ck.graph, ck.parameters, classes: classes) {
            let name = before.name
            let after = try task.validationScore(graph, store, classes: classes)!.value
            scores = [("\(name)_before", before.value), ("\(name)_after_pruning", after)]
            results.log(String(format: "%@: %.2f%% before pruning, %.2f%% after (before retraining)", name, 100 * before.value, 100 * after))
            if bnImages > 0 {
                let shape = graph.shape(of: graph.inputs[0]).dims
                let source = try task.batchNormSource(images: bnImages, inputShape: shape, classes: classes)
                defer { source.close() }
                var used = 0
                let layers = try BatchNormStatistics.reestimate(graph, store) {
                    guard let b = try source.next() else { return nil }
                    used += b.shape[0]
                    return b
                }
                if layers > 0 {
                    let bn = try task.validationScore(graph, store, classes: classes)!.value
                    scores.append(("\(name)_after_bn_reestimation", bn))
                    results.log(String(format: "batch-norm statistics of %d layers measured again on %d training images: %@ %.2f%% (before retraining)",
                                       layers, used, name, 100 * bn))
                }
            }
        }
        var prunedCard = card
        prunedCard.pruned = ModelCard.PruneRecord(source: modelPath, threshold: options.threshold, normalizer: options.normalizer.rawValue,
                                                  equalization: options.equalization.rawValue, granularity: options.granularity,
                                                  minNumFilters: options.minFilters, excludedLayers: options.excludedLayers)
        prunedCard.int8 = nil; prunedCard.arithmetic = nil
        try Checkpoint(graph: graph, parameters: store, card: prunedCard).write(to: output)
        let options: [String: Any] = ["source": modelPath, "threshold": options.threshold, "normalizer": options.normalizer.rawValue,
                                      "equalization": options.equalization.rawValue, "granularity": options.granularity,
                                      "min_num_filters": options.minFilters, "excluded_layers": options.excludedLayers]
        results.log("wrote the pruned model to \(output); retrain it with the spec's pretrained model path set to \"\(output)\"")
        var json: [String: Any] = [
            "model": modelPath, "output": output, "options": options,
            "parameters_before": report.parametersBefore, "parameters_after": report.parametersAfter,
            "macs_before": report.macsBefore, "macs_after": report.macsAfter,
            "layers": report.layers.map { ["name": $0.name, "filters_before": $0.before, "filters_after": $0.after, "group": $0.group] as [String: Any] },
            "kept_whole": report.pinned.map { ["layer": $0.0, "reason": $0.1] },
        ]
        for (k, v) in scores { json[k] = v }
        try results.writeJSON("prune_report.json", json)
        return report
    }
}

extension ClassificationTask {
    /// Training images for measuring batch-norm statistics again: up to `images`, in batches of
    /// the spec's training batch size, shuffled across classes, with evaluation preprocessing.
    public func batchNormSource(images: Int, inputShape: [Int], classes: [String]) throws -> BatchSource {
        let folder = try ImageFolder(root: config.trainPath, expectedClasses: classes)
        let batch = max(1, min(config.batchSize, images, folder.count))
        let loader = BatchLoader(folder: folder, preprocessing: preprocessing(training: false), batchSize: batch,
                                 shuffle: true, dropLast: true, seed: 0, workers: config.workers)
        loader.start(epoch: 0)
        var used = 0
        return BatchSource(next: {
            guard used + batch <= images, let b = try loader.next() else { return nil }
            used += batch
            return Tensor(shape: Shape([b.labels.count] + inputShape), values: b.images)
        }, close: { loader.close() })
    }

    /// Top-1 accuracy on the spec's validation folder.
    public func validationScore(_ graph: Graph, _ store: ParameterStore, classes: [String]) throws -> (name: String, value: Double)? {
        let folder = try ImageFolder(root: config.valPath, expectedClasses: classes)
        let ev = try Evaluator(graph: graph, store: store, batch: config.evalBatchSize, prep: preprocessing(training: false), workers: config.workers)
        return ("val_accuracy", try ev.run(folder, k: 1).top1)
    }

    /// Images spread over the whole folder (its listing is sorted by class, so not its first class),
    /// preprocessed as for evaluation.
    public func calibrationBatches(imageDir: String, images: Int, batchSize: Int, inputShape: [Int]) throws -> [Tensor] {
        guard inputShape == config.inputShape else { throw TaskError("the model takes \(inputShape) images; the spec's input_image_size is \(config.inputShape)") }
        let files = try Self.spreadImages(imageDir, images)
        guard !files.isEmpty else { return [] }
        let loader = BatchLoader(folder: ImageFolder(paths: files), preprocessing: preprocessing(training: false), batchSize: min(batchSize, files.count),
                                 shuffle: false, dropLast: true, seed: 0, workers: config.workers)
        defer { loader.close() }
        loader.start(epoch: 0)
        var tensors: [Tensor] = []
        while let b = try loader.next() { tensors.append(Tensor(shape: Shape([b.labels.count] + inputShape), values: b.images)) }
        return tensors
    }
}
