//! Bounds on every number and size an input can set, so that no flag, file or request can make
//! a command allocate without limit, spin for minutes or overflow (issue 22). Each bound is
//! checked where the value enters, and the error names the flag, file or field and the range.

use std::ops::RangeInclusive;

/// Working scale at the skin, pixels per millimetre. Below 3 a dot (0.3-1 mm) is a pixel or
/// two; above 1000 even a macro lens is out of range, and the model path, which resamples the
/// frame to its own scale, would grow the picture without bound.
pub const PX_PER_MM: RangeInclusive<f64> = 3.0..=1000.0;

/// ONNX Runtime intra-op threads (`--model-threads`).
pub const MODEL_THREADS: RangeInclusive<usize> = 1..=64;

/// Frame sides the live sources deliver (`serve --width/--height`): UVC cameras top out at
/// 4K (4096 px), the synthetic renderer is bounded the same way.
pub const FRAME_SIDE_PX: RangeInclusive<u32> = 64..=4096;

/// Decoded pixels an input image may have, checked from its header before decoding: a 24 MP
/// camera (6000x4000) fits; a decompression bomb that declares more is refused unread.
pub const MAX_IMAGE_PIXELS: u64 = 25_000_000;

/// Bytes the image decoder may allocate (a 16-bit RGBA decode of [`MAX_IMAGE_PIXELS`]).
pub const MAX_DECODE_BYTES: u64 = MAX_IMAGE_PIXELS * 8;

/// Checks a scale; `what` names where it came from (`--px-per-mm`, `calibration x.toml:
/// px_per_mm`).
///
/// # Errors
/// A message naming `what`, the value and [`PX_PER_MM`].
pub fn check_px_per_mm(what: &str, px_per_mm: f64) -> Result<(), String> {
    if px_per_mm.is_finite() && PX_PER_MM.contains(&px_per_mm) {
        Ok(())
    } else {
        Err(format!(
            "{what} must be between {} and {} px/mm, got {px_per_mm}",
            PX_PER_MM.start(),
            PX_PER_MM.end()
        ))
    }
}

/// `clap` value parser for `--model-threads`.
///
/// # Errors
/// Not a number, or outside [`MODEL_THREADS`].
pub fn parse_model_threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if MODEL_THREADS.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "must be between {} and {}, got {n}",
            MODEL_THREADS.start(),
            MODEL_THREADS.end()
        ))
    }
}

/// Longest name of a client or artist, characters.
pub const PERSON_NAME_MAX_CHARS: usize = 80;

/// A client's or artist's name as given (`what` names the flag or field in the message):
/// trimmed, not empty, at most [`PERSON_NAME_MAX_CHARS`] characters, no control characters.
///
/// # Errors
/// What is wrong with it, naming `what`.
pub fn person_name(what: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    let chars = name.chars().count();
    if chars > PERSON_NAME_MAX_CHARS {
        return Err(format!(
            "{what} is {chars} characters long: at most {PERSON_NAME_MAX_CHARS}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{what} must not hold control characters"));
    }
    Ok(name.to_owned())
}

/// Whether `name` is acceptable as the name of a file saved from the page into its folder:
/// letters, digits, `-`, `_` and `.`, not starting with a dot, ending in `.toml` (no path, so it
/// cannot leave the folder). Calibration mode and the design save share this rule.
pub fn is_safe_toml_name(name: &str) -> bool {
    name.ends_with(".toml")
        && !name.starts_with('.')
        && name.len() > ".toml".len()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_names_are_trimmed_bounded_and_printable() {
        assert_eq!(
            person_name("--client", "  J. Doe ").as_deref(),
            Ok("J. Doe")
        );
        for bad in ["", "   ", "a\u{7}b"] {
            let err = person_name("--client", bad).expect_err(bad);
            assert!(err.contains("--client"), "{err}");
        }
        let long = "x".repeat(PERSON_NAME_MAX_CHARS + 1);
        let err = person_name("artist", &long).expect_err("too long");
        assert!(
            err.contains("artist") && err.contains("81 characters"),
            "{err}"
        );
        assert!(person_name("artist", &"é".repeat(PERSON_NAME_MAX_CHARS)).is_ok());
    }

    #[test]
    fn px_per_mm_bounds_name_the_range() {
        assert!(check_px_per_mm("--px-per-mm", 3.0).is_ok());
        assert!(check_px_per_mm("--px-per-mm", 1000.0).is_ok());
        for bad in [0.1, 2.99, 1000.5, f64::NAN, f64::INFINITY, -5.0, 1e-9] {
            let err = check_px_per_mm("--px-per-mm", bad).expect_err("refused");
            assert!(
                err.contains("--px-per-mm") && err.contains("between 3 and 1000"),
                "{err}"
            );
        }
        assert!(parse_model_threads("100000").is_err());
        assert!(parse_model_threads("0").is_err());
        assert_eq!(parse_model_threads("4"), Ok(4));
    }
}
