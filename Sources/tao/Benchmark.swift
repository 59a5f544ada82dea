import ArgumentParser
import Foundation
import TaoGraph
import TaoMPI
import TaoMetrics
import TaoModels
import TaoONNX
import TaoRuntime
import TaoTasks
import TaoTrain

struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a training step or inference on random data.",
        discussion: """
        Times a full training step (forward, softmax cross-entropy, backward, SGD with momentum 0.9 and \
        weight decay 1e-4) or an inference pass, after a warm-up, on random images. With --task infer it \
        also measures batch-1 latency. The models are built exactly as torchvision builds them, so the \
        numbers compare like for like with PyTorch (see shared/bench/compare.py). \
        detectnet_v2_resnet18 (and _resnet10/34/50) is TAO's DetectNet_v2 (stride-16 ResNet with all \
        projections, coverage and box heads), trained with Adam as TAO trains it, for \
        shared/bench/det_bench.py; yolo_v4_resnet18 (and yolo_v3_resnet18, yolo_v4_tiny) is TAO's YOLO \
        network with three anchors per head, trained with SGD (momentum 0.9) on TAO's YOLO loss for eight \
        random boxes per image, as det_bench.py's; --res-hw sets a non-square input (default 384x1248, KITTI's size). \
        unet_resnet18 is TAO's UNet (ResNet-18 encoder, all projections, TAO's decoder; 2 classes, 320×320 by \
        default, as det_bench.py's), trained with Adam on softmax cross-entropy against random masks. \
        A detector's training step (and that of any model given with -m that is not a classifier) uses \
        a stand-in loss over every output, half the mean of squares, whose cost, like the task's own \
        loss, is negligible beside the network's.
        """)

    enum Task: String, ExpressibleByArgument { case train, infer }
    enum Precision: String, ExpressibleByArgument { case fp32, bf16, int8 }

    @Option(help: "Model: \((Zoo.names + Self.detectors).joined(separator: ", ")).") var model = "resnet18"
    @Option(help: "train or infer.") var task: Task = .train
    @Option(help: "fp32; bf16 (convolutions and dense layers on bfloat16, in training both ways; processors with AVX512-BF16 or AMX); or int8 (inference through the INT8 engine: with -m an engine file, its own calibration and fp32 layers; else calibrated on random images).") var precision: Precision = .fp32
    @Option(help: "INT8 kernel choice: timed (each alternative kernel — Winograd, fused depthwise — kept where faster when timed while building), direct, or alternatives (wherever available).")
    var tactics = "timed"
    @Option(help: "Square input resolution in pixels.") var res = 224
    @Option(name: .customLong("res-hw"), help: "Input height x width (e.g. 384x1248), in place of --res; a detector's default is 384x1248.")
    var resHW: String?
    @Option(help: "Input channels: 3 (RGB) or 1 (grayscale).") var channels = 3
    @Option(help: "Images per batch.") var batch = 32
    @Option(help: "Number of classes of the classifier head (default 1000; a detector's default is 3, KITTI's).") var classes: Int?
    @Option(help: "Timed iterations.") var iters = 6
    @Option(help: "Untimed warm-up iterations.") var warmup = 2
    @Flag(help: "Print one JSON line per measurement instead of a table.") var json = false
    @Flag(name: .customLong("no-winograd"), help: "fp32: direct convolution everywhere (Winograd's F(4×4, 3×3) is the default for 3×3 stride-1 layers), to compare the two.")
    var noWinograd = false
    @Option(name: [.customLong("model-file"), .customShort("m")],
            help: "Time a saved model (.tao, e.g. a pruned one) instead of --model; its input size replaces --res and --channels.")
    var modelFile: String?
    @Option(name: .customLong("onnx-out"), help: "Also write the timed network as ONNX (for shared/bench/onnx_file_bench.py: onnxruntime on the same network).")
    var onnxOut: String?
    @Option(name: .customLong("gpus"), help: "--task train on this many ranks (mpirun, as train --gpus), --batch each: also reports the gradient allreduce's bytes and time per step, and allreduce bandwidth by message size.")
    var gpus = 1

    func validate() throws {
        guard res >= 16 else { throw ValidationError("--res must be at least 16") }
        guard batch >= 1, (classes ?? 1) >= 1, iters >= 1 else { throw ValidationError("--batch, --classes and --iters must be positive") }
        guard Int8Engine.Tactics(rawValue: tactics) != nil else { throw ValidationError("--tactics must be timed, direct or alternatives, got '\(tactics)'") }
        guard modelFile != nil || Zoo.names.contains(model) || Self.detectors.contains(model) else {
            throw ValidationError("unknown --model '\(model)'; choose one of \((Zoo.names + Self.detectors).joined(separator: ", "))")
        }
        if let resHW { _ = try Self.heightWidth(resHW) }
    }

    func run() throws {
        if gpus > 1 || MPICollective.launchedByMPI {
            guard task == .train else { throw ValidationError("--gpus is for --task train") }
            if !MPICollective.launchedByMPI { return try RankLauncher(ranks: gpus, resultsDir: nil, quiet: json).run() }
            let comm = try MPICollective()
            do { try measure(comm) } catch {
                comm.abort(after: error)
            }
            comm.finalize()
            return
        }
        try measure(SingleProcess())
    }

    func measure(_ comm: any Collective) throws {
        guard precision != .int8 || task == .infer else { throw ValidationError("--precision int8 is for --task infer (training is fp32 or bf16)") }
        var graph: Graph, store: ParameterStore
        var engineFile: ModelCard.Int8Record?   // an INT8 engine file's own ranges and fp32 layers
        let detector = modelFile == nil && Self.detectors.contains(model)
        if let modelFile {
            if modelFile.lowercased().hasSuffix(".onnx") {
                let r = try ONNXImport.read(modelFile)
                (graph, store) = (r.graph, r.parameters)
            } else {
                let ck = try Checkpoint.read(from: modelFile)
                (graph, store) = (ck.graph, ck.parameters)
                engineFile = (try? ck.card)??.int8
                if (try? ck.card)??.arithmetic == Arithmetic.bf16.rawValue, precision != .bf16 {
                    print("note: \(modelFile) is a bf16 engine file; timed in \(precision.rawValue) as --precision says (--precision bf16 runs it as evaluate does)")
                }
            }
            let s = graph.shape(of: graph.inputs[0])
            guard s.rank == 3 else { throw ValidationError("\(modelFile): benchmark needs a [C,H,W] image input, the model takes \(s)") }
        } else {
            let (h, w) = try resHW.map(Self.heightWidth) ?? (model == "unet_resnet18" ? (320, 320) : detector ? (384, 1248) : (res, res))
            if model == "unet_resnet18" {
                var u = UNetModelConfig(encoder: .resnet(depth: 18), inputShape: [channels, h, w], classes: classes ?? 2)
                u.allProjections = true
                graph = try UNet.build(u)
            } else if let y = Self.yolo(model) {
                graph = try YOLO.build(YOLOModelConfig(version: y, backbone: y == .v4Tiny ? .cspDarknetTiny : .resnet(depth: 18), inputShape: [channels, h, w],
                                                       classes: classes ?? 3, anchorsPerHead: y == .v4Tiny ? [3, 3] : [3, 3, 3]))
            } else if detector {
                var r = ResNetConfig(depth: Int(model.split(separator: "_").last!.dropFirst(6))!, classes: 1, inputShape: [channels, h, w], stemMaxPool: false)
                r.allProjections = true; r.useBias = true; r.bnEpsilon = 1e-3
                graph = try TaoModels.DetectNetV2.build(DetectNetV2ModelConfig(backbone: r, classes: classes ?? 3))
            } else {
                graph = try Zoo.build(model, classes: classes ?? 1000, inputShape: [channels, h, w])
            }
            store = ParameterStore(graph: graph, seed: 0)
        }
        let input = graph.shape(of: graph.inputs[0]).dims
        if let onnxOut {
            try ONNXExport.write(graph, store, to: onnxOut, outputNames: graph.outputs.count == 2 && detector ? ["output_cov", "output_bbox"]
                                 : model == "unet_resnet18" ? ["logits"] : graph.outputs.indices.map { "output\($0)" })
            print("wrote \(onnxOut)")
        }
        // A classifier: one [classes] output, trained with softmax cross-entropy; anything else with the stand-in loss.
        let classifier = graph.outputs.count == 1 && graph.shape(of: graph.outputs[0]).rank == 1
        let classes = graph.shape(of: graph.outputs[0])[0]
        let macs = Double(graph.macsPerSample)
        var records: [[String: Any]] = []
        switch task {
        case .train:
            let exec = try Executor(graph: graph, batch: batch, mode: .training, parameters: store, winograd: !noWinograd,
                                    arithmetic: precision == .bf16 ? .bf16 : .fp32)
            var rng = SplitMix64(seed: 1)
            try exec.setInput(0, Tensor.randomNormal(Shape([batch] + input), rng: &rng))
            let labels = (0..<batch).map { _ in Int(rng.next() % UInt64(classes)) }
            let yolo = modelFile == nil ? Self.yolo(model) : nil
            let adam = detector && yolo == nil
            let trainer = Trainer(executor: exec, optimizer: adam ? Adam() : SGD(momentum: 0.9), learningRate: adam ? 1e-4 : 0.01,
                                  regularizer: Regularizer(.l2, weight: 0.5e-4))
            trainer.collective = comm
            var communication: [Double] = [], exposed: [Double] = []
            let yoloLoss = yolo.map { Self.yoloLoss($0, graph: graph, batch: batch) }
            let unet = modelFile == nil && model == "unet_resnet18"
            let pixels = input[1] * input[2]
            let masks = unet ? (0..<batch).map { _ in (0..<pixels).map { _ in UInt8(rng.next() % UInt64(classes)) } } : []
            let unetLoss = UNetLoss(kind: .crossEntropy, sigmoid: false, classes: classes)
            let times = try time(iters: iters, warmup: warmup) {
                if classifier { try trainer.step(labels: labels) } else if unet {
                    try trainer.step { ex in Float(unetLoss(logits: ex.outputPointer(0), masks: masks, pixels: pixels, gradients: ex.outputGradientPointer(0)).total) }
                } else if let (loss, targets) = yoloLoss {
                    try trainer.step { ex in
                        Float(loss(outputs: ex.graph.outputs.indices.map { UnsafePointer(ex.outputPointer($0)) }, targets: targets,
                                   gradients: ex.graph.outputs.indices.map { ex.outputGradientPointer($0) }).total)
                    }
                } else { try trainer.step(loss: Self.standInLoss) }
                communication.append(trainer.lastCommunication.seconds)
                exposed.append(trainer.lastCommunication.exposed)
            }
            records.append(record(adam ? "train_step_adam" : "train_step_sgd_momentum", batch: batch, times: times, gflop: 3 * 2 * macs / 1e9, graph: graph))
            if precision == .bf16 { records[records.count - 1]["bf16_activations"] = exec.bf16Activations }
            if comm.size > 1 {
                // Throughput of all ranks; the averaging's share of the step (the timed steps only).
                let timed = Array(communication.suffix(iters)).sorted()
                let bytes = trainer.lastCommunication.bytes
                records[0]["ranks"] = comm.size
                records[0]["images_per_s"] = (records[0]["images_per_s"] as! Double) * Double(comm.size)
                records[0]["allreduce_mb_per_step"] = Double(bytes) / 1e6
                records[0]["allreduce_ms_per_step"] = timed[timed.count / 2] * 1e3
                let waited = Array(exposed.suffix(iters)).sorted()[iters / 2]
                records[0]["allreduce_share"] = timed[timed.count / 2] / ((records[0]["ms_per_iter_median"] as! Double) / 1e3)
                records[0]["allreduce_exposed_ms_per_step"] = waited * 1e3
                records[0]["overlap"] = trainer.overlap && comm.callableFromAnyThread
                records += try Self.allreduceSweep(comm)
            }
        case .infer where precision == .int8:
            // An engine file's own calibration and fp32 layers, else calibrated on random images:
            // the ranges matter for accuracy, not for speed.
            var rng = SplitMix64(seed: 2)
            let ranges = try engineFile?.ranges
                ?? Int8Calibration.measure(graph, store, batches: (0..<2).map { _ in Tensor.randomNormal(Shape([4] + input), rng: &rng) })
            for (b, n, w) in [(batch, iters, warmup), (1, max(iters * 5, 30), 5)] {
                let engine = try Int8Engine(graph: graph, parameters: store, maxAbs: ranges, batch: b, tactics: Int8Engine.Tactics(rawValue: tactics)!,
                                            fp32Layers: Set(engineFile?.fp32Layers ?? []))
                try engine.setInput(Tensor.randomNormal(Shape([b] + input), rng: &rng))
                let times = time(iters: n, warmup: w) { engine.forward() }
                records.append(record(b == 1 ? "latency_int8" : "infer_int8", batch: b, times: times, gflop: 2 * macs / 1e9, graph: graph))
                records[records.count - 1]["winograd_convs"] = engine.winogradConvolutions
                records[records.count - 1]["fused_depthwise"] = engine.fusedDepthwise
                records[records.count - 1]["fp32_convs"] = engine.fp32Convolutions
                if b == 1 && batch == 1 { break }
            }
        case .infer:
            for (b, n, w) in [(batch, iters, warmup), (1, max(iters * 5, 30), 5)] {
                let exec = try Executor(graph: graph, batch: b, mode: .inference, parameters: store, winograd: !noWinograd,
                                        arithmetic: precision == .bf16 ? .bf16 : .fp32)
                var rng = SplitMix64(seed: 1)
                try exec.setInput(0, Tensor.randomNormal(Shape([b] + input), rng: &rng))
                let times = time(iters: n, warmup: w) { exec.forward() }
                let p = precision == .bf16 ? "bf16" : "fp32"
                records.append(record(b == 1 ? "latency_\(p)" : "infer_\(p)", batch: b, times: times, gflop: 2 * macs / 1e9, graph: graph))
                if precision == .bf16 { records[records.count - 1]["bf16_activations"] = exec.bf16Activations }
                if b == 1 && batch == 1 { break }
            }
        }
        guard comm.isLead else { return }
        for r in records { print(json ? jsonLine(r) : table(r)) }
    }

    /// Allreduce time and bandwidth by message size (1 KB to 64 MB), median of several: algorithm
    /// bandwidth (bytes / time) and bus bandwidth (× 2(n − 1)/n, what each link carries in a ring).
    static func allreduceSweep(_ comm: any Collective) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        for floats in [256, 4096, 65_536, 1 << 20, 4 << 20, 16 << 20] {
            var buffer = [Float](repeating: 1, count: floats)
            let reps = floats >= 4 << 20 ? 5 : 20
            var times: [Double] = []
            try buffer.withUnsafeMutableBufferPointer { b in
                for k in 0..<(reps + 2) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try comm.allreduceSum(b.baseAddress!, count: floats)
                    if k >= 2 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
            }
            let t = times.sorted()[times.count / 2], bytes = Double(floats * 4)
            out.append(["name": "allreduce", "bytes": floats * 4, "median_s": t, "algbw_gb_per_s": bytes / t / 1e9,
                        "busbw_gb_per_s": bytes / t / 1e9 * 2 * Double(comm.size - 1) / Double(comm.size), "ranks": comm.size])
        }
        return out
    }

    /// Models `--model` names besides the zoo's classifiers.
    static let detectors = ["detectnet_v2_resnet10", "detectnet_v2_resnet18", "detectnet_v2_resnet34", "detectnet_v2_resnet50",
                             "yolo_v3_resnet18", "yolo_v4_resnet18", "yolo_v4_tiny", "unet_resnet18"]

    static func yolo(_ model: String) -> YOLOModelConfig.Version? {
        switch model { case "yolo_v3_resnet18": .v3; case "yolo_v4_resnet18": .v4; case "yolo_v4_tiny": .v4Tiny; default: nil }
    }

    /// TAO's YOLO loss (YOLOv3's or YOLOv4's) with anchors of 1/10 to 1/3 of the input, and for each
    /// image eight random boxes matched as training matches them.
    static func yoloLoss(_ v: YOLOModelConfig.Version, graph: Graph, batch: Int) -> (YOLOLoss, [YOLOTargets]) {
        let heads = graph.outputs.enumerated().map { k, o in
            let s = graph.shape(of: o).dims, size = [0.3, 0.18, 0.1][k]
            return YOLOHead(gridWidth: s[2], gridHeight: s[1], anchors: [(size, size), (size * 1.5, size / 1.5), (size / 1.5, size * 1.5)], xyScale: v == .v3 ? 1 : 1.1)
        }
        let layout = YOLOLayout(heads: heads, classes: graph.shape(of: graph.outputs[0])[0] / 3 - 5)
        var rng = SplitMix64(seed: 4)
        let targets = (0..<batch).map { _ in
            YOLOTargets(objects: (0..<8).map { _ in
                let (w, h) = (0.05 + 0.3 * rng.nextDouble(), 0.05 + 0.3 * rng.nextDouble()), (x, y) = (rng.nextDouble() * (1 - w), rng.nextDouble() * (1 - h))
                return (Int(rng.next() % UInt64(layout.classes)), Box(x, y, x + w, y + h))
            }, layout: layout, matchingIoU: v == .v3 ? nil : 0.25)
        }
        return (YOLOLoss(version: v == .v3 ? .v3 : .v4, layout: layout), targets)
    }

    /// "384x1248" as (384, 1248).
    static func heightWidth(_ s: String) throws -> (Int, Int) {
        let parts = s.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 >= 16 }) else { throw ValidationError("--res-hw must be HEIGHTxWIDTH (each at least 16), e.g. 384x1248; got '\(s)'") }
        return (parts[0], parts[1])
    }

    /// Half the mean of squares of every output (per image), as a training step's loss where the
    /// task's own needs targets: d/dy = y / batch.
    static func standInLoss(_ ex: Executor) -> Float {
        var total: Float = 0
        for i in 0..<ex.graph.outputs.count {
            let dims = ex.outputShape(i).dims
            let (y, g) = (ex.outputPointer(i), ex.outputGradientPointer(i))
            let n = dims.reduce(1, *), batch = Float(dims[0])
            for k in 0..<n { total += 0.5 * y[k] * y[k] / batch; g[k] = y[k] / batch }
        }
        return total
    }

    private func time(iters: Int, warmup: Int, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        return try (0..<iters).map { _ in
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
    }

    private func record(_ task: String, batch: Int, times: [Double], gflop: Double, graph: Graph) -> [String: Any] {
        let total = times.reduce(0, +)
        let sorted = times.sorted()
        let ips = Double(batch * times.count) / total
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return [
            "framework": "tao-swift", "model": modelFile ?? model, "task": task, "res": Self.resolution(graph), "batch": batch,
            // A YOLO head carries 3 anchors · (5 + classes) channels; DetectNet_v2's coverage one per class.
            "classes": Self.yolo(model) != nil && modelFile == nil ? graph.shape(of: graph.outputs[0])[0] / 3 - 5 : graph.shape(of: graph.outputs[0])[0],
            "images_per_s": (ips * 100).rounded() / 100,
            "ms_per_iter_mean": (1000 * total / Double(times.count) * 100).rounded() / 100,
            "ms_per_iter_median": (1000 * sorted[sorted.count / 2] * 100).rounded() / 100,
            "params": graph.trainableParameterCount,
            "gflop_per_img": (gflop * 10000).rounded() / 10000,
            "achieved_gflops": (gflop * ips * 10).rounded() / 10,
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "iters": times.count,
        ]
    }

    /// 224, or "384x1248" where height and width differ (as det_bench.py writes it).
    static func resolution(_ graph: Graph) -> Any {
        let s = graph.shape(of: graph.inputs[0])
        return s[1] == s[2] ? s[1] : "\(s[1])x\(s[2])"
    }

    private func jsonLine(_ r: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private func table(_ r: [String: Any]) -> String {
        let keys = r["name"] as? String == "allreduce" ? ["name", "ranks", "bytes", "median_s", "algbw_gb_per_s", "busbw_gb_per_s"]
            : ["model", "task", "res", "batch", "images_per_s", "ms_per_iter_median", "achieved_gflops", "peak_rss_mb"]
                + (r["ranks"] != nil ? ["ranks", "allreduce_mb_per_step", "allreduce_ms_per_step", "allreduce_exposed_ms_per_step", "allreduce_share", "overlap"] : [])
        return keys.map { "\($0)=\(r[$0] ?? "-")" }.joined(separator: "  ")
    }
}
