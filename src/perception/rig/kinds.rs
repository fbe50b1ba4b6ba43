//! Follicle or pigment: the kind trees read each dot against its frame, then a two-component
//! Gaussian mixture over the frame's own dots, seeded and named by the trees, settles the split.
//!
//! # Why
//! One line through every ink, hair colour, skin tone and optic at once cannot hold: healed ink
//! runs from fresh black to faded blue-grey, differs from dark skin more in colour than in
//! lightness, and overlaps miniaturised hair in every single measurement. On one scalp the two
//! populations are much tighter: an artist works with one ink, the client has one hair colour,
//! and one camera sees both. So the trees read, beside each dot's own colour against its skin
//! ring (CIELAB), size, shape and darkness, where it stands in the spread of the frame's accepted
//! dots ([`tree_features`]); and the mixture lets the frame's own dots say where its line is.
//!
//! # Method
//! 1. The kind trees ([`super::generated::kind_model`], fitted by `models/train/fit_kinds.py` on
//!    400 rendered frames of every skin type, ink stage, hair colour and cast) make a first call
//!    on every accepted dot; the context trees ([`super::generated::kind_context_model`], fitted
//!    by the same script on the first trees' calls made out of fold) read the same features and
//!    what the first calls say of the dots around it ([`context_features`]), and give its
//!    pigment log-odds ([`pigment_logits`]; a frame with fewer than [`MIN_CONTEXT_DOTS`] dots
//!    takes the detector's linear rule instead).
//! 2. No ink: if the trees' pigment calls are all weak (their 75th percentile below
//!    [`NO_INK_Q75_LOGIT`]), they are the tail of the hair and every dot is a follicle.
//! 3. Features of every accepted dot ([`FEATURES`]: colour against the skin, size, darkness,
//!    shape, and, when the dot model ran on the frame, its pigment log-odds at the dot),
//!    standardised over the frame; expectation-maximisation for two full-covariance Gaussians
//!    (Dempster, Laird and Rubin 1977; Bishop, *Pattern Recognition and Machine Learning*,
//!    section 9.2), started from the trees' split, so component 1 starts as "pigment".
//! 4. Each dot goes to its most likely component. The components are named by the trees: the
//!    one whose mean pigment log-odds is higher is pigment. The frame's split is used only when
//!    the trees agree the two are different kinds (mean log-odds beyond ±[`NAMING_MARGIN`]) and
//!    both are populated; otherwise (no pigment yet, or two populations of hair) the trees'
//!    kinds stand.
//!
//! Chosen on check seeds 200-239 (and 300-339 of the held-out ink and hair model), never on
//! evaluation seeds: visible dots' kinds right by group I-II / III-IV / V-VI were 0.944 / 0.939
//! / 0.960 with the earlier global linear rule and this mixture, 0.974 / 0.971 / 0.990 with the
//! trees alone, 0.970 / 0.972 / 0.997 with the trees and the mixture (held-out inks: 0.982 /
//! 0.983 / 0.951 trees alone, 0.990 / 0.989 / 0.954 with the mixture). The context trees, on
//! check seeds 200-299 with the dot model fused: 0.977 / 0.980 / 0.989 before, 0.980 / 0.979 /
//! 0.989 with them (0.980 / 0.980 / 0.990 without the mixture); held-out inks 300-339: 0.990 /
//! 0.981 / 0.942 before, 0.997 / 0.987 / 0.950 with them (0.987 / 0.989 / 0.948 without the
//! mixture), so the mixture stays.

use nalgebra::{SMatrix, SVector};

use super::generated::kind_context_model::KIND_CONTEXT_MODEL;
use super::generated::kind_model::KIND_MODEL;
use super::region::Region;
use crate::frame::DotKind;
use crate::geometry::{PointId, SpatialGrid};

/// Number of features per dot.
const DIM: usize = 8;
type Vector = SVector<f64, DIM>;
type Matrix = SMatrix<f64, DIM, DIM>;

/// What the mixture looks at, in this order: chroma red/blue, chroma green/blue, equivalent
/// radius (mm), tint against the skin, luminance against the skin, peak darkness, elongation,
/// and the dot model's pigment log-odds at the dot when the model ran (0 for every dot
/// otherwise: a constant, which both components share and which so changes nothing).
pub const FEATURES: [&str; DIM] = [
    "chroma_rb",
    "chroma_gb",
    "radius_mm",
    "tint",
    "rel_luma",
    "peak",
    "elongation",
    "model_pigment_logodds",
];
/// The model's pigment share is clamped to `[MODEL_SHARE_CLAMP, 1 - MODEL_SHARE_CLAMP]` before
/// it becomes log-odds, so a saturated softmax does not dominate the standardised features.
pub const MODEL_SHARE_CLAMP: f64 = 1e-3;
/// No ink in the frame: when even the most pigment-like quarter of the trees' pigment calls
/// is this weakly pigment-like (the 75th percentile of their log-odds is below it), they are
/// the tail of the hair, not a second population, and every dot is a follicle. A first session
/// on an untouched scalp is exactly this. Set for the earlier linear rule and kept for the
/// trees: on check seeds 200-239 no such step, 1.5 and 2.2 give kind accuracy 0.975, 0.976 and
/// 0.977 (held-out inks 0.978, 0.978, 0.979), as frames without ink rarely reach the mixture.
pub const NO_INK_Q75_LOGIT: f64 = 2.2;
/// Each kind needs at least this many dots by the trees before the frame is modelled.
pub const MIN_PER_KIND: usize = 10;
/// Each component needs at least this many dots for its split to be used.
pub const MIN_PER_COMPONENT: usize = 5;
/// The components' mean pigment log-odds (trees) must lie beyond ± this to be named.
pub const NAMING_MARGIN: f64 = 1.0;
/// The mixture is not used when it would overturn more than this share of the trees' calls
/// (chosen on check seeds 200-247 and, held-out inks, 300-339, fused detector, among 0.04, 0.08,
/// 0.15 and no limit: kind 0.980 / 0.971, 0.979 / 0.973, 0.978 / 0.973, 0.973 / 0.973; on one
/// light frame the unlimited mixture called 400 of 1,500 follicles pigment).
pub const MAX_OVERTURNED: f64 = 0.08;
/// Added to every covariance diagonal (standardised units), as scikit-learn's `reg_covar`.
pub const COVARIANCE_FLOOR: f64 = 1e-4;
/// Most expectation-maximisation rounds.
pub const MAX_ROUNDS: usize = 50;
/// Stop when the mean log-likelihood per dot improves by less than this (scikit-learn's `tol`).
pub const TOLERANCE: f64 = 1e-3;

/// One Gaussian of the mixture.
#[derive(Debug, Clone, Copy)]
struct Component {
    weight: f64,
    mean: Vector,
    /// Lower Cholesky factor of the covariance.
    chol: Matrix,
    /// ln det(covariance) / 2.
    half_log_det: f64,
}

impl Component {
    /// Weighted mean and covariance of `x` under responsibilities `r`.
    fn fit(x: &[Vector], r: &[f64]) -> Option<Self> {
        let total: f64 = r.iter().sum();
        if total < 1.0 {
            return None;
        }
        let mean = x
            .iter()
            .zip(r)
            .fold(Vector::zeros(), |acc, (xi, ri)| acc + xi * *ri)
            / total;
        let mut cov = x.iter().zip(r).fold(Matrix::zeros(), |acc, (xi, ri)| {
            let d = xi - mean;
            acc + d * d.transpose() * *ri
        }) / total;
        for k in 0..DIM {
            cov[(k, k)] += COVARIANCE_FLOOR;
        }
        let chol = cov.cholesky()?;
        let l = chol.l();
        let half_log_det = (0..DIM).map(|k| l[(k, k)].ln()).sum();
        Some(Self {
            weight: total / x.len() as f64,
            mean,
            chol: l,
            half_log_det,
        })
    }

    /// ln(weight * N(x | mean, cov)) up to the constant shared by both components.
    fn log_density(&self, x: &Vector) -> f64 {
        let d = x - self.mean;
        let z = self
            .chol
            .solve_lower_triangular(&d)
            .unwrap_or_else(Vector::zeros);
        self.weight.ln() - self.half_log_det - 0.5 * z.norm_squared()
    }
}

fn features(r: &Region, px_per_mm: f64, model_logodds: f64) -> Vector {
    Vector::from([
        r.chroma_rb,
        r.chroma_gb,
        r.radius_px / px_per_mm,
        r.tint,
        r.rel_luma,
        f64::from(r.peak),
        r.elongation,
        model_logodds,
    ])
}

/// The per-dot measurements the kind trees read, in this order (see [`tree_features`]).
pub const TREE_DOT_FEATURES: [&str; 12] = [
    "px_per_mm",
    "peak",
    "radius_mm",
    "elongation",
    "length_mm",
    "tint",
    "rel_luma",
    "chroma_rb",
    "chroma_gb",
    "delta_l",
    "delta_a",
    "delta_b",
];
/// Which of [`TREE_DOT_FEATURES`] are also described over the frame's accepted dots: everything
/// but the scale and the length (which follows the radius and elongation).
const TREE_CONTEXT: [usize; 10] = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11];
/// How each context feature is described over the frame: its median, 10th and 90th
/// percentiles, and the dot's own value against them ((value - median) / (q90 - q10)).
const TREE_CONTEXT_PARTS: [&str; 4] = ["median", "q10", "q90", "relative"];
/// Number of the dot's own measurements among the trees' features (they come first).
const OWN: usize = TREE_DOT_FEATURES.len();
/// Number of features per dot the kind trees read.
pub const TREE_DIM: usize = OWN + TREE_CONTEXT.len() * TREE_CONTEXT_PARTS.len();
/// Keeps the relative position finite on a frame whose dots all measure the same.
const TREE_SPREAD_FLOOR: f64 = 1e-6;

/// The kind trees' feature names, in order: the dot's own measurements, then for each context
/// feature its frame median, q10, q90 and the dot's relative position (`<name>_<part>`).
pub fn tree_feature_names() -> Vec<String> {
    let mut names: Vec<String> = TREE_DOT_FEATURES.iter().map(|s| s.to_string()).collect();
    for &k in &TREE_CONTEXT {
        for part in TREE_CONTEXT_PARTS {
            names.push(format!("{}_{part}", TREE_DOT_FEATURES[k]));
        }
    }
    names
}

/// Linearly interpolated quantile `q` of non-empty `v` (numpy's default), by selection rather
/// than a full sort (this runs on every frame); reorders `v`.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, at, above) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *at;
    // Everything above the selected one is at least it: the next order statistic is their least.
    let b = above.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    a + (pos - lo as f64) * (b - a)
}

/// The kind trees' features of every accepted region (`Some` kind) of one frame, `None` for
/// the rejected: the dot's own colour against its skin ring, size, shape and darkness, and how
/// it stands among the frame's other accepted dots. One scalp has one ink and one hair colour
/// under one light, so where a dot lies in its frame's spread says more than its value alone.
pub fn tree_features(
    regions: &[(Region, Option<DotKind>)],
    px_per_mm: f64,
) -> Vec<Option<[f64; TREE_DIM]>> {
    let own = |r: &Region| -> [f64; OWN] {
        [
            px_per_mm,
            f64::from(r.peak),
            r.radius_px / px_per_mm,
            r.elongation,
            r.length_px / px_per_mm,
            r.tint,
            r.rel_luma,
            r.chroma_rb,
            r.chroma_gb,
            r.delta_lab[0],
            r.delta_lab[1],
            r.delta_lab[2],
        ]
    };
    // Each accepted region's own measurements, once, in region order.
    let accepted: Vec<[f64; OWN]> = regions
        .iter()
        .filter(|(_, k)| k.is_some())
        .map(|(r, _)| own(r))
        .collect();
    if accepted.is_empty() {
        return vec![None; regions.len()];
    }
    let mut spread = [[0.0f64; 3]; TREE_CONTEXT.len()];
    let mut column = Vec::with_capacity(accepted.len());
    for (c, &k) in TREE_CONTEXT.iter().enumerate() {
        column.clear();
        column.extend(accepted.iter().map(|f| f[k]));
        spread[c] = [
            quantile(&mut column, 0.5),
            quantile(&mut column, 0.1),
            quantile(&mut column, 0.9),
        ];
    }
    let mut next = accepted.iter();
    regions
        .iter()
        .map(|(_, k)| {
            // A rejected region has no features and takes nothing from `accepted`.
            k.as_ref()?;
            let f = next.next()?;
            let mut x = [0.0; TREE_DIM];
            x[..OWN].copy_from_slice(f);
            for (c, &k) in TREE_CONTEXT.iter().enumerate() {
                let [med, q10, q90] = spread[c];
                let at = OWN + 4 * c;
                x[at] = med;
                x[at + 1] = q10;
                x[at + 2] = q90;
                x[at + 3] = (f[k] - med) / (q90 - q10 + TREE_SPREAD_FLOOR);
            }
            Some(x)
        })
        .collect()
}

/// What the context trees read after [`tree_features`], in this order (see
/// [`context_features`]).
pub const CONTEXT_FEATURES: [&str; 6] = [
    "nearest_mm",
    "second_mm",
    "close_count",
    "near_pigment",
    "near_count",
    "wide_pigment",
];
/// Other dots within this distance (mm) are counted as close: ink split into two regions, or
/// the hairs of one unit.
pub const CONTEXT_CLOSE_MM: f64 = 0.4;
/// The dots around one (mm) whose first calls are averaged as its neighbourhood.
pub const CONTEXT_NEAR_MM: f64 = 1.5;
/// The wider neighbourhood (mm), and the most the nearest-dot distances are given as.
pub const CONTEXT_REACH_MM: f64 = 3.0;
/// Number of features per dot the context trees read.
pub const CONTEXT_DIM: usize = TREE_DIM + CONTEXT_FEATURES.len();

/// What the first kind trees say of the dots around each accepted region (`Some` kind), `None`
/// for the rejected: the distance to the nearest and the second-nearest other accepted dot
/// (mm, at most [`CONTEXT_REACH_MM`]), how many lie within [`CONTEXT_CLOSE_MM`], the mean
/// pigment probability of those within [`CONTEXT_NEAR_MM`] (0 when there are none) and their
/// number, and the mean within [`CONTEXT_REACH_MM`]. `first` holds the first trees' pigment
/// log-odds, one per region.
///
/// # Why
/// The artist's ink goes where the hair is thin, and a scalp's ink sits in the areas worked,
/// so a dot among dots the first trees call hair is more likely hair, and one among ink more
/// likely ink. On coarse frames (a dot 2-4 px across) its own colour carries too little to
/// say which it is, and its neighbours carry the rest.
///
/// # Panics
/// If `first` and `regions` differ in length.
pub fn context_features(
    regions: &[(Region, Option<DotKind>)],
    first: &[f64],
    px_per_mm: f64,
) -> Vec<Option<[f64; CONTEXT_FEATURES.len()]>> {
    assert_eq!(regions.len(), first.len(), "one log-odds per region");
    let ppm = px_per_mm.max(f64::MIN_POSITIVE);
    // Accepted regions: position (mm) and pigment probability.
    let dots: Vec<(usize, f64, f64, f64)> = regions
        .iter()
        .zip(first)
        .enumerate()
        .filter(|(_, ((_, k), _))| k.is_some())
        .map(|(i, ((r, _), &l))| (i, r.x / ppm, r.y / ppm, 1.0 / (1.0 + (-l).exp())))
        .collect();
    let (w, h) = dots
        .iter()
        .fold((0.0f64, 0.0f64), |(w, h), d| (w.max(d.1), h.max(d.2)));
    let mut grid = SpatialGrid::new(w, h, CONTEXT_REACH_MM);
    for (id, d) in dots.iter().enumerate() {
        grid.insert(id as PointId, d.1, d.2);
    }
    let mut out = vec![None; regions.len()];
    for (id, &(i, x, y, _)) in dots.iter().enumerate() {
        let (mut nearest, mut second) = (CONTEXT_REACH_MM, CONTEXT_REACH_MM);
        let (mut close, mut near_n, mut wide_n) = (0usize, 0usize, 0usize);
        let (mut near_sum, mut wide_sum) = (0.0f64, 0.0f64);
        grid.for_each_within(x, y, CONTEXT_REACH_MM, |other, d| {
            if other as usize == id {
                return;
            }
            let p = dots[other as usize].3;
            if d < nearest {
                second = nearest;
                nearest = d;
            } else if d < second {
                second = d;
            }
            if d <= CONTEXT_CLOSE_MM {
                close += 1;
            }
            if d <= CONTEXT_NEAR_MM {
                near_n += 1;
                near_sum += p;
            }
            wide_n += 1;
            wide_sum += p;
        });
        let mean = |sum: f64, n: usize| if n > 0 { sum / n as f64 } else { 0.0 };
        out[i] = Some([
            nearest,
            second,
            close as f64,
            mean(near_sum, near_n),
            near_n as f64,
            mean(wide_sum, wide_n),
        ]);
    }
    out
}

/// Fewest accepted dots in a frame for their spread to describe it; below this `rule` decides
/// (see [`pigment_logits`]). The trees were fitted on whole rendered frames (hundreds of dots
/// each); a frame's first few dots, or a small crop, do not say where its ink and its hair lie,
/// and one dot alone on plain skin is outside anything they saw.
pub const MIN_CONTEXT_DOTS: usize = 30;

/// Pigment log-odds of every accepted region (`Some` kind) of one frame, 0 for the rejected
/// (never read): the context trees' when the frame has [`MIN_CONTEXT_DOTS`] accepted dots
/// (they read the first trees' features and [`context_features`] from the first trees'
/// calls), else `rule`'s (the detector's linear rule, which reads the dot alone).
pub fn pigment_logits(
    regions: &[(Region, Option<DotKind>)],
    px_per_mm: f64,
    rule: impl Fn(&Region) -> f64,
) -> Vec<f64> {
    let accepted = regions.iter().filter(|(_, k)| k.is_some()).count();
    if accepted < MIN_CONTEXT_DOTS {
        return regions
            .iter()
            .map(|(r, k)| if k.is_some() { rule(r) } else { 0.0 })
            .collect();
    }
    let trees = tree_features(regions, px_per_mm);
    let first: Vec<f64> = trees
        .iter()
        .map(|x| x.as_ref().map_or(0.0, |x| KIND_MODEL.log_odds(x)))
        .collect();
    let context = context_features(regions, &first, px_per_mm);
    trees
        .iter()
        .zip(&context)
        .map(|(t, c)| match (t, c) {
            (Some(t), Some(c)) => {
                let mut x = [0.0; CONTEXT_DIM];
                x[..TREE_DIM].copy_from_slice(t);
                x[TREE_DIM..].copy_from_slice(c);
                KIND_CONTEXT_MODEL.log_odds(&x)
            }
            _ => 0.0,
        })
        .collect()
}

/// The model's pigment share of a dot (follicle + pigment = 1) as clamped log-odds: the
/// mixture's last feature.
pub fn model_logodds(pigment_share: f64) -> f64 {
    let s = pigment_share.clamp(MODEL_SHARE_CLAMP, 1.0 - MODEL_SHARE_CLAMP);
    (s / (1.0 - s)).ln()
}

/// Re-decides the kind of every accepted region (`Some`) of one frame; `logits` are the kind
/// trees' pigment log-odds, one per region, and `model` the dot model's ([`model_logodds`]),
/// one per region, when it ran. Rejected regions (`None`) are left alone, and so is the frame
/// when its dots do not support a split (see the module docs).
///
/// # Panics
/// If `logits` (or `model`) and `regions` differ in length.
pub fn refine_kinds(
    regions: &mut [(Region, Option<DotKind>)],
    logits: &[f64],
    model: Option<&[f64]>,
    px_per_mm: f64,
) {
    assert_eq!(regions.len(), logits.len(), "one log-odds per region");
    if let Some(m) = model {
        assert_eq!(regions.len(), m.len(), "one model log-odds per region");
    }
    let accepted: Vec<usize> = (0..regions.len())
        .filter(|&i| regions[i].1.is_some())
        .collect();
    let rule_pigment: Vec<bool> = accepted.iter().map(|&i| logits[i] > 0.0).collect();
    let n_pigment = rule_pigment.iter().filter(|&&p| p).count();
    let mut positive: Vec<f64> = accepted
        .iter()
        .map(|&i| logits[i])
        .filter(|&l| l > 0.0)
        .collect();
    if !positive.is_empty() {
        positive.sort_by(f64::total_cmp);
        let q75 = positive[(positive.len() * 3 / 4).min(positive.len() - 1)];
        if q75 < NO_INK_Q75_LOGIT {
            tracing::trace!(q75, "no ink in the frame: every dot is a follicle");
            for &i in &accepted {
                regions[i].1 = Some(DotKind::Follicle);
            }
            return;
        }
    }
    if n_pigment < MIN_PER_KIND || accepted.len() - n_pigment < MIN_PER_KIND {
        return;
    }
    let Some(split) = mixture_split(
        &accepted
            .iter()
            .map(|&i| features(&regions[i].0, px_per_mm, model.map_or(0.0, |m| m[i])))
            .collect::<Vec<_>>(),
        &rule_pigment,
    ) else {
        return;
    };
    let mean_logit = |want: bool| {
        let (sum, n) = accepted
            .iter()
            .zip(&split)
            .filter(|(_, &s)| s == want)
            .fold((0.0, 0usize), |(s, n), (&i, _)| (s + logits[i], n + 1));
        (n, if n > 0 { sum / n as f64 } else { 0.0 })
    };
    let ((n1, m1), (n0, m0)) = (mean_logit(true), mean_logit(false));
    if n1 < MIN_PER_COMPONENT || n0 < MIN_PER_COMPONENT {
        return;
    }
    // Name the components by the trees: the one they call more pigment-like is pigment.
    let pigment_is_one = m1 >= m0;
    let (hi, lo) = if pigment_is_one { (m1, m0) } else { (m0, m1) };
    if hi <= NAMING_MARGIN || lo >= -NAMING_MARGIN {
        tracing::trace!(
            hi,
            lo,
            "kind mixture not used: its components are not two kinds"
        );
        return;
    }
    // The trees already read each dot against its frame: a split that overturns many of their
    // calls has found some other division of the frame (size, shadow) than ink and hair.
    let overturned = split
        .iter()
        .zip(&rule_pigment)
        .filter(|(&s, &p)| (s == pigment_is_one) != p)
        .count();
    if overturned as f64 > MAX_OVERTURNED * accepted.len() as f64 {
        tracing::trace!(
            overturned,
            "kind mixture not used: it overturns too many calls"
        );
        return;
    }
    for (&i, &s) in accepted.iter().zip(&split) {
        regions[i].1 = Some(if s == pigment_is_one {
            DotKind::Pigment
        } else {
            DotKind::Follicle
        });
    }
}

/// Two-component EM on standardised `x`, started from `init` (true: component 1). Returns each
/// point's most likely component, or `None` if a component collapses.
fn mixture_split(x: &[Vector], init: &[bool]) -> Option<Vec<bool>> {
    let n = x.len() as f64;
    let mean = x.iter().fold(Vector::zeros(), |a, v| a + v) / n;
    let sd = x
        .iter()
        .fold(Vector::zeros(), |a, v| {
            a + (v - mean).component_mul(&(v - mean))
        })
        .map(|s| (s / n).sqrt().max(1e-9));
    let z: Vec<Vector> = x.iter().map(|v| (v - mean).component_div(&sd)).collect();
    let mut r1: Vec<f64> = init.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
    let mut r0: Vec<f64> = r1.iter().map(|r| 1.0 - r).collect();
    let mut last = f64::NEG_INFINITY;
    for _ in 0..MAX_ROUNDS {
        let c1 = Component::fit(&z, &r1)?;
        let c0 = Component::fit(&z, &r0)?;
        let mut total = 0.0;
        for (k, zi) in z.iter().enumerate() {
            let (a, b) = (c1.log_density(zi), c0.log_density(zi));
            let m = a.max(b);
            let (ea, eb) = ((a - m).exp(), (b - m).exp());
            r1[k] = ea / (ea + eb);
            r0[k] = 1.0 - r1[k];
            total += m + (ea + eb).ln();
        }
        let mean_ll = total / n;
        if mean_ll - last < TOLERANCE {
            break;
        }
        last = mean_ll;
    }
    Some(r1.iter().map(|&r| r > 0.5).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn region(chroma: f64, radius_px: f64, peak: f32) -> Region {
        Region {
            radius_px,
            peak,
            chroma_rb: chroma,
            chroma_gb: 0.5 * chroma,
            tint: 0.3 * chroma,
            rel_luma: 1.0 - f64::from(peak),
            elongation: 1.2,
            ..Region::default()
        }
    }

    /// Selection gives numpy's interpolated quantiles, whatever the order of the values.
    #[test]
    fn quantiles_interpolate_as_numpy_does() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0, 10.0];
        // numpy.quantile([1, 2, 3, 4, 5, 10], q): 0.5 -> 3.5, 0.1 -> 1.5, 0.9 -> 7.5.
        assert!((quantile(&mut v, 0.5) - 3.5).abs() < 1e-12);
        assert!((quantile(&mut v, 0.1) - 1.5).abs() < 1e-12);
        assert!((quantile(&mut v, 0.9) - 7.5).abs() < 1e-12);
        assert_eq!(quantile(&mut [2.5], 0.9), 2.5);
    }

    /// The trees were fitted on the features in the order `tree_features` and
    /// `context_features` compute them.
    #[test]
    fn the_kind_trees_read_the_features_in_their_fitted_order() {
        let mut names = tree_feature_names();
        assert_eq!(names.len(), TREE_DIM);
        assert_eq!(
            names,
            crate::perception::rig::generated::kind_model::FEATURE_NAMES.to_vec()
        );
        names.extend(CONTEXT_FEATURES.iter().map(|s| s.to_string()));
        assert_eq!(names.len(), CONTEXT_DIM);
        assert_eq!(
            names,
            crate::perception::rig::generated::kind_context_model::FEATURE_NAMES.to_vec()
        );
    }

    /// Distances in millimetres from pixels, neighbours counted by reach, the first calls'
    /// probabilities averaged, the region itself and rejected regions left out.
    /// `models/train/fit_kinds.py` (`check_context`) computes the same features for training
    /// and checks itself against this frame's values: change both together.
    #[test]
    fn context_features_describe_the_first_calls_around_each_dot() {
        let at = |x_mm: f64, y_mm: f64| Region {
            x: 20.0 * x_mm,
            y: 20.0 * y_mm,
            ..Region::default()
        };
        let regions = vec![
            (at(10.0, 10.0), Some(DotKind::Follicle)),
            (at(10.3, 10.0), Some(DotKind::Follicle)),
            (at(11.0, 10.0), Some(DotKind::Pigment)),
            (at(12.0, 10.0), Some(DotKind::Pigment)),
            // Rejected, right beside the first: not a neighbour.
            (at(10.1, 10.0), None),
            // Far from everything.
            (at(30.0, 30.0), Some(DotKind::Follicle)),
        ];
        // Probabilities 0.5, 0.5, 0.9, 0.1 (log-odds 0, 0, ln 9, -ln 9); the far one 0.5.
        let l9 = 9.0f64.ln();
        let first = [0.0, 0.0, l9, -l9, 5.0, 0.0];
        let c = context_features(&regions, &first, 20.0);
        assert!(c[4].is_none());
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let f = c[0].expect("accepted");
        // Neighbours of the first: 0.3 mm (0.5), 1.0 mm (0.9), 2.0 mm (0.1).
        assert!(close(f[0], 0.3) && close(f[1], 1.0), "{f:?}");
        assert_eq!(f[2], 1.0);
        assert!(close(f[3], 0.7) && f[4] == 2.0, "{f:?}");
        assert!(close(f[5], 1.5 / 3.0), "{f:?}");
        let f = c[3].expect("accepted");
        // The last of the row: 1.0 mm (0.9), 1.7 mm (0.5), 2.0 mm (0.5); nothing close.
        assert!(close(f[0], 1.0) && close(f[1], 1.7), "{f:?}");
        assert_eq!(f[2], 0.0);
        assert!(close(f[3], 0.9) && f[4] == 1.0, "{f:?}");
        assert!(close(f[5], 1.9 / 3.0), "{f:?}");
        // Alone: distances at the reach, no neighbours.
        assert_eq!(
            c[5],
            Some([CONTEXT_REACH_MM, CONTEXT_REACH_MM, 0.0, 0.0, 0.0, 0.0])
        );
    }

    /// Context over the accepted regions only, with numpy's interpolated quantiles: peaks 0.1,
    /// 0.2, ..., 0.5 give median 0.3, q10 0.14, q90 0.46, and the 0.5 dot sits at
    /// (0.5 - 0.3) / 0.32 of the spread. A rejected region has no features and does not count.
    #[test]
    fn tree_features_place_each_dot_among_its_frame() {
        let mut regions: Vec<(Region, Option<DotKind>)> = (1..=5)
            .map(|k| (region(0.0, 3.0, 0.1 * k as f32), Some(DotKind::Follicle)))
            .collect();
        regions.push((region(0.0, 3.0, 0.99), None));
        let f = tree_features(&regions, 20.0);
        assert!(f[5].is_none());
        let names = tree_feature_names();
        let at = |n: &str| names.iter().position(|x| x == n).expect(n);
        let x = f[4].expect("accepted");
        // Peaks are f32.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(close(x[at("peak")], 0.5), "{}", x[at("peak")]);
        assert!(close(x[at("radius_mm")], 0.15));
        assert!(close(x[at("peak_median")], 0.3), "{}", x[at("peak_median")]);
        assert!(close(x[at("peak_q10")], 0.14), "{}", x[at("peak_q10")]);
        assert!(close(x[at("peak_q90")], 0.46), "{}", x[at("peak_q90")]);
        assert!(
            close(x[at("peak_relative")], 0.2 / 0.32),
            "{}",
            x[at("peak_relative")]
        );
        // Every dot measures the same radius: the relative position stays finite (zero).
        assert!(close(x[at("radius_mm_relative")], 0.0));
        assert!(tree_features(&regions[5..], 20.0)[0].is_none());
        // A rejected region among accepted ones changes nothing for the others.
        let mut mixed = regions[..5].to_vec();
        mixed.insert(2, (region(0.0, 3.0, 0.99), None));
        let g = tree_features(&mixed, 20.0);
        assert!(g[2].is_none());
        assert_eq!(g[5], f[4]);
        assert_eq!(g[0], f[0]);
    }

    /// Two clear populations that a biased global rule splits badly: the frame's mixture puts
    /// every dot with its own kind.
    #[test]
    fn the_frame_split_corrects_a_biased_rule() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut regions = Vec::new();
        let mut truth = Vec::new();
        for k in 0..400 {
            let pigment = k % 3 == 0;
            let (c, r) = if pigment { (-0.4, 4.0) } else { (0.0, 2.5) };
            regions.push((
                region(
                    c + rng.gen_range(-0.08..0.08),
                    r + rng.gen_range(-0.6..0.6),
                    0.4 + rng.gen_range(-0.1f32..0.1),
                ),
                Some(DotKind::Follicle),
            ));
            truth.push(pigment);
        }
        // The rule: right in the middle of each population, wrong on its edge.
        let logits: Vec<f64> = regions
            .iter()
            .map(|(r, _)| 3.0 * (r.radius_px - 3.8) - 2.0 * r.chroma_rb)
            .collect();
        let rule_right = regions
            .iter()
            .zip(&logits)
            .zip(&truth)
            .filter(|((_, &l), &t)| (l > 0.0) == t)
            .count();
        refine_kinds(&mut regions, &logits, None, 20.0);
        let right = regions
            .iter()
            .zip(&truth)
            .filter(|((_, k), &t)| (*k == Some(DotKind::Pigment)) == t)
            .count();
        assert!(rule_right < 390, "the rule is biased: {rule_right}");
        assert_eq!(right, 400, "rule {rule_right}, mixture {right}");
    }

    /// Two kinds that overlap in every classical feature (faint ink at low resolution looks
    /// like hair): the mixture alone cannot separate them, the model's log-odds as one more
    /// feature can.
    #[test]
    fn the_models_opinion_separates_what_the_pixels_cannot() {
        // The trees right on 95% of the dots: the model corrects the rest.
        let (truth, logits, model, mut regions) = overlapping_kinds(0.95);
        let right = |regions: &[(Region, Option<DotKind>)]| {
            regions
                .iter()
                .zip(&truth)
                .filter(|((_, k), &t)| (*k == Some(DotKind::Pigment)) == t)
                .count()
        };
        let mut without = regions.clone();
        refine_kinds(&mut without, &logits, None, 20.0);
        refine_kinds(&mut regions, &logits, Some(&model), 20.0);
        assert!(right(&without) < 392, "pixels alone: {}", right(&without));
        assert_eq!(right(&regions), 400, "with the model: {}", right(&regions));
    }

    #[test]
    fn a_split_that_overturns_many_of_the_trees_calls_is_not_used() {
        // The trees right on 80% of the dots: the same split would overturn a fifth of their
        // calls (more than `MAX_OVERTURNED`), so the kinds are left as they were.
        let (_, logits, model, mut regions) = overlapping_kinds(0.8);
        let before: Vec<Option<DotKind>> = regions.iter().map(|(_, k)| *k).collect();
        refine_kinds(&mut regions, &logits, Some(&model), 20.0);
        let after: Vec<Option<DotKind>> = regions.iter().map(|(_, k)| *k).collect();
        assert_eq!(after, before);
        // The same frame with trees right on 95% of the dots is refined.
        let (_, logits, model, mut regions) = overlapping_kinds(0.95);
        refine_kinds(&mut regions, &logits, Some(&model), 20.0);
        assert!(regions.iter().any(|(_, k)| *k == Some(DotKind::Pigment)));
    }

    /// 400 dots of two kinds that look alike (a third pigment): the truth, the trees' log-odds
    /// (right on `share_right` of the dots), a sure and right model's log-odds, and the regions
    /// (all called follicles so far).
    #[allow(clippy::type_complexity)]
    fn overlapping_kinds(
        share_right: f64,
    ) -> (
        Vec<bool>,
        Vec<f64>,
        Vec<f64>,
        Vec<(Region, Option<DotKind>)>,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut regions = Vec::new();
        let mut truth = Vec::new();
        let mut model = Vec::new();
        for k in 0..400 {
            let pigment = k % 3 == 0;
            regions.push((
                region(
                    rng.gen_range(-0.2..0.2),
                    rng.gen_range(2.0..4.0),
                    rng.gen_range(0.3f32..0.5),
                ),
                Some(DotKind::Follicle),
            ));
            truth.push(pigment);
            // The model is sure, and right: log-odds about +-3.
            let m: f64 = rng.gen_range(2.0..4.0);
            model.push(if pigment { m } else { -m });
        }
        let logits: Vec<f64> = truth
            .iter()
            .map(|&t| {
                let l: f64 = rng.gen_range(1.5..5.0);
                if t == rng.gen_bool(share_right) {
                    l
                } else {
                    -l
                }
            })
            .collect();
        (truth, logits, model, regions)
    }

    /// One population only (no pigment on the skin yet) whose tail the rule calls pigment,
    /// weakly: no ink, every dot is a follicle.
    #[test]
    fn a_frame_without_ink_is_all_follicles() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut regions: Vec<(Region, Option<DotKind>)> = (0..300)
            .map(|_| {
                (
                    region(rng.gen_range(-0.1..0.1), rng.gen_range(2.0..3.0), 0.4),
                    Some(DotKind::Follicle),
                )
            })
            .collect();
        let logits: Vec<f64> = regions
            .iter()
            .map(|(r, _)| 4.0 * (r.radius_px - 2.7))
            .collect();
        for (r, l) in regions.iter_mut().zip(&logits) {
            r.1 = Some(if *l > 0.0 {
                DotKind::Pigment
            } else {
                DotKind::Follicle
            });
        }
        assert!(regions.iter().any(|r| r.1 == Some(DotKind::Pigment)));
        refine_kinds(&mut regions, &logits, None, 20.0);
        assert!(regions.iter().all(|r| r.1 == Some(DotKind::Follicle)));
    }

    #[test]
    fn rejected_regions_stay_rejected() {
        let mut regions = vec![(region(0.0, 2.0, 0.3), None); 50];
        let logits = vec![2.0; 50];
        refine_kinds(&mut regions, &logits, None, 20.0);
        assert!(regions.iter().all(|r| r.1.is_none()));
    }
}
