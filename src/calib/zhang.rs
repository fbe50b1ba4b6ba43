//! The closed-form initial estimate: plane-to-image homographies by normalized DLT, intrinsics
//! from them by Zhang's method (Z. Zhang, "A flexible new technique for camera calibration",
//! IEEE TPAMI 22(11), 2000, section 3.1) with zero skew imposed, and each view's pose from its
//! homography (section 3.1, eq. 4). Distortion starts at zero; the refinement
//! ([`super::refine`]) takes it from there.
//!
//! When Zhang's system is degenerate (too few or too similar views) the fallback is OpenCV's: the
//! principal point at the image centre and the focal lengths from the homographies'
//! orthogonality constraints alone.

use nalgebra::{DMatrix, Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};

use super::model::Intrinsics;

/// Weight of the zero-skew row in Zhang's system.
const SKEW_WEIGHT: f64 = 10.0;

/// Homography `H` with `img ~ H · [obj, 1]`, by the normalized DLT (Hartley & Zisserman,
/// algorithm 4.2). `None` for fewer than 4 points or a degenerate configuration.
pub fn homography(obj: &[[f64; 2]], img: &[[f64; 2]]) -> Option<Matrix3<f64>> {
    if obj.len() < 4 || obj.len() != img.len() {
        return None;
    }
    let t_obj = normalizer(obj)?;
    let t_img = normalizer(img)?;
    let n = obj.len();
    let mut a = DMatrix::<f64>::zeros(2 * n, 9);
    for (k, (o, i)) in obj.iter().zip(img).enumerate() {
        let p = t_obj * Vector3::new(o[0], o[1], 1.0);
        let q = t_img * Vector3::new(i[0], i[1], 1.0);
        let (x, y, u, v) = (p.x / p.z, p.y / p.z, q.x / q.z, q.y / q.z);
        let r0 = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u];
        let r1 = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, -v];
        for c in 0..9 {
            a[(2 * k, c)] = r0[c];
            a[(2 * k + 1, c)] = r1[c];
        }
    }
    let h = smallest_right_singular(&a)?;
    let hn = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
    let h = t_img.try_inverse()? * hn * t_obj;
    let scale = h[(2, 2)];
    (scale.abs() > 1e-15).then(|| h / scale)
}

/// The right singular vector of the smallest singular value (via the eigenvectors of AᵀA, which
/// is small: columns are few).
fn smallest_right_singular(a: &DMatrix<f64>) -> Option<Vec<f64>> {
    let ata = a.transpose() * a;
    let eig = nalgebra::SymmetricEigen::new(ata);
    let (k, _) = eig
        .eigenvalues
        .iter()
        .enumerate()
        .min_by(|x, y| x.1.total_cmp(y.1))?;
    Some(eig.eigenvectors.column(k).iter().copied().collect())
}

/// Hartley normalization: centroid to the origin, mean distance √2.
fn normalizer(pts: &[[f64; 2]]) -> Option<Matrix3<f64>> {
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p[0] / n, a.1 + p[1] / n));
    let mean_d = pts
        .iter()
        .map(|p| (p[0] - mx).hypot(p[1] - my))
        .sum::<f64>()
        / n;
    if mean_d < 1e-12 {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / mean_d;
    Some(Matrix3::new(
        s,
        0.0,
        -s * mx,
        0.0,
        s,
        -s * my,
        0.0,
        0.0,
        1.0,
    ))
}

/// Zhang's closed-form intrinsics (zero skew) from at least 3 homographies; falls back to a
/// centred principal point (see the module docs). `None` only if nothing sensible comes out.
pub fn initial_intrinsics(
    homographies: &[Matrix3<f64>],
    width: u32,
    height: u32,
) -> Option<Intrinsics> {
    let (w, h) = (f64::from(width), f64::from(height));
    // Work in pixel coordinates scaled to about unit size for conditioning.
    let s = w.max(h);
    let n = Matrix3::new(
        1.0 / s,
        0.0,
        -0.5 * w / s,
        0.0,
        1.0 / s,
        -0.5 * h / s,
        0.0,
        0.0,
        1.0,
    );
    let hs: Vec<Matrix3<f64>> = homographies.iter().map(|hh| n * hh).collect();
    let denorm = |k: Intrinsics| Intrinsics {
        fx: k.fx * s,
        fy: k.fy * s,
        cx: k.cx * s + 0.5 * w,
        cy: k.cy * s + 0.5 * h,
    };
    let zhang = (hs.len() >= 3)
        .then(|| zhang_closed_form(&hs))
        .flatten()
        .map(denorm);
    let plausible = |k: &Intrinsics| {
        k.fx > 0.0
            && k.fy > 0.0
            && (k.fx / k.fy - 1.0).abs() < 0.3
            && (0.0..w).contains(&k.cx)
            && (0.0..h).contains(&k.cy)
    };
    match zhang {
        Some(k) if plausible(&k) => Some(k),
        _ => centred_focal(&hs).map(denorm),
    }
}

fn v_ij(h: &Matrix3<f64>, i: usize, j: usize) -> [f64; 6] {
    let (a, b) = (h.column(i), h.column(j));
    [
        a[0] * b[0],
        a[0] * b[1] + a[1] * b[0],
        a[1] * b[1],
        a[2] * b[0] + a[0] * b[2],
        a[2] * b[1] + a[1] * b[2],
        a[2] * b[2],
    ]
}

fn zhang_closed_form(hs: &[Matrix3<f64>]) -> Option<Intrinsics> {
    let mut v = DMatrix::<f64>::zeros(2 * hs.len() + 1, 6);
    for (k, h) in hs.iter().enumerate() {
        let v12 = v_ij(h, 0, 1);
        let v11 = v_ij(h, 0, 0);
        let v22 = v_ij(h, 1, 1);
        for c in 0..6 {
            v[(2 * k, c)] = v12[c];
            v[(2 * k + 1, c)] = v11[c] - v22[c];
        }
    }
    v[(2 * hs.len(), 1)] = SKEW_WEIGHT;
    let b = smallest_right_singular(&v)?;
    let b = if b[0] < 0.0 {
        b.iter().map(|x| -x).collect()
    } else {
        b
    };
    let (b11, b12, b22, b13, b23, b33) = (b[0], b[1], b[2], b[3], b[4], b[5]);
    let den = b11 * b22 - b12 * b12;
    if den.abs() < 1e-300 || b11 <= 0.0 {
        return None;
    }
    let v0 = (b12 * b13 - b11 * b23) / den;
    let lambda = b33 - (b13 * b13 + v0 * (b12 * b13 - b11 * b23)) / b11;
    if lambda / b11 <= 0.0 || lambda * b11 / den <= 0.0 {
        return None;
    }
    let alpha = (lambda / b11).sqrt();
    let beta = (lambda * b11 / den).sqrt();
    let gamma = -b12 * alpha * alpha * beta / lambda;
    let u0 = gamma * v0 / beta - b13 * alpha * alpha / lambda;
    Some(Intrinsics {
        fx: alpha,
        fy: beta,
        cx: u0,
        cy: v0,
    })
}

/// Principal point at the (normalized) origin and `fx = fy = f`: each homography's two
/// orthogonality constraints give `1/f²` by least squares; the median over the views is robust to
/// a few bad views (OpenCV's `initIntrinsicParams2D` solves them jointly instead).
fn centred_focal(hs: &[Matrix3<f64>]) -> Option<Intrinsics> {
    let mut inv_f2: Vec<f64> = hs
        .iter()
        .filter_map(|h| {
            let (h1, h2) = (h.column(0), h.column(1));
            // h1ᵀ ω h2 = 0 and h1ᵀ ω h1 = h2ᵀ ω h2 with ω = diag(1/f², 1/f², 1).
            let a = [
                h1[0] * h2[0] + h1[1] * h2[1],
                h1[0] * h1[0] + h1[1] * h1[1] - h2[0] * h2[0] - h2[1] * h2[1],
            ];
            let b = [-h1[2] * h2[2], -(h1[2] * h1[2] - h2[2] * h2[2])];
            let aa = a[0] * a[0] + a[1] * a[1];
            let x = (a[0] * b[0] + a[1] * b[1]) / aa;
            (aa > 0.0 && x > 0.0 && x.is_finite()).then_some(x)
        })
        .collect();
    if inv_f2.is_empty() {
        return None;
    }
    inv_f2.sort_by(f64::total_cmp);
    let f = 1.0 / inv_f2[inv_f2.len() / 2].sqrt();
    Some(Intrinsics {
        fx: f,
        fy: f,
        cx: 0.0,
        cy: 0.0,
    })
}

/// A view's pose from its homography (board mm → pixels) and the intrinsics.
pub fn pose_from_homography(h: &Matrix3<f64>, k: &Intrinsics) -> Option<Isometry3<f64>> {
    let kinv = Matrix3::new(
        1.0 / k.fx,
        0.0,
        -k.cx / k.fx,
        0.0,
        1.0 / k.fy,
        -k.cy / k.fy,
        0.0,
        0.0,
        1.0,
    );
    let m = kinv * h;
    let norm = m.column(0).norm();
    if norm < 1e-15 {
        return None;
    }
    let mut lambda = 1.0 / norm;
    if m[(2, 2)] * lambda < 0.0 {
        lambda = -lambda;
    }
    let r1: Vector3<f64> = m.column(0) * lambda;
    let r2: Vector3<f64> = m.column(1) * lambda;
    let t: Vector3<f64> = m.column(2) * lambda;
    let r3 = r1.cross(&r2);
    let approx = Matrix3::from_columns(&[r1, r2, r3]);
    let svd = approx.svd(true, true);
    let (u, vt) = (svd.u?, svd.v_t?);
    let mut r = u * vt;
    if r.determinant() < 0.0 {
        r = -r;
    }
    let rot = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(r));
    Some(Isometry3::from_parts(Translation3::from(t), rot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homography_recovers_a_known_one() {
        let truth = Matrix3::new(1.2, 0.1, 30.0, -0.05, 0.9, 12.0, 1e-4, 2e-4, 1.0);
        let obj: Vec<[f64; 2]> = (0..20)
            .map(|i| [f64::from(i % 5) * 10.0, f64::from(i / 5) * 10.0])
            .collect();
        let img: Vec<[f64; 2]> = obj
            .iter()
            .map(|o| {
                let p = truth * Vector3::new(o[0], o[1], 1.0);
                [p.x / p.z, p.y / p.z]
            })
            .collect();
        let h = homography(&obj, &img).expect("homography");
        assert!((h - truth).abs().max() < 1e-8, "{h}");
    }
}
