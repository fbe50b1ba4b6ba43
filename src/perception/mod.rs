//! Perception: what is already on the skin.
//!
//! `blobs` is the classical, scale-aware detector (image + our own kernels in `filter`);
//! `shafts` finds follicle openings in dermoscope frames; `segment` runs the learned
//! segmentation model through ONNX Runtime; `fuse` combines it with the blobs; [`Detector`] is
//! what callers use (classical only, or fused); `score` compares detections with the renderer's
//! ground truth.

pub mod blobs;
pub mod filter;
pub mod fuse;
pub mod kinds;
pub mod openings;
pub mod pits;
pub mod pits_model;
pub mod roots_model;
pub mod score;
pub mod segment;
pub mod shafts;
pub mod trees;

use image::RgbImage;
use thiserror::Error;

pub use blobs::{BlobConfig, BlobDetector};
pub use fuse::{FuseConfig, Fuser};
pub use openings::{OpeningsConfig, OpeningsFuser};
pub use segment::{ModelKind, OnnxSegmenter, SegMask, SegmentConfig, SegmentError, Segmenter};

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
    /// The model finds something else than frames at this scale need.
    #[error("the model is {}, but the frames are at {px_per_mm} px/mm", kind.describe())]
    ModelScale {
        /// What the model finds.
        kind: ModelKind,
        /// The frames' scale.
        px_per_mm: f64,
    },
}

/// The model kind frames at `px_per_mm` need.
pub fn model_kind_for(px_per_mm: f64) -> ModelKind {
    if px_per_mm >= blobs::DERMOSCOPE_MIN_PX_PER_MM {
        ModelKind::Openings
    } else {
        ModelKind::Dots
    }
}

/// Checks that a model of `kind` suits frames at `px_per_mm`.
///
/// # Errors
/// [`PerceptionError::ModelScale`] when it does not.
pub fn check_model_kind(kind: ModelKind, px_per_mm: f64) -> Result<(), PerceptionError> {
    if kind == model_kind_for(px_per_mm) {
        Ok(())
    } else {
        Err(PerceptionError::ModelScale { kind, px_per_mm })
    }
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

/// The dot detector the CLI and pipeline use: the classical blobs, fused with the segmentation
/// model when there is one. Owns every buffer, so frame after frame allocates nothing new.
#[derive(Debug)]
pub struct Detector {
    px_per_mm: f64,
    blobs: BlobDetector,
    segmenter: Option<Segmenter>,
    fuse: FuseConfig,
    fuser: Fuser,
    openings_fuser: OpeningsFuser,
    /// The blobs of the current frame, before fusion.
    candidates: Vec<Detection>,
}

impl Detector {
    /// The classical detector alone (`--no-model`).
    pub fn classical(px_per_mm: f64) -> Self {
        Self {
            px_per_mm,
            blobs: BlobDetector::new(BlobConfig { px_per_mm }),
            segmenter: None,
            fuse: FuseConfig::default(),
            fuser: Fuser::default(),
            openings_fuser: OpeningsFuser::default(),
            candidates: Vec::new(),
        }
    }

    /// The classical detector fused with `segmenter`: a dot model in rig frames, an openings
    /// model in dermoscope frames ([`model_kind_for`]).
    ///
    /// # Errors
    /// [`PerceptionError::ModelScale`] when the model's kind does not suit `px_per_mm`.
    pub fn fused(
        px_per_mm: f64,
        segmenter: Segmenter,
        fuse: FuseConfig,
    ) -> Result<Self, PerceptionError> {
        check_model_kind(segmenter.contract().kind, px_per_mm)?;
        Ok(Self {
            segmenter: Some(segmenter),
            fuse,
            ..Self::classical(px_per_mm)
        })
    }

    /// Replaces the dermoscope fusion settings (for fitting them on check seeds).
    pub fn set_openings(&mut self, openings: OpeningsConfig) {
        self.openings_fuser.config = openings;
    }

    /// Replaces the fusion settings (the live pipeline fuses with masks of slightly older
    /// frames and so does not let the mask add dots on its own).
    pub fn set_fuse(&mut self, fuse: FuseConfig) {
        self.fuse = fuse;
    }

    /// The model, handed back (to build a detector for another scale without loading it again).
    pub fn into_segmenter(self) -> Option<Segmenter> {
        self.segmenter
    }

    /// Whether a model takes part.
    pub fn uses_model(&self) -> bool {
        self.segmenter.is_some()
    }

    /// The mask of the last frame, when a model takes part.
    pub fn mask(&self) -> Option<&SegMask> {
        match &self.segmenter {
            Some(Segmenter::Onnx(s)) => Some(s.mask()),
            None => None,
        }
    }

    /// Detects the dots of one frame into `out` (cleared first), in pixels of `image`.
    ///
    /// # Errors
    /// Only when the model fails to run ([`SegmentError`]); the classical path cannot fail.
    pub fn detect_into(
        &mut self,
        image: &RgbImage,
        out: &mut Vec<Detection>,
    ) -> Result<(), SegmentError> {
        match &mut self.segmenter {
            None => {
                self.blobs.detect_into(image, out);
                Ok(())
            }
            // Dermoscope frames: traced openings, pits and pigment, fused with the openings
            // model (`Detector::fused` made sure that is what the model is).
            Some(segmenter) if self.px_per_mm >= blobs::DERMOSCOPE_MIN_PX_PER_MM => {
                self.blobs.detect_into(image, &mut self.candidates);
                let mask = segmenter.segment(image, self.px_per_mm)?;
                self.openings_fuser
                    .fuse_into(&self.candidates, mask, self.px_per_mm, out);
                Ok(())
            }
            Some(segmenter) => {
                let mask = segmenter.segment(image, self.px_per_mm)?;
                self.blobs
                    .detect_with_model_into(image, Some(mask), &mut self.candidates);
                self.fuser
                    .fuse_into(&self.candidates, mask, self.px_per_mm, &self.fuse, out);
                Ok(())
            }
        }
    }

    /// Runs the model alone on `image` (when there is one) and returns its mask: for callers that
    /// have the dots already but want what the model sees.
    ///
    /// # Errors
    /// When the model fails to run ([`SegmentError`]).
    pub fn segment(&mut self, image: &RgbImage) -> Result<Option<&SegMask>, SegmentError> {
        match &mut self.segmenter {
            Some(segmenter) => Ok(Some(segmenter.segment(image, self.px_per_mm)?)),
            None => Ok(None),
        }
    }

    /// The classical detector alone on `image` (no model), into `out` (cleared first).
    pub fn detect_classical_into(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        self.blobs.detect_into(image, out);
    }

    /// Runs the blobs on `image` and fuses them with a mask computed earlier, e.g. by the
    /// inference thread on a recent frame: the live pipeline runs the model at its own pace and
    /// the blobs on every frame, so the model's cost does not cap the frame rate.
    /// A mask of the wrong kind for the scale (a 5-class dot mask in a dermoscope frame, say)
    /// is not used: the blobs alone are returned.
    pub fn detect_with_mask(&mut self, image: &RgbImage, mask: &SegMask, out: &mut Vec<Detection>) {
        self.blobs.detect_into(image, &mut self.candidates);
        let dermoscope = self.px_per_mm >= blobs::DERMOSCOPE_MIN_PX_PER_MM;
        let openings_mask = mask.classes == segment::OPENING_CLASSES.len()
            || mask.classes == segment::OPENING_HAIRS_CLASSES.len();
        if dermoscope && openings_mask {
            self.openings_fuser
                .fuse_into(&self.candidates, mask, self.px_per_mm, out);
        } else if !dermoscope && mask.classes == segment::CLASSES.len() {
            self.fuser
                .fuse_into(&self.candidates, mask, self.px_per_mm, &self.fuse, out);
        } else {
            out.clear();
            out.extend_from_slice(&self.candidates);
        }
    }

    /// Like [`Detector::detect_into`], into a new vector.
    ///
    /// # Errors
    /// See [`Detector::detect_into`].
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, SegmentError> {
        let mut out = Vec::new();
        self.detect_into(image, &mut out)?;
        Ok(out)
    }
}
