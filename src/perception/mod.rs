//! Perception: what is already on the skin, by imaging view.
//!
//! - [`rig`]: dots of a few pixels in the artist's rig view (classical blobs, the per-frame kind
//!   mixture, fusion with the dot model).
//! - [`dermoscope`]: follicle openings where hair shafts are resolved (field preparation, the
//!   shaft tracer, pits, fusion with the openings model).
//! - [`segment`] runs either learned model through ONNX Runtime; [`filter`] holds the image
//!   kernels both views share, [`trees`] the evaluation of the tree ensembles both views' fitting
//!   scripts write.
//!
//! [`Detector`] is what callers use: an enum over the two views' detectors, chosen once from
//! the [`View`].

pub mod dermoscope;
pub mod filter;
pub mod rig;
pub mod segment;
pub mod skin_mask;
pub mod trees;

use image::RgbImage;
use thiserror::Error;

pub use dermoscope::{DermoscopeDetector, OpeningsConfig, OpeningsFuser};
pub use rig::{BlobConfig, BlobDetector, FuseConfig, Fuser, RigDetector};
pub use segment::{ModelKind, OnnxSegmenter, SegMask, SegmentConfig, SegmentError, Segmenter};
pub use skin_mask::{SkinMask, SkinMasker};

use crate::frame::{Detection, View, MAX_PIXELS};

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

/// Checks that a model of `kind` suits frames of `view` (at `px_per_mm`, for the message).
///
/// # Errors
/// [`PerceptionError::ModelScale`] when it does not.
pub fn check_model_kind(
    kind: ModelKind,
    view: View,
    px_per_mm: f64,
) -> Result<(), PerceptionError> {
    if kind == ModelKind::for_view(view) {
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
/// A non-positive scale, an empty image or one over [`MAX_PIXELS`].
pub fn detect(image: &RgbImage, px_per_mm: f64) -> Result<Vec<Detection>, PerceptionError> {
    check_input(image, px_per_mm)?;
    let mut out = Vec::new();
    Detector::classical(px_per_mm).detect_classical_into(image, &mut out);
    Ok(out)
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
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(PerceptionError::TooLarge {
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    Ok(())
}

/// The detector the CLI and pipeline use: the view's classical detector, fused with the view's
/// model when there is one. Owns every buffer, so frame after frame allocates nothing new.
#[derive(Debug)]
pub enum Detector {
    /// Dots in the rig view.
    Rig(Box<RigDetector>),
    /// Follicle openings in the dermoscope view.
    Dermoscope(DermoscopeDetector),
}

impl Detector {
    /// The classical detector alone (`--no-model`) for frames of `view` at `px_per_mm`.
    pub fn classical_in(view: View, px_per_mm: f64) -> Self {
        match view {
            View::Rig => Self::Rig(Box::new(RigDetector::new(
                px_per_mm,
                None,
                FuseConfig::default(),
            ))),
            View::Dermoscope => Self::Dermoscope(DermoscopeDetector::new(px_per_mm, None)),
        }
    }

    /// The classical detector alone, in the view the scale implies ([`View::for_scale`]).
    pub fn classical(px_per_mm: f64) -> Self {
        Self::classical_in(View::for_scale(px_per_mm), px_per_mm)
    }

    /// The view's classical detector fused with `segmenter` (a dot model in the rig view, an
    /// openings model in the dermoscope view); `fuse` configures the rig fusion.
    ///
    /// # Errors
    /// [`PerceptionError::ModelScale`] when the model's kind does not suit the view.
    pub fn fused_in(
        view: View,
        px_per_mm: f64,
        segmenter: Segmenter,
        fuse: FuseConfig,
    ) -> Result<Self, PerceptionError> {
        check_model_kind(segmenter.contract().kind, view, px_per_mm)?;
        Ok(match view {
            View::Rig => Self::Rig(Box::new(RigDetector::new(px_per_mm, Some(segmenter), fuse))),
            View::Dermoscope => {
                Self::Dermoscope(DermoscopeDetector::new(px_per_mm, Some(segmenter)))
            }
        })
    }

    /// [`Detector::fused_in`] the view the scale implies ([`View::for_scale`]).
    ///
    /// # Errors
    /// See [`Detector::fused_in`].
    pub fn fused(
        px_per_mm: f64,
        segmenter: Segmenter,
        fuse: FuseConfig,
    ) -> Result<Self, PerceptionError> {
        Self::fused_in(View::for_scale(px_per_mm), px_per_mm, segmenter, fuse)
    }

    /// The view this detector serves.
    pub fn view(&self) -> View {
        match self {
            Self::Rig(_) => View::Rig,
            Self::Dermoscope(_) => View::Dermoscope,
        }
    }

    /// The scale the detector works at.
    pub fn px_per_mm(&self) -> f64 {
        match self {
            Self::Rig(d) => d.px_per_mm(),
            Self::Dermoscope(d) => d.px_per_mm(),
        }
    }

    /// Replaces the dermoscope fusion settings (for fitting them on check seeds); the rig view
    /// has none.
    pub fn set_openings(&mut self, openings: OpeningsConfig) {
        if let Self::Dermoscope(d) = self {
            d.set_openings(openings);
        }
    }

    /// Replaces the rig fusion settings (the live pipeline fuses with masks of slightly older
    /// frames and so does not let the mask add dots on its own); the dermoscope view has none.
    pub fn set_fuse(&mut self, fuse: FuseConfig) {
        if let Self::Rig(d) = self {
            d.set_fuse(fuse);
        }
    }

    /// Whether the rig view's skin mask draws its edge finer than its colour cells (the
    /// default; see [`SkinMasker::set_fine_edge`]); the dermoscope view has no skin mask.
    pub fn set_fine_skin_edge(&mut self, fine: bool) {
        if let Self::Rig(d) = self {
            d.set_fine_skin_edge(fine);
        }
    }

    /// Fuses the bundled skin model with the rig view's skin mask ([`SkinMasker::set_model`]);
    /// the dermoscope view has no skin mask.
    ///
    /// # Errors
    /// When the bundled skin model cannot be opened ([`SegmentError`]).
    pub fn use_bundled_skin_model(&mut self) -> Result<(), SegmentError> {
        if let Self::Rig(d) = self {
            d.set_skin_model(Some(OnnxSegmenter::bundled_skin()?))?;
        }
        Ok(())
    }

    /// Whether the rig view's classical candidates include spots cooler than their skin (the
    /// default; see [`rig::RigDetector::set_colour_contrast`]); the dermoscope view has no such
    /// candidates.
    pub fn set_colour_contrast(&mut self, on: bool) {
        if let Self::Rig(d) = self {
            d.set_colour_contrast(on);
        }
    }

    /// The rig view measures its frames' noise once every `frames` frames, for live frames of
    /// one scene ([`rig::RigDetector::set_noise_every`]); the dermoscope view is unchanged.
    pub fn set_noise_every(&mut self, frames: u32) {
        if let Self::Rig(d) = self {
            d.set_noise_every(frames);
        }
    }

    /// The model, handed back (to build a detector for another scale without loading it again).
    pub fn into_segmenter(self) -> Option<Segmenter> {
        match self {
            Self::Rig(d) => (*d).into_segmenter(),
            Self::Dermoscope(d) => d.into_segmenter(),
        }
    }

    fn segmenter(&self) -> Option<&Segmenter> {
        match self {
            Self::Rig(d) => d.segmenter(),
            Self::Dermoscope(d) => d.segmenter(),
        }
    }

    /// Whether a model takes part.
    pub fn uses_model(&self) -> bool {
        self.segmenter().is_some()
    }

    /// The mask of the last frame, when a model takes part.
    pub fn mask(&self) -> Option<&SegMask> {
        match self.segmenter() {
            Some(Segmenter::Onnx(s)) => Some(s.mask()),
            None => None,
        }
    }

    /// The skin mask of the last frame detected, in the rig view (where the camera sees more
    /// than skin); `None` in the dermoscope view, whose lens touches the skin.
    pub fn skin_mask(&self) -> Option<&SkinMask> {
        match self {
            Self::Rig(d) => Some(d.skin_mask()),
            Self::Dermoscope(_) => None,
        }
    }

    /// Computes the skin mask of `image` without detecting (rig view; `None` in the
    /// dermoscope view).
    pub fn compute_skin_mask(&mut self, image: &RgbImage) -> Option<&SkinMask> {
        match self {
            Self::Rig(d) => Some(d.compute_skin_mask(image)),
            Self::Dermoscope(_) => None,
        }
    }

    /// Detects the dots of one frame into `out` (cleared first), in pixels of `image`; in the
    /// rig view only those on the skin ([`Detector::skin_mask`]).
    ///
    /// # Errors
    /// Only when the model fails to run ([`SegmentError`]); the classical path cannot fail.
    pub fn detect_into(
        &mut self,
        image: &RgbImage,
        out: &mut Vec<Detection>,
    ) -> Result<(), SegmentError> {
        match self {
            Self::Rig(d) => d.detect_into(image, out),
            Self::Dermoscope(d) => d.detect_into(image, out),
        }
    }

    /// Runs the model alone on `image` (when there is one) and returns its mask: for callers that
    /// have the dots already but want what the model sees.
    ///
    /// # Errors
    /// When the model fails to run ([`SegmentError`]).
    pub fn segment(&mut self, image: &RgbImage) -> Result<Option<&SegMask>, SegmentError> {
        match self {
            Self::Rig(d) => d.segment(image),
            Self::Dermoscope(d) => d.segment(image),
        }
    }

    /// The classical detector alone on `image` (no model), into `out` (cleared first).
    pub fn detect_classical_into(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        match self {
            Self::Rig(d) => d.detect_classical_into(image, out),
            Self::Dermoscope(d) => d.detect_classical_into(image, out),
        }
    }

    /// Runs the classical detector on `image` and fuses it with a mask computed earlier, e.g. by
    /// the inference thread on a recent frame: the live pipeline runs the model at its own pace
    /// and the classical detector on every frame, so the model's cost does not cap the frame
    /// rate. A mask of the wrong kind for the view is not used: the classical dots alone are
    /// returned. `skin`: the skin model's view from the same thread (rig view), fused into the
    /// skin mask.
    pub fn detect_with_mask(
        &mut self,
        image: &RgbImage,
        mask: &SegMask,
        skin: Option<&SegMask>,
        out: &mut Vec<Detection>,
    ) {
        match self {
            Self::Rig(d) => d.detect_with_mask(image, mask, skin, out),
            Self::Dermoscope(d) => d.detect_with_mask(image, mask, out),
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
