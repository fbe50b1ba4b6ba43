"""Fits the rig view's follicle-or-pigment trees and writes them as Rust (src/perception/rig/generated/kind_model.rs).

Every dot the classical rig detector accepts gets a kind from these trees, reading the dot's own
colour against its skin ring, size, shape and darkness, and where it stands among the frame's
other accepted dots (`kinds::tree_features`; examples/features.rs writes them, labelled against
the renderer's truth). Frames with fewer dots than `kinds::MIN_CONTEXT_DOTS` keep the
detector's linear rule. Frames come from the project's own renderer (`stipple synth`, rig view,
its standard ink and hair model): training seeds 100-199 and 1000-1299, check seeds 200-299. The
evaluation seeds (9000+) and the held-out ink and hair model (`--colours alternate`) are never
used here.

    cargo build --release --examples
    python3 models/train/fit_kinds.py --stipple target/release/stipple --examples target/release/examples --work data/kinds

Needs numpy, pandas and scikit-learn. Rendering and measuring the 500 frames takes a few minutes
on two cores (once; they are kept in --work), the fit under a minute.
"""

import os
import subprocess

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from derm_trees import arg_parser, rust_table

# (first seed, count) of each set.
SETS = {"train": [(100, 100), (1000, 300)], "check": [(200, 100)]}
# The columns examples/features.rs writes before the trees' features.
LEADING = ["frame", "ppm", "fitz", "x", "y", "peak", "radius_mm", "elong", "length_mm", "trunc", "tint",
           "rel_luma", "chroma_rb", "chroma_gb", "dl", "da", "db", "kind", "truth", "dist"]
GROUPS = [("I-II", 1, 2), ("III-IV", 3, 4), ("V-VI", 5, 6)]


def frames(args, name):
    """Renders and measures set `name` (once each) and returns its accepted regions that match a
    true dot, with the trees' features and `pigment` (the label)."""
    parts = []
    names = None
    for first, count in SETS[name]:
        count = min(count, args.frames or count)
        out = os.path.join(args.work, f"{name}-{first}-{count}")
        if not os.path.exists(os.path.join(out, f"{count - 1:03d}.json")):
            subprocess.run([args.stipple, "synth", "--seed", str(first), "--count", str(count), "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
        csv = out + ".csv"
        if not os.path.exists(csv):
            with open(csv + ".part", "w") as f:
                subprocess.run([os.path.join(args.examples, "features"), out], stdout=f, check=True)
            os.replace(csv + ".part", csv)
        with open(csv) as f:
            header = f.readline().strip().split(",")
        assert header[: len(LEADING)] == LEADING, f"{csv}: unexpected columns {header[:len(LEADING)]}"
        names = header[len(LEADING):]
        part = pd.read_csv(csv, header=None, skiprows=1, low_memory=False)
        part.columns = LEADING + [f"t{i}" for i in range(len(names))]
        part = part[(part.kind != "reject") & part.truth.isin(["follicle", "mini", "pigment"])]
        parts.append(part)
    data = pd.concat(parts, ignore_index=True)
    data["pigment"] = data.truth == "pigment"
    return data, names


def by_group(data, predicted):
    right = predicted == data.pigment.values
    cells = []
    for label, lo, hi in GROUPS:
        s = ((data.fitz >= lo) & (data.fitz <= hi)).values
        cells.append(f"{label} {right[s].mean():.3f}" if s.any() else f"{label} -")
    return ", ".join(cells) + f"; all {right.mean():.3f}"


def main():
    ap = arg_parser(__doc__, "src/perception/rig/generated/kind_model.rs")
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.set_defaults(work="data/kinds", trees=60)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    train, names = frames(args, "train")
    check, _ = frames(args, "check")
    columns = [f"t{i}" for i in range(len(names))]
    before = (check.kind == "pigment").values
    print(f"the detector's kinds when these were measured: {by_group(check, before)}")
    model = HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.25, max_leaf_nodes=15, min_samples_leaf=20, random_state=args.seed,
    ).fit(train[columns].values.astype(float), train.pigment.values)
    predicted = model.predict(check[columns].values.astype(float))
    summary = (f"Fitted on {len(train)} dots of {train.frame.nunique()} training frames (seeds 100-199, "
               f"1000-1299); on {len(check)} dots of {check.frame.nunique()} check frames (seeds 200-299) "
               f"follicle or pigment is right by group {by_group(check, predicted)}.")
    print(summary)
    with open(args.out, "w") as f:
        f.write(rust_table(model, summary, names, what="follicle-or-pigment", script="fit_kinds.py",
                           name="KIND_MODEL", view="rig"))


if __name__ == "__main__":
    main()
