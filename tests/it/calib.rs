//! Calibration end to end: rendered board views through a known camera, detection, calibration
//! and comparison with the truth; calibration files; the CLI's JSON contract.

use stipple::calib::render::{reference_camera, BoardRenderer};
use stipple::calib::{calibrate_images, detect_board, BoardSpec, Calibration};

fn board() -> BoardSpec {
    BoardSpec { inner_cols: 9, inner_rows: 6, square_mm: 3.0 }
}

/// The outline of a view's corner grid (row 0, last column, last row, first column).
fn outline(corners: &[[f64; 2]], spec: &BoardSpec) -> Vec<[f64; 2]> {
    let (c, r) = (spec.inner_cols, spec.inner_rows);
    let mut ring: Vec<[f64; 2]> = (0..c).map(|i| corners[i]).collect();
    ring.extend((1..r).map(|j| corners[j * c + c - 1]));
    ring.extend((0..c - 1).rev().map(|i| corners[(r - 1) * c + i]));
    ring.extend((1..r - 1).rev().map(|j| corners[j * c]));
    ring
}

fn inside(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Largest difference, over a 20 px grid of the image area the views covered, between the
/// distortion displacement fields of two models (each with its own intrinsics), in px. The
/// same metric as `scripts/calib_vs_opencv.py`.
fn max_distortion_diff_px(a: &Calibration, b: &Calibration, covered: &[Vec<[f64; 2]>]) -> f64 {
    let mut worst: f64 = 0.0;
    for v in (0..=a.image_height).step_by(20) {
        for u in (0..=a.image_width).step_by(20) {
            let (u, v) = (f64::from(u), f64::from(v));
            if !covered.iter().any(|poly| inside(poly, u, v)) {
                continue;
            }
            let (ua, va) = a.undistort_point(u, v);
            let (ub, vb) = b.undistort_point(u, v);
            worst = worst.max(((ua - u) - (ub - u)).hypot((va - v) - (vb - v)));
        }
    }
    worst
}

#[test]
fn detection_finds_true_corners() -> Result<(), Box<dyn std::error::Error>> {
    let renderer = BoardRenderer::new(reference_camera(), board());
    let views = renderer.render_views(7001, 4);
    for (i, view) in views.iter().enumerate() {
        let found = detect_board(&view.image, &board()).map_err(|e| format!("view {i}: {e}"))?;
        // The board is symmetric under a half turn; the detector starts at the top-left.
        let mut truth = view.corners_in_image.clone();
        if (truth[0][0] - found.corners_in_image[0][0]).abs() > 5.0 {
            truth.reverse();
        }
        let mut worst: f64 = 0.0;
        let mut sum = 0.0;
        for (p, t) in found.corners_in_image.iter().zip(&truth) {
            let d = (p[0] - t[0]).hypot(p[1] - t[1]);
            worst = worst.max(d);
            sum += d * d;
        }
        let rms = (sum / 54.0).sqrt();
        eprintln!("view {i}: rms {rms:.4} px, worst {worst:.4} px, {:?}", view.conditions);
        assert!(worst < 0.5, "view {i}: worst corner error {worst} px");
    }
    Ok(())
}

#[test]
fn calibration_matches_the_rendering_camera() -> Result<(), Box<dyn std::error::Error>> {
    let truth = reference_camera();
    let renderer = BoardRenderer::new(truth.clone(), board());
    let views = renderer.render_views(424_242, 14);
    let covered: Vec<Vec<[f64; 2]>> = views.iter().map(|v| outline(&v.corners_in_image, &board())).collect();
    let images: Vec<(String, image::GrayImage)> =
        views.into_iter().enumerate().map(|(i, v)| (format!("{i:03}.png"), v.image)).collect();
    let report = calibrate_images(&images, &board())?;
    let c = &report.calibration;
    let (k, t) = (c.intrinsics, truth.intrinsics);
    let dist = max_distortion_diff_px(c, &truth, &covered);
    eprintln!("{:?}\n{:?}\nrms {} rejected {:?} dist {dist}", c.intrinsics, c.distortion, c.rms_px, report.rejected);
    assert!(report.views.len() >= 12, "used {} views", report.views.len());
    assert!((k.fx / t.fx - 1.0).abs() < 0.005, "fx {} vs {}", k.fx, t.fx);
    assert!((k.fy / t.fy - 1.0).abs() < 0.005, "fy {} vs {}", k.fy, t.fy);
    assert!((k.cx - t.cx).hypot(k.cy - t.cy) < 5.0, "pp {},{} vs {},{}", k.cx, k.cy, t.cx, t.cy);
    assert!(dist < 0.1, "distortion differs by {dist} px");
    Ok(())
}
