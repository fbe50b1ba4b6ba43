//! Skin mask against the renderer's chair truth, per seed: `cargo run --release --example
//! chair_eval -- FIRST_SEED COUNT [OUT_DIR]` prints IoU and skin fractions by Fitzpatrick type;
//! with OUT_DIR, writes each frame and its masks for a look.

use stipple::eval::skin::score_mask;
use stipple::perception::SkinMasker;
use stipple::source::synth::{ChairKind, Scene, SceneParams, View};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(7000);
    let count: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(12);
    let out = args.get(3);
    let mut masker = SkinMasker::new();
    for seed in first..first + count {
        let mut scene = Scene::generate(&SceneParams::new(seed, View::Rig));
        scene.set_chair(Some(ChairKind::Working), true);
        let frame = scene.render(&Default::default(), seed);
        let t = std::time::Instant::now();
        let mask = masker.compute(&frame.image, scene.px_per_mm()).clone();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let s = score_mask(&mask, frame.truth.not_skin.as_ref());
        println!(
            "seed {seed} fitz {} ppm {:.1} iou {:.3} truth_skin {:.3} ours {:.3} ({ms:.1} ms)",
            scene.fitzpatrick(),
            scene.px_per_mm(),
            s.iou,
            s.true_fraction,
            s.fraction
        );
        if let Some(dir) = out {
            let _ = std::fs::create_dir_all(dir);
            let _ = frame.image.save(format!("{dir}/{seed}.png"));
            let _ = mask.not_skin_image().save(format!("{dir}/{seed}_mask.png"));
            if let Some(t) = &frame.truth.not_skin {
                let _ = t.to_mask().save(format!("{dir}/{seed}_truth.png"));
            }
        }
    }
}
