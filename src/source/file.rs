//! Loading one still image from disk, with clear errors for everything that can be wrong with it.

use std::path::{Path, PathBuf};

use image::{ImageReader, RgbImage};
use thiserror::Error;

use crate::frame::MAX_PIXELS;

/// Why an image file could not be loaded.
#[derive(Debug, Error)]
pub enum ImageLoadError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: the file is empty")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not an image format we read.
    #[error("{path}: not an image (unrecognised format)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The image header says it is larger than we accept.
    #[error("{path}: the image is {width}x{height}, over the limit of {limit} pixels")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// The image has no pixels.
    #[error("{path}: the image has no pixels ({width}x{height})")]
    NoPixels {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// Decoding failed: corrupt or truncated data.
    #[error("{path}: corrupt or truncated image: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
}

/// Loads an image file as 8-bit RGB, checking its size from the header before decoding.
///
/// # Errors
/// A missing or unreadable file, an empty file, an unknown format, an image over
/// [`MAX_PIXELS`] or without pixels, corrupt or truncated data: each names the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    let io = |source| ImageLoadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a directory",
        )));
    }
    if meta.len() == 0 {
        return Err(ImageLoadError::EmptyFile {
            path: path.to_owned(),
        });
    }
    // Judge the format by the bytes, never by the file name.
    let mut head = [0u8; 32];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = std::io::Read::read(&mut file, &mut head).map_err(io)?;
    if image::guess_format(&head[..n]).is_err() {
        return Err(ImageLoadError::UnknownFormat {
            path: path.to_owned(),
        });
    }
    let reader = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?;
    let decode = |source| ImageLoadError::Decode {
        path: path.to_owned(),
        source,
    };
    let (width, height) = reader.into_dimensions().map_err(decode)?;
    if width == 0 || height == 0 {
        return Err(ImageLoadError::NoPixels {
            path: path.to_owned(),
            width,
            height,
        });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageLoadError::TooLarge {
            path: path.to_owned(),
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    let mut reader = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    Ok(reader.decode().map_err(decode)?.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_problem_with_the_file_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("missing.png");
        let err = load_rgb(&missing).unwrap_err().to_string();
        assert!(
            err.contains("missing.png") && err.contains("cannot read"),
            "{err}"
        );

        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"")?;
        let err = load_rgb(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.png") && err.contains("empty"), "{err}");

        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"hello, this is not an image at all")?;
        let err = load_rgb(&text).unwrap_err().to_string();
        assert!(
            err.contains("notes.png") && err.contains("unrecognised"),
            "{err}"
        );

        let good = dir.path().join("good.png");
        RgbImage::from_pixel(40, 30, image::Rgb([200, 150, 120])).save(&good)?;
        let bytes = std::fs::read(&good)?;
        let truncated = dir.path().join("truncated.png");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
        let err = load_rgb(&truncated).unwrap_err().to_string();
        assert!(
            err.contains("truncated.png") && err.contains("corrupt or truncated"),
            "{err}"
        );

        let img = load_rgb(&good)?;
        assert_eq!(img.dimensions(), (40, 30));
        Ok(())
    }
}
