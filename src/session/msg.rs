//! The overlay message: everything the page draws on top of one frame, in that frame's pixels.
//!
//! Sent as JSON text just before the frame's JPEG on the WebSocket. Dots travel as compact
//! arrays (`[x, y, r, kind]`) because a frame can carry a thousand of them.

use serde::{Deserialize, Serialize};

use crate::planning::ZoneKind;

/// One frame's overlay. Fields a reader does not find take their defaults, so an overlay
/// written before a field was added still reads (the recording's format version guards the
/// rest).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// Existing dots: `[x_px, y_px, radius_px, kind]` with kind 0 follicle, 1 pigment, 2
    /// marked "not a dot" by the artist.
    pub dots: Vec<[f32; 4]>,
    /// The next recommendations in order: `[x_px, y_px, number]`.
    pub recs: Vec<[f32; 3]>,
    /// The current target ring: `[x_px, y_px, radius_px]` (the first of `recs`).
    pub target: Option<[f32; 3]>,
    /// Size and shade of the next dot, for its ink swatch.
    pub next_dot: Option<NextDotMsg>,
    /// Zones as image polygons with their density reached.
    pub zones: Vec<ZoneMsg>,
    /// Density heatmap, in skin coordinates, with the transform to draw it.
    pub heat: Option<HeatMsg>,
    /// `image_from_skin` as a row-major 2x3 affine (skin mm to image px).
    pub image_from_skin: [f64; 6],
    /// Scale of this frame at the skin, pixels per millimetre (to a tenth): the scale bar.
    pub px_per_mm: f64,
    /// Whether this frame was registered to the skin map.
    pub registered: bool,
    /// Pigment dots placed this session.
    pub dots_placed: u64,
    /// Recommendations marked done this session.
    pub recs_done: u64,
    /// Recommendations left to place this session.
    pub dots_left: u64,
    /// The design's session number.
    pub session: u8,
    /// The design's target density, dots/cm².
    pub target_per_cm2: f64,
    /// The design's minimum spacing, millimetres.
    pub min_spacing_mm: f64,
    /// Density reached in the view, dots/cm².
    pub view_density_per_cm2: f64,
    /// What the page says beside the numbers (a zone whose session goal is reached).
    pub messages: Vec<String>,
    /// Dots placed too close to another in the last few seconds (the blowout guard); one
    /// with `new` set was first seen on this frame.
    pub blowouts: Vec<BlowoutMsg>,
    /// Placed dots too close to another, this session.
    pub spacing_violations: u64,
    /// Whether the artist paused the plan (the picture holds still on the page).
    pub paused: bool,
    /// The artist's commands applied since the previous frame (so the recording has them).
    pub events: Vec<ArtistEvent>,
    /// Human-readable source state.
    pub source_status: String,
    /// What the frame shows that is not skin (gloves, machine, hair, the room...), as image
    /// polygons the page shades; empty when the whole frame is skin.
    pub not_skin: Vec<Vec<[f32; 2]>>,
    /// Where the plan on view declined to plan on the skin, and why (glare, dark marks larger
    /// than a dot), as image polygons the page outlines; the same reasons `stipple plan` gives.
    pub declined: Vec<DeclinedMsg>,
}

/// A region of the skin the plan keeps off, on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclinedMsg {
    /// Outline in the frame's pixels.
    pub polygon: Vec<[f32; 2]>,
    /// Why, in words an artist reads.
    pub reason: String,
}

/// One zone on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneMsg {
    /// Zone name.
    pub name: String,
    /// What the zone asks for.
    pub kind: ZoneKind,
    /// Polygon in image pixels.
    pub points: Vec<[f32; 2]>,
    /// A hairline's front edge in image pixels; empty for other kinds.
    pub front_edge: Vec<[f32; 2]>,
    /// Dots per cm² reached so far.
    pub density_per_cm2: f64,
    /// Dots per cm² asked for (0 for no-go).
    pub target_per_cm2: f64,
    /// The plan has nothing left to place here this session.
    pub goal_reached: bool,
}

/// A dot placed closer to another than the minimum spacing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlowoutMsg {
    /// Position in this frame, pixels.
    pub x: f32,
    /// Position in this frame, pixels.
    pub y: f32,
    /// Distance to the nearest other dot, millimetres.
    pub nearest_mm: f64,
    /// The minimum spacing it broke, millimetres.
    pub min_spacing_mm: f64,
    /// Sequence number of the first frame that showed it.
    pub seq: u64,
    /// Whether this frame is that first frame.
    pub new: bool,
}

/// The next dot's size and shade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextDotMsg {
    /// Radius asked for, millimetres.
    pub radius_mm: f64,
    /// Shade, 0 (lightest) to 1 (darkest).
    pub shade: f64,
    /// The zone it fills.
    pub zone: String,
}

/// One of the artist's commands, as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtistEvent {
    /// The latest frame when it was applied.
    pub seq: u64,
    /// `next`, `undo`, `not_a_dot`, `pause` or `resume`.
    pub kind: String,
    /// The dot it concerns, skin millimetres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_skin_mm: Option<[f64; 2]>,
}

impl ArtistEvent {
    /// An event on frame `seq`.
    pub fn new(seq: u64, kind: &str, in_skin_mm: Option<[f64; 2]>) -> Self {
        Self {
            seq,
            kind: kind.to_string(),
            in_skin_mm,
        }
    }
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
    /// Where the camera's lens distorts: the image pixels of the grid's corners, row-major,
    /// `(rows + 1) x (cols + 1)`, so that the page draws each cell where the lens puts it
    /// (through `image_from_skin` the cells toward the frame's corners would be off by
    /// millimetres). Absent without a lens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes_px: Vec<[f32; 2]>,
}

/// Who is in the session: the client whose scalp it is and the artist or student at the
/// needle (`serve --client/--artist`, or the page's names, `PUT /api/session/people`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct People {
    /// The client, when given.
    #[serde(default)]
    pub client: Option<String>,
    /// The artist or student, when given.
    #[serde(default)]
    pub artist: Option<String>,
}
