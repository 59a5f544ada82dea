import Foundation
import SwiftProtobuf
import TaoData

/// A TensorBoard event file (`events.out.tfevents.*`): TFRecord-framed `Event` protos, as
/// TensorFlow's summary writers write them, so `tensorboard --logdir RESULTS` shows a run's
/// scalars, images, text and precision-recall curves. Each event is appended as it is written
/// (nothing buffered is lost when a run is interrupted); a resumed run starts a new file, which
/// TensorBoard reads with the others as one run, after a `restart` that retires what it redoes.
public final class EventWriter {
    public let path: String
    private let handle: FileHandle
    private let lock = NSLock()

    public init(dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        var candidate = "", n = 0
        repeat {
            candidate = "\(dir)/events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid()).\(n)"
            n += 1
        } while FileManager.default.fileExists(atPath: candidate)
        path = candidate
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw ReportError("\(path): cannot create the TensorBoard event file")
        }
        handle = h
        var first = Tensorboard_Event()
        first.wallTime = Date().timeIntervalSince1970
        first.fileVersion = "brain.Event:2"
        try write(first)
    }

    deinit { try? handle.close() }

    /// Marks a restart at `step` (TensorBoard's SessionLog START): TensorBoard's reader drops every
    /// event of this folder at or after `step` written before it, as a resumed run redoes them.
    public func restart(at step: Int, _ message: String) throws {
        var e = Tensorboard_Event()
        e.wallTime = Date().timeIntervalSince1970
        e.step = Int64(step)
        e.sessionLog.status = .start
        e.sessionLog.msg = message
        try write(e)
    }

    /// Scalars at `step`, one event for all of them; non-finite values (an epoch without
    /// validation) are left out rather than plotted.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int) throws {
        let kept = values.filter(\.value.isFinite)
        guard !kept.isEmpty else { return }
        try summary(step: step, kept.map { tag, v in
            var value = Tensorboard_Summary.Value()
            value.tag = tag
            value.simpleValue = Float(v)
            return value
        })
    }

    /// An image (PNG bytes) under `tag` at `step`.
    public func image(_ tag: String, png: [UInt8], width: Int, height: Int, step: Int) throws {
        var img = Tensorboard_Summary.Image()
        img.height = Int32(height); img.width = Int32(width); img.colorspace = 3
        img.encodedImageString = Data(png)
        var value = Tensorboard_Summary.Value()
        value.tag = tag
        value.image = img
        try summary(step: step, [value])
    }

    /// Markdown text under `tag` (TensorBoard's text plugin).
    public func text(_ tag: String, _ markdown: String, step: Int) throws {
        var t = Tensorboard_TensorProto()
        t.dtype = .dtString
        t.stringVal = [Data(markdown.utf8)]
        var value = Tensorboard_Summary.Value()
        value.tag = tag
        value.tensor = t
        value.metadata = try metadata(tag, plugin: "text", content: Tensorboard_TextPluginData().serializedData())
        try summary(step: step, [value])
    }

    /// A precision-recall curve under `tag` (TensorBoard's pr_curves plugin): counts at each of the
    /// thresholds 0, 1/(T−1), …, 1 — true and false positives, true and false negatives — with the
    /// precision and recall they give.
    public func prCurve(_ tag: String, truePositives tp: [Double], falsePositives fp: [Double], trueNegatives tn: [Double],
                        falseNegatives fn: [Double], step: Int) throws {
        let t = tp.count
        precondition(fp.count == t && tn.count == t && fn.count == t && t >= 2, "one count per threshold, at least two thresholds")
        let precision = (0..<t).map { tp[$0] / max(tp[$0] + fp[$0], 1e-7) }
        let recall = (0..<t).map { tp[$0] / max(tp[$0] + fn[$0], 1e-7) }
        var tensor = Tensorboard_TensorProto()
        tensor.dtype = .dtFloat
        tensor.tensorShape.dim = [6, t].map { var d = Tensorboard_TensorShapeProto.Dim(); d.size = Int64($0); return d }
        tensor.floatVal = (tp + fp + tn + fn + precision + recall).map(Float.init)
        var plugin = Tensorboard_PrCurvePluginData()
        plugin.numThresholds = UInt32(t)
        var value = Tensorboard_Summary.Value()
        value.tag = tag
        value.tensor = tensor
        value.metadata = try metadata(tag, plugin: "pr_curves", content: plugin.serializedData())
        try summary(step: step, [value])
    }

    private func metadata(_ tag: String, plugin: String, content: Data) throws -> Tensorboard_SummaryMetadata {
        var m = Tensorboard_SummaryMetadata()
        m.pluginData.pluginName = plugin
        m.pluginData.content = content
        if plugin == "pr_curves" { m.dataClass = .tensor }
        return m
    }

    private func summary(step: Int, _ values: [Tensorboard_Summary.Value]) throws {
        var e = Tensorboard_Event()
        e.wallTime = Date().timeIntervalSince1970
        e.step = Int64(step)
        e.summary.value = values
        try write(e)
    }

    private func write(_ e: Tensorboard_Event) throws {
        let framed = TFRecord.frame(Array(try e.serializedData()))
        lock.lock(); defer { lock.unlock() }
        do { try handle.write(contentsOf: framed) } catch { throw ReportError("\(path): write failed: \(error)") }
    }
}

/// A results file that could not be written, with its path.
public struct ReportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
