//! Classical, scale-aware dot detection on a rig-view RGB frame (dermoscope frames go to
//! `perception::dermoscope`: there a unit is found from its hair shafts, not as a dot).
//!
//! # Algorithm
//! 1. Luminance, and the local skin level: a box mean over `BACKGROUND_RADIUS_MM`, computed twice,
//!    the second time with pixels clipped to `[DARK_CLIP_RATIO, BRIGHT_CLIP_RATIO]` of the first
//!    estimate so that neither the dots themselves nor glare drag the skin level.
//! 2. Relative darkness `C = (skin - L) / skin`: dimensionless, so it does not care about the
//!    light level, vignetting or skin tone.
//! 3. `C` smoothed over `SMOOTH_RADIUS_MM`; local maxima above `MIN_CONTRAST` (non-maximum
//!    suppression over `NMS_RADIUS_MM`) are candidates.
//! 4. Each candidate's region (pixels above `REGION_RATIO` of its peak, connected to it, inside
//!    `ANALYSIS_RADIUS_MM`) gives a sub-pixel centroid, an equivalent radius, an elongation from
//!    its second moments, and its colour against the skin around it. Regions that are too large
//!    (moles), long and thin (loose strands) or brown (moles) are rejected.
//! 5. The kind: healed ink is darker and bluer than its skin, larger and rounder; a follicle is
//!    a small dark tip with a shadow along the hair. The kind trees (`kinds::tree_features`,
//!    fitted by `models/train/fit_kinds.py`) read each dot's colour against its skin ring, size,
//!    shape and darkness beside the spread of the frame's other dots (a linear rule where a frame
//!    has too few dots to compare against); then `kinds` lets the frame's own dots refine it
//!    (one ink and one hair colour per scalp: a two-component mixture over the frame). A spot
//!    lighter than its skin is always a follicle. Candidates within `UNIT_MERGE_MM` of a
//!    stronger one are the other hairs of the same follicular unit and are merged into it.
//!
//! Every threshold is in millimetres (converted with the caller's px/mm) or a dimensionless ratio.

use image::RgbImage;
use tracing::instrument;

use super::fuse::model_kind_at;
use super::region::Region;
use crate::frame::{Detection, DotKind};
use crate::perception::filter::{box_mean, luma_of, luma_row, srgb_to_lab_f, BoxStream, Plane};
use crate::perception::segment::{SegMask, CLASSES};
use crate::perception::skin_mask::SkinMask;

/// Radius of the box that estimates the local skin level.
const BACKGROUND_RADIUS_MM: f64 = 0.45;
/// Pixels darker than this share of the first skin estimate count as this share in the second.
const DARK_CLIP_RATIO: f32 = 0.85;
/// Pixels brighter than this share of the first skin estimate (glare) count as this share.
const BRIGHT_CLIP_RATIO: f32 = 1.05;
/// Radius of the smoothing box before peak finding.
const SMOOTH_RADIUS_MM: f64 = 0.03;
/// Peaks closer than this to a stronger one are suppressed.
const NMS_RADIUS_MM: f64 = 0.09;
/// Minimum smoothed relative darkness of a candidate.
const MIN_CONTRAST: f32 = 0.06;
/// A candidate must also stand this many noise deviations above the skin: the noise of the
/// smoothed darkness is measured per frame (median absolute deviation, robust to the dots),
/// bounded by its cleanest skin's (`LEVEL_GROUPS`), so a dim, noisy frame of dark skin does not
/// turn sensor noise into dots.
const NOISE_SIGMAS: f32 = 3.5;
/// Every how many pixels the noise estimate samples the darkness map.
const NOISE_SAMPLE_STEP: usize = 7;
/// Fewer skin samples than this and the noises are measured over the whole frame.
const MIN_NOISE_SAMPLES: usize = 2000;
/// The noise behind the candidate threshold is the frame's, but at most `LEVEL_SPREAD_RATIO`
/// times that of the cleanest skin in view: the skin samples are split into this many groups
/// of equal size by the mean luminance of their `LEVEL_BLOCK_MM` block, and the smallest of
/// the groups' spreads is the cleanest skin's. Skin in an occluder's shadow (dimmer, so
/// noisier relative to its level, and holding the shadow's edges), a dark glove, its folds or
/// the hair's edge fall in the groups of their own level and leave the lit skin's alone;
/// measured over all of the frame at once, the spread rose to three times the lit skin's at
/// the chair, and faint dots all over the frame were lost.
const LEVEL_GROUPS: usize = 6;
/// A frame under one light gives groups (`LEVEL_GROUPS`) within about this of each other (1.12
/// -1.24, largest over smallest, on bare development frames 7011-7049), so there the frame's
/// own spread stands as it was.
const LEVEL_SPREAD_RATIO: f32 = 1.25;
/// With fewer samples than this in a group, the spread is measured over all of them.
const LEVEL_GROUP_MIN_SAMPLES: usize = 300;
/// Side of the blocks whose mean luminance groups the noise samples (see `LEVEL_GROUPS`); the
/// mean is of every fourth pixel of every fourth row.
const LEVEL_BLOCK_MM: f64 = 1.0;
/// Every how many pixels the groups sample the darkness map (about 17 000 samples on the skin
/// of a 1280x720 frame at the chair: each group's spread within about 2%).
const LEVEL_SAMPLE_STEP: usize = 29;
/// Fewer skin samples than this for the groups and they are sampled over the whole frame.
const MIN_LEVEL_SAMPLES: usize = 500;
/// From this many peaks on, a frame's regions are measured on two threads (a frame at the chair
/// has 1 500-3 000; a small frame with a few dozen is not worth a thread).
const PARALLEL_MIN_PEAKS: usize = 400;
/// A candidate's region holds the pixels at least this share of its peak darkness.
const REGION_RATIO: f32 = 0.5;
/// How far from its peak a candidate's region may grow.
const ANALYSIS_RADIUS_MM: f64 = 0.6;
/// Regions with an equivalent radius above this are not dots (moles, patches).
const MAX_DOT_RADIUS_MM: f64 = 0.36;
/// Regions longer than this along their main axis are strands, not dots.
const MAX_DOT_LENGTH_MM: f64 = 0.9;
/// Regions whose main axis is this many times their minor axis and longer than
/// `STRAND_MIN_LENGTH_MM` are strands.
const STRAND_ELONGATION: f64 = 3.5;
/// See `STRAND_ELONGATION`.
const STRAND_MIN_LENGTH_MM: f64 = 0.55;
/// A region whose warm tint (red minus blue over luminance) exceeds the skin's by this is brown:
/// a mole, not pigment or hair.
const BROWN_TINT_MARGIN: f64 = 0.10;
/// Radius from which a brown region is a mole.
const MOLE_MIN_RADIUS_MM: f64 = 0.2;
/// A region whose mean colour differs from its skin ring by less than this CIELAB ΔE*ab is not
/// a dot: under it nobody tells it from the skin (the floor of the evaluation's visibility
/// rule, `eval::visible`); on dark, mottled skin the red-channel darkness finds such spots.
const MIN_DELTA_E: f64 = 2.0;
/// Relative lightness counts as contrast only past this: skin grain, pale scars and glare have
/// light specks that dark dots never compete with; a white hair's tip on darker skin stands far
/// above them.
const LIGHT_OFFSET: f32 = 0.12;
/// A spot lighter than the skin is a dot (a white hair's tip and stub) only up to this
/// equivalent radius; larger light spots are scars and glare.
const LIGHT_DOT_MAX_RADIUS_MM: f64 = 0.2;
/// Added to the channel sum of `warmth` (8-bit units).
const WARMTH_FLOOR: f32 = 30.0;
/// Pixels of the warmth count within this of its first skin estimate in the second.
const WARMTH_CLIP: f32 = 0.05;
/// Least noise deviation of the warmth drop (about one 8-bit step of red minus blue on skin).
const COOL_NOISE_FLOOR: f32 = 0.002;
/// Bounds of the factor that puts the warmth drop in the darkness's noise units.
const COOL_SCALE_MIN: f32 = 0.5;
/// See `COOL_SCALE_MIN`.
const COOL_SCALE_MAX: f32 = 10.0;
/// The warmth drop, in the darkness's noise deviations, counts only past this many (chosen on
/// check seeds 200-223 among 0, 1, 2, 3, 4, 7: recall 0.949 without the drop, 0.964 at 1 with
/// precision 0.990 -> 0.968, 0.960 at 2 with 0.987, 0.958 at 3 with 0.989; 3 rather than 2
/// because the live map sees fewer spots come and go at the threshold).
const COOL_OFFSET_SIGMAS: f32 = 3.0;
/// Candidates closer than this to a stronger dot are another hair of the same unit.
const UNIT_MERGE_MM: f64 = 0.2;
/// Follicle or pigment on a frame with too few dots for the kind trees (`kinds::MIN_CONTEXT_DOTS`):
/// a linear rule on the region's features, positive for pigment. Pigment is grey to blue-black
/// (its tint is far cooler than the skin's), larger and rounder; a hair tip is small,
/// brown-black, darker at its core and drawn out by its shadow. Weights fitted by logistic
/// regression on training seeds 100-119 of an earlier renderer (`examples/features.rs`), never
/// on the evaluation seeds. Units: tint and luma ratios dimensionless, radius in mm.
const PIGMENT_WEIGHT_TINT: f64 = -17.66;
/// See `PIGMENT_WEIGHT_TINT` (per mm of equivalent radius).
const PIGMENT_WEIGHT_RADIUS_MM: f64 = 46.96;
/// See `PIGMENT_WEIGHT_TINT` (per unit of elongation).
const PIGMENT_WEIGHT_ELONGATION: f64 = -4.741;
/// See `PIGMENT_WEIGHT_TINT` (per unit of region luminance relative to skin).
const PIGMENT_WEIGHT_REL_LUMA: f64 = -16.28;
/// See `PIGMENT_WEIGHT_TINT` (per unit of peak relative darkness).
const PIGMENT_WEIGHT_PEAK: f64 = -16.32;
/// See `PIGMENT_WEIGHT_TINT`.
const PIGMENT_BIAS: f64 = 13.2;
/// Keeps the chroma log ratios finite where a channel is clipped to black.
const CHROMA_EPS: f64 = 0.02;
/// The 16 directions (cosine, sine) at which a region's skin ring is sampled.
static RING_DIRECTIONS: std::sync::LazyLock<[(f64, f64); 16]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|k| {
        let a = k as f64 * std::f64::consts::TAU / 16.0;
        (a.cos(), a.sin())
    })
});

/// Settings of the classical detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlobConfig {
    /// Scale at the skin, from `--px-per-mm` or a calibration.
    pub px_per_mm: f64,
}

/// The classical detector; owns its buffers, so detect frame after frame without allocating.
#[derive(Debug, Default)]
pub struct BlobDetector {
    cfg: Option<BlobConfig>,
    dark: Plane,
    smooth: Plane,
    /// The box means of `darkness`: first and second skin level of the luminance, the same of
    /// the red channel, and the smoothing of the darkness.
    levels: [BoxStream; 5],
    /// The first and second skin level of the warmth, and the smoothing of its drop.
    warm_levels: [BoxStream; 3],
    /// The frame's luminance, red channel and warmth (see `warmth`).
    luma: Plane,
    red: Plane,
    warm: Plane,
    /// How much cooler than its skin each pixel is (warmth units), raw and smoothed.
    cool: Plane,
    cool_smooth: Plane,
    /// Region growing's scratch, one per thread measuring.
    regions: [RegionScratch; 2],
    peaks: Vec<(f32, u32, u32)>,
    /// Which pixels of a row are 3x3 maxima (step 3).
    row_max: Vec<u8>,
    samples: Vec<f32>,
    /// Where the luminance darkness alone makes a pixel a candidate (see `darkness`).
    dark_enough: Vec<u8>,
    /// The warmth drop is left out of the candidate map (see `set_colour_contrast`).
    no_colour: bool,
    /// Frames a noise measurement serves (see `set_noise_every`); 0 and 1: every frame.
    noise_every: u32,
    /// The last noise measurement, while it serves.
    noise: Option<FrameNoise>,
    /// Luminance sum and count of each `LEVEL_BLOCK_MM` block (row-major), and the noise
    /// samples' block levels and darkness (see `LEVEL_GROUPS`).
    block_sums: Vec<(f32, u32)>,
    level_samples: Vec<(f32, f32)>,
}

/// One frame's noise measurement (step 3), kept for the next frames of a live scene.
#[derive(Debug, Clone, Copy)]
struct FrameNoise {
    /// The frame size it was measured on: another size is another scene.
    size: (usize, usize),
    /// Frames it has served, the one it was measured on included.
    served: u32,
    /// Robust spreads of the smoothed darkness and warmth drop on the skin, floored.
    dark: f32,
    cool: f32,
    /// The candidate threshold (`contrast_threshold`).
    threshold: f32,
}

/// Where a frame's peaks are worth measuring: on the skin mask or within `reach_px` of it.
/// What is not skin yields no dot, and measuring the peaks of hair, gloves and the room would
/// cost more than the skin's own.
#[derive(Clone, Copy, Debug)]
pub struct PeakGate<'a> {
    /// The frame's skin mask.
    pub skin: &'a SkinMask,
    /// How far off the mask a peak is still measured (pixels): a dot's centre can lie a little
    /// off its peak, and dots at the mask's edge are judged after measuring.
    pub reach_px: f64,
}

impl PeakGate<'_> {
    fn lets(&self, x: u32, y: u32) -> bool {
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        self.skin.is_skin(x, y) || self.skin.distance_to_skin(x, y, self.reach_px).is_some()
    }
}

impl BlobDetector {
    /// A detector for frames at `cfg.px_per_mm`.
    pub fn new(cfg: BlobConfig) -> Self {
        Self {
            cfg: Some(cfg),
            ..Self::default()
        }
    }

    fn px(&self, mm: f64) -> f64 {
        mm * self.cfg.map_or(1.0, |c| c.px_per_mm)
    }

    /// Whether a spot cooler than its skin is a candidate too (the default): it finds grey and
    /// white hair and faded ink at the skin's lightness, for about a third more work on the
    /// darkness maps. Off, candidates come from the luminance and red darkness alone.
    pub fn set_colour_contrast(&mut self, on: bool) {
        self.no_colour = !on;
        // A noise measured with the other setting is not this one's (see `set_noise_every`).
        self.noise = None;
    }

    /// Measures the frame's noise (the spreads behind the candidate threshold and the warmth
    /// drop's scale, about a third of step 3's work) once every `frames` frames and reuses it in
    /// between. For the live path, whose frames show one scene under one light: its skin's
    /// noise changes over seconds, not from frame to frame. A frame of another size is measured
    /// afresh. Still images keep the default, every frame.
    pub fn set_noise_every(&mut self, frames: u32) {
        self.noise_every = frames;
        self.noise = None;
    }

    /// Detects the dots of one frame, in pixels of `image`.
    #[instrument(level = "trace", skip_all, fields(w = image.width(), h = image.height()))]
    pub fn detect(&mut self, image: &RgbImage) -> Vec<Detection> {
        let mut out = Vec::new();
        self.detect_into(image, &mut out);
        out
    }

    /// Like [`BlobDetector::detect`], into a caller-owned vector (cleared first).
    pub fn detect_into(&mut self, image: &RgbImage, out: &mut Vec<Detection>) {
        self.detect_with_model_into(image, None, None, out);
    }

    /// Like [`BlobDetector::detect_into`], with the dot model's mask of this same frame as one
    /// more cue for the per-frame kind mixture ([`super::kinds`]), and peaks measured only
    /// where `gate` lets them (everywhere without one).
    pub fn detect_with_model_into(
        &mut self,
        image: &RgbImage,
        mask: Option<&SegMask>,
        gate: Option<PeakGate<'_>>,
        out: &mut Vec<Detection>,
    ) {
        self.find_peaks_of(image);
        self.detect_found_into(image, mask, gate, out);
    }

    /// Steps 1-3 alone: the frame's relative darkness and its peaks, for
    /// [`BlobDetector::detect_found_into`] (so that other work on the frame, such as its skin
    /// mask, can run beside them).
    pub fn find_peaks_of(&mut self, image: &RgbImage) {
        self.darkness_of(image);
        self.find_peaks_on(None);
    }

    /// Steps 1-2 alone: the frame's relative darkness and warmth drop, for
    /// [`BlobDetector::find_peaks_on`] (so that the frame's skin mask can be computed beside
    /// them and then used to measure their noise).
    pub fn darkness_of(&mut self, image: &RgbImage) {
        self.peaks.clear();
        if image.width() == 0 || image.height() == 0 {
            // No maps: the previous frame's are not this one's.
            self.dark.resize(0, 0);
            return;
        }
        self.darkness(image);
    }

    /// Step 3 on the maps [`BlobDetector::darkness_of`] made: the warmth drop merged in, its
    /// noise measured on `skin` (the whole frame without one), and the peaks found.
    pub fn find_peaks_on(&mut self, skin: Option<&SkinMask>) {
        self.peaks.clear();
        if self.dark.data.is_empty() {
            return;
        }
        let size = (self.smooth.width, self.smooth.height);
        let every = self.noise_every.max(1);
        let kept = self.noise.filter(|n| n.size == size && n.served < every);
        let (dark, cool) = self.merge_cool(skin, kept.map(|n| (n.dark, n.cool)));
        let threshold = match kept {
            Some(n) => n.threshold,
            None => self.contrast_threshold(skin),
        };
        self.find_peaks(threshold);
        self.noise = (every > 1).then(|| match kept {
            Some(n) => FrameNoise {
                served: n.served + 1,
                ..n
            },
            None => FrameNoise {
                size,
                served: 1,
                dark,
                cool,
                threshold,
            },
        });
    }

    /// The rest of [`BlobDetector::detect_with_model_into`] on the peaks
    /// [`BlobDetector::find_peaks_of`] found in this same `image`.
    pub fn detect_found_into(
        &mut self,
        image: &RgbImage,
        mask: Option<&SegMask>,
        gate: Option<PeakGate<'_>>,
        out: &mut Vec<Detection>,
    ) {
        out.clear();
        let candidates = self.measure_peaks(image, mask, gate);
        let accepted: Vec<(Region, DotKind)> = candidates
            .into_iter()
            .filter_map(|(region, kind)| kind.map(|k| (region, k)))
            .collect();
        self.merge_units(&accepted, out);
    }

    /// Every candidate region, strongest first, with the kind the rules give it (`None`:
    /// rejected as not a dot), before the hairs of a unit are merged. For fusion with a learned
    /// model and for diagnostics.
    pub fn candidates(&mut self, image: &RgbImage) -> Vec<(Region, Option<DotKind>)> {
        self.candidates_with_model(image, None)
    }

    /// [`BlobDetector::candidates`], the kinds decided with the dot model's mask of this frame
    /// as well (a mask without the dot classes is not used).
    pub fn candidates_with_model(
        &mut self,
        image: &RgbImage,
        mask: Option<&SegMask>,
    ) -> Vec<(Region, Option<DotKind>)> {
        self.find_peaks_of(image);
        self.measure_peaks(image, mask, None)
    }

    /// Step 4 on the peaks found: each region measured and given a kind.
    fn measure_peaks(
        &mut self,
        image: &RgbImage,
        mask: Option<&SegMask>,
        gate: Option<PeakGate<'_>>,
    ) -> Vec<(Region, Option<DotKind>)> {
        if image.width() == 0 || image.height() == 0 || self.dark.data.is_empty() {
            return Vec::new();
        }
        if let Some(g) = gate {
            self.peaks.retain(|&(_, x, y)| g.lets(x, y));
        }
        let peaks = std::mem::take(&mut self.peaks);
        // Measured in scan order, so that the planes stay in cache from one region to the next,
        // then put back strongest first. Each measurement is independent of the others: on a
        // frame with many peaks, the bottom half of the frame is measured on a second thread.
        let mut order: Vec<usize> = (0..peaks.len()).collect();
        order.sort_unstable_by_key(|&k| (peaks[k].2, peaks[k].1));
        let measure = Measure {
            image,
            dark: &self.dark,
            smooth: &self.smooth,
            px_per_mm: self.px(1.0),
        };
        let [top, bottom] = &mut self.regions;
        let mut regions = if order.len() >= PARALLEL_MIN_PEAKS {
            let (upper, lower) = order.split_at(order.len() / 2);
            let (mut upper, lower) = std::thread::scope(|s| {
                let lower = s.spawn(|| measure.all(bottom, &peaks, lower));
                let upper = measure.all(top, &peaks, upper);
                (upper, lower.join())
            });
            match lower {
                Ok(lower) => upper.extend(lower),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            upper
        } else {
            measure.all(top, &peaks, &order)
        };
        regions.sort_unstable_by_key(|&(k, _)| k);
        let mut out: Vec<(Region, Option<DotKind>)> = regions
            .into_iter()
            .map(|(_, region)| {
                let kind = self.classify(&region);
                (region, kind)
            })
            .collect();
        self.peaks = peaks;
        let model: Option<Vec<f64>> = mask.filter(|m| m.classes == CLASSES.len()).map(|m| {
            out.iter()
                .map(|(r, _)| {
                    let (_, share) = model_kind_at(m, r.x, r.y, r.radius_px);
                    super::kinds::model_logodds(f64::from(share))
                })
                .collect()
        });
        // Follicle or pigment from the kind trees, which read each dot against its frame; their
        // log-odds seed the frame's mixture.
        let logits = super::kinds::pigment_logits(&out, self.px(1.0), |r| self.pigment_logit(r));
        for ((_, kind), logit) in out.iter_mut().zip(&logits) {
            if let Some(k) = kind.as_mut() {
                *k = if *logit > 0.0 {
                    DotKind::Pigment
                } else {
                    DotKind::Follicle
                };
            }
        }
        super::kinds::refine_kinds(&mut out, &logits, model.as_deref(), self.px(1.0));
        // Ink is never lighter than the skin it is under: a light dot is a hair, whatever the
        // frame's mixture made of it.
        for (r, kind) in &mut out {
            if r.rel_luma > 1.0 && kind.is_some() {
                *kind = Some(DotKind::Follicle);
            }
        }
        out
    }

    /// Steps 1-2: relative darkness into `self.dark`: the larger of the luminance's and the red
    /// channel's. Ink under dark skin differs from it more in colour than in lightness: it
    /// takes red (the skin's brightest channel) and leaves blue, so its red darkness is well
    /// above its luminance darkness; hair, warm and dark in every channel, is found by either.
    /// With the colour contrast, the warmth drop (`cool_of`) is computed beside it on a second
    /// thread: neither needs the other until both are done.
    fn darkness(&mut self, image: &RgbImage) {
        let r_bg = self.px(BACKGROUND_RADIUS_MM).round().max(2.0) as usize;
        let r_s = self.px(SMOOTH_RADIUS_MM).round().max(1.0) as usize;
        let colour = !self.no_colour;
        let Self {
            dark,
            smooth,
            levels,
            warm_levels,
            luma,
            red,
            warm,
            cool,
            cool_smooth,
            dark_enough,
            ..
        } = self;
        let [warm_first, warm_skin, cool_smoothing] = warm_levels;
        std::thread::scope(|s| {
            let cool_job = colour
                .then(|| s.spawn(|| cool_of(image, r_bg, warm, [warm_first, warm_skin], cool)));
            let planes = DarkPlanes {
                luma,
                red,
                dark,
                smooth,
                dark_enough: colour.then_some(&mut *dark_enough),
            };
            luma_red_darkness(image, r_bg, r_s, levels, planes);
            if let Some(job) = cool_job {
                if let Err(panic) = job.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        if colour {
            // Pixels dark enough to be candidates by their darkness are judged by it: dark hair
            // and its shadow are cool too (near black has little colour), and would otherwise
            // spread a unit into a chain of cool peaks.
            for (c, &d) in cool.data.iter_mut().zip(dark_enough.iter()) {
                if d != 0 {
                    *c = 0.0;
                }
            }
            box_mean(cool, cool_smooth, cool_smoothing, r_s);
        }
    }

    /// Step 2b: the warmth drop joins the darkness in the darkness's own noise units, less
    /// `COOL_OFFSET_SIGMAS` of them. A grey or white hair, or faded ink, at about the skin's
    /// lightness stands out only by its colour, but the colour of skin is blotchier than its
    /// lightness (and JPEG keeps colour at half resolution). Both noises are the spreads of the
    /// signed maps on `skin` (the whole frame without a mask, or with too little skin on it):
    /// the room, a cape or a glove is smoother in colour than skin, and a frame half covered
    /// by them would otherwise scale the skin's colour noise into false dots.
    ///
    /// `kept`: the two noises measured on an earlier frame (`set_noise_every`), instead of
    /// measuring them here. Returns the noises used (zeros without the colour contrast).
    fn merge_cool(&mut self, skin: Option<&SkinMask>, kept: Option<(f32, f32)>) -> (f32, f32) {
        if self.no_colour {
            return (0.0, 0.0);
        }
        let Self {
            dark,
            smooth,
            cool,
            cool_smooth,
            samples,
            ..
        } = self;
        let size = (smooth.width, smooth.height);
        let mut spread = |plane: &[f32]| {
            samples.clear();
            for_each_sample_on_skin(skin, size, NOISE_SAMPLE_STEP, |i, _, _| {
                samples.push(plane[i]);
            });
            if samples.len() < MIN_NOISE_SAMPLES {
                samples.clear();
                samples.extend(plane.iter().step_by(NOISE_SAMPLE_STEP).copied());
            }
            robust_spread(samples)
        };
        // The darkness's noise is floored where its candidate threshold is (a clean frame has
        // none), the warmth's at about one step of an 8-bit channel.
        let (noise_dark, noise_cool) = kept.unwrap_or_else(|| {
            (
                spread(&smooth.data).max(MIN_CONTRAST / NOISE_SIGMAS),
                spread(&cool_smooth.data).max(COOL_NOISE_FLOOR),
            )
        });
        let k = (noise_dark / noise_cool).clamp(COOL_SCALE_MIN, COOL_SCALE_MAX);
        let off = COOL_OFFSET_SIGMAS * noise_dark;
        for (d, &c) in dark.data.iter_mut().zip(&cool.data) {
            *d = d.max(k * c - off);
        }
        for (d, &c) in smooth.data.iter_mut().zip(&cool_smooth.data) {
            *d = d.max(k * c - off);
        }
        (noise_dark, noise_cool)
    }

    /// The candidate threshold of this frame: `MIN_CONTRAST`, or `NOISE_SIGMAS` times the
    /// robust noise deviation of the smoothed darkness if that is higher: over the whole frame,
    /// at most `LEVEL_SPREAD_RATIO` times its cleanest skin's (see `LEVEL_GROUPS`; the groups
    /// are sampled on `skin`, the whole frame without one or with too little skin on it).
    fn contrast_threshold(&mut self, skin: Option<&SkinMask>) -> f32 {
        let (w, h) = (self.smooth.width, self.smooth.height);
        let side = self.px(LEVEL_BLOCK_MM).round().max(4.0) as usize;
        let cols = w.div_ceil(side).max(1);
        let sums = &mut self.block_sums;
        sums.clear();
        sums.resize(cols * h.div_ceil(side).max(1), (0.0, 0));
        for y in (0..h).step_by(4) {
            let row = &self.luma.data[y * w..(y + 1) * w];
            for x in (0..w).step_by(4) {
                let cell = &mut sums[(y / side) * cols + x / side];
                cell.0 += row[x];
                cell.1 += 1;
            }
        }
        let sums = &self.block_sums;
        let smooth = &self.smooth.data;
        let sample = |i: usize, x: usize, y: usize| {
            let (sum, n) = sums[(y / side) * cols + x / side];
            (sum / n.max(1) as f32, smooth[i])
        };
        let samples = &mut self.level_samples;
        samples.clear();
        for_each_sample_on_skin(skin, (w, h), LEVEL_SAMPLE_STEP, |i, x, y| {
            samples.push(sample(i, x, y));
        });
        if samples.len() < MIN_LEVEL_SAMPLES {
            samples.clear();
            for_each_sample_on_skin(None, (w, h), LEVEL_SAMPLE_STEP, |i, x, y| {
                samples.push(sample(i, x, y));
            });
        }
        self.samples.clear();
        self.samples
            .extend(smooth.iter().step_by(NOISE_SAMPLE_STEP).copied());
        let whole = robust_spread(&mut self.samples);
        let group = (samples.len() / LEVEL_GROUPS).max(1);
        let cleanest = if group < LEVEL_GROUP_MIN_SAMPLES {
            f32::INFINITY
        } else {
            // Groups of rising level without a full sort: each cut in place.
            let n = samples.len();
            let mut from = 0;
            for g in 1..LEVEL_GROUPS {
                let at = g * n / LEVEL_GROUPS;
                samples[from..].select_nth_unstable_by(at - from, |a, b| a.0.total_cmp(&b.0));
                from = at;
            }
            (0..LEVEL_GROUPS)
                .map(|g| &samples[g * n / LEVEL_GROUPS..(g + 1) * n / LEVEL_GROUPS])
                .map(|c| {
                    self.samples.clear();
                    self.samples.extend(c.iter().map(|s| s.1));
                    robust_spread(&mut self.samples)
                })
                .fold(f32::INFINITY, f32::min)
        };
        let spread = whole.min(LEVEL_SPREAD_RATIO * cleanest);
        MIN_CONTRAST.max(NOISE_SIGMAS * spread)
    }

    /// Step 3: local maxima of the smoothed darkness at or above `threshold`, strongest first.
    fn find_peaks(&mut self, threshold: f32) {
        self.peaks.clear();
        let (w, h) = (self.smooth.width, self.smooth.height);
        let s = &self.smooth.data;
        // First a cheap 3x3 maximum test, then suppression over NMS_RADIUS_MM among survivors.
        // Ties: the first pixel in scan order wins, so a pixel must exceed its neighbours
        // before it in scan order and at least equal those after it.
        let is_max = |x: usize, y: usize| {
            let v = s[y * w + x];
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let u = s[yy * w + xx];
                    if u > v || (u == v && (yy, xx) < (y, x)) {
                        return false;
                    }
                }
            }
            true
        };
        self.row_max.resize(w, 0);
        for y in 0..h {
            let interior = y > 0 && y + 1 < h && w > 2;
            if !interior {
                for x in 0..w {
                    if s[y * w + x] >= threshold && is_max(x, y) {
                        self.peaks.push((s[y * w + x], x as u32, y as u32));
                    }
                }
                continue;
            }
            // The row's interior, x in 1..w-1, without branches (it vectorises): `row_max[x]`
            // is whether x is a peak; the first and last pixels take the general test.
            let n = w - 2;
            let (up, mid, down) = (
                &s[(y - 1) * w..y * w],
                &s[y * w..(y + 1) * w],
                &s[(y + 1) * w..(y + 2) * w],
            );
            let (ul, uc, ur) = (&up[..n], &up[1..=n], &up[2..n + 2]);
            let (ml, mc, mr) = (&mid[..n], &mid[1..=n], &mid[2..n + 2]);
            let (dl, dc, dr) = (&down[..n], &down[1..=n], &down[2..n + 2]);
            let flags = &mut self.row_max[1..=n];
            for i in 0..n {
                let v = mc[i];
                flags[i] = u8::from(
                    (v >= threshold)
                        & (v > ul[i])
                        & (v > uc[i])
                        & (v > ur[i])
                        & (v > ml[i])
                        & (v >= mr[i])
                        & (v >= dl[i])
                        & (v >= dc[i])
                        & (v >= dr[i]),
                );
            }
            self.row_max[0] = u8::from(s[y * w] >= threshold && is_max(0, y));
            self.row_max[w - 1] = u8::from(s[y * w + w - 1] >= threshold && is_max(w - 1, y));
            for (x, _) in self.row_max.iter().enumerate().filter(|(_, &f)| f != 0) {
                self.peaks.push((mid[x], x as u32, y as u32));
            }
        }
        self.peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
        let r = self.px(NMS_RADIUS_MM);
        let r2 = r * r;
        let cell = r.max(1.0);
        // Kept peaks binned on a grid of `cell` px: a linked list per bin (head, next).
        let cols = (w as f64 / cell) as usize + 1;
        let rows = (h as f64 / cell) as usize + 1;
        let mut head = vec![u32::MAX; cols * rows];
        let mut next: Vec<u32> = Vec::new();
        let mut kept: Vec<(f32, u32, u32)> = Vec::with_capacity(self.peaks.len());
        for &(v, x, y) in &self.peaks {
            let (gx, gy) = (
                (f64::from(x) / cell) as usize,
                (f64::from(y) / cell) as usize,
            );
            let mut near = false;
            'g: for by in gy.saturating_sub(1)..=(gy + 1).min(rows - 1) {
                for bx in gx.saturating_sub(1)..=(gx + 1).min(cols - 1) {
                    let mut k = head[by * cols + bx];
                    while k != u32::MAX {
                        let (_, px, py) = kept[k as usize];
                        let (ex, ey) = (f64::from(px) - f64::from(x), f64::from(py) - f64::from(y));
                        if ex * ex + ey * ey < r2 {
                            near = true;
                            break 'g;
                        }
                        k = next[k as usize];
                    }
                }
            }
            if !near {
                let bin = gy * cols + gx;
                next.push(head[bin]);
                head[bin] = kept.len() as u32;
                kept.push((v, x, y));
            }
        }
        self.peaks = kept;
    }

    /// Step 5a: whether a region is a dot. A light dot is a follicle; a dark one is given
    /// `Follicle` here and its kind is settled by the kind trees and the frame's mixture.
    fn classify(&self, r: &Region) -> Option<DotKind> {
        let ppm = self.px(1.0);
        let radius_mm = r.radius_px / ppm;
        let length_mm = r.length_px / ppm;
        if r.truncated
            || r.on_border
            || radius_mm > MAX_DOT_RADIUS_MM
            || length_mm > MAX_DOT_LENGTH_MM
        {
            return None;
        }
        if r.elongation > STRAND_ELONGATION && length_mm > STRAND_MIN_LENGTH_MM {
            return None;
        }
        if r.tint > BROWN_TINT_MARGIN && radius_mm > MOLE_MIN_RADIUS_MM {
            return None;
        }
        let delta_e = r.delta_lab.iter().map(|d| d * d).sum::<f64>().sqrt();
        if delta_e < MIN_DELTA_E {
            // Nobody could see it against the skin around it: mottling, not a dot.
            return None;
        }
        if r.rel_luma > 1.0 {
            // Lighter than the skin: a white hair's tip when hair-sized, else a scar or glare.
            return (radius_mm <= LIGHT_DOT_MAX_RADIUS_MM).then_some(DotKind::Follicle);
        }
        Some(DotKind::Follicle)
    }

    /// Step 5a: the sparse-frame rule's log-odds that a region is pigment rather than a
    /// follicle (see `PIGMENT_WEIGHT_TINT`).
    pub fn pigment_logit(&self, r: &Region) -> f64 {
        let radius_mm = r.radius_px / self.px(1.0);
        PIGMENT_WEIGHT_TINT * r.tint
            + PIGMENT_WEIGHT_RADIUS_MM * radius_mm
            + PIGMENT_WEIGHT_ELONGATION * r.elongation
            + PIGMENT_WEIGHT_REL_LUMA * r.rel_luma
            + PIGMENT_WEIGHT_PEAK * f64::from(r.peak)
            + PIGMENT_BIAS
    }

    /// Step 5b: merges the hairs of one unit, strongest first, into `out`.
    fn merge_units(&self, accepted: &[(Region, DotKind)], out: &mut Vec<Detection>) {
        let ppm = self.px(1.0);
        let merge = UNIT_MERGE_MM * ppm;
        let cell = merge.max(1.0);
        let mut grid: rustc_hash::FxHashMap<(i64, i64), Vec<usize>> = Default::default();
        for (region, kind) in accepted {
            let (gx, gy) = ((region.x / cell) as i64, (region.y / cell) as i64);
            let mut absorbed = false;
            'g: for dy in -1..=1 {
                for dx in -1..=1 {
                    if let Some(list) = grid.get(&(gx + dx, gy + dy)) {
                        for &k in list {
                            let o: &Detection = &out[k];
                            let (dx, dy) = (o.x - region.x, o.y - region.y);
                            if dx * dx + dy * dy < merge * merge {
                                absorbed = true;
                                break 'g;
                            }
                        }
                    }
                }
            }
            if absorbed {
                continue;
            }
            grid.entry((gx, gy)).or_default().push(out.len());
            let score = f64::from(region.peak / (region.peak + MIN_CONTRAST));
            out.push(Detection {
                x: region.x,
                y: region.y,
                radius: region.radius_px,
                kind: *kind,
                score,
                hairs: None,
            });
        }
    }
}

/// What growing one region needs besides the frame's planes: marks of the pixels taken (by
/// generation, so that they are never cleared) in a window around the peak, and the fill stack.
#[derive(Debug, Default)]
struct RegionScratch {
    stamp: Vec<u32>,
    generation: u32,
    stack: Vec<(u32, u32)>,
}

/// The planes of one frame that step 4 reads, shared by the threads measuring its regions.
struct Measure<'a> {
    image: &'a RgbImage,
    dark: &'a Plane,
    smooth: &'a Plane,
    px_per_mm: f64,
}

impl Measure<'_> {
    fn px(&self, mm: f64) -> f64 {
        mm * self.px_per_mm
    }

    /// Measures the regions of `peaks[k]` for each `k` of `order`.
    fn all(
        &self,
        scratch: &mut RegionScratch,
        peaks: &[(f32, u32, u32)],
        order: &[usize],
    ) -> Vec<(usize, Region)> {
        order
            .iter()
            .map(|&k| (k, self.analyse(scratch, peaks[k].1, peaks[k].2)))
            .collect()
    }

    /// Step 4: grows and measures the region of the peak at (x, y).
    fn analyse(&self, scratch: &mut RegionScratch, x0: u32, y0: u32) -> Region {
        let image = self.image;
        let (w, h) = (self.dark.width, self.dark.height);
        let reach = self.px(ANALYSIS_RADIUS_MM);
        let reach2 = reach * reach;
        // The region never leaves the disc of `reach` around its peak, so it is marked in a
        // window around the peak (small enough to stay in cache), not in a frame-sized plane.
        let span = reach.max(0.0).floor() as i64;
        let side = 2 * span + 1;
        let cells = (side * side) as usize;
        if scratch.stamp.len() != cells {
            scratch.stamp.clear();
            scratch.stamp.resize(cells, 0);
            scratch.generation = 0;
        }
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.iter_mut().for_each(|s| *s = 0);
            scratch.generation = 1;
        }
        let gen = scratch.generation;
        let local = |x: u32, y: u32| {
            ((i64::from(y) - i64::from(y0) + span) * side + i64::from(x) - i64::from(x0) + span)
                as usize
        };
        let peak = self.smooth.at(x0 as usize, y0 as usize);
        let thr = peak * REGION_RATIO;
        let (mut sw, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut n, mut truncated) = (0usize, false);
        let (mut r_sum, mut g_sum, mut b_sum, mut l_sum) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        scratch.stack.clear();
        scratch.stack.push((x0, y0));
        scratch.stamp[local(x0, y0)] = gen;
        let raw = image.as_raw();
        'grow: while let Some((x, y)) = scratch.stack.pop() {
            let i = y as usize * w + x as usize;
            let d = f64::from(self.dark.data[i].max(0.0));
            let wgt = d.max(1e-3);
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            sw += wgt;
            sx += wgt * fx;
            sy += wgt * fy;
            sxx += wgt * fx * fx;
            syy += wgt * fy * fy;
            sxy += wgt * fx * fy;
            n += 1;
            let (r, g, b) = (raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]);
            r_sum += f64::from(r);
            g_sum += f64::from(g);
            b_sum += f64::from(b);
            l_sum += f64::from(luma_of(r, g, b));
            let nbrs = [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ];
            for (nx, ny) in nbrs {
                if nx as usize >= w || ny as usize >= h {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if self.smooth.data[j] < thr {
                    continue;
                }
                let (dx, dy) = (f64::from(nx) - f64::from(x0), f64::from(ny) - f64::from(y0));
                if dx * dx + dy * dy > reach2 {
                    // Never a dot (`classify`): growing it further would only cost time, and
                    // about half the peaks of a frame with hair, a glove or the machine in view
                    // end here.
                    truncated = true;
                    break 'grow;
                }
                let k = local(nx, ny);
                if scratch.stamp[k] == gen {
                    continue;
                }
                scratch.stamp[k] = gen;
                scratch.stack.push((nx, ny));
            }
        }
        let (cx, cy) = (sx / sw, sy / sw);
        let vxx = (sxx / sw - cx * cx).max(0.0);
        let vyy = (syy / sw - cy * cy).max(0.0);
        let vxy = sxy / sw - cx * cy;
        let tr = vxx + vyy;
        let det = vxx * vyy - vxy * vxy;
        let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
        let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(1e-6));
        // Skin colour: a ring just outside the region.
        let radius_px = (n as f64 / std::f64::consts::PI).sqrt();
        let ring = radius_px + self.px(0.12).max(2.0);
        let (mut sr, mut sg, mut sb, mut sl, mut sn) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for &(cos, sin) in RING_DIRECTIONS.iter() {
            let (px, py) = (cx + ring * cos, cy + ring * sin);
            if px < 0.0 || py < 0.0 || px >= w as f64 || py >= h as f64 {
                continue;
            }
            let i = py as usize * w + px as usize;
            let (r, g, b) = (raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]);
            sr += f64::from(r);
            sg += f64::from(g);
            sb += f64::from(b);
            sl += f64::from(luma_of(r, g, b));
            sn += 1.0;
        }
        let nf = n as f64;
        let (reg_l, skin_l) = (
            (l_sum / nf).max(1.0),
            if sn > 0.0 { (sl / sn).max(1.0) } else { 1.0 },
        );
        let reg_tint = (r_sum - b_sum) / nf / reg_l;
        let skin_tint = if sn > 0.0 {
            (sr - sb) / sn / skin_l
        } else {
            reg_tint
        };
        // Colour of the region against the skin ring, per channel, as log ratios against blue:
        // ink and hair each keep one colour over a frame, which `kinds` exploits.
        let delta_lab = if sn > 0.0 {
            let reg = srgb_to_lab_f([r_sum / nf, g_sum / nf, b_sum / nf]);
            let ring = srgb_to_lab_f([sr / sn, sg / sn, sb / sn]);
            [reg[0] - ring[0], reg[1] - ring[1], reg[2] - ring[2]]
        } else {
            [f64::NAN; 3]
        };
        let (chroma_rb, chroma_gb) = if sn > 0.0 {
            let rel = |reg: f64, skin: f64| reg / nf / (skin / sn).max(1.0) + CHROMA_EPS;
            let (r, g, b) = (rel(r_sum, sr), rel(g_sum, sg), rel(b_sum, sb));
            ((r / b).ln(), (g / b).ln())
        } else {
            (0.0, 0.0)
        };
        Region {
            x: cx,
            y: cy,
            peak,
            area_px: n,
            radius_px,
            elongation: (l1 / l2).sqrt(),
            length_px: 4.0 * l1.sqrt(),
            truncated,
            on_border: x0 == 0 || y0 == 0 || x0 as usize + 1 == w || y0 as usize + 1 == h,
            tint: reg_tint - skin_tint,
            rel_luma: reg_l / skin_l,
            chroma_rb,
            chroma_gb,
            delta_lab,
        }
    }
}

/// The planes [`luma_red_darkness`] reads and writes.
struct DarkPlanes<'a> {
    luma: &'a mut Plane,
    red: &'a mut Plane,
    /// The relative darkness, raw and smoothed.
    dark: &'a mut Plane,
    smooth: &'a mut Plane,
    /// With the colour contrast: 1 where a pixel's luminance darkness alone makes it a
    /// candidate (`MIN_CONTRAST`), row-major.
    dark_enough: Option<&'a mut Vec<u8>>,
}

/// The luminance's and the red channel's relative darkness of `image` (step 1-2 of
/// [`BlobDetector::darkness`]), in one pass, row by row: each plane's two skin levels (see
/// `clip_to_level`), the darkness from them, and its smoothing, chained through `BoxStream`s,
/// so that no intermediate plane is stored whole. `levels`: the luminance's first and second
/// level, the red channel's, and the smoothing.
fn luma_red_darkness(
    image: &RgbImage,
    r_bg: usize,
    r_s: usize,
    levels: &mut [BoxStream; 5],
    planes: DarkPlanes<'_>,
) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let DarkPlanes {
        luma,
        red,
        dark,
        smooth,
        mut dark_enough,
    } = planes;
    luma.resize(w, h);
    red.resize(w, h);
    for ((rgb, l), r) in image
        .as_raw()
        .chunks_exact(3 * w.max(1))
        .zip(luma.data.chunks_exact_mut(w.max(1)))
        .zip(red.data.chunks_exact_mut(w.max(1)))
    {
        luma_row(rgb, l);
        for (out, px) in r.iter_mut().zip(rgb.chunks_exact(3)) {
            *out = f32::from(px[0]);
        }
    }
    let [luma_first, luma_skin, red_first, red_skin, smoothing] = levels;
    for level in [&mut *luma_first, luma_skin, red_first, red_skin] {
        level.start(w, h, r_bg);
    }
    smoothing.start(w, h, r_s);
    dark.resize(w, h);
    smooth.resize(w, h);
    if let Some(flags) = dark_enough.as_deref_mut() {
        flags.clear();
        flags.resize(w * h, 0);
    }
    let luma_at = |y: usize| &luma.data[y * w..(y + 1) * w];
    let red_at = |y: usize| &red.data[y * w..(y + 1) * w];
    let mut dark_row = |y: usize, out: &mut [f32]| {
        let skin_l = luma_skin.next_row(|k, row| {
            row.copy_from_slice(luma_at(k));
            if let Some(first) = luma_first.next_row(|j, r| r.copy_from_slice(luma_at(j))) {
                clip_to_level(row, first);
            }
        });
        let skin_r = red_skin.next_row(|k, row| {
            row.copy_from_slice(red_at(k));
            if let Some(first) = red_first.next_row(|j, r| r.copy_from_slice(red_at(j))) {
                clip_to_level(row, first);
            }
        });
        let (Some(skin_l), Some(skin_r)) = (skin_l, skin_r) else {
            return;
        };
        if let Some(flags) = dark_enough.as_deref_mut() {
            for ((f, &sl), &l) in flags[y * w..(y + 1) * w]
                .iter_mut()
                .zip(skin_l)
                .zip(luma_at(y))
            {
                *f = u8::from(sl - l >= MIN_CONTRAST * sl.max(1.0));
            }
        }
        // The larger of the luminance's and the red channel's darkness. A white hair on darker
        // skin is lighter than the skin: strong relative lightness counts as contrast too (past
        // `LIGHT_OFFSET`; `is_dot` keeps such spots only when hair-sized).
        for ((((o, &sl), &l), &sr), &r) in out
            .iter_mut()
            .zip(skin_l)
            .zip(luma_at(y))
            .zip(skin_r)
            .zip(red_at(y))
        {
            let d = (sl - l) / sl.max(1.0);
            let r = (sr - r) / sr.max(1.0);
            *o = d.max(r).max(-d - LIGHT_OFFSET);
        }
        dark.data[y * w..(y + 1) * w].copy_from_slice(out);
    };
    for out in smooth.data.chunks_exact_mut(w.max(1)) {
        let Some(mean) = smoothing.next_row(&mut dark_row) else {
            break;
        };
        out.copy_from_slice(mean);
    }
}

/// How much cooler than its skin each pixel of `image` is, into `cool`: the skin's warmth (two
/// levels, the second clipped to the first, as `clip_to_level` does for the darkness; `levels`:
/// the first and second) less the pixel's. Pixels dark enough to be judged by their darkness
/// are not excluded here (see [`BlobDetector::darkness`]).
fn cool_of(
    image: &RgbImage,
    r_bg: usize,
    warm: &mut Plane,
    levels: [&mut BoxStream; 2],
    cool: &mut Plane,
) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    warm.resize(w, h);
    for (t, px) in warm.data.iter_mut().zip(image.as_raw().chunks_exact(3)) {
        *t = warmth(px[0], px[1], px[2]);
    }
    let [first, skin] = levels;
    first.start(w, h, r_bg);
    skin.start(w, h, r_bg);
    cool.resize(w, h);
    let warm_at = |y: usize| &warm.data[y * w..(y + 1) * w];
    for (y, out) in cool.data.chunks_exact_mut(w.max(1)).enumerate() {
        let Some(skin_t) = skin.next_row(|k, row| {
            row.copy_from_slice(warm_at(k));
            if let Some(first) = first.next_row(|j, r| r.copy_from_slice(warm_at(j))) {
                clip_to_warmth(row, first);
            }
        }) else {
            break;
        };
        for ((c, &st), &t) in out.iter_mut().zip(skin_t).zip(warm_at(y)) {
            *c = st - t;
        }
    }
}

/// Warmth of a pixel: red minus blue over the sum of the channels (plus a floor so that near
/// black stays finite and quiet). Skin of every type is warm; grey and white hair and healed ink
/// are cooler than the skin around them.
fn warmth(r: u8, g: u8, b: u8) -> f32 {
    (f32::from(r) - f32::from(b)) / (f32::from(r) + f32::from(g) + f32::from(b) + WARMTH_FLOOR)
}

/// Like `clip_to_level` for the warmth, which is a difference and may be negative under a cool
/// cast: clipped to within `WARMTH_CLIP` of the first level.
fn clip_to_warmth(row: &mut [f32], level: &[f32]) {
    for (v, &s) in row.iter_mut().zip(level) {
        *v = v.clamp(s - WARMTH_CLIP, s + WARMTH_CLIP);
    }
}

/// Calls `f(i, x, y)` for the flat indices `i = 0, step, 2 step, ...` of a `width` x `height`
/// plane, in order, whose pixel's centre lies on `skin` (every one without a mask; off the
/// mask's frame is not skin, as [`SkinMask::is_skin`] says). The cell is found by integer steps
/// along each row: this runs per noise sample, over a hundred thousand a frame, where a
/// division per sample cost more than the samples' statistics.
fn for_each_sample_on_skin(
    skin: Option<&SkinMask>,
    (width, height): (usize, usize),
    step: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let step = step.max(1);
    let (cell, mask_w, mask_h) = skin.map_or((1, width, height), |m| {
        let (w, h) = m.dimensions();
        (m.cell_px().max(1) as usize, w as usize, h as usize)
    });
    for y in 0..height.min(mask_h) {
        let row_start = y * width;
        let mut x = (step - row_start % step) % step;
        let (mut col, mut within) = (x / cell, x % cell);
        let row = y / cell;
        while x < width.min(mask_w) {
            if skin.is_none_or(|m| m.cell_is_skin(col, row)) {
                f(row_start + x, x, y);
            }
            x += step;
            within += step;
            while within >= cell {
                within -= cell;
                col += 1;
            }
        }
    }
}

/// Robust deviation (1.4826 x median absolute deviation) of `samples` (reordered).
fn robust_spread(samples: &mut [f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let mid = samples.len() / 2;
    let median = *samples.select_nth_unstable_by(mid, f32::total_cmp).1;
    for v in samples.iter_mut() {
        *v = (*v - median).abs();
    }
    1.4826 * *samples.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// Relative darkness `(skin - v) / skin` of a plane against its local skin level: the level is
/// a box mean over `BACKGROUND_RADIUS_MM`, taken twice, the second time over the plane clipped
/// to `[DARK_CLIP_RATIO, BRIGHT_CLIP_RATIO]` of the first, so that a dot does not darken the
/// level it is measured against. This clips one `row` of a plane against its first `level`.
fn clip_to_level(row: &mut [f32], level: &[f32]) {
    for (v, &s) in row.iter_mut().zip(level) {
        *v = v.clamp(s * DARK_CLIP_RATIO, s * BRIGHT_CLIP_RATIO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const PPM: f64 = 20.0;
    const SKIN: [f64; 3] = [200.0, 150.0, 125.0];

    /// Flat skin with soft-edged discs: (x, y, radius px, colour).
    fn canvas(discs: &[(f64, f64, f64, [f64; 3])]) -> RgbImage {
        RgbImage::from_fn(200, 120, |x, y| {
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let mut c = SKIN;
            for &(cx, cy, r, col) in discs {
                let a = (r + 0.5 - (fx - cx).hypot(fy - cy)).clamp(0.0, 1.0);
                for k in 0..3 {
                    c[k] = c[k] * (1.0 - a) + col[k] * a;
                }
            }
            Rgb([c[0] as u8, c[1] as u8, c[2] as u8])
        })
    }

    /// A fixed pseudo-random value per pixel: the sum of three uniform values in [-0.5, 0.5)
    /// (standard deviation 0.5).
    fn pixel_noise(x: u32, y: u32) -> f64 {
        let mut v = (u64::from(x) * 0x9E37_79B9) ^ u64::from(y).wrapping_mul(0x85EB_CA6B);
        let mut sum = 0.0;
        for _ in 0..3 {
            v ^= v >> 13;
            v = v.wrapping_mul(0xC2B2_AE35);
            v ^= v >> 16;
            sum += (v % 1000) as f64 / 1000.0 - 0.5;
        }
        sum
    }

    #[test]
    fn finds_a_grey_dot_at_its_subpixel_centre_as_pigment() {
        let img = canvas(&[(60.3, 40.7, 4.0, [70.0, 70.0, 78.0])]);
        let dets = BlobDetector::new(BlobConfig { px_per_mm: PPM }).detect(&img);
        assert_eq!(dets.len(), 1, "{dets:?}");
        let d = dets[0];
        assert!((d.x - 60.3).hypot(d.y - 40.7) < 0.3, "{d:?}");
        assert!((d.radius - 4.0).abs() < 1.5, "{d:?}");
        assert_eq!(d.kind, DotKind::Pigment);
    }

    #[test]
    fn a_region_stops_growing_at_the_analysis_radius() {
        // A plateau of darkness: every pixel joins the region, which reaches the analysis
        // radius; it is rejected (`classify`), so growing stops there instead of filling the
        // whole disc of that radius.
        let (w, h) = (80usize, 80usize);
        let flat = |v: f32| Plane {
            width: w,
            height: h,
            data: vec![v; w * h],
        };
        let plateau = flat(0.5);
        let image = RgbImage::from_pixel(w as u32, h as u32, Rgb([90, 70, 60]));
        let region = measure_with(&image, &plateau).analyse(&mut RegionScratch::default(), 40, 40);
        let reach = PPM * ANALYSIS_RADIUS_MM;
        let disc = std::f64::consts::PI * reach * reach;
        assert!(region.truncated, "{region:?}");
        assert!(
            (region.area_px as f64) < 0.25 * disc,
            "grew {} pixels of the {disc:.0} within reach",
            region.area_px
        );
        let detector = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        assert_eq!(detector.classify(&region), None);

        // A dot within reach is grown whole.
        let mut dot = flat(0.0);
        for y in 35..46 {
            for x in 35..46 {
                dot.data[y * w + x] = 0.5;
            }
        }
        let region = measure_with(&image, &dot).analyse(&mut RegionScratch::default(), 40, 40);
        assert!(!region.truncated, "{region:?}");
        assert_eq!(region.area_px, 121);
    }

    fn measure_with<'a>(image: &'a RgbImage, plane: &'a Plane) -> Measure<'a> {
        Measure {
            image,
            dark: plane,
            smooth: plane,
            px_per_mm: PPM,
        }
    }

    #[test]
    fn a_small_dark_brown_tip_is_a_follicle() {
        // A 0.08 mm tip with its short shadow trailing to the right.
        let img = canvas(&[
            (100.0, 60.0, 1.6, [45.0, 30.0, 25.0]),
            (102.0, 60.0, 1.0, [120.0, 90.0, 75.0]),
            (103.5, 60.0, 0.8, [150.0, 110.0, 92.0]),
        ]);
        let dets = BlobDetector::new(BlobConfig { px_per_mm: PPM }).detect(&img);
        assert_eq!(dets.len(), 1, "{dets:?}");
        assert_eq!(dets[0].kind, DotKind::Follicle);
        assert!((dets[0].x - 100.5).abs() < 1.5, "{:?}", dets[0]);
    }

    #[test]
    fn moles_strands_and_flat_skin_are_not_dots() {
        // A brown 1.2 mm mole, and a thin dark strand across the frame.
        let mut discs = vec![(50.0, 60.0, 12.0, [120.0, 70.0, 45.0])];
        for i in 0..60 {
            discs.push((
                90.0 + 1.5 * f64::from(i),
                20.0 + 0.8 * f64::from(i),
                1.2,
                [60.0, 45.0, 40.0],
            ));
        }
        let dets = BlobDetector::new(BlobConfig { px_per_mm: PPM }).detect(&canvas(&discs));
        assert!(dets.is_empty(), "{dets:?}");
        let flat = canvas(&[]);
        assert!(BlobDetector::new(BlobConfig { px_per_mm: PPM })
            .detect(&flat)
            .is_empty());
    }

    #[test]
    fn a_pale_grey_tip_is_found_by_its_colour() {
        // A pale grey tip of 0.1 mm: as red as the skin and a little lighter (too little for a
        // white hair), it differs from the skin in colour; a skin-coloured spot not at all.
        let grey = [200.0, 180.0, 178.0];
        let img = canvas(&[(70.4, 50.6, 2.0, grey), (140.0, 60.0, 2.0, SKIN)]);
        let dets = BlobDetector::new(BlobConfig { px_per_mm: PPM }).detect(&img);
        assert_eq!(dets.len(), 1, "{dets:?}");
        assert!(
            (dets[0].x - 70.4).hypot(dets[0].y - 50.6) < 0.5,
            "{:?}",
            dets[0]
        );
        assert_eq!(dets[0].kind, DotKind::Follicle);
        // With the colour contrast off it is not found.
        let mut plain = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        plain.set_colour_contrast(false);
        assert!(plain.detect(&img).is_empty());
        // Without its colour drop (the same tip in the skin's own hue) nothing is there.
        let img = canvas(&[(70.4, 50.6, 2.0, [201.0, 151.0, 126.0])]);
        let dets = BlobDetector::new(BlobConfig { px_per_mm: PPM }).detect(&img);
        assert!(dets.is_empty(), "{dets:?}");
    }

    #[test]
    fn the_colour_noise_is_the_skins_not_a_gloves() {
        // Skin with a little colour noise on the left 40% of the frame, a smooth blue glove of
        // the same lightness over the rest. Measured over the whole frame, the glove's flat
        // colour would shrink the colour noise and turn the skin's into dots; measured on the
        // skin mask it does not.
        let (w, h) = (400u32, 240u32);
        let skin_w = 160.0;
        let img = RgbImage::from_fn(w, h, |x, y| {
            if f64::from(x) + 0.5 < skin_w {
                let n = 12.0 * pixel_noise(x, y);
                Rgb([
                    (SKIN[0] + 0.3 * n) as u8,
                    SKIN[1] as u8,
                    (SKIN[2] - n) as u8,
                ])
            } else {
                Rgb([150, 160, 200])
            }
        });
        let mask = SkinMask::from_fn(w, h, 5, PPM, |x, _| x < skin_w);
        let gate = PeakGate {
            skin: &mask,
            reach_px: 0.0,
        };
        let mut blobs = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        let mut on_skin = |skin: Option<&SkinMask>| {
            let mut out = Vec::new();
            blobs.darkness_of(&img);
            blobs.find_peaks_on(skin);
            blobs.detect_found_into(&img, None, Some(gate), &mut out);
            out.iter().filter(|d| d.x < skin_w - 10.0).count()
        };
        let whole_frame = on_skin(None);
        let masked = on_skin(Some(&mask));
        assert!(
            masked <= 1,
            "{masked} false dots with the noise measured on the skin"
        );
        assert!(
            whole_frame > masked + 5,
            "over the whole frame: {whole_frame}, on the skin: {masked}"
        );
    }

    #[test]
    fn the_threshold_is_the_lit_skins_not_a_shadows() {
        // Most of the frame dim and noisy (skin in an occluder's shadow, or a dark glove): its
        // darkness, relative to a small level, is far noisier than the lit skin's. Measured
        // over the whole frame at once the spread would set the threshold above three faint
        // dots on the lit strip; grouped by level, the lit skin's own spread sets it.
        let (w, h) = (400u32, 240u32);
        let lit_from = 320.0;
        let dots = [(360.3, 50.6), (359.7, 120.2), (360.5, 190.4)];
        let img = RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let (gain, amp) = if fx < lit_from {
                (0.35, 30.0)
            } else {
                (1.0, 4.0)
            };
            let mut shade = 1.0;
            for &(cx, cy) in &dots {
                let a = (4.5 - (fx - cx).hypot(fy - cy)).clamp(0.0, 1.0);
                shade -= 0.16 * a;
            }
            let n = amp * pixel_noise(x, y);
            Rgb(SKIN.map(|c| (c * gain * shade + n).clamp(0.0, 255.0) as u8))
        });
        let mut blobs = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        let found = blobs.detect(&img);
        let threshold = blobs.contrast_threshold(None);
        let mut all: Vec<f32> = blobs
            .smooth
            .data
            .iter()
            .step_by(NOISE_SAMPLE_STEP)
            .copied()
            .collect();
        let whole_frame = NOISE_SIGMAS * robust_spread(&mut all);
        assert!(
            whole_frame > 0.2 && threshold < 0.08,
            "threshold {threshold}, over the whole frame {whole_frame}"
        );
        for (cx, cy) in dots {
            assert!(
                found.iter().any(|d| (d.x - cx).hypot(d.y - cy) < 1.0),
                "the faint dot at ({cx}, {cy}) is lost: {:?}",
                found.iter().filter(|d| d.x > lit_from).collect::<Vec<_>>()
            );
        }
        let on_lit = found.iter().filter(|d| d.x > lit_from + 10.0).count();
        assert_eq!(on_lit, dots.len(), "false dots on the lit skin");
    }

    /// The noise samples on the skin are the pixels whose centre [`SkinMask::is_skin`] calls
    /// skin, every `step`-th of the flat plane, in order: cells that do not divide the frame, a
    /// mask smaller than the plane (off it is not skin), and no mask at all.
    #[test]
    fn the_samples_on_skin_are_those_the_mask_calls_skin() {
        let (w, h) = (61, 23);
        for (mask_w, mask_h, cell) in [(61, 23, 5), (61, 23, 1), (40, 17, 3), (61, 23, 16)] {
            let mask = SkinMask::from_fn(mask_w, mask_h, cell, PPM, |x, y| {
                ((x * 0.37).sin() + (y * 0.21).cos()) > 0.1
            });
            for step in [1, 7, 29] {
                let want: Vec<usize> = (0..w * h)
                    .step_by(step)
                    .filter(|&i| mask.is_skin((i % w) as f64 + 0.5, (i / w) as f64 + 0.5))
                    .collect();
                let mut got = Vec::new();
                for_each_sample_on_skin(Some(&mask), (w, h), step, |i, x, y| {
                    assert_eq!((x, y), (i % w, i / w));
                    got.push(i);
                });
                assert!(!want.is_empty() && want.len() < (w * h).div_ceil(step));
                assert_eq!(
                    got, want,
                    "mask {mask_w}x{mask_h}, cell {cell}, step {step}"
                );
            }
        }
        let mut all = Vec::new();
        for_each_sample_on_skin(None, (w, h), 7, |i, _, _| all.push(i));
        assert_eq!(all, (0..w * h).step_by(7).collect::<Vec<_>>());
    }

    #[test]
    fn a_live_detector_measures_the_noise_every_few_frames() {
        // Plain skin, then the same skin with strong pixel noise: the noisy frame's own
        // candidate threshold is higher. Measured every third frame, the noisy frame that
        // follows a plain one is held to the plain one's threshold; the frame after the third
        // is measured afresh, and so is a frame of another size.
        let plain = canvas(&[(60.0, 40.0, 3.0, [150.0, 120.0, 110.0])]);
        let noisy = RgbImage::from_fn(plain.width(), plain.height(), |x, y| {
            let v = ((u64::from(x) * 7919 + u64::from(y) * 104_729) % 61) as f64 - 30.0;
            let p = plain.get_pixel(x, y).0;
            Rgb(p.map(|c| (f64::from(c) + v).clamp(0.0, 255.0) as u8))
        });
        let threshold = |d: &BlobDetector| d.noise.map(|n| (n.threshold, n.served));
        let mut fresh = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        fresh.find_peaks_of(&plain);
        assert!(fresh.noise.is_none(), "still images keep no measurement");
        fresh.set_noise_every(1);
        fresh.find_peaks_of(&noisy);
        assert!(fresh.noise.is_none(), "every frame keeps no measurement");
        let noisy_threshold = fresh.contrast_threshold(None);
        let noisy_peaks = fresh.peaks.len();

        let mut live = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        live.set_noise_every(3);
        live.find_peaks_of(&plain);
        let (plain_threshold, served) = threshold(&live).expect("a measurement kept");
        assert_eq!(served, 1);
        assert!(
            noisy_threshold > 1.5 * plain_threshold,
            "the noisy frame's threshold {noisy_threshold} against {plain_threshold}"
        );
        live.find_peaks_of(&noisy);
        assert_eq!(threshold(&live), Some((plain_threshold, 2)));
        assert!(
            live.peaks.len() > noisy_peaks,
            "held to the plain threshold the noise gives more peaks: {} against {noisy_peaks}",
            live.peaks.len()
        );
        live.find_peaks_of(&noisy);
        assert_eq!(threshold(&live), Some((plain_threshold, 3)));
        live.find_peaks_of(&noisy);
        assert_eq!(threshold(&live), Some((noisy_threshold, 1)));
        assert_eq!(
            live.peaks.len(),
            noisy_peaks,
            "measured afresh, as a still image"
        );

        // Switching the colour contrast is measured afresh too.
        live.set_colour_contrast(false);
        assert!(live.noise.is_none());
        live.set_colour_contrast(true);

        let smaller = image::imageops::crop_imm(&plain, 0, 0, 150, 100).to_image();
        live.find_peaks_of(&smaller);
        let mut still = BlobDetector::new(BlobConfig { px_per_mm: PPM });
        still.find_peaks_of(&smaller);
        assert_eq!(
            threshold(&live),
            Some((still.contrast_threshold(None), 1)),
            "another size is measured afresh"
        );
    }

    #[test]
    fn the_hairs_of_one_unit_are_one_detection() {
        // Three tips 0.1 mm apart: one unit.
        let tip = [40.0, 28.0, 24.0];
        let img = canvas(&[
            (80.0, 50.0, 1.4, tip),
            (82.0, 51.0, 1.4, tip),
            (80.5, 52.0, 1.4, tip),
        ]);
        let dets = BlobDetector::new(BlobConfig { px_per_mm: PPM }).detect(&img);
        assert_eq!(dets.len(), 1, "{dets:?}");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_image() -> impl Strategy<Value = RgbImage> {
        (1u32..48, 1u32..48).prop_flat_map(|(w, h)| {
            proptest::collection::vec(any::<u8>(), (w * h * 3) as usize)
                .prop_map(move |data| RgbImage::from_raw(w, h, data).expect("sized buffer"))
        })
    }

    proptest! {
        #[test]
        fn detections_lie_in_the_frame_with_sane_fields(img in arbitrary_image(), ppm in 5.0f64..400.0) {
            let dets = BlobDetector::new(BlobConfig { px_per_mm: ppm }).detect(&img);
            for d in dets {
                prop_assert!(d.x >= 0.0 && d.x <= f64::from(img.width()), "{:?}", d);
                prop_assert!(d.y >= 0.0 && d.y <= f64::from(img.height()), "{:?}", d);
                prop_assert!(d.radius.is_finite() && d.radius > 0.0);
                prop_assert!((0.0..=1.0).contains(&d.score));
            }
        }
    }
}
