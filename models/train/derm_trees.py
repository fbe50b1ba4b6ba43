"""Shared steps of the dermoscope classifiers' fitting scripts (fit_pits.py, fit_roots.py).

Frames come from the project's own renderer (examples/derm_eval.rs renders them); the Rust
detector writes each frame's features as CSV (examples/derm_pits.rs, examples/derm_ends.rs);
scikit-learn fits a gradient-boosted tree ensemble, written out as a Rust table that
src/perception/trees.rs evaluates.
"""

import argparse
import os
import subprocess

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

# Training seeds 100-199 and 1000-1199, check seeds 200-239 (first seed, count); the
# evaluation seeds (9000+) are never used.
SETS = {"train": [(100, 100), (1000, 200)], "check": [(200, 40)]}


def arg_parser(doc, out):
    """The options both scripts take; `out` is the Rust file written by default."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--examples", default="target/release/examples")
    ap.add_argument("--work", default="data/derm")
    ap.add_argument("--out", default=out)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, help="use only this many frames of each set (a smoke run)")
    ap.add_argument("--trees", type=int, default=100)
    return ap


def features(args, name, example):
    """Renders set `name` (once) and returns the CSV rows that `example` writes for its frames
    (`frame` is "FIRST/NNN": the part's first seed and the frame's number in it)."""
    parts = []
    for first, count in SETS[name]:
        count = min(count, args.frames or count)
        frames = os.path.join(args.work, name, str(first))
        os.makedirs(frames, exist_ok=True)
        if not os.path.exists(os.path.join(frames, f"{count - 1:03d}.json")):
            subprocess.run([os.path.join(args.examples, "derm_eval"), "render", frames, str(first), str(count)],
                           check=True)
        csv = os.path.join(args.work, f"{name}-{first}-{example}.csv")
        with open(csv, "w") as out:
            subprocess.run([os.path.join(args.examples, example), frames], stdout=out, check=True)
        part = pd.read_csv(csv, dtype={"frame": str})
        part["frame"] = f"{first}/" + part["frame"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def fit(args, train, columns, label):
    """100 trees of depth 3 (or `--trees`), seeded."""
    return HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.1, max_depth=3, min_samples_leaf=20, random_state=args.seed
    ).fit(train[columns].values, train[label].values)


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
