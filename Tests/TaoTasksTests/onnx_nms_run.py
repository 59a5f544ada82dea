"""Test helper: runs an exported detector (its appended NonMaxSuppression included) with
onnxruntime on given inputs.

Arguments: MODEL.onnx INPUTS.bin N C H W (the inputs: float32, NCHW). Prints JSON {boxes: [N][B][4],
scores: [N][C][B], selected: [[image, class, box]]}.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

path, data = sys.argv[1], sys.argv[2]
shape = [int(v) for v in sys.argv[3:7]]
onnx.checker.check_model(onnx.load(path))
x = np.fromfile(data, dtype=np.float32).reshape(shape)
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
boxes, scores, selected = session.run(["boxes", "scores", "selected_indices"], {"image": x})
print(json.dumps({"boxes": boxes.tolist(), "scores": scores.tolist(), "selected": selected.tolist()}))
