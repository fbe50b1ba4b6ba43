//! Writes every candidate opening (peak of the openings model) of dermoscope photographs as
//! CSV, with the features the opening trees read, to fit them
//! (`models/train/fit_openings_fdu.py`, which labels the rows against the annotations).
//!
//! `cargo run --release --example derm_peaks -- PX_PER_MM IMAGE... > peaks.csv`. Columns:
//! image (file stem), x, y (image pixels), the features
//! (`stipple::perception::dermoscope::openings::PEAK_FEATURES`), and the bundled trees'
//! probability.

use anyhow::Context;
use stipple::perception::dermoscope::openings::{OpeningsFuser, PEAK_FEATURES};
use stipple::perception::dermoscope::shafts::detect_openings;
use stipple::perception::segment::{OnnxSegmenter, SegmentConfig};
use stipple::perception::trees::Ensemble;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ppm, images) = args
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("usage: derm_peaks PX_PER_MM IMAGE..."))?;
    let px_per_mm: f64 = ppm
        .parse()
        .with_context(|| format!("PX_PER_MM {ppm:?} is not a number"))?;
    let mut model = OnnxSegmenter::bundled_openings(&SegmentConfig::default())?;
    let mut fuser = OpeningsFuser::default();
    let trees: Ensemble = stipple::perception::dermoscope::generated::openings_model::OPENING_MODEL;
    println!("image,x,y,{},probability", PEAK_FEATURES.join(","));
    for path in images {
        let img = image::open(path)
            .with_context(|| format!("cannot read {path}"))?
            .to_rgb8();
        let name = std::path::Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?");
        let classical = detect_openings(&img, px_per_mm);
        let mask = model.segment(&img, px_per_mm)?;
        for (p, f) in fuser.candidates(&classical, mask, &img, px_per_mm) {
            let feats: Vec<String> = f.iter().map(|v| format!("{v:.6}")).collect();
            println!(
                "{name},{:.2},{:.2},{},{:.5}",
                p.x,
                p.y,
                feats.join(","),
                trees.probability(&f)
            );
        }
    }
    Ok(())
}
