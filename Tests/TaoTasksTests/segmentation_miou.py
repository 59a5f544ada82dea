"""Test helper: mean IoU computed independently from mask files (numpy + Pillow).

usage: segmentation_miou.py TRUTH_DIR PREDICTED_DIR MAPPING_JSON CLASSES
TRUTH_DIR holds the label masks (pixel = label_id), PREDICTED_DIR the masks `tao unet inference`
wrote (pixel = class index), same file names; MAPPING_JSON maps label_id (as a string) to class
index. Prints JSON: the confusion matrix (rows: truth), each class's IoU (null where the class is
in neither), and their mean.
"""
import json
import os
import sys

import numpy as np
from PIL import Image

truth_dir, pred_dir, mapping_json, classes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
mapping = {int(k): v for k, v in json.loads(mapping_json).items()}
lut = np.full(256, -1, dtype=np.int64)
for k, v in mapping.items():
    lut[k] = v
confusion = np.zeros((classes, classes), dtype=np.int64)
for name in sorted(os.listdir(truth_dir)):
    truth = lut[np.asarray(Image.open(os.path.join(truth_dir, name)).convert("L"), dtype=np.int64)]
    pred = np.asarray(Image.open(os.path.join(pred_dir, os.path.splitext(name)[0] + ".png")), dtype=np.int64)
    assert truth.shape == pred.shape and (truth >= 0).all(), name
    confusion += np.bincount(truth.ravel() * classes + pred.ravel(), minlength=classes * classes).reshape(classes, classes)
tp = np.diag(confusion)
union = confusion.sum(0) + confusion.sum(1) - tp
iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
present = [v for v in iou if v is not None]
print(json.dumps({"confusion": confusion.tolist(), "iou": iou, "mean_iou": float(np.mean(present))}))
