//! Calibration files: TOML in `calibration/`, written by `stipple calibrate` and read by
//! [`load`]. A file that cannot be trusted (missing or non-finite field, unknown model, wrong
//! image size) is rejected with an error naming the file and the field.
//!
//! ```toml
//! model = "pinhole-brown-conrady"
//! image_width = 1280
//! image_height = 720
//! px_per_mm = 20.0
//! rms_px = 0.0
//! date = "2026-11-22"
//!
//! [intrinsics]
//! fx = 1400.0
//! fy = 1400.0
//! cx = 640.0
//! cy = 360.0
//!
//! [distortion]
//! k1 = 0.0
//! k2 = 0.0
//! p1 = 0.0
//! p2 = 0.0
//! k3 = 0.0
//! ```

use std::path::Path;

use super::model::{Calibration, MODEL_NAME};
use super::CalibError;

/// Loads and validates a calibration file.
///
/// # Errors
/// [`CalibError::Io`] if the file cannot be read, [`CalibError::Parse`] if it is not valid TOML
/// or lacks a field (the message names it), [`CalibError::InvalidField`] if a value is not
/// finite or out of range.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), stipple::calib::CalibError> {
/// let calib = stipple::calib::load(std::path::Path::new("calibration/synthetic.toml"))?;
/// assert_eq!(calib.px_per_mm, 20.0);
/// // A pixel of this distortion-free camera undistorts to itself; 2 mm at the skin is 40 px.
/// assert_eq!(calib.undistort_point(100.0, 200.0), (100.0, 200.0));
/// assert_eq!(calib.distance_mm((100.0, 200.0), (140.0, 200.0)), 2.0);
/// # Ok(())
/// # }
/// ```
pub fn load(path: &Path) -> Result<Calibration, CalibError> {
    let text = std::fs::read_to_string(path).map_err(|source| CalibError::Io {
        path: path.to_owned(),
        source,
    })?;
    let calib: Calibration = toml::from_str(&text).map_err(|err| CalibError::Parse {
        path: path.to_owned(),
        message: err.message().to_owned(),
    })?;
    validate(&calib).map_err(|(field, reason)| CalibError::InvalidField {
        path: path.to_owned(),
        field,
        reason,
    })?;
    Ok(calib)
}

/// Loads a calibration and checks that it was made for frames of `width` x `height`.
///
/// # Errors
/// As [`load`], plus [`CalibError::FileImageSizeMismatch`] when the sizes differ.
pub fn load_for_image(path: &Path, width: u32, height: u32) -> Result<Calibration, CalibError> {
    let calib = load(path)?;
    if (calib.image_width, calib.image_height) != (width, height) {
        return Err(CalibError::FileImageSizeMismatch {
            path: path.to_owned(),
            file: (calib.image_width, calib.image_height),
            frames: (width, height),
        });
    }
    Ok(calib)
}

/// Checks every field; returns the dotted name of the first bad one and why.
fn validate(c: &Calibration) -> Result<(), (String, String)> {
    let bad = |field: &str, reason: &str| Err((field.to_owned(), reason.to_owned()));
    if c.model != MODEL_NAME {
        return bad(
            "model",
            &format!(
                "unknown camera model {:?}, expected {MODEL_NAME:?}",
                c.model
            ),
        );
    }
    if c.image_width == 0 {
        return bad("image_width", "must be positive");
    }
    if c.image_height == 0 {
        return bad("image_height", "must be positive");
    }
    let k = &c.intrinsics;
    let d = &c.distortion;
    let finite = [
        ("px_per_mm", c.px_per_mm),
        ("rms_px", c.rms_px),
        ("intrinsics.fx", k.fx),
        ("intrinsics.fy", k.fy),
        ("intrinsics.cx", k.cx),
        ("intrinsics.cy", k.cy),
        ("distortion.k1", d.k1),
        ("distortion.k2", d.k2),
        ("distortion.p1", d.p1),
        ("distortion.p2", d.p2),
        ("distortion.k3", d.k3),
    ];
    for (field, value) in finite {
        if !value.is_finite() {
            return bad(field, &format!("must be a finite number, got {value}"));
        }
    }
    if let Err(why) = crate::limits::check_px_per_mm("the scale", c.px_per_mm) {
        return bad("px_per_mm", &why);
    }
    for (field, value) in [("intrinsics.fx", k.fx), ("intrinsics.fy", k.fy)] {
        if value <= 0.0 {
            return bad(field, &format!("must be positive, got {value}"));
        }
    }
    if !(0.0..=f64::from(c.image_width)).contains(&k.cx) {
        return bad(
            "intrinsics.cx",
            &format!("{} lies outside the {} px wide image", k.cx, c.image_width),
        );
    }
    if !(0.0..=f64::from(c.image_height)).contains(&k.cy) {
        return bad(
            "intrinsics.cy",
            &format!("{} lies outside the {} px high image", k.cy, c.image_height),
        );
    }
    if let Some(b) = &c.board {
        if !b.square_mm.is_finite() || b.square_mm <= 0.0 {
            return bad("board.square_mm", "must be a positive finite number");
        }
    }
    Ok(())
}

impl Calibration {
    /// Writes the calibration as TOML.
    ///
    /// # Errors
    /// [`CalibError::Io`] if the file cannot be written; [`CalibError::InvalidField`] if the
    /// calibration itself would not load back (e.g. a NaN).
    pub fn save(&self, path: &Path) -> Result<(), CalibError> {
        validate(self).map_err(|(field, reason)| CalibError::InvalidField {
            path: path.to_owned(),
            field,
            reason,
        })?;
        let text = toml::to_string_pretty(self).map_err(|err| CalibError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
        std::fs::write(path, text).map_err(|source| CalibError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    date_utc(secs)
}

/// The UTC date of a Unix time as `YYYY-MM-DD`, without a date crate: days since the epoch
/// converted with Howard Hinnant's `civil_from_days`.
pub fn date_utc(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_iso() {
        let d = today_utc();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
        assert_eq!(date_utc(0), "1970-01-01");
        assert_eq!(date_utc(1_700_000_000), "2023-11-14");
    }
}
