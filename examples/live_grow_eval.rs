//! The live plan growing over skin that comes into view, against the renderer's true dots:
//! `cargo run --release --example live_grow_eval -- FIRST_SEED COUNT`. Each seed's rig frame
//! (1280 px wide) is seen through an 800 px wide window: held at the left for twelve frames
//! (the first plan), panned 480 px to the right at 6 px a frame, and held there for thirty
//! frames, through one `LiveSession` (its own, classical, detector), which grows its plan where
//! the view stops. A second session sees only the final window, held still for twelve frames: a
//! plan made fresh there. Both plans are scored as `plan_eval` scores `stipple plan` (target
//! 70/cm², 0.7 mm) against the dots the final window shows; also counted: the plans each session
//! made and the recommendations of the first plan the grown one kept where they were.

use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;
use stipple::eval::{score_plan, skin_group, Visibility, SKIN_GROUPS};
use stipple::session::{LiveSession, SessionConfig};
use stipple::source::synth::{render, SceneParams, Truth, View};

const WINDOW_PX: u32 = 800;
const PAN_PX: u32 = 480;
const STEP_PX: u32 = 6;

/// One mode's sums over a skin group.
#[derive(Default, Clone, Copy)]
struct Sums {
    recs: usize,
    too_close: usize,
    judged: usize,
    within: usize,
}

/// The window of `truth` from `x0`, `WINDOW_PX` wide, in the window's pixels.
fn window_truth(truth: &Truth, x0: f64) -> Truth {
    let inside = |x: f64| x >= x0 && x < x0 + f64::from(WINDOW_PX);
    let mut t = truth.clone();
    t.width = WINDOW_PX;
    t.units.retain(|u| inside(u.x));
    for u in &mut t.units {
        u.x -= x0;
    }
    t.pigment.retain(|p| inside(p.x));
    for p in &mut t.pigment {
        p.x -= x0;
    }
    t
}

/// Feeds `session` the window at each offset in turn, one frame each.
fn run(
    session: &mut LiveSession,
    image: &RgbImage,
    offsets: &[u32],
    seq: &mut u64,
) -> anyhow::Result<()> {
    for &x0 in offsets {
        let window = image::imageops::crop_imm(image, x0, 0, WINDOW_PX, image.height()).to_image();
        let f = stipple::Frame {
            meta: stipple::FrameMeta {
                seq: *seq,
                captured_at: Instant::now(),
                camera_id: 0,
            },
            image: Arc::new(window),
        };
        let p = session.detect(&f)?;
        session.update(&p, None);
        *seq += 1;
    }
    Ok(())
}

/// The session's pending plan in the pixels of its last frame.
fn plan_px(session: &LiveSession) -> Vec<[f64; 2]> {
    let image_from_skin = session.skin_from_image().inverse();
    session
        .full_plan()
        .iter()
        .map(|r| image_from_skin.apply(r.in_skin_mm))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).map_or(Ok(9000), |s| s.parse())?;
    let count: u64 = args.get(2).map_or(Ok(24), |s| s.parse())?;
    let mut sums = [[Sums::default(); 2]; 3];
    println!("| seed | type | px/mm | plans | recs | kept | too close | density err | recs (fresh) | too close | density err |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for seed in first..first + count {
        let frame = render(&SceneParams::new(seed, View::Rig));
        anyhow::ensure!(
            frame.image.width() == WINDOW_PX + PAN_PX,
            "seed {seed}: the rig frame is {} px wide, not {}",
            frame.image.width(),
            WINDOW_PX + PAN_PX
        );
        let ppm = frame.truth.px_per_mm;
        let judged = Visibility::measure(&frame.image, &frame.truth).visible_truth(&frame.truth);
        let judged = window_truth(&judged, f64::from(PAN_PX));
        let group = skin_group(frame.truth.fitzpatrick);

        let mut grown = LiveSession::new(SessionConfig::new(ppm));
        let mut seq = 0;
        run(&mut grown, &frame.image, &[0; 12], &mut seq)?;
        let first_plan = grown.full_plan();
        let pan: Vec<u32> = (1..=PAN_PX / STEP_PX).map(|k| k * STEP_PX).collect();
        run(&mut grown, &frame.image, &pan, &mut seq)?;
        run(&mut grown, &frame.image, &[PAN_PX; 30], &mut seq)?;
        let kept = grown
            .full_plan()
            .iter()
            .filter(|r| {
                first_plan.iter().any(|f| {
                    (f.in_skin_mm[0] - r.in_skin_mm[0]).hypot(f.in_skin_mm[1] - r.in_skin_mm[1])
                        < 1e-6
                })
            })
            .count();

        let mut fresh = LiveSession::new(SessionConfig::new(ppm));
        let mut seq = 0;
        run(&mut fresh, &frame.image, &[PAN_PX; 12], &mut seq)?;

        let mut cells = vec![grown.counters().plans.to_string()];
        for (mode, session) in [&grown, &fresh].into_iter().enumerate() {
            let s = score_plan(&judged, &plan_px(session), 70.0, 0.7);
            let close = s.too_close_to_existing + s.too_close_to_recommendation;
            let e = &mut sums[group][mode];
            e.recs += s.recommendations;
            e.too_close += close;
            if s.short_cells > 0 {
                e.judged += 1;
                e.within += usize::from(s.median_density_error <= 0.12);
            }
            cells.push(s.recommendations.to_string());
            if mode == 0 {
                cells.push(kept.to_string());
            }
            cells.push(format!("{close} | {:.3}", s.median_density_error));
        }
        println!(
            "| {seed} | {} | {ppm:.1} | {} |",
            frame.truth.fitzpatrick,
            cells.join(" | ")
        );
    }
    println!("\n| group | plan | recs | too close | frames within 12% |");
    println!("|---|---|---|---|---|");
    for (g, name) in SKIN_GROUPS.iter().enumerate() {
        for (mode, how) in [
            "grown where the view stopped",
            "made fresh on the final view",
        ]
        .iter()
        .enumerate()
        {
            let e = sums[g][mode];
            println!(
                "| {name} | {how} | {} | {} ({:.2}%) | {} of {} |",
                e.recs,
                e.too_close,
                100.0 * e.too_close as f64 / e.recs.max(1) as f64,
                e.within,
                e.judged
            );
        }
    }
    Ok(())
}
