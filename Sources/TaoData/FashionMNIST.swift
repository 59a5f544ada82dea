import Foundation
import TaoTensor

/// Turns Debian's Fashion-MNIST IDX files into TAO's image-folder layout:
/// `out/{train,val,test}/<class>/<n>.png`, the validation images drawn from the training set.
public enum FashionMNIST {
    public static let classNames = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
    public static let defaultSource = "/usr/share/datasets/fashion-mnist"

    /// Writes the three splits; returns their image counts. `valCount` images per class move from train to val.
    @discardableResult
    public static func convert(source: String = defaultSource, output: String, valPerClass: Int = 500, seed: UInt64 = 0,
                               limitPerClass: Int? = nil) throws -> (train: Int, val: Int, test: Int) {
        let train = try LabelledImages(idxImages: "\(source)/train-images-idx3-ubyte.gz", idxLabels: "\(source)/train-labels-idx1-ubyte.gz")
        let test = try LabelledImages(idxImages: "\(source)/t10k-images-idx3-ubyte.gz", idxLabels: "\(source)/t10k-labels-idx1-ubyte.gz")
        guard train.classes == classNames.count else { throw DataError(source, "expected \(classNames.count) classes, found \(train.classes)") }
        var rng = SplitMix64(seed: seed)
        var byClass = [[Int]](repeating: [], count: classNames.count)
        for (i, l) in train.labels.enumerated() { byClass[l].append(i) }
        var counts = (train: 0, val: 0, test: 0)
        for c in 0..<classNames.count {
            var idx = byClass[c]
            for i in stride(from: idx.count - 1, to: 0, by: -1) { idx.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let val = idx.prefix(valPerClass), rest = idx.dropFirst(valPerClass)
            counts.val += try write(train, Array(val.prefix(limitPerClass ?? val.count)), to: "\(output)/val/\(classNames[c])")
            counts.train += try write(train, Array(rest.prefix(limitPerClass ?? rest.count)), to: "\(output)/train/\(classNames[c])")
            let t = test.labels.indices.filter { test.labels[$0] == c }
            counts.test += try write(test, Array(t.prefix(limitPerClass ?? t.count)), to: "\(output)/test/\(classNames[c])")
        }
        return counts
    }

    private static func write(_ set: LabelledImages, _ indices: [Int], to dir: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (h, w) = (set.shape[1], set.shape[2])
        for i in indices {
            let px = (0..<(h * w)).map { UInt8((set.images[i * h * w + $0] * 255).rounded()) }
            let png = try ImageCodec.encodePNG(Image(width: w, height: h, channels: 1, pixels: px))
            let path = "\(dir)/\(i).png"
            guard FileManager.default.createFile(atPath: path, contents: Data(png)) else { throw DataError(path, "cannot write") }
        }
        return indices.count
    }
}
