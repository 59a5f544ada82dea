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
        .target(name: "TaoTensor"),
        .target(name: "TaoData", dependencies: ["TaoTensor", "CZlib", "CTurboJPEG", "CSPNG"]),
        // TAO spec schemas: our .proto files in Protos/, generated Swift in Generated/ (scripts/gen-protos.sh).
        .target(name: "TaoSpec", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),
        .target(name: "TaoKernels", dependencies: ["TaoTensor", "CDNNL"]),
        .target(name: "TaoGraph", dependencies: ["TaoTensor"]),
        .target(name: "TaoRuntime", dependencies: ["TaoGraph", "TaoKernels", "TaoTensor"]),
        .target(name: "TaoModels", dependencies: ["TaoGraph"]),
        .target(name: "TaoTrain", dependencies: ["TaoRuntime", "TaoGraph", "TaoTensor"]),
        .target(name: "TaoPrune", dependencies: ["TaoGraph"]),
        // ONNX ⇄ Graph; Generated/onnx.pb.swift from ONNX's own onnx.proto (scripts/gen-protos.sh).
        .target(name: "TaoONNX", dependencies: ["TaoGraph", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),
        .target(name: "TaoTasks", dependencies: ["TaoTrain", "TaoModels", "TaoRuntime", "TaoGraph", "TaoData", "TaoSpec", "TaoPrune", "TaoONNX"]),
        .executableTarget(name: "tao", dependencies: [
            "TaoTasks", "TaoPrune", "TaoONNX", "TaoTrain", "TaoModels", "TaoRuntime", "TaoGraph", "TaoTensor", "TaoData", "TaoSpec",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "TaoDataTests", dependencies: ["TaoData"]),
        .testTarget(name: "TaoSpecTests", dependencies: ["TaoSpec"]),
        .testTarget(name: "TaoTasksTests", dependencies: ["TaoTasks", "TaoData", "TaoGraph", "TaoPrune", "TaoRuntime"]),
        .testTarget(name: "TaoGraphTests", dependencies: ["TaoGraph", "TaoTensor"]),
        .testTarget(name: "TaoRuntimeTests", dependencies: ["TaoRuntime", "TaoGraph", "TaoTensor", "TaoModels", "TaoKernels"]),
        .testTarget(name: "TaoModelsTests", dependencies: ["TaoModels", "TaoRuntime", "TaoGraph"]),
        .testTarget(name: "TaoPruneTests", dependencies: ["TaoPrune", "TaoRuntime", "TaoModels", "TaoGraph", "TaoTensor"]),
        .testTarget(name: "TaoONNXTests", dependencies: ["TaoONNX", "TaoRuntime", "TaoModels", "TaoGraph", "TaoTensor", "TaoData"],
                    exclude: ["onnx_check.py"]),
        .testTarget(name: "TaoTrainTests", dependencies: ["TaoTrain", "TaoRuntime", "TaoModels", "TaoGraph", "TaoTensor"]),
    ]
)
