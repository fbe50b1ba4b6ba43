//! The demo's needle session headless, with the model thread's lag made on purpose:
//! `cargo run --release --example live_lag_eval -- SEED SECONDS LAG MODE`.
//!
//! The demo source (seed SEED, free-running at 30 fps, its glove and machine following the
//! simulated needle) goes through a `LiveSession` frame by frame for SECONDS seconds. The
//! bundled dot and skin models run every sixth frame, as the served model thread does at about
//! 5 Hz, on the frame LAG frames back (the served thread hands its masks to frames after the
//! one they were made on). MODE says how the session reads them:
//! - `warp`: as the service does, told the frame the masks were made on
//!   (`LiveSession::detect_with_mask` warps them into the current frame);
//! - `unmoved`: as before the warp, read at the current frame's pixels as they are (the
//!   session is told they are this frame's).
//!
//! Each placement the session counts is paired with the needle's truth: a placement within
//! 0.15 mm of a dot the needle made is the needle's, else false. Printed: placements, the
//! needle's, false, spacing violations, the needle's dots.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use stipple::mailbox::Mailbox;
use stipple::perception::{OnnxSegmenter, SegMask, SegmentConfig, Segmenter};
use stipple::session::{LiveSession, ModelView, SessionConfig};
use stipple::source::{DemoConfig, DemoSource, NeedleHint};
use stipple::{Frame, FrameMeta};

/// The demo's scale (px/mm).
const PX_PER_MM: f64 = 20.0;
/// The models run on every this many frames (5 Hz at 30 fps).
const MODEL_EVERY: u64 = 6;
/// A placement this close to a needle dot (mm) is the needle's.
const NEEDLE_MATCH_MM: f64 = 0.15;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: live_lag_eval SEED SECONDS LAG warp|unmoved";
    let arg = |i: usize| args.get(i).context(usage);
    let seed: u64 = arg(1)?.parse().context("SEED")?;
    let seconds: u64 = arg(2)?.parse().context("SECONDS")?;
    let lag: usize = arg(3)?.parse().context("LAG")?;
    let warp = match arg(4)?.as_str() {
        "warp" => true,
        "unmoved" => false,
        other => anyhow::bail!("MODE is warp or unmoved, not {other:?}; {usage}"),
    };
    let hints = Arc::new(Mailbox::new());
    let mut demo = DemoSource::new(DemoConfig::new(seed), hints.clone());
    demo.free_run();
    let mut session = LiveSession::new(SessionConfig::new(PX_PER_MM));
    let mut dots_model = Segmenter::Onnx(Box::new(OnnxSegmenter::bundled_for(
        PX_PER_MM,
        &SegmentConfig::default(),
    )?));
    let mut skin_model = OnnxSegmenter::bundled_skin()?;
    let mut recent: VecDeque<(u64, Arc<image::RgbImage>)> = VecDeque::new();
    let mut latest: Option<(u64, Arc<image::RgbImage>, SegMask, SegMask)> = None;
    let t0 = Instant::now();
    let (mut placed, mut violations, mut needles, mut false_n) = (0, 0, 0, 0);
    for seq in 0..seconds * 30 {
        let shown = demo.next_frame();
        let frame = Frame {
            meta: FrameMeta {
                seq,
                captured_at: t0 + Duration::from_secs_f64(seq as f64 / 30.0),
                camera_id: 0,
            },
            image: Arc::new(shown.image.clone()),
        };
        recent.push_back((seq, frame.image.clone()));
        if recent.len() > lag + 1 {
            recent.pop_front();
        }
        if seq % MODEL_EVERY == 0 {
            let (made_on, image) = recent.front().cloned().context("a frame")?;
            let dots = dots_model.segment(&image, PX_PER_MM)?.clone();
            let skin = skin_model.segment(&image, PX_PER_MM)?.clone();
            latest = Some((made_on, image, dots, skin));
        }
        let view = latest
            .as_ref()
            .map(|(made_on, image, dots, skin)| ModelView {
                seq: if warp { *made_on } else { seq },
                image,
                dots,
                skin: Some(skin),
            });
        let p = session.detect_with_mask(&frame, view)?;
        session.update(&p, Some(&shown.image_from_scene));
        let image_from_skin = session.skin_from_image().inverse();
        let scene_from_image = shown.image_from_scene.inverse();
        for d in session.take_placed() {
            placed += 1;
            violations += usize::from(d.too_close());
            let at = scene_from_image.apply(image_from_skin.apply(d.in_skin_mm));
            let nearest = demo
                .needle_dots()
                .iter()
                .map(|n| (n.in_scene_mm[0] - at[0]).hypot(n.in_scene_mm[1] - at[1]))
                .fold(f64::INFINITY, f64::min);
            if nearest < NEEDLE_MATCH_MM {
                needles += 1;
            } else {
                false_n += 1;
            }
        }
        hints.put(NeedleHint {
            seq,
            targets_in_image: session.targets_in_image(),
        });
    }
    println!(
        "seed {seed}, {seconds} s, masks {lag} frames late, {}: placed {placed} (the needle's \
         {needles}, false {false_n}), spacing violations {violations}; the needle made {} dots",
        if warp { "warped" } else { "unmoved" },
        demo.needle_dots().len()
    );
    Ok(())
}
