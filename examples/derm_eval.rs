//! Scores the dermoscope opening detector on frames written by `stipple synth --view
//! dermoscope`, with thresholds overridden from the command line, to fit them on training seeds.
//!
//! `cargo run --release --example derm_eval -- DIR [name=value ...] [-v]`, or
//! `... -- render DIR SEED COUNT [PX_PER_MM]` to write frames first. `DERM_DUMP=1` writes each
//! frame's detections beside it (`NNN.det`); `DERM_PPM=P` gives the detector another scale.
//!
//! `DERM_AUG=jpeg:Q|blur:SIGMA|gamma:G|cast:R:B|grey` degrades each frame first (a robustness check
//! for cameras the renderer does not imitate).
//!
//! `MODEL=1` fuses the bundled openings model as `stipple detect` does (`MODEL=FILE` another
//! model file); its thresholds are the names `peak_min`, `trees_min`, `confirm_min`,
//! `separation_mm` and `keep_score_min`
//! (`stipple::perception::OpeningsConfig`).
//!
//! Other names are the fields of `stipple::perception::dermoscope::shafts::ShaftParams`.

use std::time::Instant;

use stipple::eval::detect::{score_frame, Score};
use stipple::perception::dermoscope::shafts::{detect_openings_with, ShaftParams};
use stipple::perception::{OnnxSegmenter, OpeningsFuser, SegmentConfig};
use stipple::source::synth::Truth;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("render") {
        // `render DIR SEED COUNT [PX_PER_MM]`: writes NNN.png + NNN.json like `stipple synth`.
        let arg = |i: usize| {
            args.get(i).ok_or_else(|| {
                anyhow::anyhow!("usage: derm_eval render DIR SEED COUNT [PX_PER_MM]")
            })
        };
        let dir = std::path::PathBuf::from(arg(1)?);
        let seed: u64 = arg(2)?.parse()?;
        let count: u64 = arg(3)?.parse()?;
        let ppm: Option<f64> = args.get(4).map(|v| v.parse()).transpose()?;
        std::fs::create_dir_all(&dir)?;
        for k in 0..count {
            let mut params = stipple::source::synth::SceneParams::new(
                seed + k,
                stipple::source::synth::View::Dermoscope,
            );
            params.px_per_mm = ppm;
            let frame = stipple::source::synth::render(&params);
            frame.image.save(dir.join(format!("{k:03}.png")))?;
            std::fs::write(
                dir.join(format!("{k:03}.json")),
                serde_json::to_string(&frame.truth)?,
            )?;
        }
        return Ok(());
    }
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "/tmp/derm/train".into());
    let verbose = args.iter().any(|a| a == "-v");
    let mut p = ShaftParams::default();
    let mut fuser = OpeningsFuser::default();
    let mut model = match std::env::var("MODEL") {
        Ok(v) if v == "1" => Some(OnnxSegmenter::bundled_openings(&SegmentConfig::default())?),
        Ok(v) => Some(OnnxSegmenter::from_file(
            std::path::Path::new(&v),
            &SegmentConfig::default(),
        )?),
        Err(_) => None,
    };
    let mut fused = Vec::new();
    for a in args.iter().skip(1).filter(|a| a.contains('=')) {
        let (k, v) = a.split_once('=').unwrap_or_default();
        let v: f64 = v.parse()?;
        match k {
            "ridge_high" => p.ridge_high = v as f32,
            "ridge_low" => p.ridge_low = v as f32,
            "min_darkness" => p.min_darkness = v as f32,
            "min_length_mm" => p.min_length_mm = v,
            "faint_darkness" => p.faint_darkness = v as f32,
            "faint_min_length_mm" => p.faint_min_length_mm = v,
            "min_straightness" => p.min_straightness = v,
            "faint_min_straightness" => p.faint_min_straightness = v,
            "side_ratio" => p.side_ratio = v as f32,
            "min_line_share" => p.min_line_share = v,
            "max_covered" => p.max_covered = v,
            "fade_weight" => p.fade_weight = v,
            "width_weight" => p.width_weight = v,
            "halo_weight" => p.halo_weight = v,
            "exit_fraction" => p.exit_fraction = v,
            "leave_evidence" => p.leave_evidence = v,
            "continues_ratio" => p.continues_ratio = v,
            "vote_clamp" => p.vote_clamp = v,
            "consensus_radius_mm" => p.consensus_radius_mm = v,
            "consensus_weight" => p.consensus_weight = v,
            "unit_merge_mm" => p.unit_merge_mm = v,
            "pigment_darkness" => p.pigment_darkness = v as f32,
            "pigment_max_elongation" => p.pigment_max_elongation = v,
            "pigment_min_fill" => p.pigment_min_fill = v,
            "pigment_min_blueness" => p.pigment_min_blueness = v,
            "pit_min_probability" => p.pit_min_probability = v,
            "root_min_probability" => p.root_min_probability = v,
            "peak_min" => fuser.config.peak_min = v as f32,
            "confirm_min" => fuser.config.confirm_min = v as f32,
            "separation_mm" => fuser.config.separation_mm = v,
            "keep_score_min" => fuser.config.keep_score_min = v,
            "trees_min" => fuser.config.trees_min = v,
            _ => anyhow::bail!("unknown parameter {k}"),
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    files.sort();
    let mut total = Score::default();
    let mut elapsed = 0.0;
    for f in &files {
        let img = augment(image::open(f)?.to_rgb8())?;
        let truth: Truth =
            serde_json::from_str(&std::fs::read_to_string(f.with_extension("json"))?)?;
        let t = Instant::now();
        // `DERM_PPM` overrides the scale given to the detector (a mis-stated magnification).
        let ppm = std::env::var("DERM_PPM")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(truth.px_per_mm);
        let mut found = detect_openings_with(&img, ppm, &p);
        if let Some(model) = model.as_mut() {
            let mask = model.segment(&img, ppm)?;
            fuser.fuse_into(&found, mask, &img, ppm, &mut fused);
            std::mem::swap(&mut found, &mut fused);
        }
        elapsed += t.elapsed().as_secs_f64();
        let s = score_frame(&truth, &found);
        if std::env::var_os("DERM_DUMP").is_some() {
            std::fs::write(f.with_extension("det"), serde_json::to_string(&found)?)?;
        }
        if verbose {
            println!(
                "{} fitz {} true {} det {} matched {} F1 {:.3}",
                f.display(),
                truth.fitzpatrick,
                s.true_dots,
                s.detections,
                s.matched,
                s.f1()
            );
        }
        total.add(&s);
    }
    println!(
        "frames {} true {} det {} P {:.3} R {:.3} F1 {:.3} on-neg {:.3} | openings P {:.3} R {:.3} F1 {:.3} | {:.1} ms/frame",
        total.frames,
        total.true_dots,
        total.detections,
        total.precision(),
        total.recall(),
        total.f1(),
        total.negative_rate(),
        total.openings_precision(),
        total.openings_recall(),
        total.openings_f1(),
        1000.0 * elapsed / files.len().max(1) as f64
    );
    Ok(())
}

/// Applies the `DERM_AUG` degradation, if any.
fn augment(img: image::RgbImage) -> anyhow::Result<image::RgbImage> {
    let Ok(spec) = std::env::var("DERM_AUG") else {
        return Ok(img);
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let num = |i: usize| -> anyhow::Result<f32> {
        Ok(parts
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("{spec}: missing value"))?
            .parse()?)
    };
    Ok(match parts[0] {
        "jpeg" => {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, num(1)? as u8)
                .encode_image(&img)?;
            image::load_from_memory(&bytes)?.to_rgb8()
        }
        "blur" => image::imageops::blur(&img, num(1)?),
        "gamma" => {
            let g = num(1)?;
            let mut out = img;
            for v in out.iter_mut() {
                *v = (255.0 * (f32::from(*v) / 255.0).powf(g)).round() as u8;
            }
            out
        }
        "cast" => {
            let (r, b) = (num(1)?, num(2)?);
            let mut out = img;
            for px in out.pixels_mut() {
                px[0] = (f32::from(px[0]) * r).min(255.0) as u8;
                px[2] = (f32::from(px[2]) * b).min(255.0) as u8;
            }
            out
        }
        // A greyscale or infrared camera: every channel the luma.
        "grey" => {
            let mut out = img;
            stipple::perception::filter::grey_in_place(&mut out);
            out
        }
        other => anyhow::bail!("unknown DERM_AUG {other}"),
    })
}
