//! Diagnostics: dumps every candidate region's features with the true kind of the dot it
//! matches (or "none"/negative kind) as CSV, for studying the detector's rules on
//! training seeds.
//!
//! `cargo run --release --example features -- DIR > features.csv` (DIR from `stipple synth`).
//! The columns after `dist` are the kind trees' features (`kinds::tree_features`, empty for a
//! rejected region), written at full precision: `models/train/fit_kinds.py` fits on them.

use std::io::Write;

use stipple::perception::rig::kinds;
use stipple::perception::{BlobConfig, BlobDetector};
use stipple::source::synth::Truth;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: features DIR"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "frame,ppm,fitz,x,y,peak,radius_mm,elong,length_mm,trunc,tint,rel_luma,chroma_rb,chroma_gb,dl,da,db,kind,truth,dist,{}",
        kinds::tree_feature_names().join(",")
    )?;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
    {
        let truth: Truth =
            serde_json::from_str(&std::fs::read_to_string(p.with_extension("json"))?)?;
        let img = stipple::source::file::load_rgb(p)?;
        let ppm = truth.px_per_mm;
        let mut det = BlobDetector::new(BlobConfig { px_per_mm: ppm });
        let candidates = det.candidates(&img);
        let trees = kinds::tree_features(&candidates, ppm);
        for ((r, kind), tree) in candidates.iter().zip(&trees) {
            let mut best = ("none".to_string(), f64::INFINITY);
            for u in &truth.units {
                for (x, y) in std::iter::once((u.x, u.y)).chain(u.hairs.iter().map(|h| (h.x, h.y)))
                {
                    let d = (x - r.x).hypot(y - r.y);
                    if d < best.1 && d <= (u.radius + 1.0).max(2.0) {
                        best = (if u.miniaturised { "mini" } else { "follicle" }.into(), d);
                    }
                }
            }
            for g in &truth.pigment {
                let d = (g.x - r.x).hypot(g.y - r.y);
                if d < best.1 && d <= (g.radius + 1.0).max(2.0) {
                    best = ("pigment".into(), d);
                }
            }
            if best.0 == "none" {
                if let Some(n) = truth.negatives.iter().find(|n| n.shape.contains(r.x, r.y)) {
                    best = (format!("{:?}", n.kind), 0.0);
                }
            }
            writeln!(
                out,
                "{},{ppm:.2},{},{:.1},{:.1},{:.3},{:.3},{:.2},{:.3},{},{:.3},{:.3},{:.3},{:.3},{:.2},{:.2},{:.2},{},{},{:.2},{}",
                p.display(),
                truth.fitzpatrick,
                r.x,
                r.y,
                r.peak,
                r.radius_px / ppm,
                r.elongation,
                r.length_px / ppm,
                u8::from(r.truncated),
                r.tint,
                r.rel_luma,
                r.chroma_rb,
                r.chroma_gb,
                r.delta_lab[0],
                r.delta_lab[1],
                r.delta_lab[2],
                kind.map_or("reject", |k| k.as_str()),
                best.0,
                best.1,
                tree.map_or_else(
                    || vec![String::new(); kinds::TREE_DIM].join(","),
                    |t| t.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
                )
            )?;
        }
    }
    Ok(())
}
