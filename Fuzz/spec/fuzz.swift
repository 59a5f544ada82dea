import TaoSpec

/// libFuzzer target: any bytes as a TAO spec file — DetectNet_v2 training, inference and conversion
/// specs and the classification spec — must parse or fail with an error, never crash or hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let spec = SpecText(file: "fuzz.txt", text: text)
    _ = try? DetectNetV2Config(text: spec)
    _ = try? DetectNetV2InferenceConfig(text: spec)
    _ = try? DatasetExportSpec(text: spec)
    _ = try? ClassificationConfig(text: spec)
    return 0
}
