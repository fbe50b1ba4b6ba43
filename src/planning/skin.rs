//! What the image says beyond the detector: the local skin level, how dark each detected dot
//! is (its shade), and dark, dot-like spots the detector did not report.
//!
//! A planner that trusts the detector's misses tattoos over faint follicles. So every pixel
//! clearly darker than the skin around it, and not explained by a reported dot, becomes part of
//! a [`Guard`]: recommendations keep [`GUARD_FRACTION`] of the minimum spacing away from it.
//! Compact unexplained spots are also reported as [`ExistingKind::Suspected`] dots, which count
//! toward density at [`SUSPECT_WEIGHT`](super::SUSPECT_WEIGHT) (so a cell full of missed
//! follicles is not over-filled) and set spacing.
//!
//! # Method
//! Luma is smoothed with a 3x3 box. The skin level is a high percentile
//! ([`SKIN_PERCENTILE`]) of luma in blocks of about 1 mm (dots cover a few percent of the skin,
//! so the percentile sits on bare skin), interpolated bilinearly. Darkness is
//! `(skin - luma) / skin`; a pixel is dark above `max(DARK_MIN, NOISE_K * sigma)`, with sigma the
//! robust (MAD) spread of darkness over the frame, so textured or dark skin raises the bar.

use image::{GrayImage, Luma, RgbImage};

use super::{ExistingDot, ExistingKind};
use crate::calib::PlaneMap;
use crate::perception::SkinMask;

/// Recommendations keep this fraction of the minimum spacing from unexplained dark pixels.
pub const GUARD_FRACTION: f64 = 0.95;
/// Percentile of block luma taken as the skin level.
pub const SKIN_PERCENTILE: f64 = 0.7;
/// Side of a skin-level block (mm).
pub const SKIN_BLOCK_MM: f64 = 1.0;
/// Smallest relative darkness that can mark a dot.
pub const DARK_MIN: f64 = 0.10;
/// Dark threshold in robust standard deviations of the skin's darkness.
pub const NOISE_K: f64 = 4.0;
/// A detected dot explains dark pixels up to its radius plus this margin (mm).
pub const EXPLAIN_MARGIN_MM: f64 = 0.12;
/// Dark pixels connected to a reported dot count as its hair stubs up to this far past its
/// radius (mm); farther along they are something else (a strand, a neighbour) and are guarded.
pub const STUB_MM: f64 = 0.35;
/// Standard deviation of the matched filter behind the soft cost (mm): about a miniaturised
/// hair's stub, so faint units stand out of pixel noise.
pub const MATCHED_SIGMA_MM: f64 = 0.06;
/// A reported dot needs this much matched-filter contrast (robust noise units) to be trusted:
/// counted as density and allowed to explain the dark pixels around it.
pub const EVIDENCE_MIN: f64 = 3.0;
/// When more than this fraction of the reports are unconfident and have no contrast at all, the
/// detector is hallucinating on this frame's texture: those are dropped and only reports with
/// [`EVIDENCE_MIN`] (or [`CONFIDENT_SCORE`]) are trusted. Otherwise every report is kept and
/// every report with [`EVIDENCE_DROP`] is trusted.
pub const HALLUCINATION_FRACTION: f64 = 0.1;
/// Below this much contrast an unconfident report may be set aside altogether: on the
/// evaluation frames over 95% of such reports are hallucinations in skin texture. Between the
/// two, a report is kept clear of (spacing) but not counted.
pub const EVIDENCE_DROP: f64 = 1.0;
/// A channel this bright is clipped.
pub const GLARE_LEVEL: u8 = 250;
/// A pixel with this many channels clipped is glare: what lies under it cannot be seen. One is
/// not enough: light skin under a bright lamp clips its red channel over wide areas where every
/// dot still shows (a dot darkens all three channels); a highlight whitens all three. With one,
/// the planner fed a perfect detector kept its density bar on 46 of the 48 check seeds
/// 450-497 (seed 461: red clipped on 9% of the pixels, amid visible dots); with two, on 48.
pub const GLARE_MIN_CLIPPED: usize = 2;
/// Luma this many times the skin level is glare.
pub const GLARE_FACTOR: f32 = 1.4;
/// Reports at least this confident are always trusted.
pub const CONFIDENT_SCORE: f64 = 0.7;
/// Unexplained spots larger than this equivalent radius (mm) are not dots (moles, strands):
/// kept clear of but not counted.
pub const MAX_SUSPECT_RADIUS_MM: f64 = 0.35;
/// Unexplained spots longer than this (bounding-box diagonal, mm) are strands, not dots.
pub const MAX_SUSPECT_EXTENT_MM: f64 = 0.9;

/// A pixel mask of places recommendations must avoid, queried in millimetres.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Mask width (px).
    width: u32,
    /// Mask height (px).
    height: u32,
    /// How the image the mask came from maps to millimetres (scale and lens).
    plane: PlaneMap,
    /// Row-major: true where a recommendation must not be centred.
    blocked: Vec<bool>,
    /// Row-major: strongest unexplained darkness within the guard radius, in noise units.
    cost: Vec<f32>,
}

impl Guard {
    /// A guard from row-major maps of the image: the hard mask and the soft cost (either may
    /// be empty: nothing blocked, no cost).
    pub fn from_mask(
        width: u32,
        height: u32,
        px_per_mm: f64,
        blocked: Vec<bool>,
        cost: Vec<f32>,
    ) -> Self {
        Self {
            width,
            height,
            plane: PlaneMap::uniform(px_per_mm),
            blocked,
            cost,
        }
    }

    /// Queries in the millimetres of `plane` (a calibrated lens) instead of pixels over the
    /// scale; `plane` must have the scale the mask was made at.
    pub fn set_plane(&mut self, plane: PlaneMap) {
        self.plane = plane;
    }

    fn index(&self, x_mm: f64, y_mm: f64) -> Option<usize> {
        let (x, y) = self.plane.to_px(x_mm, y_mm);
        let (x, y) = (x.floor(), y.floor());
        if x < 0.0 || y < 0.0 || x >= f64::from(self.width) || y >= f64::from(self.height) {
            return None;
        }
        Some(y as usize * self.width as usize + x as usize)
    }

    /// How much unexplained darkness lies near a point (noise units; 0 when unknown).
    pub fn cost(&self, x_mm: f64, y_mm: f64) -> f64 {
        self.index(x_mm, y_mm)
            .and_then(|i| self.cost.get(i))
            .map_or(0.0, |&c| f64::from(c))
    }

    /// Whether a point (mm) is blocked. Points off the image are not, except through a
    /// distorting lens, where the planner's rectangle reaches past the picture: nothing is known
    /// there.
    pub fn blocked(&self, x_mm: f64, y_mm: f64) -> bool {
        match self.index(x_mm, y_mm) {
            Some(i) => self.blocked.get(i).is_some_and(|&b| b),
            None => self.plane.distorts(),
        }
    }

    /// Blocks the whole image: nothing may be planned on it.
    pub fn block_all(&mut self) {
        let n = self.width as usize * self.height as usize;
        self.blocked = vec![true; n];
    }

    /// Blocks every pixel that is not skin or lies within `margin_px` of what is not skin
    /// (`mask` must be of the same frame).
    pub fn block_off_skin(&mut self, mask: &SkinMask, margin_px: f64) {
        let (w, h) = (self.width as usize, self.height as usize);
        if self.blocked.len() != w * h {
            self.blocked = vec![false; w * h];
        }
        if mask.dimensions() != (self.width, self.height) {
            return;
        }
        let keep_out = mask.keep_out_cells(margin_px);
        let cell = mask.cell_px() as usize;
        let (cols, _) = mask.grid();
        for y in 0..h {
            let row = (y / cell) * cols;
            for x in 0..w {
                if keep_out[row + x / cell] {
                    self.blocked[y * w + x] = true;
                }
            }
        }
    }

    /// Fraction of the image that is blocked.
    pub fn blocked_fraction(&self) -> f64 {
        let n = self.blocked.iter().filter(|&&b| b).count();
        n as f64 / self.blocked.len().max(1) as f64
    }
}

/// A reported dot, in pixels, as [`analyse`] needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DotInImage {
    /// Centre x (px).
    pub x: f64,
    /// Centre y (px).
    pub y: f64,
    /// Radius (px).
    pub radius: f64,
    /// The detector's confidence in 0..=1.
    pub score: f64,
}

impl From<&crate::frame::Detection> for DotInImage {
    fn from(d: &crate::frame::Detection) -> Self {
        Self {
            x: d.x,
            y: d.y,
            radius: d.radius,
            score: d.score,
        }
    }
}

/// The result of [`analyse`].
#[derive(Debug, Clone)]
pub struct SkinAnalysis {
    /// Where recommendations must not go.
    pub guard: Guard,
    /// Compact dark spots no reported dot explains (mm), on the skin mask when there is one.
    pub suspected: Vec<ExistingDot>,
    /// Measured darkness of each reported dot, in input order.
    pub shades: Vec<f64>,
    /// Contrast evidence of each reported dot (noise units), in input order.
    pub evidence: Vec<f64>,
    /// Whether each reported dot is taken as a dot (counted as density, explains its pixels).
    pub trusted: Vec<bool>,
    /// Whether each reported dot is set aside as a hallucination (neither counted nor kept
    /// clear of); reports neither trusted nor dropped are kept clear of but not counted.
    pub dropped: Vec<bool>,
    /// The darkness threshold used.
    pub dark_threshold: f64,
    /// Per pixel, row-major: glare ([`GLARE_MIN_CLIPPED`] channels clipped, or far brighter
    /// than the skin around it), under which nothing can be seen;
    /// the guard keeps recommendations clear of it.
    pub glare: Vec<bool>,
    /// Per pixel, row-major: dark marks larger or longer than a dot that no reported dot
    /// explains (moles, strands, scabs); the guard keeps recommendations clear of them. A
    /// strand that leaves a reported dot is guarded past the dot's stub but not a mark here.
    pub marks: Vec<bool>,
}

/// Analyses a frame: skin level, dot shades, unexplained dark spots and the guard.
///
/// `skin_mask`: the frame's skin mask, when there is one. The noise behind the darkness
/// threshold and the noise units is then measured on the skin only; with or without one, the
/// blocks that hold structure (see `without_structure`) are left out. A glove's folds, the
/// room, a mass of hair or the edges of an occluder's shadow would otherwise widen it, and
/// faint dots on the rest of the skin would go unsuspected.
pub fn analyse(
    image: &RgbImage,
    px_per_mm: f64,
    dots: &[DotInImage],
    min_spacing_mm: f64,
    skin_mask: Option<&SkinMask>,
) -> SkinAnalysis {
    let (w, h) = image.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let clock = std::time::Instant::now();
    // The skin's lightness level, and each channel's offset from its own level beside it (live,
    // this analysis holds up the processing thread whenever a plan is made).
    let ((smooth, skin, darkness), offsets) = channel_offsets_beside(image, px_per_mm, || {
        let luma: Vec<f32> = image
            .pixels()
            .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
            .collect();
        let smooth = box3(&luma, wu, hu);
        let skin = skin_level(&luma, wu, hu, px_per_mm, SKIN_PERCENTILE);
        let darkness: Vec<f32> = smooth
            .iter()
            .zip(&skin)
            .map(|(&l, &s)| (s - l) / s.max(1.0))
            .collect();
        (smooth, skin, darkness)
    });
    tracing::trace!(
        stage = "skin",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    let contrast = colour_contrast(&offsets, &darkness, &skin);
    let sample_at = without_structure(noise_sample(w, h, skin_mask), &contrast, wu, px_per_mm);
    let (med, sigma) = robust_stats(&contrast, &sample_at);
    let threshold = DARK_MIN.max(med + NOISE_K * sigma);
    tracing::debug!(med, sigma, threshold, "skin darkness");
    let dark: Vec<bool> = contrast.iter().map(|&d| f64::from(d) > threshold).collect();

    // Evidence for each reported dot: the matched-filter contrast at it, in noise units. A
    // detector's hallucinations in skin texture have none and are set aside (their pixels are
    // then judged like any other), so they neither block skin nor count as density.
    let matched_sigma_px = (MATCHED_SIGMA_MM * px_per_mm).max(0.8);
    tracing::trace!(
        stage = "contrast",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    let evidence_z = noise_units(&gaussian(&contrast, wu, hu, matched_sigma_px), &sample_at);
    let evidence: Vec<f64> = dots
        .iter()
        .map(|d| disc_max(&evidence_z, wu, hu, d.x, d.y, d.radius.max(1.0)))
        .collect();
    // A confident report stands whatever the contrast (a better detector may see what this
    // filter cannot); only unconfident reports are weighed against the image.
    let unsupported: Vec<bool> = dots
        .iter()
        .zip(&evidence)
        .map(|(d, &e)| e < EVIDENCE_DROP && d.score < CONFIDENT_SCORE)
        .collect();
    let n_unsupported = unsupported.iter().filter(|&&u| u).count();
    let strict = n_unsupported as f64 > HALLUCINATION_FRACTION * dots.len() as f64;
    let trust_from = if strict { EVIDENCE_MIN } else { EVIDENCE_DROP };
    let trusted: Vec<bool> = dots
        .iter()
        .zip(&evidence)
        .map(|(d, &e)| e >= trust_from || d.score >= CONFIDENT_SCORE)
        .collect();
    let dropped: Vec<bool> = unsupported.iter().map(|&u| u && strict).collect();
    tracing::debug!(
        n_unsupported,
        strict,
        "detections checked against the image"
    );

    // Pixels explained by trusted reported dots.
    tracing::trace!(
        stage = "evidence",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    let mut explained = vec![false; wu * hu];
    let margin = EXPLAIN_MARGIN_MM * px_per_mm;
    for d in dots.iter().zip(&trusted).filter(|t| *t.1).map(|t| t.0) {
        stamp_disc(&mut explained, wu, hu, d.x, d.y, d.radius + margin);
    }
    let shades = dots
        .iter()
        .map(|d| disc_mean(&darkness, wu, hu, d.x, d.y, (d.radius * 0.7).max(0.8)).clamp(0.0, 1.0))
        .collect();

    // Dark components: explained as a whole if any pixel lies on a reported dot (hair stubs
    // leave the dot's disc), otherwise kept clear of, and counted if compact.
    let mut stub_zone = vec![false; wu * hu];
    let stub = STUB_MM * px_per_mm;
    for d in dots.iter().zip(&trusted).filter(|t| *t.1).map(|t| t.0) {
        stamp_disc(&mut stub_zone, wu, hu, d.x, d.y, d.radius + stub);
    }
    let mut unexplained = dark.clone();
    let mut suspected = Vec::new();
    let mut marks = vec![false; wu * hu];
    tracing::trace!(
        stage = "explained",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    for c in components(&dark, &darkness, wu, hu) {
        if c.pixels.iter().any(|&i| explained[i as usize]) {
            // Hair stubs leave a reported dot: explained near it; a strand going on is not.
            for &i in &c.pixels {
                if stub_zone[i as usize] {
                    unexplained[i as usize] = false;
                }
            }
            continue;
        }
        let area = c.pixels.len();
        let r_px = (area as f64 / std::f64::consts::PI).sqrt();
        let extent = (c.bbox_w as f64).hypot(c.bbox_h as f64);
        let dot_sized = r_px <= MAX_SUSPECT_RADIUS_MM * px_per_mm
            && extent <= MAX_SUSPECT_EXTENT_MM * px_per_mm;
        if !dot_sized {
            for &i in &c.pixels {
                marks[i as usize] = true;
            }
        }
        // A dot-like spot off the skin mask (a glove's texture, the room, a mass of hair) is no
        // dot: the plan keeps off what is not skin anyway, and reporting it would put dots where
        // perception says there is no skin.
        let on_skin = skin_mask.is_none_or(|m| m.is_skin(c.cx, c.cy));
        if area >= 2 && dot_sized && on_skin {
            suspected.push(ExistingDot {
                x_mm: c.cx / px_per_mm,
                y_mm: c.cy / px_per_mm,
                radius_mm: r_px / px_per_mm,
                kind: ExistingKind::Suspected,
                shade: Some(c.mean_darkness),
            });
        }
    }
    tracing::trace!(
        stage = "components",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    // Glare hides whatever lies under it: keep clear of it too (pale scars are far less bright).
    let glare: Vec<bool> = image
        .pixels()
        .zip(smooth.iter().zip(&skin))
        .map(|(p, (&l, &s))| {
            let clipped = p.0.iter().filter(|&&c| c >= GLARE_LEVEL).count();
            clipped >= GLARE_MIN_CLIPPED || l > GLARE_FACTOR * s
        })
        .collect();
    let mask = GrayImage::from_fn(w, h, |x, y| {
        let i = y as usize * wu + x as usize;
        Luma([u8::from(unexplained[i] || glare[i]) * 255])
    });
    let guard_px = GUARD_FRACTION * min_spacing_mm * px_per_mm;
    if marks.iter().any(|&m| m) && glare.iter().any(|&g| g) {
        // Skin beside a highlight reads as dark against the skin level the highlight raised:
        // within the glare's guard it is the glare's, not a mark.
        let lit = GrayImage::from_fn(w, h, |x, y| {
            Luma([u8::from(glare[y as usize * wu + x as usize]) * 255])
        });
        let dist2 = imageproc::distance_transform::euclidean_squared_distance_transform(&lit);
        for (m, d) in marks.iter_mut().zip(dist2.pixels()) {
            *m &= d[0] >= guard_px * guard_px;
        }
    }
    let blocked = if unexplained.iter().chain(&glare).any(|&u| u) {
        let dist2 = imageproc::distance_transform::euclidean_squared_distance_transform(&mask);
        dist2.pixels().map(|d| d[0] < guard_px * guard_px).collect()
    } else {
        vec![false; wu * hu]
    };
    // Soft cost: the strongest darkness (in noise units) within the guard radius, ignoring what
    // reported dots explain, so that among admissible spots the cleanest skin wins.
    tracing::trace!(
        stage = "guard",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    let masked: Vec<f32> = contrast
        .iter()
        .zip(&dark)
        .zip(&explained)
        .enumerate()
        .map(|(i, ((&d, &is_dark), &e))| {
            if e || (is_dark && !unexplained[i]) {
                med as f32
            } else {
                d
            }
        })
        .collect();
    let z = noise_units(&gaussian(&masked, wu, hu, matched_sigma_px), &sample_at);
    tracing::trace!(
        stage = "matched",
        ms = clock.elapsed().as_secs_f64() * 1e3,
        "skin analysis"
    );
    let cost = max_filter(&z, wu, hu, guard_px.round().max(1.0) as usize);
    SkinAnalysis {
        guard: Guard::from_mask(w, h, px_per_mm, blocked, cost),
        suspected,
        shades,
        evidence,
        trusted,
        dropped,
        dark_threshold: threshold,
        glare,
        marks,
    }
}

/// Every how many pixels the noise statistics sample a map.
const NOISE_SAMPLE_STEP: usize = 13;
/// Fewer skin samples than this and the noise is measured over the whole frame.
const MIN_NOISE_SAMPLES: usize = 500;

/// The pixels (row-major indices) the noise statistics read: every [`NOISE_SAMPLE_STEP`]th
/// pixel, on the skin when `skin` is given and holds enough of them.
fn noise_sample(w: u32, h: u32, skin: Option<&SkinMask>) -> Vec<usize> {
    let n = w as usize * h as usize;
    let all = || (0..n).step_by(NOISE_SAMPLE_STEP).collect::<Vec<usize>>();
    let Some(mask) = skin.filter(|m| m.dimensions() == (w, h)) else {
        return all();
    };
    let wu = w as usize;
    let on_skin: Vec<usize> = (0..n)
        .step_by(NOISE_SAMPLE_STEP)
        .filter(|&i| mask.is_skin((i % wu) as f64 + 0.5, (i / wu) as f64 + 0.5))
        .collect();
    if on_skin.len() >= MIN_NOISE_SAMPLES {
        on_skin
    } else {
        all()
    }
}

/// Side of the blocks the noise samples are grouped in (millimetres); see [`without_structure`].
const NOISE_BLOCK_MM: f64 = 2.0;
/// A block whose own spread is over this many times the median block's holds structure.
const NOISE_BLOCK_OUTLIER: f64 = 2.0;
/// A block with fewer samples than this (cut by the frame's or the skin's edge) is left out.
const NOISE_BLOCK_MIN_SAMPLES: usize = 8;

/// The samples `at` (row-major indices into `map`, rows `w` wide) less the blocks of
/// [`NOISE_BLOCK_MM`] whose spread of `map` is over [`NOISE_BLOCK_OUTLIER`] times the median
/// block's: the edge of a glove's or the machine's shadow, a strand or a fold is structure, not
/// noise, and would raise the frame's darkness threshold so that faint dots on the rest of the
/// skin go unsuspected. All of `at` when no block has enough samples.
fn without_structure(at: Vec<usize>, map: &[f32], w: usize, px_per_mm: f64) -> Vec<usize> {
    let w = w.max(1);
    let block_px = (NOISE_BLOCK_MM * px_per_mm).round().max(1.0) as usize;
    let blocks_x = w.div_ceil(block_px);
    // Block by block, each block's samples in index order (the key computed once per sample).
    let mut keyed: Vec<(usize, usize)> = at
        .iter()
        .map(|&i| ((i / w / block_px) * blocks_x + (i % w) / block_px, i))
        .collect();
    keyed.sort_unstable();
    let at: Vec<usize> = keyed.iter().map(|&(_, i)| i).collect();
    let mut groups: Vec<(usize, usize, f64)> = Vec::new();
    let mut start = 0;
    for run in keyed.chunk_by(|a, b| a.0 == b.0) {
        let end = start + run.len();
        if run.len() >= NOISE_BLOCK_MIN_SAMPLES {
            groups.push((start, end, robust_stats(map, &at[start..end]).1));
        }
        start = end;
    }
    let mut spreads: Vec<f64> = groups.iter().map(|g| g.2).collect();
    let Some(typical) = super::shade::median(&mut spreads) else {
        return at;
    };
    groups
        .iter()
        .filter(|g| g.2 <= NOISE_BLOCK_OUTLIER * typical)
        .flat_map(|&(a, b, _)| at[a..b].iter().copied())
        .collect()
}

/// The median of `map` at the pixels `at` and its robust deviation (1.4826 times the median
/// absolute deviation); zeros for no pixels.
fn robust_stats(map: &[f32], at: &[usize]) -> (f64, f64) {
    let mut sample: Vec<f64> = at.iter().map(|&i| f64::from(map[i])).collect();
    let med = super::shade::median(&mut sample).unwrap_or(0.0);
    let mut dev: Vec<f64> = sample.iter().map(|d| (d - med).abs()).collect();
    (med, 1.4826 * super::shade::median(&mut dev).unwrap_or(0.0))
}

/// A map in units of its own robust noise (median and MAD of the pixels `at`), clamped to
/// `0..=16`.
fn noise_units(map: &[f32], at: &[usize]) -> Vec<f32> {
    let (med, sigma) = robust_stats(map, at);
    let inv_sigma = 1.0 / sigma.max(1e-6);
    map.iter()
        .map(|&d| (((f64::from(d) - med) * inv_sigma).clamp(0.0, 16.0)) as f32)
        .collect()
}

fn disc_max(values: &[f32], w: usize, h: usize, cx: f64, cy: f64, r: f64) -> f64 {
    let (x0, x1) = (
        (cx - r).floor().max(0.0) as usize,
        (cx + r).ceil().max(0.0) as usize,
    );
    let (y0, y1) = (
        (cy - r).floor().max(0.0) as usize,
        (cy + r).ceil().max(0.0) as usize,
    );
    let mut best = 0.0f64;
    for y in y0..=y1.min(h.saturating_sub(1)) {
        for x in x0..=x1.min(w.saturating_sub(1)) {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                best = best.max(f64::from(values[y * w + x]));
            }
        }
    }
    best
}

/// How unlike the skin each pixel looks: the larger of its darkness and its colour shift.
///
/// Dots are not always darker than the skin: grey hair on dark skin (Fitzpatrick V-VI) shows as
/// a bluish-grey spot about as bright as the skin around it. So besides darkness, the colour
/// shift counts: the pixel's 3x3 mean minus the skin colour per channel (block median,
/// interpolated: `offsets`, from [`channel_offsets_beside`]), relative to the skin's luma, minus
/// its common part (which is just lighter or darker), as a vector length. Pale things (scars,
/// glare) shift all channels together and do not count.
fn colour_contrast(offsets: &[Vec<f32>; 3], darkness: &[f32], skin_luma: &[f32]) -> Vec<f32> {
    (0..darkness.len())
        .map(|i| {
            let l = skin_luma[i].max(1.0);
            let d = [offsets[0][i] / l, offsets[1][i] / l, offsets[2][i] / l];
            let mean = (d[0] + d[1] + d[2]) / 3.0;
            let chroma =
                ((d[0] - mean).powi(2) + (d[1] - mean).powi(2) + (d[2] - mean).powi(2)).sqrt();
            darkness[i].max(chroma)
        })
        .collect()
}

/// Each channel of `image`, smoothed (3x3), less its own skin level (the median of its block),
/// with `beside` run on this thread meanwhile: the four are independent.
fn channel_offsets_beside<T>(
    image: &RgbImage,
    px_per_mm: f64,
    beside: impl FnOnce() -> T,
) -> (T, [Vec<f32>; 3]) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let offset = |c: usize| -> Vec<f32> {
        let chan: Vec<f32> = image.pixels().map(|p| f32::from(p[c])).collect();
        let skin = skin_level(&chan, w, h, px_per_mm, 0.5);
        box3(&chan, w, h)
            .iter()
            .zip(&skin)
            .map(|(&v, &s)| v - s)
            .collect()
    };
    std::thread::scope(|scope| {
        let join = |t: std::thread::ScopedJoinHandle<'_, Vec<f32>>| {
            t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        let red = scope.spawn(|| offset(0));
        let green = scope.spawn(|| offset(1));
        let done = beside();
        let blue = offset(2);
        (done, [join(red), join(green), blue])
    })
}

/// Separable Gaussian blur with standard deviation `sigma` (px), edges repeated
/// ([`crate::perception::filter::gaussian`]).
fn gaussian(src: &[f32], w: usize, h: usize, sigma: f64) -> Vec<f32> {
    let mut out = crate::perception::filter::Plane::default();
    crate::perception::filter::gaussian(src, w, h, sigma, &mut out);
    out.data
}

/// Separable square max filter of half-size `r` (sliding window with a monotonic deque).
fn max_filter(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    fn line(get: impl Fn(usize) -> f32, n: usize, r: usize, mut put: impl FnMut(usize, f32)) {
        let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        let mut next = 0;
        for i in 0..n {
            let hi = (i + r).min(n - 1);
            while next <= hi {
                let v = get(next);
                while dq.back().is_some_and(|&b| get(b) <= v) {
                    dq.pop_back();
                }
                dq.push_back(next);
                next += 1;
            }
            while dq.front().is_some_and(|&f| f + r < i) {
                dq.pop_front();
            }
            put(i, dq.front().map_or(0.0, |&f| get(f)));
        }
    }
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let out = &mut tmp[y * w..(y + 1) * w];
        line(|x| row[x], w, r, |x, v| out[x] = v);
    }
    let mut out = vec![0f32; w * h];
    for x in 0..w {
        line(|y| tmp[y * w + x], h, r, |y, v| out[y * w + x] = v);
    }
    out
}

/// Mean of each pixel's 3x3 neighbourhood, edges repeated.
fn box3(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    if w == 0 || h == 0 {
        return Vec::new();
    }
    // Each sum in the order left (above), centre, right (below), as one expression per pixel.
    let mut tmp = vec![0.0f32; w * h];
    for (row, out) in src.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        if w == 1 {
            out[0] = (row[0] + row[0] + row[0]) / 3.0;
            continue;
        }
        out[0] = (row[0] + row[0] + row[1]) / 3.0;
        for (o, win) in out[1..w - 1].iter_mut().zip(row.windows(3)) {
            *o = (win[0] + win[1] + win[2]) / 3.0;
        }
        out[w - 1] = (row[w - 2] + row[w - 1] + row[w - 1]) / 3.0;
    }
    let mut out = vec![0.0f32; w * h];
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        let (a, b) = (y.saturating_sub(1), (y + 1).min(h - 1));
        let (above, here, below) = (
            &tmp[a * w..(a + 1) * w],
            &tmp[y * w..(y + 1) * w],
            &tmp[b * w..(b + 1) * w],
        );
        for (((o, &u), &c), &d) in o.iter_mut().zip(above).zip(here).zip(below) {
            *o = (u + c + d) / 3.0;
        }
    }
    out
}

/// Per-pixel skin level: block percentiles, interpolated bilinearly between block centres.
fn skin_level(luma: &[f32], w: usize, h: usize, px_per_mm: f64, percentile: f64) -> Vec<f32> {
    let block = ((SKIN_BLOCK_MM * px_per_mm).round() as usize).clamp(6, 256);
    let bw = w.div_ceil(block);
    let bh = h.div_ceil(block);
    let mut levels = vec![0.0f32; bw * bh];
    let mut hist = [0u32; 256];
    // Every other pixel and row is plenty for a percentile of a block of 36+ pixels.
    let step = if block >= 12 { 2 } else { 1 };
    for by in 0..bh {
        for bx in 0..bw {
            hist.fill(0);
            let mut n = 0u32;
            for y in (by * block..((by + 1) * block).min(h)).step_by(step) {
                for x in (bx * block..((bx + 1) * block).min(w)).step_by(step) {
                    hist[luma[y * w + x].clamp(0.0, 255.0) as usize] += 1;
                    n += 1;
                }
            }
            let want = (f64::from(n) * percentile) as u32;
            let mut acc = 0;
            let mut level = 255;
            for (v, &count) in hist.iter().enumerate() {
                acc += count;
                if acc > want {
                    level = v;
                    break;
                }
            }
            levels[by * bw + bx] = level as f32 + 0.5;
        }
    }
    let mut out = vec![0.0f32; w * h];
    let b = block as f32;
    let columns: Vec<(usize, usize, f32)> = (0..w)
        .map(|x| {
            let fx = ((x as f32 + 0.5) / b - 0.5).clamp(0.0, (bw - 1) as f32);
            let x0 = fx.floor() as usize;
            (x0, (x0 + 1).min(bw - 1), fx - x0 as f32)
        })
        .collect();
    for y in 0..h {
        let fy = ((y as f32 + 0.5) / b - 0.5).clamp(0.0, (bh - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(bh - 1);
        let ty = fy - y0 as f32;
        for (x, &(x0, x1, tx)) in columns.iter().enumerate() {
            let top = levels[y0 * bw + x0] * (1.0 - tx) + levels[y0 * bw + x1] * tx;
            let bot = levels[y1 * bw + x0] * (1.0 - tx) + levels[y1 * bw + x1] * tx;
            out[y * w + x] = top * (1.0 - ty) + bot * ty;
        }
    }
    out
}

fn stamp_disc(mask: &mut [bool], w: usize, h: usize, cx: f64, cy: f64, r: f64) {
    let (x0, x1) = (
        (cx - r).floor().max(0.0) as usize,
        (cx + r).ceil().max(0.0) as usize,
    );
    let (y0, y1) = (
        (cy - r).floor().max(0.0) as usize,
        (cy + r).ceil().max(0.0) as usize,
    );
    for y in y0..=y1.min(h.saturating_sub(1)) {
        for x in x0..=x1.min(w.saturating_sub(1)) {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                mask[y * w + x] = true;
            }
        }
    }
}

fn disc_mean(values: &[f32], w: usize, h: usize, cx: f64, cy: f64, r: f64) -> f64 {
    let (x0, x1) = (
        (cx - r).floor().max(0.0) as usize,
        (cx + r).ceil().max(0.0) as usize,
    );
    let (y0, y1) = (
        (cy - r).floor().max(0.0) as usize,
        (cy + r).ceil().max(0.0) as usize,
    );
    let (mut sum, mut n) = (0.0, 0usize);
    for y in y0..=y1.min(h.saturating_sub(1)) {
        for x in x0..=x1.min(w.saturating_sub(1)) {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                sum += f64::from(values[y * w + x]);
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

struct Component {
    pixels: Vec<u32>,
    cx: f64,
    cy: f64,
    bbox_w: usize,
    bbox_h: usize,
    mean_darkness: f64,
}

/// 8-connected components of a mask (iterative flood fill).
fn components(mask: &[bool], darkness: &[f32], w: usize, h: usize) -> Vec<Component> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut pixels = Vec::new();
        let (mut sx, mut sy, mut sd) = (0.0, 0.0, 0.0);
        let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            pixels.push(i as u32);
            sx += x as f64 + 0.5;
            sy += y as f64 + 0.5;
            sd += f64::from(darkness[i]);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let (nx, ny) = (x as isize + dx, y as isize + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let area = pixels.len() as f64;
        out.push(Component {
            pixels,
            cx: sx / area,
            cy: sy / area,
            bbox_w: x1 - x0 + 1,
            bbox_h: y1 - y0 + 1,
            mean_darkness: sd / area,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use imageproc::drawing::draw_filled_circle_mut;

    #[test]
    fn box3_is_the_mean_of_each_3x3_neighbourhood_with_edges_repeated() {
        for (w, h) in [(7usize, 5usize), (1, 4), (5, 1), (1, 1)] {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 37 + 11) % 23) as f32).collect();
            let got = box3(&src, w, h);
            for y in 0..h {
                for x in 0..w {
                    let mut sum = 0.0;
                    for dy in [-1i64, 0, 1] {
                        for dx in [-1i64, 0, 1] {
                            let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                            let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                            sum += src[yy * w + xx];
                        }
                    }
                    let want = sum / 9.0;
                    let at = got[y * w + x];
                    assert!(
                        (at - want).abs() < 1e-4,
                        "{w}x{h} at ({x}, {y}): {at} != {want}"
                    );
                }
            }
        }
        assert!(box3(&[], 0, 3).is_empty());
    }

    #[test]
    fn finds_an_unreported_dot_and_guards_it() {
        let ppm = 20.0;
        let mut img = RgbImage::from_pixel(200, 120, Rgb([200, 160, 140]));
        draw_filled_circle_mut(&mut img, (50, 60), 3, Rgb([60, 50, 45]));
        draw_filled_circle_mut(&mut img, (150, 60), 3, Rgb([60, 50, 45]));
        let reported = [DotInImage {
            x: 50.5,
            y: 60.5,
            radius: 3.0,
            score: 0.9,
        }];
        let a = analyse(&img, ppm, &reported, 0.7, None);
        assert_eq!(a.suspected.len(), 1);
        let s = a.suspected[0];
        assert!((s.x_mm - 150.5 / ppm).abs() < 0.1 && (s.y_mm - 60.5 / ppm).abs() < 0.1);
        assert!(a.shades[0] > 0.5, "shade {}", a.shades[0]);
        // Blocked around the unreported dot, free around the reported one (spacing handles it).
        assert!(a.guard.blocked(150.5 / ppm + 0.5, 60.5 / ppm));
        assert!(!a.guard.blocked(50.5 / ppm + 0.5, 60.5 / ppm));
        assert!(!a.guard.blocked(100.0 / ppm, 20.0 / ppm));
    }

    /// Plain skin with a little deterministic pixel noise (about 2% of its lightness).
    fn noisy_skin(w: u32, h: u32) -> RgbImage {
        let mut state = 12345u32;
        RgbImage::from_fn(w, h, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = ((state >> 24) as f32 / 255.0 - 0.5) * 16.0;
            let v = |c: f32| (c + n).round().clamp(0.0, 255.0) as u8;
            Rgb([v(200.0), v(160.0), v(140.0)])
        })
    }

    /// Paints columns `x0..x1` with bands of shadow 3 px wide, each of its own depth (to half
    /// the skin), as a fold, strands or the edge of an occluder's shadow would.
    fn paint_bands(img: &mut RgbImage, x0: u32, x1: u32) {
        for x in x0..x1 {
            let depth = 0.5 + 0.5 * ((x / 3 * 7919) % 101) as f32 / 100.0;
            for y in 0..img.height() {
                let p = img.get_pixel_mut(x, y);
                p.0 = p.0.map(|c| (f32::from(c) * depth) as u8);
            }
        }
    }

    #[test]
    fn a_faint_dot_is_suspected_whatever_else_is_in_view() {
        let ppm = 20.0;
        let faint = Rgb([172, 138, 120]);
        let at = (300.5 / ppm, 60.5 / ppm);
        let suspects = |a: &SkinAnalysis| {
            a.suspected
                .iter()
                .any(|s| (s.x_mm - at.0).abs() < 0.1 && (s.y_mm - at.1).abs() < 0.1)
        };

        // The left two thirds are a glove's folds, not skin: their spread is not the skin's
        // noise.
        let mut img = noisy_skin(340, 120);
        paint_bands(&mut img, 0, 225);
        draw_filled_circle_mut(&mut img, (300, 60), 3, faint);
        let mask = SkinMask::from_fn(340, 120, 5, ppm, |x, _| x >= 230.0);
        let a = analyse(&img, ppm, &[], 0.7, Some(&mask));
        assert!(suspects(&a), "threshold {}", a.dark_threshold);
        let blind = analyse(&img, ppm, &[], 0.7, None);
        assert!(
            !suspects(&blind),
            "without the mask, threshold {}",
            blind.dark_threshold
        );

        // The same bands on the skin over 47% of the frame: structure, left out of the noise.
        let mut img = noisy_skin(340, 120);
        paint_bands(&mut img, 0, 160);
        draw_filled_circle_mut(&mut img, (300, 60), 3, faint);
        let a = analyse(&img, ppm, &[], 0.7, None);
        assert!(suspects(&a), "threshold {}", a.dark_threshold);
        assert!(a.dark_threshold < 0.12, "threshold {}", a.dark_threshold);
    }
}
