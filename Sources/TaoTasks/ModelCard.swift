import Foundation
import TaoGraph
import TaoModels
import TaoONNX

/// What a saved model is, as one typed record that travels in every checkpoint, pruned model and
/// engine file (metadata key `tao.card`): the task, its classes, the input it takes and how images
/// are prepared for it, where it came from (pruning, an ONNX import) and how its outputs decode.
public struct ModelCard: Codable, Sendable, Equatable {
    /// The task that trained it: "classification", "detectnet_v2", …
    public var task: String
    /// The architecture, e.g. "resnet18"; "onnx" for an imported graph.
    public var arch: String
    /// Class names in the order of the model's outputs.
    public var classes: [String]
    /// C, H, W of one input image.
    public var inputShape: [Int]
    /// How pixels are scaled and centred (TAO's `preprocess_mode`: caffe, torch, tf).
    public var preprocessMode: String?
    /// The epoch after which this checkpoint was written.
    public var epoch: Int?
    /// Set once the model has been pruned; a pruned graph retrains as it is.
    public var pruned: PruneRecord?
    /// Set when the graph was imported from an ONNX file; it trains as it is.
    public var onnx: ONNXOrigin?
    /// Set on INT8 engine files: the calibration and the kernel choice.
    public var int8: Int8Record?
    /// "bf16" on bf16 engine files (`export --data_type bf16`): convolutions, transposed
    /// convolutions and dense layers run on bfloat16 inputs and weights (fp32 accumulation).
    public var arithmetic: String?
    /// How the outputs turn into predictions.
    public var decoding: HeadDecoding

    public init(task: String, arch: String, classes: [String], inputShape: [Int], preprocessMode: String? = nil, epoch: Int? = nil,
                decoding: HeadDecoding) {
        self.task = task; self.arch = arch; self.classes = classes; self.inputShape = inputShape
        self.preprocessMode = preprocessMode; self.epoch = epoch; self.decoding = decoding
    }

    /// How a pruned model was pruned (TAO's options).
    public struct PruneRecord: Codable, Sendable, Equatable {
        public var source: String
        public var threshold: Float
        public var normalizer: String
        public var equalization: String
        public var granularity: Int
        public var minNumFilters: Int
        public var excludedLayers: [String]
    }

    /// The ONNX file a graph came from, and what importing it changed.
    public struct ONNXOrigin: Codable, Sendable, Equatable {
        public var path: String
        public var notes: [String]
    }

    /// An INT8 engine's calibration: each activation's range, and how kernels are chosen.
    public struct Int8Record: Codable, Sendable, Equatable {
        public var ranges: [String: Float]
        public var tactics: String
        /// Convolutions that run in fp32 (mixed precision); nil or empty: every one in int8.
        public var fp32Layers: [String]? = nil
    }

    /// How a task reads its model's outputs.
    public enum HeadDecoding: Codable, Sendable, Equatable {
        /// One output of class logits [N, classes]; softmax gives scores.
        case classifierLogits
        /// DetectNet_v2: coverage [N, C, H/stride, W/stride] and box distances [N, 4C, …] in units of
        /// `scale` from each cell's anchor (column·stride + offset, row·stride + offset).
        case detectNetV2(stride: Int, scale: Float, offset: Float)
        /// YOLO: per head (big, stride 32, first) raw maps [N, anchors · (5 + C), H/stride, W/stride];
        /// `anchors[h]` the head's (width, height) pairs as fractions of the input, `xyScale[h]` its
        /// grid scale (1 + grid_xy_extend); `nms` the training spec's nms_config, which export appends.
        case yolo(anchors: [[[Double]]], xyScale: [Double], nms: NMSSettings)
        /// UNet: per-pixel class logits [N, C, H, W]; `activation` "softmax" or "sigmoid" gives the
        /// probabilities, the largest logit the class (one class: logit > 0).
        case segmentation(activation: String)

        /// The outputs' names in exported ONNX files (DetectNet_v2's as TAO's export names its nodes).
        public var outputNames: [String] {
            switch self {
            case .classifierLogits, .segmentation: ["logits"]
            case .detectNetV2: ["output_cov", "output_bbox"]
            case .yolo(let anchors, _, _): Array(["conv_big_object", "conv_mid_object", "conv_sm_object"].prefix(anchors.count))
            }
        }
    }

    /// A detector's non-maximum suppression: boxes scoring above `confidence`, overlaps above `iou`
    /// suppressed, at most `topK` kept.
    public struct NMSSettings: Codable, Sendable, Equatable {
        public var confidence: Double, iou: Double, topK: Int
        public init(confidence: Double, iou: Double, topK: Int) { self.confidence = confidence; self.iou = iou; self.topK = topK }
    }

    /// The graph trains as it is (pruned or imported), not as the spec would build it.
    public var carriesOwnGraph: Bool { pruned != nil || onnx != nil }

    static let key = "tao.card"
}

extension Checkpoint {
    /// This checkpoint's model card; checkpoints written before cards existed are read from their
    /// `tao.*` keys. Nil when the file has neither.
    public var card: ModelCard? {
        get throws {
            if let json = metadata[ModelCard.key] {
                do { return try JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)) } catch {
                    throw TaskError("the model card of this file is unreadable: \(error)")
                }
            }
            return try ModelCard(legacy: metadata)
        }
    }

    /// Replaces the card (and any legacy `tao.*` keys but the graph) with `card`.
    public mutating func setCard(_ card: ModelCard) throws {
        metadata = metadata.filter { !$0.key.hasPrefix("tao.") || $0.key == "tao.graph" }
        metadata[ModelCard.key] = String(decoding: try ModelCard.encoder.encode(card), as: UTF8.self)
    }

    /// A checkpoint with `card` in its metadata (and no legacy `tao.*` keys).
    public init(graph: Graph, parameters: ParameterStore, card: ModelCard, extras: [String: [Float]] = [:]) throws {
        let json = String(decoding: try ModelCard.encoder.encode(card), as: UTF8.self)
        self.init(graph: graph, parameters: parameters, metadata: [ModelCard.key: json], extras: extras)
    }
}

extension ModelCard {
    static var encoder: JSONEncoder { let e = JSONEncoder(); e.outputFormatting = .sortedKeys; return e }

    /// The card of a checkpoint from before cards: `tao.task`, `tao.classes`, `tao.pruned`, `tao.int8.*`, ….
    init?(legacy m: [String: String]) throws {
        guard let task = m["tao.task"] else { return nil }
        func json<T: Decodable>(_ key: String, _ type: T.Type) throws -> T? {
            guard let text = m[key] else { return nil }
            guard let v = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) else { throw TaskError("the file's '\(key)' entry is unreadable") }
            return v
        }
        let classes = try json("tao.classes", [String].self) ?? []
        let shape = (m["tao.input_shape"] ?? "").split(separator: ",").compactMap { Int($0) }
        self.init(task: task, arch: m["tao.arch"] ?? "unknown", classes: classes, inputShape: shape, preprocessMode: m["tao.preprocess_mode"],
                  epoch: m["tao.epoch"].flatMap { Int($0) }, decoding: .classifierLogits)
        if let p = try json("tao.pruned", LegacyPrune.self) {
            pruned = PruneRecord(source: p.source, threshold: p.threshold, normalizer: p.normalizer, equalization: p.equalization,
                                 granularity: p.granularity, minNumFilters: p.min_num_filters, excludedLayers: p.excluded_layers)
        }
        if let path = m["tao.onnx"] {
            onnx = ONNXOrigin(path: path, notes: (m["tao.onnx.notes"] ?? "").split(separator: "\n").map(String.init))
        }
        if let ranges = try json("tao.int8.ranges", [String: Float].self) {
            int8 = Int8Record(ranges: ranges, tactics: m["tao.int8.tactics"] ?? "timed")
        }
    }

    private struct LegacyPrune: Decodable {
        var source: String, threshold: Float, normalizer: String, equalization: String, granularity: Int, min_num_filters: Int, excluded_layers: [String]
    }
}

extension ModelCard {
    /// The post-processing ONNX can run for this model (YOLO's decoding and NMS), or nil.
    func decodingGraph(_ graph: Graph) -> YOLODecodingGraph? {
        guard case let .yolo(anchors, xyScale, nms) = decoding, graph.outputs.count == anchors.count else { return nil }
        let (h, w) = (inputShape[1], inputShape[2])
        let heads = anchors.enumerated().map { k, group in
            YOLODecodingGraph.Head(output: decoding.outputNames[k], gridWidth: graph.shape(of: graph.outputs[k])[2], gridHeight: graph.shape(of: graph.outputs[k])[1],
                                   anchors: group.map { ($0[0] * Double(w), $0[1] * Double(h)) }, xyScale: xyScale[k])
        }
        return YOLODecodingGraph(heads: heads, classes: classes.count, inputWidth: w, inputHeight: h, scoreThreshold: nms.confidence, iou: nms.iou, maxPerClass: nms.topK)
    }
}
