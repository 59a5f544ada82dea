import XCTest
import Foundation
import TaoGraph
import TaoRuntime
@testable import TaoONNX

/// ONNX's own backend node tests (Debian `libonnx-testdata`: `data/node/test_*/model.onnx` with
/// input and expected-output .pb files) for every op the importer claims. Each test either imports
/// and runs within tolerance of ONNX's expected outputs, or is refused at import with an error that
/// names what it cannot take; a wrong answer is a failure. The first input is the batch ([N, …]);
/// the others are bound as constants, with their test values (as a model's initializers would be).
/// Prints the pass count per op (the README's table).
final class ONNXNodeConformanceTests: XCTestCase {
    static let root = "/usr/share/libonnx-testdata/data/node"

    enum Outcome { case passed, refused(String), wrong(String) }

    func tensor(_ path: String) throws -> Onnx_TensorProto {
        try Onnx_TensorProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func floats(_ t: Onnx_TensorProto) -> [Float]? {
        guard t.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) else { return nil }
        return t.rawData.isEmpty ? t.floatData : t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func integers(_ t: Onnx_TensorProto) -> [Float]? {
        guard t.dataType == Int32(Onnx_TensorProto.DataType.int64.rawValue) else { return nil }
        let v: [Int64] = t.rawData.isEmpty ? t.int64Data : t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        return v.map { Float($0) }
    }

    func run(_ dir: String) throws -> Outcome {
        var model = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: "\(dir)/model.onnx")))
        let set = "\(dir)/test_data_set_0"
        let initialized = Set(model.graph.initializer.map(\.name))
        let inputs = model.graph.input.filter { !initialized.contains($0.name) }
        guard let first = inputs.first else { return .refused("no graph input") }
        let x = try tensor("\(set)/input_0.pb")
        guard let xs = floats(x), x.dims.count >= 2 else { return .refused("the first input is not a float tensor of rank ≥ 2") }
        for (k, input) in inputs.enumerated().dropFirst() {
            var t = try tensor("\(set)/input_\(k).pb")
            t.name = input.name
            model.graph.initializer.append(t)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("node-\(UUID().uuidString).onnx").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.serializedData().write(to: URL(fileURLWithPath: path))
        let imported: ONNXImport.Result
        do { imported = try ONNXImport.read(path, inputShape: x.dims.dropFirst().map { Int($0) }, logits: false) } catch {
            return .refused("\(error)")
        }
        _ = first
        let g = imported.graph
        let exec: Executor
        do { exec = try Executor(graph: g, batch: Int(x.dims[0]), mode: .inference, parameters: imported.parameters) } catch {
            return .refused("planning: \(error)")
        }
        try exec.setInput(0, Tensor(shape: Shape(x.dims.map { Int($0) }), values: xs))
        exec.forward()
        // The file's outputs: the network's, and what the post-network steps (ArgMax, TopK, NMS) make of them.
        let network = g.outputs.indices.map { k in ONNXArray(dims: exec.output(k).shape.dims, values: exec.output(k).scalars) }
        let produced = try imported.fileOutputs(network)
        for k in 0..<model.graph.output.count {
            let want = try tensor("\(set)/output_\(k).pb")
            guard let w = floats(want) ?? integers(want) else { return .refused("output \(k) is neither float nor int64") }
            guard k < produced.count else { return .wrong("output \(k) missing") }
            let got = produced[k].array
            guard got.dims == want.dims.map({ Int($0) }) else { return .wrong("output \(k) has shape \(got.dims), ONNX's \(want.dims)") }
            guard got.integer == (floats(want) == nil) else { return .wrong("output \(k): integer \(got.integer), ONNX's type \(want.dataType)") }
            for (a, b) in zip(got.values, w) where !(abs(a - b) <= 1e-4 + 1e-3 * abs(b)) && !(a.isNaN && b.isNaN) {
                return .wrong("output \(k): \(a) where ONNX has \(b)")
            }
        }
        return .passed
    }

    func testNodeTestsOfTheClaimedOps() throws {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: Self.root) else {
            return XCTFail("\(Self.root) is missing: scripts/install-deps.sh installs Debian's libonnx-testdata")
        }
        var table: [String: (passed: Int, total: Int)] = [:]
        var refusedClaimed: [String] = []
        for name in names.sorted() where name.hasPrefix("test_") {
            let dir = "\(Self.root)/\(name)"
            let model = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: "\(dir)/model.onnx")))
            let ops = Set(model.graph.node.map(\.opType))
            let op = model.graph.node.last?.opType ?? "?"
            guard ops.isSubset(of: ONNXImport.Reader.claimed) else {
                // Not claimed: the import must say which op it cannot take.
                let path = "\(dir)/model.onnx"
                XCTAssertThrowsError(try ONNXImport.read(path, inputShape: nil, logits: false), name) { e in
                    let unsupported = ops.subtracting(ONNXImport.Reader.claimed)
                    XCTAssertTrue(unsupported.allSatisfy { "\(e)".contains($0) }, "\(name): \(e)")
                }
                continue
            }
            var entry = table[op] ?? (0, 0)
            entry.total += 1
            switch try run(dir) {
            case .passed: entry.passed += 1
            case .refused(let why): refusedClaimed.append("\(name): \(why)")
            case .wrong(let what): XCTFail("\(name): a wrong answer: \(what)")
            }
            table[op] = entry
        }
        print("ONNX node tests of the ops the importer claims (passed / tests):")
        for (op, e) in table.sorted(by: { $0.key < $1.key }) { print("  \(op): \(e.passed) / \(e.total)") }
        print("refused with an error (\(refusedClaimed.count)):")
        for r in refusedClaimed { print("  " + r.prefix(240)) }
        let passed = table.values.reduce(0) { $0 + $1.passed }, total = table.values.reduce(0) { $0 + $1.total }
        print("passed \(passed) of \(total) node tests of the claimed ops")
        // What passes today keeps passing (a change that turns a pass into a refusal shows here).
        XCTAssertGreaterThanOrEqual(passed, 224)
    }
}
