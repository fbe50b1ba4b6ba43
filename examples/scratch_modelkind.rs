// Scratch: the dot model's own kind at each visible true dot, by skin group. Not committed.
use stipple::eval::{skin_group, Visibility};
use stipple::perception::rig::fuse::model_kind_at;
use stipple::perception::{OnnxSegmenter, SegmentConfig};
use stipple::source::synth::{render_with, ColourModel, SceneParams, View};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let first: u64 = a[1].parse()?;
    let count: u64 = a[2].parse()?;
    let model = if std::env::var("COLOURS").as_deref() == Ok("alternate") {
        ColourModel::Alternate
    } else {
        ColourModel::Standard
    };
    let cfg = SegmentConfig::default();
    let mut seg = match std::env::var("MODEL") {
        Ok(f) if f != "1" => OnnxSegmenter::from_file(std::path::Path::new(&f), &cfg)?,
        _ => OnnxSegmenter::bundled(&cfg)?,
    };
    // per group: [right, total, missed(p_dot<0.5)] for follicle and pigment separately
    let mut g = [[[0usize; 3]; 2]; 3];
    for seed in first..first + count {
        let frame = render_with(&SceneParams::new(seed, View::Rig), model);
        let ppm = frame.truth.px_per_mm;
        let vis = Visibility::measure(&frame.image, &frame.truth).visible_truth(&frame.truth);
        let mask = seg.segment(&frame.image, ppm)?;
        let gi = skin_group(frame.truth.fitzpatrick);
        for u in &vis.units {
            let (pd, share) = model_kind_at(mask, u.x, u.y, u.radius);
            let e = &mut g[gi][0];
            e[1] += 1;
            if share < 0.5 {
                e[0] += 1;
            }
            if pd < 0.5 {
                e[2] += 1;
            }
        }
        for p in &vis.pigment {
            let (pd, share) = model_kind_at(mask, p.x, p.y, p.radius);
            let e = &mut g[gi][1];
            e[1] += 1;
            if share >= 0.5 {
                e[0] += 1;
            }
            if pd < 0.5 {
                e[2] += 1;
            }
        }
    }
    for (gi, name) in ["I-II", "III-IV", "V-VI"].iter().enumerate() {
        let [f, p] = g[gi];
        let acc = (f[0] + p[0]) as f64 / (f[1] + p[1]).max(1) as f64;
        println!(
            "{name:<7} kind {acc:.3}  follicle {:.3} ({}), pigment {:.3} ({}), p_dot<0.5 {:.3}",
            f[0] as f64 / f[1].max(1) as f64,
            f[1],
            p[0] as f64 / p[1].max(1) as f64,
            p[1],
            (f[2] + p[2]) as f64 / (f[1] + p[1]).max(1) as f64
        );
    }
    Ok(())
}
