"""Fits the dermoscope root classifier and writes it as Rust (src/perception/dermoscope/generated/roots_model.rs).

Every shaft the tracer follows has two ends; the classifier says how likely each is the hair's
opening (root) rather than its cut tip, from the cues the Rust tracer measures at both ends
(examples/derm_ends.rs writes them, labelled against the renderer's truth). Frames come from
the project's own renderer: training seeds 100-199 and 1000-1199, check seeds 200-239 (evaluation seeds 9000+
are never used).

    cargo build --release --examples
    python3 models/train/fit_roots.py --examples target/release/examples --work data/derm

Needs numpy, pandas and scikit-learn. Takes a few seconds once the frames exist
(fit_pits.py renders the same ones).
"""

from derm_trees import arg_parser, features, fit, rust_table

FEATURES = [
    "edge", "on_body", "beyond", "behind", "fade", "halo", "width_mm", "o_edge", "o_on_body", "o_beyond",
    "o_behind", "o_fade", "o_halo", "o_width_mm", "length_mm", "mean_dark", "margin", "vote", "edge_mm",
    "o_edge_mm",
]


def main():
    args = arg_parser(__doc__, "src/perception/dermoscope/generated/roots_model.rs").parse_args()
    train = features(args, "train", "derm_ends")
    check = features(args, "check", "derm_ends")
    model = fit(args, train, FEATURES, "root")
    # Per shaft, the more likely end: how often it is the labelled root where one is.
    check = check.assign(p=model.predict_proba(check[FEATURES].values)[:, 1])
    best = check.loc[check.groupby(["frame", "shaft"]).p.idxmax()]
    with_root = check.groupby(["frame", "shaft"]).root.max()
    right = int(best.set_index(["frame", "shaft"]).root[with_root[with_root == 1].index].sum())
    report = (
        f"Fitted on {len(train)} shaft ends of {train.frame.nunique()} training frames (seeds 100-199, 1000-1199; {int(train['root'].sum())} roots); on check seeds "
        f"200-239 ({check.frame.nunique()} frames) the likelier end is the root for {right} of the {int(with_root.sum())} shafts that show one."
    )
    print(report)
    with open(args.out, "w") as f:
        f.write(rust_table(model, report, FEATURES, what="root", script="fit_roots.py", name="ROOT_MODEL"))


if __name__ == "__main__":
    main()
