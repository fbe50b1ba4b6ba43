//! Configuration of the live service, built in two stages (ripgrep `LowArgs` → `HiArgs`): the
//! CLI only parses and validates raw values; [`ServeConfig`] holds the resolved values
//! (calibration loaded, model checked) that the pipeline runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;

use crate::frame::View;
use crate::perception::{ModelKind, OnnxSegmenter, SegmentConfig, Segmenter};
use crate::session::SessionConfig;
use crate::source::{CameraConfig, DemoConfig};

/// Default address: loopback only. Anything else is the user's explicit choice.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// JPEG quality of the frames sent to the page: sharp enough to see dots, small enough for
/// 30 fps to many clients.
pub const DEFAULT_JPEG_QUALITY: u8 = 70;
/// WebSocket clients served at once.
pub const MAX_WS_CLIENTS: usize = 64;
/// Frames each WebSocket client may fall behind before it skips ahead.
pub const WS_BACKLOG_FRAMES: usize = 2;
/// Kernel send buffer per viewer socket: a few frames. A viewer that stops reading fills it
/// quickly, then skips to fresh frames instead of being fed minutes-old ones from a big buffer.
pub const WS_SEND_BUFFER_BYTES: usize = 512 * 1024;
/// Where calibration mode saves its files unless `--calibration-dir` says otherwise.
pub const DEFAULT_CALIBRATION_DIR: &str = "calibration";
/// Where the page saves designs (`serve --design-dir`).
pub const DEFAULT_DESIGN_DIR: &str = "designs";

/// Which segmentation model the live pipeline runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// Classical detection only.
    None,
    /// The model built into the binary (`models/stipple-seg.onnx`).
    Bundled,
    /// A model file honouring the same contract.
    File(std::path::PathBuf),
}

impl ModelChoice {
    /// Loads the chosen model for frames of `view` at `px_per_mm` (before any thread starts, so a
    /// missing or broken model stops `serve` with a clear error instead of falling back
    /// silently): the bundled dot model for rig frames, the bundled openings model for
    /// dermoscope frames.
    ///
    /// # Errors
    /// A missing or broken model file, or a model of the wrong kind for the frames' view.
    pub fn load(&self, view: View, px_per_mm: f64) -> anyhow::Result<Option<Segmenter>> {
        let cfg = SegmentConfig::default();
        let seg = match self {
            Self::None => return Ok(None),
            Self::Bundled => OnnxSegmenter::bundled_kind(ModelKind::for_view(view), &cfg)
                .context("loading the bundled model")?,
            Self::File(path) => OnnxSegmenter::from_file(path, &cfg)
                .with_context(|| format!("loading model {}", path.display()))?,
        };
        crate::perception::check_model_kind(seg.contract().kind, view, px_per_mm)?;
        Ok(Some(Segmenter::Onnx(Box::new(seg))))
    }
}

/// What `/api/status` says about the bundled model.
pub const MODEL_BUNDLED: &str = "stipple-seg.onnx (bundled)";
/// What `/api/status` says about the model when the pipeline runs the classical detector alone.
pub const MODEL_NONE: &str = "none (classical)";

/// Where frames come from, as given to `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `synthetic`: the rendered demo head (default).
    Synthetic,
    /// `synthetic-board`: a rendered calibration board held up in changing poses.
    SyntheticBoard,
    /// `camera` or `camera:INDEX`.
    Camera(u32),
    /// `images:DIR`.
    Images(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "synthetic" | "synth" | "demo" => Ok(SourceSpec::Synthetic),
            "synthetic-board" => Ok(SourceSpec::SyntheticBoard),
            "camera" => Ok(SourceSpec::Camera(0)),
            _ => {
                if let Some(i) = s.strip_prefix("camera:") {
                    i.parse().map(SourceSpec::Camera).map_err(|_| {
                        format!("bad camera index {i:?} (want camera:0, camera:1, ...)")
                    })
                } else if let Some(dir) = s.strip_prefix("images:") {
                    if dir.is_empty() {
                        Err("images: needs a folder, e.g. images:frames/".into())
                    } else {
                        Ok(SourceSpec::Images(PathBuf::from(dir)))
                    }
                } else {
                    Err(format!(
                        "unknown source {s:?}: use synthetic, synthetic-board, camera[:INDEX] or images:DIR"
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Synthetic => write!(f, "synthetic"),
            SourceSpec::SyntheticBoard => write!(f, "synthetic-board"),
            SourceSpec::Camera(i) => write!(f, "camera:{i}"),
            SourceSpec::Images(d) => write!(f, "images:{}", d.display()),
        }
    }
}

/// Everything `stipple serve` runs with, resolved.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The source.
    pub source: SourceSpec,
    /// Listening address.
    pub bind: SocketAddr,
    /// Frame width requested from the source.
    pub width: u32,
    /// Frame height requested from the source.
    pub height: u32,
    /// Frames per second requested from the source.
    pub fps: f64,
    /// Scale at the skin, pixels per millimetre (from calibration).
    pub px_per_mm: f64,
    /// Seed of the synthetic demo.
    pub seed: u64,
    /// JPEG quality of the frames sent to the page.
    pub jpeg_quality: u8,
    /// What `/api/status` reports as the model.
    pub model: String,
    /// The segmentation model the pipeline runs on its own thread, if any.
    pub model_choice: ModelChoice,
    /// WebSocket clients served at once.
    pub max_clients: usize,
    /// The live session's tuning.
    pub session: SessionConfig,
    /// Whether the synthetic head moves (tests turn it off to isolate registration).
    pub demo_motion: bool,
    /// `--record FILE`: where the session is recorded (MCAP), if anywhere.
    pub record: Option<PathBuf>,
    /// `--client NAME`: whose scalp, written into the recording's metadata.
    pub client: Option<String>,
    /// `--artist NAME`: the artist or student at the needle, written into the recording.
    pub artist: Option<String>,
    /// The camera calibration as loaded, written into the recording.
    pub calibration: Option<crate::calib::Calibration>,
    /// Where calibration mode saves its files.
    pub calibration_dir: PathBuf,
    /// `--overwrite`: `--record` may replace an existing file.
    pub record_overwrite: bool,
    /// Host names the service answers to besides its bound address (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// The access token every request must carry (required beyond loopback), if any.
    pub token: Option<String>,
    /// `--design FILE`: the design the session starts from (skin millimetres), validated.
    pub design: Option<crate::planning::Design>,
    /// Where the page saves designs.
    pub design_dir: PathBuf,
}

impl ServeConfig {
    /// Defaults: synthetic 1280x720 at 30 fps and 20 px/mm on loopback port 8080.
    pub fn new() -> Self {
        let px_per_mm = 20.0;
        Self {
            source: SourceSpec::Synthetic,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            width: 1280,
            height: 720,
            fps: 30.0,
            px_per_mm,
            seed: 1,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            model: MODEL_NONE.into(),
            model_choice: ModelChoice::None,
            max_clients: MAX_WS_CLIENTS,
            session: SessionConfig::new(px_per_mm),
            demo_motion: true,
            record: None,
            client: None,
            artist: None,
            calibration: None,
            calibration_dir: PathBuf::from(DEFAULT_CALIBRATION_DIR),
            record_overwrite: false,
            allow_hosts: Vec::new(),
            token: None,
            design: None,
            design_dir: PathBuf::from(DEFAULT_DESIGN_DIR),
        }
    }

    /// Sets the scale everywhere it is used.
    pub fn with_px_per_mm(mut self, px_per_mm: f64) -> Self {
        self.px_per_mm = px_per_mm;
        self.session.px_per_mm = px_per_mm;
        self.session.view = View::for_scale(px_per_mm);
        self
    }

    /// The demo source's settings.
    pub fn demo(&self) -> DemoConfig {
        DemoConfig {
            width: self.width,
            height: self.height,
            px_per_mm: self.px_per_mm,
            fps: self.fps,
            motion: self.demo_motion,
            ..DemoConfig::new(self.seed)
        }
    }

    /// The synthetic board's settings.
    pub fn held_board(&self) -> crate::calib::HeldBoardConfig {
        crate::calib::HeldBoardConfig {
            width: self.width,
            height: self.height,
            fps: self.fps,
            seed: self.seed,
        }
    }

    /// The camera's settings.
    pub fn camera(&self, index: u32) -> CameraConfig {
        CameraConfig {
            index,
            width: self.width,
            height: self.height,
            fps: self.fps.round().max(1.0) as u32,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!("synthetic".parse::<SourceSpec>(), Ok(SourceSpec::Synthetic));
        assert_eq!(
            "synthetic-board".parse::<SourceSpec>(),
            Ok(SourceSpec::SyntheticBoard)
        );
        assert_eq!("camera".parse::<SourceSpec>(), Ok(SourceSpec::Camera(0)));
        assert_eq!("camera:2".parse::<SourceSpec>(), Ok(SourceSpec::Camera(2)));
        assert_eq!(
            "images:a/b".parse::<SourceSpec>(),
            Ok(SourceSpec::Images("a/b".into()))
        );
        assert!("camera:x".parse::<SourceSpec>().is_err());
        assert!("webcam"
            .parse::<SourceSpec>()
            .unwrap_err()
            .contains("synthetic"));
    }

    #[test]
    fn default_bind_is_loopback() {
        assert!(ServeConfig::new().bind.ip().is_loopback());
        assert_eq!(ServeConfig::new().bind.to_string(), DEFAULT_BIND);
    }
}
