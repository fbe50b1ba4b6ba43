//! Dermoscope-view perception: follicular units at 60-400 px/mm, where hair shafts are
//! resolved. [`field`] prepares the field (text bars), [`shafts`] traces hair shafts to their
//! openings (with [`pits`] for vellus openings and healed pigment dots), [`openings`] fuses them
//! with the openings model; [`DermoscopeDetector`] is the one entry point. [`generated`] holds
//! the tree ensembles the fitting scripts write, evaluated by [`super::trees`].

pub mod field;
pub mod generated;
pub mod openings;
pub mod pits;
pub mod shafts;

use image::RgbImage;

pub use openings::{OpeningsConfig, OpeningsFuser};

use super::segment::{SegMask, SegmentError, Segmenter, OPENING_CLASSES, OPENING_HAIRS_CLASSES};
use crate::frame::Detection;

/// Dermoscope-view detection: traced openings, pits and pigment, fused with the openings model
/// when there is one.
#[derive(Debug)]
pub struct DermoscopeDetector {
    px_per_mm: f64,
    segmenter: Option<Segmenter>,
    fuser: OpeningsFuser,
    /// The traced openings of the current frame, before fusion.
    candidates: Vec<Detection>,
}

impl DermoscopeDetector {
    /// A detector for frames at `px_per_mm`, fused with `segmenter` (an openings model; the
    /// caller checked its kind) when there is one.
    pub fn new(px_per_mm: f64, segmenter: Option<Segmenter>) -> Self {
        Self {
            px_per_mm,
            segmenter,
            fuser: OpeningsFuser::default(),
            candidates: Vec::new(),
        }
    }

    /// The scale the detector works at.
    pub fn px_per_mm(&self) -> f64 {
        self.px_per_mm
    }

    /// Replaces the fusion settings (for fitting them on check seeds).
    pub fn set_openings(&mut self, openings: OpeningsConfig) {
        self.fuser.config = openings;
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

    /// Detects the units of one frame into `out` (cleared first), in pixels of `image`.
    ///
    /// # Errors
    /// Only when the model fails to run ([`SegmentError`]); the traced path cannot fail.
    pub fn detect_into(
        &mut self,
        image: &RgbImage,
        out: &mut Vec<Detection>,
    ) -> Result<(), SegmentError> {
        match &mut self.segmenter {
            None => {
                self.detect_classical_into(image, out);
                Ok(())
            }
            Some(segmenter) => {
                self.candidates.clear();
                self.candidates
                    .extend(shafts::detect_openings(image, self.px_per_mm));
                let mask = segmenter.segment(image, self.px_per_mm)?;
                self.fuser
                    .fuse_into(&self.candidates, mask, image, self.px_per_mm, out);
                Ok(())
            }
        }
    }

    /// The traced openings alone (no model), into `out` (cleared first).
    pub fn detect_classical_into(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        out.clear();
        out.extend(shafts::detect_openings(image, self.px_per_mm));
    }

    /// Traces the openings of `image` and fuses them with an openings mask computed earlier; a
    /// mask of another kind is not used.
    pub fn detect_with_mask(&mut self, image: &RgbImage, mask: &SegMask, out: &mut Vec<Detection>) {
        self.candidates.clear();
        self.candidates
            .extend(shafts::detect_openings(image, self.px_per_mm));
        if mask.classes == OPENING_CLASSES.len() || mask.classes == OPENING_HAIRS_CLASSES.len() {
            self.fuser
                .fuse_into(&self.candidates, mask, image, self.px_per_mm, out);
        } else {
            out.clear();
            out.extend_from_slice(&self.candidates);
        }
    }
}
