//! Detection on rendered rig frames by Fitzpatrick group, scored on the dots the frame shows
//! (`stipple::eval::visible`): what the detection tables report, in process, for iterating on
//! the detector.
//!
//! `cargo run --release --example skin_eval -- [FIRST_SEED] [COUNT]` (defaults 9000 12).
//! `COLOURS=alternate` renders with the held-out ink and hair model; `MODEL=1` runs the fused
//! detector with the bundled model (what `stipple detect` does by default), `MODEL=FILE` with
//! another dot model, otherwise the classical one; `ALL_DOTS=1` scores every drawn dot; `QUIET=1` leaves out per-frame lines;
//! `GREY=1` turns each frame grey (every channel its luma) before it is detected and scored.

use stipple::eval::{score_frame, score_frame_visible, skin_group, Score, SKIN_GROUPS};
use stipple::perception::Detector;
use stipple::source::synth::{render_with, ColourModel, SceneParams, View};

fn line(name: &str, s: &Score) -> String {
    format!(
        "{name:<8} frames {:>3}  dots {:>5}  P {:.3}  R {:.3}  F1 {:.3}  kind {:.3}  density {:+.1}%",
        s.frames,
        s.true_dots,
        s.precision(),
        s.recall(),
        s.f1(),
        s.kind_accuracy(),
        100.0 * s.density_error()
    )
}

/// Which visible dots were missed: units (full or miniaturised) and pigment, with their ΔE.
fn diagnose(
    image: &image::RgbImage,
    truth: &stipple::source::synth::Truth,
    found: &[stipple::Detection],
) {
    let vis = stipple::eval::Visibility::measure(image, truth);
    let pairs = stipple::eval::detect::pairs(truth, found);
    let mut hit = vec![false; truth.units.len() + truth.pigment.len()];
    for (_, t) in &pairs {
        hit[*t] = true;
    }
    let mut wrong = [0usize; 2];
    for (d, t) in &pairs {
        let want = if *t < truth.units.len() {
            stipple::DotKind::Follicle
        } else {
            stipple::DotKind::Pigment
        };
        if found[*d].kind != want {
            wrong[usize::from(*t >= truth.units.len())] += 1;
        }
    }
    let (mut mu, mut mm, mut mp) = (Vec::new(), Vec::new(), Vec::new());
    for (i, u) in truth.units.iter().enumerate() {
        if !hit[i] && vis.units[i] >= vis.threshold {
            if u.miniaturised {
                mm.push(vis.units[i])
            } else {
                mu.push(vis.units[i])
            }
        }
    }
    for (i, _) in truth.pigment.iter().enumerate() {
        let k = truth.units.len() + i;
        if !hit[k] && vis.pigment[i] >= vis.threshold {
            mp.push(vis.pigment[i]);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "   noise {:.2} thr {:.2} | missed units {} (dE {:.1}) mini {} (dE {:.1}) pigment {} (dE {:.1}) | follicles called pigment {} pigment called follicle {}",
        vis.noise_sigma,
        vis.threshold,
        mu.len(),
        med(&mut mu),
        mm.len(),
        med(&mut mm),
        mp.len(),
        med(&mut mp),
        wrong[0],
        wrong[1]
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).map_or(Ok(9000), |s| s.parse())?;
    let count: u64 = args.get(2).map_or(Ok(12), |s| s.parse())?;
    let model = match std::env::var("COLOURS").as_deref() {
        Ok("alternate") => ColourModel::Alternate,
        _ => ColourModel::Standard,
    };
    let seg_cfg = stipple::perception::SegmentConfig::default();
    let mut segmenter = match std::env::var("MODEL") {
        Ok(m) if m == "1" => Some(stipple::perception::Segmenter::Onnx(Box::new(
            stipple::perception::OnnxSegmenter::bundled(&seg_cfg)?,
        ))),
        Ok(file) => Some(stipple::perception::Segmenter::Onnx(Box::new(
            stipple::perception::OnnxSegmenter::from_file(std::path::Path::new(&file), &seg_cfg)?,
        ))),
        Err(_) => None,
    };
    let quiet = std::env::var_os("QUIET").is_some();
    let grey = std::env::var_os("GREY").is_some();
    let mut total = Score::default();
    let mut groups: [Score; 3] = Default::default();
    for seed in first..first + count {
        let mut frame = render_with(&SceneParams::new(seed, View::Rig), model);
        if grey {
            stipple::perception::filter::grey_in_place(&mut frame.image);
        }
        let ppm = frame.truth.px_per_mm;
        let mut found = Vec::new();
        if let Some(seg) = segmenter.take() {
            let mut det = Detector::fused(ppm, seg, Default::default())?;
            // The skin mask fuses the bundled skin model, as `stipple detect` does.
            det.use_bundled_skin_model()?;
            det.detect_into(&frame.image, &mut found)?;
            segmenter = det.into_segmenter();
        } else {
            Detector::classical(ppm).detect_classical_into(&frame.image, &mut found);
        }
        let s = if std::env::var_os("ALL_DOTS").is_some() {
            score_frame(&frame.truth, &found)
        } else {
            score_frame_visible(&frame.image, &frame.truth, &found)
        };
        if !quiet {
            let drawn = frame.truth.units.len() + frame.truth.pigment.len();
            println!(
                "seed {seed} fitz {} ppm {ppm:.1} pigment {} drawn {drawn} | {}",
                frame.truth.fitzpatrick,
                frame.truth.pigment.len(),
                line("", &s)
            );
        }
        if std::env::var_os("DIAG").is_some() {
            diagnose(&frame.image, &frame.truth, &found);
        }
        total.add(&s);
        groups[skin_group(frame.truth.fitzpatrick)].add(&s);
    }
    println!("{}", line("all", &total));
    for (g, name) in groups.iter().zip(SKIN_GROUPS) {
        println!("{}", line(name, g));
    }
    Ok(())
}
