//! Rig-view perception: dots of a few pixels on a working field of several centimetres
//! (12-28 px/mm). [`blobs`] finds and measures candidate dots classically, [`kinds`] settles
//! follicle or pigment per frame, [`fuse`] combines them with the dot model's mask;
//! [`RigDetector`] is the one entry point.

pub mod blobs;
pub mod fuse;
pub mod generated;
pub mod kinds;
mod region;

use image::RgbImage;

pub use blobs::{BlobConfig, BlobDetector, PeakGate};
pub use fuse::{FuseConfig, Fuser};
pub use region::Region;

use super::segment::{OnnxSegmenter, SegMask, SegmentError, Segmenter, CLASSES};
use super::skin_mask::{SkinMask, SkinMasker};
use crate::frame::Detection;

/// How far from the skin mask's edge a dot may sit in a not-skin cell and still be checked by
/// the colour of its ring (mm): about two mask cells.
const SKIN_EDGE_REACH_MM: f64 = 0.5;
/// Largest CIELAB difference between a dot's ring and the nearby skin for the dot to be on
/// skin at the mask's edge. Chosen on the development chair seeds 7000-7063 among 9, 6 and no
/// ring check (detections on what is not skin 0.76%, 0.64%, 0.55%; F1 on the skin 0.946,
/// 0.946, 0.943) with the colour-contrast detector; 9 was chosen before it on 7000-7031.
const SKIN_RING_MAX_DELTA_E: f32 = 6.0;

/// How far past the skin mask a peak is still measured (mm): the edge reach plus a dot's radius,
/// since a dot's centre can lie that far from its darkness peak.
const PEAK_GATE_REACH_MM: f64 = SKIN_EDGE_REACH_MM + 0.3;

/// The peak gate of a frame whose skin mask `skin` has computed; none when it is all skin.
fn gate(skin: &SkinMasker, px_per_mm: f64) -> Option<PeakGate<'_>> {
    (skin.mask().fraction() < 1.0).then(|| PeakGate {
        skin: skin.mask(),
        reach_px: PEAK_GATE_REACH_MM * px_per_mm,
    })
}

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

    /// Whether the skin mask draws its edge finer than its colour cells
    /// ([`SkinMasker::set_fine_edge`]).
    pub fn set_fine_skin_edge(&mut self, fine: bool) {
        self.skin.set_fine_edge(fine);
    }

    /// Fuses the skin model `model` with the classical skin mask ([`SkinMasker::set_model`]).
    ///
    /// # Errors
    /// A model that is not a skin model.
    pub fn set_skin_model(&mut self, model: Option<OnnxSegmenter>) -> Result<(), SegmentError> {
        self.skin.set_model(model)
    }

    /// Whether a spot cooler than its skin is a candidate ([`BlobDetector::set_colour_contrast`]).
    pub fn set_colour_contrast(&mut self, on: bool) {
        self.blobs.set_colour_contrast(on);
    }

    /// Measures the frame's noise once every `frames` frames ([`BlobDetector::set_noise_every`]).
    pub fn set_noise_every(&mut self, frames: u32) {
        self.blobs.set_noise_every(frames);
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
        self.skin_and_peaks(image, None);
        let gate = gate(&self.skin, self.px_per_mm);
        match &mut self.segmenter {
            None => self.blobs.detect_found_into(image, None, gate, out),
            Some(segmenter) => {
                let mask = segmenter.segment(image, self.px_per_mm)?;
                self.blobs
                    .detect_found_into(image, Some(mask), gate, &mut self.candidates);
                self.fuser
                    .fuse_into(&self.candidates, mask, self.px_per_mm, &self.fuse, out);
            }
        }
        self.keep_on_skin(image, out);
        Ok(())
    }

    /// The classical detector alone on `image`, into `out` (cleared first).
    pub fn detect_classical_into(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        self.skin_and_peaks(image, None);
        let gate = gate(&self.skin, self.px_per_mm);
        self.blobs.detect_found_into(image, None, gate, out);
        self.keep_on_skin(image, out);
    }

    /// The frame's skin mask and its darkness maps, side by side on two threads (neither needs
    /// the other, and on the live path the frame waits for both), then the darkness's peaks,
    /// its noise measured on the mask's skin. `learned`: a skin model's view computed elsewhere
    /// (the live model thread's); without it the masker runs its own skin model, if it has one.
    fn skin_and_peaks(&mut self, image: &RgbImage, learned: Option<&SegMask>) {
        let ppm = self.px_per_mm;
        let (skin, blobs) = (&mut self.skin, &mut self.blobs);
        std::thread::scope(|s| {
            let _span = tracing::trace_span!("skin_and_peaks").entered();
            s.spawn(move || match learned {
                Some(learned) => {
                    skin.compute_with(image, ppm, Some(learned));
                }
                None => {
                    skin.compute(image, ppm);
                }
            });
            blobs.darkness_of(image);
            // The scope joins the mask's thread (and passes on a panic in it).
        });
        self.blobs.find_peaks_on(Some(self.skin.mask()));
    }

    /// The skin mask of the last frame detected.
    pub fn skin_mask(&self) -> &SkinMask {
        self.skin.mask()
    }

    /// Computes the skin mask of `image` without detecting (for dots given from elsewhere).
    pub fn compute_skin_mask(&mut self, image: &RgbImage) -> &SkinMask {
        self.skin.compute(image, self.px_per_mm)
    }

    /// Drops the dots off the frame's skin mask (computed first): those whose centre is in a
    /// cell called not skin, unless the cell is at the skin's edge and the ring of skin around
    /// the dot has the nearby skin's colour ([`SkinMasker::ring_is_skin`]).
    fn keep_on_skin(&self, image: &RgbImage, out: &mut Vec<Detection>) {
        let ppm = self.px_per_mm;
        if self.skin.mask().fraction() >= 1.0 {
            return;
        }
        let reach = SKIN_EDGE_REACH_MM * ppm;
        let skin = &self.skin;
        out.retain(|d| {
            let m = skin.mask();
            m.is_skin(d.x, d.y)
                || (m.distance_to_skin(d.x, d.y, reach).is_some()
                    && skin.ring_is_skin(image, d.x, d.y, d.radius, reach, SKIN_RING_MAX_DELTA_E))
        });
    }

    /// Runs the blobs on `image` and fuses them with a dot mask computed earlier (by the
    /// inference thread on a recent frame); a mask of another kind is not used. `skin`: the
    /// skin model's view from the same thread, fused into the skin mask.
    pub fn detect_with_mask(
        &mut self,
        image: &RgbImage,
        mask: &SegMask,
        skin: Option<&SegMask>,
        out: &mut Vec<Detection>,
    ) {
        self.skin_and_peaks(image, skin);
        let gate = gate(&self.skin, self.px_per_mm);
        self.blobs
            .detect_found_into(image, None, gate, &mut self.candidates);
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
