import XCTest
import TaoGraph
@testable import TaoModels

/// TAO's YOLO backbones (nvidia_tao_tf1/cv/yolo_v3|yolo_v4/models/base_model.py). TAO picks the
/// maps its heads read by position in the Keras layer list (`base_model.layers[-39]`); the expected
/// maps below were worked out from those positions and TAO's templates (layers per unit: conv, batch
/// norm, activation; Keras orders a model's layers by depth, so a block with branches still takes
/// its own run of positions), independently of the builders.
final class YOLOBackboneTests: XCTestCase {
    /// (name, channels, stride) of the maps a backbone returns.
    func maps(_ f: [FeatureMap]) -> [String] { f.map { "\($0.name) \($0.channels) s\($0.stride)" } }

    func testBackbonesReturnTheMapsTAOsHeadsRead() throws {
        let s: Shape = [3, 64, 96]
        func run(_ body: (inout GraphBuilder, ValueID) throws -> [FeatureMap]) rethrows -> [String] {
            var b = GraphBuilder()
            let image = b.input("image", s)
            let f = try body(&b, image)
            for m in f { XCTAssertEqual(b.shape(m.value).dims, [m.channels, 64 / m.stride, 96 / m.stride], m.name) }
            return maps(f)
        }
        // VGG without pooling: block 2–5 stride with their first convolution, so the end is stride 16;
        // layers[-10] / [-19] of VGG-16 are the last activations of blocks 4 and 3 (3 layers a conv).
        for depth in [16, 19] {
            var v = VGGConfig(depth: depth, batchNorm: true, template: .tao)
            v.style = ConvStyle(activation: .relu)
            XCTAssertEqual(try run { try VGG.taoBackbone(&$0, $1, v) },
                           ["block1 64 s1", "block2 128 s2", "block3 256 s4", "block4 512 s8", "block5 512 s16"])
        }
        // DarkNet / CSPDarkNet: TAO's b3 / b4 stage outputs (b4_conv5, b4_add7, b4_final_trans) and the stride-32 end.
        for v in [DarkNetConfig.Variant.darknet, .cspDarknet] {
            for depth in [19, 53] {
                let f = try run { try DarkNet.backbone(&$0, $1, DarkNetConfig(v, depth: depth, inputShape: s)) }
                XCTAssertEqual(Array(f.suffix(3)), ["b4 512 s16", "b5 1024 s32", "last 1024 s32"], "\(v) \(depth)")
                XCTAssertTrue(f.contains("b3 256 s8"), "\(v) \(depth)")
            }
        }
        // MobileNet V1 at stride 16 (7 layers a unit): layers[-39] is conv_dw_6's activation, [-53] conv_dw_4's.
        XCTAssertEqual(run { MobileNetV1.backbone(&$0, $1, stride: 16, activation: .relu) },
                       ["conv_dw_4_relu 128 s8", "conv_dw_6_relu 256 s16", "last 512 s16"])
        // MobileNet V2 at stride 16 with all projections (9 layers a block, 11 with the projected shortcut):
        // layers[-32] is block_9_add, [-74] block_5_add.
        XCTAssertEqual(run { MobileNetV2.taoBackbone(&$0, $1, stride: 16, allProjections: true, activation: .relu) },
                       ["block_5_add 32 s8", "block_9_add 64 s16", "last 96 s16"])
        // SqueezeNet (7 layers a fire module, pool8 between): layers[-9] is fire8's concatenation.
        XCTAssertEqual(run { SqueezeNet.backbone(&$0, $1) }, ["fire8 512 s8", "last 512 s16"])
        // GoogLeNet without its head has no pool after 4e (20 layers an inception block):
        // layers[-21] is inception 5a's output, [-41] 4e's.
        XCTAssertEqual(run { GoogLeNet.backbone(&$0, $1, GoogLeNetConfig(inputShape: s), poolAfter4e: false) },
                       ["inception_4e 832 s16", "inception_5a 832 s16", "last 1024 s16"])
        XCTAssertEqual(try run { try EfficientNet.backbone(&$0, $1, EfficientNetConfig(variant: 0, inputShape: s, style: ConvStyle(activation: .relu))) },
                       ["block5a_expand_activation 480 s16", "block6a_expand_activation 672 s16", "last 1280 s32"])
    }

    /// TAO's MobileNet V2 (stride 16, all projections) counted from its block table: the builder's
    /// parameters equal the sum of each layer's weights and batch norms.
    func testTAOMobileNetV2ParameterCountFromItsTable() throws {
        var b = GraphBuilder()
        let f = MobileNetV2.taoBackbone(&b, b.input("image", [3, 64, 64]), stride: 16, allProjections: true, activation: .relu)
        let g = try b.build(outputs: [f.last!.value])
        func bn(_ c: Int) -> Int { 2 * c }   // trainable scale and shift
        var expected = 3 * 3 * 3 * 32 + bn(32), cin = 32
        for (id, (c, stride, t)) in [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6),
                                     (96, 1, 6), (96, 1, 6), (96, 1, 6)].enumerated() {
            let hidden = cin * t
            if id > 0 { expected += cin * hidden + bn(hidden) }
            expected += 9 * hidden + bn(hidden) + hidden * c + bn(c)
            if cin == c && stride == 1 { expected += cin * cin }
            cin = c
        }
        XCTAssertEqual(g.trainableParameterCount, expected)
    }

    /// Every backbone under YOLOv3 and YOLOv4: the heads sit at the strides TAO's layout gives them
    /// (VGG's at 16, 8, 4), carry anchors × (5 + classes) channels, and the neck's layers are TAO's.
    func testEveryBackboneBuildsYOLOv3AndYOLOv4Heads() throws {
        let backbones: [YOLOModelConfig.Backbone] = [.resnet(depth: 18), .resnet(depth: 50), .vgg(depth: 16), .darknet(depth: 19), .darknet(depth: 53), .cspDarknet(depth: 19),
                                                     .mobilenetV1, .mobilenetV2, .squeezenet, .googlenet, .efficientnetB0]
        for version in [YOLOModelConfig.Version.v3, .v4] {
            for backbone in backbones {
                let cfg = YOLOModelConfig(version: version, backbone: backbone, inputShape: [3, 64, 96], classes: 2, anchorsPerHead: [3, 2, 3])
                if version == .v3, case .cspDarknet = backbone {
                    XCTAssertThrowsError(try YOLO.build(cfg)); continue
                }
                let g = try YOLO.build(cfg)
                let strides = cfg.headStrides
                XCTAssertEqual(g.outputs.map { g.shape(of: $0).dims }, zip([3, 2, 3], strides).map { [$0 * 7, 64 / $1, 96 / $1] }, "\(version) \(backbone)")
                let names = Set(g.nodes.map(\.name))
                let expand = [YOLOModelConfig.Backbone.resnet(depth: 18), .resnet(depth: 50), .mobilenetV1, .mobilenetV2, .squeezenet, .googlenet].contains(backbone)
                XCTAssertEqual(names.contains("yolo_expand_conv1.conv"), expand, "\(version) \(backbone)")
                XCTAssertEqual(names.contains("yolo_spp_conv.conv"), version == .v4 && backbone != .efficientnetB0, "\(version) \(backbone)")
                XCTAssertEqual(names.contains("md_leaky_conv512.conv"), version == .v4)
            }
        }
        // ResNet-50 (12 Keras layers a bottleneck block with all projections): layers[-7] is the last
        // block's 3×3 activation (512 channels, stride 16), layers[-43] stage 3's (256, upsampled to 8);
        // the strided expand convolution is 1024 wide.
        let r50 = try YOLO.build(YOLOModelConfig(version: .v3, backbone: .resnet(depth: 50), inputShape: [3, 64, 96], classes: 1, anchorsPerHead: [3, 3, 3]))
        let conv = { (name: String) in r50.parameters.first { $0.name == name }?.shape.dims }
        XCTAssertEqual(conv("yolo_expand_conv1.conv.weight"), [1024, 2048, 3, 3])
        XCTAssertEqual(conv("yolo_conv1_1.conv.weight"), [512, 1024, 1, 1])
        XCTAssertEqual(conv("yolo_conv3_1.conv.weight"), [256, 256 + 512, 1, 1], "upsampled 256 + layer4.2.relu2's 512")
        XCTAssertEqual(conv("yolo_conv5_1.conv.weight"), [128, 128 + 256, 1, 1], "upsampled 128 + layer3.5.relu2's 256")
        // TAO's map_size per backbone: the width of yolo_conv2 (the 1×1 before the first upsampling).
        for (backbone, width) in [(YOLOModelConfig.Backbone.mobilenetV2, 32), (.squeezenet, 64), (.googlenet, 256), (.mobilenetV1, 128), (.resnet(depth: 101), 256)] {
            let g = try YOLO.build(YOLOModelConfig(version: .v4, backbone: backbone, inputShape: [3, 64, 96], classes: 1, anchorsPerHead: [3, 3, 3]))
            let conv = try XCTUnwrap(g.parameters.first { $0.name == "yolo_conv2.conv.weight" })
            XCTAssertEqual(conv.shape[0], width, "\(backbone)")
        }
        XCTAssertThrowsError(try YOLO.build(YOLOModelConfig(version: .v4Tiny, backbone: .resnet(depth: 18), inputShape: [3, 64, 96], classes: 1, anchorsPerHead: [3, 3])))
        XCTAssertThrowsError(try YOLO.build(YOLOModelConfig(version: .v4, backbone: .cspDarknetTiny, inputShape: [3, 64, 96], classes: 1, anchorsPerHead: [3, 3, 3])))
    }
}
