"""Test helper: TAO's YOLOv3 and YOLOv4 losses in numpy (float64), written from
nvidia_tao_tf1/cv/yolo_v3/losses/yolo_loss.py and yolo_v4/losses/yolo_loss.py: the heads' raw
outputs laid out as TAO's model lays them out (y_pred rows [cy, cx, ph, pw, step_y, step_x, t...]),
the matches as TAO's encoders write them (y_true rows [cy, cx, h, w, objectness, ..., classes,
weight]), then TAO's formulas.

Reads JSON on stdin: {version: "v3"|"v4", classes, batch, heads: [{grid_h, grid_w, anchors: [[w, h]],
xy_scale}], outputs: [flat NCHW list per head], positives: [[{head, row, column, anchor, cx, cy, w,
h, cls, weight}] per image], boxes: [[[x1, y1, x2, y2]] per image], loc_weight, neg_weight,
cls_weight, neutral_iou, smoothing, focal_alpha, focal_gamma}. Prints the total loss.
"""
import json
import sys

import numpy as np

d = json.load(sys.stdin)
C, N, v4 = d["classes"], d["batch"], d["version"] == "v4"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# y_pred and y_true, slot by slot (order does not matter for the sums).
pred, true = [[] for _ in range(N)], [[] for _ in range(N)]
pos = {}
for n in range(N):
    for p in d["positives"][n]:
        pos[(n, p["head"], p["row"], p["column"], p["anchor"])] = p
for h, head in enumerate(d["heads"]):
    gh, gw, anchors, s = head["grid_h"], head["grid_w"], head["anchors"], head["xy_scale"]
    A = len(anchors)
    out = np.array(d["outputs"][h], dtype=np.float64).reshape(N, A, 5 + C, gh, gw)
    for n in range(N):
        for i in range(gh):
            for j in range(gw):
                for a in range(A):
                    t = out[n, a, :, i, j]
                    anchor = [i / gh, j / gw, anchors[a][1], anchors[a][0], 1.0 / gh, 1.0 / gw]
                    if v4:  # BBoxPostProcessingLayer
                        yx = sigmoid(t[0:2]) * s - (s - 1.0) / 2.0
                        hw = np.exp(np.minimum(t[2:4], 8.0))
                        pred[n].append(anchor + list(yx) + list(hw) + list(t[4:]))
                    else:
                        pred[n].append(anchor + list(t))
                    row = np.zeros(6 + C + 1)
                    p = pos.get((n, h, i, j, a))
                    if p is not None:
                        row[0:5] = [p["cy"], p["cx"], p["h"], p["w"], 1.0]
                        row[6 + p["cls"]] = 1.0
                        row[-1] = p["weight"]
                    true[n].append(row)
y_pred = np.array(pred)
y_true = np.array(true)


def iou(b1, b2):
    xmin = np.maximum(b1[:, None, 0], b2[None, :, 0])
    ymin = np.maximum(b1[:, None, 1], b2[None, :, 1])
    xmax = np.minimum(b1[:, None, 2], b2[None, :, 2])
    ymax = np.minimum(b1[:, None, 3], b2[None, :, 3])
    inter = np.maximum(xmax - xmin, 0) * np.maximum(ymax - ymin, 0)
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    return inter / (a1[:, None] + a2[None, :] - inter)


def corners(cy, cx, h, w):
    return np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def bce(y, z, smoothing=0.0):
    y = y * (1.0 - smoothing) + smoothing / 2.0
    p = sigmoid(z)
    return -(y * np.log(np.maximum(p, 1e-18)) + (1.0 - y) * np.log(np.maximum(1.0 - p, 1e-18)))


def focal(y, z, alpha, gamma, smoothing=0.0):
    y = y * (1.0 - smoothing) + smoothing / 2.0
    p = sigmoid(z)
    b = -(y * np.log(np.maximum(p, 1e-18)) + (1.0 - y) * np.log(np.maximum(1.0 - p, 1e-18)))
    pt = y * p + (1.0 - y) * (1.0 - p)
    return (1.0 - pt) ** gamma * (y * alpha + (1.0 - y) * (1.0 - alpha)) * b


def ciou(gy, gx, gh, gw, py, px, ph, pw):
    inter = np.maximum(0.0, np.minimum(gy + gh / 2, py + ph / 2) - np.maximum(gy - gh / 2, py - ph / 2)) * \
        np.maximum(0.0, np.minimum(gx + gw / 2, px + pw / 2) - np.maximum(gx - gw / 2, px - pw / 2))
    union = gh * gw + ph * pw - inter
    i = inter / (union + 1e-18)
    eh = np.maximum(gy + gh / 2, py + ph / 2) - np.minimum(gy - gh / 2, py - ph / 2)
    ew = np.maximum(gx + gw / 2, px + pw / 2) - np.minimum(gx - gw / 2, px - pw / 2)
    c2 = eh * eh + ew * ew
    p2 = (gy - py) ** 2 + (gx - px) ** 2
    v = 4.0 / np.pi ** 2 * (np.arctan2(gw, gh + 1e-18) - np.arctan2(pw, ph + 1e-18)) ** 2
    alpha = v / (1.0 - i + v + 1e-18)
    return 1.0 - i + p2 / (c2 + 1e-18) + alpha * v


# The neutral rule: unmatched slots whose decoded box overlaps every true box by less than the threshold.
if v4:
    pred_yx = y_pred[:, :, 0:2] + y_pred[:, :, 6:8] * y_pred[:, :, 4:6]
    pred_hw = np.minimum(y_pred[:, :, 2:4] * y_pred[:, :, 8:10], 1e18)
else:
    pred_yx = sigmoid(y_pred[:, :, 6:8]) * y_pred[:, :, 4:6] + y_pred[:, :, 0:2]
    pred_hw = np.exp(y_pred[:, :, 8:10]) * y_pred[:, :, 2:4]
is_neg = np.zeros(y_true.shape[:2])
for n in range(N):
    gt = np.array(d["boxes"][n], dtype=np.float64).reshape(-1, 4)
    pb = corners(pred_yx[n, :, 0], pred_yx[n, :, 1], pred_hw[n, :, 0], pred_hw[n, :, 1])
    m = iou(pb, gt).max(-1) if len(gt) else np.zeros(len(pb))
    is_neg[n] = (m < d["neutral_iou"]).astype(np.float64)
is_neg = (1.0 - y_true[:, :, 4]) * is_neg

scale = 2.0 - y_true[:, :, 2] * y_true[:, :, 3]
if v4:
    sm, fa, fg = d["smoothing"], d["focal_alpha"], d["focal_gamma"]
    use_focal = fa > 0 and fg > 0
    w = y_true[:, :, -1]
    loc = ciou(y_true[:, :, 0], y_true[:, :, 1], y_true[:, :, 2], y_true[:, :, 3],
               pred_yx[:, :, 0], pred_yx[:, :, 1], pred_hw[:, :, 0], pred_hw[:, :, 1]) * y_true[:, :, 4] * scale * w
    obj = (focal(y_true[:, :, 4], y_pred[:, :, 10], fa, fg, sm) if use_focal else bce(y_true[:, :, 4], y_pred[:, :, 10], sm))
    cls = (focal(y_true[:, :, 6:-1], y_pred[:, :, 11:], fa, fg, sm) if use_focal else bce(y_true[:, :, 6:-1], y_pred[:, :, 11:], sm)).sum(-1)
    total = d["loc_weight"] * np.mean(loc.sum(1)) + np.mean((obj * y_true[:, :, 4]).sum(1)) \
        + d["cls_weight"] * np.mean((cls * y_true[:, :, 4] * w).sum(1)) + d["neg_weight"] * np.mean((obj * is_neg).sum(1))
else:
    gt_t_yx = (y_true[:, :, 0:2] - y_pred[:, :, 0:2]) / y_pred[:, :, 4:6]
    gt_t_hw = np.log(np.clip(y_true[:, :, 2:4] / y_pred[:, :, 2:4], 1e-2, 1e2))
    l2 = 0.5 * ((np.concatenate([gt_t_yx, gt_t_hw], -1) - np.concatenate([sigmoid(y_pred[:, :, 6:8]), y_pred[:, :, 8:10]], -1)) ** 2).sum(-1)
    loc = l2 * y_true[:, :, 4] * scale
    obj = bce(y_true[:, :, 4], y_pred[:, :, 10])
    npos, nneg = max(y_true[:, :, 4].sum(), 1e-5), max(is_neg.sum(), 1e-5)
    cls = bce(y_true[:, :, 6:-1], y_pred[:, :, 11:]).sum(-1)
    total = d["loc_weight"] * loc.sum() / npos + (obj * y_true[:, :, 4]).sum() / npos \
        + d["cls_weight"] * (cls * y_true[:, :, 4]).sum() / npos + d["neg_weight"] * (obj * is_neg).sum() / nneg
print(json.dumps({"total": float(total), "negatives": float(is_neg.sum())}))
