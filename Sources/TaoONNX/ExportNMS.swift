import Foundation
import TaoGraph

/// How a YOLO model's heads decode (TAO's YOLO heads), for the post-processing export appends.
public struct YOLODecodingGraph: Sendable {
    public struct Head: Sendable {
        /// The head's output: [N, anchors · (5 + classes), gridHeight, gridWidth], per anchor t_y, t_x, t_h, t_w, objectness, classes.
        public var output: String
        public var gridWidth: Int, gridHeight: Int
        /// (width, height) per anchor, in input pixels.
        public var anchors: [(w: Double, h: Double)]
        public var xyScale: Double
        public init(output: String, gridWidth: Int, gridHeight: Int, anchors: [(w: Double, h: Double)], xyScale: Double) {
            self.output = output; self.gridWidth = gridWidth; self.gridHeight = gridHeight; self.anchors = anchors; self.xyScale = xyScale
        }
    }
    public var heads: [Head]
    public var classes: Int
    public var inputWidth: Int, inputHeight: Int
    /// ONNX NonMaxSuppression's settings: boxes scoring at most `scoreThreshold` dropped, overlaps above `iou` suppressed, at most `maxPerClass` per class.
    public var scoreThreshold: Double, iou: Double, maxPerClass: Int
    public init(heads: [Head], classes: Int, inputWidth: Int, inputHeight: Int, scoreThreshold: Double, iou: Double, maxPerClass: Int) {
        self.heads = heads; self.classes = classes; self.inputWidth = inputWidth; self.inputHeight = inputHeight
        self.scoreThreshold = scoreThreshold; self.iou = iou; self.maxPerClass = maxPerClass
    }
}

extension ONNXExport {
    /// The output names of a YOLO model exported with its post-processing.
    public static let yoloOutputs = ["boxes", "scores", "selected_indices"]

    /// Appends YOLO's decoding and ONNX's standard NonMaxSuppression to `m`, whose outputs were the
    /// heads: the model then outputs `boxes` [N, B, 4] (x1, y1, x2, y2 in input pixels), `scores`
    /// [N, classes, B] (σ(objectness) · σ(class)) and `selected_indices` [K, 3] (image, class, box) of
    /// the boxes NMS keeps — so that onnxruntime, OpenVINO and TensorRT run the whole detector.
    public static func appendYOLODecoding(_ m: inout Onnx_ModelProto, _ d: YOLODecodingGraph) throws {
        var w = Writer(graph: try Graph(inputs: [], parameters: [], nodes: [], outputs: []))
        let cpa = 5 + d.classes
        var boxes: [String] = [], scores: [String] = []
        func slice(_ x: String, _ from: Int, _ to: Int, _ name: String) -> String {
            let s = w.constant("\(name)/starts", int64s: [Int64(from)]), e = w.constant("\(name)/ends", int64s: [Int64(to)]), a = w.constant("\(name)/axes", int64s: [2])
            w.node("Slice", [x, s, e, a], name, name: name)
            return name
        }
        func floats(_ name: String, _ dims: [Int], _ v: [Float]) -> String { w.initializers.append(tensor(name, dims: dims, floats: v)); return name }
        for (h, head) in d.heads.enumerated() {
            guard m.graph.output.contains(where: { $0.name == head.output }) else { throw ONNXError("the model has no output '\(head.output)' to decode") }
            let p = "yolo_decode/\(h)", a = head.anchors.count, cells = head.gridWidth * head.gridHeight, slots = a * cells
            let strideX = Double(d.inputWidth) / Double(head.gridWidth), strideY = Double(d.inputHeight) / Double(head.gridHeight)
            // [N, A·(5+C), H, W] → [N, A, 5+C, H·W] → [N, A, H·W, 5+C] → [N, A·H·W, 5+C]: slots in (anchor, row, column) order.
            w.node("Reshape", [head.output, w.constant("\(p)/shape1", int64s: [-1, Int64(a), Int64(cpa), Int64(cells)])], "\(p)/split", name: "\(p)/split")
            w.node("Transpose", ["\(p)/split"], "\(p)/slots", name: "\(p)/slots", [w.ints("perm", [0, 1, 3, 2])])
            w.node("Reshape", ["\(p)/slots", w.constant("\(p)/shape2", int64s: [-1, Int64(slots), Int64(cpa)])], "\(p)/t", name: "\(p)/t")
            // Per slot: the cell's corner less half the grid extension, and the anchor, in input pixels.
            let s = head.xyScale
            var offX = [Float](), offY = [Float](), aw = [Float](), ah = [Float]()
            for k in 0..<a { for i in 0..<head.gridHeight { for j in 0..<head.gridWidth {
                offX.append(Float((Double(j) - (s - 1) / 2) * strideX)); offY.append(Float((Double(i) - (s - 1) / 2) * strideY))
                aw.append(Float(head.anchors[k].w)); ah.append(Float(head.anchors[k].h))
            } } }
            let dims = [1, slots, 1]
            func center(_ t: String, _ scale: Double, _ off: [Float], _ axis: String) -> String {
                w.node("Sigmoid", [t], "\(p)/sig_\(axis)", name: "\(p)/sig_\(axis)")
                w.node("Mul", ["\(p)/sig_\(axis)", w.constant("\(p)/scale_\(axis)", float: Float(scale))], "\(p)/scaled_\(axis)", name: "\(p)/scaled_\(axis)")
                w.node("Add", ["\(p)/scaled_\(axis)", floats("\(p)/offset_\(axis)", dims, off)], "\(p)/c\(axis)", name: "\(p)/c\(axis)")
                return "\(p)/c\(axis)"
            }
            func size(_ t: String, _ anchors: [Float], _ axis: String) -> String {
                w.node("Min", [t, w.constant("\(p)/clip_\(axis)", float: 8)], "\(p)/clipped_\(axis)", name: "\(p)/clipped_\(axis)")
                w.node("Exp", ["\(p)/clipped_\(axis)"], "\(p)/exp_\(axis)", name: "\(p)/exp_\(axis)")
                w.node("Mul", ["\(p)/exp_\(axis)", floats("\(p)/anchor_\(axis)", dims, anchors)], "\(p)/size_\(axis)", name: "\(p)/size_\(axis)")
                w.node("Mul", ["\(p)/size_\(axis)", w.constant("\(p)/half_\(axis)", float: 0.5)], "\(p)/half_size_\(axis)", name: "\(p)/half_size_\(axis)")
                return "\(p)/half_size_\(axis)"
            }
            let cy = center(slice("\(p)/t", 0, 1, "\(p)/ty"), s * strideY, offY, "y"), cx = center(slice("\(p)/t", 1, 2, "\(p)/tx"), s * strideX, offX, "x")
            let hh = size(slice("\(p)/t", 2, 3, "\(p)/th"), ah, "y"), hw = size(slice("\(p)/t", 3, 4, "\(p)/tw"), aw, "x")
            for (name, op, c, half) in [("x1", "Sub", cx, hw), ("y1", "Sub", cy, hh), ("x2", "Add", cx, hw), ("y2", "Add", cy, hh)] {
                w.node(op, [c, half], "\(p)/\(name)", name: "\(p)/\(name)")
            }
            w.node("Concat", ["\(p)/x1", "\(p)/y1", "\(p)/x2", "\(p)/y2"], "\(p)/boxes", name: "\(p)/boxes", [w.int("axis", 2)])
            w.node("Sigmoid", [slice("\(p)/t", 4, 5, "\(p)/obj")], "\(p)/objectness", name: "\(p)/objectness")
            w.node("Sigmoid", [slice("\(p)/t", 5, cpa, "\(p)/cls")], "\(p)/class_scores", name: "\(p)/class_scores")
            w.node("Mul", ["\(p)/objectness", "\(p)/class_scores"], "\(p)/scores", name: "\(p)/scores")
            boxes.append("\(p)/boxes"); scores.append("\(p)/scores")
        }
        w.node("Concat", boxes, "boxes", name: "yolo_decode/boxes", [w.int("axis", 1)])
        w.node("Concat", scores, "yolo_decode/scores", name: "yolo_decode/scores", [w.int("axis", 1)])
        w.node("Transpose", ["yolo_decode/scores"], "scores", name: "yolo_decode/scores_by_class", [w.ints("perm", [0, 2, 1])])
        w.node("NonMaxSuppression", ["boxes", "scores", w.constant("yolo_nms/max_per_class", int64s: [Int64(d.maxPerClass)]),
                                     w.constant("yolo_nms/iou", float: Float(d.iou)), w.constant("yolo_nms/score_threshold", float: Float(d.scoreThreshold))],
               "selected_indices", name: "yolo_nms", [w.int("center_point_box", 0)])
        m.graph.node += w.nodes
        m.graph.initializer += w.initializers
        let total = d.heads.reduce(0) { $0 + $1.anchors.count * $1.gridWidth * $1.gridHeight }
        var indices = Onnx_ValueInfoProto()
        indices.name = "selected_indices"
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        var shape = Onnx_TensorShapeProto()
        var k = Onnx_TensorShapeProto.Dimension(); k.dimParam = "selected"
        var three = Onnx_TensorShapeProto.Dimension(); three.dimValue = 3
        shape.dim = [k, three]
        t.shape = shape
        indices.type.tensorType = t
        m.graph.output = [valueInfo("boxes", .init([total, 4])), valueInfo("scores", .init([d.classes, total])), indices]
    }

}
