"""Test helper: small ONNX models, one input x [N, 4, 6, 8], built with onnx.helper, each using ops
the importer folds or rewrites in the forms exporters write them.

usage: exporter_ops.py OUTDIR   (writes OUTDIR/<case>.onnx for every case below)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(3)
C, H, W = 4, 6, 8


def const(name, value, dtype=np.float32):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype=dtype), name))


def save(case, nodes, out_shape, opset=13, inits=()):
    g = helper.make_graph(nodes, case, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, C, H, W])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, f"{out}/{case}.onnx")


w = numpy_helper.from_array(rng.normal(size=(C, C, 3, 3)).astype(np.float32) * 0.3, "w")

# Max, Min, Sum, Mean of data with data, scalars and several inputs.
save("nary", [
    helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
    const("half", 0.5), const("low", -0.2),
    helper.make_node("Max", ["x", "c"], ["m1"]), helper.make_node("Min", ["c", "x"], ["m2"]),
    helper.make_node("Max", ["x", "half"], ["m3"]), helper.make_node("Min", ["low", "c"], ["m4"]),
    helper.make_node("Sum", ["m1", "m2", "m3", "m4"], ["s"]),
    helper.make_node("Mean", ["s", "x", "c"], ["y"]),
], [None, C, H, W], inits=[w])

# Reductions as exporters write them: tf2onnx's global pooling (ReduceMean over H, W), a
# squeeze-and-excitation gate, channel mean and sum, spatial max and min; opset 13 (axes attributes;
# ReduceSum's axes an input).
save("reduce13", [
    helper.make_node("ReduceMean", ["x"], ["gap"], axes=[2, 3], keepdims=1),
    helper.make_node("Sigmoid", ["gap"], ["gate"]), helper.make_node("Mul", ["x", "gate"], ["se"]),
    const("axes1", [1], np.int64),
    helper.make_node("ReduceSum", ["x", "axes1"], ["csum"], keepdims=1),
    helper.make_node("ReduceMean", ["x"], ["cmean"], axes=[-3], keepdims=1),
    helper.make_node("ReduceMax", ["x"], ["smax"], axes=[2, 3], keepdims=1),
    helper.make_node("ReduceMin", ["x"], ["smin"], axes=[-1, -2], keepdims=1),
    helper.make_node("Add", ["se", "csum"], ["a1"]), helper.make_node("Add", ["a1", "cmean"], ["a2"]),
    helper.make_node("Mul", ["a2", "smax"], ["a3"]), helper.make_node("Add", ["a3", "smin"], ["y"]),
], [None, C, H, W])

# Opset 18: axes as inputs; keepdims 0 to a feature vector; ReduceSum over H, W.
save("reduce18", [
    const("hw", [2, 3], np.int64),
    helper.make_node("ReduceSum", ["x", "hw"], ["s"], keepdims=0),
    helper.make_node("ReduceMax", ["x", "hw"], ["m"], keepdims=0),
    helper.make_node("Add", ["s", "m"], ["y"]),
], [None, C], opset=18)

# PyTorch's flatten through shape arithmetic (Shape, Gather, Unsqueeze, Concat, Reshape) after a
# Gather of channels (2, 0, 3) and a scalar Gather of one row.
save("gather", [
    const("channels", [2, 0, 3], np.int64),
    helper.make_node("Gather", ["x", "channels"], ["g"], axis=1),
    const("row", 1, np.int64),
    helper.make_node("Gather", ["g", "row"], ["r"], axis=2),             # [N, 3, W]
    helper.make_node("Shape", ["r"], ["shape"]),
    const("zero", 0, np.int64),
    helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
    const("axes0", [0], np.int64),
    helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
    const("minus1", [-1], np.int64),
    helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
    helper.make_node("Reshape", ["r", "target"], ["y"]),
], [None, 3 * W])

# GELU as PyTorch exports it (x / √2, Erf, + 1, · x, · 0.5) and with the half taken first.
save("gelu", [
    const("sqrt2", np.float32(np.sqrt(2))), const("one", 1.0), const("half", 0.5), const("inv_sqrt2", np.float32(1 / np.sqrt(2))),
    helper.make_node("Div", ["x", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["e", "one"], ["a"]),
    helper.make_node("Mul", ["x", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["g1"]),
    helper.make_node("Conv", ["g1", "w"], ["c"], pads=[1, 1, 1, 1]),
    helper.make_node("Mul", ["c", "half"], ["h"]), helper.make_node("Mul", ["c", "inv_sqrt2"], ["d2"]), helper.make_node("Erf", ["d2"], ["e2"]),
    helper.make_node("Add", ["one", "e2"], ["a2"]), helper.make_node("Mul", ["h", "a2"], ["y"]),
], [None, C, H, W], inits=[w])

# Expand of a pooled map back over the image, Tile along the height.
save("expand_tile", [
    helper.make_node("GlobalAveragePool", ["x"], ["p"]),
    const("full", [1, C, H, W], np.int64),
    helper.make_node("Expand", ["p", "full"], ["e"]),
    helper.make_node("Add", ["x", "e"], ["s"]),
    const("reps", [1, 1, 2, 1], np.int64),
    helper.make_node("Tile", ["s", "reps"], ["y"]),
], [None, C, 2 * H, W])

# A target shape computed by Range, ConstantOfShape, Equal, Less, Not and Where: [0, -1].
save("shape_logic", [
    const("start", 0, np.int64), const("limit", 2, np.int64), const("delta", 1, np.int64),
    helper.make_node("Range", ["start", "limit", "delta"], ["idx"]),            # [0, 1]
    const("two", [2], np.int64),
    helper.make_node("ConstantOfShape", ["two"], ["minus"], value=numpy_helper.from_array(np.array([-1], np.int64))),
    const("zero", 0, np.int64),
    helper.make_node("Equal", ["idx", "zero"], ["first"]),                       # [T, F]
    helper.make_node("Less", ["idx", "delta"], ["lt"]), helper.make_node("Not", ["lt"], ["rest"]),   # [F, T]
    helper.make_node("Where", ["rest", "minus", "idx"], ["t1"]),                 # [0, -1]
    helper.make_node("Where", ["first", "t1", "minus"], ["target"]),             # [0, -1]
    helper.make_node("Reshape", ["x", "target"], ["y"]),
], [None, C * H * W])

# Softmax over the channels and LogSoftmax over the width (opset 13: one axis); before opset 13
# Softmax's axis 2 normalizes over height and width together.
save("softmax13", [
    helper.make_node("Softmax", ["x"], ["s"], axis=1),
    helper.make_node("LogSoftmax", ["x"], ["l"], axis=-1),
    helper.make_node("Add", ["s", "l"], ["y"]),
], [None, C, H, W])
save("softmax11", [helper.make_node("Softmax", ["x"], ["y"], axis=2)], [None, C, H, W], opset=11)

# Pad: reflect and edge (as style-transfer and segmentation exports write them), a constant other
# than zero, and opset 18's axes input.
save("pad", [
    const("p1", [0, 0, 2, 1, 0, 0, 1, 1], np.int64),
    helper.make_node("Pad", ["x", "p1"], ["r"], mode="reflect"),          # [N, C, H+3, W+2]
    const("p2", [0, 0, 1, 2, 0, 0, 2, 0], np.int64),
    helper.make_node("Pad", ["x", "p2"], ["e"], mode="edge"),             # [N, C, H+3, W+2]
    const("p3", [0, 0, 0, 2, 0, 0, 3, 0], np.int64), const("v", np.float32(0.75)),
    helper.make_node("Pad", ["e", "p3"], ["c"], mode="constant"),         # [N, C, H+6, W+4]
    helper.make_node("Pad", ["r", "p3", "v"], ["c2"], mode="constant"),   # [N, C, H+6, W+4]
    helper.make_node("Add", ["c", "c2"], ["y"]),
], [None, C, H + 6, W + 4], opset=13)
save("pad18", [
    const("p", [1, 2, 3, 0], np.int64), const("axes", [2, -1], np.int64),
    helper.make_node("Pad", ["x", "p", "", "axes"], ["y"], mode="reflect"),
], [None, C, H + 4, W + 2], opset=18)

# Opset 18's Split by num_outputs (8 columns: 3, 3 and 2), joined back in another order.
save("split18", [
    helper.make_node("Split", ["x"], ["a", "b", "c"], axis=3, num_outputs=3),
    helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=3),
], [None, C, H, W], opset=18)

# Resize beyond integer upscaling: linear with align_corners to sizes (PyTorch's
# interpolate(align_corners=True)), cubic by fractional scales, nearest downscaling with ceil.
save("resize", [
    const("sizes", [0, 0, 9, 5], np.int64),
    helper.make_node("Shape", ["x"], ["shape"]),
    const("first2_start", [0], np.int64), const("first2_end", [2], np.int64),
    helper.make_node("Slice", ["shape", "first2_start", "first2_end"], ["nc"]),
    const("hw", [9, 5], np.int64),
    helper.make_node("Concat", ["nc", "hw"], ["target"], axis=0),
    helper.make_node("Resize", ["x", "", "", "target"], ["a"], mode="linear", coordinate_transformation_mode="align_corners"),
    const("s15", np.array([1, 1, 1.5, 0.75], np.float32)),
    helper.make_node("Resize", ["a", "", "s15"], ["b"], mode="cubic"),                                   # [N, C, 13, 3]
    const("s05", np.array([1, 1, 0.5, 2], np.float32)),
    helper.make_node("Resize", ["b", "", "s05"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="ceil"),
], [None, C, 6, 6])

# Opsets 20 and 21: ONNX's own Gelu op, and an opset-21 model of ops whose forms opset 21 keeps.
save("gelu20", [helper.make_node("Gelu", ["x"], ["y"])], [None, C, H, W], opset=20)
save("opset21", [
    helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
    const("axes", [2, 3], np.int64),
    helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=1),
    helper.make_node("Sub", ["c", "m"], ["d"]),
    const("shape", [0, -1], np.int64),
    helper.make_node("Reshape", ["d", "shape"], ["y"]),
], [None, C * H * W], opset=21, inits=[w])

# Comparisons of data (with data, with a scalar on either side), Not, Where choosing between data
# and a scalar, the booleans cast to float.
save("compare_where", [
    helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
    const("t", np.float32(0.3)), const("u", np.float32(0.1)), const("half", np.float32(0.5)),
    helper.make_node("Less", ["x", "c"], ["l"]), helper.make_node("Greater", ["x", "t"], ["g"]),
    helper.make_node("GreaterOrEqual", ["u", "x"], ["ge"]), helper.make_node("LessOrEqual", ["c", "x"], ["le"]),
    helper.make_node("Equal", ["x", "x"], ["e"]), helper.make_node("Not", ["e"], ["ne"]),
    helper.make_node("Where", ["g", "x", "c"], ["w1"]), helper.make_node("Where", ["l", "half", "x"], ["w2"]),
    helper.make_node("Cast", ["ge"], ["gef"], to=TensorProto.FLOAT), helper.make_node("Cast", ["le"], ["lef"], to=TensorProto.FLOAT),
    helper.make_node("Cast", ["ne"], ["nef"], to=TensorProto.FLOAT),
    helper.make_node("Add", ["w1", "w2"], ["s1"]), helper.make_node("Add", ["s1", "gef"], ["s2"]),
    helper.make_node("Mul", ["lef", "c"], ["s3"]), helper.make_node("Add", ["s2", "s3"], ["s4"]), helper.make_node("Add", ["s4", "nef"], ["y"]),
], [None, C, H, W], inits=[w])
