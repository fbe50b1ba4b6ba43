//! Perception: what is already on the skin.
//!
//! `blobs` is the classical, scale-aware detector (image + our own kernels in `filter`);
//! `score` compares detections with the renderer's ground truth.

pub mod blobs;
pub mod filter;
pub mod score;
pub mod segment;

use image::RgbImage;
use thiserror::Error;

pub use blobs::{BlobConfig, BlobDetector};

use crate::frame::Detection;

/// Why perception could not run on a frame.
#[derive(Debug, Error)]
pub enum PerceptionError {
    /// The scale is not a positive finite number.
    #[error("px/mm must be a positive number, got {0}")]
    BadScale(f64),
    /// The image is empty.
    #[error("the image is empty ({width}x{height})")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The image is larger than the detector accepts.
    #[error("the image is {width}x{height}, over the limit of {limit} pixels")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
}

/// Detects the dots of one image at `px_per_mm` with the classical detector.
///
/// For repeated frames, keep a [`BlobDetector`] instead: it reuses its buffers.
///
/// # Errors
/// A non-positive scale, an empty image or one over [`blobs::MAX_PIXELS`].
pub fn detect(image: &RgbImage, px_per_mm: f64) -> Result<Vec<Detection>, PerceptionError> {
    check_input(image, px_per_mm)?;
    Ok(BlobDetector::new(BlobConfig { px_per_mm }).detect(image))
}

/// Checks that an image and scale can go through perception.
///
/// # Errors
/// See [`detect`].
pub fn check_input(image: &RgbImage, px_per_mm: f64) -> Result<(), PerceptionError> {
    if !(px_per_mm.is_finite() && px_per_mm > 0.0) {
        return Err(PerceptionError::BadScale(px_per_mm));
    }
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(PerceptionError::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > blobs::MAX_PIXELS {
        return Err(PerceptionError::TooLarge {
            width,
            height,
            limit: blobs::MAX_PIXELS,
        });
    }
    Ok(())
}
