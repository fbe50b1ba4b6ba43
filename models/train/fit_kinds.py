"""Fits the rig view's follicle-or-pigment trees and writes them as Rust (src/perception/rig/generated/kind_model.rs
and kind_context_model.rs).

Every dot the classical rig detector accepts gets a kind from these trees, reading the dot's own
colour against its skin ring, size, shape and darkness, and where it stands among the frame's
other accepted dots (`kinds::tree_features`; examples/features.rs writes them, labelled against
the renderer's truth). A second set of trees then reads the same features and what the first
says of the dots around each one (`kinds::context_features`): the artist's ink goes where the
hair is thin, so a dot among dots called hair is more likely hair, and one among ink more likely
ink. The second set is fitted on the first set's calls made out of fold (frames split four
ways), so it learns how far those calls can be trusted on frames they were not fitted on.
Frames with fewer dots than `kinds::MIN_CONTEXT_DOTS` keep the detector's linear rule. Frames come from the project's own renderer (`stipple synth`, rig view,
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
from scipy.spatial import cKDTree
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold

from derm_trees import arg_parser, rust_table

# (first seed, count) of each set.
SETS = {"train": [(100, 100), (1000, 300)], "check": [(200, 100)]}
# The columns examples/features.rs writes before the trees' features.
LEADING = ["frame", "ppm", "fitz", "x", "y", "peak", "radius_mm", "elong", "length_mm", "trunc", "tint",
           "rel_luma", "chroma_rb", "chroma_gb", "dl", "da", "db", "kind", "truth", "dist"]
GROUPS = [("I-II", 1, 2), ("III-IV", 3, 4), ("V-VI", 5, 6)]
# kinds::context_features, in its order: the nearest and second-nearest other accepted dot (mm,
# at most REACH_MM), how many lie within CLOSE_MM, the mean pigment probability (first trees) of
# those within NEAR_MM and how many they are, and the mean of those within REACH_MM. Keep in
# step with the constants of src/perception/rig/kinds.rs.
CONTEXT = ["nearest_mm", "second_mm", "close_count", "near_pigment", "near_count", "wide_pigment"]
CLOSE_MM, NEAR_MM, REACH_MM = 0.4, 1.5, 3.0


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
        parts.append(part[part.kind != "reject"])
    data = pd.concat(parts, ignore_index=True)
    data["pigment"] = data.truth == "pigment"
    data["labelled"] = data.truth.isin(["follicle", "mini", "pigment"])
    return data, names


def context(data, probability):
    """kinds::context_features of every row (all accepted regions of each frame), given each
    one's first-stage pigment probability."""
    out = np.zeros((len(data), len(CONTEXT)))
    for _, g in data.groupby("frame"):
        idx = g.index.values
        pts = g[["x", "y"]].values / g.ppm.values[:, None]
        p = probability[idx]
        tree = cKDTree(pts)
        k = min(3, len(pts))
        dist, _ = tree.query(pts, k=k, distance_upper_bound=REACH_MM)
        dist = np.minimum(np.pad(dist, ((0, 0), (0, 3 - k)), constant_values=np.inf), REACH_MM)
        rows = []
        for i, (near, wide) in enumerate(zip(tree.query_ball_point(pts, NEAR_MM), tree.query_ball_point(pts, REACH_MM))):
            near = [j for j in near if j != i]
            wide = [j for j in wide if j != i]
            close = int((np.hypot(*(pts[near] - pts[i]).T) <= CLOSE_MM).sum()) if near else 0
            rows.append([close, p[near].mean() if near else 0.0, len(near), p[wide].mean() if wide else 0.0])
        out[idx] = np.c_[dist[:, 1], dist[:, 2], np.array(rows)]
    return out


def check_context():
    """`context` on the hand-made frame of the Rust test
    `kinds::tests::context_features_describe_the_first_calls_around_each_dot`, against the same
    expected values: the two implementations of one definition must agree."""
    ppm = 20.0
    frame = pd.DataFrame({"frame": "t", "ppm": ppm,
                          "x": np.array([10.0, 10.3, 11.0, 12.0, 30.0]) * ppm,
                          "y": np.array([10.0, 10.0, 10.0, 10.0, 30.0]) * ppm})
    got = context(frame, np.array([0.5, 0.5, 0.9, 0.1, 0.5]))
    want = np.array([[0.3, 1.0, 1, 0.7, 2, 1.5 / 3], [1.0, 1.7, 0, 0.9, 1, 1.9 / 3],
                     [REACH_MM, REACH_MM, 0, 0.0, 0, 0.0]])
    assert np.allclose(got[[0, 3, 4]], want), f"context features differ from the Rust test's: {got}"


def by_group(data, predicted):
    """Kind accuracy by skin group over the labelled rows of `data` (`predicted`: every row)."""
    s = data.labelled.values
    data, predicted = data[s], predicted[s]
    right = predicted == data.pigment.values
    cells = []
    for label, lo, hi in GROUPS:
        s = ((data.fitz >= lo) & (data.fitz <= hi)).values
        cells.append(f"{label} {right[s].mean():.3f}" if s.any() else f"{label} -")
    return ", ".join(cells) + f"; all {right.mean():.3f}"


def main():
    ap = arg_parser(__doc__, "src/perception/rig/generated/kind_model.rs")
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--context-out", default="src/perception/rig/generated/kind_context_model.rs")
    ap.set_defaults(work="data/kinds", trees=60)
    args = ap.parse_args()
    check_context()
    os.makedirs(args.work, exist_ok=True)
    train, names = frames(args, "train")
    check, _ = frames(args, "check")
    columns = [f"t{i}" for i in range(len(names))]
    before = (check.kind == "pigment").values
    print(f"the detector's kinds when these were measured: {by_group(check, before)}")
    fit = lambda x, y: HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.25, max_leaf_nodes=15, min_samples_leaf=20, random_state=args.seed,
    ).fit(x, y)
    x_train = train[columns].values.astype(float)
    labelled = train.labelled.values
    model = fit(x_train[labelled], train.pigment.values[labelled])
    x_check = check[columns].values.astype(float)
    predicted = model.predict(x_check)
    summary = (f"Fitted on {labelled.sum()} dots of {train.frame.nunique()} training frames (seeds 100-199, "
               f"1000-1299); on {check.labelled.sum()} dots of {check.frame.nunique()} check frames (seeds 200-299) "
               f"follicle or pigment is right by group {by_group(check, predicted)}.")
    print(summary)
    with open(args.out, "w") as f:
        f.write(rust_table(model, summary, names, what="follicle-or-pigment", script="fit_kinds.py",
                           name="KIND_MODEL", view="rig"))
    # The second stage: the first stage's calls out of fold on the training frames, its own on
    # the check frames (as the detector will make them).
    first = np.zeros(len(train))
    folds = GroupKFold(min(4, train.frame.nunique()))
    for a, b in folds.split(x_train, groups=train.frame.values):
        a = a[labelled[a]]
        y = train.pigment.values[a]
        # A smoke run's few frames may hold one kind only: then that is the call.
        first[b] = fit(x_train[a], y).predict_proba(x_train[b])[:, 1] if 0 < y.sum() < len(y) else y.mean()
    x2_train = np.hstack([x_train, context(train, first)])
    x2_check = np.hstack([x_check, context(check, model.predict_proba(x_check)[:, 1])])
    second = fit(x2_train[labelled], train.pigment.values[labelled])
    predicted = second.predict(x2_check)
    summary = (f"Reads the first trees' features and their calls around each dot; fitted on the same "
               f"{labelled.sum()} dots (the first trees' calls out of fold); on the check frames follicle or "
               f"pigment is right by group {by_group(check, predicted)}.")
    print(summary)
    with open(args.context_out, "w") as f:
        f.write(rust_table(second, summary, names + CONTEXT, what="follicle-or-pigment-in-context",
                           script="fit_kinds.py", name="KIND_CONTEXT_MODEL", view="rig"))


if __name__ == "__main__":
    main()
