import XCTest
import TaoGraph
import TaoModels
import TaoRuntime

final class ZooTests: XCTestCase {
    /// Parameter counts and multiply-accumulates as torchvision reports them for 1000 classes at 224².
    func testResNet18MatchesTorchvisionParameterCountAndMACs() throws {
        let g = try Zoo.build("resnet18", classes: 1000, inputShape: [3, 224, 224])
        XCTAssertEqual(g.trainableParameterCount, 11_689_512)
        XCTAssertEqual(Double(g.macsPerSample) / 1e9, 1.814, accuracy: 0.001)
        XCTAssertNotNil(g.parameterIndex(named: "layer2.0.downsample.0.weight"))
    }

    func testMobileNetV2MatchesTorchvisionParameterCountAndMACs() throws {
        let g = try Zoo.build("mobilenet_v2", classes: 1000, inputShape: [3, 224, 224])
        XCTAssertEqual(g.trainableParameterCount, 3_504_872)
        XCTAssertEqual(Double(g.macsPerSample) / 1e9, 0.301, accuracy: 0.002)
        XCTAssertNotNil(g.parameterIndex(named: "features.17.conv.2.weight"))
    }

    func testResNet50AndDeeperParameterCounts() throws {
        XCTAssertEqual(try Zoo.build("resnet34", classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, 21_797_672)
        XCTAssertEqual(try Zoo.build("resnet50", classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, 25_557_032)
        XCTAssertEqual(try Zoo.build("resnet101", classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, 44_549_160)
    }

    func testUnknownModelNamesTheAlternatives() {
        XCTAssertThrowsError(try Zoo.build("resnet19", classes: 10, inputShape: [3, 32, 32])) { e in
            XCTAssertTrue("\(e)".contains("resnet18"), "\(e)")
        }
    }

    /// Each model runs forward and backward at a small resolution and gives finite, non-zero gradients everywhere.
    func testModelsTrainForwardAndBackward() throws {
        for name in ["resnet18", "mobilenet_v2", "resnet50"] {
            let g = try Zoo.build(name, classes: 10, inputShape: [3, 64, 64])
            let store = ParameterStore(graph: g, seed: 3)
            let exec = try Executor(graph: g, batch: 2, mode: .training, parameters: store)
            var rng = SplitMix64(seed: 1)
            try exec.setInput(0, Tensor.randomNormal([2, 3, 64, 64], rng: &rng))
            exec.forward()
            let y = exec.output()
            XCTAssertEqual(y.shape, [2, 10])
            XCTAssertTrue(y.scalars.allSatisfy(\.isFinite), name)
            for i in 0..<20 { exec.outputGradientPointer()[i] = Float(i % 3) - 1 }
            exec.backward()
            for (i, p) in g.parameters.enumerated() where p.role.isTrainable {
                let gp = exec.parameterGradient(p.name)!
                XCTAssertTrue(gp.scalars.allSatisfy(\.isFinite), "\(name) \(p.name)")
                XCTAssertGreaterThan(gp.scalars.map(abs).max()!, 0, "\(name) \(p.name) got no gradient")
                _ = i
            }
        }
    }
}
