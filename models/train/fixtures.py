#!/usr/bin/env python3
"""Writes the broken models the contract tests load (tests/data/models/), with `onnx` only.

    python models/train/fixtures.py tests/data/models
"""
import os
import sys

import onnx
from onnx import TensorProto, helper

import net


def model(in_name, in_shape, out_name, out_shape, meta=True, weight=0.0, stride=1):
    x = helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)
    # A 1x1 convolution from the input's channels to the output's.
    w = helper.make_tensor("w", TensorProto.FLOAT, [out_shape[1], in_shape[1], 1, 1],
                           [weight] * (out_shape[1] * in_shape[1]))
    attrs = {"strides": [stride, stride]} if stride != 1 else {}
    node = helper.make_node("Conv", [in_name, "w"], [out_name], **attrs)
    g = helper.make_graph([node], "fixture", [x], [y], initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    if meta:
        for k, v in net.metadata().items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
    onnx.checker.check_model(m)
    return m


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/models"
    os.makedirs(out, exist_ok=True)
    n = len(net.CLASSES)
    fixtures = {
        # One channel instead of RGB.
        "wrong-input-shape.onnx": model("image", [1, 1, "h", "w"], "probs", [1, 1, "h", "w"]),
        # A fixed 64x64 input: the contract needs free H and W.
        "fixed-input-size.onnx": model("image", [1, 3, 64, 64], "probs", [1, 3, 64, 64]),
        "wrong-output-name.onnx": model("image", [1, 3, "h", "w"], "logits", [1, 3, "h", "w"]),
        "wrong-classes.onnx": model("image", [1, 3, "h", "w"], "probs", [1, 3, "h", "w"]),
        "no-metadata.onnx": model("image", [1, 3, "h", "w"], "probs", [1, n, "h", "w"], meta=False),
        # Passes every check of the contract, then outputs NaN everywhere.
        "nan-output.onnx": model("image", [1, 3, "h", "w"], "probs", [1, n, "h2", "w2"],
                                 weight=float("nan"), stride=net.OUTPUT_STRIDE),
    }
    for name, m in fixtures.items():
        onnx.save(m, os.path.join(out, name))


if __name__ == "__main__":
    main()
