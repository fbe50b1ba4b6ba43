#!/usr/bin/env python3
"""Trains models/stipple-openings.onnx on real trichoscopy photographs (the FDU/BSRL set).

    python models/train/extract_fdu.py /path/to/hair-follicle-density-estimation-209b --out data/fdu
    nice -n 10 .venv-train/bin/python models/train/train_openings_real.py --data data/fdu --seed 1 \\
        --out models/stipple-openings.onnx

1. Reads the training split of `data/fdu` (written by `extract_fdu.py`): each photograph
   (1280x1024 at about 300 px/mm) and its exit points (`(xmin, ymin)` of each annotated hair,
   as written). Exit points within 0.12 mm are one follicular unit (`scripts/score_fdu.py`'s
   rule); the target is one peak per unit, at the mean of its exit points, and the unit's hair
   count. A burned-in text bar at the top is left out of the loss. The validation split is used
   only to report (and, in `choose_on_val.py`, to choose thresholds); the third split is never
   read.
2. Keeps each photograph at 150 px/mm (area average, uint8, decoded once and cached in
   `train-frames.pkl` beside the checkpoint) and cuts crops of 96 working px (1.6 mm) at the
   working scale (60 px/mm), resampling only the window a crop can reach, with what real
   dermoscopes vary: any rotation and mirroring, a scale as if the frame were 200-400 px/mm,
   colour cast and white balance, exposure, gamma and contrast, the glare and haze of
   non-polarised light, blur, sensor noise, JPEG.
3. The openings network of `train_openings.py` (same contract; 32 channels wide and six
   residual blocks instead of 48 and seven, see `WIDTH`) with a second head that regresses the number of hairs of the unit at its peak cell (trained, used by
   `--export-hairs` only: the bundled model keeps the one-output contract). CenterNet's
   penalty-reduced focal loss; AdamW with a one-cycle schedule, a fixed number of steps.
4. With `--rendered-share F`, a fraction F of each batch is crops of the project's own rendered
   dermoscope frames instead (`train_openings.py`'s frames, crops and augmentation, cut at this
   script's crop size; `--rendered-frames` of its training seeds, rendered with `--stipple` when
   missing): the rendered frames' openings stay found while the model learns the photographs.
   Their units carry no hair count, so they are left out of the hairs loss.
5. Exports ONNX opset 17 with the contract metadata, and prints the opening figures of the
   model's own peaks on the validation split (scored as `score_fdu.py` scores).

`--smoke` runs a few steps on two frames of the training split when `data/fdu` is present (the
test suite uses it when torch is present).
"""
import argparse
import io
import json
import math
import os
import pickle
import sys
import time

# Idle OpenMP threads sleep instead of spinning: on 2 cores shared with other work, spinning
# threads of torch (and of OpenCV between steps) took each other's time and made a step 5-8x
# slower (1.1 s against 0.26 s under a concurrent build); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402
from torch import nn  # noqa: E402

# The crops are small: OpenCV's own threads only compete with torch's.
cv2.setNumThreads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import net  # noqa: E402
import score_fdu  # noqa: E402
import train_openings  # noqa: E402
from train import render  # noqa: E402
from train_openings import (CLASSES, DERMOSCOPE_MIN_NATIVE, INPUT_MULTIPLE, OUTPUT_STRIDE,  # noqa: E402
                            WORKING_PX_PER_MM, OpeningsNet)

CROP = 96
#: Narrower and shallower than the rendered-frame model (48 wide, 7 blocks): about a quarter of
#: the work per pixel, so that training fits 2 shared cores in an hour; receptive field about
#: 1 mm, what an opening and the shafts leaving it need.
WIDTH = 32
DILATIONS = (1, 2, 4, 8, 1, 2)
#: Scale the photographs are kept at in memory (px/mm), above every working scale a crop needs.
STORE_PX_PER_MM = 150.0
NATIVE_PX_PER_MM = score_fdu.PX_PER_MM
#: Crops as if the frame's stated scale were 200-400 px/mm while it is 300.
SCALE_RANGE = (200.0, 400.0)
MAX_HAIRS = 4


class RealOpeningsNet(OpeningsNet):
    """OpeningsNet with a second 1x1 head: the hairs of the unit at a peak (1-4)."""

    def __init__(self, width=WIDTH, dilations=DILATIONS):
        super().__init__(width=width, dilations=dilations)
        self.hairs = nn.Conv2d(width, 1, 1)

    def both(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = x / (mean + 1e-3) - 1.0
        f = self.body(self.down(self.stem(x)))
        return self.head(f), 1.0 + (MAX_HAIRS - 1) * torch.sigmoid(self.hairs(f))

    def forward(self, x):
        return self.both(x)[0]


class Exported(nn.Module):
    def __init__(self, model, with_hairs):
        super().__init__()
        self.model, self.with_hairs = model, with_hairs

    def forward(self, image):
        logits, hairs = self.model.both(image)
        p = torch.sigmoid(logits)
        return torch.cat([p, hairs], 1) if self.with_hairs else p


def load_frame(data, name):
    """(image at STORE_PX_PER_MM uint8 HxWx3, units [(x, y, hairs)] in store px, bar rows in store px)."""
    truth = score_fdu.Truth(os.path.join(data, "annotations", name + ".xml"), os.path.join(data, "images", name + ".jpg"))
    im = Image.open(os.path.join(data, "images", name + ".jpg")).convert("RGB")
    f = NATIVE_PX_PER_MM / STORE_PX_PER_MM
    small = np.asarray(im.resize((round(im.width / f), round(im.height / f)), Image.BOX))
    units = []
    for u in truth.units:
        pts = np.array([truth.points[k] for k in u], np.float64)
        # Annotations are pixel indices; pixel k covers [k, k + 1).
        c = (pts.mean(0) + 0.5) / f
        units.append((c[0], c[1], min(len(u), MAX_HAIRS)))
    return small, np.array(units, np.float64).reshape(-1, 3), truth.bar / f


def heat(units, n, valid):
    """Targets on an n x n stride-2 grid (cell (i, j) centred at working (2j + 1, 2i + 1)):
    Gaussian peaks (sigma one cell), the hairs at each peak cell, and the loss mask."""
    ys, xs = np.mgrid[0:n, 0:n]
    hm = np.zeros((n, n), np.float32)
    hairs = np.zeros((n, n), np.float32)
    for x, y, k in units:
        cx, cy = (x - 1.0) / 2.0, (y - 1.0) / 2.0
        if -3 < cx < n + 3 and -3 < cy < n + 3:
            hm = np.maximum(hm, np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 2.0))
            i, j = int(round(cy)), int(round(cx))
            if 0 <= i < n and 0 <= j < n:
                hm[i, j] = 1.0
                hairs[i, j] = k
    return hm, hairs, valid


def sample(frame, rng):
    """One augmented crop (3, CROP, CROP) with its targets (each CROP/2 square).

    Only the window of the stored photograph that the rotated crop can reach is resampled
    (area average) to the crop's scale, not the whole frame."""
    small, units, bar = frame
    h, w, _ = small.shape
    stated = math.exp(rng.uniform(math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])))
    # Working px per store px: the Rust side resamples by stated/60, so content appears at
    # 60 * 300 / stated working px per mm.
    k = WORKING_PX_PER_MM * NATIVE_PX_PER_MM / stated / STORE_PX_PER_MM
    # Crop centre in store px (continuous: pixel i covers [i, i + 1)), anywhere in the frame.
    sx, sy = rng.uniform(0, w), rng.uniform(0, h)
    reach = (CROP / 2 * math.sqrt(2) + 3) / k
    x0, x1 = max(0, int(sx - reach)), min(w, int(math.ceil(sx + reach)))
    y0, y1 = max(0, int(sy - reach)), min(h, int(math.ceil(sy + reach)))
    win = small[y0:y1, x0:x1]
    scaled = cv2.resize(win, (max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k))), interpolation=cv2.INTER_AREA)
    sh, sw = scaled.shape[:2]
    kx, ky = sw / (x1 - x0), sh / (y1 - y0)
    # Rotation about the crop centre, in pixel-index coordinates (what warpAffine uses).
    cx, cy = (sx - x0) * kx - 0.5, (sy - y0) * ky - 0.5
    ang = rng.uniform(-180, 180)
    rot = cv2.getRotationMatrix2D((cx, cy), ang, 1.0)
    rot[:, 2] += np.array([(CROP - 1) / 2 - cx, (CROP - 1) / 2 - cy])
    if rng.random() < 0.5:  # mirror
        rot = np.array([[-1, 0, CROP - 1], [0, 1, 0]], np.float64) @ np.vstack([rot, [0, 0, 1]])
    x = cv2.warpAffine(scaled, rot, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    inside = np.ones((sh, sw), np.uint8)
    if bar > 0:
        # Window rows whose centres lie in the text bar.
        inside[:max(0, int(math.ceil((bar - y0) * ky - 0.5)))] = 0
    valid = cv2.warpAffine(inside, rot, (CROP, CROP), flags=cv2.INTER_NEAREST, borderValue=0)
    valid = cv2.resize(valid, (CROP // 2, CROP // 2), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    if len(units):
        # Continuous store px -> window index px -> crop index px -> crop continuous px.
        p = np.stack([(units[:, 0] - x0) * kx - 0.5, (units[:, 1] - y0) * ky - 0.5, np.ones(len(units))], 1) @ rot.T
        units = np.concatenate([p + 0.5, units[:, 2:3]], 1)
    x = x.astype(np.float32) / 255.0
    x = photometric(x, rng)
    hm, hairs, valid = heat(units, CROP // 2, valid)
    return x.transpose(2, 0, 1).copy(), hm, hairs, valid


def rendered_frames(stipple, data, count):
    """The first `count` frames of `train_openings.TRAIN_CHUNKS` (rendered into `data` when
    missing), loaded at the working scale as `train_openings.load` loads them."""
    out = []
    for seed, n in train_openings.TRAIN_CHUNKS:
        n = min(n, count - len(out))
        if n <= 0:
            break
        folder = os.path.join(data, f"seed-{seed}")
        render(stipple, "dermoscope", seed, n, folder)
        out += train_openings.load(folder, n)
    return out


def rendered_sample(frame, rng):
    """A crop of a rendered frame in `sample`'s form; hairs 0 (unknown: no hairs loss there)."""
    x, hm = train_openings.sample(frame, rng, crop=CROP)
    n = CROP // 2
    return x, hm, np.zeros((n, n), np.float32), np.ones((n, n), np.float32)


def photometric(x, rng):
    """What real dermoscopes and their JPEGs vary, on a float HxWx3 crop in [0, 1]."""
    if rng.random() < 0.5:
        img = Image.fromarray((x * 255 + 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
        x = np.asarray(img, np.float32) / 255.0
    # Saturation: from grey to vivid.
    grey = x.mean(-1, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.5, 1.6)
    # White balance and colour cast: a gain per channel.
    x = x * np.exp(rng.normal(0, 0.12, 3)).astype(np.float32)
    # Exposure, gamma, contrast.
    x = np.clip(x * math.exp(rng.uniform(-0.5, 0.4)), 0, 1) ** rng.uniform(0.7, 1.4)
    m = x.mean()
    x = m + (x - m) * rng.uniform(0.7, 1.3)
    # Non-polarised light: a glare veil, and specular glints on shafts and scale.
    if rng.random() < 0.3:
        x = x + rng.uniform(0.0, 0.2) * (1 - x)
    if rng.random() < 0.3:
        g = np.zeros(x.shape[:2], np.float32)
        for _ in range(int(rng.integers(1, 12))):
            yy, xx = rng.integers(0, x.shape[0]), rng.integers(0, x.shape[1])
            g[yy, xx] = rng.uniform(0.5, 1.0)
        g = np.asarray(Image.fromarray((g * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.5))),
                       np.float32) / 255.0 * 6.0
        x = x + np.clip(g, 0, 1)[..., None]
    x = np.clip(x + rng.normal(0, rng.uniform(0, 0.03), x.shape).astype(np.float32), 0, 1)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray((x * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(30, 95)))
        x = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0
    return x.astype(np.float32)


def focal_loss(logits, target, valid):
    """CenterNet's penalty-reduced focal loss, per positive cell, cells outside `valid` left out."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float() * valid
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * (1 - pos) * valid
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def working_input(path):
    """The frame as the Rust side gives it to the model: area-resampled to 60 px/mm, padded to a
    multiple of 4 by repeating the last row and column. Returns (1x3xHxW tensor, native px per
    working px)."""
    im = Image.open(path).convert("RGB")
    f = NATIVE_PX_PER_MM / WORKING_PX_PER_MM
    a = np.asarray(im.resize((round(im.width / f), round(im.height / f)), Image.BOX), np.float32) / 255.0
    h, w = a.shape[:2]
    ph, pw = -h % INPUT_MULTIPLE, -w % INPUT_MULTIPLE
    a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None], im.width / w


def peaks(hm, threshold, window=3):
    """Local maxima (window x window) at or above `threshold`, weighted centres in working px."""
    t = torch.from_numpy(hm)[None, None]
    mx = torch.nn.functional.max_pool2d(t, window, 1, window // 2)[0, 0].numpy()
    out = []
    for i, j in zip(*np.where((hm == mx) & (hm >= threshold))):
        i0, i1, j0, j1 = max(i - 1, 0), min(i + 2, hm.shape[0]), max(j - 1, 0), min(j + 2, hm.shape[1])
        wgt = hm[i0:i1, j0:j1]
        yy, xx = np.mgrid[i0:i1, j0:j1]
        out.append(((wgt * xx).sum() / wgt.sum() * 2 + 1, (wgt * yy).sum() / wgt.sum() * 2 + 1, i, j))
    return out


def predict(model, data, names):
    """{name: (heat map, hairs map, native px per working px)} on whole frames."""
    model.eval()
    out = {}
    with torch.no_grad():
        for n in names:
            x, f = working_input(os.path.join(data, "images", n + ".jpg"))
            logits, hairs = model.both(x)
            out[n] = (torch.sigmoid(logits)[0, 0].numpy(), hairs[0, 0].numpy(), f)
    model.train()
    return out


def evaluate(pred, truths, thresholds=(0.3, 0.4, 0.5), windows=(3,)):
    """Scores of the model's own peaks for each (threshold, window), as score_fdu scores."""
    res = {}
    for t in thresholds:
        for win in windows:
            frames = []
            for n, (hm, hairs, f) in pred.items():
                dets = [(x * f, y * f, int(round(float(hairs[i, j])))) for x, y, i, j in peaks(hm, t, win)]
                frames.append((truths[n], dets))
            res[f"t{t}_w{win}"] = score_fdu.score_frames(frames)
    return res


def export(model, path, extra, with_hairs=False):
    meta = {
        "stipple.classes": ",".join(CLASSES + (["hairs"] if with_hairs else [])),
        "stipple.rig_px_per_mm": str(WORKING_PX_PER_MM),
        "stipple.dermoscope_px_per_mm": str(WORKING_PX_PER_MM),
        "stipple.dermoscope_min_native_px_per_mm": str(DERMOSCOPE_MIN_NATIVE),
        "stipple.output_stride": str(OUTPUT_STRIDE),
        "stipple.input_multiple": str(INPUT_MULTIPLE),
        "stipple.normalisation": "rgb/255",
        **extra,
    }
    model = model.to(memory_format=torch.contiguous_format)
    net.export_module(Exported(model.eval(), with_hairs), path, meta, "stipple models/train/train_openings_real.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/fdu", help="folder written by extract_fdu.py")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="models/stipple-openings.onnx")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="also end the schedule when this much training time is spent (0: steps only); "
                         "the steps taken go in the report and metadata, and --steps N redoes the run")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=1000, help="steps between checkpoints and validation figures")
    ap.add_argument("--checkpoint", default="data/fdu-train/checkpoint.pt")
    ap.add_argument("--resume", help="start from a checkpoint's weights (a fresh schedule)")
    ap.add_argument("--export-only", action="store_true", help="export --resume's weights and stop")
    ap.add_argument("--export-hairs", action="store_true", help="add the hairs channel to the exported output")
    ap.add_argument("--rendered-share", type=float, default=0.0,
                    help="fraction of each batch cut from rendered frames (train_openings.py's) instead of photographs")
    ap.add_argument("--rendered-frames", type=int, default=160,
                    help="how many of train_openings.py's training frames --rendered-share draws from")
    ap.add_argument("--rendered-data", default="data/train-openings", help="where the rendered frames are kept")
    ap.add_argument("--stipple", default="target/release/stipple", help="renders missing frames")
    ap.add_argument("--smoke", action="store_true", help="a few steps on two frames")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    model = RealOpeningsNet()
    resumed_steps = 0
    train_data = "fdu-bsrl train split"
    if args.resume:
        ck = torch.load(args.resume)
        model.load_state_dict(ck["model"])
        resumed_steps = ck["step"]
        train_data = ck.get("train_data", train_data)
    if args.export_only:
        export(model, args.out, {"stipple.trained": "yes", "stipple.train_seed": str(args.seed),
                                 "stipple.train_steps": str(resumed_steps),
                                 "stipple.train_data": train_data}, args.export_hairs)
        return
    names = score_fdu.split_names(args.data, "train")
    val_names = score_fdu.split_names(args.data, "val")
    if args.smoke:
        names, val_names, args.steps, args.batch, args.eval_every = names[:2], val_names[:1], 3, 2, 0
        args.checkpoint = os.path.join(os.path.dirname(args.out), "smoke-checkpoint.pt")
    cache = os.path.join(os.path.dirname(args.checkpoint), "train-frames.pkl")
    if not args.smoke and os.path.exists(cache):
        with open(cache, "rb") as fh:
            train = pickle.load(fh)
    else:
        train = [load_frame(args.data, n) for n in names]
        if not args.smoke:
            with open(cache, "wb") as fh:
                pickle.dump(train, fh)
    rendered, n_rendered = [], 0
    if args.rendered_share > 0:
        if args.smoke:
            args.rendered_data = os.path.join(os.path.dirname(args.checkpoint), "smoke-rendered")
            args.rendered_frames = 1
        rendered = rendered_frames(args.stipple, args.rendered_data, args.rendered_frames)
        n_rendered = int(round(args.batch * args.rendered_share))
    train_data = "fdu-bsrl train split" + (f", rendered share {args.rendered_share}" if rendered else "")
    print(f"{len(train)} photographs, {len(rendered)} rendered frames ready in {time.time() - t0:.0f} s",
          file=sys.stderr, flush=True)
    val_truths = score_fdu.load_truths(args.data, val_names)
    n_params = sum(p.numel() for p in model.parameters())
    # NHWC convolutions: about a sixth faster on these CPUs.
    model = model.to(memory_format=torch.channels_last)
    best_f1 = -1.0
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    os.makedirs(os.path.dirname(args.checkpoint) or ".", exist_ok=True)
    t1 = time.time()
    history = []
    step = 0
    while True:
        # One-cycle schedule (warm-up over the first 10%, cosine down to 1/100) on the progress,
        # the larger of the steps done and the time spent.
        progress = step / args.steps
        if args.minutes > 0:
            progress = max(progress, (time.time() - t1) / (60 * args.minutes))
        if progress >= 1.0:
            break
        lr = args.lr * (progress / 0.1 if progress < 0.1 else 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (progress - 0.1) / 0.9)))
        for g in opt.param_groups:
            g["lr"] = max(lr, args.lr * 0.01)
        batch = [sample(train[rng.integers(len(train))], rng) for _ in range(args.batch - n_rendered)]
        batch += [rendered_sample(rendered[rng.integers(len(rendered))], rng) for _ in range(n_rendered)]
        xs, hms, hairs, valid = (torch.from_numpy(np.stack(v))[:, None] if i else torch.from_numpy(np.stack(v))
                                 for i, v in enumerate(zip(*batch)))
        logits, pred_hairs = model.both(xs.contiguous(memory_format=torch.channels_last))
        pos = hms.eq(1).float() * valid * hairs.gt(0).float()
        hairs_loss = ((pred_hairs - hairs).abs() * pos).sum() / pos.sum().clamp(min=1)
        loss = focal_loss(logits, hms, valid) + 0.5 * hairs_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 1:
            print(f"step {step} loss {loss.item():.4f} hairs {hairs_loss.item():.3f} lr {lr:.5f} {time.time() - t1:.0f} s",
                  file=sys.stderr, flush=True)
        if args.eval_every and step % args.eval_every == 0:
            torch.save({"model": model.state_dict(), "step": resumed_steps + step, "train_data": train_data}, args.checkpoint)
            sub = val_names[::6]
            ev = evaluate(predict(model, args.data, sub), val_truths)
            best = max(ev.items(), key=lambda kv: kv[1]["f1"])
            history.append({"step": step, "best": best[0], **{k: round(v, 3) for k, v in best[1].items()}})
            print(f"val (every sixth) step {step}: {json.dumps(history[-1])}", file=sys.stderr, flush=True)
            if history[-1]["f1"] > best_f1:
                # What to export (--resume it with --export-only) if a run must be cut short.
                best_f1 = history[-1]["f1"]
                torch.save({"model": model.state_dict(), "step": resumed_steps + step, "train_data": train_data}, args.checkpoint + ".best")
    train_s = time.time() - t1
    torch.save({"model": model.state_dict(), "step": resumed_steps + step, "train_data": train_data}, args.checkpoint)
    ev = evaluate(predict(model, args.data, val_names), val_truths,
                  thresholds=(0.2, 0.3, 0.4, 0.5, 0.6) if not args.smoke else (0.5,))
    report = {"script": " ".join(["models/train/train_openings_real.py"] + sys.argv[1:]), "seed": args.seed, "steps": step, "batch": args.batch, "parameters": n_params,
              "photographs": len(train), "train_seconds": round(train_s), "threads": args.threads,
              "seconds_per_step": round(train_s / max(step, 1), 3),
              "data": "FDU/BSRL trichoscopy, train split", "resumed_from_steps": resumed_steps,
              "rendered_share": args.rendered_share, "rendered_frames": len(rendered), "val_history": history,
              "val_peaks": {k: {m: round(v, 3) for m, v in s.items()} for k, s in ev.items()}}
    export(model, args.out, {"stipple.trained": "yes", "stipple.train_seed": str(args.seed),
                             "stipple.train_steps": str(resumed_steps + step),
                             "stipple.train_data": train_data}, args.export_hairs)
    report["total_seconds"] = round(time.time() - t0)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
