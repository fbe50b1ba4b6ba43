use stipple::perception::{Detector, FuseConfig, OnnxSegmenter, SegmentConfig, Segmenter};
use stipple::source::synth::{ChairKind, Pose, Scene, SceneParams, View};
fn main() -> anyhow::Result<()> {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let mut tot = [0usize; 8];
    for seed in a[0]..a[0] + a[1] {
        let mut scene = Scene::generate(&SceneParams::new(seed, View::Rig));
        let ppm = scene.px_per_mm();
        scene.set_chair(Some(ChairKind::Working), true);
        let f = scene.render(&Pose::default(), seed);
        let seg = OnnxSegmenter::bundled_for(ppm, &SegmentConfig::default())?;
        let mut det = Detector::fused(ppm, Segmenter::Onnx(Box::new(seg)), FuseConfig::default())?;
        let dets = det.detect(&f.image)?;
        let sm = det.skin_mask().unwrap().clone();
        let mut masked = 0;
        let mut masked_d = [0usize; 4];
        let m = f.truth.not_skin.as_ref().unwrap().to_mask();
        let (w, h) = m.dimensions();
        // distance (px) to nearest not-skin pixel within 3 mm
        let reach = (3.0 * ppm) as i64;
        let dist = |x: f64, y: f64| -> f64 {
            let (cx, cy) = (x as i64, y as i64);
            let mut best = f64::INFINITY;
            for dy in (-reach..=reach).step_by(2) {
                for dx in (-reach..=reach).step_by(2) {
                    let (px, py) = (cx + dx, cy + dy);
                    if px < 0 || py < 0 || px >= w as i64 || py >= h as i64 {
                        continue;
                    }
                    if m.get_pixel(px as u32, py as u32)[0] != 0 {
                        best = best.min(((dx * dx + dy * dy) as f64).sqrt());
                    }
                }
            }
            best / ppm
        };
        let truth: Vec<(f64, f64, f64)> = f
            .truth
            .units
            .iter()
            .map(|u| (u.x, u.y, u.radius))
            .chain(f.truth.pigment.iter().map(|p| (p.x, p.y, p.radius)))
            .collect();
        let mut used = vec![false; dets.len()];
        let mut miss_near = 0;
        let mut miss_far = 0;
        for t in &truth {
            let lim = (t.2 + 1.0).max(2.0);
            let best = dets
                .iter()
                .enumerate()
                .filter(|(i, d)| !used[*i] && (d.x - t.0).hypot(d.y - t.1) <= lim)
                .min_by(|a, b| {
                    (a.1.x - t.0)
                        .hypot(a.1.y - t.1)
                        .total_cmp(&(b.1.x - t.0).hypot(b.1.y - t.1))
                });
            match best {
                Some((i, _)) => used[i] = true,
                None => {
                    if !sm.is_skin(t.0, t.1) {
                        masked += 1;
                        let dd = dist(t.0, t.1);
                        masked_d[if dd < 0.25 {
                            0
                        } else if dd < 0.5 {
                            1
                        } else if dd < 1.0 {
                            2
                        } else {
                            3
                        }] += 1;
                    }
                    if dist(t.0, t.1) < 1.5 {
                        miss_near += 1
                    } else {
                        miss_far += 1
                    }
                }
            }
        }
        let mut fp_on = 0;
        let mut fp_near = 0;
        let mut fp_far = 0;
        for (i, d) in dets.iter().enumerate() {
            if used[i] {
                continue;
            }
            let dd = dist(d.x, d.y);
            if dd == 0.0 {
                fp_on += 1
            } else if dd < 1.5 {
                fp_near += 1
            } else {
                fp_far += 1
            }
        }
        println!("  masked {masked} by dist <.25 <.5 <1 more {:?}", masked_d);
        println!("seed {seed} fitz {} ppm {ppm:.1} truth {} dets {} miss near {miss_near} far {miss_far} | fp on {fp_on} near {fp_near} far {fp_far}", scene.fitzpatrick(), truth.len(), dets.len());
        for (k, v) in [
            miss_near,
            miss_far,
            fp_on,
            fp_near,
            fp_far,
            truth.len(),
            dets.len(),
        ]
        .iter()
        .enumerate()
        {
            tot[k] += v;
        }
        if a.len() > 2 {
            f.image.save(format!("/tmp/diag_{seed}.png"))?;
        }
    }
    println!(
        "total miss near {} far {} fp on {} near {} far {} truth {} dets {}",
        tot[0], tot[1], tot[2], tot[3], tot[4], tot[5], tot[6]
    );
    Ok(())
}
