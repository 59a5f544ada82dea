"""Test helper: reads a folder of TensorBoard event files with TensorBoard's own reader
(tensorboard.backend.event_processing.event_accumulator, from .venv) and prints JSON: every scalar
tag's (step, value) list, every image tag's (step, width, height, PNG size, 1 when the PNG signature is right),
every tensor tag's plugin, shape and values (text decoded, PR curves as a [6][T] list).

usage: tensorboard_read.py LOGDIR
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.util import tensor_util

acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
acc.Reload()
tags = acc.Tags()
out = {"scalars": {}, "images": {}, "tensors": {}}
for t in tags[ea.SCALARS]:
    out["scalars"][t] = [[e.step, e.value] for e in acc.Scalars(t)]
for t in tags[ea.IMAGES]:
    out["images"][t] = [[e.step, e.width, e.height, len(e.encoded_image_string),
                         int(e.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n")] for e in acc.Images(t)]
for t in tags[ea.TENSORS]:
    meta = acc.SummaryMetadata(t)
    rows = []
    for e in acc.Tensors(t):
        arr = tensor_util.make_ndarray(e.tensor_proto)
        if arr.dtype.kind in "OSU":
            value = [x.decode() if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)]
        else:
            value = arr.tolist()
        rows.append({"step": e.step, "shape": list(arr.shape), "value": value})
    out["tensors"][t] = {"plugin": meta.plugin_data.plugin_name, "events": rows}
print(json.dumps(out))
