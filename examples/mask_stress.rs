//! The skin mask against occluders of colours the renderer never draws: each chair frame's
//! not-skin pixels (by the truth mask: gloves, cartridge, cape, room, hair, ear, ink smears)
//! turned about the grey axis in the YCbCr chroma plane, their luma kept, and the mask scored
//! against the same truth. A skin model that only knows the renderer's blue, black, white and
//! violet gloves shows it here. Prints the markdown of docs/skin-mask-colours.md.
//!
//! `cargo run --release --example mask_stress -- [FIRST_SEED] [COUNT]` (defaults 9100 24: the
//! held-out chair seeds; the development chair seeds are 7000-7063); `TURNS=0,90` for other
//! turns (degrees) than every 45; `FRAMES=1` adds a line per frame and turn.

use stipple::eval::skin::{score_mask, skin_group, turn_not_skin};
use stipple::perception::skin_mask::LEARNED_MAX_OVERRULED;
use stipple::perception::SkinMasker;
use stipple::source::synth::{ChairKind, Pose, Scene, SceneParams, View};

/// Per turn: the worst and the sum of the IoU, and the frames under 0.95, fused and classical.
#[derive(Clone, Copy, Default)]
struct Tally {
    worst: [f64; 2],
    sum: [f64; 2],
    under: [usize; 2],
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(9100);
    let count: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(24);
    let turns: Vec<f64> = match std::env::var("TURNS") {
        Ok(list) => list
            .split(',')
            .map(|t| t.trim().parse())
            .collect::<Result<_, _>>()?,
        Err(_) => vec![0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0],
    };
    let per_frame = std::env::var_os("FRAMES").is_some();
    let mut fused = SkinMasker::with_bundled_model()?;
    let mut classical = SkinMasker::new();
    let mut tally = vec![
        Tally {
            worst: [1.0; 2],
            ..Tally::default()
        };
        turns.len()
    ];
    let mut frames = 0usize;
    let mut lines = Vec::new();
    for seed in first..first + count {
        let mut scene = Scene::generate(&SceneParams::new(seed, View::Rig));
        let ppm = scene.px_per_mm();
        scene.set_chair(Some(ChairKind::Working), true);
        let frame = scene.render(&Pose::default(), seed);
        let Some(truth) = frame.truth.not_skin.as_ref() else {
            continue;
        };
        frames += 1;
        let not_skin = truth.to_mask();
        for (k, &deg) in turns.iter().enumerate() {
            let mut image = frame.image.clone();
            turn_not_skin(&mut image, &not_skin, deg);
            let iou = [
                score_mask(fused.compute(&image, ppm), Some(truth)).iou,
                score_mask(classical.compute(&image, ppm), Some(truth)).iou,
            ];
            let t = &mut tally[k];
            for (j, &v) in iou.iter().enumerate() {
                t.worst[j] = t.worst[j].min(v);
                t.sum[j] += v;
                t.under[j] += usize::from(v < 0.95);
            }
            if per_frame {
                lines.push(format!(
                    "| {seed} | {} | {deg} | {:.3} | {:.3} |",
                    skin_group(scene.fitzpatrick()),
                    iou[0],
                    iou[1]
                ));
            }
        }
    }
    println!("# Skin mask: occluders of other colours (issue 19)\n");
    println!(
        "Written by `cargo run --release --example mask_stress -- {first} {count} > \
         docs/skin-mask-colours.md` (one run). The chair frames of seeds {first}-{} ({frames} \
         with something that is not skin), each with everything its truth mask calls not skin \
         (gloves, cartridge, cape, room, longer hair, ear, ink smears) turned about the grey \
         axis by the angle given (BT.601 chroma, luma kept): 0 is the frame as rendered; 45-315 \
         are gloves, capes and rooms of colours the renderer never draws (a blue glove turns \
         violet, green, yellow, orange). Skin IoU against the truth, for the product's mask (the \
         colour rules fused with the bundled skin model, `stipple detect` and `plan` by default) \
         and for the colour rules alone (`--no-model`).\n",
        first + count - 1
    );
    println!("| turn | fused: IoU min | mean | frames under 0.95 | colour rules alone: IoU min | mean | frames under 0.95 |");
    println!("|---|---|---|---|---|---|---|");
    for (k, deg) in turns.iter().enumerate() {
        let t = &tally[k];
        let n = frames.max(1) as f64;
        println!(
            "| {deg} | {:.3} | {:.3} | {} | {:.3} | {:.3} | {} |",
            t.worst[0],
            t.sum[0] / n,
            t.under[0],
            t.worst[1],
            t.sum[1] / n,
            t.under[1]
        );
    }
    println!(
        "\nThe bundled skin model learned the renderer's occluders only. Where one of another \
         colour makes it call more than {:.0}% of what the colour rules call skin not skin, the \
         mask sets its view aside for that frame (`LEARNED_MAX_OVERRULED` in \
         src/perception/skin_mask.rs); \
         where it overrules less, or restores a turned glove as skin, the fused mask is still \
         worse than the colour rules alone. The fix belongs in the model's training data \
         (`models/train/train_skin.py --turn-hue`, see models/README.md). Where the colour rules \
         fail too (an IoU near 0), the turned surface most likely took a hue they accept as \
         skin; those frames were not examined one by one.",
        100.0 * LEARNED_MAX_OVERRULED
    );
    if per_frame {
        println!("\n| seed | group | turn | fused | colour rules |\n|---|---|---|---|---|");
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}
