//! The channels of a Stipple recording and their messages.
//!
//! Every message is JSON with a `jsonschema` schema, which Foxglove and the MCAP tools read.
//! Camera frames, overlay annotations and the calibration use the standard Foxglove schemas
//! (`foxglove.CompressedImage`, `foxglove.ImageAnnotations`, `foxglove.CameraCalibration`:
//! same names and fields, so Foxglove's image panel shows the frames with the dots and
//! recommendations drawn over them; in JSON, image bytes are base64, which the chunks' zstd
//! compression mostly wins back). Stipple's own channels start with `/stipple/`.
//!
//! Log time is the frame's capture time (Unix nanoseconds) on every per-frame channel; the
//! messages of one frame share it. The first message is [`SessionInfo`], with
//! [`FORMAT_VERSION`]: a reader refuses a file without it (not Stipple's) or with another
//! version (rerun `IncompatibleRerunVersion`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::frame::Detection;
use crate::planning::Design;
use crate::session::PlacedDot;

/// Version of the recording format: bumped whenever a reader of the previous version would
/// misread a new file.
pub const FORMAT_VERSION: u32 = 2;
/// The MCAP profile written in the header.
pub const PROFILE: &str = "stipple";

/// Camera frames (`foxglove.CompressedImage`, JPEG).
pub const TOPIC_IMAGE: &str = "/camera/image";
/// Camera calibration (`foxglove.CameraCalibration`), once, when known.
pub const TOPIC_CALIBRATION: &str = "/camera/calibration";
/// Detected dots and the recommendations drawn on the frame (`foxglove.ImageAnnotations`).
pub const TOPIC_ANNOTATIONS: &str = "/camera/annotations";
/// Session metadata ([`SessionInfo`]), first.
pub const TOPIC_SESSION: &str = "/stipple/session";
/// The overlay message exactly as the page received it ([`crate::session::OverlayMsg`]).
pub const TOPIC_OVERLAY: &str = "/stipple/overlay";
/// Every frame's detections ([`DetectionsMsg`]).
pub const TOPIC_DETECTIONS: &str = "/stipple/detections";
/// The plan after every frame ([`crate::session::PlanSnapshot`]).
pub const TOPIC_PLAN: &str = "/stipple/plan";
/// Design changes ([`DesignMsg`]), the first one on the first frame.
pub const TOPIC_DESIGN: &str = "/stipple/design";
/// Dots placed ([`PlacedDot`]), one message each.
pub const TOPIC_PLACED: &str = "/stipple/placed";
/// Recorder statistics ([`RecorderStatsMsg`]), every second and last.
pub const TOPIC_RECORDER: &str = "/stipple/recorder";

/// Name of the MCAP Metadata record about the session: client, artist, session number, date
/// ([`session_metadata`]).
pub const METADATA_SESSION: &str = "session";
/// Name of the MCAP Metadata record of each design in force ([`design_metadata`]).
pub const METADATA_DESIGN: &str = "design";
/// Name of the MCAP Metadata record of the software that wrote the file
/// ([`versions_metadata`]).
pub const METADATA_VERSIONS: &str = "versions";

/// The `session` Metadata record: who, whose scalp, which session, when. Names not given are
/// left out (a reader shows "not recorded"), never written as empty strings.
pub fn session_metadata(
    info: &SessionInfo,
    session_number: Option<u8>,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(c) = &info.client {
        m.insert("client".into(), c.clone());
    }
    if let Some(a) = &info.artist {
        m.insert("artist".into(), a.clone());
    }
    if let Some(n) = session_number {
        m.insert("session_number".into(), n.to_string());
    }
    m.insert("date".into(), info.date());
    m.insert("started_unix_ns".into(), info.started_unix_ns.to_string());
    m.insert("source".into(), info.source.clone());
    m.insert("px_per_mm".into(), info.px_per_mm.to_string());
    m.insert(
        "image_size".into(),
        format!("{}x{}", info.width, info.height),
    );
    m
}

/// The `versions` Metadata record: Stipple, the recording format, the model.
pub fn versions_metadata(info: &SessionInfo) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("stipple".into(), info.stipple_version.clone()),
        ("format".into(), info.format.clone()),
        ("format_version".into(), info.format_version.to_string()),
        ("model".into(), info.model.clone()),
        ("detected_on".into(), info.detected_on.clone()),
    ])
}

/// The `design` Metadata record of a design change: the numbers, and the whole design as JSON.
pub fn design_metadata(d: &DesignMsg) -> BTreeMap<String, String> {
    let zones: Vec<&str> = d.design.zones.iter().map(|z| z.name.as_str()).collect();
    BTreeMap::from([
        ("from_seq".into(), d.seq.to_string()),
        (
            "session_number".into(),
            d.design.session_or_default().to_string(),
        ),
        (
            "target_per_cm2".into(),
            d.design.target_or_default().to_string(),
        ),
        (
            "min_spacing_mm".into(),
            d.design.spacing_or_default().to_string(),
        ),
        ("zones".into(), zones.join(", ")),
        (
            "json".into(),
            serde_json::to_string(&d.design).unwrap_or_default(),
        ),
    ])
}

pub use crate::session::People;

/// Metadata of a recorded session: what produced it and how to re-run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Always `"stipple"`.
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Version of the Stipple that wrote it.
    pub stipple_version: String,
    /// The source, described.
    pub source: String,
    /// The segmentation model, described (`"none (classical)"`, the bundled one, a file).
    pub model: String,
    /// Scale at the skin.
    pub px_per_mm: f64,
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// JPEG quality of the recorded frames.
    pub jpeg_quality: u8,
    /// Recommendations shown at once (the session's setting).
    pub recommendations: usize,
    /// Wall-clock start, Unix nanoseconds.
    pub started_unix_ns: u64,
    /// What the live detector saw: `"decoded-jpeg"` (the recorded frames themselves).
    pub detected_on: String,
    /// The client whose scalp this is (`serve --client`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The artist or student at the needle (`serve --artist`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
}

impl SessionInfo {
    /// The metadata of a live session about to be recorded.
    pub fn new(config: &crate::config::ServeConfig, source: &str, model: &str) -> Self {
        Self {
            format: PROFILE.into(),
            format_version: FORMAT_VERSION,
            stipple_version: env!("CARGO_PKG_VERSION").into(),
            source: source.into(),
            model: model.into(),
            px_per_mm: config.px_per_mm,
            width: config.width,
            height: config.height,
            jpeg_quality: config.jpeg_quality,
            recommendations: config.session.recommendations,
            started_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            detected_on: "decoded-jpeg".into(),
            client: config.client.clone(),
            artist: config.artist.clone(),
        }
    }

    /// Start date, UTC, `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        crate::calib::date_utc(self.started_unix_ns / 1_000_000_000)
    }
}

/// A Stipple calibration as `foxglove.CameraCalibration` (plumb bob = OpenCV's k1, k2, p1, p2,
/// k3; no rectification).
pub fn camera_calibration(c: &crate::calib::Calibration) -> CameraCalibration {
    let i = &c.intrinsics;
    let d = &c.distortion;
    CameraCalibration {
        timestamp: FoxTime { sec: 0, nsec: 0 },
        frame_id: "camera".into(),
        width: c.image_width,
        height: c.image_height,
        distortion_model: "plumb_bob".into(),
        d: vec![d.k1, d.k2, d.p1, d.p2, d.k3],
        k: [i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [
            i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0,
        ],
    }
}

impl CameraCalibration {
    /// The recorded calibration's lens at the recording's scale (as the live session used it),
    /// `None` when it does not distort or its numbers are not a camera's (a `K` with a zero or
    /// non-finite focal length, `D` of another length).
    pub fn lens(&self, px_per_mm: f64) -> Option<crate::calib::PlaneMap> {
        let [fx, _, cx, _, fy, cy, ..] = self.k;
        let ok = [fx, fy, cx, cy, px_per_mm].iter().all(|v| v.is_finite())
            && fx > 0.0
            && fy > 0.0
            && px_per_mm > 0.0
            && self.d.len() == 5
            && self.d.iter().all(|v| v.is_finite());
        if !ok {
            return None;
        }
        let mut c = crate::calib::Calibration::pinhole(
            self.width,
            self.height,
            crate::calib::Intrinsics { fx, fy, cx, cy },
            px_per_mm,
        );
        c.distortion = crate::calib::Distortion {
            k1: self.d[0],
            k2: self.d[1],
            p1: self.d[2],
            p2: self.d[3],
            k3: self.d[4],
        };
        let plane = crate::calib::PlaneMap::of(&c);
        plane.distorts().then_some(plane)
    }
}

/// One frame's detections, in pixels of the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionsMsg {
    /// The frame.
    pub seq: u64,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// The frame whose segmentation mask was fused in, if any (the model runs on its own
    /// thread on a recent frame; a re-run uses the same one).
    pub mask_seq: Option<u64>,
    /// The dots, each as `[x_px, y_px, radius_px, kind (0 follicle, 1 pigment), score]`
    /// (compact: a frame can hold a thousand; numbers written so that they read back exactly).
    #[serde(with = "compact_detections")]
    pub detections: Vec<Detection>,
}

/// Detections as `[x, y, radius, kind, score]` arrays.
mod compact_detections {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::frame::{Detection, DotKind};

    pub fn serialize<S: Serializer>(d: &[Detection], s: S) -> Result<S::Ok, S::Error> {
        let rows: Vec<(f64, f64, f64, u8, f64)> = d
            .iter()
            .map(|d| {
                (
                    d.x,
                    d.y,
                    d.radius,
                    u8::from(d.kind == DotKind::Pigment),
                    d.score,
                )
            })
            .collect();
        rows.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Detection>, D::Error> {
        let rows = Vec::<(f64, f64, f64, u8, f64)>::deserialize(d)?;
        Ok(rows
            .into_iter()
            .map(|(x, y, radius, kind, score)| Detection {
                x,
                y,
                radius,
                kind: if kind == 1 {
                    DotKind::Pigment
                } else {
                    DotKind::Follicle
                },
                score,
                hairs: None,
            })
            .collect())
    }
}

/// A design change, applied from frame `seq` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignMsg {
    /// First frame processed with this design.
    pub seq: u64,
    /// The design.
    pub design: Design,
}

/// A placed dot, as written on [`TOPIC_PLACED`].
pub type PlacedMsg = PlacedDot;

/// The recorder's own counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecorderStatsMsg {
    /// Frames handed to the recorder.
    pub frames_offered: u64,
    /// Frames written.
    pub frames_written: u64,
    /// Frames dropped because the writer was behind (slow disk) or had failed.
    pub frames_dropped: u64,
    /// Bytes of message data written.
    pub bytes_written: u64,
    /// Whether this is the last message of a cleanly finished file.
    pub last: bool,
}

/// `foxglove.Time`: seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoxTime {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl FoxTime {
    /// From Unix nanoseconds.
    pub fn from_ns(ns: u64) -> Self {
        Self {
            sec: ns / 1_000_000_000,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// `foxglove.CompressedImage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompressedImage {
    /// Capture time.
    pub timestamp: FoxTime,
    /// Camera frame of reference.
    pub frame_id: String,
    /// The JPEG, base64.
    pub data: String,
    /// `"jpeg"`.
    pub format: String,
}

/// `foxglove.CameraCalibration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CameraCalibration {
    /// Time.
    pub timestamp: FoxTime,
    /// Camera frame of reference.
    pub frame_id: String,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// `"plumb_bob"` (OpenCV's k1, k2, p1, p2, k3).
    pub distortion_model: String,
    /// Distortion coefficients.
    #[serde(rename = "D")]
    pub d: Vec<f64>,
    /// Intrinsic matrix, row-major 3x3.
    #[serde(rename = "K")]
    pub k: [f64; 9],
    /// Rectification matrix (identity).
    #[serde(rename = "R")]
    pub r: [f64; 9],
    /// Projection matrix, row-major 3x4.
    #[serde(rename = "P")]
    pub p: [f64; 12],
}

/// `foxglove.Point2`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point2 {
    /// x, pixels.
    pub x: f64,
    /// y, pixels.
    pub y: f64,
}

/// `foxglove.Color`, components in 0..=1.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Color {
    /// Red.
    pub r: f64,
    /// Green.
    pub g: f64,
    /// Blue.
    pub b: f64,
    /// Alpha.
    pub a: f64,
}

/// `foxglove.CircleAnnotation`.
#[derive(Debug, Clone, Serialize)]
pub struct CircleAnnotation {
    /// Time of the frame.
    pub timestamp: FoxTime,
    /// Centre, pixels.
    pub position: Point2,
    /// Diameter, pixels.
    pub diameter: f64,
    /// Line thickness, pixels.
    pub thickness: f64,
    /// Fill.
    pub fill_color: Color,
    /// Outline.
    pub outline_color: Color,
}

/// `foxglove.PointsAnnotation`.
#[derive(Debug, Clone, Serialize)]
pub struct PointsAnnotation {
    /// Time of the frame.
    pub timestamp: FoxTime,
    /// 1 points, 2 line loop, 3 line strip.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Points, pixels.
    pub points: Vec<Point2>,
    /// Outline.
    pub outline_color: Color,
    /// Per-point colours (empty).
    pub outline_colors: Vec<Color>,
    /// Fill.
    pub fill_color: Color,
    /// Stroke thickness, pixels.
    pub thickness: f64,
}

/// `foxglove.TextAnnotation`.
#[derive(Debug, Clone, Serialize)]
pub struct TextAnnotation {
    /// Time of the frame.
    pub timestamp: FoxTime,
    /// Where, pixels.
    pub position: Point2,
    /// The text.
    pub text: String,
    /// Font size, pixels.
    pub font_size: f64,
    /// Text colour.
    pub text_color: Color,
    /// Background colour.
    pub background_color: Color,
}

/// `foxglove.ImageAnnotations`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageAnnotations {
    /// Circles: detected dots, the target ring.
    pub circles: Vec<CircleAnnotation>,
    /// Points: the recommendations; zones and hairline as lines.
    pub points: Vec<PointsAnnotation>,
    /// Texts: the recommendations' order (Foxglove's field is `texts`).
    pub texts: Vec<TextAnnotation>,
}

fn time_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {
        "sec": {"type": "integer", "minimum": 0},
        "nsec": {"type": "integer", "minimum": 0, "maximum": 999_999_999}}})
}

fn point2_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}})
}

fn color_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {
        "r": {"type": "number"}, "g": {"type": "number"},
        "b": {"type": "number"}, "a": {"type": "number"}}})
}

/// The JSON schema of a channel's messages, by schema name.
pub fn schema_for(name: &str) -> serde_json::Value {
    let object =
        |props: serde_json::Value| json!({"title": name, "type": "object", "properties": props});
    match name {
        "foxglove.CompressedImage" => object(json!({
            "timestamp": time_schema(),
            "frame_id": {"type": "string"},
            "data": {"type": "string", "contentEncoding": "base64"},
            "format": {"type": "string"}})),
        "foxglove.CameraCalibration" => object(json!({
            "timestamp": time_schema(),
            "frame_id": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "distortion_model": {"type": "string"},
            "D": {"type": "array", "items": {"type": "number"}},
            "K": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
            "R": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
            "P": {"type": "array", "items": {"type": "number"}, "minItems": 12, "maxItems": 12}})),
        "foxglove.ImageAnnotations" => object(json!({
            "circles": {"type": "array", "items": {"title": "foxglove.CircleAnnotation", "type": "object", "properties": {
                "timestamp": time_schema(), "position": point2_schema(),
                "diameter": {"type": "number"}, "thickness": {"type": "number"},
                "fill_color": color_schema(), "outline_color": color_schema()}}},
            "points": {"type": "array", "items": {"title": "foxglove.PointsAnnotation", "type": "object", "properties": {
                "timestamp": time_schema(),
                "type": {"type": "integer", "description": "0 unknown, 1 points, 2 line loop, 3 line strip, 4 line list"},
                "points": {"type": "array", "items": point2_schema()},
                "outline_color": color_schema(),
                "outline_colors": {"type": "array", "items": color_schema()},
                "fill_color": color_schema(), "thickness": {"type": "number"}}}},
            "texts": {"type": "array", "items": {"title": "foxglove.TextAnnotation", "type": "object", "properties": {
                "timestamp": time_schema(), "position": point2_schema(),
                "text": {"type": "string"}, "font_size": {"type": "number"},
                "text_color": color_schema(), "background_color": color_schema()}}}})),
        "stipple.SessionInfo" => object(json!({
            "format": {"type": "string", "const": "stipple"},
            "format_version": {"type": "integer"},
            "stipple_version": {"type": "string"},
            "source": {"type": "string"}, "model": {"type": "string"},
            "px_per_mm": {"type": "number"},
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "jpeg_quality": {"type": "integer"}, "recommendations": {"type": "integer"},
            "started_unix_ns": {"type": "integer"}, "detected_on": {"type": "string"},
            "client": {"type": "string"}, "artist": {"type": "string"}})),
        "stipple.Detections" => object(json!({
            "seq": {"type": "integer"}, "width": {"type": "integer"}, "height": {"type": "integer"},
            "mask_seq": {"type": ["integer", "null"]},
            "detections": {"type": "array", "description": "[x_px, y_px, radius_px, kind (0 follicle, 1 pigment), score]",
                "items": {"type": "array", "items": {"type": "number"}, "minItems": 5, "maxItems": 5}}})),
        "stipple.Overlay" => object(json!({
            "seq": {"type": "integer"}, "captured_unix_ms": {"type": "number"},
            "latency_ms": {"type": "number"},
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "dots": {"type": "array", "description": "[x_px, y_px, radius_px, kind (0 follicle, 1 pigment)]"},
            "recs": {"type": "array", "description": "[x_px, y_px, order]"},
            "target": {"type": ["array", "null"]},
            "image_from_skin": {"type": "array", "description": "row-major 2x3, skin mm to image px"},
            "zones": {"type": "array", "description": "zone outlines in image px with their density"},
            "hairline": {"type": "array", "description": "[x_px, y_px] polyline"},
            "heat": {"type": ["object", "null"], "description": "density ratio grid in skin mm"},
            "registered": {"type": "boolean"},
            "dots_placed": {"type": "integer"}, "recs_done": {"type": "integer"},
            "source_status": {"type": "string"}})),
        "stipple.Plan" => object(json!({
            "seq": {"type": "integer"},
            "recommendations": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"},
                "in_skin_mm": {"type": "array", "items": {"type": "number"}}}}},
            "skin_from_image": {"type": "object", "description": "similarity: a, b, tx, ty"},
            "dots_placed": {"type": "integer"}, "recommendations_done": {"type": "integer"},
            "map_dots": {"type": "integer"},
            "zones": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "density_per_cm2": {"type": "number"},
                "target_per_cm2": {"type": "number"}}}}})),
        "stipple.Design" => object(json!({
            "seq": {"type": "integer"},
            "design": {"type": "object", "properties": {
                "units": {"type": "string"},
                "session": {"type": "integer"}, "target_density_per_cm2": {"type": "number"},
                "min_spacing_mm": {"type": "number"}, "zones": {"type": "array", "items": {
                    "type": "object", "properties": {
                        "name": {"type": "string"}, "kind": {"type": "string"},
                        "polygon": {"type": "array"}, "front_edge": {"type": "array"},
                        "target_density_per_cm2": {"type": "number"},
                        "transition_mm": {"type": "number"}}}}}}})),
        "stipple.PlacedDot" => object(json!({
            "seq": {"type": "integer"},
            "in_skin_mm": {"type": "array", "items": {"type": "number"}},
            "radius_mm": {"type": "number"},
            "nearest_rec_mm": {"type": ["number", "null"]},
            "nearest_dot_mm": {"type": ["number", "null"]},
            "min_spacing_mm": {"type": "number"}})),
        "stipple.RecorderStats" => object(json!({
            "frames_offered": {"type": "integer"}, "frames_written": {"type": "integer"},
            "frames_dropped": {"type": "integer"}, "bytes_written": {"type": "integer"},
            "last": {"type": "boolean"}})),
        _ => object(json!({})),
    }
}

/// Every channel: topic and schema name, in the order they are registered.
pub const CHANNELS: [(&str, &str); 10] = [
    (TOPIC_SESSION, "stipple.SessionInfo"),
    (TOPIC_IMAGE, "foxglove.CompressedImage"),
    (TOPIC_CALIBRATION, "foxglove.CameraCalibration"),
    (TOPIC_ANNOTATIONS, "foxglove.ImageAnnotations"),
    (TOPIC_OVERLAY, "stipple.Overlay"),
    (TOPIC_DETECTIONS, "stipple.Detections"),
    (TOPIC_PLAN, "stipple.Plan"),
    (TOPIC_DESIGN, "stipple.Design"),
    (TOPIC_PLACED, "stipple.PlacedDot"),
    (TOPIC_RECORDER, "stipple.RecorderStats"),
];

const WHITE: Color = Color {
    r: 1.0,
    g: 1.0,
    b: 1.0,
    a: 0.6,
};
const BLUE: Color = Color {
    r: 0.31,
    g: 0.63,
    b: 1.0,
    a: 0.9,
};
const CYAN: Color = Color {
    r: 0.0,
    g: 0.9,
    b: 1.0,
    a: 0.95,
};
const GREEN: Color = Color {
    r: 0.49,
    g: 0.99,
    b: 0.0,
    a: 1.0,
};
const AMBER: Color = Color {
    r: 1.0,
    g: 0.69,
    b: 0.0,
    a: 0.9,
};
const NONE: Color = Color {
    r: 0.0,
    g: 0.0,
    b: 0.0,
    a: 0.0,
};

/// The page's overlay as Foxglove image annotations (what the page draws, minus the heatmap).
pub fn annotations(o: &crate::session::OverlayMsg, timestamp: FoxTime) -> ImageAnnotations {
    let p = |x: f32, y: f32| Point2 {
        x: f64::from(x),
        y: f64::from(y),
    };
    let mut a = ImageAnnotations::default();
    // Dots as two point sets (follicles, pigment): a frame can hold a thousand of them, and a
    // circle each would make this the largest message of the frame.
    for (kind, colour) in [(0.0f32, WHITE), (1.0, BLUE)] {
        let points: Vec<Point2> = o
            .dots
            .iter()
            .filter(|d| (d[3] > 0.5) == (kind > 0.5))
            .map(|d| p(d[0], d[1]))
            .collect();
        if !points.is_empty() {
            a.points.push(PointsAnnotation {
                timestamp,
                kind: 1,
                points,
                outline_color: colour,
                outline_colors: Vec::new(),
                fill_color: colour,
                thickness: 4.0,
            });
        }
    }
    if let Some(t) = o.target {
        a.circles.push(CircleAnnotation {
            timestamp,
            position: p(t[0], t[1]),
            diameter: 2.0 * f64::from(t[2].max(6.0)),
            thickness: 3.0,
            fill_color: NONE,
            outline_color: GREEN,
        });
    }
    if !o.recs.is_empty() {
        a.points.push(PointsAnnotation {
            timestamp,
            kind: 1,
            points: o.recs.iter().map(|r| p(r[0], r[1])).collect(),
            outline_color: CYAN,
            outline_colors: Vec::new(),
            fill_color: CYAN,
            thickness: 6.0,
        });
        for r in &o.recs {
            a.texts.push(TextAnnotation {
                timestamp,
                position: p(r[0] + 9.0, r[1] - 9.0),
                text: format!("{}", r[2]),
                font_size: 14.0,
                text_color: CYAN,
                background_color: NONE,
            });
        }
    }
    for z in &o.zones {
        a.points.push(PointsAnnotation {
            timestamp,
            kind: 2,
            points: z.points.iter().map(|q| p(q[0], q[1])).collect(),
            outline_color: AMBER,
            outline_colors: Vec::new(),
            fill_color: NONE,
            thickness: 2.0,
        });
    }
    for edge in o
        .zones
        .iter()
        .map(|z| &z.front_edge)
        .filter(|e| e.len() > 1)
    {
        a.points.push(PointsAnnotation {
            timestamp,
            kind: 3,
            points: edge.iter().map(|q| p(q[0], q[1])).collect(),
            outline_color: Color {
                r: 1.0,
                g: 0.31,
                b: 0.78,
                a: 0.95,
            },
            outline_colors: Vec::new(),
            fill_color: NONE,
            thickness: 3.0,
        });
    }
    a
}
