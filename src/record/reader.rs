//! Reading a recording back: [`Recording::open`].
//!
//! The file is read front to back (`mcap::MessageStream`, end magic not required), so a file
//! cut short by a crash or `kill -9` gives every message of its complete chunks; where the
//! stream stops early, [`Recording::damage`] says why. A clean file also has its summary and
//! index ([`Recording::finished`]). Anything else fails with an error naming the file: not
//! MCAP, a truncated header, an MCAP without Stipple's session channel, another format
//! version, or no complete frame.
//!
//! Frames are assembled from their messages, which share the capture time as log time: the
//! JPEG ([`schema::TOPIC_IMAGE`]), the overlay, the detections and the plan. A frame whose
//! picture or overlay did not make it into a complete chunk is left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use base64::Engine as _;
use mcap::read::Options;

use super::schema::{
    self, CameraCalibration, CompressedImage, DesignMsg, DetectionsMsg, RecorderStatsMsg,
    SessionInfo, FORMAT_VERSION,
};
use super::RecordError;
use crate::planning::Design;
use crate::session::{OverlayMsg, PlacedDot, PlanSnapshot};

/// MCAP's magic bytes, at both ends of a file.
const MAGIC: &[u8] = b"\x89MCAP0\r\n";

/// One recorded frame.
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// Sequence number of the frame in the live session.
    pub seq: u64,
    /// Capture time, Unix nanoseconds (the log time).
    pub log_time_ns: u64,
    /// The picture, JPEG.
    pub jpeg: Bytes,
    /// The overlay message as the page got it.
    pub overlay_json: String,
    /// The same, parsed.
    pub overlay: OverlayMsg,
    /// The detections, when recorded.
    pub detections: Option<DetectionsMsg>,
    /// The plan after the frame, when recorded.
    pub plan: Option<PlanSnapshot>,
}

/// A recording, read into memory.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The file.
    pub path: PathBuf,
    /// Session metadata.
    pub info: SessionInfo,
    /// Camera calibration, when it was recorded.
    pub calibration: Option<CameraCalibration>,
    /// Frames in order of `seq`.
    pub frames: Vec<RecordedFrame>,
    /// Dots placed, in order.
    pub placed: Vec<PlacedDot>,
    /// Design changes, in order; the first applies from the first frame.
    pub designs: Vec<DesignMsg>,
    /// The recorder's last statistics.
    pub recorder: Option<RecorderStatsMsg>,
    /// Whether the file ends with its summary and index (a clean stop).
    pub finished: bool,
    /// Why reading stopped before the end, for a damaged or truncated file.
    pub damage: Option<String>,
    /// Messages left out because they did not parse (warned about once each).
    pub bad_messages: u64,
}

impl Recording {
    /// Reads a recording.
    ///
    /// # Errors
    /// [`RecordError`] naming the file: unreadable, not MCAP, truncated header, not Stipple's,
    /// another format version, or without a complete frame.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let bytes = std::fs::read(path).map_err(|source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Reads a recording held in memory; `path` names it in errors.
    ///
    /// # Errors
    /// See [`Recording::open`].
    #[tracing::instrument(level = "debug", skip(bytes), fields(len = bytes.len()))]
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, RecordError> {
        let path_buf = path.to_path_buf();
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                RecordError::TruncatedHeader {
                    path: path_buf,
                    len: bytes.len() as u64,
                }
            } else {
                RecordError::NotMcap { path: path_buf }
            });
        }
        if !bytes.starts_with(MAGIC) {
            return Err(RecordError::NotMcap { path: path_buf });
        }
        // The header record must be whole: otherwise the file holds nothing at all.
        match mcap::read::LinearReader::new_with_options(bytes, Options::IgnoreEndMagic.into())
            .map_err(|source| RecordError::Mcap {
                path: path_buf.clone(),
                source,
            })?
            .next()
        {
            Some(Ok(mcap::records::Record::Header(_))) => {}
            _ => {
                return Err(RecordError::TruncatedHeader {
                    path: path_buf,
                    len: bytes.len() as u64,
                })
            }
        }
        let finished = matches!(mcap::Summary::read(bytes), Ok(Some(_)));

        let mut parts = Parts::default();
        let stream = mcap::MessageStream::new_with_options(bytes, Options::IgnoreEndMagic.into())
            .map_err(|source| RecordError::Mcap {
            path: path_buf.clone(),
            source,
        })?;
        let mut damage = None;
        for m in stream {
            match m {
                Ok(m) => parts.add(path, &m.channel.topic, m.log_time, &m.data)?,
                Err(err) => {
                    damage = Some(err.to_string());
                    break;
                }
            }
        }
        if let Some(d) = &damage {
            tracing::warn!(file = %path.display(), cause = %d, "recording cut short: reading up to its last complete chunk");
        }
        parts.into_recording(path_buf, finished, damage)
    }

    /// Duration from the first to the last frame, seconds.
    pub fn duration_s(&self) -> f64 {
        match (self.frames.first(), self.frames.last()) {
            (Some(a), Some(b)) => b.log_time_ns.saturating_sub(a.log_time_ns) as f64 / 1e9,
            _ => 0.0,
        }
    }

    /// The design in force on frame `seq`.
    pub fn design_at(&self, seq: u64) -> Design {
        self.designs
            .iter()
            .take_while(|d| d.seq <= seq)
            .last()
            .map(|d| d.design.clone())
            .unwrap_or_default()
    }
}

/// Messages gathered while streaming, before frames are assembled.
#[derive(Default)]
struct Parts {
    info: Option<SessionInfo>,
    calibration: Option<CameraCalibration>,
    images: HashMap<u64, Bytes>,
    overlays: Vec<(u64, String, OverlayMsg)>,
    detections: HashMap<u64, DetectionsMsg>,
    plans: HashMap<u64, PlanSnapshot>,
    placed: Vec<PlacedDot>,
    designs: Vec<DesignMsg>,
    recorder: Option<RecorderStatsMsg>,
    bad: u64,
}

impl Parts {
    fn add(
        &mut self,
        path: &Path,
        topic: &str,
        log_time: u64,
        data: &[u8],
    ) -> Result<(), RecordError> {
        if topic == schema::TOPIC_SESSION {
            self.info = Some(parse_session(path, data)?);
            return Ok(());
        }
        if self.info.is_none() {
            // Not (yet) a Stipple file: nothing to gather; the caller reports it at the end.
            return Ok(());
        }
        let ok = match topic {
            schema::TOPIC_IMAGE => serde_json::from_slice::<CompressedImage>(data)
                .map_err(|e| e.to_string())
                .and_then(|img| {
                    base64::engine::general_purpose::STANDARD
                        .decode(img.data.as_bytes())
                        .map_err(|e| e.to_string())
                })
                .map(|jpeg| {
                    self.images.insert(log_time, Bytes::from(jpeg));
                }),
            schema::TOPIC_OVERLAY => std::str::from_utf8(data)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    serde_json::from_str::<OverlayMsg>(s)
                        .map(|o| self.overlays.push((log_time, s.to_string(), o)))
                        .map_err(|e| e.to_string())
                }),
            schema::TOPIC_DETECTIONS => serde_json::from_slice::<DetectionsMsg>(data)
                .map(|d| {
                    self.detections.insert(d.seq, d);
                })
                .map_err(|e| e.to_string()),
            schema::TOPIC_PLAN => serde_json::from_slice::<PlanSnapshot>(data)
                .map(|p| {
                    self.plans.insert(p.seq, p);
                })
                .map_err(|e| e.to_string()),
            schema::TOPIC_PLACED => serde_json::from_slice::<PlacedDot>(data)
                .map(|p| self.placed.push(p))
                .map_err(|e| e.to_string()),
            schema::TOPIC_DESIGN => serde_json::from_slice::<DesignMsg>(data)
                .map(|d| self.designs.push(d))
                .map_err(|e| e.to_string()),
            schema::TOPIC_RECORDER => serde_json::from_slice::<RecorderStatsMsg>(data)
                .map(|r| self.recorder = Some(r))
                .map_err(|e| e.to_string()),
            schema::TOPIC_CALIBRATION => serde_json::from_slice::<CameraCalibration>(data)
                .map(|c| self.calibration = Some(c))
                .map_err(|e| e.to_string()),
            // Annotations are for Foxglove; unknown topics are someone else's.
            _ => Ok(()),
        };
        if let Err(reason) = ok {
            self.bad += 1;
            tracing::warn!(file = %path.display(), topic, %reason, "skipping a message that does not parse");
        }
        Ok(())
    }

    fn into_recording(
        mut self,
        path: PathBuf,
        finished: bool,
        damage: Option<String>,
    ) -> Result<Recording, RecordError> {
        let Some(info) = self.info else {
            return Err(match damage {
                // A Stipple file killed before its first chunk looks just like this.
                Some(d) => RecordError::Empty {
                    path,
                    detail: format!(" (no session metadata; reading stopped: {d})"),
                },
                None => RecordError::NotStipple {
                    path,
                    topic: schema::TOPIC_SESSION,
                },
            });
        };
        let mut frames: Vec<RecordedFrame> = self
            .overlays
            .into_iter()
            .filter_map(|(log_time_ns, overlay_json, overlay)| {
                let jpeg = self.images.remove(&log_time_ns)?;
                let seq = overlay.seq;
                Some(RecordedFrame {
                    seq,
                    log_time_ns,
                    jpeg,
                    overlay_json,
                    overlay,
                    detections: self.detections.remove(&seq),
                    plan: self.plans.remove(&seq),
                })
            })
            .collect();
        frames.sort_by_key(|f| f.seq);
        frames.dedup_by_key(|f| f.seq);
        if frames.is_empty() {
            return Err(RecordError::Empty {
                path,
                detail: damage
                    .map(|d| format!(" (reading stopped: {d})"))
                    .unwrap_or_default(),
            });
        }
        self.designs.sort_by_key(|d| d.seq);
        self.placed.sort_by_key(|p| p.seq);
        Ok(Recording {
            path,
            info,
            calibration: self.calibration,
            frames,
            placed: self.placed,
            designs: self.designs,
            recorder: self.recorder,
            finished,
            damage,
            bad_messages: self.bad,
        })
    }
}

/// The session message, checked for format and version before anything else is trusted.
fn parse_session(path: &Path, data: &[u8]) -> Result<SessionInfo, RecordError> {
    let bad = |reason: String| RecordError::BadMessage {
        path: path.to_path_buf(),
        topic: schema::TOPIC_SESSION.into(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    if v.get("format").and_then(|f| f.as_str()) != Some("stipple") {
        return Err(RecordError::NotStipple {
            path: path.to_path_buf(),
            topic: schema::TOPIC_SESSION,
        });
    }
    let found = v
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(RecordError::IncompatibleVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        });
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}
