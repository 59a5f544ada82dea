import Foundation
import TaoData
import TaoGraph
import TaoPrune

extension ClassificationTask {
    /// `tao classification prune`: removes filters from a trained model by TAO's criterion and writes
    /// the smaller model. With a spec (`task`), reports validation accuracy before and after pruning
    /// (before retraining). The report goes to the log and `prune_report.json` in `resultsDir`.
    @discardableResult
    public static func prune(modelPath: String, output: String, options: PruneOptions, task: ClassificationTask?,
                             resultsDir: String, quiet: Bool = false) throws -> PruneReport {
        let results = try Results(dir: resultsDir, quiet: quiet)
        let (ck, classes) = try loadModel(modelPath)
        let (graph, store, report) = try Pruner.prune(ck.graph, ck.parameters, options)
        results.log("pruned \(modelPath) with threshold \(options.threshold), normalizer \(options.normalizer.rawValue), equalization \(options.equalization.rawValue), granularity \(options.granularity), min filters \(options.minFilters)")
        results.log(report.text)
        var accuracy: [String: Double] = [:]
        if let task {
            let folder = try ImageFolder(root: task.config.valPath, expectedClasses: classes)
            for (name, g, s) in [("before", ck.graph, ck.parameters), ("after", graph, store)] {
                let ev = try Evaluator(graph: g, store: s, batch: task.config.evalBatchSize, prep: task.preprocessing(training: false), workers: task.config.workers)
                accuracy[name] = try ev.run(folder, k: 1).top1
            }
            results.log(String(format: "validation accuracy on %@: %.2f%% before pruning, %.2f%% after (before retraining)",
                               task.config.valPath, 100 * accuracy["before"]!, 100 * accuracy["after"]!))
        }
        var meta = ck.metadata
        let options: [String: Any] = ["source": modelPath, "threshold": options.threshold, "normalizer": options.normalizer.rawValue,
                                      "equalization": options.equalization.rawValue, "granularity": options.granularity,
                                      "min_num_filters": options.minFilters, "excluded_layers": options.excludedLayers]
        meta["tao.pruned"] = String(decoding: try JSONSerialization.data(withJSONObject: options, options: .sortedKeys), as: UTF8.self)
        try Checkpoint(graph: graph, parameters: store, metadata: meta).write(to: output)
        results.log("wrote the pruned model to \(output); retrain it with train_config.pretrained_model_path: \"\(output)\"")
        var json: [String: Any] = [
            "model": modelPath, "output": output, "options": options,
            "parameters_before": report.parametersBefore, "parameters_after": report.parametersAfter,
            "macs_before": report.macsBefore, "macs_after": report.macsAfter,
            "layers": report.layers.map { ["name": $0.name, "filters_before": $0.before, "filters_after": $0.after, "group": $0.group] as [String: Any] },
            "kept_whole": report.pinned.map { ["layer": $0.0, "reason": $0.1] },
        ]
        if !accuracy.isEmpty { json["val_accuracy_before"] = accuracy["before"]!; json["val_accuracy_after_pruning"] = accuracy["after"]! }
        try results.writeJSON("prune_report.json", json)
        return report
    }
}
