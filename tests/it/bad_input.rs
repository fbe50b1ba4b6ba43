//! Issue 22: inputs that used to pass validation and then crash, hang or mislead. Each is
//! refused with an error naming the file, flag or field; where a command takes several
//! images, the others are still processed. The commands run under an address-space limit
//! (`prlimit --as`), so an allocation blow-up fails the test instead of the machine.

use std::path::Path;
use std::process::{Command, Output};

use image::ImageEncoder as _;

/// Address space each command may use: enough for the bundled model, far below what the
/// unbounded paths asked for (40 GB at `--px-per-mm 0.1`, 10.8 GB for a 68-byte PNG header).
const AS_LIMIT: &str = "--as=3000000000";

/// `stipple ARGS` under [`AS_LIMIT`].
fn stipple_limited(args: &[&str]) -> Output {
    Command::new("prlimit")
        .arg(AS_LIMIT)
        .arg(env!("CARGO_BIN_EXE_stipple"))
        .args(args)
        .output()
        .expect("run prlimit")
}

/// `plan` with the flags it requires.
const PLAN: [&str; 5] = ["plan", "--target-density", "40", "--min-spacing-mm", "0.8"];

fn has_prlimit() -> bool {
    Command::new("prlimit").arg("--version").output().is_ok()
}

/// Asserts a clean refusal: exit 1 or 2 (never a signal), stderr naming every `needle`.
fn refused(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{:?}: {stderr}",
        out.status
    );
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in: {stderr}");
    }
}

fn skin_png(path: &Path) {
    image::RgbImage::from_fn(320, 240, |x, y| {
        let dot = (x % 20 < 4) && (y % 20 < 4);
        if dot {
            image::Rgb([40, 30, 30])
        } else {
            image::Rgb([200, 160, 140])
        }
    })
    .save(path)
    .expect("save png");
}

#[test]
fn r22_px_per_mm_outside_3_to_1000_is_refused_naming_the_range() {
    if !has_prlimit() {
        eprintln!("SKIPPED: prlimit is absent");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("skin.png");
    skin_png(&img);
    let img = img.to_str().expect("utf-8 path");
    for bad in ["0.1", "0.5", "1e-9", "2000", "NaN"] {
        for cmd in [&["detect"][..], &PLAN[..]] {
            let out = stipple_limited(&[cmd, &["--px-per-mm", bad, img]].concat());
            refused(&out, &["--px-per-mm", "between 3 and 1000"]);
        }
    }
    let out = stipple_limited(&["serve", "--px-per-mm", "0.1", "--no-model"]);
    refused(&out, &["--px-per-mm", "between 3 and 1000"]);
    // In range it runs (under the same limit).
    let out = stipple_limited(&["detect", "--no-model", "--px-per-mm", "20", img]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn r22_calibration_files_reject_bad_scale_and_unknown_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/calibration/synthetic.toml"
    ))
    .expect("read synthetic.toml");
    let cases = [
        (
            "tiny.toml",
            good.replace("px_per_mm = 20.0", "px_per_mm = 0.3"),
            "px_per_mm",
        ),
        (
            "nan.toml",
            good.replace("px_per_mm = 20.0", "px_per_mm = nan"),
            "px_per_mm",
        ),
        (
            "typo.toml",
            good.replace("px_per_mm = 20.0", "px_per_mm = 20.0\npx_per_cm = 200.0"),
            "px_per_cm",
        ),
    ];
    for (name, text, field) in cases {
        assert_ne!(text, good, "{name}: the test did not change the file");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let err = stipple::calib::load(&path).expect_err(name).to_string();
        assert!(err.contains(name) && err.contains(field), "{err}");
    }
}

#[test]
fn r22_model_threads_and_frame_size_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("skin.png");
    skin_png(&img);
    let out = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args(["detect", "--px-per-mm", "20", "--model-threads", "100000"])
        .arg(&img)
        .output()
        .expect("run");
    refused(&out, &["--model-threads", "between 1 and 64"]);
    for (flag, v) in [
        ("--width", "100000"),
        ("--height", "100000"),
        ("--width", "10"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stipple"))
            .args(["serve", "--no-model", "--bind", "127.0.0.1:0", flag, v])
            .output()
            .expect("run");
        refused(&out, &[flag, "between 64 and 4096"]);
    }
}

#[test]
fn r22_a_truncated_jpeg_is_an_error_naming_it_and_the_rest_are_processed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.png");
    skin_png(&good);
    let img = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, 120]));
    let mut jpeg = Vec::new();
    stipple::server::jpeg::encode_jpeg(&img, 90, &mut jpeg).expect("encode");
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() / 2]).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args(["detect", "--no-model", "--px-per-mm", "20"])
        .arg(&cut)
        .arg(&good)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cut.jpg") && stderr.contains("truncated JPEG"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("good.png"), "{stdout}");
    // --accept-damaged-images: a warning, and both are processed.
    let out = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args([
            "detect",
            "--no-model",
            "--px-per-mm",
            "20",
            "--accept-damaged-images",
        ])
        .arg(&cut)
        .arg(&good)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cut.jpg") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

/// A PNG whose header declares `width` x `height` over 8x8 pixels of data (a few hundred
/// bytes): the decompression bomb's header.
fn bomb(path: &Path, width: u32, height: u32) {
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&[0u8; 8 * 8 * 3], 8, 8, image::ExtendedColorType::Rgb8)
        .expect("encode");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(path, png).expect("write");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn r22_a_png_bomb_is_refused_from_its_header_under_a_memory_limit() {
    if !has_prlimit() {
        eprintln!("SKIPPED: prlimit is absent");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("bomb.png");
    bomb(&big, 60_000, 60_000);
    let good = dir.path().join("good.png");
    skin_png(&good);
    let (big_s, good_s) = (big.to_str().expect("utf-8"), good.to_str().expect("utf-8"));
    for cmd in [&["detect"][..], &PLAN[..]] {
        let out =
            stipple_limited(&[cmd, &["--no-model", "--px-per-mm", "20", big_s, good_s]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {stderr}");
        assert!(
            stderr.contains("bomb.png") && stderr.contains("over the limit"),
            "{stderr}"
        );
        if cmd[0] == "detect" {
            assert!(String::from_utf8_lossy(&out.stdout).contains("good.png"));
        }
    }
    let out = stipple_limited(&[
        "calibrate",
        "--board",
        "9x6",
        "--square-mm",
        "3",
        big_s,
        good_s,
    ]);
    refused(&out, &["bomb.png"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}
