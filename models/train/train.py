#!/usr/bin/env python3
"""Trains models/stipple-seg.onnx from `stipple synth` frames, reproducibly from a seed.

    python models/train/train.py --stipple target/release/stipple --seed 1 --out models/stipple-seg.onnx

1. Renders training frames with `stipple synth` into data/train-seg/ (git-ignored): rig and
   dermoscope views, every skin type and negative the renderer draws (it draws them per seed).
   Seeds 20000+ (rig), 30000+ (dermoscope), validation 40000+/41000+; the evaluation seeds
   (9000+, the OpenCV side-by-side and README tables) are never used here.
2. Labels per output cell from the truth JSON (see `labels`): background, follicle opening
   (disc at each unit), pigment dot (disc), not-a-dot (negative shapes), hair shaft (polyline
   from where each hair leaves the skin along its angle and length).
3. Crops at the working scale with camera augmentation: rotation, scale jitter, colour
   temperature, exposure and gamma, illumination gradient, blur, noise, JPEG, and (dermoscope)
   a burned-in text bar.
4. Weighted cross-entropy, AdamW with a cosine schedule, a fixed number of steps.
5. Exports ONNX opset 17 with the contract metadata (net.py) and prints validation IoU.

`--smoke` runs a few steps on two tiny frames (the test suite uses it when torch is present).
"""
import argparse
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import net  # noqa: E402

CROP = 96  # working px; output cells CROP / 2
IGNORE = 255
CLASS_WEIGHTS = [1.0, 4.0, 2.0, 1.5, 1.0]
FOLLICLE, PIGMENT, NOT_A_DOT, SHAFT = 1, 2, 3, 4


def render(stipple, view, seed, count, out):
    """Frames seed..seed+count-1 as out/NNN.png + NNN.json; renders only the missing ones
    (frame i of `stipple synth --seed S` uses seed S + i, so chunks are the same frames)."""
    os.makedirs(out, exist_ok=True)
    have = 0
    while have < count and os.path.exists(os.path.join(out, f"{have:03}.json")) \
            and os.path.exists(os.path.join(out, f"{have:03}.png")):
        have += 1
    if have >= count:
        return
    tmp = tempfile.mkdtemp(prefix="stipple-synth-", dir=out)
    subprocess.run([stipple, "synth", "--seed", str(seed + have), "--count", str(count - have), "--view", view,
                    "--out", tmp], check=True)
    for i in range(count - have):
        for ext in ("png", "json"):
            os.replace(os.path.join(tmp, f"{i:03}.{ext}"), os.path.join(out, f"{have + i:03}.{ext}"))
    os.rmdir(tmp)


class Frame:
    """One synthetic frame at its working scale, with its truth in native pixels."""

    def __init__(self, png, js):
        with open(js) as fh:
            t = json.load(fh)
        self.view = t["view"]
        native = Image.open(png).convert("RGB")
        w, h = native.size
        work = net.DERMOSCOPE_PX_PER_MM if t["px_per_mm"] >= net.DERMOSCOPE_MIN_NATIVE else net.RIG_PX_PER_MM
        k = work / t["px_per_mm"]
        ww, wh = max(4, round(w * k)), max(4, round(h * k))
        self.image = native.resize((ww, wh), Image.BOX)  # same area average as the Rust side
        self.fill = tuple(int(v) for v in np.asarray(self.image).reshape(-1, 3).mean(0))
        self.kx, self.ky = ww / w, wh / h
        self.w, self.h = w, h
        self.discs = []  # (x, y, r, cls)
        self.bands = []  # (ax, ay, bx, by, half_width, cls)
        cell = 2.0 / self.kx  # native px per output cell at scale 1
        for n in t["negatives"]:
            s = n["shape"]
            if s["type"] == "circle":
                self.discs.append((s["x"], s["y"], s["r"], NOT_A_DOT))
            else:
                pts = s["points"]
                for a, b in zip(pts, pts[1:]):
                    self.bands.append((a[0], a[1], b[0], b[1], s["half_width"], NOT_A_DOT))
        for u in t["units"]:
            for hr in u["hairs"]:
                bx = hr["x"] + hr["length_px"] * math.cos(hr["angle_rad"])
                by = hr["y"] + hr["length_px"] * math.sin(hr["angle_rad"])
                self.bands.append((hr["x"], hr["y"], bx, by, max(hr["radius"], 0.3 * cell), SHAFT))
        for p in t["pigment"]:
            self.discs.append((p["x"], p["y"], max(p["radius"], 0.75 * cell), PIGMENT))
        for u in t["units"]:
            self.discs.append((u["x"], u["y"], max(u["radius"], 0.75 * cell), FOLLICLE))
        self.discs = np.array(self.discs, dtype=np.float64).reshape(-1, 4)
        self.bands = np.array(self.bands, dtype=np.float64).reshape(-1, 6)
        # Draw order: negatives, then shafts, then pigment, then follicles (later wins).
        self.order = [NOT_A_DOT, SHAFT, PIGMENT, FOLLICLE]


def labels(frame, pts_native):
    """Class of each point (native px), IGNORE outside the frame."""
    x, y = pts_native[:, 0:1], pts_native[:, 1:2]
    lab = np.zeros(len(pts_native), dtype=np.int64)
    lo, hi = pts_native.min(0) - 64, pts_native.max(0) + 64
    for cls in frame.order:
        d = frame.discs
        d = d[(d[:, 3] == cls) & (d[:, 0] > lo[0]) & (d[:, 0] < hi[0]) & (d[:, 1] > lo[1]) & (d[:, 1] < hi[1])]
        if len(d):
            inside = ((x - d[:, 0]) ** 2 + (y - d[:, 1]) ** 2) <= d[:, 2] ** 2
            lab[inside.any(1)] = cls
        b = frame.bands
        b = b[b[:, 5] == cls]
        if len(b):
            keep = ~(((b[:, 0] < lo[0] - b[:, 4]) & (b[:, 2] < lo[0] - b[:, 4]))
                     | ((b[:, 0] > hi[0] + b[:, 4]) & (b[:, 2] > hi[0] + b[:, 4]))
                     | ((b[:, 1] < lo[1] - b[:, 4]) & (b[:, 3] < lo[1] - b[:, 4]))
                     | ((b[:, 1] > hi[1] + b[:, 4]) & (b[:, 3] > hi[1] + b[:, 4])))
            b = b[keep]
        if len(b):
            ax, ay, bx, by, hw = b[:, 0], b[:, 1], b[:, 2], b[:, 3], b[:, 4]
            dx, dy = bx - ax, by - ay
            len2 = np.maximum(dx * dx + dy * dy, 1e-9)
            t = np.clip(((x - ax) * dx + (y - ay) * dy) / len2, 0, 1)
            dist = np.hypot(x - ax - t * dx, y - ay - t * dy)
            lab[(dist <= hw).any(1)] = cls
    outside = (pts_native[:, 0] < 0) | (pts_native[:, 1] < 0) | (pts_native[:, 0] >= frame.w) | (pts_native[:, 1] >= frame.h)
    lab[outside] = IGNORE
    return lab


def text_bar(img, rng):
    """A burned-in caption bar at the top, like a dermoscope's date/magnification stamp."""
    d = ImageDraw.Draw(img)
    w, h = img.size
    bh = int(h * rng.uniform(0.06, 0.16))
    dark = rng.random() < 0.6
    bg = tuple(int(v) for v in (rng.integers(0, 40, 3) if dark else rng.integers(200, 256, 3)))
    fg = (235, 235, 235) if dark else (20, 20, 20)
    d.rectangle([0, 0, w, bh], fill=bg)
    x = rng.integers(0, 8)
    while x < w:
        gw = int(rng.integers(1, 4))
        if rng.random() < 0.8:
            d.rectangle([x, bh * 0.25, x + gw, bh * rng.uniform(0.5, 0.8)], fill=fg)
        x += gw + int(rng.integers(1, 4))
    return bh


def sample(frame, rng, augment=True, geom=None):
    """One crop (3, CROP, CROP) float32 in [0, 1] and its labels (CROP/2, CROP/2)."""
    ww, wh = frame.image.size
    theta = rng.uniform(0, 2 * math.pi) if augment else 0.0
    s = math.exp(rng.uniform(math.log(0.8), math.log(1.25))) if augment else 1.0
    cx, cy = rng.uniform(0, ww), rng.uniform(0, wh)
    if geom is not None:
        theta, s, cx, cy = geom
    c, sn = math.cos(theta) / s, math.sin(theta) / s
    # crop continuous coords (u, v) -> working: [c -sn; sn c] (u - CROP/2, v - CROP/2) + (cx, cy)
    a, b, d_, e = c, -sn, sn, c
    off_x = cx - a * CROP / 2 - b * CROP / 2
    off_y = cy - d_ * CROP / 2 - e * CROP / 2
    img = frame.image.transform((CROP, CROP), Image.AFFINE, (a, b, off_x, d_, e, off_y), Image.BILINEAR,
                                fillcolor=frame.fill)
    n = CROP // 2
    g = np.arange(n) * 2 + 1.0
    uu, vv = np.meshgrid(g, g)
    wx = a * uu + b * vv + off_x
    wy = d_ * uu + e * vv + off_y
    pts = np.stack([wx.ravel() / frame.kx, wy.ravel() / frame.ky], 1)
    lab = labels(frame, pts).reshape(n, n)
    if frame.view == "dermoscope":
        # Hairs whose opening lies outside the frame are not in the truth: their shafts would be
        # taught as skin. Dark cells without a label are left out of the loss instead.
        lum = np.asarray(img.convert("L"), dtype=np.float32).reshape(n, 2, n, 2).mean((1, 3))
        lab[(lab == 0) & (lum < 0.8 * np.median(lum))] = IGNORE
    if augment:
        if frame.view == "dermoscope" and rng.random() < 0.25:
            bh = text_bar(img, rng)
            lab[: (bh + 1) // 2, :] = 0
        if rng.random() < 0.5:
            img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0)))
    x = np.asarray(img, dtype=np.float32) / 255.0
    if augment:
        t = rng.uniform(-0.15, 0.15)
        gains = np.array([1 + t, 1 + rng.uniform(-0.04, 0.04), 1 - t], dtype=np.float32)
        x = x * gains * math.exp(rng.uniform(-0.5, 0.4))
        ramp = np.linspace(-1, 1, CROP, dtype=np.float32)
        ang = rng.uniform(0, 2 * math.pi)
        grad = 1 + rng.uniform(0, 0.2) * (math.cos(ang) * ramp[None, :] + math.sin(ang) * ramp[:, None])
        x = x * grad[:, :, None]
        x = np.clip(x, 0, 1) ** rng.uniform(0.8, 1.25)
        x = x + rng.normal(0, rng.uniform(0, 0.03), x.shape).astype(np.float32)
        x = np.clip(x, 0, 1)
        if rng.random() < 0.5:
            buf = io.BytesIO()
            Image.fromarray((x * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(30, 92)))
            x = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
    return x.transpose(2, 0, 1).copy(), lab


def load_frames(folder, count=None):
    out = []
    names = sorted(f for f in os.listdir(folder) if f.endswith(".json") and f[:-5].isdigit())
    for f in names[:count]:
        stem = os.path.join(folder, f[:-5])
        img = stem + (".png" if os.path.exists(stem + ".png") else ".jpg")
        out.append(Frame(img, stem + ".json"))
    return out


def batch(frames_by_view, rng, size, augment=True):
    xs, ys = [], []
    views = list(frames_by_view)
    for i in range(size):
        frames = frames_by_view[views[i % len(views)]]
        x, y = sample(frames[rng.integers(len(frames))], rng, augment)
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def iou(model, frames_by_view, rng, batches=6):
    model.eval()
    inter = np.zeros((len(frames_by_view), len(net.CLASSES)))
    union = np.zeros_like(inter)
    with torch.no_grad():
        for vi, view in enumerate(frames_by_view):
            for _ in range(batches):
                x, y = batch({view: frames_by_view[view]}, rng, 16, augment=False)
                p = model(x).argmax(1)
                valid = y != IGNORE
                for c in range(len(net.CLASSES)):
                    a, b = (p == c) & valid, (y == c) & valid
                    inter[vi, c] += (a & b).sum().item()
                    union[vi, c] += (a | b).sum().item()
    model.train()
    return {view: {net.CLASSES[c]: round(inter[vi, c] / max(union[vi, c], 1), 3) for c in range(len(net.CLASSES))}
            for vi, view in enumerate(frames_by_view)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="models/stipple-seg.onnx")
    ap.add_argument("--data", default="data/train-seg")
    ap.add_argument("--rig-frames", type=int, default=240)
    ap.add_argument("--dermoscope-frames", type=int, default=0)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="a few steps on two tiny frames")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    if args.smoke:
        args.data = tempfile.mkdtemp(prefix="stipple-train-smoke-")
        args.rig_frames, args.dermoscope_frames, args.steps, args.batch = 1, 1, 3, 4
    train, val = {}, {}
    for view, seed, vseed, count in (("rig", 20000, 40000, args.rig_frames),
                                     ("dermoscope", 30000, 41000, args.dermoscope_frames)):
        if count <= 0:
            continue  # e.g. a rig-only model: the openings model serves dermoscope frames
        folder = os.path.join(args.data, view)
        render(args.stipple, view, seed, count, folder)
        train[view] = load_frames(folder, count)
        if args.smoke:
            val[view] = train[view]
        else:
            vfolder = os.path.join(args.data, "val-" + view)
            render(args.stipple, view, vseed, 6, vfolder)
            val[view] = load_frames(vfolder)
    print(f"data ready in {time.time() - t0:.0f} s", file=sys.stderr)
    model = net.StippleSeg()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHTS), ignore_index=IGNORE)
    t1 = time.time()
    for step in range(args.steps):
        x, y = batch(train, rng, args.batch)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t1:.0f} s", file=sys.stderr, flush=True)
    train_s = time.time() - t1
    scores = iou(model, val, np.random.default_rng(12345), batches=1 if args.smoke else 6)
    report = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "parameters": n_params,
              "train_seconds": round(train_s), "total_seconds": round(time.time() - t0),
              "threads": args.threads, "val_iou": scores}
    net.export(model, args.out, {"stipple.trained": "yes", "stipple.train_seed": str(args.seed),
                                 "stipple.train_steps": str(args.steps)})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
