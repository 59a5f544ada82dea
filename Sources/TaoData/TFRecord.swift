import Foundation
import SwiftProtobuf

/// CRC-32C (Castagnoli), the checksum of TFRecord framing, and TensorFlow's masked form of it.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TensorFlow's mask, so that a CRC of data containing CRCs stays well distributed.
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// A TFRecord file that cannot be read, naming the file and the record.
public struct TFRecordError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// 0-based record index; nil when the file as a whole is the problem.
    public var record: Int?
    public var message: String
    public var description: String { record.map { "\(file): record \($0): \(message)" } ?? "\(file): \(message)" }
}

/// TFRecord framing: each record is its length (uint64, little-endian), the masked CRC-32C of
/// those 8 bytes, the data, and the masked CRC-32C of the data.
public enum TFRecord {
    /// One record, framed.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
        out += length
        out += withUnsafeBytes(of: CRC32C.masked(length).littleEndian, Array.init)
        out += data
        out += withUnsafeBytes(of: CRC32C.masked(data).littleEndian, Array.init)
        return out
    }

    /// Writes records to a file atomically (a temporary file, synced, then renamed).
    public static func write(_ records: [[UInt8]], to path: String) throws {
        var bytes: [UInt8] = []
        for r in records { bytes += frame(r) }
        let tmp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else {
            throw TFRecordError(file: path, record: nil, message: "cannot be written")
        }
        if let h = FileHandle(forUpdatingAtPath: tmp) { h.synchronizeFile(); try? h.close() }
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
    }

    /// Every record of a file, each checked against its checksums.
    public static func read(_ path: String) throws -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TFRecordError(file: path, record: nil, message: "cannot be read") }
        return try parse([UInt8](data), file: path)
    }

    /// Every record of a file's bytes; a truncated or corrupt record is an error naming it.
    public static func parse(_ bytes: [UInt8], file: String) throws -> [[UInt8]] {
        var records: [[UInt8]] = []
        var at = 0
        func u32(_ i: Int) -> UInt32 { bytes[i..<(i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        while at < bytes.count {
            let index = records.count
            func fail(_ m: String) -> TFRecordError { TFRecordError(file: file, record: index, message: m) }
            guard bytes.count - at >= 12 else { throw fail("truncated: \(bytes.count - at) bytes where a record header needs 12") }
            let lengthBytes = bytes[at..<(at + 8)]
            guard u32(at + 8) == CRC32C.masked(lengthBytes) else { throw fail("corrupt: the length's checksum does not match (not a TFRecord file, or damaged)") }
            let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let available = max(0, bytes.count - at - 16)
            guard length <= UInt64(available) else { throw fail("truncated: the record says \(length) bytes, the file has \(available) after its header") }
            let start = at + 12, end = start + Int(length)
            let record = Array(bytes[start..<end])
            guard u32(end) == CRC32C.masked(record) else { throw fail("corrupt: the data's checksum does not match") }
            records.append(record)
            at = end + 4
        }
        return records
    }
}

/// tf.train.Example in a typed, Swift form: features by name.
public enum ExampleFeature: Equatable, Sendable {
    case bytes([[UInt8]])
    case floats([Float])
    case ints([Int64])
}

extension ExampleFeature {
    public static func string(_ s: String) -> ExampleFeature { .bytes([Array(s.utf8)]) }
    public static func strings(_ s: [String]) -> ExampleFeature { .bytes(s.map { Array($0.utf8) }) }
}

public enum TFExample {
    /// Serializes features as a tf.train.Example.
    public static func encode(_ features: [String: ExampleFeature]) throws -> [UInt8] {
        var e = Tensorflow_Example()
        for (name, f) in features {
            var feature = Tensorflow_Feature()
            switch f {
            case .bytes(let v): feature.bytesList.value = v.map { Data($0) }
            case .floats(let v): feature.floatList.value = v
            case .ints(let v): feature.int64List.value = v
            }
            e.features.feature[name] = feature
        }
        return [UInt8](try e.serializedData())
    }

    /// The features of a serialized tf.train.Example.
    public static func decode(_ bytes: [UInt8]) throws -> [String: ExampleFeature] {
        let e = try Tensorflow_Example(serializedBytes: bytes)
        var out: [String: ExampleFeature] = [:]
        for (name, f) in e.features.feature {
            switch f.kind {
            case .bytesList(let b): out[name] = .bytes(b.value.map { [UInt8]($0) })
            case .floatList(let v): out[name] = .floats(v.value)
            case .int64List(let v): out[name] = .ints(v.value)
            case nil: out[name] = .bytes([])
            }
        }
        return out
    }
}
