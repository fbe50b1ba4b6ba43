#!/usr/bin/env python3
"""Trains models/stipple-openings.onnx, the dermoscope follicle-opening model, from a seed.

    python models/train/train_openings.py --stipple target/release/stipple --seed 1 \\
        --out models/stipple-openings.onnx

1. Renders dermoscope frames with `stipple synth --view dermoscope` into data/train-openings/
   (git-ignored): seeds 100-199, 1000-1199 and 2000-2199 (500 frames, 1280x1024 at 300 px/mm).
   The threshold-fitting seeds 200-239 and the evaluation seeds (9000+) are never used here.
2. Resamples each frame once to the working scale (60 px/mm, Pillow's `BOX` area average: what
   the Rust side's `Taps` does) and keeps it in memory with its openings (one per follicular
   unit, terminal and vellus, from the truth JSON).
3. Crops of 128 working px (2.1 mm) with what a real dermoscope adds: rotation by quarter turns
   and mirroring (hair grows every way), scale jitter 0.85-1.18, blur, colour temperature,
   exposure and gamma, sensor noise, JPEG.
4. Target: a Gaussian (sigma one cell) at every opening on the stride-2 output grid, cell
   centres where `SegMask::image_of` puts them; CenterNet's penalty-reduced focal loss (Zhou et
   al. 2019, "Objects as Points"). AdamW with a one-cycle schedule, a fixed number of steps.
5. Exports ONNX opset 17 (sigmoid output, contract metadata: see models/README.md) and prints
   the opening F1 of the model's own peaks on 12 frames of seeds 3000-3011 (held out as well).

`--smoke` runs a few steps on two frames (the test suite uses it when torch is present).
"""
import argparse
import io
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import net  # noqa: E402
from train import render  # noqa: E402

#: Working scale (px/mm) the frame is resampled to, and the native scale from which a frame is
#: a dermoscope frame (the Rust side only runs this model there).
WORKING_PX_PER_MM = 60.0
DERMOSCOPE_MIN_NATIVE = 100.0
OUTPUT_STRIDE = 2
INPUT_MULTIPLE = 4
CLASSES = ["opening"]
CROP = 128
#: (first seed, frames) of the training chunks.
TRAIN_CHUNKS = ((100, 100), (1000, 200), (2000, 200))
VAL_CHUNK = (3000, 12)


def conv(cin, cout, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    def __init__(self, c, dilation):
        super().__init__()
        self.conv = conv(c, c, 1, dilation)

    def forward(self, x):
        return x + self.conv(x)


class OpeningsNet(nn.Module):
    """A full-resolution stem, a stride-2 body of dilated residual 3x3 convolutions (about 1 mm
    of context each side at 60 px/mm), and a one-channel head (logits)."""

    def __init__(self, stem=16, width=48, dilations=(1, 2, 4, 8, 16, 1, 2)):
        super().__init__()
        self.stem = conv(3, stem)
        self.down = conv(stem, width, stride=2)
        self.body = nn.Sequential(*[Residual(width, d) for d in dilations])
        self.head = nn.Conv2d(width, 1, 1)
        nn.init.constant_(self.head.bias, -4.0)

    def forward(self, x):
        # Exposure and white balance: divide each channel by its frame mean.
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = x / (mean + 1e-3) - 1.0
        return self.head(self.body(self.down(self.stem(x))))


class Exported(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.sigmoid(self.net(image))


def load(folder, count):
    """(working-scale image float32 HxWx3, openings Nx2 in working px, truth) per frame."""
    out = []
    for i in range(count):
        stem = os.path.join(folder, f"{i:03}")
        truth = json.load(open(stem + ".json"))
        im = Image.open(stem + ".png").convert("RGB")
        f = truth["px_per_mm"] / WORKING_PX_PER_MM
        small = im.resize((round(im.width / f), round(im.height / f)), Image.BOX)
        pts = np.array([[u["x"] / f, u["y"] / f] for u in truth["units"]], dtype=np.float64).reshape(-1, 2)
        out.append((np.asarray(small, dtype=np.float32) / 255.0, pts, truth, f))
    return out


def heat(pts, n, sigma=1.0):
    """Target on an n x n stride-2 grid: cell (i, j) is centred at working (2j + 1, 2i + 1)."""
    ys, xs = np.mgrid[0:n, 0:n]
    hm = np.zeros((n, n), np.float32)
    for x, y in pts:
        cx, cy = (x - 1.0) / 2.0, (y - 1.0) / 2.0
        if -3 < cx < n + 3 and -3 < cy < n + 3:
            hm = np.maximum(hm, np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma * sigma)))
            i, j = int(round(cy)), int(round(cx))
            if 0 <= i < n and 0 <= j < n:
                hm[i, j] = 1.0
    return hm


def sample(frame, rng, crop=CROP):
    """One augmented crop (3, crop, crop) and its target (crop/2, crop/2)."""
    small, pts, _, _ = frame
    h, w, _ = small.shape
    scale = math.exp(rng.uniform(math.log(0.85), math.log(1.18))) if rng.random() < 0.6 else 1.0
    size = min(int(round(crop * scale)), h, w)
    y0, x0 = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    x = small[y0:y0 + size, x0:x0 + size]
    p = pts - np.array([x0, y0])
    if size != crop:
        img = Image.fromarray((x * 255 + 0.5).astype(np.uint8)).resize((crop, crop), Image.BILINEAR)
        x = np.asarray(img, np.float32) / 255.0
        p = p * (crop / size)
    k = int(rng.integers(4))
    x = np.rot90(x, k)
    for _ in range(k):  # a quarter turn counter-clockwise: (x, y) -> (y, crop - x)
        p = np.stack([p[:, 1], crop - p[:, 0]], 1)
    if rng.random() < 0.5:
        x = x[:, ::-1]
        p = np.stack([crop - p[:, 0], p[:, 1]], 1)
    x = np.ascontiguousarray(x)
    if rng.random() < 0.4:
        img = Image.fromarray((x * 255 + 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.9)))
        x = np.asarray(img, np.float32) / 255.0
    t = rng.uniform(-0.15, 0.15)
    x = x * np.array([1 + t, 1 + rng.uniform(-0.05, 0.05), 1 - t], np.float32) * math.exp(rng.uniform(-0.4, 0.3))
    x = np.clip(x, 0, 1) ** rng.uniform(0.75, 1.3)
    x = np.clip(x + rng.normal(0, rng.uniform(0, 0.025), x.shape).astype(np.float32), 0, 1)
    if rng.random() < 0.4:
        buf = io.BytesIO()
        Image.fromarray((x * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(40, 92)))
        x = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0
    return x.transpose(2, 0, 1).copy(), heat(p, crop // 2)


def focal_loss(logits, target):
    """CenterNet's penalty-reduced focal loss, per positive cell."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def peaks(hm, threshold):
    """Local maxima (3x3) at or above `threshold`, at their weighted centres, in working px."""
    t = torch.from_numpy(hm)[None, None]
    mx = torch.nn.functional.max_pool2d(t, 3, 1, 1)[0, 0].numpy()
    out = []
    for i, j in zip(*np.where((hm == mx) & (hm >= threshold))):
        i0, i1, j0, j1 = max(i - 1, 0), min(i + 2, hm.shape[0]), max(j - 1, 0), min(j + 2, hm.shape[1])
        w = hm[i0:i1, j0:j1]
        yy, xx = np.mgrid[i0:i1, j0:j1]
        out.append(((w * xx).sum() / w.sum() * 2 + 1, (w * yy).sum() / w.sum() * 2 + 1))
    return out


def f1_units(model, frames, threshold=0.5):
    """Opening F1 of the model's own peaks, matched as `stipple::perception::score` does."""
    model.eval()
    matched = found = total = 0
    for small, _, truth, f in frames:
        h, w = small.shape[0] // INPUT_MULTIPLE * INPUT_MULTIPLE, small.shape[1] // INPUT_MULTIPLE * INPUT_MULTIPLE
        x = torch.from_numpy(small[:h, :w].transpose(2, 0, 1).copy())[None]
        with torch.no_grad():
            hm = torch.sigmoid(model(x))[0, 0].numpy()
        dets = [(px * f, py * f) for px, py in peaks(hm, threshold)]
        dots = [([(u["x"], u["y"])] + [(a["x"], a["y"]) for a in u["hairs"]], max(u["radius"] + 1, 2))
                for u in truth["units"]]
        pairs = sorted((min(math.hypot(dx - a, dy - b) for a, b in pp), di, ti)
                       for di, (dx, dy) in enumerate(dets) for ti, (pp, lim) in enumerate(dots)
                       if min(math.hypot(dx - a, dy - b) for a, b in pp) <= lim)
        used_d, used_t = set(), set()
        for _, di, ti in pairs:
            if di not in used_d and ti not in used_t:
                used_d.add(di)
                used_t.add(ti)
        matched += len(used_d)
        found += len(dets)
        total += len(dots)
    model.train()
    p, r = matched / max(found, 1), matched / max(total, 1)
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / max(p + r, 1e-9), 3)}


def export(model, path, extra):
    meta = {
        "stipple.classes": ",".join(CLASSES),
        # The model only runs on dermoscope frames: both working scales are the same.
        "stipple.rig_px_per_mm": str(WORKING_PX_PER_MM),
        "stipple.dermoscope_px_per_mm": str(WORKING_PX_PER_MM),
        "stipple.dermoscope_min_native_px_per_mm": str(DERMOSCOPE_MIN_NATIVE),
        "stipple.output_stride": str(OUTPUT_STRIDE),
        "stipple.input_multiple": str(INPUT_MULTIPLE),
        "stipple.normalisation": "rgb/255",
        **extra,
    }
    net.export_module(Exported(model.eval()), path, meta, "stipple models/train/train_openings.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="models/stipple-openings.onnx")
    ap.add_argument("--data", default="data/train-openings")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="a few steps on two frames")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    chunks, val_chunk = TRAIN_CHUNKS, VAL_CHUNK
    if args.smoke:
        args.data = tempfile.mkdtemp(prefix="stipple-openings-smoke-")
        chunks, val_chunk, args.steps, args.batch = ((100, 1),), (200, 1), 3, 2
    train = []
    for seed, count in chunks:
        folder = os.path.join(args.data, f"seed-{seed}")
        render(args.stipple, "dermoscope", seed, count, folder)
        train += load(folder, count)
    vfolder = os.path.join(args.data, f"seed-{val_chunk[0]}")
    render(args.stipple, "dermoscope", val_chunk[0], val_chunk[1], vfolder)
    val = load(vfolder, val_chunk[1])
    print(f"{len(train)} frames ready in {time.time() - t0:.0f} s", file=sys.stderr)
    model = OpeningsNet()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    t1 = time.time()
    for step in range(args.steps):
        xs, ys = zip(*[sample(train[rng.integers(len(train))], rng) for _ in range(args.batch)])
        loss = focal_loss(model(torch.from_numpy(np.stack(xs))), torch.from_numpy(np.stack(ys))[:, None])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t1:.0f} s", file=sys.stderr, flush=True)
    train_s = time.time() - t1
    report = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "parameters": n_params,
              "frames": len(train), "train_seconds": round(train_s), "threads": args.threads,
              "val_seeds": f"{val_chunk[0]}-{val_chunk[0] + val_chunk[1] - 1}", "val_peaks": f1_units(model, val)}
    export(model, args.out, {"stipple.trained": "yes", "stipple.train_seed": str(args.seed),
                             "stipple.train_steps": str(args.steps)})
    report["total_seconds"] = round(time.time() - t0)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
