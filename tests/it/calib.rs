//! Calibration end to end: rendered board views through a known camera, detection, calibration
//! and comparison with the truth; calibration files; the CLI's JSON contract.

use std::path::Path;
use std::process::Command;
use stipple::calib::render::{reference_camera, BoardRenderer};

use stipple::calib::{
    calibrate_images, detect_board, load, load_for_image, BoardSpec, CalibError, NotFound,
};

fn board() -> BoardSpec {
    BoardSpec {
        inner_cols: 9,
        inner_rows: 6,
        square_mm: 3.0,
    }
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
        eprintln!(
            "view {i}: rms {rms:.4} px, worst {worst:.4} px, {:?}",
            view.conditions
        );
        // Measured 0.009-0.015 px rms, 0.036 px at worst (glare in view 3). The detector
        // before the light correction and the corner fit was 0.24 px off at worst on a glare
        // view (seed 11, noise-free; docs/calibration.md).
        assert!(rms < 0.03, "view {i}: corner error {rms} px rms");
        assert!(worst < 0.1, "view {i}: worst corner error {worst} px");
    }
    Ok(())
}

/// Issue #7's accuracy criteria on rendered views (1280x720, blur, noise, glare in one view of
/// three) of seeds held out: none of them was looked at while the detector, the renderer's
/// poses or the solver were being worked on (those used 2024-2026 and 11-13).
///
/// The targets: fx, fy within 0.5 % and the principal point within 5 px, and the
/// distortion model within 0.1 px of the true one over the whole image (largest difference of
/// the undistortion maps on a 20 px grid, image corners included, where the board reached only
/// some views). Measured: fx, fy within 0.01 %, principal point within 0.2 px, distortion at
/// most 0.026-0.062 px, rms 0.008-0.012 px (docs/calibration.md has OpenCV beside them).
#[test]
fn calibration_matches_the_rendering_camera() -> Result<(), Box<dyn std::error::Error>> {
    let truth = reference_camera();
    let renderer = BoardRenderer::new(truth.clone(), board());
    for seed in [31_001, 31_002, 31_003] {
        let views = renderer.render_views(seed, 14);
        let covered: Vec<Vec<[f64; 2]>> = views
            .iter()
            .map(|v| board().outline(&v.corners_in_image))
            .collect();
        let images: Vec<(String, image::GrayImage)> = views
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{i:03}.png"), v.image))
            .collect();
        let report = calibrate_images(&images, &board())?;
        let c = &report.calibration;
        let (k, t) = (c.intrinsics, truth.intrinsics);
        let (cov, full, mean) = c.distortion_difference(&truth, &covered);
        eprintln!(
            "seed {seed}: fx {:+.3}% fy {:+.3}% cx {:+.2} cy {:+.2} px; distortion map diff max \
             {cov:.3} px covered, {full:.3} px whole image, mean {mean:.3} px; rms {:.4} px, \
             {} views",
            100.0 * (k.fx / t.fx - 1.0),
            100.0 * (k.fy / t.fy - 1.0),
            k.cx - t.cx,
            k.cy - t.cy,
            c.rms_px,
            report.views.len()
        );
        assert!(
            report.views.len() >= 12,
            "seed {seed}: used {} views",
            report.views.len()
        );
        assert!(
            (k.fx / t.fx - 1.0).abs() < 0.005,
            "seed {seed}: fx {} vs {}",
            k.fx,
            t.fx
        );
        assert!(
            (k.fy / t.fy - 1.0).abs() < 0.005,
            "seed {seed}: fy {} vs {}",
            k.fy,
            t.fy
        );
        assert!(
            (k.cx - t.cx).hypot(k.cy - t.cy) < 5.0,
            "seed {seed}: pp {},{} vs {},{}",
            k.cx,
            k.cy,
            t.cx,
            t.cy
        );
        assert!(
            mean < 0.03,
            "seed {seed}: distortion differs by {mean} px on average"
        );
        assert!(
            full < 0.1,
            "seed {seed}: distortion differs by up to {full} px"
        );
        assert!(c.rms_px < 0.03, "seed {seed}: rms {}", c.rms_px);
    }
    Ok(())
}

#[test]
fn board_not_found_says_why() {
    let renderer = BoardRenderer::new(reference_camera(), board());
    let view = &renderer.render_views(99, 1)[0];
    // Wrong board size: a complete 9x6 grid exists, but no 11x8 one.
    let big = BoardSpec {
        inner_cols: 11,
        inner_rows: 8,
        square_mm: 3.0,
    };
    let err = detect_board(&view.image, &big).expect_err("no 11x8 board");
    assert!(
        matches!(
            err,
            NotFound::Incomplete {
                found: 54,
                expected: 88,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("54 of 88"), "{err}");
    // Half the board covered.
    let mut img = view.image.clone();
    let xs: Vec<f64> = view.corners_in_image.iter().map(|p| p[0]).collect();
    let mid = (xs.iter().cloned().fold(f64::MAX, f64::min)
        + xs.iter().cloned().fold(f64::MIN, f64::max))
        / 2.0;
    for (x, _, px) in img.enumerate_pixels_mut() {
        if f64::from(x) > mid {
            px.0 = [128];
        }
    }
    let err = detect_board(&img, &board()).expect_err("half a board");
    assert!(matches!(err, NotFound::Incomplete { .. }), "{err}");
    // Nothing at all.
    let blank = image::GrayImage::from_pixel(640, 480, image::Luma([200]));
    assert_eq!(detect_board(&blank, &board()), Err(NotFound::NoCorners));
}

const GOOD_TOML: &str = include_str!("../../calibration/synthetic.toml");

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn shipped_synthetic_calibration_loads() -> Result<(), CalibError> {
    let c = load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/calibration/synthetic.toml"
    )))?;
    assert_eq!((c.image_width, c.image_height), (1280, 720));
    assert_eq!(
        (
            c.intrinsics.fx,
            c.intrinsics.fy,
            c.intrinsics.cx,
            c.intrinsics.cy
        ),
        (1400.0, 1400.0, 640.0, 360.0)
    );
    assert_eq!(c.px_per_mm, 20.0);
    assert_eq!(c.undistort_point(100.0, 50.0), (100.0, 50.0));
    Ok(())
}

#[test]
fn malformed_files_name_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = write(
        dir.path(),
        "missing.toml",
        &GOOD_TOML.replace("fy = 1400.0\n", ""),
    );
    let err = load(&missing).expect_err("missing fy").to_string();
    assert!(err.contains("missing.toml") && err.contains("fy"), "{err}");

    let nan = write(
        dir.path(),
        "nan.toml",
        &GOOD_TOML.replace("k2 = 0.0", "k2 = nan"),
    );
    let err = load(&nan).expect_err("NaN k2").to_string();
    assert!(
        err.contains("nan.toml") && err.contains("distortion.k2"),
        "{err}"
    );

    let inf = write(
        dir.path(),
        "inf.toml",
        &GOOD_TOML.replace("px_per_mm = 20.0", "px_per_mm = inf"),
    );
    let err = load(&inf).expect_err("inf px_per_mm").to_string();
    assert!(
        err.contains("inf.toml") && err.contains("px_per_mm"),
        "{err}"
    );

    let good = write(dir.path(), "good.toml", GOOD_TOML);
    let err = load_for_image(&good, 1920, 1080)
        .expect_err("other size")
        .to_string();
    assert!(
        err.contains("good.toml") && err.contains("image_width") && err.contains("1920x1080"),
        "{err}"
    );
    assert!(load_for_image(&good, 1280, 720).is_ok());

    let garbage = write(dir.path(), "garbage.toml", "this is = = not toml");
    let err = load(&garbage).expect_err("garbage").to_string();
    assert!(err.contains("garbage.toml"), "{err}");

    let err = load(&dir.path().join("absent.toml"))
        .expect_err("absent")
        .to_string();
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn round_trip_calibrate_save_load_undistort_project() -> Result<(), Box<dyn std::error::Error>> {
    let renderer = BoardRenderer::new(reference_camera(), board());
    let images: Vec<(String, image::GrayImage)> = renderer
        .render_views(5150, 6)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{i}"), v.image))
        .collect();
    let report = calibrate_images(&images, &board())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rig.toml");
    report.calibration.save(&path)?;
    let loaded = load_for_image(&path, 1280, 720)?;
    assert_eq!(loaded, report.calibration);
    for (u, v) in [
        (0.0, 0.0),
        (1279.0, 719.0),
        (640.0, 360.0),
        (100.0, 600.0),
        (1200.0, 30.0),
    ] {
        let (x, y) = loaded.unproject(u, v);
        let (pu, pv) = loaded.project([x * 250.0, y * 250.0, 250.0]);
        assert!((pu - u).hypot(pv - v) < 0.01, "({u},{v}) -> ({pu},{pv})");
        let (uu, uv) = loaded.undistort_point(u, v);
        let (ru, rv) = loaded.redistort_point(uu, uv);
        assert!((ru - u).hypot(rv - v) < 0.01);
    }
    Ok(())
}

#[test]
fn cli_json_contract() -> Result<(), Box<dyn std::error::Error>> {
    let exe = env!("CARGO_BIN_EXE_stipple");
    let dir = tempfile::tempdir()?;
    let status = Command::new(exe)
        .args(["synth-board", "--seed", "31337", "--count", "5", "--out"])
        .arg(dir.path())
        .status()?;
    assert!(status.success());
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("truth.json"))?)?;
    assert_eq!(truth["views"].as_array().map(Vec::len), Some(5));
    let blank = dir.path().join("blank.png");
    image::GrayImage::from_pixel(1280, 720, image::Luma([90])).save(&blank)?;
    let mut images: Vec<std::path::PathBuf> = (0..5)
        .map(|i| dir.path().join(format!("{i:03}.png")))
        .collect();
    images.push(blank);
    let out = Command::new(exe)
        .args([
            "calibrate",
            "--board",
            "9x6",
            "--square-mm",
            "3.0",
            "--format",
            "json",
            // No working-plane view among synthetic views: save the views' scale on purpose.
            "--px-per-mm-from-views",
            "--out",
        ])
        .arg(dir.path().join("rig.toml"))
        .args(&images)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let keys: Vec<&str> = json
        .as_object()
        .ok_or("object")?
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "fx",
        "fy",
        "cx",
        "cy",
        "k1",
        "k2",
        "p1",
        "p2",
        "k3",
        "rms_px",
        "views_used",
        "views_rejected",
        // Issue 21's additions.
        "image_width",
        "image_height",
        "px_per_mm",
        "px_per_mm_sigma",
        "px_per_mm_source",
        "working_distance_mm",
        "coverage",
        "verdict",
        "warnings",
        "saved_to",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    // Five views: a warning, and a verdict asking for more.
    assert!(json["warnings"].as_array().is_some_and(|w| w
        .iter()
        .any(|w| w.as_str().is_some_and(|s| s.contains("only 5 views")))));
    assert_eq!(json["verdict"]["good_for_smp"], false);
    assert_eq!(json["px_per_mm_source"], "least-tilted-view");
    for k in [
        "fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "rms_px",
    ] {
        assert!(json[k].as_f64().is_some_and(f64::is_finite), "{k}");
    }
    assert_eq!(json["views_used"], 5);
    let rejected = json["views_rejected"].as_array().ok_or("array")?;
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0]["image"]
        .as_str()
        .is_some_and(|s| s.ends_with("blank.png")));
    assert!(rejected[0]["reason"]
        .as_str()
        .is_some_and(|s| s.contains("no chessboard corners")));
    assert!(load(&dir.path().join("rig.toml")).is_ok());
    // Too few views is an error with a non-zero exit.
    let out = Command::new(exe)
        .args(["calibrate", "--board", "9x6", "--square-mm", "3"])
        .arg(&images[0])
        .output()?;
    assert!(!out.status.success());
    Ok(())
}

#[test]
fn live_calibrator_reports_coverage_and_readiness() -> Result<(), Box<dyn std::error::Error>> {
    let renderer = BoardRenderer::new(reference_camera(), board());
    let mut live = stipple::calib::LiveCalibrator::new(board(), 1280, 720);
    let mut last = None;
    for view in renderer.render_views(8080, 10) {
        let status = live.add_image(&view.image)?;
        if let Some(prev) = last {
            assert!(status.coverage >= prev);
        }
        last = Some(status.coverage);
    }
    let status = live.status();
    assert_eq!(status.views, 10);
    assert!(status.rms_px.is_some_and(|r| r < 0.2), "{status:?}");
    assert!(status.ready, "{status:?}");
    let calib = live.finish()?;
    assert!((calib.intrinsics.fx / 1380.0 - 1.0).abs() < 0.01);
    Ok(())
}

#[test]
fn scale_at_the_skin_matches_the_true_distance() -> Result<(), Box<dyn std::error::Error>> {
    use nalgebra::Isometry3;
    use rand::SeedableRng;
    use stipple::calib::render::RenderConditions;
    let truth = reference_camera();
    let renderer = BoardRenderer::new(truth.clone(), board());
    // Board facing the camera, its centre on the optical axis 100 mm away.
    let pose = Isometry3::translation(-12.0, -7.5, 100.0);
    let conditions = RenderConditions {
        blur_sigma_px: 0.8,
        noise_sigma: 2.0,
        glare: false,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let view = renderer.render(&pose, conditions, &mut rng);
    let corners = detect_board(&view.image, &board())?;
    let px_per_mm = stipple::calib::px_per_mm_from_view(&truth, &corners, &board())?;
    let expected = (truth.intrinsics.fx * truth.intrinsics.fy).sqrt() / 100.0;
    assert!(
        (px_per_mm / expected - 1.0).abs() < 0.002,
        "{px_per_mm} vs {expected}"
    );
    Ok(())
}

#[test]
fn board_is_found_in_clutter_and_noise() -> Result<(), Box<dyn std::error::Error>> {
    use rand::{Rng, SeedableRng};
    let renderer = BoardRenderer::new(reference_camera(), board());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for (i, view) in renderer.render_views(6060, 3).into_iter().enumerate() {
        // Salt-and-pepper clutter (full of saddle-like points) everywhere but near the board.
        let xs = view.corners_in_image.iter().map(|p| p[0]);
        let ys = view.corners_in_image.iter().map(|p| p[1]);
        let (x0, x1) = (
            xs.clone().fold(f64::MAX, f64::min),
            xs.fold(f64::MIN, f64::max),
        );
        let (y0, y1) = (
            ys.clone().fold(f64::MAX, f64::min),
            ys.fold(f64::MIN, f64::max),
        );
        let margin = 0.25 * (x1 - x0).max(y1 - y0);
        let mut img = view.image.clone();
        for (x, y, px) in img.enumerate_pixels_mut() {
            let (x, y) = (f64::from(x), f64::from(y));
            if x < x0 - margin || x > x1 + margin || y < y0 - margin || y > y1 + margin {
                px.0 = [rng.gen_range(0..=255)];
            }
        }
        let found = detect_board(&img, &board()).map_err(|e| format!("view {i}: {e}"))?;
        let mut truth = view.corners_in_image.clone();
        if (truth[0][0] - found.corners_in_image[0][0]).abs() > 5.0 {
            truth.reverse();
        }
        for (p, t) in found.corners_in_image.iter().zip(&truth) {
            assert!(
                (p[0] - t[0]).hypot(p[1] - t[1]) < 0.5,
                "view {i}: {p:?} vs {t:?}"
            );
        }
    }
    Ok(())
}

/// A board printed with partial outer squares (a common print: the outer row and column cut to
/// 0.45 of a square, a thin paper margin, then a grey background): the border corners' windows
/// must stay inside the cut squares, or the paper edge pulls them (by 1.4-1.8 px on OpenCV's
/// own `left01.jpg`, which is printed this way).
#[test]
fn partial_outer_squares_do_not_pull_the_border_corners() -> Result<(), Box<dyn std::error::Error>>
{
    let (x0, y0, s) = (100.3, 80.6, 34.0);
    let outer = 0.45;
    let margin = 0.1;
    let colour = |x: f64, y: f64| -> f64 {
        let (u, v) = ((x - x0) / s, (y - y0) / s);
        if u >= -outer && u < 8.0 + outer && v >= -outer && v < 5.0 + outer {
            if (u.floor() as i64 + v.floor() as i64).rem_euclid(2) == 0 {
                30.0
            } else {
                220.0
            }
        } else if u >= -outer - margin
            && u < 8.0 + outer + margin
            && v >= -outer - margin
            && v < 5.0 + outer + margin
        {
            220.0
        } else {
            90.0
        }
    };
    // Pixel areas integrated 32x32 (8x8 would quantise the edges by up to 1/16 px).
    let n = 32;
    let sharp = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_fn(520, 320, |x, y| {
        let mut acc = 0.0;
        for sy in 0..n {
            for sx in 0..n {
                let px = f64::from(x) - 0.5 + (f64::from(sx) + 0.5) / f64::from(n);
                let py = f64::from(y) - 0.5 + (f64::from(sy) + 0.5) / f64::from(n);
                acc += colour(px, py);
            }
        }
        image::Luma([(acc / f64::from(n * n)) as f32])
    });
    let blurred = imageproc::filter::gaussian_blur_f32(&sharp, 1.0);
    let img = image::GrayImage::from_fn(520, 320, |x, y| {
        image::Luma([blurred.get_pixel(x, y).0[0].round().clamp(0.0, 255.0) as u8])
    });
    let found = detect_board(&img, &board()).map_err(|e| e.to_string())?;
    let mut truth: Vec<[f64; 2]> = (0..6)
        .flat_map(|j| (0..9).map(move |i| [x0 + s * f64::from(i), y0 + s * f64::from(j)]))
        .collect();
    if (truth[0][0] - found.corners_in_image[0][0]).abs() > 5.0 {
        truth.reverse();
    }
    let worst = found
        .corners_in_image
        .iter()
        .zip(&truth)
        .map(|(p, t)| (p[0] - t[0]).hypot(p[1] - t[1]))
        .fold(0.0, f64::max);
    eprintln!("partial outer squares: worst corner error {worst:.4} px");
    // Measured 0.034 px; without the outer-square limit the worst border corner was 5.5 px off.
    assert!(worst < 0.05, "worst corner error {worst} px");
    Ok(())
}
