import Foundation
import TaoData
import TaoGraph
import TaoPrune
import TaoRuntime

extension ClassificationTask {
    /// `tao classification prune`: removes filters from a trained model by TAO's criterion and writes
    /// the smaller model. With a spec (`task`), its batch norms' running statistics are measured
    /// again on up to `bnImages` training images (0: kept as they were), and validation accuracy is
    /// reported before pruning, after it, and after that re-estimation (all before retraining). The
    /// report goes to the log and `prune_report.json` in `resultsDir`.
    @discardableResult
    public static func prune(modelPath: String, output: String, options: PruneOptions, task: ClassificationTask?,
                             bnImages: Int = 1024, resultsDir: String, quiet: Bool = false) throws -> PruneReport {
        let results = try Results(dir: resultsDir, quiet: quiet)
        let (ck, card) = try loadModel(modelPath)
        let classes = card.classes
        let (graph, store, report) = try Pruner.prune(ck.graph, ck.parameters, options)
        results.log("pruned \(modelPath) with threshold \(options.threshold), normalizer \(options.normalizer.rawValue), equalization \(options.equalization.rawValue), granularity \(options.granularity), min filters \(options.minFilters)")
        results.log(report.text)
        var accuracy: [String: Double] = [:]
        if let task {
            let folder = try ImageFolder(root: task.config.valPath, expectedClasses: classes)
            func measure(_ name: String, _ g: Graph, _ s: ParameterStore) throws {
                let ev = try Evaluator(graph: g, store: s, batch: task.config.evalBatchSize, prep: task.preprocessing(training: false), workers: task.config.workers)
                accuracy[name] = try ev.run(folder, k: 1).top1
            }
            try measure("before", ck.graph, ck.parameters)
            try measure("after", graph, store)
            results.log(String(format: "validation accuracy on %@: %.2f%% before pruning, %.2f%% after (before retraining)",
                               task.config.valPath, 100 * accuracy["before"]!, 100 * accuracy["after"]!))
            if bnImages > 0 {
                let (layers, images) = try task.reestimateBatchNorm(graph, store, classes: classes, images: bnImages)
                if layers > 0 {
                    try measure("bn", graph, store)
                    results.log(String(format: "batch-norm statistics of %d layers measured again on %d images of %@: validation accuracy %.2f%% (before retraining)",
                                       layers, images, task.config.trainPath, 100 * accuracy["bn"]!))
                }
            }
        }
        var prunedCard = card
        prunedCard.pruned = ModelCard.PruneRecord(source: modelPath, threshold: options.threshold, normalizer: options.normalizer.rawValue,
                                                  equalization: options.equalization.rawValue, granularity: options.granularity,
                                                  minNumFilters: options.minFilters, excludedLayers: options.excludedLayers)
        try Checkpoint(graph: graph, parameters: store, card: prunedCard).write(to: output)
        let options: [String: Any] = ["source": modelPath, "threshold": options.threshold, "normalizer": options.normalizer.rawValue,
                                      "equalization": options.equalization.rawValue, "granularity": options.granularity,
                                      "min_num_filters": options.minFilters, "excluded_layers": options.excludedLayers]
        results.log("wrote the pruned model to \(output); retrain it with train_config.pretrained_model_path: \"\(output)\"")
        var json: [String: Any] = [
            "model": modelPath, "output": output, "options": options,
            "parameters_before": report.parametersBefore, "parameters_after": report.parametersAfter,
            "macs_before": report.macsBefore, "macs_after": report.macsAfter,
            "layers": report.layers.map { ["name": $0.name, "filters_before": $0.before, "filters_after": $0.after, "group": $0.group] as [String: Any] },
            "kept_whole": report.pinned.map { ["layer": $0.0, "reason": $0.1] },
        ]
        if !accuracy.isEmpty { json["val_accuracy_before"] = accuracy["before"]!; json["val_accuracy_after_pruning"] = accuracy["after"]! }
        if let bn = accuracy["bn"] { json["val_accuracy_after_bn_reestimation"] = bn }
        try results.writeJSON("prune_report.json", json)
        return report
    }
}

extension ClassificationTask {
    /// Measures the batch norms' running statistics of `graph` again on up to `images` training
    /// images (in batches of the spec's training batch size, shuffled across classes, evaluation
    /// preprocessing). Returns how many layers were updated and how many images were used.
    func reestimateBatchNorm(_ graph: Graph, _ store: ParameterStore, classes: [String], images: Int) throws -> (layers: Int, images: Int) {
        let folder = try ImageFolder(root: config.trainPath, expectedClasses: classes)
        let batch = max(1, min(config.batchSize, images, folder.count))
        let loader = BatchLoader(folder: folder, preprocessing: preprocessing(training: false), batchSize: batch,
                                 shuffle: true, dropLast: true, seed: 0, workers: config.workers)
        defer { loader.close() }
        loader.start(epoch: 0)
        let shape = graph.shape(of: graph.inputs[0]).dims
        var used = 0
        let layers = try BatchNormStatistics.reestimate(graph, store) {
            guard used + batch <= images, let b = try loader.next() else { return nil }
            used += batch
            return Tensor(shape: Shape([b.labels.count] + shape), values: b.images)
        }
        return (layers, used)
    }
}
