//! Recording and replay of sessions: `stipple serve --record FILE.mcap`, `stipple replay`.
//!
//! A session is written as [MCAP](https://mcap.dev) so that it opens in Foxglove and any MCAP
//! tool, and read back by Stipple for replay, the training report and touch-up comparison.
//!
//! - [`schema`]: the channels, their JSON schemas (the standard Foxglove ones where one fits:
//!   `foxglove.CompressedImage`, `foxglove.ImageAnnotations`, `foxglove.CameraCalibration`) and
//!   Stipple's own messages (session metadata with a format version, detections, plan, design
//!   changes, placed dots, recorder statistics).
//! - [`writer`]: the [`Recorder`], a writer thread fed by a bounded channel with `try_send`: a
//!   slow disk drops recorded frames (counted, shown in `/api/status` and written in the file),
//!   never live ones. Chunks are closed at least every [`writer::FLUSH_EVERY`], so a crash or
//!   `kill -9` loses at most the last second; a clean stop writes the summary and index.
//! - [`reader`]: [`Recording::open`] reads a file back, recovering every complete chunk of a
//!   truncated one, and refuses anything that is not a Stipple recording with a clear error.
//! - [`replay`]: serves the live page from a recording (play, pause, step, seek, speed) and can
//!   re-run perception and planning on the recorded frames ([`rerun`]).
//! - [`report`]: the training score of a session (HTML with density pictures, or JSON);
//!   [`compare`]: two recordings of the same scalp, dots matched, faded and spread ones listed.
//!
//! # Exact re-runs
//! The file holds JPEG frames, which are lossy. So that re-running perception on a recording
//! gives exactly the recorded detections, the live pipeline, while it records, detects on the
//! decoded JPEG (the very picture the file holds, decoded by [`decode_jpeg`], which replay
//! uses too) instead of the raw camera frame. The cost is the JPEG round trip on the
//! processing path (encoded, then decoded, before detection instead of encoded in parallel
//! with it); without `--record` nothing changes. The decoder is deterministic on one machine;
//! a different CPU (another SIMD path) could differ in the last bit of a pixel.

pub mod compare;
pub mod reader;
pub mod replay;
pub mod report;
pub mod rerun;
pub mod schema;
pub mod writer;

use std::path::PathBuf;

use image::RgbImage;

pub use reader::{RecordedFrame, Recording};
pub use writer::{FrameRecord, Recorder, RecorderStatus};

/// Why a recording could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not start like an MCAP file.
    #[error("{path}: not an MCAP file (no MCAP magic at the start)")]
    NotMcap {
        /// The file.
        path: PathBuf,
    },
    /// The file ends before its header is complete.
    #[error("{path}: truncated MCAP header ({len} bytes): the recording holds nothing")]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// A valid MCAP file that was not written by Stipple (no session channel).
    #[error("{path}: an MCAP file without Stipple's channels (no {topic} message): not a Stipple recording")]
    NotStipple {
        /// The file.
        path: PathBuf,
        /// The channel that is missing.
        topic: &'static str,
    },
    /// A Stipple recording in a format version this build cannot read.
    #[error("{path}: Stipple recording format {found}, this build reads format {expected}")]
    IncompatibleVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// A Stipple recording with no complete frame (killed before its first chunk).
    #[error("{path}: the recording holds no complete frame{detail}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// Why, when known.
        detail: String,
    },
    /// A message that does not parse as its schema says.
    #[error("{path}: bad {topic} message: {reason}")]
    BadMessage {
        /// The file.
        path: PathBuf,
        /// Its channel.
        topic: String,
        /// The parser's message.
        reason: String,
    },
    /// The MCAP library refused the file or a write.
    #[error("{path}: {source}")]
    Mcap {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: mcap::McapError,
    },
    /// A recorded frame is not a decodable JPEG.
    #[error("frame {seq}: cannot decode the recorded JPEG: {reason}")]
    Jpeg {
        /// The frame.
        seq: u64,
        /// The decoder's message.
        reason: String,
    },
}

/// Decodes a recorded (or about-to-be-recorded) JPEG frame to RGB.
///
/// The live pipeline, while recording, detects on the output of this very function, and replay
/// decodes with it again, so both see the same pixels (same decoder, deterministic).
///
/// # Errors
/// [`RecordError::Jpeg`] when the bytes are not a decodable JPEG.
pub fn decode_jpeg(seq: u64, jpeg: &[u8]) -> Result<RgbImage, RecordError> {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .map(|i| i.to_rgb8())
        .map_err(|e| RecordError::Jpeg {
            seq,
            reason: e.to_string(),
        })
}

/// `err` and each error under it, joined with `: ` (as anyhow's `{:#}`), skipping a cause whose
/// text the level above already shows.
pub fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
