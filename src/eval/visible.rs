//! Which true dots a person could see, measured on the frame rather than read from how the
//! renderer drew them, and the skin groups the tables are split by.
//!
//! A true dot is visible when the CIELAB difference (ΔE*ab, CIE 1976) between its own pixels
//! and the skin in a ring [`RING_MM`] around its centre is at least
//! `max(`[`MIN_DELTA_E`]`, `[`NOISE_SIGMAS`]` × σ)`, where σ is the frame's fine-scale
//! lightness noise: the robust spread of the L* difference between horizontally adjacent
//! pixels, divided by √2. A dot under that is neither a miss when it is not found nor a false
//! positive when it is ([`score_frame_visible`]).
//!
//! The dot's pixels are a disc of [`DOT_CORE`] of its radius (at least one pixel) at its centre,
//! and for a follicular unit also at each hair's tip. The ring starts outside the dot itself when
//! the dot is larger than the ring's inner radius, and the skin level is the per-channel median
//! of the ring, so a neighbouring dot in it does not move it.

use image::RgbImage;
use serde::Serialize;

use super::detect::{score_frame, Score};
use crate::frame::Detection;
use crate::perception::filter::srgb_to_lab;
use crate::source::synth::Truth;

/// Inner and outer radius of the skin ring around a dot's centre (mm).
pub const RING_MM: (f64, f64) = (0.25, 0.45);
/// Smallest ΔE*ab that counts as visible, whatever the noise.
pub const MIN_DELTA_E: f64 = 2.0;
/// A dot must stand this many fine-scale lightness noise deviations above the skin.
pub const NOISE_SIGMAS: f64 = 3.0;
/// Share of a dot's radius its colour is read over.
pub const DOT_CORE: f64 = 0.6;
/// Every how many rows the noise estimate samples the frame.
const NOISE_ROW_STEP: u32 = 3;

/// Fitzpatrick groups the tables are split by.
pub const SKIN_GROUPS: [&str; 3] = ["I-II", "III-IV", "V-VI"];

/// Index into [`SKIN_GROUPS`] of a Fitzpatrick type (1..=6).
pub fn skin_group(fitzpatrick: u8) -> usize {
    (usize::from(fitzpatrick.clamp(1, 6)) - 1) / 2
}

/// What the frame shows of its true dots.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Visibility {
    /// Fine-scale lightness noise of the frame (L* units).
    pub noise_sigma: f64,
    /// ΔE*ab a dot needs to be visible on this frame.
    pub threshold: f64,
    /// ΔE*ab of each unit against its ring, in truth order.
    pub units: Vec<f64>,
    /// ΔE*ab of each pigment dot against its ring, in truth order.
    pub pigment: Vec<f64>,
}

impl Visibility {
    /// Measures every true dot of `truth` on `image`.
    pub fn measure(image: &RgbImage, truth: &Truth) -> Self {
        let noise_sigma = lightness_noise(image);
        let threshold = MIN_DELTA_E.max(NOISE_SIGMAS * noise_sigma);
        let ppm = truth.px_per_mm;
        let units = truth
            .units
            .iter()
            .map(|u| {
                let mut spots = vec![(u.x, u.y, u.radius)];
                spots.extend(u.hairs.iter().map(|h| (h.x, h.y, h.radius)));
                contrast(image, &spots, u.x, u.y, u.radius, ppm)
            })
            .collect();
        let pigment = truth
            .pigment
            .iter()
            .map(|p| contrast(image, &[(p.x, p.y, p.radius)], p.x, p.y, p.radius, ppm))
            .collect();
        Self {
            noise_sigma,
            threshold,
            units,
            pigment,
        }
    }

    /// The truth with only its visible dots.
    pub fn visible_truth(&self, truth: &Truth) -> Truth {
        let mut t = truth.clone();
        t.units = truth
            .units
            .iter()
            .zip(&self.units)
            .filter(|(_, &c)| c >= self.threshold)
            .map(|(u, _)| u.clone())
            .collect();
        t.pigment = truth
            .pigment
            .iter()
            .zip(&self.pigment)
            .filter(|(_, &c)| c >= self.threshold)
            .map(|(p, _)| p.clone())
            .collect();
        t
    }

    /// The truth with only the dots a person could not see.
    fn invisible_truth(&self, truth: &Truth) -> Truth {
        let mut t = truth.clone();
        t.units = truth
            .units
            .iter()
            .zip(&self.units)
            .filter(|(_, &c)| c < self.threshold)
            .map(|(u, _)| u.clone())
            .collect();
        t.pigment = truth
            .pigment
            .iter()
            .zip(&self.pigment)
            .filter(|(_, &c)| c < self.threshold)
            .map(|(p, _)| p.clone())
            .collect();
        t.negatives.clear();
        t
    }
}

/// Scores `detections` against the dots of `truth` a person could see on `image`: detections
/// of a dot that is not visible are set aside (neither true nor false positives), and such a
/// dot is not a miss. Matching as [`score_frame`].
pub fn score_frame_visible(image: &RgbImage, truth: &Truth, detections: &[Detection]) -> Score {
    let vis = Visibility::measure(image, truth);
    let seen = vis.visible_truth(truth);
    // A detection is set aside when it matches an invisible dot at least as well as any visible
    // one: match against every dot, then drop the detections paired with invisible dots.
    let hidden = vis.invisible_truth(truth);
    if hidden.units.is_empty() && hidden.pigment.is_empty() {
        return score_frame(truth, detections);
    }
    let all_pairs = super::detect::pairs(truth, detections);
    let n_units = truth.units.len();
    let invisible_dot = |ti: usize| {
        if ti < n_units {
            vis.units[ti] < vis.threshold
        } else {
            vis.pigment[ti - n_units] < vis.threshold
        }
    };
    let mut drop = vec![false; detections.len()];
    for (di, ti) in all_pairs {
        if invisible_dot(ti) {
            drop[di] = true;
        }
    }
    let kept: Vec<Detection> = detections
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(d, _)| *d)
        .collect();
    score_frame(&seen, &kept)
}

/// ΔE*ab between the mean colour of the discs `spots` (centre and radius in px, read over
/// [`DOT_CORE`] of the radius) and the median colour of the ring around (`cx`, `cy`).
fn contrast(
    image: &RgbImage,
    spots: &[(f64, f64, f64)],
    cx: f64,
    cy: f64,
    radius: f64,
    ppm: f64,
) -> f64 {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let lab_at = |x: i64, y: i64| -> Option<[f64; 3]> {
        (x >= 0 && y >= 0 && x < w && y < h)
            .then(|| srgb_to_lab(image.get_pixel(x as u32, y as u32).0))
    };
    let mut sum = [0.0f64; 3];
    let mut n = 0usize;
    for &(sx, sy, sr) in spots {
        let r = (DOT_CORE * sr).max(1.0);
        let (x0, x1) = ((sx - r).floor() as i64, (sx + r).ceil() as i64);
        let (y0, y1) = ((sy - r).floor() as i64, (sy + r).ceil() as i64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                if (px - sx).hypot(py - sy) > r {
                    continue;
                }
                if let Some(l) = lab_at(x, y) {
                    for c in 0..3 {
                        sum[c] += l[c];
                    }
                    n += 1;
                }
            }
        }
    }
    if n == 0 {
        return 0.0;
    }
    let dot = sum.map(|s| s / n as f64);
    let inner = (RING_MM.0 * ppm).max(radius + 1.0);
    let outer = (RING_MM.1 * ppm).max(inner + 0.2 * ppm).max(inner + 2.0);
    let mut ring: [Vec<f64>; 3] = Default::default();
    let (x0, x1) = ((cx - outer).floor() as i64, (cx + outer).ceil() as i64);
    let (y0, y1) = ((cy - outer).floor() as i64, (cy + outer).ceil() as i64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let d = (x as f64 + 0.5 - cx).hypot(y as f64 + 0.5 - cy);
            if d < inner || d > outer {
                continue;
            }
            if let Some(l) = lab_at(x, y) {
                for c in 0..3 {
                    ring[c].push(l[c]);
                }
            }
        }
    }
    if ring[0].is_empty() {
        return 0.0;
    }
    let skin: Vec<f64> = ring
        .iter_mut()
        .map(|v| {
            let mid = v.len() / 2;
            *v.select_nth_unstable_by(mid, f64::total_cmp).1
        })
        .collect();
    ((dot[0] - skin[0]).powi(2) + (dot[1] - skin[1]).powi(2) + (dot[2] - skin[2]).powi(2)).sqrt()
}

/// Fine-scale lightness noise of a frame (L* units): 1.4826 × the median absolute deviation of
/// the L* difference between horizontally adjacent pixels, over √2.
pub fn lightness_noise(image: &RgbImage) -> f64 {
    let (w, h) = image.dimensions();
    if w < 2 || h == 0 {
        return 0.0;
    }
    let mut diffs = Vec::with_capacity((w as usize) * (h / NOISE_ROW_STEP + 1) as usize);
    for y in (0..h).step_by(NOISE_ROW_STEP as usize) {
        let mut prev = srgb_to_lab(image.get_pixel(0, y).0)[0];
        for x in 1..w {
            let l = srgb_to_lab(image.get_pixel(x, y).0)[0];
            diffs.push(l - prev);
            prev = l;
        }
    }
    let mid = diffs.len() / 2;
    let median = *diffs.select_nth_unstable_by(mid, f64::total_cmp).1;
    for d in &mut diffs {
        *d = (*d - median).abs();
    }
    let mad = *diffs.select_nth_unstable_by(mid, f64::total_cmp).1;
    1.4826 * mad / std::f64::consts::SQRT_2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::DotKind;
    use crate::source::synth::{TruthPigment, View};
    use image::Rgb;

    fn frame(dot: [u8; 3]) -> (RgbImage, Truth) {
        let mut img = RgbImage::from_pixel(100, 60, Rgb([180, 140, 120]));
        for y in 0..60 {
            for x in 0..100 {
                if ((x as f64 + 0.5 - 30.0).hypot(y as f64 + 0.5 - 30.0)) < 4.0 {
                    img.put_pixel(x, y, Rgb(dot));
                }
            }
        }
        let truth = Truth {
            seed: 0,
            view: View::Rig,
            width: 100,
            height: 60,
            px_per_mm: 20.0,
            fitzpatrick: 2,
            units: vec![],
            pigment: vec![
                TruthPigment {
                    x: 30.0,
                    y: 30.0,
                    radius: 4.0,
                    shade: 0.8,
                },
                // Drawn, but nothing shows on the frame.
                TruthPigment {
                    x: 70.0,
                    y: 30.0,
                    radius: 4.0,
                    shade: 0.1,
                },
            ],
            negatives: vec![],
            not_skin: None,
        };
        (img, truth)
    }

    fn det(x: f64, y: f64) -> Detection {
        Detection {
            x,
            y,
            radius: 4.0,
            kind: DotKind::Pigment,
            score: 1.0,
            hairs: None,
        }
    }

    #[test]
    fn a_dot_the_frame_does_not_show_is_neither_miss_nor_false_positive() {
        let (img, truth) = frame([90, 90, 100]);
        let vis = Visibility::measure(&img, &truth);
        assert!(vis.pigment[0] > 20.0 && vis.pigment[1] < 0.5, "{vis:?}");
        // Found only the visible dot: perfect. Found both: still perfect.
        for dets in [
            vec![det(30.0, 30.0)],
            vec![det(30.0, 30.0), det(70.0, 30.0)],
        ] {
            let s = score_frame_visible(&img, &truth, &dets);
            assert_eq!((s.true_dots, s.detections, s.matched), (1, 1, 1), "{s:?}");
        }
        // Missed the visible dot: a miss.
        let s = score_frame_visible(&img, &truth, &[]);
        assert_eq!((s.true_dots, s.matched), (1, 0));
    }

    #[test]
    fn colour_alone_makes_a_dot_visible() {
        // Same lightness as the skin, bluer: visible by colour.
        let skin = srgb_to_lab([180, 140, 120]);
        let (img, truth) = frame([150, 145, 150]);
        let dot = srgb_to_lab([150, 145, 150]);
        assert!((dot[0] - skin[0]).abs() < 3.0, "{dot:?} vs {skin:?}");
        let vis = Visibility::measure(&img, &truth);
        assert!(vis.pigment[0] >= vis.threshold, "{vis:?}");
    }

    #[test]
    fn skin_groups() {
        assert_eq!(
            (1..=6).map(skin_group).collect::<Vec<_>>(),
            vec![0, 0, 1, 1, 2, 2]
        );
    }
}
