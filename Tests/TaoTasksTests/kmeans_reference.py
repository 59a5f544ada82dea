"""Test helper: k-medians of box sizes under 1 - IoU, written as TAO's kmeans.py computes it
(numpy: a pairwise IoU matrix, argmax, medians), from given starting indices.

Reads JSON {boxes: [[w, h]], initial: [i], max_steps} on stdin; prints {centers: [[w, h]] sorted by
area, steps}.
"""
import json
import sys

import numpy as np

spec = json.load(sys.stdin)
b = np.array(spec["boxes"], dtype=np.float64).reshape(-1, 2)
w, h = b[:, 0], b[:, 1]
cw, ch = w[spec["initial"]].copy(), h[spec["initial"]].copy()
assign = np.full(len(w), -1)
steps = 0
while steps < spec["max_steps"]:
    steps += 1
    inter = np.minimum(w[:, None], cw[None, :]) * np.minimum(h[:, None], ch[None, :])
    iou = inter / (w[:, None] * h[:, None] + cw[None, :] * ch[None, :] - inter)
    new = np.argmax(iou, axis=1)
    if np.array_equal(new, assign):
        break
    assign = new
    for j in range(len(cw)):
        if np.any(assign == j):
            cw[j] = np.median(w[assign == j])
            ch[j] = np.median(h[assign == j])
centers = sorted(zip(cw.tolist(), ch.tolist()), key=lambda c: c[0] * c[1])
print(json.dumps({"centers": centers, "steps": steps}))
