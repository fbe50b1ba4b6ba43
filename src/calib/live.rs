//! Incremental calibration for the live page: views are added one at a time while the artist
//! moves the board; after each the calibrator reports how much of the image the board has
//! covered and the running RMS, and says when there is enough to finish.

use image::GrayImage;

use super::board::{detect_board, BoardCorners, BoardSpec};
use super::calibrate::{calibrate_corners, CalibrationReport, ViewInput, MIN_VIEWS};
use super::model::Calibration;
use super::CalibError;

/// Coverage grid: the image is split into this many columns...
pub const COVERAGE_COLS: usize = 8;
/// ...and rows; coverage is the fraction of cells in which some corner has been seen.
pub const COVERAGE_ROWS: usize = 6;
/// Views needed before [`LiveCalibrator::is_ready`].
pub const READY_VIEWS: usize = 10;
/// Coverage needed before [`LiveCalibrator::is_ready`].
pub const READY_COVERAGE: f64 = 0.65;

/// What the live page shows after each view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveStatus {
    /// Views accepted so far.
    pub views: usize,
    /// Fraction of the coverage grid seen so far, 0-1.
    pub coverage: f64,
    /// RMS reprojection error of a calibration from the views so far (from 3 views on).
    pub rms_px: Option<f64>,
    /// Whether [`LiveCalibrator::finish`] would give a trustworthy calibration.
    pub ready: bool,
}

/// Collects views and calibrates incrementally.
#[derive(Debug, Clone)]
pub struct LiveCalibrator {
    spec: BoardSpec,
    image_width: u32,
    image_height: u32,
    views: Vec<ViewInput>,
    covered: [[bool; COVERAGE_COLS]; COVERAGE_ROWS],
    last: Option<CalibrationReport>,
}

impl LiveCalibrator {
    /// A calibrator for `spec` boards in frames of `image_width x image_height`.
    pub fn new(spec: BoardSpec, image_width: u32, image_height: u32) -> Self {
        Self {
            spec,
            image_width,
            image_height,
            views: Vec::new(),
            covered: [[false; COVERAGE_COLS]; COVERAGE_ROWS],
            last: None,
        }
    }

    /// Detects the board in a frame and adds the view.
    ///
    /// # Errors
    /// [`CalibError::BadBoard`] with the detector's reason when no board is found, or as
    /// [`LiveCalibrator::add_view`].
    pub fn add_image(&mut self, frame: &GrayImage) -> Result<LiveStatus, CalibError> {
        let corners =
            detect_board(frame, &self.spec).map_err(|e| CalibError::BadBoard(e.to_string()))?;
        self.add_view(corners)
    }

    /// Adds one view's corners, recalibrates from 3 views on, and reports.
    ///
    /// # Errors
    /// [`CalibError::ImageSizeMismatch`] for a view of another image size;
    /// [`CalibError::BadBoard`] for the wrong number of corners.
    pub fn add_view(&mut self, corners: BoardCorners) -> Result<LiveStatus, CalibError> {
        let got = (corners.image_width, corners.image_height);
        if got != (self.image_width, self.image_height) {
            return Err(CalibError::ImageSizeMismatch {
                what: "live view".to_owned(),
                expected: (self.image_width, self.image_height),
                got,
            });
        }
        if corners.corners_in_image.len() != self.spec.corner_count() {
            return Err(CalibError::BadBoard(format!(
                "view has {} corners, the board has {}",
                corners.corners_in_image.len(),
                self.spec.corner_count()
            )));
        }
        for p in &corners.corners_in_image {
            let cx = (p[0] / f64::from(self.image_width) * COVERAGE_COLS as f64).floor();
            let cy = (p[1] / f64::from(self.image_height) * COVERAGE_ROWS as f64).floor();
            if cx >= 0.0
                && cy >= 0.0
                && (cx as usize) < COVERAGE_COLS
                && (cy as usize) < COVERAGE_ROWS
            {
                self.covered[cy as usize][cx as usize] = true;
            }
        }
        let name = format!("live-{:03}", self.views.len());
        self.views.push(ViewInput { name, corners });
        if self.views.len() >= MIN_VIEWS {
            match calibrate_corners(&self.views, &self.spec) {
                Ok(report) => self.last = Some(report),
                Err(err) => tracing::warn!(cause = %err, "live recalibration failed"),
            }
        }
        Ok(self.status())
    }

    /// Fraction of the coverage grid seen so far.
    pub fn coverage(&self) -> f64 {
        let n = self.covered.iter().flatten().filter(|&&c| c).count();
        n as f64 / (COVERAGE_COLS * COVERAGE_ROWS) as f64
    }

    /// RMS of the latest calibration, if any.
    pub fn rms_px(&self) -> Option<f64> {
        self.last.as_ref().map(|r| r.calibration.rms_px)
    }

    /// Enough views covering enough of the image.
    pub fn is_ready(&self) -> bool {
        self.views.len() >= READY_VIEWS && self.coverage() >= READY_COVERAGE && self.last.is_some()
    }

    /// The current status.
    pub fn status(&self) -> LiveStatus {
        LiveStatus {
            views: self.views.len(),
            coverage: self.coverage(),
            rms_px: self.rms_px(),
            ready: self.is_ready(),
        }
    }

    /// The calibration from all views so far.
    ///
    /// # Errors
    /// As [`calibrate_corners`] (e.g. fewer than 3 views).
    pub fn finish(self) -> Result<Calibration, CalibError> {
        match self.last {
            Some(report) if report.views.len() + report.rejected.len() == self.views.len() => {
                Ok(report.calibration)
            }
            _ => calibrate_corners(&self.views, &self.spec).map(|r| r.calibration),
        }
    }
}
