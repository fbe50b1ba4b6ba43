//! Camera rig calibration: board detection, Zhang's initial estimate, joint Levenberg-Marquardt
//! refinement of a Brown-Conrady camera, the scale at the skin (px/mm), calibration files, an
//! incremental calibrator for the live page, and the synthetic board renderer that tests it all.
//!
//! Entry points: [`calibrate_images`] (what `stipple calibrate` runs), [`load`] /
//! [`Calibration::save`] for `calibration/*.toml`, [`LiveCalibrator`] for interactive use,
//! [`LiveCalibration`] for the calibration mode of `stipple serve` (with [`HeldBoard`], the
//! synthetic board source that lets it run without a camera).
//!
//! # Conventions
//!
//! - **Pixels**: `(u, v)` = (column, row), origin at the *centre* of the top-left pixel, as
//!   OpenCV. A pixel `(u, v)` covers `[u - 0.5, u + 0.5] x [v - 0.5, v + 0.5]`.
//! - **Camera frame**: x right, y down, z forward along the optical axis (OpenCV). Points in it
//!   are `point_in_camera`.
//! - **Board frame**: origin at the first inner corner, x along a row of `inner_cols` corners,
//!   y along a column of `inner_rows`, z = x × y pointing away from the camera, units mm.
//!   Corner `(i, j)` is at `(i · square_mm, j · square_mm, 0)` and is number `j · inner_cols + i`
//!   in every corner list (OpenCV's order).
//! - **Poses** are `camera_from_board: Isometry3<f64>` (OpenCV's `rvec, tvec`).
//! - **Normalized coordinates** `(x, y) = (X / Z, Y / Z)` are undistorted; distortion maps them
//!   to `(x_d, y_d)` and the intrinsics to pixels (see [`model`]).
//! - **Undistorted pixels** are where an ideal pinhole with the same intrinsics would image a
//!   ray; lengths at the working plane are measured on them and `px_per_mm` refers to them.
//! - **Board size** `9x6` counts *inner* corners (OpenCV's `patternSize`), i.e. 10 x 7 squares.

mod board;
mod calibrate;
mod file;
mod held;
mod live;
pub mod model;
mod refine;
pub mod render;
mod saddle;
pub mod scale;
mod service;
mod zhang;

use std::path::PathBuf;

pub use board::{detect_board, BoardCorners, BoardSpec, NotFound};
pub use calibrate::{
    calibrate_corners, calibrate_images, px_per_mm_from_view, CalibrationReport, RejectedView,
    ViewInput, ViewReport,
};
pub use file::{date_utc, load, load_for_image, today_utc};
pub use held::{HeldBoard, HeldBoardConfig, HELD_BOARD};
pub use live::{
    LiveCalibrator, LiveStatus, COVERAGE_COLS, COVERAGE_ROWS, READY_COVERAGE, READY_VIEWS,
};
pub use model::{BoardInfo, Calibration, Distortion, Intrinsics, PlaneMap, UndistortMap};
pub use scale::{plane_scale, verdict, views_scale, ScaleEstimate, ScaleSource, Verdict};
pub use service::{CalibSnapshot, LastDetection, LiveCalibration, SaveError, Saved, PLANE_STILL_S};

/// Everything that can go wrong in calibration and with calibration files.
#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A calibration file is not valid TOML or lacks a field.
    #[error("calibration file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the field.
        message: String,
    },
    /// A field of a calibration file has an unusable value.
    #[error("calibration file {}: field `{field}` {reason}", path.display())]
    InvalidField {
        /// The file.
        path: PathBuf,
        /// Dotted field name, e.g. `intrinsics.fx`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A calibration file was made for frames of another size.
    #[error(
        "calibration file {}: field `image_width`/`image_height` is {}x{} but the frames are {}x{}",
        path.display(), file.0, file.1, frames.0, frames.1
    )]
    FileImageSizeMismatch {
        /// The file.
        path: PathBuf,
        /// Size in the file.
        file: (u32, u32),
        /// Size of the frames.
        frames: (u32, u32),
    },
    /// An image does not have the size the calibration expects.
    #[error("{what} is {}x{} px, expected {}x{}", got.0, got.1, expected.0, expected.1)]
    ImageSizeMismatch {
        /// Which image.
        what: String,
        /// The expected size.
        expected: (u32, u32),
        /// The size it has.
        got: (u32, u32),
    },
    /// The images with a board come in two or more sizes, equally many of each.
    #[error("cannot tell which image size to calibrate: {0}")]
    AmbiguousImageSize(String),
    /// The board description is unusable.
    #[error("bad board: {0}")]
    BadBoard(String),
    /// Too few views had a board to calibrate from.
    #[error("only {usable} usable views, need at least {needed}")]
    NotEnoughViews {
        /// Views with a detected board.
        usable: usize,
        /// Views needed.
        needed: usize,
    },
    /// The estimate could not be computed.
    #[error("{0}")]
    Solver(String),
    /// An image could not be decoded.
    #[error("{}: {source}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
}
