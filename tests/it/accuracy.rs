//! Detection accuracy against the renderer's ground truth, on evaluation seeds that no
//! threshold was tuned on (the rig detector's rules were fitted on seeds 100-105, the dermoscope
//! opening detector's on seeds 100-139).

use stipple::eval::detect::{score_frame, Score};
use stipple::eval::{score_frame_visible, skin_group, SKIN_GROUPS};
use stipple::perception::Detector;
use stipple::source::synth::{render, render_with, ColourModel, SceneParams, View};

/// Evaluation seeds for the rig view: never used for tuning.
const RIG_EVAL_SEEDS: [u64; 4] = [7001, 7002, 7003, 7004];
/// Evaluation seeds for the dermoscope view: never used for tuning (the opening detector's
/// thresholds were fitted on seeds 100-139).
const DERMOSCOPE_EVAL_SEEDS: [u64; 8] = [7101, 7102, 7103, 7104, 7105, 7106, 7107, 7108];
/// Measured on `DERMOSCOPE_EVAL_SEEDS`: P 0.951, R 0.722, F1 0.821 (39 of 54 true dots, 41
/// detections; 0.690 with the hand-weighted root rule and no pits). The bars below keep a
/// margin. The goal is 0.90: see README.
const DERMOSCOPE_MIN_F1: f64 = 0.76;
/// Least precision on `DERMOSCOPE_EVAL_SEEDS` (measured 0.951).
const DERMOSCOPE_MIN_PRECISION: f64 = 0.88;

fn score_view(view: View, seeds: &[u64]) -> Score {
    let mut total = Score::default();
    for &seed in seeds {
        let frame = render(&SceneParams::new(seed, view));
        // The classical detector of the frame's view (no model).
        let mut det = Detector::classical_in(view, frame.truth.px_per_mm);
        let mut found = Vec::new();
        det.detect_classical_into(&frame.image, &mut found);
        let s = score_frame(&frame.truth, &found);
        eprintln!(
            "seed {seed}: {} px/mm, type {}, F1 {:.3}, kind {:.3}, density {:+.1}%",
            frame.truth.px_per_mm,
            frame.truth.fitzpatrick,
            s.f1(),
            s.kind_accuracy(),
            100.0 * s.density_error()
        );
        total.add(&s);
    }
    total
}

/// Evaluation seeds of the rig tables by skin group (Fitzpatrick I-II: 4 frames, III-IV: 5,
/// V-VI: 3); nothing was fitted or chosen on them.
const RIG_GROUP_SEEDS: std::ops::Range<u64> = 9000..9012;

/// The classical rig detector on `seeds` rendered with `model`, scored on the dots each frame
/// shows, per skin group and overall.
fn score_rig_groups(model: ColourModel) -> (Score, [Score; 3]) {
    let mut total = Score::default();
    let mut groups: [Score; 3] = Default::default();
    for seed in RIG_GROUP_SEEDS {
        let frame = render_with(&SceneParams::new(seed, View::Rig), model);
        let mut det = Detector::classical_in(View::Rig, frame.truth.px_per_mm);
        let mut found = Vec::new();
        det.detect_classical_into(&frame.image, &mut found);
        let s = score_frame_visible(&frame.image, &frame.truth, &found);
        total.add(&s);
        groups[skin_group(frame.truth.fitzpatrick)].add(&s);
    }
    for (g, name) in groups.iter().zip(SKIN_GROUPS) {
        eprintln!(
            "{model:?} {name}: frames {} P {:.3} R {:.3} F1 {:.3} kind {:.3} density {:+.1}%",
            g.frames,
            g.precision(),
            g.recall(),
            g.f1(),
            g.kind_accuracy(),
            100.0 * g.density_error()
        );
    }
    (total, groups)
}

/// Issue 18: every skin group, on the dots each frame shows, with the renderer's own inks and
/// with the held-out ink and hair model nothing was fitted on. Measured (classical detector,
/// kinds from the kind trees): standard F1 0.968, by group I-II, III-IV, V-VI precision 0.992,
/// 0.996, 0.949; recall 0.976, 0.930, 0.984; kind 0.994, 0.916, 0.992 (0.988, 0.892, 0.940 with
/// the earlier linear rule); density -1.5%, -5.9%, +4.0%; alternate recall 0.974, 0.926, 0.891,
/// kind 0.999, 0.924, 0.878 (0.996, 0.887, 0.921 before). The bars keep a margin under these;
/// the targets (recall 0.98, kind 0.97, density within 3% in every group) are not met
/// yet (docs/detection.md).
#[test]
fn r18_rig_detection_by_skin_group() {
    let (total, groups) = score_rig_groups(ColourModel::Standard);
    assert!(
        groups.iter().all(|g| g.frames >= 3),
        "every group has frames"
    );
    assert!(total.f1() >= 0.95, "F1 {:.3}", total.f1());
    for (g, name) in groups.iter().zip(SKIN_GROUPS) {
        assert!(g.recall() >= 0.90, "{name}: recall {:.3}", g.recall());
        assert!(
            g.precision() >= 0.90,
            "{name}: precision {:.3}",
            g.precision()
        );
        assert!(
            g.kind_accuracy() >= 0.90,
            "{name}: kind {:.3}",
            g.kind_accuracy()
        );
        assert!(
            g.density_error().abs() <= 0.09,
            "{name}: density {:+.3}",
            g.density_error()
        );
    }
    let (total, groups) = score_rig_groups(ColourModel::Alternate);
    assert!(total.f1() >= 0.90, "alternate inks: F1 {:.3}", total.f1());
    for (g, name) in groups.iter().zip(SKIN_GROUPS) {
        assert!(
            g.recall() >= 0.70,
            "alternate {name}: recall {:.3}",
            g.recall()
        );
        assert!(
            g.kind_accuracy() >= 0.85,
            "alternate {name}: kind {:.3}",
            g.kind_accuracy()
        );
    }
}

/// The first rig evaluation seeds, all dots drawn, all type V-VI: seed 7004 (type VI, white
/// hair, lighter than the skin) holds F1 0.89 and kind 0.94 (visible dots), recall 0.82: the
/// detector finds light hair only where it stands well above the skin's own light specks; 7002
/// misses faint ink (recall 0.85). Measured F1 0.936 over the four on visible dots. Kept as the
/// known gap (docs/detection.md), ignored until it passes.
#[test]
#[ignore = "known gap (issue 18): white hair and faint ink on dark skin"]
fn rig_view_meets_the_detection_targets() {
    let s = score_view(View::Rig, &RIG_EVAL_SEEDS);
    eprintln!("{s:?}");
    assert!(
        s.true_dots > 1000,
        "the frames hold real work: {}",
        s.true_dots
    );
    assert!(s.f1() >= 0.95, "F1 {:.3} < 0.95", s.f1());
    assert!(
        s.kind_accuracy() >= 0.90,
        "kind accuracy {:.3} < 0.90",
        s.kind_accuracy()
    );
    assert!(
        s.density_error().abs() <= 0.05,
        "density error {:+.3}",
        s.density_error()
    );
    assert!(
        s.negative_rate() < 0.01,
        "{:.4} of detections on negatives",
        s.negative_rate()
    );
}

#[test]
fn dermoscope_view_finds_the_openings() {
    let s = score_view(View::Dermoscope, &DERMOSCOPE_EVAL_SEEDS);
    eprintln!("{s:?}");
    assert!(
        s.true_dots >= 40,
        "the frames hold real work: {}",
        s.true_dots
    );
    assert!(
        s.f1() >= DERMOSCOPE_MIN_F1,
        "F1 {:.3} < {DERMOSCOPE_MIN_F1}",
        s.f1()
    );
    assert!(
        s.precision() >= DERMOSCOPE_MIN_PRECISION,
        "precision {:.3} < {DERMOSCOPE_MIN_PRECISION}",
        s.precision()
    );
}
