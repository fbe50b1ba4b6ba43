"""Fits the dermoscope pit classifier and writes it as Rust (src/perception/pits_model.rs).

The candidates and their features come from the Rust detector itself (examples/derm_pits.rs),
so the model sees exactly what it will be given. Frames are rendered by the project's own
renderer: training seeds 100-199, check seeds 200-239 (evaluation seeds 9000+ are never used).

    cargo build --release --examples
    python3 models/train/fit_pits.py --examples target/release/examples --work data/derm

Needs numpy, pandas and scikit-learn. About five minutes on two cores, most of it rendering.
"""

import argparse
import os
import subprocess

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

FEATURES = ["dog", "g1", "g4", "g8", "l1", "l2", "round", "ray", "opp", "raystd", "ring", "blue"]
SETS = {"train": (100, 100), "check": (200, 40)}


def candidates(examples, work, name, limit=None):
    first, count = SETS[name]
    count = min(count, limit or count)
    frames = os.path.join(work, name)
    if not os.path.exists(os.path.join(frames, f"{count - 1:03d}.json")):
        subprocess.run([os.path.join(examples, "derm_eval"), "render", frames, str(first), str(count)], check=True)
    csv = os.path.join(work, f"{name}.csv")
    with open(csv, "w") as out:
        subprocess.run([os.path.join(examples, "derm_pits"), frames], stdout=out, check=True)
    return pd.read_csv(csv, dtype={"frame": str})


def rust_table(model, rounds, what="pit", script="fit_pits.py", name="PIT_MODEL"):
    base = float(np.ravel(model._baseline_prediction)[0])
    lines = [
        f"//! The dermoscope {what} classifier: gradient-boosted trees written by",
        f"//! `models/train/{script}` (do not edit by hand; re-run the script).",
        f"//! {rounds}",
        "",
        "// Thresholds are data: one may land near a named constant.",
        "#![allow(clippy::approx_constant)]",
        "",
        "use super::trees::{Ensemble, Node, LEAF};",
        "",
        f"/// The {what} classifier.",
        "#[rustfmt::skip]",
        f"pub const {name}: Ensemble = Ensemble {{",
        f"    baseline: {base!r},",
        "    trees: &[",
    ]
    for pred in model._predictors:
        nodes = pred[0].nodes
        lines.append("        &[")
        for n in nodes:
            if n["is_leaf"]:
                lines.append(f"            Node {{ feature: LEAF, threshold: 0.0, left: 0, right: 0, value: {float(n['value'])!r} }},")
            else:
                lines.append(
                    f"            Node {{ feature: {int(n['feature_idx'])}, threshold: {float(n['num_threshold'])!r}, "
                    f"left: {int(n['left'])}, right: {int(n['right'])}, value: 0.0 }},"
                )
        lines.append("        ],")
    lines += ["    ],", "};", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", default="target/release/examples")
    ap.add_argument("--work", default="data/derm")
    ap.add_argument("--out", default="src/perception/pits_model.rs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, help="use only this many frames of each set (a smoke run)")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    train = candidates(args.examples, args.work, "train", args.frames)
    check = candidates(args.examples, args.work, "check", args.frames)
    model = HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.1, max_depth=3, min_samples_leaf=20, random_state=args.seed
    ).fit(train[FEATURES].values, train["mini"].values)
    p = model.predict_proba(check[FEATURES].values)[:, 1]
    keep = p > args.threshold
    report = (
        f"Fitted on {len(train)} candidates of {train.frame.nunique()} frames of seeds 100-199 ({int(train['mini'].sum())} openings); on check seeds "
        f"200-239 ({check.frame.nunique()} frames) it keeps {int(keep.sum())} of {len(check)} candidates at p > {args.threshold}, "
        f"{int(check['mini'][keep].sum())} of them openings ({int(check['mini'].sum())} reachable)."
    )
    print(report)
    with open(args.out, "w") as f:
        f.write(rust_table(model, report))


if __name__ == "__main__":
    main()
