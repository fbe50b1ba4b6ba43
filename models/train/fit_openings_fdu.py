#!/usr/bin/env python3
"""Fits the dermoscope opening trees on real trichoscopy photographs and writes them as Rust
(src/perception/dermoscope/generated/openings_model.rs).

    python3 models/train/extract_fdu.py /path/to/hair-follicle-density-estimation-209b --out data/fdu
    cargo build --release --examples
    .venv/bin/python models/train/fit_openings_fdu.py --data data/fdu --examples target/release/examples

The openings model's peaks at or above 0.1 are the candidates. For each, the Rust detector
itself (examples/derm_peaks.rs) writes the features the trees read (the peak's heat and shape,
its neighbours, its colour against the skin around it, the nearest traced opening, and the
frame's context: how many peaks, how much heat, how bright), so the trees see exactly what they
will be given. A candidate is an opening when `scripts/score_fdu.py`'s matching (one to one,
closest first, within 0.15 mm of a unit's exit point) pairs it with a unit; candidates in a
burned-in text bar are left out.

A frame's openings are its candidates at or above a threshold, at most K of them (the most
probable), K the mean of the expected number (the sum of the candidates' probabilities) and the
number at the threshold, rounded half up (`openings.rs` does the same): a fixed threshold alone
over-counts sparse frames, where many candidates sit just above it.

The trees are fitted on the FDU/BSRL training split only (992 photographs). The threshold is
chosen on the validation split (330): the highest F1, and among thresholds within 0.002 of it
the lowest per-image count error. The third split is never read. Prints the validation sweep
(each threshold alone, and with the expected number), with the model's peaks alone at their old
threshold (0.35) beside it, and writes the table with the chosen threshold as `CHOSEN_MIN`.

Needs numpy, pandas and scikit-learn (`bash scripts/setup.sh --peers`). `--smoke` fits a few
trees on a few photographs of each split and writes nothing (the test suite runs it when the
data set and the environment are present).
"""
import argparse
import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import score_fdu  # noqa: E402
from derm_trees import rust_table  # noqa: E402

OUT = "src/perception/dermoscope/generated/openings_model.rs"
CANDIDATE_MIN = 0.1
OLD_PEAK_MIN = 0.35
THRESHOLDS = [round(t, 2) for t in np.arange(0.25, 0.651, 0.05)]
F1_TIE = 0.002


def candidates(args, split, names):
    """The Rust detector's candidates of `names` with their features, cached per split and per
    build of the example (which carries the openings model and the feature code: a rebuilt one
    writes them anew)."""
    exe = os.path.join(args.examples, "derm_peaks")
    if not os.path.exists(exe):
        raise SystemExit(f"fit_openings_fdu: no {exe} (cargo build --release --examples)")
    with open(exe, "rb") as f:
        build = hashlib.sha256(f.read()).hexdigest()[:12]
    os.makedirs(args.work, exist_ok=True)
    csv = os.path.join(args.work, f"{split}{'-smoke' if args.smoke else ''}-{build}.csv")
    if not os.path.exists(csv):
        paths = [os.path.join(args.data, "images", n + ".jpg") for n in names]
        with open(csv + ".part", "w") as out:
            subprocess.run([exe, str(score_fdu.PX_PER_MM), *paths], stdout=out, check=True)
        os.replace(csv + ".part", csv)
    return pd.read_csv(csv, dtype={"image": str})


def label(rows, truths):
    """Adds `opening` (1: matched to a unit, 0: not, -1: in the text bar) to the rows."""
    lab = np.full(len(rows), -1)
    for name, group in rows.groupby("image", sort=False):
        t = truths[name]
        keep = [i for i, y in zip(group.index, group.y) if y >= t.bar]
        pts = [(rows.at[i, "x"], rows.at[i, "y"]) for i in keep]
        lab[keep] = 0
        for di, _ in score_fdu.match(pts, t.units, t.points, score_fdu.MATCH_MM * score_fdu.PX_PER_MM):
            lab[keep[di]] = 1
    rows["opening"] = lab
    return rows


def score(rows, truths, keep):
    """score_fdu figures of the candidates where `keep` holds, every image of `truths` counted."""
    dets = {n: [] for n in truths}
    for (name, x, y) in rows.loc[keep, ["image", "x", "y"]].itertuples(index=False):
        dets[name].append((x, y, None))
    return score_fdu.score_frames([(truths[n], dets[n]) for n in truths])


def count_matched(rows, prob, threshold):
    """Per image, the candidates at or above `threshold`, at most K of them, the most probable,
    K = floor((sum of probabilities + number at or above `threshold`) / 2 + 0.5); ties in
    probability go to the earlier row."""
    keep = np.zeros(len(rows), bool)
    for _, group in rows.assign(q=prob).groupby("image", sort=False):
        q = group.q.values
        k = int(np.floor((q.sum() + (q >= threshold).sum()) / 2 + 0.5))
        keep[rows.index.get_indexer(group.index[np.argsort(-q, kind="stable")[:k]])] = True
    return keep & (prob >= threshold)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/fdu")
    ap.add_argument("--examples", default="target/release/examples")
    ap.add_argument("--work", default="data/fdu-peaks", help="where the candidates' CSV files are cached")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    names = {s: score_fdu.split_names(args.data, s) for s in ("train", "val")}
    if args.smoke:
        names = {s: n[:3] for s, n in names.items()}
        args.trees = 3
    truths = {s: score_fdu.load_truths(args.data, n) for s, n in names.items()}
    rows = {s: label(candidates(args, s, names[s]), truths[s]) for s in names}
    features = [c for c in rows["train"].columns if c not in ("image", "x", "y", "probability", "opening")]
    fit = rows["train"][rows["train"].opening >= 0]
    model = HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.1, max_depth=args.depth, min_samples_leaf=20,
        random_state=args.seed, early_stopping=False,
    ).fit(fit[features].values, fit["opening"].values)
    val = rows["val"]
    prob = model.predict_proba(val[features].values)[:, 1] if len(val) else np.zeros(0)
    print(score_fdu.HEADER)
    old = score(val, truths["val"], val["p"] >= OLD_PEAK_MIN)
    print(score_fdu.fmt(f"peaks >= {OLD_PEAK_MIN} alone (before)", old))
    sweep = []
    for t in THRESHOLDS:
        print(score_fdu.fmt(f"trees >= {t} alone", score(val, truths["val"], prob >= t)))
    for t in THRESHOLDS:
        s = score(val, truths["val"], count_matched(val, prob, t))
        sweep.append((t, s))
        print(score_fdu.fmt(f"trees >= {t}, at most the expected number", s))
    best = max(s["f1"] for _, s in sweep)
    chosen, s = min(((t, s) for t, s in sweep if s["f1"] >= best - F1_TIE), key=lambda ts: ts[1]["count_error"])
    report = (
        f"Fitted on {len(fit)} candidates of {fit.image.nunique()} photographs of the FDU/BSRL training split "
        f"({int(fit.opening.sum())} openings), {args.trees} trees of depth {args.depth}; threshold {chosen} (at most the "
        f"expected number) chosen on "
        f"the validation split ({len(truths['val'])} photographs): unit precision {s['precision']:.3f}, recall "
        f"{s['recall']:.3f}, F1 {s['f1']:.3f}, count error {s['count_error']:.2f} per image."
    )
    print(report)
    if args.smoke:
        return
    table = rust_table(model, report, features, what="opening", script="fit_openings_fdu.py", name="OPENING_MODEL")
    table += (
        "\n/// The trees' threshold: candidates at or above it are openings, at most as many as the mean of\n/// their number and the expected number of openings; chosen on the validation split.\n"
        f"pub const CHOSEN_MIN: f64 = {float(chosen)!r};\n"
    )
    with open(args.out, "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
