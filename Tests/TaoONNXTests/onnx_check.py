"""Test helper: validates an ONNX file with onnx.checker and runs it with onnxruntime.

usage: onnx_check.py MODEL INPUT.f32 OUTPUT.f32 N C H W
Writes every output, flattened and concatenated in order, as raw float32, and prints one JSON line:
opset, input/output shapes, metadata.
"""
import collections
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

model_path, input_path, output_path = sys.argv[1:4]
shape = [int(s) for s in sys.argv[4:]]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
x = np.fromfile(input_path, dtype=np.float32).reshape(shape)
options = ort.SessionOptions()
options.intra_op_num_threads = 2
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
ys = session.run(None, {session.get_inputs()[0].name: x})
y = ys[0]
np.concatenate([o.astype(np.float32).ravel() for o in ys]).tofile(output_path)
# onnxruntime against itself without its graph rewrites (batch-norm folding, fusions): the size of
# float rounding differences for this model and input, a floor for any two implementations.
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
plain = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
y0s = plain.run(None, {plain.get_inputs()[0].name: x})
print(json.dumps({
    "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
    "input": [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim],
    "output_names": [o.name for o in model.graph.output],
    "output_shape": list(y.shape),
    "output_shapes": [list(o.shape) for o in ys],
    "ort_self_difference": float(max(np.abs(a - b).max() for a, b in zip(ys, y0s))),
    "op_counts": dict(collections.Counter(n.op_type for n in model.graph.node)),
    "metadata": {p.key: p.value for p in model.metadata_props},
}))
