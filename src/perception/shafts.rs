//! Classical follicle-opening detection for dermoscope (trichoscopy) frames, 100+ px/mm.
//!
//! At 20-70x a follicular unit is not a dot: its 1-4 hair shafts leave one opening in the skin
//! and run out from it. The detector finds the shafts and reports the opening, one per unit.
//!
//! # Algorithm
//! 1. Block-average the frame down to `WORKING_PX_PER_MM` (shafts 60-110 um stay 3-5 px wide).
//! 2. Relative darkness against the local skin level (box mean over `BACKGROUND_RADIUS_MM`).
//! 3. Shaft pixels: darkness above `SHAFT_CONTRAST`; connected components (8-neighbours).
//! 4. Each component long and thin enough to be hair (`MIN_SHAFT_LENGTH_MM`,
//!    `MIN_ELONGATION`) has two ends along its main axis. The opening is the end that does not
//!    leave the frame and, where the shafts of a unit lie side by side as they leave it, the
//!    wider one; on a tie, the lighter one (the shaft is seen through the skin's surface at the
//!    opening and fully at its cut tip). Blobs (moles), bands across the whole frame
//!    (a burned-in text bar) and components whose both ends leave the frame are not reported.
//!
//! Thresholds are in millimetres or dimensionless ratios.

use image::RgbImage;

use super::filter::{box_mean, Plane};
use crate::frame::{Detection, DotKind};

/// Scale the detector works at.
const WORKING_PX_PER_MM: f64 = 50.0;
/// Radius of the box that estimates the local skin level.
const BACKGROUND_RADIUS_MM: f64 = 0.5;
/// Relative darkness of a shaft pixel.
const SHAFT_CONTRAST: f32 = 0.3;
/// Shorter components are specks, not shafts.
const MIN_SHAFT_LENGTH_MM: f64 = 0.25;
/// Main axis over minor axis (standard deviations) of a shaft; rounder components are moles.
const MIN_ELONGATION: f64 = 2.5;
/// Length of each end of a component that is compared for width and darkness.
const END_LENGTH_MM: f64 = 0.15;
/// An end within this distance of the frame's edge leaves the frame.
const BORDER_MM: f64 = 0.04;
/// Components wider than this (the minor axis, two standard deviations each side) are bands
/// or patches, not a unit's shafts.
const MAX_HALF_WIDTH_MM: f64 = 0.5;
/// Pixels whose skin level is under this share of the frame's median are outside the
/// dermoscope's field: the dark vignetted rim, a burned-in text bar.
const FIELD_MIN_RATIO: f32 = 0.65;
/// Openings closer than this are one unit.
const UNIT_MERGE_MM: f64 = 0.3;
/// Radius reported for an opening.
const OPENING_RADIUS_MM: f64 = 0.06;

/// Detects follicle openings in a dermoscope frame at `px_per_mm`.
pub fn detect_openings(image: &RgbImage, px_per_mm: f64) -> Vec<Detection> {
    let (w0, h0) = (image.width() as usize, image.height() as usize);
    let f = (px_per_mm / WORKING_PX_PER_MM).round().max(1.0) as usize;
    let (w, h) = (w0 / f, h0 / f);
    if w < 3 || h < 3 {
        return Vec::new();
    }
    let ppm = px_per_mm / f as f64;
    // 1. Block-average luminance.
    let mut luma = Plane::default();
    luma.resize(w, h);
    let raw = image.as_raw();
    let inv = 1.0 / (f * f) as f32;
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0f32;
            for yy in y * f..(y + 1) * f {
                let row = &raw[3 * (yy * w0 + x * f)..3 * (yy * w0 + (x + 1) * f)];
                for px in row.chunks_exact(3) {
                    s += 0.299 * f32::from(px[0])
                        + 0.587 * f32::from(px[1])
                        + 0.114 * f32::from(px[2]);
                }
            }
            luma.data[y * w + x] = s * inv;
        }
    }
    // 2. Skin level with the dark shafts clipped out, then relative darkness.
    let (mut skin, mut tmp, mut col) = (Plane::default(), Plane::default(), Vec::new());
    let r_bg = (BACKGROUND_RADIUS_MM * ppm).round().max(2.0) as usize;
    box_mean(&luma, &mut skin, &mut tmp, &mut col, r_bg);
    let mut clipped = luma.clone();
    for (c, &s) in clipped.data.iter_mut().zip(&skin.data) {
        *c = c.clamp(0.8 * s, 1.05 * s);
    }
    box_mean(&clipped, &mut skin, &mut tmp, &mut col, r_bg);
    let mut levels: Vec<f32> = skin.data.iter().step_by(7).copied().collect();
    let mid = levels.len() / 2;
    let median_skin = *levels.select_nth_unstable_by(mid, f32::total_cmp).1;
    let field_min = FIELD_MIN_RATIO * median_skin;
    // Outside the field, darkness is 0 (nothing is found there) and the pixel counts as the
    // frame's edge for the shafts that reach it.
    let outside: Vec<bool> = skin.data.iter().map(|&s| s < field_min).collect();
    let dark: Vec<f32> = luma
        .data
        .iter()
        .zip(&skin.data)
        .zip(&outside)
        .map(|((&l, &s), &out)| if out { 0.0 } else { (s - l) / s.max(1.0) })
        .collect();
    // 3. Components of shaft pixels.
    let mut label = vec![u32::MAX; w * h];
    let mut stack = Vec::new();
    let mut openings: Vec<(f64, f64, f64)> = Vec::new();
    for start in 0..w * h {
        if label[start] != u32::MAX || dark[start] < SHAFT_CONTRAST {
            continue;
        }
        let id = start as u32;
        let mut pix: Vec<(usize, usize)> = Vec::new();
        label[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            pix.push((x, y));
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if label[j] == u32::MAX && dark[j] >= SHAFT_CONTRAST {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        if let Some(o) = opening_of(&pix, &dark, &outside, w, h, ppm) {
            openings.push(o);
        }
    }
    // 4. One detection per unit, in pixels of the input image.
    openings.sort_by(|a, b| b.2.total_cmp(&a.2));
    let merge = UNIT_MERGE_MM * ppm;
    let mut out: Vec<Detection> = Vec::new();
    for (x, y, score) in openings {
        if out
            .iter()
            .any(|d| (d.x / f as f64 - x).hypot(d.y / f as f64 - y) < merge)
        {
            continue;
        }
        out.push(Detection {
            x: x * f as f64,
            y: y * f as f64,
            radius: OPENING_RADIUS_MM * px_per_mm,
            kind: DotKind::Follicle,
            score,
        });
    }
    out
}

/// The opening of one component of shaft pixels (working-scale pixels, centres at +0.5), with a
/// score, or `None` when the component is not a unit's shafts.
fn opening_of(
    pix: &[(usize, usize)],
    dark: &[f32],
    outside: &[bool],
    w: usize,
    h: usize,
    ppm: f64,
) -> Option<(f64, f64, f64)> {
    let n = pix.len() as f64;
    let (mut mx, mut my) = (0.0, 0.0);
    for &(x, y) in pix {
        mx += x as f64 + 0.5;
        my += y as f64 + 0.5;
    }
    mx /= n;
    my /= n;
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &(x, y) in pix {
        let (dx, dy) = (x as f64 + 0.5 - mx, y as f64 + 0.5 - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let (sxx, syy, sxy) = (sxx / n, syy / n, sxy / n);
    let tr = sxx + syy;
    let disc = ((sxx - syy).powi(2) / 4.0 + sxy * sxy).sqrt();
    let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.25));
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let (ux, uy) = (angle.cos(), angle.sin());
    let (t_min, t_max) =
        pix.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, y)| {
                let t = (x as f64 + 0.5 - mx) * ux + (y as f64 + 0.5 - my) * uy;
                (lo.min(t), hi.max(t))
            });
    let length_mm = (t_max - t_min) / ppm;
    tracing::trace!(
        x = mx / ppm,
        y = my / ppm,
        length_mm,
        elongation = (l1 / l2).sqrt(),
        half_width_mm = 2.0 * l2.sqrt() / ppm,
        "shaft component"
    );
    if length_mm < MIN_SHAFT_LENGTH_MM || (l1 / l2).sqrt() < MIN_ELONGATION {
        return None;
    }
    if 2.0 * l2.sqrt() / ppm > MAX_HALF_WIDTH_MM {
        return None;
    }
    let end_len = END_LENGTH_MM * ppm;
    let border = (BORDER_MM * ppm).max(1.0);
    // Per end: centroid, spread across the axis, mean darkness, extreme point, leaves the frame.
    let fresh = End {
        best_t: f64::NEG_INFINITY,
        ..End::default()
    };
    let mut ends = [fresh, fresh];
    for &(x, y) in pix {
        let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
        let t = (fx - mx) * ux + (fy - my) * uy;
        let s = -(fx - mx) * uy + (fy - my) * ux;
        let k = if t - t_min <= end_len {
            0
        } else if t_max - t <= end_len {
            1
        } else {
            continue;
        };
        let e = &mut ends[k];
        e.n += 1.0;
        e.x += fx;
        e.y += fy;
        e.s += s;
        e.ss += s * s;
        e.dark += f64::from(dark[y * w + x]);
        let extreme = if k == 0 { -t } else { t };
        if extreme > e.best_t {
            e.best_t = extreme;
            e.tip = (fx, fy);
        }
        if fx < border || fy < border || fx > w as f64 - border || fy > h as f64 - border {
            e.leaves = true;
        } else if !e.leaves {
            let b = border.ceil() as usize;
            e.leaves = (y.saturating_sub(b)..=(y + b).min(h - 1)).any(|yy| {
                (x.saturating_sub(b)..=(x + b).min(w - 1)).any(|xx| outside[yy * w + xx])
            });
        }
    }
    if ends.iter().any(|e| e.n == 0.0) || (ends[0].leaves && ends[1].leaves) {
        return None;
    }
    let spread = |e: &End| (e.ss / e.n - (e.s / e.n).powi(2)).max(0.0).sqrt();
    let pick = if ends[0].leaves {
        1
    } else if ends[1].leaves {
        0
    } else {
        let (s0, s1) = (spread(&ends[0]), spread(&ends[1]));
        if (s0 - s1).abs() > 0.3 * s0.max(s1) {
            usize::from(s1 > s0)
        } else {
            usize::from(ends[1].dark / ends[1].n < ends[0].dark / ends[0].n)
        }
    };
    let e = &ends[pick];
    let score = (e.dark / e.n).clamp(0.0, 1.0).mul_add(0.5, 0.5);
    Some((e.tip.0, e.tip.1, score))
}

#[derive(Debug, Default, Clone, Copy)]
struct End {
    n: f64,
    x: f64,
    y: f64,
    s: f64,
    ss: f64,
    dark: f64,
    best_t: f64,
    tip: (f64, f64),
    leaves: bool,
}
