import ArgumentParser
import Foundation
import TaoPrune
import TaoRuntime
import TaoTasks

/// `tao <task> prune`, the same for every task: the heads (the graph's outputs) keep every channel.
struct PruneCommand<Task: ModelTask>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "prune",
            abstract: "Remove whole filters from a trained model (TAO's criterion); retrain the result to recover accuracy.",
            discussion: """
            Each filter's L2 norm is normalized per layer (by the layer's maximum, or by the L2 norm of its norms); \
            layers joined by residual adds, squeeze-excite multiplies or depthwise convolutions are decided together \
            (-eq). Filters scoring above -pth are kept, at least -nf per layer, rounded up to a multiple of -pg. \
            The layers that produce the model's outputs (its heads) are never pruned. With -e, the pruned model's \
            batch-norm statistics are measured again on --bn_images training images, and the spec's validation data \
            measures the model (accuracy, or mAP for a detector) before pruning, after it and after that \
            re-estimation. Retrain the pruned model by naming it as the spec's pretrained model \
            (train_config.pretrained_model_path, or model_config.pretrained_model_file for DetectNet_v2).
            """)
    }
    @Option(name: [.customShort("m"), .long], help: "The trained model (.tao).") var model: String
    @Option(name: [.customShort("o"), .customLong("output_file"), .long], help: "Where to write the pruned model (.tao).") var output: String
    @Option(name: [.customShort("r"), .customLong("results_dir"), .long], help: "Folder for the log and prune_report.json (default: the folder of -o).")
    var resultsDir: String?
    @Option(name: [.customShort("e"), .customLong("experiment_spec_path"), .long], help: "A spec whose validation data measures the model before and after pruning.")
    var experimentSpec: String?
    @Option(name: [.customLong("pth", withSingleDash: true), .customLong("pruning_threshold")], help: "Normalized-norm threshold.") var threshold: Float = 0.1
    @Option(name: [.customShort("n"), .customLong("normalizer")], help: "max or L2.") var normalizer = "max"
    @Option(name: [.customLong("eq", withSingleDash: true), .customLong("equalization_criterion")],
            help: "union, intersection, arithmetic_mean or geometric_mean.") var equalization = "union"
    @Option(name: [.customLong("pg", withSingleDash: true), .customLong("pruning_granularity")], help: "Filters are kept in multiples of this.") var granularity = 8
    @Option(name: [.customLong("nf", withSingleDash: true), .customLong("min_num_filters")], help: "Minimum filters kept per layer.") var minFilters = 16
    @Option(name: [.customLong("el", withSingleDash: true), .customLong("excluded_layers")], parsing: .upToNextOption,
            help: "Layers never to prune.") var excluded: [String] = []
    @Option(name: [.customLong("bn_images")],
            help: "With -e: training images on which the pruned model's batch-norm statistics are measured again (0: keep them).")
    var bnImages = 1024
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var tao: TaoFlags

    func run() throws {
        try tao.apply(quiet: quiet)
        guard bnImages >= 0 else { throw ValidationError("--bn_images must be 0 or more, got \(bnImages)") }
        var o = PruneOptions()
        guard let n = PruneOptions.Normalizer(rawValue: normalizer == "l2" ? "L2" : normalizer) else {
            throw ValidationError("-n must be max or L2, got '\(normalizer)'")
        }
        guard let eq = PruneOptions.Equalization(rawValue: equalization) else {
            throw ValidationError("-eq must be one of \(PruneOptions.Equalization.allCases.map(\.rawValue).joined(separator: ", ")), got '\(equalization)'")
        }
        o.threshold = threshold; o.normalizer = n; o.equalization = eq
        o.granularity = granularity; o.minFilters = minFilters; o.excludedLayers = excluded
        let task = try experimentSpec.map { try Task(specPath: $0) }
        try Task.prune(modelPath: model, output: output, options: o, task: task, bnImages: bnImages,
                       resultsDir: resultsDir ?? defaultResultsDir(forModel: output), quiet: quiet)
    }
}

/// `tao <task> export`, the same for every task: ONNX; with --data_type bf16 a bf16 engine file;
/// with --data_type int8 the calibration, the INT8 ONNX (QDQ) and the INT8 engine file.
struct ExportCommand<Task: ModelTask>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "export",
            abstract: "Write a trained model as ONNX (opset 17, dynamic batch, class labels and model card in the metadata); with --data_type bf16, also a bf16 engine file; with --data_type int8, also calibrate and write an INT8 ONNX (QDQ) and an INT8 engine file.",
            discussion: """
            INT8: fp32 inference over --batches × --batch_size images of --cal_image_dir (preprocessed as the spec -e says) \
            records every activation's range; the ranges go to --cal_cache_file (JSON; reused when no image folder is given) \
            and, with the model, to --engine_file, which `evaluate` and `inference` run with oneDNN's int8 kernels, \
            and to --qdq_file, an INT8 ONNX model in QDQ form for TensorRT, onnxruntime or OpenVINO.
            bf16: the engine file runs convolutions, transposed convolutions and dense layers on bfloat16 inputs \
            and weights with fp32 accumulation (batch norms folded in fp32 first), where the processor has \
            AVX512-BF16 or AMX; elsewhere it runs in fp32, with a note. The ONNX file stays fp32.
            """)
    }
    @Option(name: [.customShort("m"), .long], help: "The trained model (.tao).") var model: String
    @Option(name: [.customShort("o"), .customLong("output_file"), .long], help: "The .onnx file to write (default: the model's path with .onnx; TAO's .etlt names are written as ONNX too).")
    var output: String?
    @Option(name: [.customShort("e"), .customLong("experiment_spec")], help: "The spec (its preprocessing is used for calibration).") var spec: String?
    @OptionGroup var tao: TaoFlags
    @Option(name: [.customLong("max_batch_size")], help: "TAO's TensorRT batch limit; the ONNX file has a dynamic batch, so any batch runs.") var maxBatchSize: Int?
    @Option(name: [.customLong("max_workspace_size")], help: "TAO's TensorRT workspace; accepted, unused.") var maxWorkspaceSize: Int?
    @Option(name: [.customLong("classmap_json")], help: "TAO's class map; checked against the classes the model was trained on.") var classmap: String?
    @Option(name: [.customLong("data_type")], help: "fp32; bf16 (also: a bf16 engine file, --engine_file, for evaluate and inference on processors with AVX512-BF16 or AMX; TAO's fp16 is taken as bf16, the CPU's half precision); or int8.") var dataType = "fp32"
    @Flag(name: [.customLong("raw_outputs")], help: "Detectors: end the ONNX graph at the heads' raw outputs, without the decoding and NonMaxSuppression export otherwise appends (YOLO).")
    var rawOutputs = false
    @Option(name: [.customLong("cal_image_dir")], help: "Images for INT8 calibration.") var calImageDir: String?
    @Option(name: [.customLong("cal_cache_file")], help: "Calibration ranges (JSON): written, or read when no --cal_image_dir is given.") var calCacheFile: String?
    @Option(name: [.customLong("cal_data_file")], help: "TAO's calibration tensor file; accepted, unused (calibration reads --cal_image_dir).") var calDataFile: String?
    @Option(name: [.customLong("batches")], help: "Calibration batches.") var batches = 10
    @Option(name: [.customLong("batch_size")], help: "Images per calibration batch.") var batchSize = 8
    @Option(name: [.customLong("engine_file")], help: "The engine file to write (default: OUTPUT with .int8.tao or .bf16.tao).") var engineFile: String?
    @Flag(name: [.customLong("gen_ds_config")], help: "TAO's DeepStream config; accepted, not written.") var genDSConfig = false
    @Option(name: [.customLong("cal_algorithm")],
            help: "How calibration sets each activation's range: entropy (the default, TensorRT's entropy calibrator as TAO uses it: the clipping that loses least information), max (largest magnitude seen) or percentile (the 90th percentile of each image's largest magnitude: a few unusual images are clipped; best for detectors).")
    var calAlgorithm = Int8ExportOptions.defaultMethod.rawValue
    @Option(name: [.customLong("qdq_file")], help: "The INT8 ONNX file (QDQ form) to write (default: OUTPUT with .int8.onnx).") var qdqFile: String?
    @Option(name: [.customLong("tactics")], help: "How the INT8 engine picks its kernels: timed (oneDNN's alternatives — Winograd for 3×3 convolutions, a depthwise convolution fused into the pointwise one before it — kept where they run faster here at the batch size used; Winograd keeps about 2 bits less precision in those layers) or direct.")
    var tactics = "timed"
    @Option(name: [.customLong("fp32_layers")],
            help: "Convolutions the INT8 engine keeps in fp32 (mixed precision): auto (measured on the calibration images: none when every convolution in int8 keeps the output error within --max_int8_error, else the convolutions whose int8 error hurts the outputs most for their cost, until it does), none, or node names separated by commas.")
    var fp32Layers = "auto"
    @Option(name: [.customLong("max_int8_error")],
            help: "With --fp32_layers auto: the largest output error allowed (per calibration image, squared error over the fp32 outputs' sum of squares; the mean over images, the worst output).")
    var maxInt8Error = 0.003

    func run() throws {
        let say = { (line: String) in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
            LogFile.write(line)
        }
        guard ["fp32", "fp16", "bf16", "int8"].contains(dataType) else { throw ValidationError("--data_type must be fp32, bf16 (or TAO's fp16) or int8, got '\(dataType)'") }
        guard let chosen = Int8Engine.Tactics(rawValue: tactics), chosen != .alternatives else { throw ValidationError("--tactics must be timed or direct, got '\(tactics)'") }
        guard maxInt8Error > 0 else { throw ValidationError("--max_int8_error must be positive, got \(maxInt8Error)") }
        guard let method = Int8Calibration.Method(rawValue: calAlgorithm) else { throw ValidationError("--cal_algorithm must be max, entropy or percentile, got '\(calAlgorithm)'") }
        try tao.apply()
        if genDSConfig { say("note: --gen_ds_config: a DeepStream config is not written; the ONNX file's metadata holds the classes and input size") }
        if calDataFile != nil { say("note: --cal_data_file is not used: calibration reads the images of --cal_image_dir (or --cal_cache_file)") }
        var output = output ?? (model as NSString).deletingPathExtension + ".onnx"
        if output.lowercased().hasSuffix(".etlt") {
            output = (output as NSString).deletingPathExtension + ".onnx"
            say("note: TAO's .etlt is an encrypted ONNX file; tao-swift writes plain ONNX: \(output)")
        }
        try Task.export(modelPath: model, output: output, classMap: classmap, rawOutputs: rawOutputs, log: say)
        if dataType == "fp16" || dataType == "bf16" {
            if dataType == "fp16" { say("note: --data_type fp16 asks TensorRT for half precision; on a CPU that is bfloat16 (same range as fp32, 8 bits of precision): writing a bf16 engine file") }
            try Task.writeBF16Engine(modelPath: model, to: engineFile ?? (output as NSString).deletingPathExtension + ".bf16.tao", log: say)
            return
        }
        guard dataType == "int8" else { return }
        var o = Int8ExportOptions(output: output)
        (o.spec, o.imageDir, o.cacheFile, o.batches, o.batchSize) = (spec, calImageDir, calCacheFile, batches, batchSize)
        (o.method, o.tactics, o.qdqFile, o.engineFile) = (method, chosen, qdqFile, engineFile)
        switch fp32Layers {
        case "none": o.fp32Layers = .none
        case "auto": o.fp32Layers = .auto(maxError: maxInt8Error)
        default: o.fp32Layers = .named(fp32Layers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        try Task.exportInt8(modelPath: model, o, log: say)
    }
}
