//! The overlay message: everything the page draws on top of one frame, in that frame's pixels.
//!
//! Sent as JSON text just before the frame's JPEG on the WebSocket. Dots travel as compact
//! arrays (`[x, y, r, kind]`) because a frame can carry a thousand of them.

use serde::{Deserialize, Serialize};

/// One frame's overlay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayMsg {
    /// Sequence number of the frame this overlay belongs to (copied from `FrameMeta`).
    pub seq: u64,
    /// Capture time of the frame, Unix milliseconds (from `FrameMeta::captured_at`).
    pub captured_unix_ms: f64,
    /// Capture to this message's publication, milliseconds (filled in when sent).
    pub latency_ms: f64,
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// Existing dots: `[x_px, y_px, radius_px, kind]` with kind 0 follicle, 1 pigment.
    pub dots: Vec<[f32; 4]>,
    /// The next recommendations in order: `[x_px, y_px, number]`.
    pub recs: Vec<[f32; 3]>,
    /// The current target ring: `[x_px, y_px, radius_px]`.
    pub target: Option<[f32; 3]>,
    /// Zones as image polygons with their density reached.
    pub zones: Vec<ZoneMsg>,
    /// The hairline as an image polyline.
    pub hairline: Vec<[f32; 2]>,
    /// Density heatmap, in skin coordinates, with the transform to draw it.
    pub heat: Option<HeatMsg>,
    /// `image_from_skin` as a row-major 2x3 affine (skin mm to image px).
    pub image_from_skin: [f64; 6],
    /// Whether this frame was registered to the skin map.
    pub registered: bool,
    /// Pigment dots placed this session.
    pub dots_placed: u64,
    /// Recommendations marked done this session.
    pub recs_done: u64,
    /// Human-readable source state.
    pub source_status: String,
}

/// One zone on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneMsg {
    /// Zone name.
    pub name: String,
    /// Polygon in image pixels.
    pub points: Vec<[f32; 2]>,
    /// Dots per cm² reached so far.
    pub density_per_cm2: f64,
    /// Dots per cm² asked for.
    pub target_per_cm2: f64,
}

/// A coarse density map on the skin, drawn through `image_from_skin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatMsg {
    /// Skin position of the corner of cell (0, 0), millimetres.
    pub origin_mm: [f64; 2],
    /// Cell side, millimetres.
    pub cell_mm: f64,
    /// Cells per row.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// Density reached relative to the target (`1` = target), row-major; negative = unseen.
    pub ratio: Vec<f32>,
}
