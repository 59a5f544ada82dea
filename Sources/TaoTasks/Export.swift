import Foundation
import TaoGraph
import TaoONNX

extension ClassificationTask {
    /// `tao classification export`: writes a trained model as ONNX (opset 17, dynamic batch), with
    /// its class labels, input size and preprocessing in the metadata.
    public static func export(modelPath: String, output: String, log: (String) -> Void = { _ in }) throws {
        let (ck, classes) = try loadModel(modelPath)
        var meta: [String: String] = ["classes": String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)]
        for (key, name) in [("tao.input_shape", "input_shape"), ("tao.preprocess_mode", "preprocess_mode"), ("tao.arch", "arch")] {
            if let v = ck.metadata[key] { meta[name] = v }
        }
        try ONNXExport.write(ck.graph, ck.parameters, to: output, metadata: meta)
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        log("wrote \(output) (ONNX opset \(ONNXExport.opset), input 'image' [batch,\(ck.graph.shape(of: ck.graph.inputs[0]).dims.map(String.init).joined(separator: ","))], output 'logits' [batch,\(classes.count)], \(size / 1024) KiB)")
    }
}
