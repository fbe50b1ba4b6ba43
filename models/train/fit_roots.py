"""Fits the dermoscope root classifier and writes it as Rust (src/perception/roots_model.rs).

Every shaft the tracer follows has two ends; the classifier says how likely each is the hair's
opening (root) rather than its cut tip, from the cues the Rust tracer measures at both ends
(examples/derm_ends.rs writes them, labelled against the renderer's truth). Frames come from
the project's own renderer: training seeds 100-199, check seeds 200-239 (evaluation seeds 9000+
are never used).

    cargo build --release --examples
    python3 models/train/fit_roots.py --examples target/release/examples --work data/derm

Needs numpy, pandas and scikit-learn. Takes about a minute on two cores once the frames exist
(fit_pits.py renders the same ones).
"""

import argparse
import os
import subprocess

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from fit_pits import SETS, rust_table

FEATURES = [
    "edge", "on_body", "beyond", "behind", "fade", "halo", "width_mm", "o_edge", "o_on_body", "o_beyond",
    "o_behind", "o_fade", "o_halo", "o_width_mm", "length_mm", "mean_dark", "margin", "vote", "edge_mm",
    "o_edge_mm",
]


def ends(examples, work, name, limit=None):
    first, count = SETS[name]
    count = min(count, limit or count)
    frames = os.path.join(work, name)
    if not os.path.exists(os.path.join(frames, f"{count - 1:03d}.json")):
        subprocess.run([os.path.join(examples, "derm_eval"), "render", frames, str(first), str(count)], check=True)
    csv = os.path.join(work, f"{name}-ends.csv")
    with open(csv, "w") as out:
        subprocess.run([os.path.join(examples, "derm_ends"), frames], stdout=out, check=True)
    return pd.read_csv(csv, dtype={"frame": str})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", default="target/release/examples")
    ap.add_argument("--work", default="data/derm")
    ap.add_argument("--out", default="src/perception/roots_model.rs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, help="use only this many frames of each set (a smoke run)")
    ap.add_argument("--trees", type=int, default=100)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    train = ends(args.examples, args.work, "train", args.frames)
    check = ends(args.examples, args.work, "check", args.frames)
    model = HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.1, max_depth=3, min_samples_leaf=20, random_state=args.seed
    ).fit(train[FEATURES].values, train["root"].values)
    # Per shaft, the more likely end: how often it is the labelled root where one is.
    check = check.assign(p=model.predict_proba(check[FEATURES].values)[:, 1])
    best = check.loc[check.groupby(["frame", "shaft"]).p.idxmax()]
    with_root = check.groupby(["frame", "shaft"]).root.max()
    right = int(best.set_index(["frame", "shaft"]).root[with_root[with_root == 1].index].sum())
    report = (
        f"Fitted on {len(train)} shaft ends of {train.frame.nunique()} frames of seeds 100-199 ({int(train['root'].sum())} roots); on check seeds "
        f"200-239 ({check.frame.nunique()} frames) the likelier end is the root for {right} of the {int(with_root.sum())} shafts that show one."
    )
    print(report)
    with open(args.out, "w") as f:
        f.write(rust_table(model, report, what="root", script="fit_roots.py", name="ROOT_MODEL"))


if __name__ == "__main__":
    main()
