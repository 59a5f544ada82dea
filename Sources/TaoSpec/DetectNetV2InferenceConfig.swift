import Foundation

/// A validated DetectNet_v2 inference spec (TAO's `Inference`: `inferencer_config` and
/// `bbox_handler_config`), as `tao detectnet_v2 inference -e` reads it.
public struct DetectNetV2InferenceConfig: Sendable {
    /// How one class's grid predictions become boxes (`classwise_bbox_handler_config.value`).
    public struct ClassHandler: Sendable {
        public var coverageThreshold: Float, minimumBoxHeight: Int, nms: Bool
        public var dbscanEps: Float, dbscanMinSamples: Int, dbscanConfidence: Float
        public var nmsIoU: Float, nmsConfidence: Float
        /// The overlay's box colour, RGB.
        public var color: (r: UInt8, g: UInt8, b: UInt8)?
        /// The name written in labels and overlays (`output_map`; the class's own name when empty).
        public var outputName: String?
    }

    /// The network's classes, in its output order (`target_classes`).
    public var targetClasses: [String]
    public var width: Int, height: Int, channels: Int
    public var batchSize: Int
    public var stride: Int
    /// `tlt_config.model`, or the model file named in `tensorrt_config` (-m overrides it).
    public var model: String?
    public var kittiDump: Bool
    public var overlay: Bool
    public var lineWidth: Int
    /// Per class, with "default" for classes not listed.
    public var handlers: [String: ClassHandler]
    /// Only these classes are written (`postproc_classes`; all when empty).
    public var postprocClasses: [String]
    /// What the run does differently from TAO for fields it accepts.
    public var notes: [String] = []

    public init(path: String) throws { try self.init(text: SpecText(contentsOf: path)) }

    public init(text: SpecText) throws {
        let s = try text.decode(Tao_DetectnetV2_Inference.self)
        let fail = text.error(at:_:)
        guard s.hasInferencerConfig else { throw fail(["inferencer_config"], "missing: the model and its input size (inferencer_config { target_classes image_width image_height … })") }
        let i = s.inferencerConfig
        targetClasses = i.targetClasses.map { $0.lowercased() }
        guard !targetClasses.isEmpty else { throw fail(["inferencer_config", "target_classes"], "missing: the network's classes, in the order it was trained on") }
        (width, height, channels) = (Int(i.imageWidth), Int(i.imageHeight), i.imageChannels == 0 ? 3 : Int(i.imageChannels))
        guard width >= 16, height >= 16, width % 16 == 0, height % 16 == 0 else {
            throw fail(["inferencer_config", width % 16 != 0 || width < 16 ? "image_width" : "image_height"], "width and height must be multiples of 16, got \(width)×\(height)")
        }
        guard channels == 1 || channels == 3 else { throw fail(["inferencer_config", "image_channels"], "1 or 3, got \(channels)") }
        batchSize = max(1, Int(i.batchSize))
        stride = i.stride == 0 ? 16 : Int(i.stride)
        guard stride == 16 else { throw fail(["inferencer_config", "stride"], "DetectNet_v2's grid in tao-swift has stride 16, got \(stride)") }
        switch i.modelConfigType {
        case .tltConfig(let t)?: model = t.model.isEmpty ? nil : t.model
        case .tensorrtConfig(let t)?:
            let named = [t.etltModel, t.trtEngine, t.uffModel, t.caffemodel].first { !$0.isEmpty }
            model = named
            notes.append("note: inferencer_config.tensorrt_config: tao-swift runs its own engine on the CPU; TensorRT's parser, data type and engine settings are not used (pass the model, an engine file of `export --data_type int8`, with -m)")
        case nil: model = nil
        }
        if !i.inputNodes.isEmpty || !i.outputNodes.isEmpty {
            notes.append("note: inferencer_config.input_nodes/output_nodes are not needed: the model file names its outputs")
        }

        let b = s.bboxHandlerConfig
        kittiDump = s.hasBboxHandlerConfig ? b.kittiDump : true
        overlay = !b.disableOverlay
        lineWidth = b.overlayLinewidth > 0 ? Int(b.overlayLinewidth) : 2
        postprocClasses = b.postprocClasses.map { $0.lowercased() }
        for p in postprocClasses where !targetClasses.contains(p) {
            throw fail(["bbox_handler_config", "postproc_classes"], "'\(p)' is not one of the target_classes (\(targetClasses.joined(separator: ", ")))")
        }
        var handlers: [String: ClassHandler] = [:]
        for (key, v) in b.classwiseBboxHandlerConfig {
            let name = key.lowercased()
            let path = ["bbox_handler_config", "classwise_bbox_handler_config"]
            guard name == "default" || targetClasses.contains(name) else {
                throw fail(path, "'\(key)' is not one of the target_classes (\(targetClasses.joined(separator: ", "))) nor \"default\"")
            }
            guard v.confidenceModel.isEmpty || v.confidenceModel == "aggregate_cov" else {
                throw fail(path + ["confidence_model"], "only \"aggregate_cov\" (the summed coverage of a cluster) is available in tao-swift, got '\(v.confidenceModel)'")
            }
            let c = v.clusteringConfig
            guard c.clusteringAlgorithm != .hybrid else { throw fail(path + ["clustering_config", "clustering_algorithm"], "HYBRID is not available in tao-swift; use DBSCAN or NMS") }
            guard (0..<1).contains(c.dbscanEps) || c.clusteringAlgorithm == .nms else {
                throw fail(path + ["clustering_config", "dbscan_eps"], "a distance 1 − IoU in [0, 1), got \(c.dbscanEps)")
            }
            let color: (r: UInt8, g: UInt8, b: UInt8)? = v.hasBboxColor
                ? (UInt8(clamping: v.bboxColor.r), UInt8(clamping: v.bboxColor.g), UInt8(clamping: v.bboxColor.b)) : nil
            handlers[name] = ClassHandler(coverageThreshold: c.coverageThreshold, minimumBoxHeight: Int(c.minimumBoundingBoxHeight), nms: c.clusteringAlgorithm == .nms,
                                          dbscanEps: c.dbscanEps, dbscanMinSamples: max(Int(c.dbscanMinSamples), 1), dbscanConfidence: c.dbscanConfidenceThreshold,
                                          nmsIoU: c.nmsIouThreshold, nmsConfidence: c.nmsConfidenceThreshold,
                                          color: color, outputName: v.outputMap.isEmpty ? nil : v.outputMap)
        }
        for t in targetClasses where handlers[t] == nil && handlers["default"] == nil {
            throw fail(["bbox_handler_config", "classwise_bbox_handler_config"], "missing: how to cluster the class '\(t)' (an entry for it, or one with key \"default\")")
        }
        self.handlers = handlers
    }

    /// The handler of a target class (its own, else "default").
    public func handler(_ name: String) -> ClassHandler { handlers[name] ?? handlers["default"]! }
    /// The name a class's detections are written under: its own handler's `output_map`, else its
    /// own name (the "default" handler's `output_map` would give every class it serves one name).
    public func outputName(_ name: String) -> String { handlers[name]?.outputName ?? name }
}
