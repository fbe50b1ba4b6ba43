#!/usr/bin/env python3
"""Trains models/stipple-seg.onnx from `stipple synth` frames, reproducibly from a seed.

    python models/train/train.py --stipple target/release/stipple --seed 1 --out models/stipple-seg.onnx

1. Renders rig frames with `stipple synth` into data/train-seg/ (git-ignored), in parallel chunks:
   seeds 20000+ on bare skin and 21000+ at the chair (`--chair working`: room, long hair, ear,
   cape, smears, gloves, the machine), every skin type, ink and negative the renderer draws
   per seed. Validation frames 40000+ (bare) and 41500+ (chair). The check seeds (200-299,
   400-447), the development chair seeds (7000+) and the evaluation seeds (9000+) are never used;
   neither is the held-out ink and hair model (`--colours alternate`).
2. Prepares each frame once (cached as .npz beside it): the frame area-resampled to the working
   scale, a label per working pixel from the truth JSON (see `rasters`: discs at each unit's
   opening and each pigment dot, not-a-dot shapes, hair shafts as bands from where each hair
   leaves the skin; what the chair's `not_skin` mask covers is background, or `not_skin` with
   `--not-skin`), and soft weights of the pigment and of the hair for the ink augmentation.
3. Samples crops on the training device (`--device`; a GPU when there is one): rotation and
   scale jitter; the ink and hair colour moved against the skin around them (`--ink-aug`: ink's
   strength, lightness and hue independently of the skin, since inks at the chair are inks
   nobody fitted on); the camera: blur, colour temperature, exposure, gamma, an illumination
   gradient, noise and JPEG at quality 30-92.
4. Weighted cross-entropy, AdamW with a one-cycle schedule, a fixed number of steps.
5. Exports ONNX opset 17 with the contract metadata (net.py) and prints validation IoU.

`--smoke` runs a few steps on two tiny frames (the test suite uses it when torch is present).
`--prepare-only` renders and prepares the frames and stops (to share them between runs).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import net  # noqa: E402

CROP = 96  # working px; output cells CROP / 2
WINDOW = 192  # working px cut around a crop's centre before resampling (a turned, enlarged crop fits)
IGNORE = 255
CLASS_WEIGHTS = [1.0, 4.0, 2.0, 1.5, 1.0, 1.0]
FOLLICLE, PIGMENT, NOT_A_DOT, SHAFT, NOT_SKIN = 1, 2, 3, 4, 5
CHUNK = 8  # frames per `stipple synth` call
# (name, chair, first seed): the sets the script renders.
TRAIN_SETS = [("rig", "none", 20000), ("chair", "working", 21000)]
VAL_SETS = [("val-rig", "none", 40000, 6), ("val-chair", "working", 41500, 4)]


def render(stipple, view, seed, count, out):
    """Frames seed..seed+count-1 of `view` as out/NNN.png + NNN.json, in one `stipple synth` call;
    renders only the missing ones (frame i of `stipple synth --seed S` uses seed S + i, so chunks
    are the same frames). The openings scripts render their dermoscope frames with it."""
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


def render_seeds(stipple, folder, chair, seed, count, jobs, extra=()):
    """Rig frames seed..seed+count-1 as folder/sSEED.png + .json, rendered in parallel chunks of
    CHUNK (each frame named by its seed, so any chunk can be redone alone); only the missing ones
    are rendered (frame i of `stipple synth --seed S` uses seed S + i)."""
    os.makedirs(folder, exist_ok=True)

    def missing(s):
        return not (os.path.exists(os.path.join(folder, f"s{s}.json")) and os.path.exists(os.path.join(folder, f"s{s}.png")))

    chunks = []
    for first in range(seed, seed + count, CHUNK):
        want = [s for s in range(first, min(first + CHUNK, seed + count)) if missing(s)]
        if want:
            chunks.append((want[0], want[-1] - want[0] + 1))

    def one(chunk):
        first, n = chunk
        tmp = tempfile.mkdtemp(prefix="stipple-synth-", dir=folder)
        subprocess.run([stipple, "synth", "--seed", str(first), "--count", str(n), "--chair", chair, "--out", tmp,
                        *extra], check=True, stdout=subprocess.DEVNULL)
        for i in range(n):
            for ext in ("png", "json"):
                os.replace(os.path.join(tmp, f"{i:03}.{ext}"), os.path.join(folder, f"s{first + i}.{ext}"))
        os.rmdir(tmp)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(one, chunks))
    return [os.path.join(folder, f"s{s}") for s in range(seed, seed + count)]


def shapes(t, cell):
    """The truth's discs (x, y, r, cls) and bands (ax, ay, bx, by, half_width, cls), native px."""
    discs, bands = [], []
    for n in t["negatives"]:
        s = n["shape"]
        if s["type"] == "circle":
            discs.append((s["x"], s["y"], s["r"], NOT_A_DOT))
        else:
            pts = s["points"]
            for a, b in zip(pts, pts[1:]):
                bands.append((a[0], a[1], b[0], b[1], s["half_width"], NOT_A_DOT))
    for u in t["units"]:
        for hr in u["hairs"]:
            bx = hr["x"] + hr["length_px"] * math.cos(hr["angle_rad"])
            by = hr["y"] + hr["length_px"] * math.sin(hr["angle_rad"])
            bands.append((hr["x"], hr["y"], bx, by, max(hr["radius"], 0.3 * cell), SHAFT))
    for p in t["pigment"]:
        discs.append((p["x"], p["y"], max(p["radius"], 0.75 * cell), PIGMENT))
    for u in t["units"]:
        discs.append((u["x"], u["y"], max(u["radius"], 0.75 * cell), FOLLICLE))
    return np.array(discs, dtype=np.float64).reshape(-1, 4), np.array(bands, dtype=np.float64).reshape(-1, 6)


# How far past its radius a dot's colour reaches (the renderer's dots have soft edges): the ink
# augmentation's weight is 1 inside the radius and falls to 0 at FALLOFF radii.
FALLOFF = 1.6


def tile_rasters(discs, bands, x, y):
    """Label, pigment weight and hair weight of the points (x, y) (columns, native px). Later
    classes win: negatives, then shafts, then pigment, then follicles."""
    lab = np.zeros(len(x), dtype=np.uint8)
    wp = np.zeros(len(x), dtype=np.float32)
    wh = np.zeros(len(x), dtype=np.float32)
    lo = np.array([x.min(), y.min()])
    hi = np.array([x.max(), y.max()])
    for cls in (NOT_A_DOT, SHAFT, PIGMENT, FOLLICLE):
        d = discs[discs[:, 3] == cls]
        reach = FALLOFF * d[:, 2]
        d = d[(d[:, 0] + reach > lo[0]) & (d[:, 0] - reach < hi[0]) & (d[:, 1] + reach > lo[1]) & (d[:, 1] - reach < hi[1])]
        if len(d):
            rel = np.hypot(x - d[:, 0], y - d[:, 1]) / d[:, 2]
            lab[(rel <= 1).any(1)] = cls
            w = np.clip((FALLOFF - rel.min(1)) / (FALLOFF - 1), 0, 1)
            if cls == PIGMENT:
                wp = np.maximum(wp, w)
            elif cls == FOLLICLE:
                wh = np.maximum(wh, w)
        b = bands[bands[:, 5] == cls]
        if len(b):
            m = FALLOFF * b[:, 4]
            keep = ~(((b[:, 0] < lo[0] - m) & (b[:, 2] < lo[0] - m)) | ((b[:, 0] > hi[0] + m) & (b[:, 2] > hi[0] + m))
                     | ((b[:, 1] < lo[1] - m) & (b[:, 3] < lo[1] - m)) | ((b[:, 1] > hi[1] + m) & (b[:, 3] > hi[1] + m)))
            b = b[keep]
        if len(b):
            ax, ay, bx, by, hw = b[:, 0], b[:, 1], b[:, 2], b[:, 3], b[:, 4]
            dx, dy = bx - ax, by - ay
            len2 = np.maximum(dx * dx + dy * dy, 1e-9)
            t = np.clip(((x - ax) * dx + (y - ay) * dy) / len2, 0, 1)
            rel = np.hypot(x - ax - t * dx, y - ay - t * dy) / hw
            lab[(rel <= 1).any(1)] = cls
            if cls == SHAFT:
                wh = np.maximum(wh, np.clip((FALLOFF - rel.min(1)) / (FALLOFF - 1), 0, 1))
    return lab, wp, wh


def working_frame(stem, work_px_per_mm, min_side):
    """A rendered frame's truth (stem.json) and its image (stem.png) area-resampled to
    `work_px_per_mm` (Pillow's BOX, the same area average as the Rust side; each side at least
    `min_side`), with the native size."""
    with open(stem + ".json") as fh:
        t = json.load(fh)
    native = Image.open(stem + ".png").convert("RGB")
    w, h = native.size
    k = work_px_per_mm / t["px_per_mm"]
    size = (max(min_side, round(w * k)), max(min_side, round(h * k)))
    return t, np.asarray(native.resize(size, Image.BOX)), (w, h)


def not_skin_cover(t, size):
    """Where the truth's `not_skin` mask (the chair) covers at least half a pixel of the frame
    resampled to `size` (w, h), as a boolean array; None for a frame without one."""
    ns = t.get("not_skin")
    if not ns:
        return None
    mask = np.zeros((ns["height"], ns["width"]), dtype=np.uint8)
    for row, x0, x1 in ns["runs"]:
        mask[row, x0:x1] = 255
    return np.asarray(Image.fromarray(mask).resize(size, Image.BOX)) >= 128


def rasters(stem):
    """Prepares one frame (cached as stem.npz): the working-scale image, a label per working pixel
    (its centre's class; NOT_SKIN where the chair's truth mask covers at least half of it), and the
    pigment and hair weights."""
    cache = stem + ".npz"
    if os.path.exists(cache):
        return cache
    t, image, (w, h) = working_frame(stem, net.RIG_PX_PER_MM, 4)
    if t["px_per_mm"] >= net.DERMOSCOPE_MIN_NATIVE:
        raise SystemExit(f"{stem}.json: a dermoscope frame; this script trains the rig view's dot model")
    wh_, ww = image.shape[:2]
    kx, ky = ww / w, wh_ / h
    discs, bands = shapes(t, 2.0 / kx)
    lab = np.zeros((wh_, ww), dtype=np.uint8)
    wp = np.zeros((wh_, ww), dtype=np.float32)
    whr = np.zeros((wh_, ww), dtype=np.float32)
    step = 48
    for r0 in range(0, wh_, step):
        for c0 in range(0, ww, step):
            rr, cc = np.mgrid[r0:min(r0 + step, wh_), c0:min(c0 + step, ww)]
            x = ((cc.ravel() + 0.5) / kx)[:, None]
            y = ((rr.ravel() + 0.5) / ky)[:, None]
            a, b, c = tile_rasters(discs, bands, x, y)
            lab[rr, cc] = a.reshape(rr.shape)
            wp[rr, cc] = b.reshape(rr.shape)
            whr[rr, cc] = c.reshape(rr.shape)
    covered = not_skin_cover(t, (ww, wh_))
    if covered is not None:
        # Whatever the truth lists under a glove, the machine or the room is not visible there.
        lab[covered] = NOT_SKIN
        wp[covered] = 0
        whr[covered] = 0
    np.savez_compressed(cache + ".part.npz", image=image, label=lab,
                        weights=(np.stack([wp, whr]) * 255).round().astype(np.uint8))
    os.replace(cache + ".part.npz", cache)
    return cache


class Frames:
    """Prepared frames on the training device, each on a canvas padded by half a window with its
    mean colour (a crop past the frame's edge sees that colour and is labelled IGNORE there)."""

    def __init__(self, caches, device, not_skin_class, crop=CROP, window=WINDOW):
        self.crop, self.window, pad = crop, window, window // 2
        items = [np.load(c) for c in caches]
        hmax = max(i["label"].shape[0] for i in items)
        wmax = max(i["label"].shape[1] for i in items)
        n = len(items)
        self.image = torch.zeros((n, 3, hmax + 2 * pad, wmax + 2 * pad), dtype=torch.uint8)
        self.label = torch.zeros((n, 1, hmax + 2 * pad, wmax + 2 * pad), dtype=torch.uint8)  # class + 1; 0 off-frame
        self.weights = torch.zeros((n, 2, hmax + 2 * pad, wmax + 2 * pad), dtype=torch.uint8)
        self.size = torch.zeros((n, 2))
        for j, it in enumerate(items):
            img, lab = it["image"], it["label"]
            h, w = lab.shape
            fill = torch.from_numpy(img.reshape(-1, 3).mean(0).round().astype(np.uint8))
            self.image[j] = fill[:, None, None]
            self.image[j, :, pad:pad + h, pad:pad + w] = torch.from_numpy(img).permute(2, 0, 1)
            if not not_skin_class:
                lab = np.where(lab == NOT_SKIN, 0, lab)  # what is not skin is simply no dot
            self.label[j, 0, pad:pad + h, pad:pad + w] = torch.from_numpy(lab) + 1
            if "weights" in it:
                self.weights[j, :, pad:pad + h, pad:pad + w] = torch.from_numpy(it["weights"])
            self.size[j] = torch.tensor([w, h])
        self.image, self.label, self.weights = self.image.to(device), self.label.to(device), self.weights.to(device)
        self.size = self.size.to(device)
        self.device = device

    def __len__(self):
        return self.size.shape[0]

    def crops(self, gen, count, augment, fixed_index=None):
        """`count` crops: images (count, 3, crop, crop) in [0, 1], pigment and hair weights
        (count, 2, crop, crop), labels (count, crop/2, crop/2) with IGNORE off the frame."""
        dev = self.device
        CROP, WINDOW, PAD = self.crop, self.window, self.window // 2  # noqa: N806
        idx = fixed_index if fixed_index is not None else torch.randint(len(self), (count,), generator=gen, device=dev)
        u = torch.rand((count, 4), generator=gen, device=dev)
        size = self.size[idx]
        cx, cy = u[:, 0] * size[:, 0], u[:, 1] * size[:, 1]
        if augment:
            theta = u[:, 2] * 2 * math.pi
            s = torch.exp(math.log(0.8) + u[:, 3] * (math.log(1.25) - math.log(0.8)))
        else:
            theta, s = torch.zeros(count, device=dev), torch.ones(count, device=dev)
        # Window of WINDOW px around the centre, in canvas px (the frame starts at PAD).
        x0 = torch.floor(cx).long() + PAD - WINDOW // 2
        y0 = torch.floor(cy).long() + PAD - WINDOW // 2
        img = torch.stack([self.image[i, :, b:b + WINDOW, a:a + WINDOW] for i, a, b in zip(idx.tolist(), x0.tolist(), y0.tolist())])
        lab = torch.stack([self.label[i, :, b:b + WINDOW, a:a + WINDOW] for i, a, b in zip(idx.tolist(), x0.tolist(), y0.tolist())])
        wts = torch.stack([self.weights[i, :, b:b + WINDOW, a:a + WINDOW] for i, a, b in zip(idx.tolist(), x0.tolist(), y0.tolist())])
        # Crop point (u, v) (continuous, pixel edges at integers) -> frame: R(theta)/s (p - CROP/2) + centre.
        c, sn = torch.cos(theta) / s, torch.sin(theta) / s
        ox = cx + PAD - x0.float()  # the centre in window px
        oy = cy + PAD - y0.float()

        def grid(points):
            pu, pv = points
            gx = c[:, None, None] * (pu - CROP / 2) - sn[:, None, None] * (pv - CROP / 2) + ox[:, None, None]
            gy = sn[:, None, None] * (pu - CROP / 2) + c[:, None, None] * (pv - CROP / 2) + oy[:, None, None]
            return torch.stack([2 * gx / WINDOW - 1, 2 * gy / WINDOW - 1], -1)

        px = torch.arange(CROP, device=dev, dtype=torch.float32) + 0.5
        pv, pu = torch.meshgrid(px, px, indexing="ij")
        g = grid((pu[None], pv[None]))
        x = F.grid_sample(img.float() / 255, g, mode="bilinear", padding_mode="border", align_corners=False)
        w = F.grid_sample(wts.float() / 255, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        cells = torch.arange(CROP // 2, device=dev, dtype=torch.float32) * 2 + 1
        cv, cu = torch.meshgrid(cells, cells, indexing="ij")
        y = F.grid_sample(lab.float(), grid((cu[None], cv[None])), mode="nearest", padding_mode="zeros",
                          align_corners=False)[:, 0].round().long()
        y = torch.where(y == 0, torch.full_like(y, IGNORE), y - 1)
        return x, w, y


def uniform(gen, n, lo, hi, dev):
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)


def log_uniform(gen, n, lo, hi, dev):
    return torch.exp(uniform(gen, n, math.log(lo), math.log(hi), dev))


def recolour(x, w, gen, p, light, chroma, hue_deg):
    """Moves the colour of the pixels weighted by w (B, 1, H, W) against the crop's skin (its
    per-channel median): their lightness difference scaled by a draw from `light`, their
    colour difference (orthogonal to grey) scaled by a draw from `chroma` and turned about the
    grey axis by up to `hue_deg`; in a fraction `p` of the crops."""
    b, dev = x.shape[0], x.device
    on = (torch.rand(b, generator=gen, device=dev) < p).float()
    skin = x.flatten(2).median(2).values[:, :, None, None]
    d = x - skin
    dl = d.mean(1, keepdim=True)
    cvec = d - dl
    gl = log_uniform(gen, b, *light, dev)[:, None, None, None]
    gc = log_uniform(gen, b, *chroma, dev)[:, None, None, None]
    th = uniform(gen, b, -math.radians(hue_deg), math.radians(hue_deg), dev)[:, None, None, None]
    c0, c1, c2 = cvec[:, 0:1], cvec[:, 1:2], cvec[:, 2:3]
    cross = torch.cat([c2 - c1, c0 - c2, c1 - c0], 1) / math.sqrt(3)  # (1,1,1)/sqrt(3) x c
    moved = gl * dl + gc * (cvec * torch.cos(th) + cross * torch.sin(th))
    return x + (on[:, None, None, None] * w) * (moved - d)


def blur(x, sigma):
    """Gaussian blur with a per-crop sigma (B,), 7 taps, separable; sigma 0 leaves the crop."""
    b, c, h, w = x.shape
    t = torch.arange(-3, 4, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    k = torch.where(sigma[:, None] > 0, k, (t[None] == 0).to(x.dtype))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, 7)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (3, 3, 0, 0), mode="replicate"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, 3, 3), mode="replicate"), k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
          14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
          49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA_Q = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5 + [47, 66] + [99] * 6 \
    + [99] * 32


def jpeg(x, quality):
    """A baseline JPEG round trip (4:2:0, the standard tables scaled by `quality` (B,) as libjpeg
    does, 8x8 DCT) of crops in [0, 1]; H and W multiples of 16."""
    b, _, h, w = x.shape
    dev = x.device
    v = x * 255
    r, g, bl = v[:, 0], v[:, 1], v[:, 2]
    ych = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl + 128
    q = quality.float()
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)[:, None]

    def table(base):
        t = torch.floor((torch.tensor(base, device=dev, dtype=torch.float32)[None] * scale + 50) / 100)
        return t.clamp(1, 255).reshape(b, 1, 1, 8, 8)

    n = torch.arange(8, device=dev, dtype=torch.float32)
    dct = torch.cos((2 * n[None] + 1) * n[:, None] * math.pi / 16) * torch.where(n[:, None] == 0, math.sqrt(1 / 8), math.sqrt(2 / 8))

    def roundtrip(plane, t):
        bb, hh, ww = plane.shape
        blocks = (plane - 128).reshape(bb, hh // 8, 8, ww // 8, 8).permute(0, 1, 3, 2, 4)
        coef = dct @ blocks @ dct.T
        coef = torch.round(coef / t) * t
        back = dct.T @ coef @ dct
        return back.permute(0, 1, 3, 2, 4).reshape(bb, hh, ww) + 128

    ych = roundtrip(ych, table(LUMA_Q))
    small = lambda p: F.avg_pool2d(p[:, None], 2)[:, 0]  # noqa: E731
    up = lambda p: F.interpolate(p[:, None], scale_factor=2, mode="bilinear", align_corners=False)[:, 0]  # noqa: E731
    cb = up(roundtrip(small(cb), table(CHROMA_Q)))
    cr = up(roundtrip(small(cr), table(CHROMA_Q)))
    r = ych + 1.402 * (cr - 128)
    g = ych - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    bl = ych + 1.772 * (cb - 128)
    return (torch.round(torch.stack([r, g, bl], 1)).clamp(0, 255)) / 255


def augment(x, w, gen, ink_aug):
    """The scene's colours (with `ink_aug`), then the camera, on a batch of crops in [0, 1]."""
    b, dev = x.shape[0], x.device
    if ink_aug:
        # Ink: black to faint blue-grey and whatever a healed ink becomes, on any skin.
        x = recolour(x, w[:, 0:1], gen, 0.7, (0.6, 1.3), (0.3, 1.6), 30).clamp(0, 1)
        # Hair: black to grey.
        x = recolour(x, (1 - w[:, 0:1]) * w[:, 1:2], gen, 0.5, (0.55, 1.15), (0.25, 1.3), 20).clamp(0, 1)
    sigma = torch.where(torch.rand(b, generator=gen, device=dev) < 0.5, uniform(gen, b, 0.2, 1.0, dev),
                        torch.zeros(b, device=dev))
    x = blur(x, sigma)
    t = uniform(gen, b, -0.15, 0.15, dev)
    gains = torch.stack([1 + t, 1 + uniform(gen, b, -0.04, 0.04, dev), 1 - t], 1)
    x = x * (gains * torch.exp(uniform(gen, b, -0.5, 0.4, dev))[:, None])[:, :, None, None]
    ramp = torch.linspace(-1, 1, x.shape[-1], device=dev)
    ang = uniform(gen, b, 0, 2 * math.pi, dev)[:, None, None]
    grad = 1 + uniform(gen, b, 0, 0.2, dev)[:, None, None] * (torch.cos(ang) * ramp[None, None, :] + torch.sin(ang) * ramp[None, :, None])
    x = x * grad[:, None]
    x = x.clamp(0, 1) ** uniform(gen, b, 0.8, 1.25, dev)[:, None, None, None]
    x = x + torch.randn(x.shape, generator=gen, device=dev) * uniform(gen, b, 0, 0.03, dev)[:, None, None, None]
    x = (torch.round(x.clamp(0, 1) * 255)) / 255
    q = torch.randint(30, 92, (b,), generator=gen, device=dev)
    use = (torch.rand(b, generator=gen, device=dev) < 0.5)[:, None, None, None]
    return torch.where(use, jpeg(x, q), x)


def one_cycle(step, total, peak, warm=0.05):
    """The learning rate at `step` of `total`: a linear rise over the first `warm` to `peak`, then a
    cosine fall to peak / 1e4 (PyTorch's OneCycleLR shape)."""
    rise = max(1, int(warm * total))
    if step < rise:
        return peak / 25 + (peak - peak / 25) * step / rise
    f = (step - rise) / max(1, total - rise)
    return peak / 1e4 + (peak - peak / 1e4) * 0.5 * (1 + math.cos(math.pi * min(f, 1.0)))


def common_args(ap, out, data, steps):
    """The options both training scripts take (this one and train_skin.py); `out`, `data` and
    `steps` are each script's defaults."""
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=out)
    ap.add_argument("--data", default=data)
    ap.add_argument("--steps", type=int, default=steps, help="the bundled model's run (set by --budget-s on the machine it had)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--budget-s", type=float, default=0, help="train fewer steps if --steps would take longer")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel renders and preparations")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="a few steps on two tiny frames")


def prepare_data(args, train_sets, counts, val_sets, prepare, render_set=None):
    """Renders the training sets (`(name, chair, first seed)`, `counts[name]` frames each, into
    args.data/name) and the validation sets (`(name, chair, first seed, count)`; none with
    --smoke, which validates on the training frames), then prepares every frame with `prepare`
    (a stem -> cache path function) on args.jobs processes. `render_set(folder, chair, first,
    count)` renders a set (`render_seeds` by default). Returns the training and validation
    caches."""
    t0 = time.time()
    if render_set is None:
        def render_set(folder, chair, first, count):
            return render_seeds(args.stipple, folder, chair, first, count, args.jobs)
    stems, val_stems = [], []
    for name, chair, first in train_sets:
        if counts[name] > 0:
            stems += render_set(os.path.join(args.data, name), chair, first, counts[name])
    if not args.smoke:
        for name, chair, first, count in val_sets:
            val_stems += render_seeds(args.stipple, os.path.join(args.data, name), chair, first, count, args.jobs)
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        caches = list(pool.map(prepare, stems))
        val_caches = list(pool.map(prepare, val_stems)) if val_stems else caches
    print(f"data ready in {time.time() - t0:.0f} s ({len(caches)} frames)", file=sys.stderr, flush=True)
    return caches, val_caches


def fit(model, frames, args, loss_of, ink_aug, scene=None):
    """Trains `model` on augmented crops of `frames` (`Frames`): AdamW with the one-cycle schedule
    over `args.steps`, batch `args.batch`, peak rate `args.lr`, crops drawn from `args.seed`;
    `loss_of(logits, labels)` is the loss; `scene(x, labels, gen)`, if given, changes the scene's
    colours before the camera augmentation. With `args.budget_s`, a run that would take longer
    takes fewer steps (the same schedule, shorter) rather than being cut off at the end of a
    lent machine's time. Returns the steps taken and the seconds spent."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    gen = torch.Generator(device=frames.device).manual_seed(args.seed)
    t1 = time.time()
    steps, step = args.steps, 0
    while step < steps:
        for group in opt.param_groups:
            group["lr"] = one_cycle(step, steps, args.lr)
        x, w, y = frames.crops(gen, args.batch, True)
        with torch.no_grad():
            if scene is not None:
                x = scene(x, y, gen)
            x = augment(x, w, gen, ink_aug)
        loss = loss_of(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 199 and args.budget_s:
            fit_steps = int(200 * args.budget_s / max(time.time() - t1, 1e-3))
            if fit_steps < steps:
                print(f"{steps} steps would outrun --budget-s {args.budget_s}: {fit_steps} steps", file=sys.stderr)
                steps = max(fit_steps, step + 2)
        if step % 500 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t1:.0f} s", file=sys.stderr, flush=True)
        step += 1
    return steps, time.time() - t1


def iou(model, frames, classes, batches, device):
    """Per-class IoU on fixed, unaugmented crops of `frames`."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(12345)
    inter = np.zeros(len(classes))
    union = np.zeros(len(classes))
    with torch.no_grad():
        for k in range(batches):
            idx = torch.arange(16, device=device) % len(frames)
            x, _, y = frames.crops(gen, 16, False, fixed_index=idx)
            p = model(x).argmax(1)
            valid = y != IGNORE
            for c in range(len(classes)):
                a, b = (p == c) & valid, (y == c) & valid
                inter[c] += (a & b).sum().item()
                union[c] += (a | b).sum().item()
    model.train()
    return {classes[c]: round(inter[c] / max(union[c], 1), 3) for c in range(len(classes))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common_args(ap, "models/stipple-seg.onnx", "data/train-seg", 8172)
    ap.add_argument("--rig-frames", type=int, default=480, help="bare-skin frames (seeds 20000+)")
    ap.add_argument("--chair-frames", type=int, default=160, help="frames at the chair (seeds 21000+)")
    ap.add_argument("--ink-aug", type=int, default=0, help="move ink and hair colours against the skin (1) or not (0)")
    ap.add_argument("--not-skin", action="store_true", help="a sixth class for what is not skin (not loadable by stipple yet)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    if args.smoke:
        args.data = tempfile.mkdtemp(prefix="stipple-train-smoke-")
        args.rig_frames, args.chair_frames, args.steps, args.batch, args.device = 1, 1, 3, 4, "cpu"
    counts = {"rig": args.rig_frames, "chair": args.chair_frames}
    caches, val_caches = prepare_data(args, TRAIN_SETS, counts, VAL_SETS, rasters)
    if args.prepare_only:
        return
    device = torch.device(args.device)
    classes = net.CLASSES_WITH_NOT_SKIN if args.not_skin else net.CLASSES
    train, val = Frames(caches, device, args.not_skin), Frames(val_caches, device, args.not_skin)
    model = net.StippleSeg(classes=classes).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHTS[:len(classes)], device=device), ignore_index=IGNORE)
    steps, train_s = fit(model, train, args, lambda logits, y: loss_fn(logits, y), args.ink_aug)
    batches = 1 if args.smoke else 40
    scores = {"rig": iou(model, val, classes, batches, device)}
    report = {"seed": args.seed, "steps": steps, "batch": args.batch, "parameters": n_params,
              "rig_frames": args.rig_frames, "chair_frames": args.chair_frames, "ink_aug": args.ink_aug,
              "classes": classes, "device": str(device), "train_seconds": round(train_s),
              "total_seconds": round(time.time() - t0), "val_iou": scores}
    net.export(model.cpu(), args.out, {"stipple.trained": "yes", "stipple.train_seed": str(args.seed),
                                       "stipple.train_steps": str(steps),
                                       "stipple.ink_aug": str(args.ink_aug)})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
