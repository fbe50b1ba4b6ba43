//! Whole-head photographs (issue 19): the renderer's `ChairKind::WholeHead` (a head seen whole
//! against its room, hair and shirt) at 3, 4, 5, 6 and 8 px/mm, scored as `stipple detect` and
//! `stipple plan` run them (the bundled dot and skin models): the skin mask against the truth,
//! the detections on what is not skin, and what the plan does. The classical mask's IoU is
//! given beside the fused one.
//!
//! `cargo run --release --example whole_head_eval -- [FIRST_SEED] [COUNT]` (defaults 9120 4:
//! held-out seeds; the development seeds are 7000 and up). Prints markdown.

use stipple::eval::skin::{far_from_skin, score_mask, skin_group};
use stipple::perception::{Detector, FuseConfig, OnnxSegmenter, SegmentConfig, Segmenter};
use stipple::perception::{SkinMask, SkinMasker};
use stipple::planning::{plan_image, PlannerConfig};
use stipple::source::synth::{ChairKind, Pose, Scene, SceneParams, View};

const SCALES: [f64; 5] = [3.0, 4.0, 5.0, 6.0, 8.0];
/// A detection is on what is not skin when no skin pixel of the truth lies within this (mm): a
/// dot at the scalp's edge may sit a pixel off it.
const OFF_SKIN_MM: f64 = 1.0;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).map_or(Ok(9120), |s| s.parse())?;
    let count: u64 = args.get(2).map_or(Ok(4), |s| s.parse())?;
    println!(
        "| seed | group | px/mm | skin (truth) | skin (mask) | IoU | IoU, colour rules alone | \
         model set aside | detections | on not-skin | recommendations | declined |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut classical = SkinMasker::new();
    let (mut frames, mut worst, mut off_total, mut dets_total, mut recs_total) =
        (0usize, 1.0f64, 0usize, 0usize, 0usize);
    for seed in first..first + count {
        for ppm in SCALES {
            let mut params = SceneParams::new(seed, View::Rig);
            params.px_per_mm = Some(ppm);
            let mut scene = Scene::generate(&params);
            scene.set_chair(Some(ChairKind::WholeHead), true);
            let frame = scene.render(&Pose::default(), seed);
            let truth = frame.truth.not_skin.as_ref();
            let seg = OnnxSegmenter::bundled_for(ppm, &SegmentConfig::default())?;
            let mut det =
                Detector::fused(ppm, Segmenter::Onnx(Box::new(seg)), FuseConfig::default())?;
            det.use_bundled_skin_model()?;
            let dets = det.detect(&frame.image)?;
            let mask: SkinMask = det
                .skin_mask()
                .cloned()
                .expect("the rig view has a skin mask");
            let score = score_mask(&mask, truth);
            let alone = score_mask(classical.compute(&frame.image, ppm), truth).iou;
            // Detections with no skin of the truth within `OFF_SKIN_MM`.
            let off = truth.map_or(0, |t| {
                let m = t.to_mask();
                dets.iter()
                    .filter(|d| far_from_skin(&m, d.x, d.y, OFF_SKIN_MM * ppm))
                    .count()
            });
            let plan = plan_image(
                &frame.image,
                ppm,
                &dets,
                det.mask(),
                Some(&mask),
                None,
                PlannerConfig::new(70.0, 0.7),
            )?;
            let reasons: Vec<&str> = plan
                .declined
                .iter()
                .map(|d| {
                    if d.reason.contains("too coarse") {
                        "the scale is too coarse"
                    } else {
                        d.reason.split([':', '(']).next().unwrap_or("").trim()
                    }
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            println!(
                "| {seed} | {} | {ppm} | {:.3} | {:.3} | {:.3} | {alone:.3} | {} | {} | {off} | {} | {} |",
                skin_group(frame.truth.fitzpatrick),
                score.true_fraction,
                score.fraction,
                score.iou,
                if mask.learned_set_aside() { "yes" } else { "no" },
                dets.len(),
                plan.recommendations.len(),
                reasons.join("; "),
            );
            frames += 1;
            worst = worst.min(score.iou);
            off_total += off;
            dets_total += dets.len();
            recs_total += plan.recommendations.len();
        }
    }
    println!(
        "\n{frames} pictures: skin-mask IoU at worst {worst:.3}; {off_total} of {dets_total} \
         detections more than {OFF_SKIN_MM} mm from the truth's skin; {recs_total} recommendations."
    );
    Ok(())
}
