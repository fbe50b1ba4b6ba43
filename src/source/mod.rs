//! Frame sources. `synth` renders a synthetic scalp with full ground truth; `file` loads stills.
//!
//! For the live service, [`Source`] is the one enum over where frames come from: the synthetic
//! demo head ([`demo`], the default), a real UVC camera ([`camera`]) or an image folder
//! ([`images`]). [`Source::next`] blocks until the next frame is due (it runs on the capture
//! thread) and stamps it with its [`FrameMeta`]; losing and regaining a camera are events,
//! not errors, so the service keeps running.

pub mod camera;
pub mod demo;
pub mod file;
pub mod images;
pub mod synth;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::frame::{Frame, FrameMeta};
use crate::geometry::Similarity;
pub use camera::{CameraConfig, CameraInfo, CameraSource};
pub use demo::{DemoConfig, DemoSource, NeedleDot, NeedleHint};
pub use images::ImageSource;

/// Why a source could not be opened or read.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The system lists no camera.
    #[error("no camera found: is one plugged in and readable (/dev/video*, group 'video')? Use --source synthetic for the demo")]
    NoCamera,
    /// The camera backend failed.
    #[error("camera error: {0}")]
    Camera(String),
    /// Built without the `camera` feature.
    #[error("camera support is not built in (rebuild with the 'camera' feature)")]
    CameraSupportNotBuilt,
    /// A folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An image folder holds no image.
    #[error("{0}: no image (.png, .jpg, .tif, .bmp, .webp) in this folder")]
    EmptyFolder(PathBuf),
    /// A file is not a readable image.
    #[error("{path}: cannot decode: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
}

/// What the capture thread got from the source.
#[derive(Debug)]
pub enum Captured {
    /// A frame, with the true `image_from_scene` when the source knows it (synthetic only).
    Frame(Frame, Option<Similarity>),
    /// The source's state changed (camera lost or back); shown on the page and logged.
    Status {
        /// Whether frames are flowing.
        connected: bool,
        /// What happened.
        message: String,
    },
}

/// The fixed set of frame sources.
#[derive(Debug)]
pub enum Source {
    /// The synthetic head with its simulated needle.
    Demo(Box<DemoSource>),
    /// A synthetic calibration board held up to the camera (calibration mode without one).
    Board(Box<crate::calib::HeldBoard>),
    /// A real camera.
    Camera(CameraSource),
    /// An image folder played at a fixed rate.
    Images {
        /// The folder.
        source: ImageSource,
        /// Frame period.
        period: Duration,
        /// When the next frame is due.
        next_due: Option<Instant>,
    },
}

/// Stamps frames from one source with increasing sequence numbers.
#[derive(Debug)]
pub struct Stamper {
    next_seq: u64,
    camera_id: u32,
}

impl Stamper {
    /// Sequence numbers from 0 for `camera_id`.
    pub fn new(camera_id: u32) -> Self {
        Self {
            next_seq: 0,
            camera_id,
        }
    }

    fn stamp(&mut self, image: image::RgbImage) -> Frame {
        let meta = FrameMeta {
            seq: self.next_seq,
            captured_at: Instant::now(),
            camera_id: self.camera_id,
        };
        self.next_seq += 1;
        Frame {
            meta,
            image: Arc::new(image),
        }
    }
}

impl Source {
    /// A short description for the page and `/api/status` ("synthetic (...)", "camera:0 ...").
    pub fn describe(&self) -> String {
        match self {
            Source::Demo(d) => d.describe(),
            Source::Board(b) => b.describe(),
            Source::Camera(c) => c.describe(),
            Source::Images { source, .. } => source.describe(),
        }
    }

    /// Blocks until the next frame (or state change) and stamps it.
    ///
    /// # Errors
    /// Only a frame that cannot be decoded (image folder); the caller warns and goes on.
    pub fn next(&mut self, stamper: &mut Stamper) -> Result<Captured, CaptureError> {
        match self {
            Source::Demo(demo) => {
                let f = demo.next_frame();
                // The demo's frame index is the sequence number, so that the needle can map a
                // plan made on frame `seq` back to the scene.
                stamper.next_seq = demo.frame_index() - 1;
                Ok(Captured::Frame(
                    stamper.stamp(f.image),
                    Some(f.image_from_scene),
                ))
            }
            Source::Board(board) => Ok(Captured::Frame(stamper.stamp(board.next_frame()), None)),
            Source::Camera(cam) => Ok(match cam.grab() {
                camera::CameraEvent::Frame(img) => Captured::Frame(stamper.stamp(img), None),
                camera::CameraEvent::Down(message) => Captured::Status {
                    connected: false,
                    message,
                },
                camera::CameraEvent::Up(message) => Captured::Status {
                    connected: true,
                    message,
                },
            }),
            Source::Images {
                source,
                period,
                next_due,
            } => {
                let now = Instant::now();
                let due = *next_due.get_or_insert(now);
                if due > now {
                    std::thread::sleep(due - now);
                }
                *next_due = Some((due + *period).max(Instant::now() - *period));
                let img = source.next_image()?;
                Ok(Captured::Frame(stamper.stamp(img), None))
            }
        }
    }
}
