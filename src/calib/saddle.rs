//! Sub-pixel chessboard corners by fitting a model of the blurred X-junction to the pixels
//! around it (the last step of [`super::board`]'s refinement, after Förstner's estimate).
//!
//! Near an inner corner the board is two straight edges crossing at the corner `c`, with
//! opposite quadrants the same colour. Blurred by the optics (and the pixel's area), that is
//! approximately
//!
//! ```text
//! I(x) = A(x) + B(x) · erf(d₁(x) / √2σ) · erf(d₂(x) / √2σ),   dᵢ(x) = nᵢ · (x - c)
//! ```
//!
//! with `nᵢ` the two edge normals, `σ` the blur and `A`, `B` planes (uneven light: an additive
//! one such as glare, and a multiplicative one such as a light gradient or vignetting). The fit
//! is weighted least squares over a Gaussian window (Levenberg-Marquardt over all 11
//! parameters), which is the maximum-likelihood corner under Gaussian sensor noise where the
//! model holds.
//!
//! Why not stop at Förstner's estimate: it reads the corner from gradient directions, and each
//! pixel's direction is noisy, so it uses the image's information less well (rendered views
//! with 1.5-4 grey levels of noise, seeds 11, 12, 2024-2026: 0.021-0.024 px from the truth
//! for Förstner, 0.011-0.013 px for the fit; docs/calibration.md); and it has no term for
//! uneven light, whose gradient it can only remove as a window mean. Where the model does not
//! hold (the erf product is exact only for perpendicular edges) the misfit is point-symmetric
//! about `c`, so it moves `c` little (0.007 px on a noise-free corner skewed to 73 degrees, the
//! unit test below). Saturated pixels (glare clipped at white) are left out.

use image::{ImageBuffer, Luma};
use nalgebra::{SMatrix, SVector};

type Img = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Number of model parameters: c (2), edge angles (2), blur, A (3), B (3).
const N: usize = 11;
/// Levenberg-Marquardt iterations at most.
const MAX_ITERS: usize = 30;
/// Stop when the corner moves less than this, in pixels.
const EPS_PX: f64 = 1e-4;
/// A fit that ends farther than this from its start (Förstner's corner), in pixels, or with a
/// blur outside [`BLUR_RANGE_PX`], is not trusted (the start is kept).
const MAX_SHIFT_PX: f64 = 1.0;
const BLUR_RANGE_PX: (f64, f64) = (0.15, 8.0);
/// Grey levels at or beyond which a pixel is clipped (left out of the fit).
const CLIPPED_LOW: f32 = 0.5;
const CLIPPED_HIGH: f32 = 254.5;
/// Half the grey-level step between the board's squares at the corner must be at least this
/// for the fit to be trusted (a flat patch fits any corner).
const MIN_CONTRAST: f64 = 4.0;
/// Fewer usable pixels than this and the fit is not tried.
const MIN_PIXELS: usize = 40;

/// One pixel of the window: offset from the start, value, weight.
struct Sample {
    x: f64,
    y: f64,
    value: f64,
    weight: f64,
}

/// Fits the X-junction model around `start` (Förstner's corner) over the pixels within `half`
/// of it (a square), Gaussian-weighted with a standard deviation of `half`, starting from edge
/// directions `dirs` (unit or not: the directions to the corner's row and column neighbours).
/// Returns the fitted corner, or `None` when the fit fails or is not trusted.
pub(super) fn fit_corner(
    img: &Img,
    start: [f64; 2],
    dirs: [[f64; 2]; 2],
    half: i32,
) -> Option<[f64; 2]> {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (px, py) = (start[0].round() as i64, start[1].round() as i64);
    let span = i64::from(half);
    let scale = f64::from(half.max(1));
    let sigma_w = scale;
    let mut samples = Vec::with_capacity(((2 * span + 1) * (2 * span + 1)) as usize);
    for qy in py - span..=py + span {
        for qx in px - span..=px + span {
            if qx < 0 || qy < 0 || qx >= w || qy >= h {
                continue;
            }
            let value = img.get_pixel(qx as u32, qy as u32).0[0];
            if value <= CLIPPED_LOW || value >= CLIPPED_HIGH {
                continue;
            }
            let (x, y) = (qx as f64 - start[0], qy as f64 - start[1]);
            let weight = (-(x * x + y * y) / (2.0 * sigma_w * sigma_w)).exp();
            samples.push(Sample {
                x,
                y,
                value: f64::from(value),
                weight,
            });
        }
    }
    if samples.len() < MIN_PIXELS {
        return None;
    }
    let angle = |d: [f64; 2]| d[1].atan2(d[0]);
    let mut p = SVector::<f64, N>::zeros();
    p[2] = angle(dirs[0]);
    p[3] = angle(dirs[1]);
    p[4] = 1.0;
    solve_linear(&samples, &mut p, scale)?;
    let mut cost = cost_of(&samples, &p, scale);
    let mut lambda = 1e-3;
    for _ in 0..MAX_ITERS {
        let (jtj, jtr) = normal_equations(&samples, &p, scale);
        let mut improved = false;
        for _ in 0..10 {
            let mut a = jtj;
            for i in 0..N {
                a[(i, i)] += lambda * jtj[(i, i)].max(1e-12);
            }
            let Some(step) = a.cholesky().map(|c| c.solve(&jtr)) else {
                lambda *= 10.0;
                continue;
            };
            let trial = p + step;
            let trial_cost = cost_of(&samples, &trial, scale);
            if trial_cost.is_finite() && trial_cost < cost {
                let moved = step[0].hypot(step[1]);
                p = trial;
                cost = trial_cost;
                lambda = (lambda * 0.3).max(1e-9);
                improved = true;
                if moved < EPS_PX {
                    return accept(&p, start);
                }
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    accept(&p, start)
}

fn accept(p: &SVector<f64, N>, start: [f64; 2]) -> Option<[f64; 2]> {
    let blur = p[4].abs();
    (p[0].hypot(p[1]) <= MAX_SHIFT_PX
        && p[8].abs() >= MIN_CONTRAST
        && blur >= BLUR_RANGE_PX.0
        && blur <= BLUR_RANGE_PX.1
        && p.iter().all(|v| v.is_finite()))
    .then(|| [start[0] + p[0], start[1] + p[1]])
}

/// What every sample's evaluation shares: the corner, the edges' normals and tangents, and
/// the blur's constants.
struct Frame {
    c: [f64; 2],
    normals: [[f64; 2]; 2],
    tangents: [[f64; 2]; 2],
    sigma: f64,
    /// `1 / (√2 σ)`, the erf argument's scale.
    k: f64,
    /// `√(2/π) / σ`, the erf derivative's scale.
    g0: f64,
    scale: f64,
}

impl Frame {
    fn new(p: &SVector<f64, N>, scale: f64) -> Self {
        let (s1, c1) = p[2].sin_cos();
        let (s2, c2) = p[3].sin_cos();
        let sigma = p[4];
        Self {
            c: [p[0], p[1]],
            normals: [[-s1, c1], [-s2, c2]],
            tangents: [[c1, s1], [c2, s2]],
            sigma,
            k: 1.0 / (std::f64::consts::SQRT_2 * sigma),
            g0: (2.0 / std::f64::consts::PI).sqrt() / sigma,
            scale,
        }
    }

    /// The saddle term and its derivatives at one sample: `s`, and `∂s/∂(cx, cy, φ₁, φ₂, σ)`.
    fn saddle(&self, q: &Sample) -> (f64, [f64; 5]) {
        let (dx, dy) = (q.x - self.c[0], q.y - self.c[1]);
        let edge = |i: usize| {
            let n = self.normals[i];
            let t = self.tangents[i];
            let d = n[0] * dx + n[1] * dy;
            let x = d * self.k;
            let gauss = (-x * x).exp();
            let e = erf_given_gauss(x, gauss);
            let g = self.g0 * gauss;
            (d, e, g, t[0] * dx + t[1] * dy)
        };
        let (d1, e1, g1, t1) = edge(0);
        let (d2, e2, g2, t2) = edge(1);
        let [n1, n2] = self.normals;
        let ds_dcx = -(e2 * g1 * n1[0] + e1 * g2 * n2[0]);
        let ds_dcy = -(e2 * g1 * n1[1] + e1 * g2 * n2[1]);
        let ds_dsigma = -(e2 * g1 * d1 + e1 * g2 * d2) / self.sigma;
        (
            e1 * e2,
            [ds_dcx, ds_dcy, -e2 * g1 * t1, -e1 * g2 * t2, ds_dsigma],
        )
    }

    /// Model value and its gradient with respect to all parameters at one sample.
    fn model(&self, q: &Sample, p: &SVector<f64, N>) -> (f64, SVector<f64, N>) {
        let (u, v) = (q.x / self.scale, q.y / self.scale);
        let (s, ds) = self.saddle(q);
        let a = p[5] + p[6] * u + p[7] * v;
        let b = p[8] + p[9] * u + p[10] * v;
        let grad = SVector::<f64, N>::from([
            b * ds[0],
            b * ds[1],
            b * ds[2],
            b * ds[3],
            b * ds[4],
            1.0,
            u,
            v,
            s,
            s * u,
            s * v,
        ]);
        (a + b * s, grad)
    }

    /// Model value alone (no derivatives).
    fn value(&self, q: &Sample, p: &SVector<f64, N>) -> f64 {
        let (u, v) = (q.x / self.scale, q.y / self.scale);
        p[5] + p[6] * u + p[7] * v + (p[8] + p[9] * u + p[10] * v) * self.saddle_value(q)
    }

    /// The saddle term alone, `s` of [`Frame::saddle`] without its derivatives.
    fn saddle_value(&self, q: &Sample) -> f64 {
        let (dx, dy) = (q.x - self.c[0], q.y - self.c[1]);
        let [n1, n2] = self.normals;
        erf((n1[0] * dx + n1[1] * dy) * self.k) * erf((n2[0] * dx + n2[1] * dy) * self.k)
    }
}

/// The error function, to 1.5e-7 (Abramowitz and Stegun 7.1.26); a corner's model needs
/// grey levels to 1e-5 of its contrast, and this is several times faster than a full-precision
/// erf in the fit's inner loop.
fn erf(x: f64) -> f64 {
    erf_given_gauss(x, (-x * x).exp())
}

/// [`erf`] with `exp(-x²)` already at hand (the fit needs it for the derivative as well).
fn erf_given_gauss(x: f64, gauss: f64) -> f64 {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    (1.0 - poly * gauss).copysign(x)
}

fn cost_of(samples: &[Sample], p: &SVector<f64, N>, scale: f64) -> f64 {
    let frame = Frame::new(p, scale);
    samples
        .iter()
        .map(|q| q.weight * (q.value - frame.value(q, p)).powi(2))
        .sum()
}

fn normal_equations(
    samples: &[Sample],
    p: &SVector<f64, N>,
    scale: f64,
) -> (SMatrix<f64, N, N>, SVector<f64, N>) {
    let frame = Frame::new(p, scale);
    let mut jtj = SMatrix::<f64, N, N>::zeros();
    let mut jtr = SVector::<f64, N>::zeros();
    for q in samples {
        let (m, grad) = frame.model(q, p);
        // Lower triangle only; mirrored below.
        jtj.syger(q.weight, &grad, &grad, 1.0);
        jtr.axpy(q.weight * (q.value - m), &grad, 1.0);
    }
    jtj.fill_upper_triangle_with_lower_triangle();
    (jtj, jtr)
}

/// The light planes `A`, `B` for the current corner, angles and blur (linear least squares).
fn solve_linear(samples: &[Sample], p: &mut SVector<f64, N>, scale: f64) -> Option<()> {
    let mut ata = SMatrix::<f64, 6, 6>::zeros();
    let mut atb = SVector::<f64, 6>::zeros();
    let frame = Frame::new(p, scale);
    for q in samples {
        let (u, v) = (q.x / scale, q.y / scale);
        let s = frame.saddle_value(q);
        let row = SVector::<f64, 6>::from([1.0, u, v, s, s * u, s * v]);
        ata += q.weight * row * row.transpose();
        atb += q.weight * q.value * row;
    }
    let x = ata.cholesky()?.solve(&atb);
    for i in 0..6 {
        p[5 + i] = x[i];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blurred X-junction with skewed edges, a light gradient and an additive ramp (pixel
    /// areas integrated 16x16, then an optical blur): the fit finds the corner within 0.01 px
    /// (0.007 px: the erf product is exact only for perpendicular edges).
    #[test]
    fn finds_a_skewed_corner_under_uneven_light() {
        let c = [20.37, 19.81];
        let (phi1, phi2) = (0.3f64, 1.6f64);
        let img = Img::from_fn(41, 41, |x, y| {
            let mut acc = 0.0;
            let n = 16;
            for sy in 0..n {
                for sx in 0..n {
                    let px = f64::from(x) - 0.5 + (f64::from(sx) + 0.5) / f64::from(n) - c[0];
                    let py = f64::from(y) - 0.5 + (f64::from(sy) + 0.5) / f64::from(n) - c[1];
                    let d1 = -phi1.sin() * px + phi1.cos() * py;
                    let d2 = -phi2.sin() * px + phi2.cos() * py;
                    acc += if d1 * d2 > 0.0 { 1.0 } else { 0.0 };
                }
            }
            let refl = 0.1 + 0.8 * acc / f64::from(n * n);
            let light = 180.0 * (1.0 + 0.004 * f64::from(x));
            Luma([(refl * light + 0.3 * f64::from(y)) as f32])
        });
        let img = imageproc::filter::gaussian_blur_f32(&img, 0.8);
        let found = fit_corner(
            &img,
            [20.0, 20.0],
            [[phi1.cos(), phi1.sin()], [phi2.cos(), phi2.sin()]],
            12,
        );
        let found = found.expect("the fit converges");
        let err = (found[0] - c[0]).hypot(found[1] - c[1]);
        assert!(
            err < 0.01,
            "fitted {found:?}, truth {c:?}, error {err:.4} px"
        );
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (-1.5, -0.966_105_146_475_310_7),
            (4.0, 0.999_999_984_582_742_1),
        ] {
            assert!(
                (erf(x) - want).abs() < 2e-7,
                "erf({x}) = {} not {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn refuses_a_flat_patch() {
        let img = Img::from_pixel(41, 41, Luma([128.0]));
        assert!(fit_corner(&img, [20.0, 20.0], [[1.0, 0.0], [0.0, 1.0]], 12).is_none());
    }
}
