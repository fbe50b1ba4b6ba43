//! Incremental calibration for the live page: views are added one at a time while the artist
//! moves the board; after each the calibrator reports how much of the image the board has
//! covered, which ways it has been tilted and the running RMS, and says when there is enough to
//! finish (or, until then, what is still missing).

use image::GrayImage;
use serde::Serialize;

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
/// A view counts as tilted toward a side from this tilt on, degrees. Views facing the camera
/// say nothing about the focal length (Zhang): tilted ones do.
pub const TILT_MIN_DEG: f64 = 15.0;
/// Tilt directions (of left, right, up, down) needed before [`LiveCalibrator::is_ready`]: at
/// least one about each image axis, so that fx and fy are both observed.
pub const READY_TILT_DIRECTIONS: usize = 3;
/// The names of the tilt directions, in [`LiveStatus::tilts`] order: where the board's normal
/// leans in the image.
pub const TILT_DIRECTIONS: [&str; 4] = ["left", "right", "up", "down"];

/// What the live page shows after each view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStatus {
    /// Views accepted so far.
    pub views: usize,
    /// Fraction of the coverage grid seen so far, 0-1.
    pub coverage: f64,
    /// Views whose corners fell in each cell of the [`COVERAGE_COLS`] x [`COVERAGE_ROWS`]
    /// grid, row-major (the page colours the cells by it).
    pub cells: Vec<u32>,
    /// Views tilted by at least `TILT_MIN_DEG` toward each of `TILT_DIRECTIONS`.
    pub tilts: [u32; 4],
    /// RMS reprojection error of a calibration from the views so far (from 3 views on).
    pub rms_px: Option<f64>,
    /// Whether [`LiveCalibrator::finish`] would give a trustworthy calibration.
    pub ready: bool,
    /// Until ready: what is still missing, in words for the artist.
    pub missing: Option<String>,
}

/// Collects views and calibrates incrementally.
#[derive(Debug, Clone)]
pub struct LiveCalibrator {
    spec: BoardSpec,
    image_width: u32,
    image_height: u32,
    views: Vec<ViewInput>,
    cells: [[u32; COVERAGE_COLS]; COVERAGE_ROWS],
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
            cells: [[0; COVERAGE_COLS]; COVERAGE_ROWS],
            last: None,
        }
    }

    /// The board it looks for.
    pub fn spec(&self) -> &BoardSpec {
        &self.spec
    }

    /// Frame size it calibrates.
    pub fn image_size(&self) -> (u32, u32) {
        (self.image_width, self.image_height)
    }

    /// The corners of the views kept so far.
    pub fn views(&self) -> impl Iterator<Item = &BoardCorners> {
        self.views.iter().map(|v| &v.corners)
    }

    /// The latest calibration (from 3 views on), with its per-view evidence.
    pub fn report(&self) -> Option<&CalibrationReport> {
        self.last.as_ref()
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
        let mut seen = [[false; COVERAGE_COLS]; COVERAGE_ROWS];
        for p in &corners.corners_in_image {
            let cx = (p[0] / f64::from(self.image_width) * COVERAGE_COLS as f64).floor();
            let cy = (p[1] / f64::from(self.image_height) * COVERAGE_ROWS as f64).floor();
            if cx >= 0.0
                && cy >= 0.0
                && (cx as usize) < COVERAGE_COLS
                && (cy as usize) < COVERAGE_ROWS
            {
                seen[cy as usize][cx as usize] = true;
            }
        }
        for (row, seen_row) in self.cells.iter_mut().zip(&seen) {
            for (cell, &s) in row.iter_mut().zip(seen_row) {
                *cell += u32::from(s);
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
        let n = self.cells.iter().flatten().filter(|&&c| c > 0).count();
        n as f64 / (COVERAGE_COLS * COVERAGE_ROWS) as f64
    }

    /// RMS of the latest calibration, if any.
    pub fn rms_px(&self) -> Option<f64> {
        self.last.as_ref().map(|r| r.calibration.rms_px)
    }

    /// Views of the latest calibration tilted by at least `TILT_MIN_DEG` toward each of
    /// `TILT_DIRECTIONS`.
    pub fn tilts(&self) -> [u32; 4] {
        let mut tilts = [0; 4];
        for v in self.last.iter().flat_map(|r| &r.views) {
            if v.tilt_deg < TILT_MIN_DEG {
                continue;
            }
            let (c, s) = (
                v.tilt_toward_deg.to_radians().cos(),
                v.tilt_toward_deg.to_radians().sin(),
            );
            // The dominant axis of the lean; a diagonal tilt counts for both.
            let diag = std::f64::consts::FRAC_1_SQRT_2 - 0.1;
            if c <= -diag {
                tilts[0] += 1;
            }
            if c >= diag {
                tilts[1] += 1;
            }
            if s <= -diag {
                tilts[2] += 1;
            }
            if s >= diag {
                tilts[3] += 1;
            }
        }
        tilts
    }

    /// What is still missing before [`LiveCalibrator::is_ready`], in words for the artist;
    /// `None` when ready.
    pub fn missing(&self) -> Option<String> {
        if self.views.len() < READY_VIEWS {
            return Some(format!(
                "{} of {READY_VIEWS} views: hold the board still in new places",
                self.views.len()
            ));
        }
        let coverage = self.coverage();
        if coverage < READY_COVERAGE {
            return Some(format!(
                "the board has covered {:.0}% of the image, {:.0}% needed: move it into the \
                 empty cells, corners and edges included",
                100.0 * coverage,
                100.0 * READY_COVERAGE
            ));
        }
        let Some(report) = &self.last else {
            return Some("no calibration from the views yet".to_owned());
        };
        let tilts = self.tilts();
        let directions = tilts.iter().filter(|&&n| n > 0).count();
        if directions < READY_TILT_DIRECTIONS {
            let need: Vec<&str> = TILT_DIRECTIONS
                .iter()
                .zip(tilts)
                .filter(|(_, n)| *n == 0)
                .map(|(d, _)| *d)
                .collect();
            return Some(format!(
                "tilt the board more (at least {TILT_MIN_DEG:.0} degrees): toward {} still \
                 missing, {READY_TILT_DIRECTIONS} of 4 directions needed",
                need.join(", ")
            ));
        }
        if report.views.len() < READY_VIEWS {
            return Some(format!(
                "{} views were outliers: hold the board flat and still",
                report.rejected.len()
            ));
        }
        None
    }

    /// Enough views, covering enough of the image, tilted enough ways.
    pub fn is_ready(&self) -> bool {
        self.missing().is_none()
    }

    /// The current status.
    pub fn status(&self) -> LiveStatus {
        let missing = self.missing();
        LiveStatus {
            views: self.views.len(),
            coverage: self.coverage(),
            cells: self.cells.iter().flatten().copied().collect(),
            tilts: self.tilts(),
            rms_px: self.rms_px(),
            ready: missing.is_none(),
            missing,
        }
    }

    /// The calibration from all views so far.
    ///
    /// # Errors
    /// As [`calibrate_corners`] (e.g. fewer than 3 views).
    pub fn finish(self) -> Result<Calibration, CalibError> {
        self.finish_report().map(|r| r.calibration)
    }

    /// As [`LiveCalibrator::finish`], with the views' report (tilts, distances, scales).
    ///
    /// # Errors
    /// As [`calibrate_corners`].
    pub fn finish_report(self) -> Result<CalibrationReport, CalibError> {
        match self.last {
            Some(report) if report.views.len() + report.rejected.len() == self.views.len() => {
                Ok(report)
            }
            _ => calibrate_corners(&self.views, &self.spec),
        }
    }
}
