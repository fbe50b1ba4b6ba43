//! Shared types that flow between the pipeline stages: frames, their metadata, and dots.
//!
//! Coordinates are named after their space. `*_px` fields are pixels of the input image
//! (x to the right, y down, origin at the top-left corner of the top-left pixel, so the centre of
//! pixel (0, 0) is (0.5, 0.5)); `*_mm` fields are millimetres on the skin.

use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Identity of one captured frame, copied from stage to stage and never re-stamped.
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta {
    /// Sequence number from the source, strictly increasing; gaps mean dropped frames.
    pub seq: u64,
    /// When the source produced the frame; latency is measured from here.
    pub captured_at: Instant,
    /// Which camera (or source) produced the frame.
    pub camera_id: u32,
}

/// One captured RGB frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Identity and timing of the frame.
    pub meta: FrameMeta,
    /// The pixels, shared so that stages never copy them.
    pub image: Arc<RgbImage>,
}

/// What a dot on the skin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DotKind {
    /// A natural follicular unit (one opening, 1-4 hairs).
    Follicle,
    /// A healed pigment dot from an earlier session.
    Pigment,
}

impl DotKind {
    /// The lowercase name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            DotKind::Follicle => "follicle",
            DotKind::Pigment => "pigment",
        }
    }
}

/// One detected dot, in pixels of the input image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Sub-pixel centre, x.
    pub x: f64,
    /// Sub-pixel centre, y.
    pub y: f64,
    /// Radius in pixels.
    pub radius: f64,
    /// Follicle or pigment.
    pub kind: DotKind,
    /// Confidence in 0..=1.
    pub score: f64,
    /// Hairs leaving a dermoscope follicle opening (1-4), where the detector can tell; `None`
    /// for pigment dots and rig frames, and then absent from the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hairs: Option<u8>,
}
