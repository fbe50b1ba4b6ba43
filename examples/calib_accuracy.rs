//! Where calibration error comes from, on rendered board views through the reference camera:
//! calibrates each seed's views three ways (exact true corners; true corners plus Gaussian noise
//! of the detector's measured size; the detector's corners) and prints the intrinsics errors and
//! the distortion-map difference (max over a 20 px grid, over the covered area and the whole
//! image). Separates the solver (exact corners must give ~0), the information in the poses
//! (noisy truth) and the detector (its corners vs noisy truth).
//!
//! `[NOISE_SCALE=K] [BLUR_SCALE=K] [PER_VIEW=1] cargo run --release --example calib_accuracy --
//! [--count N] SEED...` (the scales multiply each view's rendered noise and blur)

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use stipple::calib::render::{reference_camera, BoardRenderer};
use stipple::calib::{
    calibrate_corners, detect_board, BoardCorners, BoardSpec, Calibration, ViewInput,
};

/// Max over the whole image of the distortion-map difference left after the best projective
/// map between the two undistorted images (what no change of intrinsics and rotation explains).
fn nonprojective_diff(a: &Calibration, b: &Calibration) -> f64 {
    let mut pa = Vec::new();
    let mut pb = Vec::new();
    for v in (0..=a.image_height).step_by(20) {
        for u in (0..=a.image_width).step_by(20) {
            let (u, v) = (f64::from(u), f64::from(v));
            let (ua, va) = a.undistort_point(u, v);
            let (ub, vb) = b.undistort_point(u, v);
            pa.push([ua, va]);
            pb.push([ub, vb]);
        }
    }
    // Affine-normalised DLT.
    use nalgebra::{DMatrix, Matrix3, Vector3};
    let mut m = DMatrix::zeros(2 * pa.len(), 9);
    for (i, (p, q)) in pa.iter().zip(&pb).enumerate() {
        let (x, y) = ((p[0] - 640.0) / 640.0, (p[1] - 360.0) / 640.0);
        let (u, v) = ((q[0] - 640.0) / 640.0, (q[1] - 360.0) / 640.0);
        let r = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u];
        let s = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, -v];
        for j in 0..9 {
            m[(2 * i, j)] = r[j];
            m[(2 * i + 1, j)] = s[j];
        }
    }
    let svd = (m.transpose() * &m).symmetric_eigen();
    let k = svd.eigenvalues.imin();
    let h = svd.eigenvectors.column(k);
    let hm = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
    pa.iter()
        .zip(&pb)
        .map(|(p, q)| {
            let x = hm * Vector3::new((p[0] - 640.0) / 640.0, (p[1] - 360.0) / 640.0, 1.0);
            let (u, v) = (x.x / x.z * 640.0 + 640.0, x.y / x.z * 640.0 + 360.0);
            (u - q[0]).hypot(v - q[1])
        })
        .fold(0.0, f64::max)
}

fn report(name: &str, c: &Calibration, truth: &Calibration, covered: &[Vec<[f64; 2]>]) {
    let (k, t) = (c.intrinsics, truth.intrinsics);
    let (cov, full, mean) = c.distortion_difference(truth, covered);
    let np = nonprojective_diff(c, truth);
    let s = c
        .uncertainty
        .map(|u| (u.cx, u.cy))
        .unwrap_or((f64::NAN, f64::NAN));
    println!(
        "  {name:<10} fx {:+.3}% fy {:+.3}% cx {:+.2} cy {:+.2} (σ {:.2} {:.2}) map cov {cov:.3} full {full:.3} mean {mean:.3} nonproj {np:.3} rms {:.4} k {:+.4} {:+.4} {:+.5} {:+.5} {:+.4}",
        100.0 * (k.fx / t.fx - 1.0),
        100.0 * (k.fy / t.fy - 1.0),
        k.cx - t.cx,
        k.cy - t.cy,
        s.0,
        s.1,
        c.rms_px,
        c.distortion.k1,
        c.distortion.k2,
        c.distortion.p1,
        c.distortion.p2,
        c.distortion.k3,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut count = 14;
    if let Some(i) = args.iter().position(|a| a == "--count") {
        count = args[i + 1].parse()?;
        args.drain(i..i + 2);
    }
    let spec = BoardSpec::new(9, 6, 3.0)?;
    let truth = reference_camera();
    let renderer = BoardRenderer::new(truth.clone(), spec);
    let noise_scale: f64 = std::env::var("NOISE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let blur_scale: f64 = std::env::var("BLUR_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    for seed in args {
        let seed: u64 = seed.parse()?;
        let mut views = renderer.render_views(seed, count);
        if noise_scale != 1.0 || blur_scale != 1.0 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for v in &mut views {
                let mut c = v.conditions;
                c.noise_sigma *= noise_scale;
                c.blur_sigma_px *= blur_scale;
                *v = renderer.render(&v.camera_from_board, c, &mut rng);
            }
        }
        let covered: Vec<_> = views
            .iter()
            .map(|v| spec.outline(&v.corners_in_image))
            .collect();
        let mut exact = Vec::new();
        let mut detected = Vec::new();
        let (mut ss, mut n, mut bias) = (0.0, 0usize, [0.0f64; 2]);
        let mut radial = [(0.0f64, 0usize); 8];
        for (i, v) in views.iter().enumerate() {
            let bc = |c: Vec<[f64; 2]>| BoardCorners {
                corners_in_image: c,
                image_width: 1280,
                image_height: 720,
            };
            exact.push(ViewInput {
                name: format!("{i}"),
                corners: bc(v.corners_in_image.clone()),
            });
            match detect_board(&v.image, &spec) {
                Ok(found) => {
                    let mut t = v.corners_in_image.clone();
                    if (t[0][0] - found.corners_in_image[0][0]).abs() > 5.0 {
                        t.reverse();
                    }
                    if (t[0][0] - found.corners_in_image[0][0])
                        .hypot(t[0][1] - found.corners_in_image[0][1])
                        > 5.0
                    {
                        println!("  view {i}: order mismatch, skipped");
                        continue;
                    }
                    if std::env::var_os("PER_VIEW").is_some() {
                        let e: Vec<f64> = found
                            .corners_in_image
                            .iter()
                            .zip(&t)
                            .map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1]))
                            .collect();
                        let rms = (e.iter().map(|x| x * x).sum::<f64>() / e.len() as f64).sqrt();
                        let mx = e.iter().cloned().fold(0.0, f64::max);
                        let tilt = v.camera_from_board.rotation * nalgebra::Vector3::z();
                        if std::env::var("DUMP_VIEW").ok() == Some(i.to_string()) {
                            for (k, (p, q)) in found.corners_in_image.iter().zip(&t).enumerate() {
                                print!("({:+.3},{:+.3}) ", p[0] - q[0], p[1] - q[1]);
                                if k % 9 == 8 {
                                    println!(" y={:.0}", q[1]);
                                }
                            }
                        }
                        println!(
                            "  view {i}: rms {rms:.4} max {mx:.3} tilt {:.0} {:?}",
                            tilt.z.acos().to_degrees(),
                            v.conditions
                        );
                    }
                    for (p, q) in found.corners_in_image.iter().zip(&t) {
                        let (rx, ry) = (q[0] - truth.intrinsics.cx, q[1] - truth.intrinsics.cy);
                        let r = rx.hypot(ry);
                        let bin = ((r / 100.0) as usize).min(7);
                        radial[bin].0 += ((p[0] - q[0]) * rx + (p[1] - q[1]) * ry) / r.max(1e-9);
                        radial[bin].1 += 1;
                        ss += (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
                        bias[0] += p[0] - q[0];
                        bias[1] += p[1] - q[1];
                        n += 1;
                    }
                    detected.push(ViewInput {
                        name: format!("{i}"),
                        corners: found,
                    });
                }
                Err(e) => println!("  view {i}: {e}"),
            }
        }
        let rms = (ss / n.max(1) as f64).sqrt();
        println!(
            "seed {seed}: {} views, detection error rms {rms:.4} px, bias {:+.4} {:+.4}",
            detected.len(),
            bias[0] / n as f64,
            bias[1] / n as f64
        );
        println!(
            "  radial bias by 100 px ring: {}",
            radial
                .iter()
                .map(|(s, n)| format!("{:+.4}({n})", s / (*n).max(1) as f64))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let r = calibrate_corners(&exact, &spec)?;
        report("exact", &r.calibration, &truth, &covered);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let noise = Normal::new(0.0, rms / 2f64.sqrt())?;
        let noisy: Vec<ViewInput> = exact
            .iter()
            .map(|v| {
                let mut v = v.clone();
                for p in &mut v.corners.corners_in_image {
                    p[0] += noise.sample(&mut rng);
                    p[1] += noise.sample(&mut rng);
                }
                v
            })
            .collect();
        let r = calibrate_corners(&noisy, &spec)?;
        report("noisy", &r.calibration, &truth, &covered);
        let r = calibrate_corners(&detected, &spec)?;
        report("detected", &r.calibration, &truth, &covered);
    }
    Ok(())
}
