//! Joint non-linear refinement of all intrinsics, distortion and view poses: Levenberg-Marquardt
//! (the `levenberg-marquardt` crate, a port of MINPACK's `lmder`) on the reprojection residuals
//! of every corner of every view, as OpenCV's `calibrateCamera` does.
//!
//! Parameters: `[fx, fy, cx, cy, k1, k2, p1, p2, k3]` then, per view, the rotation vector
//! (axis × angle) and translation of `camera_from_board`. The Jacobian is by central
//! differences, block-sparse: a view's pose only moves that view's residuals. The covariance of
//! the parameters is `σ² (JᵀJ)⁻¹` with `σ²` the residual variance, from which the one-sigma
//! uncertainty of the focal lengths and principal point is read.

use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra::{
    storage::Owned, DMatrix, DVector, Dyn, Isometry3, Point3, Translation3, UnitQuaternion, Vector3,
};

use super::model::{Distortion, Intrinsics};

/// Number of camera parameters (intrinsics + distortion).
const N_CAM: usize = 9;
/// Number of parameters per view pose.
const N_POSE: usize = 6;
/// Relative finite-difference step.
const FD_STEP: f64 = 1e-7;

/// One view's observations.
#[derive(Debug, Clone)]
pub struct Observations {
    /// Board points (mm, on z = 0).
    pub obj: Vec<[f64; 2]>,
    /// Their detected images (distorted pixels).
    pub img: Vec<[f64; 2]>,
}

/// The result of a refinement.
#[derive(Debug, Clone)]
pub struct Refined {
    /// Intrinsics.
    pub intrinsics: Intrinsics,
    /// Distortion.
    pub distortion: Distortion,
    /// Per view pose.
    pub poses: Vec<Isometry3<f64>>,
    /// Per view RMS reprojection error (px).
    pub view_rms_px: Vec<f64>,
    /// Overall RMS over all corners (px), as OpenCV's: `sqrt(Σ|r|² / corners)`.
    pub rms_px: f64,
    /// One-sigma uncertainty of fx, fy, cx, cy.
    pub sigma: Intrinsics,
    /// Whether the solver reported success.
    pub converged: bool,
}

struct Problem<'a> {
    views: &'a [Observations],
    params: DVector<f64>,
    /// Fixes k3 at zero (too few views to tell it from k1, k2).
    fix_k3: bool,
}

fn camera(p: &DVector<f64>) -> (Intrinsics, Distortion) {
    (
        Intrinsics {
            fx: p[0],
            fy: p[1],
            cx: p[2],
            cy: p[3],
        },
        Distortion {
            k1: p[4],
            k2: p[5],
            p1: p[6],
            p2: p[7],
            k3: p[8],
        },
    )
}

fn pose(p: &DVector<f64>, v: usize) -> Isometry3<f64> {
    let o = N_CAM + N_POSE * v;
    let rot = UnitQuaternion::from_scaled_axis(Vector3::new(p[o], p[o + 1], p[o + 2]));
    Isometry3::from_parts(Translation3::new(p[o + 3], p[o + 4], p[o + 5]), rot)
}

/// Writes view `v`'s residuals (projected - observed) into `out` (length `2 · points`).
fn view_residuals(p: &DVector<f64>, view: &Observations, v: usize, out: &mut [f64]) {
    let (k, d) = camera(p);
    let pose = pose(p, v);
    for (i, (o, m)) in view.obj.iter().zip(&view.img).enumerate() {
        let q = pose * Point3::new(o[0], o[1], 0.0);
        let (xd, yd) = d.distort(q.x / q.z, q.y / q.z);
        out[2 * i] = k.fx * xd + k.cx - m[0];
        out[2 * i + 1] = k.fy * yd + k.cy - m[1];
    }
}

impl Problem<'_> {
    fn offsets(&self) -> Vec<usize> {
        let mut off = Vec::with_capacity(self.views.len() + 1);
        let mut acc = 0;
        for v in self.views {
            off.push(acc);
            acc += 2 * v.obj.len();
        }
        off.push(acc);
        off
    }
}

impl LeastSquaresProblem<f64, Dyn, Dyn> for Problem<'_> {
    type ResidualStorage = Owned<f64, Dyn>;
    type JacobianStorage = Owned<f64, Dyn, Dyn>;
    type ParameterStorage = Owned<f64, Dyn>;

    fn set_params(&mut self, x: &DVector<f64>) {
        self.params.copy_from(x);
        if self.fix_k3 {
            self.params[8] = 0.0;
        }
    }

    fn params(&self) -> DVector<f64> {
        self.params.clone()
    }

    fn residuals(&self) -> Option<DVector<f64>> {
        let off = self.offsets();
        let mut r = DVector::zeros(off[self.views.len()]);
        for (v, view) in self.views.iter().enumerate() {
            view_residuals(
                &self.params,
                view,
                v,
                &mut r.as_mut_slice()[off[v]..off[v + 1]],
            );
        }
        r.iter().all(|x| x.is_finite()).then_some(r)
    }

    fn jacobian(&self) -> Option<DMatrix<f64>> {
        let off = self.offsets();
        let m = off[self.views.len()];
        let n = self.params.len();
        let mut jac = DMatrix::zeros(m, n);
        let mut p = self.params.clone();
        let mut plus = vec![0.0; m];
        let mut minus = vec![0.0; m];
        for j in 0..n {
            if self.fix_k3 && j == 8 {
                continue;
            }
            let h = FD_STEP * p[j].abs().max(1.0);
            let orig = p[j];
            // Camera parameters move every view; a pose moves only its own.
            let views: Vec<usize> = if j < N_CAM {
                (0..self.views.len()).collect()
            } else {
                vec![(j - N_CAM) / N_POSE]
            };
            p[j] = orig + h;
            for &v in &views {
                view_residuals(&p, &self.views[v], v, &mut plus[off[v]..off[v + 1]]);
            }
            p[j] = orig - h;
            for &v in &views {
                view_residuals(&p, &self.views[v], v, &mut minus[off[v]..off[v + 1]]);
            }
            p[j] = orig;
            for &v in &views {
                for r in off[v]..off[v + 1] {
                    jac[(r, j)] = (plus[r] - minus[r]) / (2.0 * h);
                }
            }
        }
        jac.iter().all(|x| x.is_finite()).then_some(jac)
    }
}

/// Refines intrinsics, distortion and poses jointly from the given start.
pub fn refine(
    views: &[Observations],
    intrinsics: Intrinsics,
    distortion: Distortion,
    poses: &[Isometry3<f64>],
    fix_k3: bool,
) -> Refined {
    let n = N_CAM + N_POSE * views.len();
    let mut x = DVector::zeros(n);
    let k = intrinsics;
    let d = distortion;
    for (i, val) in [
        k.fx,
        k.fy,
        k.cx,
        k.cy,
        d.k1,
        d.k2,
        d.p1,
        d.p2,
        if fix_k3 { 0.0 } else { d.k3 },
    ]
    .into_iter()
    .enumerate()
    {
        x[i] = val;
    }
    for (v, pose) in poses.iter().enumerate() {
        let o = N_CAM + N_POSE * v;
        let r = pose.rotation.scaled_axis();
        let t = pose.translation.vector;
        for (i, val) in [r.x, r.y, r.z, t.x, t.y, t.z].into_iter().enumerate() {
            x[o + i] = val;
        }
    }
    let problem = Problem {
        views,
        params: x,
        fix_k3,
    };
    let (problem, report) = LevenbergMarquardt::new()
        .with_patience(200)
        .minimize(problem);
    tracing::debug!(termination = ?report.termination, evaluations = report.number_of_evaluations, "LM done");
    let p = problem.params.clone();
    let (intrinsics, distortion) = camera(&p);
    let poses = (0..views.len()).map(|v| pose(&p, v)).collect();
    let off = problem.offsets();
    let residuals = problem
        .residuals()
        .unwrap_or_else(|| DVector::from_element(off[views.len()], f64::NAN));
    let mut total = 0.0;
    let mut points = 0usize;
    let view_rms_px = views
        .iter()
        .enumerate()
        .map(|(v, view)| {
            let ss: f64 = residuals.as_slice()[off[v]..off[v + 1]]
                .iter()
                .map(|r| r * r)
                .sum();
            total += ss;
            points += view.obj.len();
            (ss / view.obj.len().max(1) as f64).sqrt()
        })
        .collect();
    let rms_px = (total / points.max(1) as f64).sqrt();
    let sigma = uncertainty(&problem, total, fix_k3);
    Refined {
        intrinsics,
        distortion,
        poses,
        view_rms_px,
        rms_px,
        sigma,
        converged: report.termination.was_successful(),
    }
}

/// One-sigma uncertainty of fx, fy, cx, cy from `σ² (JᵀJ)⁻¹`.
fn uncertainty(problem: &Problem<'_>, sum_sq: f64, fix_k3: bool) -> Intrinsics {
    let nan = Intrinsics {
        fx: f64::NAN,
        fy: f64::NAN,
        cx: f64::NAN,
        cy: f64::NAN,
    };
    let Some(jac) = problem.jacobian() else {
        return nan;
    };
    let (m, mut n) = jac.shape();
    let mut jtj = jac.transpose() * &jac;
    if fix_k3 {
        // The fixed column is zero; make the normal matrix invertible without coupling it.
        jtj[(8, 8)] = 1.0;
        n -= 1;
    }
    if m <= n {
        return nan;
    }
    let var = sum_sq / (m - n) as f64;
    match jtj.cholesky() {
        Some(ch) => {
            let cov = ch.inverse() * var;
            Intrinsics {
                fx: cov[(0, 0)].sqrt(),
                fy: cov[(1, 1)].sqrt(),
                cx: cov[(2, 2)].sqrt(),
                cy: cov[(3, 3)].sqrt(),
            }
        }
        None => nan,
    }
}
