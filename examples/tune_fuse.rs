//! Sweeps the rig fusion thresholds on the training pipeline's rig validation seeds (never the
//! evaluation seeds) and prints F1, kind accuracy, density error and negatives for each setting.
//! Dermoscope frames have their own model and fusion: `examples/derm_eval.rs`.
//!
//! `cargo run --release --example tune_fuse [MODEL.onnx]`; `TUNE_SEEDS=FIRST..END` sweeps those
//! seeds instead (training seeds such as 100..140, never 9000+).

use stipple::eval::detect::{score_frame, Score};
use stipple::perception::segment::SegMask;
use stipple::perception::{
    BlobConfig, BlobDetector, FuseConfig, Fuser, OnnxSegmenter, SegmentConfig,
};
use stipple::source::synth::{render, SceneParams, Truth, View};
use stipple::Detection;

fn main() -> anyhow::Result<()> {
    let cfg = SegmentConfig::default();
    let mut seg = match std::env::args().nth(1) {
        Some(p) => OnnxSegmenter::from_file(std::path::Path::new(&p), &cfg)?,
        None => OnnxSegmenter::bundled(&cfg)?,
    };
    let sets = match std::env::var("TUNE_SEEDS") {
        Ok(range) => {
            let (a, b) = range
                .split_once("..")
                .ok_or_else(|| anyhow::anyhow!("TUNE_SEEDS is FIRST..END, not {range}"))?;
            vec![(View::Rig, a.parse::<u64>()?..b.parse::<u64>()?)]
        }
        Err(_) => vec![(View::Rig, 40000..40006)],
    };
    for (view, seeds) in sets {
        let mut frames: Vec<(Truth, Vec<Detection>, SegMask, f64)> = Vec::new();
        let mut classical = Score::default();
        for seed in seeds {
            let f = render(&SceneParams::new(seed, view));
            let ppm = f.truth.px_per_mm;
            let mut blobs = BlobDetector::new(BlobConfig { px_per_mm: ppm });
            classical.add(&score_frame(&f.truth, &blobs.detect(&f.image)));
            // As `stipple detect` fuses: the blobs' kind mixture sees the model's mask too.
            let mask = seg.segment(&f.image, ppm)?.clone();
            let mut with_model = Vec::new();
            blobs.detect_with_model_into(&f.image, Some(&mask), None, &mut with_model);
            frames.push((f.truth, with_model, mask, ppm));
        }
        eprintln!(
            "{view:?} classical: f1 {:.4} kind {:.4} density {:+.4} neg {:.4}",
            classical.f1(),
            classical.kind_accuracy(),
            classical.density_error(),
            classical.negative_rate()
        );
        for min_dot in [0.0f32, 0.05, 0.1] {
            for recover in [0.6f32, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95] {
                for kind_disagreement in [0.15f32, 0.2, 0.25, 0.3, 1.1] {
                    let fc = FuseConfig {
                        min_dot_prob: min_dot,
                        recover_prob: recover,
                        kind_disagreement,
                        ..FuseConfig::default()
                    };
                    let mut total = Score::default();
                    let mut fuser = Fuser::default();
                    let mut out = Vec::new();
                    for (truth, blobs, mask, ppm) in &frames {
                        fuser.fuse_into(blobs, mask, *ppm, &fc, &mut out);
                        total.add(&score_frame(truth, &out));
                    }
                    eprintln!(
                        "{view:?} min_dot {min_dot:.2} recover {recover:.2} kind_disagreement {kind_disagreement:.2}: f1 {:.4} p {:.4} r {:.4} kind {:.4} density {:+.4} neg {:.4}",
                        total.f1(),
                        total.precision(),
                        total.recall(),
                        total.kind_accuracy(),
                        total.density_error(),
                        total.negative_rate()
                    );
                }
            }
        }
    }
    Ok(())
}
