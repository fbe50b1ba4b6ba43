//! `stipple detect`: the JSON contract and bad input, through the real binary.

use std::path::Path;
use std::process::Command;

fn stipple() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stipple"))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims `width` x `height` (its pixel data is a valid 1x1 image's, so only
/// a decoder that trusts the header would try to allocate the whole thing).
fn png_claiming(path: &Path, width: u32, height: u32) {
    let mut buf = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
        .expect("encode");
    // IHDR data starts at byte 16 (8 signature + 4 length + 4 type), 13 bytes, then its CRC.
    buf[16..20].copy_from_slice(&width.to_be_bytes());
    buf[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&buf[12..29]);
    buf[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(path, buf).expect("write");
}

#[test]
fn bad_images_are_named_and_the_rest_still_processed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let good = d.join("good.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([190, 140, 120]))
        .save(&good)
        .expect("save");
    let one = d.join("one.png");
    image::RgbImage::from_pixel(1, 1, image::Rgb([0, 0, 0]))
        .save(&one)
        .expect("save");
    let empty = d.join("empty.png");
    std::fs::write(&empty, b"").expect("write");
    let corrupt = d.join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xFF\xD8\xFF\xE0garbage garbage garbage").expect("write");
    let bytes = std::fs::read(&good).expect("read");
    let truncated = d.join("truncated.png");
    std::fs::write(&truncated, &bytes[..bytes.len() - 20]).expect("write");
    let huge = d.join("huge.png");
    png_claiming(&huge, 16000, 16000);
    let missing = d.join("missing.png");

    let out = stipple()
        .args(["detect", "--px-per-mm", "20", "--format", "jsonl"])
        .args([&good, &empty, &corrupt, &truncated, &huge, &missing, &one])
        .output()
        .expect("run stipple");
    assert!(
        !out.status.success(),
        "bad images must give a non-zero exit"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, why) in [
        ("empty.png", "empty"),
        ("corrupt.jpg", "corrupt"),
        ("truncated.png", "truncated"),
        ("huge.png", "16000x16000"),
        ("missing.png", "cannot read"),
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(name) && l.contains(why)),
            "no error naming {name} ({why}) in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "the good and the 1x1 images are processed: {stdout}"
    );
    assert_eq!(lines[0]["image"], good.display().to_string());
    assert_eq!(lines[0]["width"], 64);
    assert_eq!(lines[0]["height"], 48);
    assert_eq!(lines[0]["px_per_mm"], 20.0);
    assert_eq!(
        lines[0]["detections"].as_array().map(Vec::len),
        Some(0),
        "flat skin has no dots"
    );
    assert_eq!(lines[0]["density_per_cm2"], 0.0);
    assert_eq!(lines[1]["width"], 1);
}

#[test]
fn wrong_flags_are_clear_errors() {
    let out = stipple()
        .args(["detect", "--px-per-mm", "abc", "x.png"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--px-per-mm") && stderr.contains("abc"),
        "{stderr}"
    );

    let out = stipple()
        .args(["detect", "--px-per-mm", "-3", "x.png"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("between 3 and 1000"), "{stderr}");

    let out = stipple().args(["detect", "x.png"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--px-per-mm"));

    let out = stipple()
        .args(["detect", "--px-per-mm", "20", "--frobnicate", "x.png"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}

#[test]
fn the_scale_comes_from_a_calibration_file_and_its_image_size_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("skin.png");
    image::RgbImage::from_pixel(1280, 720, image::Rgb([190, 140, 120]))
        .save(&img)
        .expect("save");
    let small = dir.path().join("small.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([190, 140, 120]))
        .save(&small)
        .expect("save");
    let cal = concat!(env!("CARGO_MANIFEST_DIR"), "/calibration/synthetic.toml");
    let out = stipple()
        .args(["detect", "--calibration", cal, "--format", "jsonl"])
        .args([&img, &small])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("one line")).expect("json");
    assert_eq!(line["px_per_mm"], 20.0);
    assert_eq!(stdout.lines().count(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("small.png") && stderr.contains("1280x720"),
        "{stderr}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "px_per_mm = \"twenty\"\n").expect("write");
    let out = stipple()
        .args(["detect", "--calibration"])
        .arg(&bad)
        .arg(&img)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

/// `stipple detect ... | head`: when the reader closes the pipe, the command stops without an
/// error message, with the shell's status for a writer whose pipe closed (141).
#[test]
fn a_reader_that_leaves_early_is_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("skin.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([190, 140, 120]))
        .save(&img)
        .expect("save");
    let mut child = stipple()
        .args(["detect", "--px-per-mm", "20", "--format", "jsonl"])
        .arg(&img)
        .arg(&img)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader leaves before the first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

/// A picture without colour (greyscale, infrared) is detected on lightness and texture alone,
/// and stderr says so naming the file; a picture in colour gets no such warning.
#[test]
fn a_picture_without_colour_is_named_in_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut params =
        stipple::source::synth::SceneParams::new(9002, stipple::source::synth::View::Rig);
    (params.width, params.height) = (320, 240);
    params.px_per_mm = Some(20.0);
    let colour = stipple::source::synth::render(&params).image;
    let grey = image::DynamicImage::ImageRgb8(colour.clone()).into_luma8();
    let (colour_png, grey_png) = (
        dir.path().join("colour.png"),
        dir.path().join("infrared.png"),
    );
    colour.save(&colour_png).expect("save");
    grey.save(&grey_png).expect("save");
    let out = stipple()
        .args([
            "detect",
            "--no-model",
            "--px-per-mm",
            "20",
            "--format",
            "jsonl",
        ])
        .args([&colour_png, &grey_png])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<_> = stderr.lines().filter(|l| l.contains("no colour")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("infrared.png"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2);
    let fraction = lines[1]["skin_fraction"].as_f64().expect("skin_fraction");
    assert!(fraction > 0.95, "the grey scalp is skin: {fraction}");
    let found = |i: usize| lines[i]["detections"].as_array().expect("detections").len();
    assert!(
        found(1) * 10 >= found(0) * 8,
        "{} against {}",
        found(1),
        found(0)
    );
}
