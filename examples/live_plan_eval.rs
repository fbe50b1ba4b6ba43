//! The live session's plan against the renderer's true dots, with and without the frame's
//! skin analysis (`planning::skin::analyse`, which the live plan is made on since 2026-12-05):
//! `cargo run --release --example live_plan_eval -- FIRST_SEED COUNT`. Each seed's rig frame
//! is held still for twelve frames through a `LiveSession` (its own detector, the classical
//! one), once as the service runs it and once with the frame's pixels withheld from the plan
//! (the skin map alone, as before). Scored as `plan_eval` scores `stipple plan`: target
//! 70/cm², 0.7 mm, against the dots each frame shows; also counted: recommendations within
//! 0.5 mm of a true mole or strand, and the regions the overlay outlines as declined.

use std::sync::Arc;
use std::time::Instant;

use stipple::eval::{score_plan, skin_group, Visibility, SKIN_GROUPS};
use stipple::session::{LiveSession, SessionConfig};
use stipple::source::synth::{render, NegativeKind, SceneParams, View};

/// One mode's sums over a skin group.
#[derive(Default, Clone, Copy)]
struct Sums {
    recs: usize,
    too_close: usize,
    judged: usize,
    within: usize,
    near_marks: usize,
    declined: usize,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).map_or(Ok(9000), |s| s.parse())?;
    let count: u64 = args.get(2).map_or(Ok(24), |s| s.parse())?;
    let mut sums = [[Sums::default(); 2]; 3];
    println!("| seed | type | px/mm | recs | too close | density err | near a mark | declined | recs (skin map only) | too close | density err | near a mark |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for seed in first..first + count {
        let frame = render(&SceneParams::new(seed, View::Rig));
        let ppm = frame.truth.px_per_mm;
        let judged = Visibility::measure(&frame.image, &frame.truth).visible_truth(&frame.truth);
        let marks: Vec<_> = frame
            .truth
            .negatives
            .iter()
            .filter(|n| matches!(n.kind, NegativeKind::Mole | NegativeKind::Strand))
            .collect();
        let image = Arc::new(frame.image.clone());
        let group = skin_group(frame.truth.fitzpatrick);
        let mut cells = Vec::new();
        for (mode, with_pixels) in [(0, true), (1, false)] {
            let mut session = LiveSession::new(SessionConfig::new(ppm));
            let mut declined = 0;
            for seq in 0..12u64 {
                let f = stipple::Frame {
                    meta: stipple::FrameMeta {
                        seq,
                        captured_at: Instant::now(),
                        camera_id: 0,
                    },
                    image: image.clone(),
                };
                let mut p = session.detect(&f)?;
                if !with_pixels {
                    p.image = None;
                }
                declined = session.update(&p, None).declined.len();
            }
            let image_from_skin = session.skin_from_image().inverse();
            let recs: Vec<[f64; 2]> = session
                .full_plan()
                .iter()
                .map(|r| image_from_skin.apply(r.in_skin_mm))
                .collect();
            let s = score_plan(&judged, &recs, 70.0, 0.7);
            let near = recs
                .iter()
                .filter(|q| {
                    marks
                        .iter()
                        .any(|m| m.shape.distance(q[0], q[1]) / ppm < 0.5)
                })
                .count();
            let close = s.too_close_to_existing + s.too_close_to_recommendation;
            let e = &mut sums[group][mode];
            e.recs += s.recommendations;
            e.too_close += close;
            if s.short_cells > 0 {
                e.judged += 1;
                e.within += usize::from(s.median_density_error <= 0.12);
            }
            e.near_marks += near;
            e.declined += declined;
            cells.push(format!(
                "{} | {close} | {:.3} | {near}",
                s.recommendations, s.median_density_error
            ));
            if with_pixels {
                cells.push(declined.to_string());
            }
        }
        println!(
            "| {seed} | {} | {ppm:.1} | {} |",
            frame.truth.fitzpatrick,
            cells.join(" | ")
        );
    }
    println!("\n| group | plan made on | recs | too close | frames within 12% | recs within 0.5 mm of a mole or strand | declined regions |");
    println!("|---|---|---|---|---|---|---|");
    for (g, name) in SKIN_GROUPS.iter().enumerate() {
        for (mode, how) in ["the frame's analysis", "the skin map alone"]
            .iter()
            .enumerate()
        {
            let e = sums[g][mode];
            println!(
                "| {name} | {how} | {} | {} ({:.2}%) | {} of {} | {} | {} |",
                e.recs,
                e.too_close,
                100.0 * e.too_close as f64 / e.recs.max(1) as f64,
                e.within,
                e.judged,
                e.near_marks,
                e.declined
            );
        }
    }
    Ok(())
}
