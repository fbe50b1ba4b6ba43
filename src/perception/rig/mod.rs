//! Rig-view perception: dots of a few pixels on a working field of several centimetres
//! (12-28 px/mm). [`blobs`] finds and measures candidate dots classically, [`kinds`] settles
//! follicle or pigment per frame, [`fuse`] combines them with the dot model's mask;
//! [`RigDetector`] is the one entry point.

pub mod blobs;
pub mod fuse;
pub mod kinds;
mod region;

use image::RgbImage;

pub use blobs::{BlobConfig, BlobDetector};
pub use fuse::{FuseConfig, Fuser};
pub use region::Region;

use super::segment::{SegMask, SegmentError, Segmenter, CLASSES};
use super::skin_mask::{SkinMask, SkinMasker};
use crate::frame::Detection;

/// Rig-view detection: the classical blobs, fused with the dot model when there is one. Owns
/// every buffer, so frame after frame allocates nothing new.
#[derive(Debug)]
pub struct RigDetector {
    px_per_mm: f64,
    blobs: BlobDetector,
    segmenter: Option<Segmenter>,
    fuse: FuseConfig,
    fuser: Fuser,
    /// The blobs of the current frame, before fusion.
    candidates: Vec<Detection>,
    /// Where the skin is in the current frame; no dot is reported off it.
    skin: SkinMasker,
}

impl RigDetector {
    /// A detector for frames at `px_per_mm`, fused with `segmenter` (a dot model; the caller
    /// checked its kind) when there is one.
    pub fn new(px_per_mm: f64, segmenter: Option<Segmenter>, fuse: FuseConfig) -> Self {
        Self {
            px_per_mm,
            blobs: BlobDetector::new(BlobConfig { px_per_mm }),
            segmenter,
            fuse,
            fuser: Fuser::default(),
            candidates: Vec::new(),
            skin: SkinMasker::new(),
        }
    }

    /// The scale the detector works at.
    pub fn px_per_mm(&self) -> f64 {
        self.px_per_mm
    }

    /// Replaces the fusion settings.
    pub fn set_fuse(&mut self, fuse: FuseConfig) {
        self.fuse = fuse;
    }

    /// The model, when one takes part.
    pub fn segmenter(&self) -> Option<&Segmenter> {
        self.segmenter.as_ref()
    }

    /// The model, handed back.
    pub fn into_segmenter(self) -> Option<Segmenter> {
        self.segmenter
    }

    /// Runs the model alone on `image` (when there is one) and returns its mask.
    ///
    /// # Errors
    /// When the model fails to run ([`SegmentError`]).
    pub fn segment(&mut self, image: &RgbImage) -> Result<Option<&SegMask>, SegmentError> {
        match &mut self.segmenter {
            Some(segmenter) => Ok(Some(segmenter.segment(image, self.px_per_mm)?)),
            None => Ok(None),
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
            None => self.blobs.detect_into(image, out),
            Some(segmenter) => {
                let mask = segmenter.segment(image, self.px_per_mm)?;
                self.blobs
                    .detect_with_model_into(image, Some(mask), &mut self.candidates);
                self.fuser
                    .fuse_into(&self.candidates, mask, self.px_per_mm, &self.fuse, out);
            }
        }
        self.keep_on_skin(image, out);
        Ok(())
    }

    /// The classical detector alone on `image`, into `out` (cleared first).
    pub fn detect_classical_into(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        self.blobs.detect_into(image, out);
        self.keep_on_skin(image, out);
    }

    /// The skin mask of the last frame detected.
    pub fn skin_mask(&self) -> &SkinMask {
        self.skin.mask()
    }

    /// Computes the skin mask of `image` without detecting (for dots given from elsewhere).
    pub fn compute_skin_mask(&mut self, image: &RgbImage) -> &SkinMask {
        self.skin.compute(image, self.px_per_mm)
    }

    /// Computes the frame's skin mask and drops the dots whose centre is off the skin.
    fn keep_on_skin(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        let mask = self.skin.compute(image, self.px_per_mm);
        out.retain(|d| mask.is_skin(d.x, d.y));
    }

    /// Runs the blobs on `image` and fuses them with a dot mask computed earlier (by the
    /// inference thread on a recent frame); a mask of another kind is not used.
    pub fn detect_with_mask(&mut self, image: &RgbImage, mask: &SegMask, out: &mut Vec<Detection>) {
        self.blobs.detect_into(image, &mut self.candidates);
        if mask.classes == CLASSES.len() {
            self.fuser
                .fuse_into(&self.candidates, mask, self.px_per_mm, &self.fuse, out);
        } else {
            out.clear();
            out.extend_from_slice(&self.candidates);
        }
        self.keep_on_skin(image, out);
    }
}
