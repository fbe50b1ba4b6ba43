//! Evaluates the planner on rendered rig frames against the renderer's TRUE dots, the way the
//! product is judged: target 70/cm², minimum spacing 0.7 mm, recommendations closer than 90% of
//! the spacing to a true dot or to each other, median density error over 5x5 mm squares that
//! started below target, and the coefficient of variation of nearest-neighbour distances.
//!
//! `cargo run --release --example plan_eval -- [FIRST_SEED] [COUNT]` (defaults 9000 24).
//! With `ORACLE=1` the detector is replaced by the (visible) truth (the planner's own ceiling); with
//! `MODEL=1` it is the fused detector with the bundled model (what `stipple plan` runs by
//! default; its mask goes to the planner as `stipple plan` hands it over, `NO_SUSPECTS=1`
//! leaves that out), with `MODEL=FILE` another model (`RECOVER=P` sets the fusion's recovery
//! threshold), otherwise the classical one. The planner gets the frame's skin mask (with the
//! bundled skin model) as `stipple plan` hands it over; `NO_SKIN=1` plans as if all were skin.
//! Dots are the ones each frame shows (`stipple::eval::visible`; `ALL_DOTS=1`: every drawn
//! dot); `COLOURS=alternate` renders with the held-out ink and hair model; `GREY=1` turns each
//! frame grey (every channel its luma) before it is detected, planned and judged. A summary per
//! Fitzpatrick group closes the output.
//! With `DIAG=1`, every violation is explained (what the true dot was, how far the nearest
//! detection is); with `SAVE=DIR`, frames are written as `DIR/SEED.png`.

use stipple::eval::score_plan;
use stipple::eval::{skin_group, Visibility, SKIN_GROUPS};
use stipple::planning::{plan_image, PlannerConfig};
use stipple::source::synth::{render_with, ColourModel, SceneParams, View};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).map_or(Ok(9000), |s| s.parse())?;
    let count: u64 = args.get(2).map_or(Ok(24), |s| s.parse())?;
    let (mut recs_total, mut bad_total, mut ok_density) = (0usize, 0usize, 0usize);
    let mut errors = Vec::new();
    let mut cvs = Vec::new();
    let seg_cfg = stipple::perception::SegmentConfig::default();
    let mut segmenter = match std::env::var("MODEL") {
        Ok(v) if v == "1" => Some(stipple::perception::OnnxSegmenter::bundled(&seg_cfg)?),
        Ok(v) => Some(stipple::perception::OnnxSegmenter::from_file(
            std::path::Path::new(&v),
            &seg_cfg,
        )?),
        Err(_) => None,
    }
    .map(|s| stipple::perception::Segmenter::Onnx(Box::new(s)));
    let mut fuse_config = stipple::perception::FuseConfig::default();
    if let Ok(v) = std::env::var("RECOVER") {
        fuse_config.recover_prob = v.parse()?;
    }
    let mut masker = stipple::perception::SkinMasker::with_bundled_model()?;
    let colours = match std::env::var("COLOURS").as_deref() {
        Ok("alternate") => ColourModel::Alternate,
        _ => ColourModel::Standard,
    };
    // Per skin group: frames judged (some cells short), recommendations, violations, frames
    // within 12%, worst median density error, smallest nearest-neighbour CV.
    let mut groups = [(0usize, 0usize, 0usize, 0usize, 0.0f64, f64::INFINITY); 3];
    for seed in first..first + count {
        let mut mask: Option<stipple::perception::SegMask> = None;
        let mut skin: Option<stipple::perception::SkinMask> = None;
        let mut frame = render_with(&SceneParams::new(seed, View::Rig), colours);
        if std::env::var_os("GREY").is_some() {
            stipple::perception::filter::grey_in_place(&mut frame.image);
        }
        let ppm = frame.truth.px_per_mm;
        let judged = if std::env::var_os("ALL_DOTS").is_some() {
            frame.truth.clone()
        } else {
            Visibility::measure(&frame.image, &frame.truth).visible_truth(&frame.truth)
        };
        let dets = if std::env::var_os("ORACLE").is_some() {
            oracle(&judged)
        } else if let Some(seg) = segmenter.take() {
            // The model is loaded once; each frame's detector borrows it and hands it back.
            let mut det = stipple::perception::Detector::fused(ppm, seg, fuse_config)?;
            // The skin mask fuses the bundled skin model, as `stipple plan` does.
            det.use_bundled_skin_model()?;
            let mut out = Vec::new();
            det.detect_into(&frame.image, &mut out)?;
            // The mask goes to the planner too, as `stipple plan` hands it over
            // (`NO_SUSPECTS=1` leaves it out).
            if std::env::var_os("NO_SUSPECTS").is_none() {
                mask = det.mask().cloned();
            }
            skin = det.skin_mask().cloned();
            segmenter = det.into_segmenter();
            out
        } else {
            stipple::perception::detect(&frame.image, ppm)?
        };
        // The skin mask as `stipple plan` computes it: the detector's, or for given dots (the
        // perfect detector, the classical one here) the frame's own.
        let skin = if std::env::var_os("NO_SKIN").is_some() {
            None
        } else {
            Some(skin.unwrap_or_else(|| masker.compute(&frame.image, ppm).clone()))
        };
        let t0 = std::time::Instant::now();
        let ip = plan_image(
            &frame.image,
            ppm,
            &dets,
            mask.as_ref(),
            skin.as_ref(),
            None,
            PlannerConfig::new(70.0, 0.7),
        )?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let recs: Vec<[f64; 2]> = ip.recommendations.iter().map(|r| [r.x, r.y]).collect();
        let s = score_plan(&judged, &recs, 70.0, 0.7);
        if s.short_cells > 0 {
            let g = &mut groups[skin_group(frame.truth.fitzpatrick)];
            g.0 += 1;
            g.1 += s.recommendations;
            g.2 += s.too_close_to_existing + s.too_close_to_recommendation;
            g.3 += usize::from(s.median_density_error <= 0.12);
            g.4 = g.4.max(s.median_density_error);
            if s.recommendations > 10 {
                g.5 = g.5.min(s.nn_cv);
            }
        }
        if std::env::var_os("DIAG").is_some() {
            diagnose(&frame.truth, &dets, &recs, 0.63 * ppm);
        }
        if let Some(dir) = std::env::var_os("SAVE") {
            frame
                .image
                .save(std::path::PathBuf::from(dir).join(format!("{seed}.png")))?;
        }
        let n_true = frame.truth.units.len() + frame.truth.pigment.len();
        println!(
            "seed {seed} px/mm {ppm:.1} fitz {} true {n_true} detected {} suspected {} recs {} \
             violations {:.4} (truth {} recs {}) density_err {:.3} (bias {:+.3}, {} cells) \
             nn_cv {:.3} before {:.1} after {:.1} /cm2 [{ms:.0} ms]",
            frame.truth.fitzpatrick,
            dets.len(),
            ip.suspected.len(),
            s.recommendations,
            s.violation_rate(),
            s.too_close_to_existing,
            s.too_close_to_recommendation,
            s.median_density_error,
            s.median_density_bias,
            s.short_cells,
            s.nn_cv,
            ip.plan.density_before_per_cm2,
            ip.plan.density_after_per_cm2,
        );
        recs_total += s.recommendations;
        bad_total += s.too_close_to_existing + s.too_close_to_recommendation;
        ok_density += usize::from(s.median_density_error <= 0.12);
        errors.push(s.median_density_error);
        if s.recommendations > 10 {
            cvs.push(s.nn_cv);
        }
    }
    errors.sort_by(f64::total_cmp);
    cvs.sort_by(f64::total_cmp);
    println!(
        "total: {count} frames, {recs_total} recommendations, violation rate {:.4}, \
         density error <= 12% on {ok_density}/{count} frames (median of medians {:.3}), \
         nn_cv min {:.3}",
        bad_total as f64 / recs_total.max(1) as f64,
        errors.get(errors.len() / 2).copied().unwrap_or(0.0),
        cvs.first().copied().unwrap_or(0.0),
    );
    for (g, name) in groups.iter().zip(SKIN_GROUPS) {
        println!(
            "{name:<6} thinning frames {:>2}  recommendations {:>5}  violation rate {:.4}  \
             density error <= 12% on {}/{} (worst {:.3})  nn_cv min {:.3}",
            g.0,
            g.1,
            g.2 as f64 / g.1.max(1) as f64,
            g.3,
            g.0,
            g.4,
            if g.5.is_finite() { g.5 } else { 0.0 },
        );
    }
    Ok(())
}

/// A perfect detector: the truth as detections.
fn oracle(truth: &stipple::source::synth::Truth) -> Vec<stipple::Detection> {
    use stipple::DotKind;
    truth
        .units
        .iter()
        .map(|u| (u.x, u.y, u.radius, DotKind::Follicle))
        .chain(
            truth
                .pigment
                .iter()
                .map(|p| (p.x, p.y, p.radius, DotKind::Pigment)),
        )
        .map(|(x, y, radius, kind)| stipple::Detection {
            x,
            y,
            radius,
            kind,
            score: 1.0,
            hairs: None,
        })
        .collect()
}

/// Prints, for each recommendation too close to a true dot, what that dot was.
fn diagnose(
    truth: &stipple::source::synth::Truth,
    dets: &[stipple::Detection],
    recs: &[[f64; 2]],
    limit_px: f64,
) {
    let nearest_det = |x: f64, y: f64| {
        dets.iter()
            .map(|q| (q.x - x).hypot(q.y - y))
            .fold(f64::INFINITY, f64::min)
    };
    for r in recs {
        for u in &truth.units {
            let d = (u.x - r[0]).hypot(u.y - r[1]);
            if d < limit_px {
                println!(
                    "  unit ({:.0},{:.0}) r {:.1} px, {} hairs, miniaturised {}: rec {d:.1} px away, \
                     nearest detection {:.1} px",
                    u.x,
                    u.y,
                    u.radius,
                    u.hairs.len(),
                    u.miniaturised,
                    nearest_det(u.x, u.y)
                );
            }
        }
        for p in &truth.pigment {
            let d = (p.x - r[0]).hypot(p.y - r[1]);
            if d < limit_px {
                println!(
                    "  pigment ({:.0},{:.0}) r {:.1} px, shade {:.2}: rec {d:.1} px away, \
                     nearest detection {:.1} px",
                    p.x,
                    p.y,
                    p.radius,
                    p.shade,
                    nearest_det(p.x, p.y)
                );
            }
        }
    }
}
