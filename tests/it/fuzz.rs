//! Issue 22: a bounded fuzz of every reader that takes a file from outside (images, designs,
//! calibrations, recordings). Each property runs a fixed number of cases, so the suite's time
//! is fixed; the readers must return `Ok` or a clean error, never panic, hang or blow up, and
//! what they accept must hold the documented bounds. The inputs that once broke a reader are
//! kept below as regression cases.

use std::path::Path;

use proptest::prelude::*;
use stipple::limits::PX_PER_MM;

/// Cases per property: enough to walk the mutations below, small enough for two cores.
const CASES: u32 = 64;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn sample_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn sample_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]));
    let mut out = Vec::new();
    stipple::server::jpeg::encode_jpeg(&img, 85, &mut out).expect("jpeg");
    out
}

const CALIBRATION: &str = include_str!("../../calibration/synthetic.toml");

const DESIGN: &str = r#"units = "mm"

[[zones]]
name = "crown"
kind = "fill"
polygon = [[0.0, 0.0], [10.0, 0.0], [10.0, 8.0]]
target_density_per_cm2 = 40.0
"#;

/// `bytes` with `edits` applied: (position, new byte) pairs and a cut.
fn mutate(bytes: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, b) in edits {
        if !out.is_empty() {
            let i = at % out.len();
            out[i] = b;
        }
    }
    if let Some(c) = cut {
        out.truncate(c % (bytes.len() + 1));
    }
    out
}

fn load_image_bytes(dir: &Path, bytes: &[u8]) {
    let path = dir.join("fuzz.img");
    std::fs::write(&path, bytes).expect("write");
    match stipple::source::file::load_rgb(&path) {
        Ok(img) => assert!(
            u64::from(img.width()) * u64::from(img.height()) <= stipple::limits::MAX_IMAGE_PIXELS
        ),
        Err(err) => assert!(err.to_string().contains("fuzz.img"), "{err}"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn image_reader_never_panics(
        jpeg in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = if jpeg { sample_jpeg() } else { sample_png() };
        load_image_bytes(dir.path(), &mutate(&base, &edits, cut));
    }

    #[test]
    fn calibration_reader_holds_its_bounds(
        edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fuzz.toml");
        std::fs::write(&path, mutate(CALIBRATION.as_bytes(), &edits, cut)).expect("write");
        match stipple::calib::load(&path) {
            Ok(c) => prop_assert!(PX_PER_MM.contains(&c.px_per_mm), "{}", c.px_per_mm),
            Err(err) => prop_assert!(err.to_string().contains("fuzz.toml"), "{err}"),
        }
    }

    #[test]
    fn design_reader_never_panics(
        edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let text = String::from_utf8_lossy(&mutate(DESIGN.as_bytes(), &edits, cut)).into_owned();
        if let Ok(d) = stipple::planning::Design::from_toml(&text) {
            for z in &d.zones {
                prop_assert!(z.polygon.iter().flatten().all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn recording_reader_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let base = small_recording();
        let bytes = mutate(&base, &edits, cut);
        // Ok (intact or partly recovered) or a clean error naming the file: never a panic.
        if let Err(err) = stipple::record::Recording::from_bytes(Path::new("fuzz.mcap"), &bytes) {
            prop_assert!(err.to_string().contains("fuzz.mcap"), "{err}");
        }
    }
}

/// A finished three-frame recording, built once.
fn small_recording() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("small.mcap");
            crate::record::write_small_recording(&file, 3).expect("record");
            std::fs::read(&file).expect("read")
        })
        .clone()
}

// Regression cases: inputs that once broke a reader (issue 22's probes).

#[test]
fn r22_regressions() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A JPEG cut in half used to decode with its lower half grey.
    let jpeg = sample_jpeg();
    let path = dir.path().join("half.jpg");
    std::fs::write(&path, &jpeg[..jpeg.len() / 2]).expect("write");
    let err = stipple::source::file::load_rgb(&path).expect_err("truncated");
    assert!(
        err.to_string().contains("half.jpg") && err.to_string().contains("truncated"),
        "{err}"
    );
    // A calibration with px_per_mm = 0.3 used to pass and then abort `detect`.
    let path = dir.path().join("small-scale.toml");
    std::fs::write(
        &path,
        CALIBRATION.replace("px_per_mm = 20.0", "px_per_mm = 0.3"),
    )
    .expect("write");
    let err = stipple::calib::load(&path).expect_err("0.3 px/mm");
    assert!(err.to_string().contains("px_per_mm"), "{err}");
    // A design with `target_density` for `target_density_per_cm2` used to be read as no target.
    let typo = DESIGN.replace("target_density_per_cm2", "target_density");
    let err = stipple::planning::Design::from_toml(&typo).expect_err("unknown key");
    assert!(err.to_string().contains("target_density"), "{err}");
}
