import XCTest
@testable import TaoGraph

final class GraphTests: XCTestCase {
    func testConvWithWrongInputChannelsNamesNodeAndBothShapes() {
        var b = GraphBuilder()
        let x = b.input("x", [3, 8, 8])
        let w = b.parameter("conv.weight", [16, 4, 3, 3], role: .convWeight)
        let y = b.node("conv", .conv2d(Conv2D(outChannels: 16, kernel: [3, 3], padding: Padding2D(1))), [x, w])
        XCTAssertThrowsError(try b.build(outputs: [y])) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("'conv'") && m.contains("[3,8,8]") && m.contains("[16,4,3,3]") && m.contains("[16,3,3,3]"), m)
        }
    }

    func testCycleIsReportedWithTheNodesOnIt() {
        let nodes = [
            Node(name: "a", op: .activation(.relu), inputs: [ValueID(2)], output: ValueID(1)),
            Node(name: "b", op: .activation(.relu), inputs: [ValueID(1)], output: ValueID(2)),
        ]
        XCTAssertThrowsError(try Graph(inputs: [("x", [4])], parameters: [], nodes: nodes, outputs: [ValueID(2)])) { e in
            guard case GraphError.cycle(let names) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(Set(names), ["a", "b"])
            XCTAssertTrue("\(e)".contains("cycle"))
        }
    }

    func testMissingInputNamesTheNode() {
        let nodes = [Node(name: "relu", op: .activation(.relu), inputs: [ValueID(7)], output: ValueID(1))]
        XCTAssertThrowsError(try Graph(inputs: [("x", [4])], parameters: [], nodes: nodes, outputs: [ValueID(1)])) { e in
            XCTAssertEqual(e as? GraphError, .undefinedValue(node: "relu", value: ValueID(7)))
            XCTAssertTrue("\(e)".contains("'relu'"))
        }
    }

    func testNodesGivenOutOfOrderAreSorted() throws {
        let nodes = [
            Node(name: "second", op: .activation(.tanh), inputs: [ValueID(1)], output: ValueID(2)),
            Node(name: "first", op: .activation(.relu), inputs: [ValueID(0)], output: ValueID(1)),
        ]
        let g = try Graph(inputs: [("x", [4])], parameters: [], nodes: nodes, outputs: [ValueID(2)])
        XCTAssertEqual(g.nodes.map(\.name), ["first", "second"])
    }

    func testDuplicateNamesAreRejected() {
        var b = GraphBuilder()
        let x = b.input("x", [4])
        let y = b.relu(b.relu(x, "r"), "r")
        XCTAssertThrowsError(try b.build(outputs: [y])) { e in XCTAssertEqual(e as? GraphError, .duplicateName("r")) }
    }

    func testShapeRules() throws {
        XCTAssertEqual(try Op.conv2d(Conv2D(outChannels: 8, kernel: [3, 3], stride: [2, 2], padding: Padding2D(1)))
            .outputShape([[4, 9, 11], [8, 4, 3, 3]]), [8, 5, 6])
        XCTAssertEqual(try Op.pool2d(Pool2D(.max, kernel: [3, 3], stride: [2, 2], padding: Padding2D(1))).outputShape([[4, 112, 112]]), [4, 56, 56])
        XCTAssertEqual(try Op.concat(axis: 1).outputShape([[3, 4, 4], [5, 4, 4]]), [8, 4, 4])
        XCTAssertEqual(try Op.mul.outputShape([[8, 5, 5], [8, 1, 1]]), [8, 5, 5])
        XCTAssertThrowsError(try Op.add.outputShape([[8, 5, 5], [4, 5, 5]]))
        XCTAssertThrowsError(try Op.dense(Dense(outFeatures: 3)).outputShape([[4, 2, 2], [3, 16], [3]]))
        XCTAssertThrowsError(try Op.slice(Slice(axis: 1, start: 2, end: 9)).outputShape([[8, 2, 2]]))
        XCTAssertThrowsError(try Op.reshape([5]).outputShape([[2, 2]]))
    }

    func testParameterStoreKeepsStorageStableAndCountsVersions() throws {
        var b = GraphBuilder()
        let y = b.dense(b.input("x", [4]), "fc", out: 2)
        let g = try b.build(outputs: [y])
        let s = ParameterStore(graph: g, seed: 1)
        let i = s.index(of: "fc.weight")!
        let p = s.pointer(i)
        let v = s.version
        s[i] = Tensor(repeating: 0.5, shape: [2, 4])
        XCTAssertEqual(s.pointer(i), p)
        XCTAssertEqual(p[3], 0.5)
        XCTAssertEqual(s.version, v + 1)
    }
}
