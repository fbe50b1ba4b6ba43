//! The scale at the skin and whether a calibration is good enough for SMP.
//!
//! Densities (dots per cm²) and spacings rest on px/mm at the working plane, the scalp. A
//! calibration view is held wherever the hand happened to be: its scale says nothing about the
//! scalp (on the synthetic rig the least tilted view gave 14.7 px/mm where the skin is at
//! 20). So px/mm is measured on a view of the board lying on the scalp ([`plane_scale`]);
//! without one, the least tilted calibration view stands in ([`views_scale`]) with an
//! uncertainty that spans the distances the views were held at, and the verdict says so.
//!
//! [`verdict`] states in plain words whether the calibration is good enough: RMS at most
//! [`GOOD_RMS_PX`], at least [`GOOD_VIEWS`] views, [`GOOD_COVERAGE`] of the image covered by
//! corners, px/mm known within [`GOOD_SCALE_REL`]; otherwise what to do next.

use nalgebra::Point3;
use serde::Serialize;

use super::board::{BoardCorners, BoardSpec};
use super::calibrate::{
    board_centre_mm, local_scale_at_centre, px_per_mm_from_view, view_homography, CalibrationReport,
};
use super::live::{COVERAGE_COLS, COVERAGE_ROWS, READY_COVERAGE};
use super::model::Calibration;
use super::{zhang, CalibError};

/// Largest RMS reprojection error of a calibration good enough for SMP, px.
pub const GOOD_RMS_PX: f64 = 0.5;
/// Fewest views of a calibration good enough for SMP (fewer get a warning).
pub const GOOD_VIEWS: usize = 10;
/// Smallest share of the image's coverage grid (the live page's 8x6 cells) that the views'
/// corners must reach: the lens is measured where it is used, not extrapolated there.
pub const GOOD_COVERAGE: f64 = READY_COVERAGE;
/// Largest relative one-sigma uncertainty of px/mm good enough for SMP: 1% of px/mm is 2% of
/// a density.
pub const GOOD_SCALE_REL: f64 = 0.01;
/// Below this largest tilt among the views the focal length is poorly separated from the
/// distance: the verdict asks for more tilt when the focal length is also uncertain.
const WELL_TILTED_DEG: f64 = 20.0;

/// Where px/mm came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleSource {
    /// A view of the board lying on the scalp (`--plane`, the page's last step).
    Plane,
    /// The least tilted calibration view: a stand-in, not the working plane.
    LeastTiltedView,
}

/// px/mm at the working plane with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleEstimate {
    /// Pixels per millimetre at the board centre, undistorted pixels.
    pub px_per_mm: f64,
    /// One-sigma uncertainty of `px_per_mm`, px/mm.
    pub sigma_px_per_mm: f64,
    /// Distance from the camera to the board centre along the optical axis, mm.
    pub working_distance_mm: f64,
    /// Where it came from.
    pub source: ScaleSource,
    /// The view it was measured on.
    pub view: String,
}

impl ScaleEstimate {
    /// `sigma_px_per_mm / px_per_mm`.
    pub fn relative_sigma(&self) -> f64 {
        self.sigma_px_per_mm / self.px_per_mm
    }
}

/// px/mm measured on a view of the board lying on the scalp (the working plane).
///
/// The scale is [`px_per_mm_from_view`] (the board-to-undistorted-pixel homography's local
/// scale at the board centre); its uncertainty is the jackknife over the corners (each corner
/// left out in turn: the corners' detection noise as it reaches the scale); the working
/// distance is the depth of the board centre in the pose recovered from the homography.
///
/// # Errors
/// [`CalibError::ImageSizeMismatch`] when the view's image is not the calibration's size;
/// [`CalibError::Solver`] when the corners do not define a homography or a pose.
pub fn plane_scale(
    calib: &Calibration,
    corners: &BoardCorners,
    spec: &BoardSpec,
    view: &str,
) -> Result<ScaleEstimate, CalibError> {
    let got = (corners.image_width, corners.image_height);
    let expected = (calib.image_width, calib.image_height);
    if got != expected {
        return Err(CalibError::ImageSizeMismatch {
            what: format!("working-plane view {view}"),
            expected,
            got,
        });
    }
    let px_per_mm = px_per_mm_from_view(calib, corners, spec)?;
    let n = corners.corners_in_image.len();
    let mut leave_one_out = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = corners.clone();
        c.corners_in_image.remove(i);
        let obj: Vec<[f64; 2]> = spec
            .object_points()
            .into_iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, p)| p)
            .collect();
        leave_one_out.push(scale_at_centre(calib, &c.corners_in_image, &obj, spec)?);
    }
    let mean = leave_one_out.iter().sum::<f64>() / n as f64;
    let jackknife_var = (n as f64 - 1.0) / n as f64
        * leave_one_out
            .iter()
            .map(|s| (s - mean).powi(2))
            .sum::<f64>();
    Ok(ScaleEstimate {
        px_per_mm,
        sigma_px_per_mm: jackknife_var.sqrt(),
        working_distance_mm: board_centre_depth_mm(calib, corners, spec)?,
        source: ScaleSource::Plane,
        view: view.to_owned(),
    })
}

/// The stand-in scale without a working-plane view: the least tilted calibration view, with
/// an uncertainty of half the spread of the views' scales (the scalp could be at any of the
/// distances the board was held at), never less than that view's own noise.
pub fn views_scale(report: &CalibrationReport) -> Option<ScaleEstimate> {
    let finite = || report.views.iter().filter(|v| v.px_per_mm.is_finite());
    let best = finite().min_by(|a, b| a.tilt_deg.total_cmp(&b.tilt_deg))?;
    let lo = finite().map(|v| v.px_per_mm).fold(f64::INFINITY, f64::min);
    let hi = finite()
        .map(|v| v.px_per_mm)
        .fold(f64::NEG_INFINITY, f64::max);
    Some(ScaleEstimate {
        px_per_mm: best.px_per_mm,
        sigma_px_per_mm: (hi - lo) / 2.0,
        working_distance_mm: best.distance_mm,
        source: ScaleSource::LeastTiltedView,
        view: best.name.clone(),
    })
}

/// The local scale at the board centre from corners and their board points (a subset).
fn scale_at_centre(
    calib: &Calibration,
    corners: &[[f64; 2]],
    obj: &[[f64; 2]],
    spec: &BoardSpec,
) -> Result<f64, CalibError> {
    let undistorted: Vec<[f64; 2]> = corners
        .iter()
        .map(|p| {
            let (u, v) = calib.undistort_point(p[0], p[1]);
            [u, v]
        })
        .collect();
    let hm = zhang::homography(obj, &undistorted)
        .ok_or_else(|| CalibError::Solver("degenerate board view".to_owned()))?;
    Ok(local_scale_at_centre(&hm, spec))
}

/// Depth of the board centre (mm) in the pose recovered from the view's homography.
fn board_centre_depth_mm(
    calib: &Calibration,
    corners: &BoardCorners,
    spec: &BoardSpec,
) -> Result<f64, CalibError> {
    let hm = view_homography(calib, corners, spec)?;
    let pose = zhang::pose_from_homography(&hm, &calib.intrinsics)
        .ok_or_else(|| CalibError::Solver("no pose for the board view".to_owned()))?;
    let (cx, cy) = board_centre_mm(spec);
    Ok((pose * Point3::new(cx, cy, 0.0)).z)
}

/// Share of the image's coverage grid ([`COVERAGE_COLS`] x [`COVERAGE_ROWS`] cells, as on the
/// live page) in which some corner of some view fell.
pub fn coverage(views: &[Vec<[f64; 2]>], width: u32, height: u32) -> f64 {
    let mut seen = [[false; COVERAGE_COLS]; COVERAGE_ROWS];
    for p in views.iter().flatten() {
        let cx = (p[0] / f64::from(width) * COVERAGE_COLS as f64).floor();
        let cy = (p[1] / f64::from(height) * COVERAGE_ROWS as f64).floor();
        if cx >= 0.0 && cy >= 0.0 && (cx as usize) < COVERAGE_COLS && (cy as usize) < COVERAGE_ROWS
        {
            seen[cy as usize][cx as usize] = true;
        }
    }
    let n = seen.iter().flatten().filter(|&&s| s).count();
    n as f64 / (COVERAGE_COLS * COVERAGE_ROWS) as f64
}

/// Whether a calibration is good enough for SMP, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Every criterion met.
    pub good_for_smp: bool,
    /// One sentence.
    pub summary: String,
    /// What to do next, one item per unmet criterion (empty when good).
    pub todo: Vec<String>,
}

/// Judges a calibration: RMS <= [`GOOD_RMS_PX`], >= [`GOOD_VIEWS`] views, coverage >=
/// [`GOOD_COVERAGE`], px/mm from a working-plane view and known within [`GOOD_SCALE_REL`].
pub fn verdict(report: &CalibrationReport, scale: Option<&ScaleEstimate>) -> Verdict {
    let c = &report.calibration;
    let views = report.views.len();
    let mut todo = Vec::new();
    if views < GOOD_VIEWS {
        todo.push(format!(
            "more views: {views} used, take at least {GOOD_VIEWS} (10-20), the board in a new place and pose each time"
        ));
    }
    if c.rms_px > GOOD_RMS_PX {
        todo.push(format!(
            "the corners fit poorly (RMS {:.2} px > {GOOD_RMS_PX} px): keep the board flat (glued to card), in focus and still; retake blurred photos",
            c.rms_px
        ));
    }
    let covered = report.coverage;
    if covered < GOOD_COVERAGE {
        todo.push(format!(
            "cover the corners: the board reached {:.0}% of the image, {:.0}% needed; hold it near the edges and corners of the picture",
            100.0 * covered,
            100.0 * GOOD_COVERAGE
        ));
    }
    let max_tilt = report.views.iter().map(|v| v.tilt_deg).fold(0.0, f64::max);
    let focal_rel = c.uncertainty.map_or(0.0, |s| s.fx / c.intrinsics.fx);
    if max_tilt < WELL_TILTED_DEG && focal_rel > GOOD_SCALE_REL {
        todo.push(format!(
            "more tilt: the most tilted view leans {max_tilt:.0} degrees; tilt the board 20-45 degrees in a few views"
        ));
    }
    match scale {
        None => todo.push(
            "px/mm unknown: lay the board flat on the scalp, take one picture and pass it with --plane (live: 'Board on the scalp')".to_owned(),
        ),
        Some(s) if s.source == ScaleSource::LeastTiltedView => todo.push(format!(
            "px/mm is not measured at the skin: {:.2} px/mm comes from calibration view {} ({:.0} mm away), and the views range over ±{:.0}%; lay the board flat on the scalp and pass that picture with --plane (live: 'Board on the scalp')",
            s.px_per_mm,
            s.view,
            s.working_distance_mm,
            100.0 * s.relative_sigma()
        )),
        Some(s) if s.relative_sigma() > GOOD_SCALE_REL => todo.push(format!(
            "px/mm is known only within ±{:.1}%: retake the working-plane view sharp and square-on, and check the printed square size (--square-mm) with a ruler",
            100.0 * s.relative_sigma()
        )),
        Some(_) => {}
    }
    let good_for_smp = todo.is_empty();
    let summary = if good_for_smp {
        format!(
            "good enough for SMP: RMS {:.2} px over {views} views, {:.0}% of the image covered, px/mm known within ±{:.2}%",
            c.rms_px,
            100.0 * covered,
            scale.map_or(0.0, |s| 100.0 * s.relative_sigma())
        )
    } else {
        format!("not yet good enough for SMP ({} to fix)", todo.len())
    };
    Verdict {
        good_for_smp,
        summary,
        todo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::calibrate::ViewReport;
    use crate::calib::model::Intrinsics;

    fn report(views: usize, rms_px: f64, coverage: f64) -> CalibrationReport {
        let mut calibration = Calibration::pinhole(
            1280,
            720,
            Intrinsics {
                fx: 1380.0,
                fy: 1386.0,
                cx: 640.0,
                cy: 360.0,
            },
            20.0,
        );
        calibration.rms_px = rms_px;
        CalibrationReport {
            calibration,
            views: (0..views)
                .map(|i| ViewReport {
                    name: format!("{i:03}.png"),
                    rms_px,
                    tilt_deg: 5.0 + 3.0 * i as f64,
                    tilt_toward_deg: 0.0,
                    px_per_mm: 14.0 + i as f64,
                    distance_mm: 100.0 - i as f64,
                    corners_in_image: Vec::new(),
                })
                .collect(),
            rejected: Vec::new(),
            coverage,
        }
    }

    fn plane(sigma: f64) -> ScaleEstimate {
        ScaleEstimate {
            px_per_mm: 20.0,
            sigma_px_per_mm: sigma,
            working_distance_mm: 69.0,
            source: ScaleSource::Plane,
            view: "scalp.png".into(),
        }
    }

    #[test]
    fn a_good_calibration_is_said_to_be_good() {
        let v = verdict(&report(12, 0.2, 0.8), Some(&plane(0.01)));
        assert!(v.good_for_smp, "{v:?}");
        assert!(v.todo.is_empty());
        assert!(
            v.summary.starts_with("good enough for SMP"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn each_unmet_criterion_says_what_to_do() {
        let v = verdict(&report(5, 0.7, 0.3), None);
        assert!(!v.good_for_smp);
        let all = v.todo.join("\n");
        for needle in ["more views", "RMS 0.70", "cover the corners", "--plane"] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
        assert_eq!(v.todo.len(), 4, "{all}");
        // px/mm known only to 2%: check the board size.
        let v = verdict(&report(12, 0.2, 0.8), Some(&plane(0.4)));
        assert_eq!(v.todo.len(), 1);
        assert!(v.todo[0].contains("--square-mm"), "{:?}", v.todo);
        // The stand-in scale: half the spread of the views (14-25 px/mm), from the least
        // tilted view (the first), never good enough.
        let r = report(12, 0.2, 0.8);
        let s = views_scale(&r).expect("views");
        assert_eq!(s.source, ScaleSource::LeastTiltedView);
        assert_eq!(s.view, "000.png");
        assert!((s.px_per_mm - 14.0).abs() < 1e-12);
        assert!((s.sigma_px_per_mm - 5.5).abs() < 1e-12);
        assert!(!verdict(&r, Some(&s)).good_for_smp);
    }

    #[test]
    fn coverage_counts_grid_cells_reached() {
        // The four corners of the image: 4 of 48 cells.
        let corners = vec![vec![
            [1.0, 1.0],
            [1279.0, 1.0],
            [1.0, 719.0],
            [1279.0, 719.0],
        ]];
        assert!((coverage(&corners, 1280, 720) - 4.0 / 48.0).abs() < 1e-12);
    }
}
