"""Checks a YOLO model exported with `tao yolo_v4 export` (its decoding and ONNX NonMaxSuppression
appended) against `tao yolo_v4 inference`: onnxruntime runs the ONNX file on the same images, and
its boxes above the threshold must be the ones inference wrote to the label folder — the same
count per image and class, each pair overlapping by IoU >= 0.99 with scores within 1e-4.

Usage: yolo_onnx_check.py MODEL.onnx IMAGE_DIR LABEL_DIR THRESHOLD
The images must be the model's input size (so that the letterbox resize is the identity and the
network input is exactly the image, BGR less TAO's mean); they are PNG files (decoded here with zlib).
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort


def read_png(path):
    """8-bit RGB or grey, non-interlaced PNG (what tao-swift writes) as an HxWxC uint8 array."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG file"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, color, _, _, interlace = header
    assert depth == 8 and color in (0, 2) and interlace == 0, f"{path}: only 8-bit RGB or grey PNG without interlacing"
    c = 3 if color == 2 else 1
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * c)
    out = np.zeros((h, w * c), dtype=np.int32)
    for y in range(h):
        f, row = raw[y, 0], raw[y, 1:].astype(np.int32)
        up = out[y - 1] if y > 0 else np.zeros(w * c, dtype=np.int32)
        if f == 0:
            out[y] = row
        elif f == 2:
            out[y] = (row + up) & 255
        else:
            cur = np.zeros(w * c, dtype=np.int32)
            for x in range(w * c):
                left = cur[x - c] if x >= c else 0
                ul = up[x - c] if x >= c else 0
                if f == 1:
                    pred = left
                elif f == 3:
                    pred = (left + up[x]) >> 1
                else:  # Paeth
                    p = left + up[x] - ul
                    pa, pb, pc = abs(p - left), abs(p - up[x]), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else (up[x] if pb <= pc else ul)
                cur[x] = (row[x] + pred) & 255
            out[y] = cur
    return out.astype(np.uint8).reshape(h, w, c)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


model, image_dir, label_dir, threshold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
meta = {p.key: p.value for p in onnx.load(model).metadata_props}
classes = json.loads(meta["classes"])
c, h, w = [int(v) for v in meta["input_shape"].split(",")]
mean = np.array([103.939, 116.779, 123.68] if c == 3 else [117.3786], dtype=np.float32)
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
names = sorted(f for f in os.listdir(image_dir) if f.lower().endswith(".png"))
compared, worst_iou, worst_score, failures = 0, 1.0, 0.0, []
for start in range(0, len(names), 16):
    chunk = names[start:start + 16]
    imgs = [read_png(os.path.join(image_dir, f)) for f in chunk]
    for f, im in zip(chunk, imgs):
        assert im.shape[:2] == (h, w), f"{f} is {im.shape[1]}x{im.shape[0]}; this check needs images of the model's input size {w}x{h}"
    x = np.stack([(im[..., ::-1] if c == 3 else im).astype(np.float32) - mean for im in imgs]).transpose(0, 3, 1, 2).copy()
    boxes, scores, selected = session.run(["boxes", "scores", "selected_indices"], {"image": x})
    for k, f in enumerate(chunk):
        theirs = []
        for n, cls, b in selected:
            if n == k and scores[n, cls, b] > threshold:
                bx = boxes[n, b]
                theirs.append((classes[cls], [max(0.0, bx[0]), max(0.0, bx[1]), min(float(w), bx[2]), min(float(h), bx[3])], float(scores[n, cls, b])))
        lines = [l.split() for l in open(os.path.join(label_dir, f[:-4] + ".txt")).read().splitlines() if l.strip()]
        ours = [(l[0], [float(v) for v in l[4:8]], float(l[15])) for l in lines]
        for name in classes:
            a = [o for o in ours if o[0] == name]
            b = [t for t in theirs if t[0] == name]
            if len(a) != len(b):
                failures.append(f"{f} {name}: inference wrote {len(a)} boxes, onnxruntime keeps {len(b)}")
                continue
            for o in a:
                j = max(range(len(b)), key=lambda i: iou(o[1], b[i][1]))
                v = iou(o[1], b[j][1])
                worst_iou, worst_score = min(worst_iou, v), max(worst_score, abs(o[2] - b[j][2]))
                if v < 0.99 or abs(o[2] - b[j][2]) > 1e-4:
                    failures.append(f"{f} {name}: IoU {v:.4f}, scores {o[2]:.5f} / {b[j][2]:.5f}")
                b.pop(j)
                compared += 1
print(f"{len(names)} images, {compared} boxes above {threshold}: smallest IoU {worst_iou:.5f}, largest score difference {worst_score:.2e}")
if failures:
    print("\n".join(failures[:20]))
    sys.exit(1)
print("onnxruntime with the exported NonMaxSuppression keeps the boxes tao inference wrote")
