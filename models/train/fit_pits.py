"""Fits the dermoscope pit classifier and writes it as Rust (src/perception/dermoscope/generated/pits_model.rs).

The candidates and their features come from the Rust detector itself (examples/derm_pits.rs),
so the model sees exactly what it will be given. Frames are rendered by the project's own
renderer: training seeds 100-199 and 1000-1199, check seeds 200-239 (evaluation seeds 9000+ are
never used).

    cargo build --release --examples
    python3 models/train/fit_pits.py --examples target/release/examples --work data/derm

Needs numpy, pandas and scikit-learn. Rendering the 340 frames takes about 11 minutes (1.9 s a
frame on one core); with the frames there, the fit takes about 12 s.
"""

from derm_trees import arg_parser, features, fit, rust_table

FEATURES = ["dog", "g1", "g4", "g8", "l1", "l2", "round", "ray", "opp", "raystd", "ring", "blue"]


def main():
    ap = arg_parser(__doc__, "src/perception/dermoscope/generated/pits_model.rs")
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()
    train = features(args, "train", "derm_pits")
    check = features(args, "check", "derm_pits")
    model = fit(args, train, FEATURES, "mini")
    p = model.predict_proba(check[FEATURES].values)[:, 1]
    keep = p > args.threshold
    report = (
        f"Fitted on {len(train)} candidates of {train.frame.nunique()} training frames (seeds 100-199, 1000-1199; {int(train['mini'].sum())} openings); on check seeds "
        f"200-239 ({check.frame.nunique()} frames) it keeps {int(keep.sum())} of {len(check)} candidates at p > {args.threshold}, "
        f"{int(check['mini'][keep].sum())} of them openings ({int(check['mini'].sum())} reachable)."
    )
    print(report)
    with open(args.out, "w") as f:
        f.write(rust_table(model, report, FEATURES))


if __name__ == "__main__":
    main()
