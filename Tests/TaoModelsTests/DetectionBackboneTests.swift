import XCTest
import TaoGraph
@testable import TaoModels
import TaoRuntime

final class DetectionBackboneTests: XCTestCase {
    /// TAO's detection ResNet: stride 16 without use_pooling (the last stage keeps its resolution),
    /// stride 32 with it; feature maps named block_1 … block_4.
    func testDetectionResNetStridesFollowUsePooling() throws {
        for (pooling, strides) in [(false, [4, 8, 16, 16]), (true, [4, 8, 16, 32])] {
            var b = GraphBuilder()
            let cfg = ResNetConfig(depth: 18, classes: 1, inputShape: [3, 64, 96], stemMaxPool: pooling)
            let f = try ResNet.detectionBackbone(&b, b.input("image", cfg.inputShape), cfg)
            XCTAssertEqual(f.map(\.name), ["block_1", "block_2", "block_3", "block_4"])
            XCTAssertEqual(f.map(\.stride), strides, "use_pooling \(pooling)")
            XCTAssertEqual(f.map(\.channels), [64, 128, 256, 512])
            for m in f { XCTAssertEqual(b.shape(m.value).dims, [m.channels, 64 / m.stride, 96 / m.stride], m.name) }
        }
    }

    /// DetectNet_v2 on TAO's KITTI input (1248×384): a 78×24 grid of coverage per class and four box
    /// distances per class; the backbone's parameters are ResNet-18's without its classifier.
    func testDetectNetV2OutputsTheGridAndItsParameters() throws {
        let cfg = DetectNetV2ModelConfig(backbone: ResNetConfig(depth: 18, classes: 1, inputShape: [3, 384, 1248], stemMaxPool: false), classes: 3)
        let g = try DetectNetV2.build(cfg)
        XCTAssertEqual(g.outputs.map { g.shape(of: $0).dims }, [[3, 24, 78], [12, 24, 78]])
        let classifier = try ResNet.build(ResNetConfig(depth: 18, classes: 1000))
        let heads = (512 + 1) * 3 + (512 + 1) * 12
        let projection = 64 * 64 + 2 * 64   // block_1 strides 2 in place of the max pool, so its shortcut is a 1×1 convolution + batch norm
        XCTAssertEqual(g.trainableParameterCount, classifier.trainableParameterCount - (512 * 1000 + 1000) + heads + projection)
        XCTAssertTrue(g.parameters.contains { $0.name == "layer1.0.downsample.0.weight" })
        XCTAssertTrue(g.parameters.contains { $0.name == "output_cov.weight" })
        XCTAssertThrowsError(try DetectNetV2.build(DetectNetV2ModelConfig(backbone: ResNetConfig(depth: 18, inputShape: [3, 100, 160], stemMaxPool: false), classes: 1)))
        XCTAssertThrowsError(try DetectNetV2.build(DetectNetV2ModelConfig(backbone: ResNetConfig(depth: 18, inputShape: [3, 96, 160], stemMaxPool: true), classes: 1)))
    }
}
