//! Detection accuracy against the renderer's ground truth, on evaluation seeds that no
//! threshold was tuned on (the rig detector's rules were fitted on seeds 100-105, the dermoscope
//! opening detector's on seeds 100-139).

use stipple::eval::detect::{score_frame, Score};
use stipple::perception::Detector;
use stipple::source::synth::{render, SceneParams, View};

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

#[test]
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
