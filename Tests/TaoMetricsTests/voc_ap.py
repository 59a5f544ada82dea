"""An independent VOC-style AP (numpy), the reference of AveragePrecisionTests.

Reads JSON {classes, iou, mode, detections: [[image, class, x1, y1, x2, y2, score]],
ground_truth: [[image, class, x1, y1, x2, y2, difficult]]} on stdin; prints [ap or null per class].
Written from the VOC devkit's description (voc_eval), not from the Swift code.
"""
import json
import sys

import numpy as np

spec = json.load(sys.stdin)
det = np.array(spec["detections"], dtype=np.float64).reshape(-1, 7)
gt = np.array(spec["ground_truth"], dtype=np.float64).reshape(-1, 7)
out = []
for c in range(spec["classes"]):
    g = gt[gt[:, 1] == c]
    npos = int((g[:, 6] == 0).sum())
    d = det[det[:, 1] == c]
    order = np.argsort(-d[:, 6], kind="stable")
    d = d[order]
    used = np.zeros(len(g), dtype=bool)
    tp, fp = [], []
    for row in d:
        same = np.where(g[:, 0] == row[0])[0]
        best, best_iou = -1, 0.0
        if len(same):
            b = g[same, 2:6]
            iw = np.minimum(b[:, 2], row[4]) - np.maximum(b[:, 0], row[2])
            ih = np.minimum(b[:, 3], row[5]) - np.maximum(b[:, 1], row[3])
            inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
            union = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) + (row[4] - row[2]) * (row[5] - row[3]) - inter
            ious = inter / union
            k = int(np.argmax(ious))
            if ious[k] > 0:
                best, best_iou = same[k], ious[k]
        if best >= 0 and best_iou >= spec["iou"][c]:
            if g[best, 6]:
                continue
            if used[best]:
                tp.append(0); fp.append(1)
            else:
                used[best] = True; tp.append(1); fp.append(0)
        else:
            tp.append(0); fp.append(1)
    if npos == 0:
        out.append(None)
        continue
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos if len(tp) else np.zeros(0)
    prec = tp / np.maximum(tp + fp, 1e-300) if len(tp) else np.zeros(0)
    if spec["mode"] == "sample":
        ap = 0.0
        for t in np.linspace(0, 1, 11):
            p = prec[rec >= t - 1e-12]
            ap += (p.max() if p.size else 0.0) / 11
    else:
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        ap = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    out.append(float(ap))
print(json.dumps(out))
