//! Follicle openings in dermoscope frames: the openings model's heat map, fused with the traced
//! shafts and pits of [`super::shafts`].
//!
//! # Why a model here
//! The tracer finds an opening where it can follow a shaft back to the skin and decide which of
//! its ends is the root. Long hair crossing other hair defeats it: a root that lies on another
//! shaft, a shaft that runs out of the field, a tangle of units. Choosing perfectly among the
//! tracer's ends would still find only about 75% of the terminal-hair units of the check seeds.
//! A small convolutional network that sees about a millimetre around every point
//! (`models/train/train_openings.py`, contract in `models/README.md`) learns what an opening
//! looks like in all of those cases at once: shafts converging on a point, fading into the
//! skin, the opening's pit, and what a cut tip looks like instead.
//!
//! # Fusion
//! 1. **Candidates.** Cells whose probability is the largest of their 3x3 neighbourhood and at
//!    least [`OpeningsConfig::peak_min`] are candidates, placed at the probability-weighted
//!    centre of the neighbourhood. A candidate inside a healed pigment dot the classical
//!    detector found is that dot, not an opening.
//! 2. **Opening trees.** With the trees on ([`OpeningsConfig::trees_min`] at most 1), each
//!    candidate gets a probability of being a unit from [`PEAK_FEATURES`] (its heat, its
//!    neighbours, its colour against the skin around it, the nearest traced opening, the frame's
//!    context); the openings are the candidates at or above `trees_min`, at most
//!    [`openings_to_keep`] of them, the most probable. With the trees off every candidate is an
//!    opening.
//! 3. **Traced openings the model missed.** A classical opening (traced root or pit) farther
//!    than [`OpeningsConfig::separation_mm`] from every opening of step 2 is kept when the model
//!    gives it at least [`OpeningsConfig::confirm_min`] within one cell (the model saw
//!    something there, just not enough on its own), or when its own score reaches
//!    [`OpeningsConfig::keep_score_min`] (both off by default since issue 17, see below).
//! 4. **Hairs.** Each opening carries the hairs leaving it: the model's `hairs` channel at the
//!    peak where the model has one, else the traced unit's merged roots within
//!    `separation_mm`, else one.
//! 5. Pigment dots come from the classical detector unchanged.
//!
//! Since issue 17 the bundled model is trained on real trichoscopy photographs (the FDU/BSRL
//! training split, `models/train/train_openings_real.py`), the opening trees are fitted on its
//! candidates in the same split (`models/train/fit_openings_fdu.py`), and the thresholds were
//! chosen on that set's validation split (figures in `docs/dermoscope-real.md`): candidates from
//! 0.1, trees at their chosen threshold, rule 3 off. The model's peaks alone at a threshold
//! pulled each photograph's count toward the mean (too many in sparse ones, too few in crowded
//! ones); the trees and the cap at the expected number took the count error from 2.18 to 1.78
//! units per image and F1 from 0.801 to 0.810. Traced openings added beside the peaks cost F1
//! (0.798 against 0.802), so the tracer speaks through the trees' features instead. It also
//! stays for pigment dots, for the hairs of each opening, for `--no-model`, and for the live
//! view, where the model's mask comes from an older frame and only confirms traced openings
//! (`session`).

use super::shafts::{MAX_HAIRS, OPENING_RADIUS_MM};
use image::RgbImage;

use super::generated::openings_model::{CHOSEN_MIN as OPENING_TREES_MIN, OPENING_MODEL};
use crate::frame::{Detection, DotKind};
use crate::perception::filter::luma_of;
use crate::perception::segment::SegMask;

/// The channel of an openings model with hairs (`opening,hairs`) that holds the hairs.
const HAIRS_CHANNEL: usize = 1;

/// Thresholds of the fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpeningsConfig {
    /// Smallest peak probability that is a candidate opening. With the opening trees off
    /// (`trees_min` above 1) every candidate is an opening; with them on, the candidates are
    /// also the context the trees read (how many peaks a frame has, where a peak stands among
    /// them), so this stays at the [`TREES_PEAK_MIN`] they were fitted with.
    pub peak_min: f32,
    /// Smallest probability of the opening trees that makes a candidate an opening (above 1:
    /// the trees are off).
    pub trees_min: f64,
    /// Smallest probability near a traced opening that keeps it (above 1: never).
    pub confirm_min: f32,
    /// A traced opening this close to an opening of the model is that opening (mm).
    pub separation_mm: f64,
    /// A traced opening whose own score reaches this is kept whatever the model says there
    /// (above 1: never).
    pub keep_score_min: f64,
}

/// The candidate floor the opening trees were fitted with (`models/train/fit_openings_fdu.py`).
pub const TREES_PEAK_MIN: f32 = 0.1;

/// Most candidates judged in one frame: the strongest are kept. A photograph of the training set
/// has at most a few hundred; the cap bounds the work of the pairwise features on a noisy or
/// very large frame.
pub const MAX_CANDIDATES: usize = 4000;

/// Keeps the [`MAX_CANDIDATES`] strongest of `peaks`, in raster order.
fn cap_candidates(peaks: &mut Vec<Peak>) {
    if peaks.len() > MAX_CANDIDATES {
        peaks.sort_by(|a, b| b.p.total_cmp(&a.p));
        peaks.truncate(MAX_CANDIDATES);
        peaks.sort_by_key(|p| (p.row, p.col));
    }
}

impl Default for OpeningsConfig {
    fn default() -> Self {
        Self {
            peak_min: TREES_PEAK_MIN,
            trees_min: OPENING_TREES_MIN,
            // Traced openings are not added beside the real-photo model's openings: on the FDU
            // validation split they cost F1 (0.798 against 0.802 with the peaks alone,
            // docs/dermoscope-real.md); the tracer speaks through the trees instead.
            confirm_min: 2.0,
            separation_mm: 0.1,
            keep_score_min: 2.0,
        }
    }
}

/// A local maximum of the heat map: position in image pixels and probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// Centre x, image pixels.
    pub x: f64,
    /// Centre y, image pixels.
    pub y: f64,
    /// Probability at the peak cell.
    pub p: f32,
    /// The peak cell's column.
    pub col: usize,
    /// The peak cell's row.
    pub row: usize,
}

/// Finds the peaks of one class plane of `mask` (the openings model's is 0) at or above `min`
/// into `out` (cleared first), in image pixels.
pub fn peaks_into(mask: &SegMask, class: usize, min: f32, out: &mut Vec<Peak>) {
    out.clear();
    let (cols, rows) = (mask.valid_cols, mask.valid_rows);
    if cols == 0 || rows == 0 || class >= mask.classes {
        return;
    }
    let at = |c: usize, r: usize| mask.at(class, c, r);
    for r in 0..rows {
        for c in 0..cols {
            let p = at(c, r);
            if p < min {
                continue;
            }
            let (r0, r1) = (r.saturating_sub(1), (r + 1).min(rows - 1));
            let (c0, c1) = (c.saturating_sub(1), (c + 1).min(cols - 1));
            let mut is_max = true;
            let (mut sw, mut sc, mut sr) = (0.0f64, 0.0f64, 0.0f64);
            for rr in r0..=r1 {
                for cc in c0..=c1 {
                    let q = at(cc, rr);
                    // Ties go to the first cell in raster order, so a flat top gives one peak.
                    if q > p || (q == p && (rr, cc) < (r, c)) {
                        is_max = false;
                    }
                    let w = f64::from(q);
                    sw += w;
                    sc += w * cc as f64;
                    sr += w * rr as f64;
                }
            }
            if !is_max || sw <= 0.0 {
                continue;
            }
            let (x, y) = mask.image_of(sc / sw, sr / sw);
            out.push(Peak {
                x,
                y,
                p,
                col: c,
                row: r,
            });
        }
    }
}

/// The features of one candidate peak that the opening trees read, in the order they were
/// fitted on (`generated::openings_model::FEATURE_NAMES`; a test checks the two agree).
///
/// - `p`, `sum3`, `sum5`: the peak's probability and the heat of its 3x3 and 5x5 cells;
/// - `near_mm`, `near_p`, `second_mm`, `within_*`: the nearest other candidate (distance, its
///   probability), the second nearest, and how many candidates lie within 0.13, 0.27 and 0.53 mm:
///   a unit of two hairs can give two peaks, and a crowded frame is read differently;
/// - `rank`: the share of the frame's candidates that are stronger;
/// - `local_heat`: the mean heat within 0.5 mm;
/// - `red`, `green`, `blue`: the mean colour (0-1) within 0.025 mm of the peak, `contrast` its
///   luminance against the mean within 0.125 mm (an opening sits in a darker, bluish pit);
/// - `traced_*`: the nearest traced opening (distance, score, hairs) and the traced openings
///   per mm² of the frame: the tracer sees the shafts leaving an opening;
/// - `strong`/`mid`/`weak_per_mm2`: the candidates at or above 0.5, 0.35 and 0.2 per mm² of the
///   map, `heat_mean`, `heat_share` (cells at or above 0.2), `heat_max`, and the frame's
///   `luma_mean` and `luma_std` (0-1): the same probability means more on a clear frame than
///   on a hazy or crowded one, which is where a fixed threshold over- and under-counts.
pub const PEAK_FEATURES: [&str; PEAK_FEATURE_COUNT] = [
    "p",
    "sum3",
    "sum5",
    "near_mm",
    "near_p",
    "second_mm",
    "within_0_13",
    "within_0_27",
    "within_0_53",
    "rank",
    "local_heat",
    "red",
    "green",
    "blue",
    "contrast",
    "traced_mm",
    "traced_score",
    "traced_hairs",
    "traced_per_mm2",
    "strong_per_mm2",
    "mid_per_mm2",
    "weak_per_mm2",
    "heat_mean",
    "heat_share",
    "heat_max",
    "luma_mean",
    "luma_std",
];

/// How many [`PEAK_FEATURES`] there are.
pub const PEAK_FEATURE_COUNT: usize = 27;

/// The distance given when there is nothing to measure to (mm): farther than any context the
/// trees read.
const FAR_MM: f64 = 10.0;
/// Radii of the `within_*` counts (mm).
const WITHIN_MM: [f64; 3] = [0.133, 0.267, 0.533];
/// Half-width of the `local_heat` box (mm).
const LOCAL_HEAT_MM: f64 = 0.5;
/// Half-width of the colour box at the peak (mm).
const COLOUR_MM: f64 = 0.025;
/// Half-width of the box the peak's `contrast` is taken against (mm).
const SURROUND_MM: f64 = 0.125;
/// The heat levels of `strong`, `mid` and `weak_per_mm2`, and of `heat_share`.
const LEVELS: [f32; 3] = [0.5, 0.35, 0.2];
/// The frame's luminance statistics sample one pixel per this many mm along each axis.
const LUMA_STEP_MM: f64 = 1.0 / 60.0;

/// Mean colour (0-1) and luminance (0-1) of the pixels within `half` px of (x, y), clipped to
/// the image; `None` where the box is empty.
fn box_colour(image: &RgbImage, x: f64, y: f64, half: i64) -> Option<([f64; 3], f64)> {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    let (x0, x1) = ((cx - half).max(0), (cx + half).min(w - 1));
    let (y0, y1) = ((cy - half).max(0), (cy + half).min(h - 1));
    if x0 > x1 || y0 > y1 {
        return None;
    }
    let mut sum = [0.0f64; 3];
    let mut luma = 0.0f64;
    for yy in y0..=y1 {
        for xx in x0..=x1 {
            let px = image.get_pixel(xx as u32, yy as u32).0;
            for (s, v) in sum.iter_mut().zip(px) {
                *s += f64::from(v);
            }
            luma += f64::from(luma_of(px[0], px[1], px[2]));
        }
    }
    let n = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64 * 255.0;
    Some((sum.map(|s| s / n), luma / n))
}

/// Writes the [`PEAK_FEATURES`] of every peak in `peaks` (the frame's candidates) into `out`
/// (cleared first, one row per peak, in order). `classical` are the frame's traced
/// detections; `image` the frame the mask was computed on.
pub fn peak_features_into(
    image: &RgbImage,
    mask: &SegMask,
    peaks: &[Peak],
    classical: &[Detection],
    px_per_mm: f64,
    out: &mut Vec<[f64; PEAK_FEATURE_COUNT]>,
) {
    out.clear();
    let (cols, rows) = (mask.valid_cols, mask.valid_rows);
    if peaks.is_empty() || cols == 0 || rows == 0 || px_per_mm <= 0.0 {
        return;
    }
    let heat = |c: usize, r: usize| f64::from(mask.at(0, c, r));
    // Frame context: the map's heat and candidates, the traced openings, the luminance.
    let map_mm2 = (cols as f64 * mask.px_per_cell_x) * (rows as f64 * mask.px_per_cell_y)
        / (px_per_mm * px_per_mm);
    let (mut heat_sum, mut heat_over, mut heat_max) = (0.0f64, 0usize, 0.0f64);
    // Integral of the heat, for the local boxes.
    let mut integral = vec![0.0f64; (cols + 1) * (rows + 1)];
    for r in 0..rows {
        let mut row_sum = 0.0;
        for c in 0..cols {
            let v = heat(c, r);
            heat_sum += v;
            heat_over += usize::from(v >= f64::from(LEVELS[2]));
            heat_max = heat_max.max(v);
            row_sum += v;
            integral[(r + 1) * (cols + 1) + c + 1] = integral[r * (cols + 1) + c + 1] + row_sum;
        }
    }
    let cells = (cols * rows) as f64;
    let level_density =
        LEVELS.map(|l| peaks.iter().filter(|p| p.p >= l).count() as f64 / map_mm2.max(1e-9));
    let traced: Vec<&Detection> = classical
        .iter()
        .filter(|d| d.kind == DotKind::Follicle)
        .collect();
    let frame_mm2 = f64::from(image.width()) * f64::from(image.height()) / (px_per_mm * px_per_mm);
    let traced_density = traced.len() as f64 / frame_mm2.max(1e-9);
    let step = ((LUMA_STEP_MM * px_per_mm).round() as usize).max(1);
    let (mut n, mut ls, mut ls2) = (0.0f64, 0.0f64, 0.0f64);
    for y in (0..image.height()).step_by(step) {
        for x in (0..image.width()).step_by(step) {
            let [r, g, b] = image.get_pixel(x, y).0;
            let l = f64::from(luma_of(r, g, b)) / 255.0;
            n += 1.0;
            ls += l;
            ls2 += l * l;
        }
    }
    let luma_mean = if n > 0.0 { ls / n } else { 0.0 };
    let luma_std = if n > 0.0 {
        (ls2 / n - luma_mean * luma_mean).max(0.0).sqrt()
    } else {
        0.0
    };
    let cell_mm = mask.px_per_cell_x / px_per_mm;
    let local_half = ((LOCAL_HEAT_MM / cell_mm).round() as usize).max(1);
    let colour_half = ((COLOUR_MM * px_per_mm).round() as i64).max(1);
    let surround_half = ((SURROUND_MM * px_per_mm).round() as i64).max(colour_half + 1);
    for (i, p) in peaks.iter().enumerate() {
        let box_sum = |half: usize| {
            let (r0, r1) = (p.row.saturating_sub(half), (p.row + half).min(rows - 1));
            let (c0, c1) = (p.col.saturating_sub(half), (p.col + half).min(cols - 1));
            let s = integral[(r1 + 1) * (cols + 1) + c1 + 1]
                - integral[r0 * (cols + 1) + c1 + 1]
                - integral[(r1 + 1) * (cols + 1) + c0]
                + integral[r0 * (cols + 1) + c0];
            (s, ((r1 - r0 + 1) * (c1 - c0 + 1)) as f64)
        };
        // The nearest two other candidates and the counts within each radius, in one pass.
        let (mut near, mut second) = ((FAR_MM, 0.0f64), FAR_MM);
        let mut within = [0.0f64; WITHIN_MM.len()];
        for (j, q) in peaks.iter().enumerate() {
            if j == i {
                continue;
            }
            let d = (q.x - p.x).hypot(q.y - p.y) / px_per_mm;
            if d < near.0 {
                second = near.0;
                near = (d, f64::from(q.p));
            } else if d < second {
                second = d;
            }
            for (count, radius) in within.iter_mut().zip(WITHIN_MM) {
                *count += f64::from(u8::from(d < radius));
            }
        }
        let ((near_mm, near_p), second_mm) = (near, second);
        let rank = peaks.iter().filter(|q| q.p > p.p).count() as f64 / peaks.len() as f64;
        let (local, local_n) = box_sum(local_half);
        let (colour, luma) = box_colour(image, p.x, p.y, colour_half).unwrap_or(([0.0; 3], 0.0));
        let surround = box_colour(image, p.x, p.y, surround_half).map_or(luma, |(_, l)| l);
        let nearest_traced = traced
            .iter()
            .map(|d| ((d.x - p.x).hypot(d.y - p.y) / px_per_mm, *d))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let (traced_mm, traced_score, traced_hairs) = nearest_traced
            .map_or((FAR_MM, 0.0, 0.0), |(dist, d)| {
                (dist, d.score, f64::from(d.hairs.unwrap_or(1)))
            });
        out.push([
            f64::from(p.p),
            box_sum(1).0,
            box_sum(2).0,
            near_mm,
            near_p,
            second_mm,
            within[0],
            within[1],
            within[2],
            rank,
            local / local_n,
            colour[0],
            colour[1],
            colour[2],
            luma - surround,
            traced_mm,
            traced_score,
            traced_hairs,
            traced_density,
            level_density[0],
            level_density[1],
            level_density[2],
            heat_sum / cells,
            heat_over as f64 / cells,
            heat_max,
            luma_mean,
            luma_std,
        ]);
    }
}

/// The largest probability within one cell of an image point.
fn near_max(mask: &SegMask, x: f64, y: f64) -> f32 {
    let (u, v) = mask.cell_of(x, y);
    let (c, r) = (u.round(), v.round());
    let mut best = 0.0f32;
    for dr in -1..=1 {
        for dc in -1..=1 {
            let (cc, rr) = (c + f64::from(dc), r + f64::from(dr));
            if cc >= 0.0
                && rr >= 0.0
                && (cc as usize) < mask.valid_cols
                && (rr as usize) < mask.valid_rows
            {
                best = best.max(mask.at(0, cc as usize, rr as usize));
            }
        }
    }
    best
}

/// The hairs of the unit at a peak: the model's hairs channel at the peak cell where it has one,
/// else the traced opening within `separation` px (its merged roots), else one.
fn hairs_at(mask: &SegMask, peak: &Peak, classical: &[Detection], separation: f64) -> u8 {
    if mask.classes > HAIRS_CHANNEL {
        let (u, v) = mask.cell_of(peak.x, peak.y);
        let c = (u.round().max(0.0) as usize).min(mask.valid_cols.saturating_sub(1));
        let r = (v.round().max(0.0) as usize).min(mask.valid_rows.saturating_sub(1));
        let h = mask.at(HAIRS_CHANNEL, c, r);
        if h.is_finite() {
            return (h.round().max(1.0) as u8).min(MAX_HAIRS);
        }
    }
    classical
        .iter()
        .filter(|d| d.kind == DotKind::Follicle)
        .map(|d| ((d.x - peak.x).hypot(d.y - peak.y), d.hairs))
        .filter(|(dist, _)| *dist < separation)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .and_then(|(_, h)| h)
        .unwrap_or(1)
}

/// Fuses the classical dermoscope detections with the openings model's mask of the same frame.
#[derive(Debug, Default)]
pub struct OpeningsFuser {
    /// The thresholds.
    pub config: OpeningsConfig,
    /// The frame's candidate peaks.
    peaks: Vec<Peak>,
    /// Their features, when the trees are on.
    features: Vec<[f64; PEAK_FEATURE_COUNT]>,
    /// The candidates outside pigment dots: probability and index in `peaks`.
    scored: Vec<(f64, usize)>,
    /// The candidates taken as openings.
    openings: Vec<Peak>,
}

/// At most how many of a frame's candidates are openings, given each one's probability: the
/// mean of the expected number (the sum of the probabilities) and the number at or above
/// `threshold`, rounded half up.
pub fn openings_to_keep(probabilities: impl Iterator<Item = f64> + Clone, threshold: f64) -> usize {
    let expected: f64 = probabilities.clone().sum();
    let over = probabilities.filter(|&q| q >= threshold).count();
    ((expected + over as f64) / 2.0 + 0.5).floor() as usize
}

/// A peak inside a healed pigment dot the classical detector found is that dot.
fn under_pigment(classical: &[Detection], p: &Peak) -> bool {
    classical
        .iter()
        .any(|d| d.kind == DotKind::Pigment && (d.x - p.x).hypot(d.y - p.y) <= d.radius)
}

impl OpeningsFuser {
    /// The candidate peaks the trees judge in one frame (those at or above `peak_min` that are
    /// not inside a pigment dot), each with its [`PEAK_FEATURES`]: what the fitting script
    /// (`examples/derm_peaks.rs`) learns from.
    pub fn candidates(
        &mut self,
        classical: &[Detection],
        mask: &SegMask,
        image: &RgbImage,
        px_per_mm: f64,
    ) -> Vec<(Peak, [f64; PEAK_FEATURE_COUNT])> {
        self.find_candidates(classical, mask, image, px_per_mm, true);
        self.peaks
            .iter()
            .zip(&self.features)
            .filter(|(p, _)| !under_pigment(classical, p))
            .map(|(p, f)| (*p, *f))
            .collect()
    }

    /// The frame's candidate peaks into `peaks`, and with `trees` their features into
    /// `features` (the strongest [`MAX_CANDIDATES`] only).
    fn find_candidates(
        &mut self,
        classical: &[Detection],
        mask: &SegMask,
        image: &RgbImage,
        px_per_mm: f64,
        trees: bool,
    ) {
        peaks_into(mask, 0, self.config.peak_min, &mut self.peaks);
        if trees {
            cap_candidates(&mut self.peaks);
            peak_features_into(
                image,
                mask,
                &self.peaks,
                classical,
                px_per_mm,
                &mut self.features,
            );
        }
    }

    /// A fuser with these thresholds.
    pub fn new(config: OpeningsConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Writes the fused detections of one frame into `out` (cleared first); see the module
    /// documentation for the rules. `image` is the frame `mask` and `classical` came from.
    pub fn fuse_into(
        &mut self,
        classical: &[Detection],
        mask: &SegMask,
        image: &RgbImage,
        px_per_mm: f64,
        out: &mut Vec<Detection>,
    ) {
        out.clear();
        let cfg = self.config;
        let trees = cfg.trees_min <= 1.0;
        self.find_candidates(classical, mask, image, px_per_mm, trees);
        out.extend(classical.iter().filter(|d| d.kind == DotKind::Pigment));
        let radius = OPENING_RADIUS_MM * px_per_mm;
        let separation = cfg.separation_mm * px_per_mm;
        // Each candidate outside a pigment dot, with its probability of being an opening.
        self.scored.clear();
        for (i, p) in self.peaks.iter().enumerate() {
            if under_pigment(classical, p) {
                continue;
            }
            let q = match self.features.get(i).filter(|_| trees) {
                Some(f) => OPENING_MODEL.probability(f),
                None => f64::from(p.p),
            };
            self.scored.push((q, i));
        }
        if trees {
            // Those at the threshold, at most K of them, the most probable: K is the mean of the
            // expected number of openings and the number at the threshold (rounded half up). A
            // threshold alone over-counts sparse frames (docs/dermoscope-real.md).
            let k = openings_to_keep(self.scored.iter().map(|(q, _)| *q), cfg.trees_min);
            // Stable: equal probabilities keep raster order, as the fitting script does.
            self.scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            self.scored.truncate(k);
            self.scored.retain(|(q, _)| *q >= cfg.trees_min);
            self.scored.sort_by_key(|&(_, i)| i);
        }
        self.openings.clear();
        for &(score, i) in &self.scored {
            let p = &self.peaks[i];
            self.openings.push(*p);
            out.push(Detection {
                x: p.x,
                y: p.y,
                radius,
                kind: DotKind::Follicle,
                score,
                hairs: Some(hairs_at(mask, p, classical, separation)),
            });
        }
        for d in classical.iter().filter(|d| d.kind == DotKind::Follicle) {
            let near_opening = self
                .openings
                .iter()
                .any(|p| (d.x - p.x).hypot(d.y - p.y) < separation);
            if !near_opening
                && (d.score >= cfg.keep_score_min || near_max(mask, d.x, d.y) >= cfg.confirm_min)
            {
                out.push(*d);
            }
        }
        tracing::trace!(
            candidates = self.peaks.len(),
            openings = self.openings.len(),
            total = out.len(),
            "openings fused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(cols: usize, rows: usize, hot: &[(usize, usize, f32)]) -> SegMask {
        let hot: Vec<_> = hot.iter().map(|&(c, r, p)| (0, c, r, p)).collect();
        SegMask::test_grid(cols, rows, 1, 10.0, &hot)
    }

    #[test]
    fn peaks_are_local_maxima_at_weighted_centres() {
        // One peak with a weaker right neighbour (pulls the centre right), one below threshold,
        // and a flat two-cell top that must give a single peak.
        let m = mask(
            12,
            8,
            &[
                (2, 2, 0.9),
                (3, 2, 0.45),
                (8, 5, 0.3),
                (6, 6, 0.7),
                (7, 6, 0.7),
            ],
        );
        let mut out = Vec::new();
        peaks_into(&m, 0, 0.5, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        let (x, y) = m.image_of(2.0 + 0.45 / 1.35, 2.0);
        assert!((out[0].x - x).abs() < 1e-9 && (out[0].y - y).abs() < 1e-9);
        assert_eq!(out[0].p, 0.9);
        assert!((out[1].x - 70.0).abs() < 1e-9, "{:?}", out[1]);
    }

    #[test]
    fn fusion_keeps_pigment_adds_peaks_and_confirms_traced_openings() {
        let m = mask(20, 20, &[(5, 5, 0.9), (15, 15, 0.8), (10, 3, 0.3)]);
        let det = |x: f64, y: f64, kind| Detection {
            x,
            y,
            radius: 20.0,
            kind,
            score: 0.6,
            hairs: None,
        };
        let classical = vec![
            // Pigment dot over the second peak: the peak is that dot.
            det(155.0, 155.0, DotKind::Pigment),
            // Traced opening at the first peak: the same opening.
            det(57.0, 52.0, DotKind::Follicle),
            // Traced opening the model half sees: kept.
            det(105.0, 35.0, DotKind::Follicle),
            // Traced opening where the model sees nothing: dropped...
            det(105.0, 175.0, DotKind::Follicle),
            // ... unless the tracer is sure of it.
            Detection {
                score: 0.95,
                ..det(175.0, 105.0, DotKind::Follicle)
            },
        ];
        let mut out = Vec::new();
        // The rules at the thresholds of the rendered-frame model (the defaults before issue 17).
        OpeningsFuser::new(OpeningsConfig {
            peak_min: 0.5,
            trees_min: 2.0,
            confirm_min: 0.2,
            separation_mm: 0.1,
            keep_score_min: 0.9,
        })
        .fuse_into(&classical, &m, &RgbImage::new(200, 200), 100.0, &mut out);
        let kinds: Vec<(i64, i64, DotKind)> = out
            .iter()
            .map(|d| (d.x.round() as i64, d.y.round() as i64, d.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (155, 155, DotKind::Pigment),
                (55, 55, DotKind::Follicle),
                (105, 35, DotKind::Follicle),
                (175, 105, DotKind::Follicle),
            ]
        );
    }

    #[test]
    fn the_opening_trees_read_the_features_in_their_fitted_order() {
        assert_eq!(
            PEAK_FEATURES.to_vec(),
            crate::perception::dermoscope::generated::openings_model::FEATURE_NAMES.to_vec()
        );
    }

    #[test]
    fn the_count_of_openings_leans_toward_the_expected_number() {
        let keep = |q: &[f64], t| openings_to_keep(q.iter().copied(), t);
        // A sparse frame of middling candidates: six at the threshold, 2.4 expected -> 4.
        assert_eq!(keep(&[0.4; 6], 0.35), 4);
        // A crowded frame: ten sure ones and ten weak ones, 12 expected -> 11.
        let crowded: Vec<f64> = [0.9; 10].into_iter().chain([0.3; 10]).collect();
        assert_eq!(keep(&crowded, 0.35), 11);
        // Halves round up: 2.5 expected and 2 over -> 2.25 -> 2; 3 expected and 2 over -> 3.
        assert_eq!(keep(&[0.9, 0.8, 0.3, 0.3, 0.2], 0.35), 2);
        assert_eq!(keep(&[0.9, 0.8, 0.3, 0.3, 0.2, 0.5], 0.55), 3);
        assert_eq!(keep(&[], 0.35), 0);
    }

    #[test]
    fn peak_features_measure_neighbours_colour_and_the_tracer() {
        // 300 px/mm, 10 px cells (1/30 mm). Peak A at cell (10, 10) over a dark square, peak B
        // three cells to its right (0.1 mm), a traced opening 0.1 mm below A.
        let m = mask(40, 40, &[(10, 10, 0.9), (13, 10, 0.5)]);
        let mut image = RgbImage::from_pixel(400, 400, image::Rgb([150, 150, 150]));
        for y in 100..=110 {
            for x in 100..=110 {
                image.put_pixel(x, y, image::Rgb([60, 60, 90]));
            }
        }
        let mut peaks = Vec::new();
        peaks_into(&m, 0, TREES_PEAK_MIN, &mut peaks);
        assert_eq!(peaks.len(), 2, "{peaks:?}");
        let traced = Detection {
            x: peaks[0].x,
            y: peaks[0].y + 30.0,
            radius: 18.0,
            kind: DotKind::Follicle,
            score: 0.7,
            hairs: Some(2),
        };
        let mut f = Vec::new();
        peak_features_into(&image, &m, &peaks, &[traced], 300.0, &mut f);
        let at =
            |row: usize, name: &str| f[row][PEAK_FEATURES.iter().position(|n| *n == name).unwrap()];
        assert!(
            (at(0, "near_mm") - 0.1).abs() < 1e-9,
            "{}",
            at(0, "near_mm")
        );
        assert_eq!(at(0, "near_p"), f64::from(0.5f32));
        assert_eq!(at(0, "second_mm"), FAR_MM);
        assert_eq!((at(0, "within_0_13"), at(0, "within_0_27")), (1.0, 1.0));
        assert_eq!((at(0, "rank"), at(1, "rank")), (0.0, 0.5));
        assert!(
            at(0, "blue") > at(0, "red") && at(0, "red") < 0.5,
            "{:?}",
            f[0]
        );
        assert!(
            at(0, "contrast") < -0.1 && at(1, "contrast").abs() < 0.02,
            "{:?}",
            f
        );
        assert!((at(0, "traced_mm") - 0.1).abs() < 1e-9 && at(0, "traced_score") == 0.7);
        assert_eq!(at(0, "traced_hairs"), 2.0);
        // Two candidates at or above 0.5 on a map of 40x40 cells = (4/3 mm)^2.
        assert!((at(0, "strong_per_mm2") - 2.0 / (16.0 / 9.0)).abs() < 1e-9);
        assert_eq!(at(0, "heat_max"), f64::from(0.9f32));
    }

    #[test]
    fn a_frame_of_noise_keeps_its_strongest_candidates() {
        // A peak on every other cell of every other row: far more than the cap.
        let p_of = |c: usize, r: usize| 0.2 + 0.7 * ((c * 7 + r * 3) % 11) as f32 / 11.0;
        let hot: Vec<(usize, usize, f32)> = (0..100)
            .flat_map(|r| (0..100).map(move |c| (2 * c, 2 * r, p_of(c, r))))
            .collect();
        let m = mask(200, 200, &hot);
        let mut peaks = Vec::new();
        peaks_into(&m, 0, TREES_PEAK_MIN, &mut peaks);
        assert_eq!(peaks.len(), 10_000);
        let mut all: Vec<f32> = peaks.iter().map(|p| p.p).collect();
        all.sort_by(|a, b| b.total_cmp(a));
        cap_candidates(&mut peaks);
        assert_eq!(peaks.len(), MAX_CANDIDATES);
        assert!(peaks
            .windows(2)
            .all(|w| (w[0].row, w[0].col) < (w[1].row, w[1].col)));
        let weakest_kept = peaks.iter().map(|p| p.p).fold(f32::INFINITY, f32::min);
        assert_eq!(weakest_kept, all[MAX_CANDIDATES - 1]);
    }
}
