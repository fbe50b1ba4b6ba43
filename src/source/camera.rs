//! Real UVC cameras through `nokhwa` (V4L2 on Linux, Media Foundation on Windows,
//! AVFoundation on macOS).
//!
//! # Use
//! `stipple serve --source camera` opens camera 0, `--source camera:2` the third one;
//! `stipple serve --list-cameras` prints what the system offers. The camera is asked for
//! `--width`x`--height` at `--fps` in MJPEG (the format every UVC camera offers at 720p and
//! above), and `nokhwa` picks the closest mode it has. When the camera disappears mid-session
//! (cable pulled, USB reset), the capture thread reports it on the page and in the log, keeps the
//! server up, and tries to reopen the device every [`RECONNECT_INTERVAL`] until it returns.
//!
//! Built only with the `camera` Cargo feature (on by default); without it, opening a camera is
//! a clear [`CaptureError::CameraSupportNotBuilt`].

use std::time::Duration;

use super::CaptureError;

/// How often a lost camera is looked for again.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// One camera as the system lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraInfo {
    /// The index to pass as `--source camera:INDEX`.
    pub index: u32,
    /// Human-readable name.
    pub name: String,
    /// Backend-specific description (device path on Linux).
    pub description: String,
}

/// What to ask the camera for.
#[derive(Debug, Clone, Copy)]
pub struct CameraConfig {
    /// Device index.
    pub index: u32,
    /// Requested width, pixels.
    pub width: u32,
    /// Requested height, pixels.
    pub height: u32,
    /// Requested frame rate.
    pub fps: u32,
}

#[cfg(feature = "camera")]
mod imp {
    use nokhwa::pixel_format::RgbFormat;
    use nokhwa::utils::{
        ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
        Resolution,
    };
    use nokhwa::Camera;

    use super::{CameraConfig, CameraInfo, CaptureError};

    /// Lists the cameras the system offers; empty when there are none.
    pub fn list() -> Result<Vec<CameraInfo>, CaptureError> {
        let cams =
            nokhwa::query(ApiBackend::Auto).map_err(|e| CaptureError::Camera(e.to_string()))?;
        Ok(cams
            .into_iter()
            .enumerate()
            .map(|(i, c)| CameraInfo {
                index: match c.index() {
                    CameraIndex::Index(n) => *n,
                    CameraIndex::String(_) => i as u32,
                },
                name: c.human_name(),
                description: c.description().to_string(),
            })
            .collect())
    }

    /// An open camera.
    pub struct Device {
        camera: Camera,
    }

    impl std::fmt::Debug for Device {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Device")
                .field("info", &self.camera.info().human_name())
                .finish()
        }
    }

    impl Device {
        /// Opens and starts streaming.
        pub fn open(cfg: &CameraConfig) -> Result<Self, CaptureError> {
            let want = CameraFormat::new(
                Resolution::new(cfg.width, cfg.height),
                FrameFormat::MJPEG,
                cfg.fps,
            );
            let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(want));
            let mut camera = Camera::new(CameraIndex::Index(cfg.index), format)
                .map_err(|e| CaptureError::Camera(format!("camera {}: {e}", cfg.index)))?;
            camera
                .open_stream()
                .map_err(|e| CaptureError::Camera(format!("camera {}: {e}", cfg.index)))?;
            tracing::info!(index = cfg.index, format = %camera.camera_format(), "camera open");
            Ok(Self { camera })
        }

        /// Blocks for the next frame and decodes it to RGB.
        pub fn grab(&mut self) -> Result<image::RgbImage, CaptureError> {
            let buf = self
                .camera
                .frame()
                .map_err(|e| CaptureError::Camera(e.to_string()))?;
            buf.decode_image::<RgbFormat>()
                .map_err(|e| CaptureError::Camera(e.to_string()))
        }
    }
}

#[cfg(not(feature = "camera"))]
mod imp {
    use super::{CameraConfig, CameraInfo, CaptureError};

    /// Lists the cameras the system offers: not built in.
    pub fn list() -> Result<Vec<CameraInfo>, CaptureError> {
        Err(CaptureError::CameraSupportNotBuilt)
    }

    /// An open camera (never constructed without the `camera` feature).
    #[derive(Debug)]
    pub struct Device;

    impl Device {
        /// Opens a camera: not built in.
        pub fn open(_cfg: &CameraConfig) -> Result<Self, CaptureError> {
            Err(CaptureError::CameraSupportNotBuilt)
        }

        /// Never reached.
        pub fn grab(&mut self) -> Result<image::RgbImage, CaptureError> {
            Err(CaptureError::CameraSupportNotBuilt)
        }
    }
}

/// Lists the cameras the system offers (an empty list when none is attached).
///
/// # Errors
/// [`CaptureError::Camera`] when the backend cannot be queried,
/// [`CaptureError::CameraSupportNotBuilt`] without the `camera` feature.
pub fn list_cameras() -> Result<Vec<CameraInfo>, CaptureError> {
    imp::list()
}

/// A camera source that survives the camera going away.
#[derive(Debug)]
pub struct CameraSource {
    config: CameraConfig,
    device: Option<imp::Device>,
    /// Whether a "disconnected" state has already been reported (report once per outage).
    reported_down: bool,
}

/// What one attempt to read the camera gave.
#[derive(Debug)]
pub enum CameraEvent {
    /// A frame.
    Frame(image::RgbImage),
    /// The camera is (still) unavailable; the message says why.
    Down(String),
    /// The camera came back.
    Up(String),
}

impl CameraSource {
    /// Checks that the camera exists and opens it.
    ///
    /// # Errors
    /// [`CaptureError::NoCamera`] when the system lists no camera at all,
    /// [`CaptureError::Camera`] when the chosen one cannot be opened.
    pub fn open(config: CameraConfig) -> Result<Self, CaptureError> {
        let cams = list_cameras()?;
        if cams.is_empty() {
            return Err(CaptureError::NoCamera);
        }
        let device = imp::Device::open(&config)?;
        Ok(Self {
            config,
            device: Some(device),
            reported_down: false,
        })
    }

    /// A short description for the page and `/api/status`.
    pub fn describe(&self) -> String {
        format!(
            "camera:{} ({}x{} @ {} fps)",
            self.config.index, self.config.width, self.config.height, self.config.fps
        )
    }

    /// Blocks for the next frame, or reports the camera down/up. Never fails: a lost camera is
    /// an event, and reconnection is retried every [`RECONNECT_INTERVAL`].
    pub fn grab(&mut self) -> CameraEvent {
        if let Some(dev) = self.device.as_mut() {
            match dev.grab() {
                Ok(img) => return CameraEvent::Frame(img),
                Err(err) => {
                    self.device = None;
                    self.reported_down = true;
                    tracing::warn!(index = self.config.index, cause = %err, "camera lost; will retry");
                    return CameraEvent::Down(format!(
                        "camera {} disconnected: {err}",
                        self.config.index
                    ));
                }
            }
        }
        std::thread::sleep(RECONNECT_INTERVAL);
        match imp::Device::open(&self.config) {
            Ok(dev) => {
                self.device = Some(dev);
                self.reported_down = false;
                tracing::info!(index = self.config.index, "camera reconnected");
                CameraEvent::Up(format!("camera {} reconnected", self.config.index))
            }
            Err(err) => CameraEvent::Down(format!(
                "camera {} disconnected, retrying: {err}",
                self.config.index
            )),
        }
    }
}
