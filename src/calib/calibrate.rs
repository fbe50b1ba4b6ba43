//! The calibration pipeline: detect the board in every view, estimate (Zhang), refine (LM),
//! flag and drop outlier views, refine again, and measure the scale at the working plane.

use image::GrayImage;
use nalgebra::{Matrix3, Vector3};

use super::board::{detect_board, BoardCorners, BoardSpec};
use super::model::{BoardInfo, Calibration, Distortion, MODEL_NAME};
use super::refine::{refine, Observations, Refined};
use super::{file, zhang, CalibError};

/// Fewest views with a board for a calibration.
pub const MIN_VIEWS: usize = 3;
/// Fewer views than this fix k3 = 0 (too little data to separate it from k1, k2).
const MIN_VIEWS_FOR_K3: usize = 6;
/// A view is an outlier when its RMS exceeds this multiple of the median view RMS...
const OUTLIER_FACTOR: f64 = 3.0;
/// ...and this absolute floor, in pixels.
const OUTLIER_MIN_PX: f64 = 0.5;

/// One view to calibrate from.
#[derive(Debug, Clone)]
pub struct ViewInput {
    /// Name shown in reports (usually the file name).
    pub name: String,
    /// The detected corners.
    pub corners: BoardCorners,
}

/// How one used view fits the calibration.
#[derive(Debug, Clone)]
pub struct ViewReport {
    /// The view's name.
    pub name: String,
    /// RMS reprojection error of its corners, px.
    pub rms_px: f64,
    /// Tilt of the board away from facing the camera, degrees.
    pub tilt_deg: f64,
    /// Which way the board is tilted: the image direction its normal leans toward, degrees
    /// (0 = toward +u, 90 = toward +v; meaningless when `tilt_deg` is near 0).
    pub tilt_toward_deg: f64,
    /// Pixels per mm at the board centre (undistorted pixels).
    pub px_per_mm: f64,
    /// Distance of the board centre from the camera along the optical axis, mm.
    pub distance_mm: f64,
    /// The detected corners, in board order.
    pub corners_in_image: Vec<[f64; 2]>,
}

/// A view that was not used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedView {
    /// The view's name.
    pub name: String,
    /// Why it was not used.
    pub reason: String,
}

/// A calibration with the evidence behind it.
#[derive(Debug, Clone)]
pub struct CalibrationReport {
    /// The calibration (px/mm from the least tilted view until a working-plane view is given).
    pub calibration: Calibration,
    /// The used views.
    pub views: Vec<ViewReport>,
    /// The views that were rejected (no board, another image size, outlier).
    pub rejected: Vec<RejectedView>,
    /// Share of the image's coverage grid reached by the used views' corners
    /// ([`super::scale::coverage`]).
    pub coverage: f64,
}

/// Detects the board in each image and calibrates from the views where it is found. Images
/// without a board are reported in [`CalibrationReport::rejected`] with the reason.
///
/// The images may differ in size (a folder can hold a stray picture of another camera): the
/// calibration takes the size most common among the images where the board was found, and
/// rejects the others by name, so that one odd image cannot spoil the rest.
///
/// # Errors
/// [`CalibError::AmbiguousImageSize`] when two sizes have equally many images with a board;
/// [`CalibError::NotEnoughViews`] if fewer than 3 views remain; [`CalibError::Solver`] if the
/// estimate degenerates.
#[tracing::instrument(skip(images, spec), fields(images = images.len()))]
pub fn calibrate_images(
    images: &[(String, GrayImage)],
    spec: &BoardSpec,
) -> Result<CalibrationReport, CalibError> {
    let mut rejected = Vec::new();
    // Detection is independent per image: spread it over the cores.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(images.len().max(1));
    let chunk = images.len().div_ceil(workers).max(1);
    let detections: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = images
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(_, img)| detect_board(img, spec))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut found = Vec::new();
    for ((name, img), result) in images.iter().zip(detections) {
        match result {
            Ok(corners) => found.push(ViewInput {
                name: name.clone(),
                corners,
            }),
            Err(reason) => {
                tracing::warn!(image = %name, %reason, "board not found");
                rejected.push(RejectedView {
                    name: name.clone(),
                    reason: format!("{reason} ({}x{} px)", img.width(), img.height()),
                });
            }
        }
    }
    let size = majority_size(&found)?;
    let mut views = Vec::new();
    let with_board = found.len();
    let same = found
        .iter()
        .filter(|v| Some(v.corners.size()) == size)
        .count();
    for v in found {
        if Some(v.corners.size()) == size {
            views.push(v);
        } else {
            let (w, h) = v.corners.size();
            let (cw, ch) = size.unwrap_or_default();
            tracing::warn!(image = %v.name, "image of another size rejected");
            rejected.push(RejectedView {
                name: v.name,
                reason: format!(
                    "image is {w}x{h} px; the calibration uses {cw}x{ch} px, the size of {same} of the {with_board} images where the board was found"
                ),
            });
        }
    }
    let mut report = calibrate_corners(&views, spec)?;
    rejected.extend(report.rejected);
    report.rejected = rejected;
    Ok(report)
}

/// The image size most common among views with a board; `None` when there are none.
///
/// # Errors
/// [`CalibError::AmbiguousImageSize`] on a tie for the most common size.
fn majority_size(views: &[ViewInput]) -> Result<Option<(u32, u32)>, CalibError> {
    let mut counts: Vec<((u32, u32), Vec<&str>)> = Vec::new();
    for v in views {
        let size = v.corners.size();
        match counts.iter_mut().find(|(s, _)| *s == size) {
            Some((_, names)) => names.push(&v.name),
            None => counts.push((size, vec![&v.name])),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1.len()));
    match counts.as_slice() {
        [] => Ok(None),
        [(size, _)] => Ok(Some(*size)),
        [(size, a), (_, b), ..] if a.len() > b.len() => Ok(Some(*size)),
        tied => {
            let top = tied[0].1.len();
            let sizes = tied
                .iter()
                .filter(|(_, n)| n.len() == top)
                .map(|((w, h), n)| format!("{w}x{h} px ({})", n.join(", ")))
                .collect::<Vec<_>>()
                .join(" and ");
            Err(CalibError::AmbiguousImageSize(format!(
                "the board was found in {top} images each of {sizes}: calibrate each camera's pictures separately"
            )))
        }
    }
}

/// Calibrates from already detected corners (all from images of one size).
///
/// # Errors
/// As [`calibrate_images`].
pub fn calibrate_corners(
    views: &[ViewInput],
    spec: &BoardSpec,
) -> Result<CalibrationReport, CalibError> {
    if views.len() < MIN_VIEWS {
        return Err(CalibError::NotEnoughViews {
            usable: views.len(),
            needed: MIN_VIEWS,
        });
    }
    let (w, h) = views[0].corners.size();
    if let Some(odd) = views.iter().find(|v| v.corners.size() != (w, h)) {
        return Err(CalibError::ImageSizeMismatch {
            what: odd.name.clone(),
            expected: (w, h),
            got: odd.corners.size(),
        });
    }
    let obj = spec.object_points();
    let mut active: Vec<usize> = (0..views.len()).collect();
    let mut rejected = Vec::new();
    let mut refined = solve(views, &active, &obj, w, h)?;
    // Outlier views: far worse than the typical view. Drop them once and refine again.
    let mut sorted = refined.view_rms_px.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let limit = (OUTLIER_FACTOR * median).max(OUTLIER_MIN_PX);
    let keep: Vec<usize> = active
        .iter()
        .zip(&refined.view_rms_px)
        .filter(|(_, &rms)| rms <= limit)
        .map(|(&v, _)| v)
        .collect();
    if keep.len() < active.len() && keep.len() >= MIN_VIEWS {
        for (&v, &rms) in active.iter().zip(&refined.view_rms_px) {
            if rms > limit {
                tracing::warn!(view = %views[v].name, rms_px = rms, limit_px = limit, "outlier view dropped");
                rejected.push(RejectedView {
                    name: views[v].name.clone(),
                    reason: format!("outlier: reprojection RMS {rms:.3} px > {limit:.3} px (3x the median view)"),
                });
            }
        }
        active = keep;
        refined = solve(views, &active, &obj, w, h)?;
    }
    let mut calibration = Calibration {
        model: MODEL_NAME.to_owned(),
        image_width: w,
        image_height: h,
        px_per_mm: 0.0,
        rms_px: refined.rms_px,
        date: file::today_utc(),
        intrinsics: refined.intrinsics,
        distortion: refined.distortion,
        board: Some(BoardInfo {
            inner_cols: spec.inner_cols as u32,
            inner_rows: spec.inner_rows as u32,
            square_mm: spec.square_mm,
            views_used: active.len() as u32,
        }),
        uncertainty: refined.sigma.fx.is_finite().then_some(refined.sigma),
    };
    let mut reports = Vec::new();
    for (i, &v) in active.iter().enumerate() {
        let pose = refined.poses[i];
        let normal = pose.rotation * Vector3::z();
        let tilt_deg = normal.z.clamp(-1.0, 1.0).acos().to_degrees();
        let tilt_toward_deg = normal.y.atan2(normal.x).to_degrees();
        let px_per_mm =
            px_per_mm_from_view(&calibration, &views[v].corners, spec).unwrap_or(f64::NAN);
        let centre = nalgebra::Point3::new(
            (spec.inner_cols as f64 - 1.0) * spec.square_mm / 2.0,
            (spec.inner_rows as f64 - 1.0) * spec.square_mm / 2.0,
            0.0,
        );
        let distance_mm = (pose * centre).z;
        reports.push(ViewReport {
            name: views[v].name.clone(),
            rms_px: refined.view_rms_px[i],
            tilt_deg,
            tilt_toward_deg,
            px_per_mm,
            distance_mm,
            corners_in_image: views[v].corners.corners_in_image.clone(),
        });
    }
    // Until a working-plane view is given: the least tilted view, the closest to a board lying
    // on the scalp under the camera.
    calibration.px_per_mm = reports
        .iter()
        .filter(|r| r.px_per_mm.is_finite())
        .min_by(|a, b| a.tilt_deg.total_cmp(&b.tilt_deg))
        .map_or(f64::NAN, |r| r.px_per_mm);
    if !calibration.px_per_mm.is_finite() {
        return Err(CalibError::Solver(
            "could not measure the scale of any view".to_owned(),
        ));
    }
    tracing::info!(
        rms_px = refined.rms_px,
        views = active.len(),
        converged = refined.converged,
        "calibrated"
    );
    let corners: Vec<Vec<[f64; 2]>> = reports.iter().map(|r| r.corners_in_image.clone()).collect();
    Ok(CalibrationReport {
        coverage: super::scale::coverage(&corners, w, h),
        calibration,
        views: reports,
        rejected,
    })
}

fn solve(
    views: &[ViewInput],
    active: &[usize],
    obj: &[[f64; 2]],
    w: u32,
    h: u32,
) -> Result<Refined, CalibError> {
    let observations: Vec<Observations> = active
        .iter()
        .map(|&v| Observations {
            obj: obj.to_vec(),
            img: views[v].corners.corners_in_image.clone(),
        })
        .collect();
    let homographies: Vec<Matrix3<f64>> = observations
        .iter()
        .map(|o| zhang::homography(&o.obj, &o.img))
        .collect::<Option<_>>()
        .ok_or_else(|| CalibError::Solver("degenerate corner layout in a view".to_owned()))?;
    let k0 = zhang::initial_intrinsics(&homographies, w, h)
        .ok_or_else(|| CalibError::Solver("no initial intrinsics: views too similar".to_owned()))?;
    tracing::debug!(?k0, "initial intrinsics");
    let poses = homographies
        .iter()
        .map(|hh| zhang::pose_from_homography(hh, &k0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CalibError::Solver("no initial pose".to_owned()))?;
    let fix_k3 = active.len() < MIN_VIEWS_FOR_K3;
    let refined = refine(&observations, k0, Distortion::default(), &poses, fix_k3);
    if !refined.rms_px.is_finite() || refined.intrinsics.fx <= 0.0 || refined.intrinsics.fy <= 0.0 {
        return Err(CalibError::Solver("refinement diverged".to_owned()));
    }
    Ok(refined)
}

/// The homography from board millimetres to undistorted pixels of one view.
///
/// # Errors
/// [`CalibError::Solver`] if the corners do not define a homography.
pub(crate) fn view_homography(
    calib: &Calibration,
    corners: &BoardCorners,
    spec: &BoardSpec,
) -> Result<Matrix3<f64>, CalibError> {
    let undistorted: Vec<[f64; 2]> = corners
        .corners_in_image
        .iter()
        .map(|p| {
            let (u, v) = calib.undistort_point(p[0], p[1]);
            [u, v]
        })
        .collect();
    zhang::homography(&spec.object_points(), &undistorted)
        .ok_or_else(|| CalibError::Solver("degenerate board view".to_owned()))
}

/// The centre of the board's inner corners, in board millimetres.
pub(crate) fn board_centre_mm(spec: &BoardSpec) -> (f64, f64) {
    (
        (spec.inner_cols as f64 - 1.0) * spec.square_mm / 2.0,
        (spec.inner_rows as f64 - 1.0) * spec.square_mm / 2.0,
    )
}

/// Pixels per millimetre at the centre of a board view (the working plane): the geometric mean
/// of the board-to-undistorted-pixel homography's local scales, `sqrt(|det J|)`, at the board
/// centre. For a board facing the camera at depth `Z` this is `f / Z`.
///
/// # Errors
/// [`CalibError::Solver`] if the corners do not define a homography.
pub fn px_per_mm_from_view(
    calib: &Calibration,
    corners: &BoardCorners,
    spec: &BoardSpec,
) -> Result<f64, CalibError> {
    let hm = view_homography(calib, corners, spec)?;
    Ok(local_scale_at_centre(&hm, spec))
}

/// `sqrt(|det J|)` of the homography `hm` (board mm to pixels) at the board centre: the pixels
/// per millimetre there.
pub(crate) fn local_scale_at_centre(hm: &Matrix3<f64>, spec: &BoardSpec) -> f64 {
    let (cx, cy) = board_centre_mm(spec);
    let p = hm * Vector3::new(cx, cy, 1.0);
    // d(u, v)/d(x, y) of u = (h0 · X) / (h2 · X).
    let (u, v, s) = (p.x / p.z, p.y / p.z, p.z);
    let j00 = (hm[(0, 0)] - u * hm[(2, 0)]) / s;
    let j01 = (hm[(0, 1)] - u * hm[(2, 1)]) / s;
    let j10 = (hm[(1, 0)] - v * hm[(2, 0)]) / s;
    let j11 = (hm[(1, 1)] - v * hm[(2, 1)]) / s;
    (j00 * j11 - j01 * j10).abs().sqrt()
}
