// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "tao-swift",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tao", targets: ["tao"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.30.0"),
    ],
    targets: [
        // oneDNN's C API (Debian libdnnl-dev 2.6); module map and shim only.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CSPNG", path: "Sources/CSPNG"),
        // cairo 1.16 (Debian libcairo2-dev): antialiased 2-D drawing with text, for plots and annotated images.
        .systemLibrary(name: "CCairo", path: "Sources/CCairo"),
        // Open MPI 4.1 (Debian libopenmpi-dev): the collectives of multi-process training.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c"),
        .target(name: "TaoTensor"),
        // Generated/example.pb.swift from TensorFlow's tf.train.Example schema in Protos/ (scripts/gen-protos.sh).
        // Optimized in debug builds too: augmentation's per-pixel loops run on every training image of the tests.
        .target(name: "TaoData", dependencies: ["TaoTensor", "CZlib", "CTurboJPEG", "CSPNG", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"], swiftSettings: [.unsafeFlags(["-O"])]),
        // TAO spec schemas: our .proto files in Protos/, generated Swift in Generated/ (scripts/gen-protos.sh).
        .target(name: "TaoSpec", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),
        // Optimized in debug builds too: the small-map convolutions' tap loops and the Winograd
        // bookkeeping run every training step of the tests' real models.
        .target(name: "TaoKernels", dependencies: ["TaoTensor", "CDNNL", "TaoKernelsAVX2"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        // Winograd's transforms only, compiled for AVX2 + FMA (optimized in debug builds too: tests run
        // them on real shapes); called only where oneDNN reports AVX2 or better.
        .target(name: "TaoKernelsAVX2", swiftSettings: [.unsafeFlags(["-target-cpu", "haswell", "-O"])]),
        .target(name: "TaoGraph", dependencies: ["TaoTensor"]),
        .target(name: "TaoRuntime", dependencies: ["TaoGraph", "TaoKernels", "TaoTensor"]),
        .target(name: "TaoModels", dependencies: ["TaoGraph"]),
        // Optimized in debug builds too: the optimizers' and regularizer's loops run over every
        // parameter each step of the tests' real models (YOLO's heads hold 30 million).
        .target(name: "TaoTrain", dependencies: ["TaoRuntime", "TaoGraph", "TaoTensor"], swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "TaoPrune", dependencies: ["TaoGraph"]),
        // MPI's implementation of TaoTrain's Collective (data-parallel training over mpirun).
        .target(name: "TaoMPI", dependencies: ["CMPI", "TaoTrain"]),
        // Top-k, confusion, AP/mAP: plain Swift over predictions and labels, no model types.
        .target(name: "TaoMetrics"),
        // ONNX ⇄ Graph; Generated/onnx.pb.swift from ONNX's own onnx.proto (scripts/gen-protos.sh).
        .target(name: "TaoONNX", dependencies: ["TaoGraph", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),
        // What a person reads: charts (PNG through cairo, SVG), annotated images, TensorBoard event
        // files (Generated/tensorboard.pb.swift from TensorBoard's schema in Protos/, scripts/gen-protos.sh).
        .target(name: "TaoReport", dependencies: ["CCairo", "TaoData", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),
        // Optimized in debug builds too: the tasks' losses, targets and decoding loop over every output of every training step.
        .target(name: "TaoTasks", dependencies: ["TaoReport", "TaoTrain", "TaoModels", "TaoRuntime", "TaoGraph", "TaoData", "TaoSpec", "TaoPrune", "TaoONNX", "TaoMetrics"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        .executableTarget(name: "tao", dependencies: [
            "TaoTasks", "TaoMPI", "TaoPrune", "TaoONNX", "TaoTrain", "TaoModels", "TaoRuntime", "TaoGraph", "TaoTensor", "TaoData", "TaoSpec", "TaoMetrics",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "TaoDataTests", dependencies: ["TaoData", "TaoTensor", "TaoTestSupport"], exclude: ["tfrecord_read.py"]),
        .testTarget(name: "taoTests", dependencies: ["tao", "TaoData", "TaoGraph", "TaoReport", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "TaoMetricsTests", dependencies: ["TaoMetrics", "TaoTestSupport"], exclude: ["voc_ap.py"]),
        .testTarget(name: "TaoSpecTests", dependencies: ["TaoSpec"], exclude: ["NVIDIA"]),
        .testTarget(name: "TaoTasksTests", dependencies: ["TaoTasks", "TaoData", "TaoGraph", "TaoPrune", "TaoRuntime", "TaoMetrics", "TaoTensor", "TaoTrain", "TaoONNX", "TaoModels", "TaoTestSupport"],
                    exclude: ["sklearn_dbscan.py", "kmeans_reference.py", "yolo_loss_reference.py", "onnx_nms_run.py", "segmentation_miou.py"]),
        .testTarget(name: "TaoGraphTests", dependencies: ["TaoGraph", "TaoTensor"]),
        // The Double reference interpreter that runtime and ONNX tests check against.
        // Optimized even in debug builds: it computes deep nets in float64 for the ONNX tests.
        .target(name: "TaoTestSupport", dependencies: ["TaoGraph", "TaoTensor"], path: "Tests/TaoTestSupport",
                swiftSettings: [.unsafeFlags(["-O"])]),
        .testTarget(name: "TaoRuntimeTests", dependencies: ["TaoRuntime", "TaoGraph", "TaoTensor", "TaoModels", "TaoKernels", "TaoTestSupport"]),
        .testTarget(name: "TaoModelsTests", dependencies: ["TaoModels", "TaoRuntime", "TaoGraph"]),
        .testTarget(name: "TaoPruneTests", dependencies: ["TaoPrune", "TaoRuntime", "TaoModels", "TaoGraph", "TaoTensor"]),
        .testTarget(name: "TaoONNXTests", dependencies: ["TaoONNX", "TaoReport", "TaoRuntime", "TaoModels", "TaoGraph", "TaoTensor", "TaoData", "TaoTestSupport"],
                    exclude: ["onnx_check.py", "exporter_ops.py"]),
        .testTarget(name: "TaoReportTests", dependencies: ["TaoReport", "TaoData", "TaoTestSupport"], exclude: ["tensorboard_read.py"]),
        .testTarget(name: "TaoTrainTests", dependencies: ["TaoTrain", "TaoRuntime", "TaoModels", "TaoGraph", "TaoTensor"]),
    ]
)
