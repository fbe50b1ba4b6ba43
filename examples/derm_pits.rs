//! Writes every pit candidate of rendered dermoscope frames as CSV, labelled against the
//! renderer's truth, to fit and check the pit classifier (`models/train/fit_pits.py`).
//!
//! `cargo run --release --example derm_pits -- DIR > pits.csv` on frames written by
//! `cargo run --release --example derm_eval -- render DIR SEED COUNT`. Columns: frame, x, y,
//! the features (`stipple::perception::dermoscope::pits::FEATURES`), the current model's probability,
//! then `unit` (1 within the scorer's match distance of any unit's opening) and `mini` (of a
//! miniaturised unit's).

use stipple::perception::dermoscope::pits::{pit_candidates, FEATURES};
use stipple::source::synth::Truth;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: derm_pits DIR"))?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    println!("frame,x,y,{},probability,unit,mini", FEATURES.join(","));
    for f in &files {
        let img = image::open(f)?.to_rgb8();
        let truth: Truth =
            serde_json::from_str(&std::fs::read_to_string(f.with_extension("json"))?)?;
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        for c in pit_candidates(&img, truth.px_per_mm) {
            let (mut unit, mut mini) = (false, false);
            for u in &truth.units {
                let tol = (u.radius + 1.0).max(2.0);
                if (u.x - c.x).hypot(u.y - c.y) <= tol {
                    unit = true;
                    mini |= u.miniaturised;
                }
            }
            let feats: Vec<String> = c.features.iter().map(|v| format!("{v:.6}")).collect();
            println!(
                "{name},{:.1},{:.1},{},{:.4},{},{}",
                c.x,
                c.y,
                feats.join(","),
                c.probability,
                u8::from(unit),
                u8::from(mini)
            );
        }
    }
    Ok(())
}
