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

/// Largest image any stage accepts (pixels), about 64 megapixels: the bound on every decode and
/// every per-pixel buffer.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// From this scale on, a frame is a dermoscope view: hair shafts are resolved (a 60 um shaft is
/// 4 px wide or more), so a follicular unit is found from its shafts, not as a dot.
pub const DERMOSCOPE_MIN_PX_PER_MM: f64 = 60.0;

/// How the camera sees the skin: the one decision that picks perception's detector, the model
/// kind and the renderer's scene. Decided once, from the scale ([`View::for_scale`]) or said
/// explicitly (`--view rig|dermoscope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// An artist's rig camera: a working field of several centimetres at 12-28 px/mm, where a
    /// follicle or a pigment dot is a dot of a few pixels.
    #[default]
    Rig,
    /// A trichoscopy dermoscope at 20-70x (60-400 px/mm), where hair shafts are resolved and a
    /// follicular unit is an opening with 1-4 shafts leaving it.
    Dermoscope,
}

impl View {
    /// The view a frame at `px_per_mm` is seen in: [`View::Dermoscope`] from
    /// [`DERMOSCOPE_MIN_PX_PER_MM`] on.
    pub fn for_scale(px_per_mm: f64) -> Self {
        if px_per_mm >= DERMOSCOPE_MIN_PX_PER_MM {
            Self::Dermoscope
        } else {
            Self::Rig
        }
    }

    /// The lowercase name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rig => "rig",
            Self::Dermoscope => "dermoscope",
        }
    }
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
