"""The segmentation network and its ONNX export: the contract lives here and in models/README.md.

A small fully convolutional net: a stride-2 stem, a stride-4 body with dilated 3x3 convolutions
for context (about 4.7 mm at the rig working scale), one skip back to stride 2, and a softmax
head. Input: RGB in [0, 1], NCHW float32, H and W multiples of 4, resampled to the working scale.
Output: per-class probabilities at half the input resolution (one cell = 2 input pixels).
"""

import torch
from torch import nn

#: Output classes, in channel order. The Rust side checks this list against the model metadata.
CLASSES = ["background", "follicle", "pigment", "not_a_dot", "shaft"]
#: Working scale for rig frames (native 12-28 px/mm): frames are resampled to it.
RIG_PX_PER_MM = 12.0
#: Working scale for dermoscope frames (native 200-400 px/mm).
DERMOSCOPE_PX_PER_MM = 48.0
#: Frames at or above this native scale use the dermoscope working scale.
DERMOSCOPE_MIN_NATIVE = 100.0
#: Input pixels per output cell, and the multiple H and W must be.
OUTPUT_STRIDE = 2
INPUT_MULTIPLE = 4
INPUT_NAME = "image"
OUTPUT_NAME = "probs"


def conv(cin, cout, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def sep(c, dilation=1):
    """Depthwise-separable 3x3 block: a seventh of the multiply-adds of a full 3x3 convolution."""
    return nn.Sequential(
        nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
    )


class StippleSeg(nn.Module):
    def __init__(self, c=(8, 16, 32)):
        super().__init__()
        c0, c1, c2 = c
        self.stem = conv(3, c0, stride=2)
        self.skip = conv(c0, c1)
        self.down = conv(c1, c2, stride=2)
        self.body = nn.Sequential(sep(c2), sep(c2, 2), sep(c2, 4), sep(c2, 8))
        self.lift = nn.Conv2d(c2, c1, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.refine = sep(c1)
        self.head = nn.Conv2d(c1, len(CLASSES), 1)

    def forward(self, x):
        # Exposure and white balance: divide each channel by its frame mean.
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = x / (mean + 1e-3) - 1.0
        s = self.skip(self.stem(x))
        b = self.body(self.down(s))
        y = torch.relu(self.up(self.lift(b)) + s)
        return self.head(self.refine(y))  # logits; softmax is added at export


class Exported(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.softmax(self.net(image), dim=1)


def metadata(extra=None):
    meta = {
        "stipple.classes": ",".join(CLASSES),
        "stipple.rig_px_per_mm": str(RIG_PX_PER_MM),
        "stipple.dermoscope_px_per_mm": str(DERMOSCOPE_PX_PER_MM),
        "stipple.dermoscope_min_native_px_per_mm": str(DERMOSCOPE_MIN_NATIVE),
        "stipple.output_stride": str(OUTPUT_STRIDE),
        "stipple.input_multiple": str(INPUT_MULTIPLE),
        "stipple.normalisation": "rgb/255",
    }
    meta.update(extra or {})
    return meta


def export(net, path, extra_meta=None):
    """Exports `net` (eval mode, softmax added) to ONNX opset 17 with the Stipple metadata."""
    return export_module(Exported(net.eval()), path, metadata(extra_meta), "stipple models/train")


def export_module(model, path, meta, producer):
    """Exports a module that maps `image` to `probs` (H and W free) to ONNX opset 17 with the
    metadata `meta`; the openings model's script uses it too."""
    import onnx

    dummy = torch.rand(1, 3, 96, 128)
    torch.onnx.export(
        model.eval(),
        (dummy,),
        path,
        opset_version=17,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {2: "height", 3: "width"}, OUTPUT_NAME: {2: "cell_rows", 3: "cell_cols"}},
        dynamo=False,
    )
    m = onnx.load(path)
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = producer
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return path


if __name__ == "__main__":
    import sys

    torch.manual_seed(0)
    net = StippleSeg()
    print(sum(p.numel() for p in net.parameters()), "parameters", file=sys.stderr)
    export(net, sys.argv[1] if len(sys.argv) > 1 else "stipple-seg.onnx", {"stipple.trained": "no"})
