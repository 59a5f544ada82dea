import Foundation

/// A problem with a KITTI label file or a KITTI dataset, naming the file and (for a label) the line.
public struct KITTIError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// 1-based; 0 when the problem is the file as a whole.
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// One object of a KITTI label line, TAO's 15 columns (16 with a detection score): class,
/// truncation, occlusion, alpha, x1 y1 x2 y2 (pixels of the original image), height width length,
/// x y z, rotation_y[, score].
public struct KITTIObject: Equatable, Sendable {
    /// The class name as written in the file.
    public var className: String
    public var truncation: Float
    /// 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown; TAO counts ≠ 0 as difficult.
    public var occlusion: Int
    public var alpha: Float
    public var x1: Float, y1: Float, x2: Float, y2: Float
    /// height, width, length, x, y, z, rotation_y: the 3-D columns, kept as read.
    public var threeD: [Float]
    /// The 16th column: a prediction's confidence.
    public var score: Float?

    public init(className: String, truncation: Float = 0, occlusion: Int = 0, alpha: Float = 0,
                x1: Float, y1: Float, x2: Float, y2: Float, threeD: [Float] = Array(repeating: 0, count: 7), score: Float? = nil) {
        self.className = className; self.truncation = truncation; self.occlusion = occlusion; self.alpha = alpha
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2; self.threeD = threeD; self.score = score
    }

    public var width: Float { x2 - x1 }
    public var height: Float { y2 - y1 }
    /// TAO's sequence loader: an occluded object is difficult (left out of training, neutral in evaluation).
    public var difficult: Bool { occlusion != 0 }

    /// The object as a KITTI line (with the score column when it has one).
    public var line: String {
        var cols = [className, fmt(truncation), "\(occlusion)", fmt(alpha), fmt(x1), fmt(y1), fmt(x2), fmt(y2)] + threeD.map(fmt)
        if let score { cols.append(String(format: "%.5f", score)) }
        return cols.joined(separator: " ")
    }
    private func fmt(_ v: Float) -> String { String(format: "%.2f", v) }
}

/// Reads and writes KITTI label files.
public enum KITTI {
    static let columns = ["class", "truncation", "occlusion", "alpha", "x1", "y1", "x2", "y2",
                          "height", "width", "length", "x", "y", "z", "rotation_y", "score"]

    /// The objects of a label file's text; blank lines are skipped, anything else malformed is an
    /// error naming `file` and the line.
    public static func parse(_ text: String, file: String) throws -> [KITTIObject] {
        var objects: [KITTIObject] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            func fail(_ m: String) -> KITTIError { KITTIError(file: file, line: i + 1, message: m) }
            guard fields.count == 15 || fields.count == 16 else {
                throw fail("\(fields.count < 15 ? "too few" : "too many") columns: a KITTI label line has 15 (16 with a score), this one has \(fields.count)")
            }
            var numbers: [Float] = []
            for (k, f) in fields.enumerated().dropFirst() {
                guard let v = Float(f), v.isFinite else { throw fail("column \(k + 1) (\(columns[k])) is not a number: '\(f)'") }
                numbers.append(v)
            }
            guard numbers[1] == numbers[1].rounded(), (-1...3).contains(numbers[1]) else {
                throw fail("column 3 (occlusion) must be 0, 1, 2 or 3 (-1 for DontCare), got '\(fields[2])'")
            }
            var o = KITTIObject(className: String(fields[0]), truncation: numbers[0], occlusion: Int(numbers[1]), alpha: numbers[2],
                                x1: numbers[3], y1: numbers[4], x2: numbers[5], y2: numbers[6], threeD: Array(numbers[7..<14]))
            if numbers.count == 15 { o.score = numbers[14] }
            guard o.x2 >= o.x1 else { throw fail("x2 (\(fields[6])) is left of x1 (\(fields[4]))") }
            guard o.y2 >= o.y1 else { throw fail("y2 (\(fields[7])) is above y1 (\(fields[5]))") }
            objects.append(o)
        }
        return objects
    }

    /// The objects of a label file.
    public static func read(_ path: String) throws -> [KITTIObject] {
        guard let data = FileManager.default.contents(atPath: path) else { throw KITTIError(file: path, line: 0, message: "cannot be read") }
        guard let text = String(data: data, encoding: .utf8) else { throw KITTIError(file: path, line: 0, message: "is not UTF-8 text") }
        return try parse(text, file: path)
    }

    /// Writes objects as a label file (atomically: a temporary file, then renamed).
    public static func write(_ objects: [KITTIObject], to path: String) throws {
        let text = objects.map { $0.line + "\n" }.joined()
        let tmp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)) else { throw KITTIError(file: path, line: 0, message: "cannot be written") }
        if FileManager.default.fileExists(atPath: path) { _ = try FileManager.default.replaceItemAt(URL(fileURLWithPath: path), withItemAt: URL(fileURLWithPath: tmp)) }
        else { try FileManager.default.moveItem(atPath: tmp, toPath: path) }
    }
}

/// A KITTI dataset: an image folder and a label folder whose files pair by name (`000123.png`
/// with `000123.txt`). Every image needs its label file and every label file its image.
public struct KITTIDataset: Sendable {
    public let imageDirectory: String
    public let labelDirectory: String
    /// Frame ids (file names without extension), sorted.
    public let ids: [String]
    public let imagePaths: [String]
    public let labelPaths: [String]

    public init(images: String, labels: String) throws {
        func list(_ dir: String, _ what: String) throws -> [String] {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw KITTIError(file: dir, line: 0, message: "the \(what) folder does not exist")
            }
            return try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
        }
        var imagesByID: [String: String] = [:]
        for f in try list(images, "image") where ImageFolder.extensions.contains((f as NSString).pathExtension.lowercased()) {
            let id = (f as NSString).deletingPathExtension
            if let other = imagesByID[id] { throw KITTIError(file: "\(images)/\(f)", line: 0, message: "two images have the id '\(id)' (also \(other))") }
            imagesByID[id] = f
        }
        let labelIDs = try list(labels, "label").filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }
        guard !imagesByID.isEmpty else { throw KITTIError(file: images, line: 0, message: "no .jpg, .jpeg or .png images") }
        let labelSet = Set(labelIDs)
        if let id = imagesByID.keys.sorted().first(where: { !labelSet.contains($0) }) {
            throw KITTIError(file: "\(images)/\(imagesByID[id]!)", line: 0, message: "has no label file \(labels)/\(id).txt")
        }
        if let id = labelIDs.first(where: { imagesByID[$0] == nil }) {
            throw KITTIError(file: "\(labels)/\(id).txt", line: 0, message: "has no image \(id).jpg/.jpeg/.png in \(images)")
        }
        imageDirectory = images; labelDirectory = labels
        ids = imagesByID.keys.sorted()
        imagePaths = ids.map { "\(images)/\(imagesByID[$0]!)" }
        labelPaths = ids.map { "\(labels)/\($0).txt" }
    }

    public var count: Int { ids.count }

    /// The objects of frame `i`, checked against the image's size (a box outside it is an error).
    public func objects(_ i: Int, imageWidth: Int, imageHeight: Int) throws -> [KITTIObject] {
        let objects = try KITTI.read(labelPaths[i])
        let text = try String(contentsOfFile: labelPaths[i], encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .filter { !$0.element.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).isEmpty }.map { $0.offset + 1 }
        for (o, line) in zip(objects, lines) {
            // Half a pixel of slack: labels are often rounded outward.
            let (w, h) = (Float(imageWidth) + 0.5, Float(imageHeight) + 0.5)
            if o.x1 < -0.5 || o.y1 < -0.5 || o.x2 > w || o.y2 > h {
                throw KITTIError(file: labelPaths[i], line: line,
                                 message: "box (\(o.x1), \(o.y1), \(o.x2), \(o.y2)) lies outside the \(imageWidth)×\(imageHeight) image \(imagePaths[i])")
            }
        }
        return objects
    }
}

/// TAO's `target_class_mapping`: label names (lower-cased) to target classes; objects of unmapped
/// classes are dropped. Target classes keep the order given (DetectNet_v2's order comes from its
/// cost function's target classes).
public struct ClassMapping: Sendable, Equatable {
    public let mapping: [String: String]
    public let targets: [String]

    public init(_ mapping: [String: String], targets: [String]) {
        self.mapping = Dictionary(mapping.map { ($0.key.lowercased(), $0.value.lowercased()) }, uniquingKeysWith: { a, _ in a })
        self.targets = targets.map { $0.lowercased() }
    }

    /// The target class index of a label name, or nil when it is not mapped to a target.
    public func target(of name: String) -> Int? {
        mapping[name.lowercased()].flatMap { targets.firstIndex(of: $0) }
    }
}
