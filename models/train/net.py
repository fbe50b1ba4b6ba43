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
#: The same with a sixth plane for what is not skin (the chair: room, long hair, ear, gloves, machine).
#: `stipple` does not load such a model yet: it is the learned skin mask's first step (issue 19).
CLASSES_WITH_NOT_SKIN = CLASSES + ["not_skin"]
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
    def __init__(self, c=(8, 16, 32), classes=CLASSES):
        super().__init__()
        self.classes = list(classes)
        c0, c1, c2 = c
        self.stem = conv(3, c0, stride=2)
        self.skip = conv(c0, c1)
        self.down = conv(c1, c2, stride=2)
        self.body = nn.Sequential(sep(c2), sep(c2, 2), sep(c2, 4), sep(c2, 8))
        self.lift = nn.Conv2d(c2, c1, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.refine = sep(c1)
        self.head = nn.Conv2d(c1, len(self.classes), 1)

    def forward(self, x):
        # Exposure and white balance: divide each channel by its frame mean.
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = x / (mean + 1e-3) - 1.0
        s = self.skip(self.stem(x))
        b = self.body(self.down(s))
        y = torch.relu(self.up(self.lift(b)) + s)
        return self.head(self.refine(y))  # logits; softmax is added at export


#: The skin model: what is not skin in rig frames, at a coarser working scale (a glove, an ear,
#: a mass of hair or the room are surfaces of centimetres; the context has to be too).
SKIN_CLASSES = ["not_skin"]
SKIN_PX_PER_MM = 6.0
SKIN_INPUT_MULTIPLE = 8


class SkinNet(nn.Module):
    """What is not skin, per cell of 2 working pixels (1/3 mm at 6 px/mm): a stride-2 stem, two
    more stride-2 steps to a body at stride 8 with dilated separable blocks (about 40 mm of
    context), and two skips back up to stride 2; one logit per cell."""

    def __init__(self, c=(12, 24, 48)):
        super().__init__()
        c0, c1, c2 = c
        self.classes = list(SKIN_CLASSES)
        self.stem = conv(3, c0, stride=2)
        self.down1 = conv(c0, c1, stride=2)
        self.down2 = conv(c1, c2, stride=2)
        self.body = nn.Sequential(sep(c2), sep(c2, 2), sep(c2, 4), sep(c2, 8), sep(c2, 1))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.lift1 = nn.Conv2d(c2, c1, 1)
        self.refine1 = sep(c1)
        self.lift0 = nn.Conv2d(c1, c0, 1)
        self.refine0 = sep(c0)
        self.head = nn.Conv2d(c0, 1, 1)

    def forward(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = x / (mean + 1e-3) - 1.0
        s0 = self.stem(x)
        s1 = self.down1(s0)
        b = self.body(self.down2(s1))
        y1 = self.refine1(torch.relu(self.up(self.lift1(b)) + s1))
        y0 = self.refine0(torch.relu(self.up(self.lift0(y1)) + s0))
        return self.head(y0)  # logits; the sigmoid is added at export


def load_exported(model, path):
    """Starts `model` from an exported model at `path` (fine-tuning): the exporter folded each
    batch norm into the convolution before it, so the model's batch norms are folded the same
    way (replaced by the identity, the convolution given a bias) and every convolution takes the
    weights of the exported graph's convolutions in the order they run (which is the order
    `model` defines them). Raises ValueError when the shapes do not match."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(path).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes = [n for n in g.node if n.op_type == "Conv"]
    # Every batch norm sits in a Sequential right after its convolution (`conv`, `sep`).
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for k, m in list(seq.named_children()):
            if isinstance(m, nn.BatchNorm2d):
                prev = seq[int(k) - 1]
                prev.bias = nn.Parameter(torch.zeros(prev.out_channels))
                seq[int(k)] = nn.Identity()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(nodes):
        raise ValueError(f"{path}: {len(nodes)} convolutions, the model has {len(convs)}")
    for i, (c, n) in enumerate(zip(convs, nodes)):
        w = torch.from_numpy(init[n.input[1]].copy())
        if w.shape != c.weight.shape:
            raise ValueError(f"{path}: convolution {i} is {tuple(w.shape)}, the model's {tuple(c.weight.shape)}")
        c.weight.data.copy_(w)
        if (len(n.input) > 2) != (c.bias is not None):
            raise ValueError(f"{path}: convolution {i} differs in having a bias")
        if c.bias is not None:
            c.bias.data.copy_(torch.from_numpy(init[n.input[2]].copy()))
    return model


class ExportedSkin(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.sigmoid(self.net(image))


def export_skin(net, path, extra_meta=None):
    """Exports the skin model (eval mode, sigmoid added) with its contract metadata: the dot
    model's keys, with its own classes, working scale and input multiple."""
    meta = metadata(extra_meta, SKIN_CLASSES)
    meta["stipple.rig_px_per_mm"] = str(SKIN_PX_PER_MM)
    meta["stipple.input_multiple"] = str(SKIN_INPUT_MULTIPLE)
    return export_module(ExportedSkin(net.eval()), path, meta, "stipple models/train")


class Exported(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.softmax(self.net(image), dim=1)


def metadata(extra=None, classes=CLASSES):
    meta = {
        "stipple.classes": ",".join(classes),
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
    return export_module(Exported(net.eval()), path, metadata(extra_meta, net.classes), "stipple models/train")


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
