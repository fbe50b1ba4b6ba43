#!/usr/bin/env python3
"""Chooses how `stipple detect` uses the openings model on real photographs, on the FDU/BSRL
validation split only (never the training split the model learned from, never the third split).

    target/release/stipple detect --px-per-mm 300 --no-model --format jsonl data/fdu/images/*.jpg > classical.jsonl
    .venv-train/bin/python models/train/choose_openings_fdu.py --model models/stipple-openings.onnx \\
        --classical classical.jsonl --data data/fdu

Runs the model (ONNX Runtime, the frame given as the Rust side gives it: area-resampled to
60 px/mm, padded to a multiple of 4) on every validation photograph and scores, with
`scripts/score_fdu.py`'s rules:

- the model's own peaks (3x3 local maxima, as `openings::peaks_into` finds them) at a sweep of
  peak thresholds;
- the fusion of `src/perception/openings.rs` (peaks, plus traced openings and pits farther than
  `separation` from every peak that the model confirms at `confirm_min` or whose own score
  reaches `keep_score_min`) at a grid of its thresholds.

Prints a table, best F1 first.
"""
import argparse
import itertools
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import score_fdu  # noqa: E402

WORKING_PX_PER_MM = 60.0


def working_input(path):
    from PIL import Image

    im = Image.open(path).convert("RGB")
    f = score_fdu.PX_PER_MM / WORKING_PX_PER_MM
    a = np.asarray(im.resize((round(im.width / f), round(im.height / f)), Image.BOX), np.float32) / 255.0
    h, w = a.shape[:2]
    a = np.pad(a, ((0, -h % 4), (0, -w % 4), (0, 0)), mode="edge")
    return a.transpose(2, 0, 1)[None].copy(), im.width / w, (h, w)


def peaks(hm, threshold, valid):
    """3x3 local maxima >= threshold (ties to the first in raster order), weighted centres in
    cell units, as `openings::peaks_into`."""
    rows, cols = valid
    out = []
    for r, c in zip(*np.nonzero(hm[:rows, :cols] >= threshold)):
        p = hm[r, c]
        r0, r1, c0, c1 = max(r - 1, 0), min(r + 1, rows - 1), max(c - 1, 0), min(c + 1, cols - 1)
        win = hm[r0:r1 + 1, c0:c1 + 1]
        ok = True
        for rr in range(r0, r1 + 1):
            for cc in range(c0, c1 + 1):
                q = hm[rr, cc]
                if q > p or (q == p and (rr, cc) < (r, c)):
                    ok = False
        if not ok:
            continue
        yy, xx = np.mgrid[r0:r1 + 1, c0:c1 + 1]
        out.append(((win * xx).sum() / win.sum(), (win * yy).sum() / win.sum(), float(p)))
    return out


def image_of(u, v, f):
    """Cell (u, v) centre in image px: working (2u + 1, 2v + 1) times native per working px."""
    return (2 * u + 1) * f, (2 * v + 1) * f


def near_max(hm, x, y, f, valid):
    u, v = round(x / f / 2 - 0.5), round(y / f / 2 - 0.5)
    best = 0.0
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):
            c, r = u + du, v + dv
            if 0 <= c < valid[1] and 0 <= r < valid[0]:
                best = max(best, float(hm[r, c]))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--classical", required=True, help="`stipple detect --no-model --format jsonl` of the split")
    ap.add_argument("--data", default="data/fdu")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    names = score_fdu.split_names(args.data, "val")
    if args.limit:
        names = names[:args.limit]
    truths = score_fdu.load_truths(args.data, names)
    classical = {}
    with open(args.classical) as fh:
        for line in fh:
            rec = json.loads(line)
            stem = os.path.splitext(os.path.basename(rec["image"]))[0]
            classical[stem] = [d for d in rec["detections"] if d["kind"] == "follicle"]
    maps = {}
    for n in names:
        x, f, (h, w) = working_input(os.path.join(args.data, "images", n + ".jpg"))
        out = sess.run(None, {"image": x})[0][0]
        maps[n] = (out[0], out[1] if out.shape[0] > 1 else None, f, (math.ceil(h / 2), math.ceil(w / 2)))
    rows = []
    all_peaks = {n: peaks(hm, 0.1, valid) for n, (hm, _, f, valid) in maps.items()}
    for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        frames = []
        for n, (hm, hairs, f, valid) in maps.items():
            dets = []
            for u, v, p in all_peaks[n]:
                if p >= t:
                    x, y = image_of(u, v, f)
                    k = int(round(float(hairs[int(round(v)), int(round(u))]))) if hairs is not None else None
                    dets.append((x, y, k))
            frames.append((truths[n], dets))
        rows.append((f"peaks >= {t}", score_fdu.score_frames(frames)))
        # The same peaks, every unit given one hair: what the hairs channel must beat.
        ones = [(tr, [(x, y, 1) for x, y, _ in d]) for tr, d in frames]
        rows.append((f"peaks >= {t}, hairs 1", score_fdu.score_frames(ones)))
        for confirm, keep in itertools.product((0.1, 0.2, 0.3, 2.0), (0.9, 2.0)):
            if confirm >= 2.0 and keep >= 2.0:
                continue
            frames = []
            for n, (hm, hairs, f, valid) in maps.items():
                pk = [image_of(u, v, f) for u, v, p in all_peaks[n] if p >= t]
                dets = [(x, y, None) for x, y in pk]
                sep = 0.1 * score_fdu.PX_PER_MM
                for d in classical[n]:
                    if any(math.dist((d["x"], d["y"]), q) < sep for q in pk):
                        continue
                    if d["score"] >= keep or near_max(hm, d["x"], d["y"], f, valid) >= confirm:
                        dets.append((d["x"], d["y"], None))
                frames.append((truths[n], dets))
            rows.append((f"fused peak {t} confirm {confirm} keep {keep}", score_fdu.score_frames(frames)))
    rows.sort(key=lambda r: -r[1]["f1"])
    print(score_fdu.HEADER)
    for name, s in rows:
        print(score_fdu.fmt(name, s))


if __name__ == "__main__":
    main()
