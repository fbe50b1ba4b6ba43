//! Evaluates `stipple plan` on rendered rig frames against the renderer's truth.
//!
//! `cargo run --example plan_eval -- [FIRST_SEED] [N]`

use stipple::planning::{plan_image, score_plan, PlannerConfig};
use stipple::source::synth::{render, SceneParams, View};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let first: u64 = args.get(1).map_or(Ok(9000), |s| s.parse())?;
    let n: u64 = args.get(2).map_or(Ok(6), |s| s.parse())?;
    for seed in first..first + n {
        let frame = render(&SceneParams::new(seed, View::Rig));
        let ppm = frame.truth.px_per_mm;
        let dets = stipple::perception::detect(&frame.image, ppm)?;
        let t0 = std::time::Instant::now();
        let ip = plan_image(
            &frame.image,
            ppm,
            &dets,
            None,
            PlannerConfig::new(70.0, 0.7),
        )?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let recs: Vec<[f64; 2]> = ip.recommendations.iter().map(|r| [r.x, r.y]).collect();
        let s = score_plan(&frame.truth, &recs, 70.0, 0.7);
        if std::env::var_os("DIAG").is_some() {
            diagnose(&frame.truth, &dets, &recs, 0.63 * ppm);
            eprintln!("  dark threshold {:.3}", ip.dark_threshold);
            if let Some(g) = ip.planner.guard() {
                for r in &recs {
                    for u in frame.truth.units.iter() {
                        if (u.x - r[0]).hypot(u.y - r[1]) < 0.63 * ppm {
                            eprintln!(
                                "   viol: cost at rec {:.2}, at unit {:.2}",
                                g.cost(r[0] / ppm, r[1] / ppm),
                                g.cost(u.x / ppm, u.y / ppm)
                            );
                        }
                    }
                }
                let mut all: Vec<f64> = recs
                    .iter()
                    .map(|r| g.cost(r[0] / ppm, r[1] / ppm))
                    .collect();
                all.sort_by(f64::total_cmp);
                let q = |f: f64| all[((all.len() - 1) as f64 * f) as usize];
                eprintln!(
                    "   rec cost quantiles 10/50/90/99: {:.2} {:.2} {:.2} {:.2}",
                    q(0.1),
                    q(0.5),
                    q(0.9),
                    q(0.99)
                );
            }
            let luma = |x: i64, y: i64| -> f64 {
                let p = frame
                    .image
                    .get_pixel(x.clamp(0, 1279) as u32, y.clamp(0, 719) as u32);
                0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
            };
            for u in frame.truth.units.iter().filter(|u| u.miniaturised).take(12) {
                let (cx, cy) = (u.x as i64, u.y as i64);
                let mut c = 0.0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        c += luma(cx + dx, cy + dy) / 9.0;
                    }
                }
                let mut ring: Vec<f64> = Vec::new();
                for dy in -8..=8 {
                    for dx in -8..=8 {
                        if dx * dx + dy * dy > 25 {
                            ring.push(luma(cx + dx, cy + dy));
                        }
                    }
                }
                ring.sort_by(f64::total_cmp);
                let skin = ring[ring.len() * 7 / 10];
                let h = &u.hairs[0];
                eprintln!("  mini unit ({cx},{cy}) r {:.1} len {:.1} centre {c:.1} skin {skin:.1} dark {:.3}", h.radius, h.length_px, (skin - c) / skin);
            }
        }
        if std::env::var_os("DETQ").is_some() {
            let mut bins = [[0usize; 2]; 10];
            for (di, d) in dets.iter().enumerate() {
                let tp = frame
                    .truth
                    .units
                    .iter()
                    .any(|u| (u.x - d.x).hypot(u.y - d.y) < 0.15 * ppm)
                    || frame
                        .truth
                        .pigment
                        .iter()
                        .any(|p| (p.x - d.x).hypot(p.y - d.y) < 0.15 * ppm);
                let _ = d;
                let b = (ip.evidence[di] / 1.0).clamp(0.0, 9.0) as usize;
                bins[b][usize::from(tp)] += 1;
            }
            for (i, b) in bins.iter().enumerate() {
                eprintln!("  evidence {i}-: false {} true {}", b[0], b[1]);
            }
        }
        if std::env::var_os("CONTRAST").is_some() {
            let img = &frame.image;
            let stat = |x: f64, y: f64| -> [f64; 3] {
                let (cx, cy) = (x as i64, y as i64);
                let mut c = [0.0; 3];
                let mut r = [0.0; 3];
                let (mut nc, mut nr) = (0.0, 0.0);
                for dy in -7i64..=7 {
                    for dx in -7i64..=7 {
                        let (px, py) = (cx + dx, cy + dy);
                        if px < 0 || py < 0 || px >= 1280 || py >= 720 {
                            continue;
                        }
                        let p = img.get_pixel(px as u32, py as u32);
                        let d2 = dx * dx + dy * dy;
                        if d2 <= 2 {
                            for k in 0..3 {
                                c[k] += p[k] as f64;
                            }
                            nc += 1.0;
                        } else if d2 >= 16 && d2 <= 49 {
                            for k in 0..3 {
                                r[k] += p[k] as f64;
                            }
                            nr += 1.0;
                        }
                    }
                }
                [0, 1, 2].map(|k| (r[k] / nr - c[k] / nc) / (r[k] / nr).max(1.0))
            };
            let summarize = |name: &str, v: &[[f64; 3]]| {
                for k in 0..3 {
                    let m = v.iter().map(|a| a[k]).sum::<f64>() / v.len() as f64;
                    let sd =
                        (v.iter().map(|a| (a[k] - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                    eprint!("{name} ch{k} mean {m:.3} sd {sd:.3}; ");
                }
                eprintln!("n {}", v.len());
            };
            let minis: Vec<[f64; 3]> = frame
                .truth
                .units
                .iter()
                .filter(|u| u.miniaturised)
                .map(|u| stat(u.x, u.y))
                .collect();
            let fulls: Vec<[f64; 3]> = frame
                .truth
                .units
                .iter()
                .filter(|u| !u.miniaturised)
                .map(|u| stat(u.x, u.y))
                .collect();
            summarize("full", &fulls);
            let pigs: Vec<[f64; 3]> = frame.truth.pigment.iter().map(|u| stat(u.x, u.y)).collect();
            if !pigs.is_empty() {
                summarize("pig", &pigs);
            }
            let mut rng = 12345u64;
            let mut rnd = || {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 33) as f64 / (1u64 << 31) as f64
            };
            let randoms: Vec<[f64; 3]> = (0..2000)
                .map(|_| stat(20.0 + rnd() * 1240.0, 20.0 + rnd() * 680.0))
                .collect();
            summarize("mini", &minis);
            summarize("rand", &randoms);
            let nmini = frame.truth.units.iter().filter(|u| u.miniaturised).count();
            let det_mini = frame
                .truth
                .units
                .iter()
                .filter(|u| {
                    u.miniaturised
                        && dets
                            .iter()
                            .any(|d| (d.x - u.x).hypot(d.y - u.y) < 0.15 * ppm)
                })
                .count();
            eprintln!("mini {nmini} detected {det_mini}");
        }
        if let Ok(c) = std::env::var("CROP") {
            let v: Vec<u32> = c.split(',').filter_map(|t| t.parse().ok()).collect();
            let crop =
                image::imageops::crop_imm(&frame.image, v[0] - 40, v[1] - 40, 80, 80).to_image();
            let mut big =
                image::imageops::resize(&crop, 320, 320, image::imageops::FilterType::Nearest);
            for r in &recs {
                let (x, y) = (
                    (r[0] - (v[0] - 40) as f64) * 4.0,
                    (r[1] - (v[1] - 40) as f64) * 4.0,
                );
                if x > 2.0 && y > 2.0 && x < 318.0 && y < 318.0 {
                    imageproc::drawing::draw_hollow_circle_mut(
                        &mut big,
                        (x as i32, y as i32),
                        4,
                        image::Rgb([0, 255, 0]),
                    );
                }
            }
            for d in &dets {
                let (x, y) = (
                    (d.x - (v[0] - 40) as f64) * 4.0,
                    (d.y - (v[1] - 40) as f64) * 4.0,
                );
                if x > 2.0 && y > 2.0 && x < 318.0 && y < 318.0 {
                    imageproc::drawing::draw_hollow_circle_mut(
                        &mut big,
                        (x as i32, y as i32),
                        (d.radius * 4.0) as i32 + 3,
                        image::Rgb([0, 0, 255]),
                    );
                }
            }
            big.save("/tmp/pe/crop.png")?;
        }
        if let Some(dir) = std::env::var_os("SAVE") {
            let dir = std::path::PathBuf::from(dir);
            frame.image.save(dir.join(format!("{seed}.png")))?;
        }
        let n_true = frame.truth.units.len() + frame.truth.pigment.len();
        eprintln!(
            "seed {seed} ppm {ppm:.1} fitz {} true {n_true} det {} susp {} guard {:.2} recs {} \
             viol {:.4} (ex {} rec {}) dens_err {:.3} bias {:+.3} over {} cells cv {:.3} before {:.1} after {:.1} [{ms:.0} ms]",
            frame.truth.fitzpatrick,
            dets.len(),
            ip.suspected.len(),
            ip.guarded_fraction,
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
    }
    Ok(())
}

/// Prints, for each recommendation too close to a true dot, what that dot was.
#[allow(dead_code)]
pub fn diagnose(
    truth: &stipple::source::synth::Truth,
    dets: &[stipple::Detection],
    recs: &[[f64; 2]],
    limit_px: f64,
) {
    for r in recs {
        for u in &truth.units {
            let d = (u.x - r[0]).hypot(u.y - r[1]);
            if d < limit_px {
                let nd = dets
                    .iter()
                    .map(|q| (q.x - u.x).hypot(q.y - u.y))
                    .fold(f64::INFINITY, f64::min);
                eprintln!(
                    "  unit at ({:.0},{:.0}) r {:.1} hairs {} mini {} rec dist {:.2} px, nearest det {:.1} px",
                    u.x, u.y, u.radius, u.hairs.len(), u.miniaturised, d, nd
                );
            }
        }
        for p in &truth.pigment {
            let d = (p.x - r[0]).hypot(p.y - r[1]);
            if d < limit_px {
                let nd = dets
                    .iter()
                    .map(|q| (q.x - p.x).hypot(q.y - p.y))
                    .fold(f64::INFINITY, f64::min);
                eprintln!(
                    "  pigment at ({:.0},{:.0}) r {:.1} shade {:.2} rec dist {:.2}, nearest det {:.1} px",
                    p.x, p.y, p.radius, p.shade, d, nd
                );
            }
        }
    }
}
