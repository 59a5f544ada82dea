import XCTest
import Foundation
@testable import TaoGraph

final class CheckpointTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func model() throws -> Graph {
        var b = GraphBuilder()
        var x = b.input("image", [3, 8, 8])
        x = b.relu(b.batchNorm(b.conv2d(x, "conv1", out: 4, kernel: 3, groups: 1), "bn1"), "relu")
        x = b.node("up", .upsample(Upsample(.bilinear, scale: [2, 2])), [x])
        x = b.activation(b.node("pad", .pad2d(Padding2D(top: 1, left: 0, bottom: 0, right: 1)), [x]), .leakyRelu(alpha: 0.2), "lr")
        let y = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 3)
        return try b.build(outputs: [y])
    }

    func testRoundTripKeepsGraphParametersAndMetadata() throws {
        let g = try model()
        let store = ParameterStore(graph: g, seed: 9)
        let path = dir.appendingPathComponent("m.tao").path
        try Checkpoint(graph: g, parameters: store, metadata: ["classes": "a,b,c"], extras: ["optimizer.velocity.0": [1, 2.5]]).write(to: path)
        let back = try Checkpoint.read(from: path)
        XCTAssertEqual(back.graph.nodes, g.nodes)
        XCTAssertEqual(back.graph.parameters, g.parameters)
        XCTAssertEqual(back.metadata, ["classes": "a,b,c"])
        XCTAssertEqual(back.extras, ["optimizer.velocity.0": [1, 2.5]])
        for i in 0..<store.count { XCTAssertEqual(back.parameters[i].scalars, store[i].scalars, g.parameters[i].name) }
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.contains(".tmp") }, "no temporary left behind")
    }

    /// Reads the file with an independent safetensors parser: header length, JSON, offsets, little-endian floats.
    func testFileIsPlainSafetensors() throws {
        let g = try model()
        let store = ParameterStore(graph: g, seed: 2)
        let path = dir.appendingPathComponent("m.safetensors").path
        try Checkpoint(graph: g, parameters: store).write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[i]) << (8 * UInt64(i)) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n)))) as! [String: Any]
        let fc = header["fc.weight"] as! [String: Any]
        XCTAssertEqual(fc["shape"] as! [Int], [3, 4])
        let off = (fc["data_offsets"] as! [Int])[0] + 8 + Int(n)
        let bits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[off + $1]) << (8 * UInt32($1)) }
        XCTAssertEqual(Float(bitPattern: bits), store["fc.weight"]!.scalars[0])
    }

    func testCorruptFilesAreClearErrors() throws {
        let g = try model()
        let path = dir.appendingPathComponent("m.tao").path
        try Checkpoint(graph: g, parameters: ParameterStore(graph: g, seed: 1)).write(to: path)
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir.appendingPathComponent("cut.tao").path
        try full.prefix(full.count - 10).write(to: URL(fileURLWithPath: cut))
        XCTAssertThrowsError(try Checkpoint.read(from: cut)) { XCTAssertTrue("\($0)".contains("truncated") && "\($0)".contains("cut.tao"), "\($0)") }
        let text = dir.appendingPathComponent("notes.txt").path
        try Data("this is not a model at all, just some text".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try Checkpoint.read(from: text)) { XCTAssertTrue("\($0)".contains("not a tao checkpoint"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.read(from: dir.appendingPathComponent("missing.tao").path)) { XCTAssertTrue("\($0)".contains("missing"), "\($0)") }
    }

    func testAtomicWriteReplacesOnlyWhenComplete() throws {
        let path = dir.appendingPathComponent("f.bin").path
        try AtomicFile.write(Data([1, 2, 3]), to: path)
        try AtomicFile.write(Data([4, 5]), to: path)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data([4, 5]))
    }
}
