"""Test helper: scikit-learn's DBSCAN on precomputed 1 - IoU distances with coverage weights.

Reads JSON {eps, min_samples, boxes: [[x1, y1, x2, y2, weight]]} on stdin; prints the labels.
"""
import json
import sys

import numpy as np
from sklearn.cluster import DBSCAN

spec = json.load(sys.stdin)
b = np.array(spec["boxes"], dtype=np.float64).reshape(-1, 5)
iw = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
ih = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
inter = iw * ih
area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
iou = inter / (area[:, None] + area[None, :] - inter)
labels = DBSCAN(eps=spec["eps"], min_samples=spec["min_samples"], metric="precomputed").fit(1 - iou, sample_weight=b[:, 4]).labels_
print(json.dumps([int(v) for v in labels]))
