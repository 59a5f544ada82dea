import Foundation

/// A classification dataset laid out as TAO expects: one subfolder per class under `root`,
/// holding that class's JPEG and PNG images. Classes are the sorted folder names.
public struct ImageFolder: Sendable {
    public let root: String
    public let classes: [String]
    public let paths: [String]
    public let labels: [Int]
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Scans `root`. With `expectedClasses` (the training set's), the folders must be exactly those.
    public init(root: String, expectedClasses: [String]? = nil) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DataError(root, "no such folder (expected one subfolder of images per class)")
        }
        let entries = try fm.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
        let folders = entries.filter { var d: ObjCBool = false; return fm.fileExists(atPath: "\(root)/\($0)", isDirectory: &d) && d.boolValue }
        guard !folders.isEmpty else { throw DataError(root, "has no class subfolders (expected e.g. \(root)/cat/1.jpg, \(root)/dog/2.jpg)") }
        if let expected = expectedClasses {
            let missing = expected.filter { !folders.contains($0) }, extra = folders.filter { !expected.contains($0) }
            guard missing.isEmpty && extra.isEmpty else {
                var parts: [String] = []
                if !missing.isEmpty { parts.append("missing class folders \(missing.joined(separator: ", "))") }
                if !extra.isEmpty { parts.append("class folders not in the training set: \(extra.joined(separator: ", "))") }
                throw DataError(root, parts.joined(separator: "; "))
            }
        }
        var paths: [String] = [], labels: [Int] = []
        for (label, name) in folders.enumerated() {
            let dir = "\(root)/\(name)"
            let files = try fm.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
            var count = 0
            for f in files {
                let path = "\(dir)/\(f)"
                var d: ObjCBool = false
                _ = fm.fileExists(atPath: path, isDirectory: &d)
                if d.boolValue { throw DataError(path, "nested folders are not supported inside a class folder") }
                guard Self.extensions.contains((f as NSString).pathExtension.lowercased()) else {
                    throw DataError(path, "not a .jpg, .jpeg or .png file; move it out of the dataset")
                }
                paths.append(path); labels.append(label); count += 1
            }
            guard count > 0 else { throw DataError(dir, "class folder '\(name)' has no images") }
        }
        self.root = root
        classes = folders
        self.paths = paths
        self.labels = labels
    }

    public var count: Int { paths.count }

    /// Unlabelled images (for inference): every label is 0 and there is one placeholder class.
    public init(paths: [String]) {
        root = ""
        classes = ["?"]
        self.paths = paths
        labels = [Int](repeating: 0, count: paths.count)
    }
}
