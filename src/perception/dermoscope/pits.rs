//! Follicle openings without a traceable shaft, in dermoscope frames: small, round, dark pits in
//! clean skin.
//!
//! A miniaturised (vellus) hair is thin and pale, often no darker than the skin, so the shaft
//! tracer of [`super::shafts`] cannot follow it; what stays visible at 70x is its opening, a pit
//! a few hundredths of a millimetre across (the "black dot" or empty opening of trichoscopy).
//!
//! # Method
//! 1. The frame is block-averaged to about [`WORKING_PX_PER_MM`] on the shafts' red-weighted
//!    luminance; darkness is relative to a local skin level (a box mean, bright outliers
//!    clipped). The text bar and the rim outside the ring light are left out.
//! 2. Candidates are local maxima of a difference of Gaussians of the darkness (a pit, not a
//!    shaft or a shadow) that are dark enough.
//! 3. Each candidate is described by [`FEATURES`]: its contrast at three scales, the Hessian's
//!    eigenvalues and their ratio (round or line-like), the darkness along 24 rays out to
//!    0.4 mm (a pit in clean skin has none; a point on a shaft or in the pigment network has
//!    it in some direction), a ring around it, and its colour against the skin.
//! 4. A gradient-boosted tree ensemble ([`super::generated::pits_model`], fitted by
//!    `models/train/fit_pits.py` on the features that `examples/derm_pits.rs` writes for
//!    synthetic training seeds 100-199 and 1000-1199) gives the probability that the candidate
//!    is a follicle opening.
//!
//! The detector keeps candidates above [`super::shafts::ShaftParams::pit_min_probability`]
//! that no traced unit already explains.

use image::RgbImage;

use super::field::text_bar_rows;
use super::generated::pits_model;
use crate::perception::filter::{
    box_mean, gaussian, gaussian_kernel, red_weighted_blocks, BoxStream, Plane,
};

/// Working scale (px/mm): a pit of 0.02-0.04 mm radius spans a few pixels.
pub const WORKING_PX_PER_MM: f64 = 150.0;
/// Radius of the box giving the skin level (mm).
const SKIN_RADIUS_MM: f64 = 0.2;
/// Luminance above this percentile of the frame is clipped before the skin level (glare,
/// scale, white hair).
const SKIN_CLIP_PERCENTILE: f64 = 0.95;
/// Scales of the darkness smoothing (mm): the pit, its surroundings, the wider skin.
const SCALES_MM: [f64; 3] = [0.008, 0.0267, 0.0533];
/// Scale of the Hessian (mm).
const HESSIAN_MM: f64 = 0.01;
/// Half-width of the non-maximum window (mm).
const PEAK_RADIUS_MM: f64 = 0.0267;
/// Least difference of Gaussians at a candidate.
const MIN_DOG: f32 = 0.04;
/// Least smoothed darkness at a candidate.
const MIN_DARK: f32 = 0.08;
/// Ray profile from this distance (mm)...
const RAY_FROM_MM: f64 = 0.053;
/// ...to this one...
const RAY_TO_MM: f64 = 0.4;
/// ...in steps of this (mm).
const RAY_STEP_MM: f64 = 0.0133;
/// Number of ray directions.
const RAYS: usize = 24;
/// Radius of the ring around a candidate (mm).
const RING_MM: f64 = 0.04;
/// Radius of the box giving the skin's blue over red (mm).
const BLUE_RADIUS_MM: f64 = 0.1;
/// Ignored margin at the frame's border (mm).
const BORDER_MM: f64 = 0.0267;
/// A working pixel whose skin level is under this share of the frame's median is outside the
/// dermoscope's field (its dark rim).
const FIELD_MIN_RATIO: f32 = 0.5;

/// Number of features per candidate.
pub const N_FEATURES: usize = 12;
/// The features, in order: difference of Gaussians; darkness at the three scales; Hessian
/// eigenvalues (most negative first) and their ratio; strongest ray, the ray opposite it and
/// the rays' spread; ring; blue over red against the skin's.
pub const FEATURES: [&str; N_FEATURES] = [
    "dog", "g1", "g4", "g8", "l1", "l2", "round", "ray", "opp", "raystd", "ring", "blue",
];

/// One pit candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitCandidate {
    /// Centre in input-image pixels.
    pub x: f64,
    /// See `x`.
    pub y: f64,
    /// The features, named by [`FEATURES`].
    pub features: [f64; N_FEATURES],
    /// Probability of being a follicle opening ([`pits_model`]).
    pub probability: f64,
}

/// Every pit candidate of a dermoscope frame at `px_per_mm`, with its probability.
pub fn pit_candidates(image: &RgbImage, px_per_mm: f64) -> Vec<PitCandidate> {
    let _span = tracing::trace_span!("pits").entered();
    let (w0, h0) = (image.width() as usize, image.height() as usize);
    let f = (px_per_mm / WORKING_PX_PER_MM).round().max(1.0) as usize;
    let (w, h) = (w0 / f, h0 / f);
    if w < 16 || h < 16 {
        return Vec::new();
    }
    let ppm = px_per_mm / f as f64;
    let px = |mm: f64| mm * ppm;
    let (bar_top, bar_bottom) = text_bar_rows(image);
    let (top_rows, bottom_rows) = (bar_top.div_ceil(f), bar_bottom.div_ceil(f));
    let (mut luma, mut blue) = (Plane::default(), Plane::default());
    red_weighted_blocks(image, f, &mut luma, &mut blue);
    let in_bar = |y: usize| y < top_rows || y + bottom_rows >= h;
    let mut sample: Vec<f32> = (0..h)
        .filter(|&y| !in_bar(y))
        .flat_map(|y| luma.data[y * w..(y + 1) * w].iter().step_by(3).copied())
        .collect();
    if sample.is_empty() {
        return Vec::new();
    }
    let k = ((sample.len() - 1) as f64 * SKIN_CLIP_PERCENTILE) as usize;
    let clip = *sample.select_nth_unstable_by(k, f32::total_cmp).1;
    let mid = sample.len() / 2;
    let median = *sample.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut clipped = luma.clone();
    for (y, row) in clipped.data.chunks_mut(w).enumerate() {
        for v in row.iter_mut() {
            *v = if in_bar(y) { median } else { v.min(clip) };
        }
    }
    let (mut skin, mut scratch) = (Plane::default(), BoxStream::default());
    box_mean(
        &clipped,
        &mut skin,
        &mut scratch,
        px(SKIN_RADIUS_MM).round().max(2.0) as usize,
    );
    let mut blue_skin = Plane::default();
    box_mean(
        &blue,
        &mut blue_skin,
        &mut scratch,
        px(BLUE_RADIUS_MM).round().max(1.0) as usize,
    );
    let dark: Vec<f32> = luma
        .data
        .iter()
        .zip(&skin.data)
        .map(|(&l, &s)| (s - l) / s.max(1.0))
        .collect();
    // The two finer scales everywhere (they find the candidates); the widest scale and the
    // Hessian's only where they are needed, at the candidates.
    let mut g = [Plane::default(), Plane::default()];
    for (gi, s_mm) in g.iter_mut().zip(SCALES_MM) {
        gaussian(&dark, w, h, px(s_mm).max(0.5), gi);
    }
    let wide = Kernel::new(px(SCALES_MM[2]).max(0.5));
    let hess = Kernel::new(px(HESSIAN_MM).max(0.5));
    let field_min = FIELD_MIN_RATIO * median;
    let outside = |x: usize, y: usize| in_bar(y) || skin.data[y * w + x] < field_min;
    let dog = |i: usize| g[0].data[i] - g[1].data[i];
    let peak_r = px(PEAK_RADIUS_MM).round().max(1.0) as usize;
    let border = px(BORDER_MM).ceil().max(2.0) as usize;
    let dark_at = |x: f64, y: f64| {
        let xi = (x.round().max(0.0) as usize).min(w - 1);
        let yi = (y.round().max(0.0) as usize).min(h - 1);
        f64::from(dark[yi * w + xi])
    };
    let n_steps = ((RAY_TO_MM - RAY_FROM_MM) / RAY_STEP_MM).ceil() as usize;
    let mut out = Vec::new();
    for y in border..h - border {
        for x in border..w - border {
            let i = y * w + x;
            let d = dog(i);
            if d <= MIN_DOG || g[0].data[i] <= MIN_DARK || outside(x, y) {
                continue;
            }
            let is_peak = (y.saturating_sub(peak_r)..=(y + peak_r).min(h - 1)).all(|yy| {
                (x.saturating_sub(peak_r)..=(x + peak_r).min(w - 1)).all(|xx| dog(yy * w + xx) <= d)
            });
            if !is_peak {
                continue;
            }
            // Hessian of the smoothed darkness; a pit is a maximum: both eigenvalues negative.
            let hs =
                |dx: i64, dy: i64| f64::from(hess.at(&dark, w, h, x as i64 + dx, y as i64 + dy));
            let c = hs(0, 0);
            let dxx = hs(1, 0) - 2.0 * c + hs(-1, 0);
            let dyy = hs(0, 1) - 2.0 * c + hs(0, -1);
            let dxy = 0.25 * (hs(1, 1) - hs(-1, 1) - hs(1, -1) + hs(-1, -1));
            let half_tr = 0.5 * (dxx + dyy);
            let disc = (0.25 * (dxx - dyy).powi(2) + dxy * dxy).sqrt();
            let (l1, l2) = (half_tr - disc, half_tr + disc);
            let round = l2.abs() / l1.abs().max(1e-6);
            // Rays: mean darkness along each, over the wider skin's.
            let base = f64::from(wide.at(&dark, w, h, x as i64, y as i64));
            let (xf, yf) = (x as f64, y as f64);
            let prof: Vec<f64> = (0..RAYS)
                .map(|k| {
                    let a = std::f64::consts::TAU * k as f64 / RAYS as f64;
                    let (ca, sa) = (a.cos(), a.sin());
                    let sum: f64 = (0..n_steps)
                        .map(|s| {
                            let r = px(RAY_FROM_MM + RAY_STEP_MM * s as f64);
                            dark_at(xf + r * ca, yf + r * sa)
                        })
                        .sum();
                    sum / n_steps as f64 - base
                })
                .collect();
            let (kmax, ray) = prof
                .iter()
                .enumerate()
                .map(|(k, v)| (k, v.abs()))
                .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
            let opp = prof[(kmax + RAYS / 2) % RAYS];
            let mean = prof.iter().sum::<f64>() / RAYS as f64;
            let raystd =
                (prof.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / RAYS as f64).sqrt();
            let ring = (0..RAYS)
                .map(|k| {
                    let a = std::f64::consts::TAU * k as f64 / RAYS as f64;
                    dark_at(xf + px(RING_MM) * a.cos(), yf + px(RING_MM) * a.sin())
                })
                .sum::<f64>()
                / RAYS as f64;
            let blue_rel = f64::from(blue.data[i] / blue_skin.data[i].max(1e-6));
            let features = [
                f64::from(d),
                f64::from(g[0].data[i]),
                f64::from(g[1].data[i]),
                base,
                l1,
                l2,
                round,
                ray,
                opp,
                raystd,
                ring,
                blue_rel,
            ];
            out.push(PitCandidate {
                x: (xf + 0.5) * f as f64,
                y: (yf + 0.5) * f as f64,
                features,
                probability: pits_model::PIT_MODEL.probability(&features),
            });
        }
    }
    out
}

/// A normalised Gaussian kernel, applied at single points.
struct Kernel {
    r: i64,
    taps: Vec<f32>,
}

impl Kernel {
    fn new(s: f64) -> Self {
        let taps = gaussian_kernel(s);
        Self {
            r: (taps.len() / 2) as i64,
            taps,
        }
    }

    /// The Gaussian-smoothed `plane` at (x, y), edges repeated as in [`gaussian`].
    fn at(&self, plane: &[f32], w: usize, h: usize, x: i64, y: i64) -> f32 {
        let mut acc = 0.0f32;
        for (j, ky) in self.taps.iter().enumerate() {
            let yy = (y + j as i64 - self.r).clamp(0, h as i64 - 1) as usize;
            let row = &plane[yy * w..(yy + 1) * w];
            let mut racc = 0.0f32;
            for (i, kx) in self.taps.iter().enumerate() {
                let xx = (x + i as i64 - self.r).clamp(0, w as i64 - 1) as usize;
                racc += kx * row[xx];
            }
            acc += ky * racc;
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skin with a faint mottle at 300 px/mm, a pit of 0.025 mm radius at (400, 300) and a dark
    /// shaft 0.07 mm wide from (700, 200) to (1100, 700).
    fn frame() -> RgbImage {
        let (w, h) = (1280u32, 1024u32);
        RgbImage::from_fn(w, h, |x, y| {
            let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let mottle = 0.03 * ((px / 37.0).sin() * (py / 53.0).cos());
            let mut k = 1.0 + mottle;
            let d = (px - 400.0).hypot(py - 300.0);
            k *= 1.0 - 0.3 * (-(d * d) / (2.0 * 6.0f64.powi(2))).exp();
            let (dx, dy) = (400.0f64, 500.0f64);
            let len = dx.hypot(dy);
            let (ux, uy) = (dx / len, dy / len);
            let along = (px - 700.0) * ux + (py - 200.0) * uy;
            let lateral = (-(px - 700.0) * uy + (py - 200.0) * ux).abs();
            if (0.0..=len).contains(&along) && lateral < 10.5 {
                k *= 0.35;
            }
            let c = |v: f64| (v * k).clamp(0.0, 255.0) as u8;
            image::Rgb([c(205.0), c(160.0), c(140.0)])
        })
    }

    #[test]
    fn finds_a_pit_in_clean_skin_and_not_a_shaft() {
        let img = frame();
        let found = pit_candidates(&img, 300.0);
        let best_pit = found
            .iter()
            .filter(|c| (c.x - 400.0).hypot(c.y - 300.0) < 6.0)
            .map(|c| c.probability)
            .fold(0.0, f64::max);
        assert!(best_pit > 0.5, "pit probability {best_pit}: {found:?}");
        let on_shaft: Vec<_> = found
            .iter()
            .filter(|c| c.probability > 0.5 && (c.x > 600.0 || c.y > 400.0))
            .collect();
        assert!(on_shaft.is_empty(), "{on_shaft:?}");
    }

    #[test]
    fn odd_frames_and_scales_do_not_panic() {
        let grey = |w, h, v| RgbImage::from_pixel(w, h, image::Rgb([v, v, v]));
        for (img, ppm) in [
            (grey(17, 17, 128), 300.0),
            (grey(5000, 40, 200), 300.0),
            (grey(300, 200, 0), 100.0),
            (grey(300, 200, 255), 400.0),
            (frame(), 100.0),
            (frame(), 2000.0),
        ] {
            let found = pit_candidates(&img, ppm);
            assert!(found.iter().all(|c| c.probability.is_finite()
                && c.x >= 0.0
                && c.y >= 0.0
                && c.x <= f64::from(img.width())
                && c.y <= f64::from(img.height())));
            let _ = crate::perception::dermoscope::shafts::detect_openings(&img, ppm);
        }
    }

    #[test]
    fn a_tiny_frame_has_no_candidates() {
        let img = RgbImage::from_pixel(20, 20, image::Rgb([200, 150, 130]));
        assert!(pit_candidates(&img, 300.0).is_empty());
    }
}
