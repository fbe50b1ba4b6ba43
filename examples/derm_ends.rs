//! Writes every traced shaft end of rendered dermoscope frames as CSV, labelled against the
//! renderer's truth, to fit and check the root classifier of `stipple::perception::shafts`.
//!
//! `cargo run --release --example derm_ends -- DIR > ends.csv` on frames written by
//! `cargo run --release --example derm_eval -- render DIR SEED COUNT`. Columns: frame, shaft,
//! end, x, y, the features ([`feature_names`]), then `dist_px` (to the nearest true opening or
//! hair exit), `tol_px` (the scorer's match distance for that unit) and `root` (1 when within).

use stipple::perception::dermoscope::shafts::{end_records, feature_names, ShaftParams};
use stipple::source::synth::Truth;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: derm_ends DIR"))?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    println!(
        "frame,shaft,end,x,y,{},dist_px,tol_px,root",
        feature_names().join(",")
    );
    let params = ShaftParams::default();
    for f in &files {
        let img = image::open(f)?.to_rgb8();
        let truth: Truth =
            serde_json::from_str(&std::fs::read_to_string(f.with_extension("json"))?)?;
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        for (k, ends) in end_records(&img, truth.px_per_mm, &params)
            .iter()
            .enumerate()
        {
            for (e, r) in ends.iter().enumerate() {
                // Nearest unit by its opening or any hair's exit, with the scorer's tolerance.
                let (mut best, mut tol) = (f64::INFINITY, 2.0);
                for u in &truth.units {
                    let d = std::iter::once((u.x, u.y))
                        .chain(u.hairs.iter().map(|h| (h.x, h.y)))
                        .map(|(x, y)| (x - r.x).hypot(y - r.y))
                        .fold(f64::INFINITY, f64::min);
                    if d < best {
                        best = d;
                        tol = (u.radius + 1.0).max(2.0);
                    }
                }
                let feats: Vec<String> = r.features.iter().map(|v| format!("{v:.5}")).collect();
                println!(
                    "{name},{k},{e},{:.1},{:.1},{},{best:.1},{tol:.1},{}",
                    r.x,
                    r.y,
                    feats.join(","),
                    u8::from(best <= tol)
                );
            }
        }
    }
    Ok(())
}
