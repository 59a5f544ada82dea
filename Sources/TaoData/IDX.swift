import CZlib
import Foundation
import TaoTensor

/// A problem reading a data file, naming the file.
public struct DataError: Error, CustomStringConvertible {
    public var file: String
    public var message: String
    public init(_ file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// Reads whole files, transparently gunzipping `.gz` (zlib's gzread also passes plain files through).
enum FileBytes {
    static func read(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(path, "no such file") }
        guard let f = gzopen(path, "rb") else { throw DataError(path, "cannot open") }
        defer { gzclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(f, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw DataError(path, "corrupt compressed data") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }
}

/// The IDX format of MNIST and Fashion-MNIST: a magic number giving the element type and rank,
/// big-endian dimension sizes, then the raw elements.
public struct IDXFile {
    public var dims: [Int]
    public var bytes: [UInt8]

    public init(path: String) throws {
        let b = try FileBytes.read(path)
        guard b.count >= 4, b[0] == 0, b[1] == 0 else { throw DataError(path, "not an IDX file (bad magic number)") }
        guard b[2] == 0x08 else { throw DataError(path, "IDX element type 0x\(String(b[2], radix: 16)) is not unsigned bytes") }
        let rank = Int(b[3])
        guard rank >= 1, b.count >= 4 + 4 * rank else { throw DataError(path, "truncated IDX header") }
        dims = (0..<rank).map { i in (0..<4).reduce(0) { $0 << 8 | Int(b[4 + 4 * i + $1]) } }
        let count = dims.reduce(1, *)
        let start = 4 + 4 * rank
        guard b.count == start + count else {
            throw DataError(path, "IDX header promises \(count) bytes of data, file has \(b.count - start)")
        }
        bytes = Array(b[start...])
    }
}

/// An in-memory labelled image set (grayscale images scaled to [0, 1]).
public struct LabelledImages {
    public var images: [Float]          // N × C × H × W
    public var labels: [Int]
    public var shape: Shape             // per image: [C, H, W]
    public var classes: Int
    public var count: Int { labels.count }

    /// Loads an IDX image/label pair (e.g. Fashion-MNIST's `train-images-idx3-ubyte.gz`).
    public init(idxImages: String, idxLabels: String) throws {
        let img = try IDXFile(path: idxImages), lab = try IDXFile(path: idxLabels)
        guard img.dims.count == 3 else { throw DataError(idxImages, "expected N×H×W images, got dims \(img.dims)") }
        guard lab.dims.count == 1, lab.dims[0] == img.dims[0] else {
            throw DataError(idxLabels, "has \(lab.dims.first ?? 0) labels for \(img.dims[0]) images in \(idxImages)")
        }
        images = img.bytes.map { Float($0) / 255 }
        labels = lab.bytes.map(Int.init)
        shape = [1, img.dims[1], img.dims[2]]
        classes = (labels.max() ?? 0) + 1
    }
}
