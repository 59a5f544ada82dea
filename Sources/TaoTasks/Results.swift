import Foundation
import TaoData
import TaoGraph
import TaoReport

/// The results folder of one run: the spec that produced it, the log, per-epoch metrics (CSV and
/// JSON lines), `status.json` for tools, and the weights. Every file is written atomically or appended.
public final class Results {
    public let dir: String
    public let quiet: Bool
    private var logHandle: FileHandle?
    private var eventWriter: EventWriter?, stepWriter: EventWriter?

    public init(dir: String, quiet: Bool = false) throws {
        self.dir = dir
        self.quiet = quiet
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let log = "\(dir)/train.log"
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        logHandle = FileHandle(forWritingAtPath: log)
        logHandle?.seekToEndOfFile()
    }

    deinit { try? logHandle?.close() }

    /// Prints a line and appends it to train.log (and to the `--log_file` when one is set).
    public func log(_ line: String) {
        if !quiet { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        logHandle?.write(Data((line + "\n").utf8))
        LogFile.write(line)
    }

    /// What importing an ONNX model changed (dropped Softmax, fake quantization run as identities, …).
    public func logImportNotes(_ card: ModelCard?, _ path: String) {
        for line in card?.onnx?.notes ?? [] { log("\(path): \(line)") }
    }

    /// The folder's TensorBoard event file for this process, created on first use: per-epoch
    /// scalars, images, text and evaluation, with the epoch as the step.
    public func events() throws -> EventWriter {
        if let w = eventWriter { return w }
        let w = try EventWriter(dir: dir)
        eventWriter = w
        return w
    }

    /// Per-iteration scalars, with the iteration as the step, in `steps/` (TensorBoard's run
    /// "steps"): one folder never mixes steps of two units, so a restart retires the right events.
    public func stepEvents() throws -> EventWriter {
        if let w = stepWriter { return w }
        let w = try EventWriter(dir: "\(dir)/steps")
        stepWriter = w
        return w
    }

    public func saveSpec(_ path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        try AtomicFile.write(data, to: "\(dir)/spec.txt")
    }

    /// Appends one row of metrics to metrics.csv and metrics.jsonl.
    public func record(_ row: [(String, Double)]) throws {
        let csv = "\(dir)/metrics.csv"
        if !FileManager.default.fileExists(atPath: csv) {
            FileManager.default.createFile(atPath: csv, contents: Data((row.map(\.0).joined(separator: ",") + "\n").utf8))
        }
        try append(csv, row.map { String(format: "%.6g", $0.1) }.joined(separator: ",") + "\n")
        let json = "{" + row.map { "\"\($0.0)\": \($0.1.isFinite ? String(format: "%.6g", $0.1) : "null")" }.joined(separator: ", ") + "}\n"
        try append("\(dir)/metrics.jsonl", json)
    }

    public func status(_ fields: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .prettyPrinted])
        try AtomicFile.write(data, to: "\(dir)/status.json")
    }

    /// classmap.json as TAO writes it: each class name with its output index.
    public func writeClassMap(_ classes: [String]) throws {
        try writeJSON("classmap.json", Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) }))
    }

    public func writeJSON(_ name: String, _ object: Any) throws {
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), to: "\(dir)/\(name)")
    }

    /// metrics.csv's columns by name (NaN where a row has no value).
    func metricsTable() -> (header: [String], rows: [[Double]])? {
        guard let text = try? String(contentsOfFile: "\(dir)/metrics.csv", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first, lines.count > 1 else { return nil }
        return (header, lines.dropFirst().map { $0.map { Double($0) ?? .nan } })
    }

    /// Redraws the plots of metrics.csv (PNG and SVG): loss, accuracy or mAP with AP per class,
    /// and the learning rate, each titled with the run's name.
    public func plotHistory() throws {
        guard let (header, rows) = metricsTable() else { return }
        func column(_ name: String) -> [Double] {
            guard let i = header.firstIndex(of: name) else { return [] }
            return rows.map { $0.count > i ? $0[i] : .nan }
        }
        let run = runName(dir)
        try FileManager.default.createDirectory(atPath: "\(dir)/plots", withIntermediateDirectories: true)
        var losses = [("training loss", column("loss"))]
        if header.contains("val_loss") { losses.append(("validation loss", column("val_loss"))) }
        try Plots.write(Plots.history(title: "Loss per epoch: \(run)", yLabel: "loss", losses), to: "\(dir)/plots/loss")
        if header.contains("val_accuracy") {
            var acc = [("validation accuracy", column("val_accuracy"))]
            if header.contains("accuracy") { acc.insert(("training accuracy", column("accuracy")), at: 0) }
            try Plots.write(Plots.history(title: "Top-1 accuracy per epoch: \(run)", yLabel: "accuracy", acc, percent: true), to: "\(dir)/plots/accuracy")
        }
        if header.contains("val_mAP") {
            let aps = header.filter { $0.hasPrefix("val_AP_") }.map { ("AP " + $0.dropFirst(7), column($0)) }
            try Plots.write(Plots.history(title: "Validation mAP per epoch: \(run)", yLabel: "average precision", [("mAP", column("val_mAP"))] + aps, percent: true),
                            to: "\(dir)/plots/mAP")
        }
        if header.contains("lr") { try Plots.write(Plots.learningRate(title: "Learning rate: \(run)", column("lr")), to: "\(dir)/plots/learning_rate") }
    }

    /// results/summary.md: what produced the run, where it stands, its plots, and the commands that
    /// take its model further.
    /// Reads what it says from the folder (status.json, metrics.csv, evaluation.json, the plots), so
    /// that training and evaluate both keep it current; a folder without a training run has none.
    public func writeSummary() throws {
        guard let (header, rows) = metricsTable(), let last = rows.last,
              let data = FileManager.default.contents(atPath: "\(dir)/status.json"),
              let status = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let task = status["task"] as? String, let specPath = status["spec"] as? String,
              let modelName = status["model"] as? String, let epochs = status["epochs"] as? Int else { return }
        let checkpoint = status["checkpoint"] as? String
        let fm = FileManager.default
        let spec = (try? String(contentsOfFile: "\(dir)/spec.txt", encoding: .utf8)) ?? ""
        func value(_ name: String, _ v: Double) -> String {
            guard v.isFinite else { return "–" }
            if name.contains("accuracy") || name.contains("mAP") || name.hasPrefix("val_AP_") { return String(format: "%.2f%%", 100 * v) }
            if name == "epoch" { return String(Int(v)) }
            return String(format: "%.6g", v)
        }
        var md = "# \(task) run: \(runName(dir))\n\n"
        let done = Int(last.first ?? 0)
        md += "Spec `\(specPath)` (copied to `spec.txt`), model `\(modelName)`; \(done) of \(epochs) epochs done"
        md += done >= epochs ? ".\n\n" : " (run `train` again to resume).\n\n"
        let main = header.contains("val_mAP") ? "val_mAP" : header.contains("val_accuracy") ? "val_accuracy" : nil
        if let main, let i = header.firstIndex(of: main) {
            let scored = rows.enumerated().filter { $0.element.count > i && $0.element[i].isFinite }
            if let best = scored.max(by: { $0.element[i] < $1.element[i] }) {
                md += "Best \(main): **\(value(main, best.element[i]))** at epoch \(best.offset + 1).\n\n"
            }
        }
        if let data = fm.contents(atPath: "\(dir)/evaluation.json"), let e = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let score = (e["top1"] as? Double).map { String(format: "top-1 accuracy **%.2f%%**", 100 * $0) }
                ?? (e["mAP"] as? Double).map { String(format: "mAP **%.2f%%**", 100 * $0) } ?? "see evaluation.json"
            md += "Last `evaluate`: \(score) with `\(e["model"] as? String ?? "?")` (evaluation.json).\n\n"
        }
        md += "## Last epoch\n\n| metric | value |\n|---|---|\n"
        for (name, v) in zip(header, last) { md += "| \(name) | \(value(name, v)) |\n" }
        md += "\n## Plots\n\n"
        for (file, caption) in [("loss", "loss"), ("accuracy", "accuracy"), ("mAP", "mAP and AP per class"), ("learning_rate", "learning rate"),
                                ("confusion_matrix", "confusion matrix (evaluate)"), ("per_class", "precision, recall and F1 per class (evaluate)"),
                                ("pr_curves", "precision-recall curves (evaluate)")]
            where fm.fileExists(atPath: "\(dir)/plots/\(file).png") {
            md += "![\(caption)](plots/\(file).png)\n\n"
        }
        if let latest = (try? fm.contentsOfDirectory(atPath: "\(dir)/validation_images"))?.filter({ $0.hasSuffix(".png") }).sorted().last {
            md += "Validation images after the last epoch (predictions solid, ground truth dashed where drawn):\n\n![validation images](validation_images/\(latest))\n\n"
        }
        md += "TensorBoard: `tensorboard --logdir \(dir)` (scalars per step and epoch, validation images, the spec).\n\n"
        if let ck = checkpoint {
            let m = "\(dir)/weights/" + (ck as NSString).lastPathComponent
            md += "## Next\n\n```bash\n"
            md += "tao \(task) evaluate -e \(specPath) -m \(m)\n"
            md += "tao \(task) prune -m \(m) -o \(dir)/pruned/\(modelName)_pruned.tao -pth 0.1 -e \(specPath)\n"
            md += "tao \(task) export -m \(m) -o \(dir)/\(modelName).onnx\n"
            md += "tao \(task) export -m \(m) -o \(dir)/\(modelName).int8.onnx -e \(specPath) --data_type int8 --cal_image_dir IMAGES\n"
            md += "```\n\n"
        }
        md += "## Spec\n\n```\n\(spec.trimmingCharacters(in: .whitespacesAndNewlines))\n```\n"
        try AtomicFile.write(Data(md.utf8), to: "\(dir)/summary.md")
    }

    private func append(_ path: String, _ text: String) throws {
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        h.seekToEndOfFile()
        h.write(Data(text.utf8))
        try h.close()
    }

    /// Checkpoint path for an epoch (1-based), and the latest one present.
    public func weightsPath(_ name: String, epoch: Int) -> String { "\(dir)/weights/\(name)_\(String(format: "%03d", epoch)).tao" }

    public func latestWeights(_ name: String) -> (path: String, epoch: Int)? {
        savedEpochs(name).last.map { (weightsPath(name, epoch: $0), $0) }
    }

    /// Epochs with a checkpoint in weights/, ascending.
    public func savedEpochs(_ name: String) -> [Int] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/weights")) ?? []
        return files.compactMap { f -> Int? in
            guard f.hasPrefix(name + "_"), f.hasSuffix(".tao") else { return nil }
            return Int(f.dropFirst(name.count + 1).dropLast(4))
        }.sorted()
    }

    /// Renames checkpoints of epochs after `epoch` to `*.tao.superseded`, so that a later resume
    /// cannot pick up a checkpoint from the run being redone. Returns the renamed files.
    public func supersedeWeights(_ name: String, after epoch: Int) throws -> [String] {
        var moved: [String] = []
        for e in savedEpochs(name) where e > epoch {
            let path = weightsPath(name, epoch: e)
            try? FileManager.default.removeItem(atPath: path + ".superseded")
            try FileManager.default.moveItem(atPath: path, toPath: path + ".superseded")
            moved.append(path)
        }
        return moved
    }

    /// Drops metric rows of epochs after `epoch` (a run resumed from an earlier checkpoint redoes them).
    public func truncateMetrics(after epoch: Int) throws {
        for (file, isCSV) in [("metrics.csv", true), ("metrics.jsonl", false)] {
            let path = "\(dir)/\(file)"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            let header = isCSV ? lines.removeFirst() : nil
            let kept = lines.filter { line in
                let first = isCSV ? line.split(separator: ",").first.map(String.init)
                                  : line.split(separator: ",").first?.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) }
                return (first.flatMap(Double.init) ?? 0) <= Double(epoch)
            }
            guard kept.count != lines.count else { continue }
            let out = ((header.map { [$0] } ?? []) + kept).map { $0 + "\n" }.joined()
            try AtomicFile.write(Data(out.utf8), to: path)
        }
    }
}

/// A one-line progress bar with ETA, redrawn in place on a terminal and printed sparsely otherwise.
struct ProgressBar {
    let total: Int
    let label: String
    var quiet = false
    let start = Date()
    let tty = isatty(STDOUT_FILENO) != 0
    var lastPrint = Date.distantPast

    mutating func update(_ done: Int, _ extra: String) {
        if quiet { return }
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let width = 24
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "%@ %@ %d/%d  %@  eta %ds", label, bar, done, total, extra, Int(eta))
        if tty {
            FileHandle.standardOutput.write(Data(("\r" + line + (done == total ? "\n" : "")).utf8))
        } else if done == total || Date().timeIntervalSince(lastPrint) > 30 {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
            lastPrint = Date()
        }
    }
}

/// TAO's `--log_file`: every logged line is appended to this file too, for the whole process.
public enum LogFile {
    nonisolated(unsafe) private static var handle: FileHandle?
    private static let lock = NSLock()

    /// Appends every later log line to `path` (created with its folder if missing).
    public static func mirror(to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw TaskError("--log_file \(path) cannot be written") }
        h.seekToEndOfFile()
        lock.lock(); defer { lock.unlock() }
        handle = h
    }

    public static func write(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        handle?.write(Data((line + "\n").utf8))
    }
}
