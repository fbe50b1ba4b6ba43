//! Sanity check of the rig oracle: a naive dark-spot detector scored against the truth.
//!
//! `cargo run --release --example synth_f1 -- FIRST_SEED COUNT`

use stipple::source::synth::{render, SceneParams, View};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let first: u64 = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let count: u64 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (mut tp_all, mut fp_all, mut fn_all) = (0usize, 0usize, 0usize);
    for seed in first..first + count {
        let f = render(&SceneParams::new(seed, View::Rig));
        let (w, h) = (f.image.width() as usize, f.image.height() as usize);
        let ppm = f.truth.px_per_mm;
        let lum: Vec<f32> = f
            .image
            .pixels()
            .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
            .collect();
        // Background: a wide box mean (integral image).
        let r_bg = (0.5 * ppm).round() as usize;
        let mut ii = vec![0f64; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0f64;
            for x in 0..w {
                row += lum[y * w + x] as f64;
                ii[(y + 1) * (w + 1) + x + 1] = ii[y * (w + 1) + x + 1] + row;
            }
        }
        let mean = |x: usize, y: usize, r: usize| {
            let (x0, y0, x1, y1) = (
                x.saturating_sub(r),
                y.saturating_sub(r),
                (x + r + 1).min(w),
                (y + r + 1).min(h),
            );
            let s = ii[y1 * (w + 1) + x1] - ii[y0 * (w + 1) + x1] - ii[y1 * (w + 1) + x0]
                + ii[y0 * (w + 1) + x0];
            s / ((x1 - x0) * (y1 - y0)) as f64
        };
        let small = |x: usize, y: usize| mean(x, y, 1);
        let mut cands = Vec::new();
        for y in 2..h - 2 {
            for x in 2..w - 2 {
                let c = small(x, y);
                let bg = mean(x, y, r_bg);
                let contrast = (bg - c) / bg;
                if contrast < 0.06 {
                    continue;
                }
                let mut is_min = true;
                'n: for dy in -2i64..=2 {
                    for dx in -2i64..=2 {
                        if (dx, dy) != (0, 0)
                            && small((x as i64 + dx) as usize, (y as i64 + dy) as usize) < c
                        {
                            is_min = false;
                            break 'n;
                        }
                    }
                }
                if is_min {
                    cands.push((x as f64 + 0.5, y as f64 + 0.5, contrast));
                }
            }
        }
        cands.sort_by(|a, b| b.2.total_cmp(&a.2));
        let nms = 0.22 * ppm;
        let mut dets: Vec<(f64, f64)> = Vec::new();
        for (x, y, _) in cands {
            if dets.iter().all(|d| (d.0 - x).hypot(d.1 - y) > nms) {
                dets.push((x, y));
            }
        }
        let mut truth: Vec<(f64, f64, f64)> = f
            .truth
            .units
            .iter()
            .map(|u| (u.x, u.y, u.radius + 0.15 * ppm))
            .collect();
        truth.extend(
            f.truth
                .pigment
                .iter()
                .map(|p| (p.x, p.y, p.radius + 0.1 * ppm)),
        );
        let mut used = vec![false; truth.len()];
        let (mut tp, mut fp) = (0, 0);
        for d in &dets {
            let best = truth
                .iter()
                .enumerate()
                .filter(|(i, t)| !used[*i] && (t.0 - d.0).hypot(t.1 - d.1) <= t.2)
                .min_by(|a, b| {
                    (a.1 .0 - d.0)
                        .hypot(a.1 .1 - d.1)
                        .total_cmp(&(b.1 .0 - d.0).hypot(b.1 .1 - d.1))
                });
            match best {
                Some((i, _)) => {
                    used[i] = true;
                    tp += 1;
                }
                None => fp += 1,
            }
        }
        let fneg = truth.len() - tp;
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + fneg) as f64;
        eprintln!("seed {seed} ppm {ppm:.1} fitz {} truth {} dets {} tp {tp} fp {fp} fn {fneg} F1 {f1:.3}", f.truth.fitzpatrick, truth.len(), dets.len());
        tp_all += tp;
        fp_all += fp;
        fn_all += fneg;
    }
    let f1 = 2.0 * tp_all as f64 / (2 * tp_all + fp_all + fn_all) as f64;
    eprintln!("overall F1 {f1:.3} (tp {tp_all} fp {fp_all} fn {fn_all})");
    Ok(())
}
