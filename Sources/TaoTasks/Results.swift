import Foundation
import TaoGraph

/// The results folder of one run: the spec that produced it, the log, per-epoch metrics (CSV and
/// JSON lines), `status.json` for tools, and the weights. Every file is written atomically or appended.
public final class Results {
    public let dir: String
    public let quiet: Bool
    private var logHandle: FileHandle?

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

    /// Redraws plots/loss.png (train blue, val orange) and plots/accuracy.png from metrics.csv.
    public func plotHistory() throws {
        guard let text = try? String(contentsOfFile: "\(dir)/metrics.csv", encoding: .utf8) else { return }
        let rows = text.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        guard let header = rows.first, rows.count > 1 else { return }
        func column(_ name: String) -> [Double] {
            guard let i = header.firstIndex(of: name) else { return [] }
            return rows.dropFirst().compactMap { $0.count > i ? Double($0[i]) : nil }
        }
        try FileManager.default.createDirectory(atPath: "\(dir)/plots", withIntermediateDirectories: true)
        try AtomicFile.write(try Plots.curves([column("loss"), column("val_loss")]), to: "\(dir)/plots/loss.png")
        if header.contains("val_accuracy") {
            try AtomicFile.write(try Plots.curves([column("accuracy"), column("val_accuracy")], percent: true), to: "\(dir)/plots/accuracy.png")
        }
        if header.contains("val_mAP") {
            try AtomicFile.write(try Plots.curves([column("val_mAP")] + header.filter { $0.hasPrefix("val_AP_") }.map(column), percent: true), to: "\(dir)/plots/mAP.png")
        }
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
