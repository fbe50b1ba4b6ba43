//! Classical follicle-opening detection for dermoscope (trichoscopy) frames, 100+ px/mm.
//!
//! At 20-70x a follicular unit is not a dot: its 1-4 hair shafts leave one opening in the skin
//! and run out from it. The detector traces the shafts, decides which end of each is its root
//! (where it leaves the skin) and which is its cut tip, and reports one opening per unit.
//!
//! # Algorithm
//! 1. **Field.** Rows of a burned-in text bar (top or bottom rows that are almost all neutral
//!    grey: skin never is) and the dark rim outside the dermoscope's ring light are outside the
//!    field; nothing is found there and a shaft that reaches them leaves the field.
//! 2. **Darkness.** The frame is block-averaged to about `WORKING_PX_PER_MM` (shafts 60-110 um
//!    stay 6-11 px wide), on a red-weighted luminance so that red vessels and the brown pigment
//!    network fade against hair, which is dark in every channel. Darkness is relative to the
//!    local skin level (a box mean with the shafts clipped out), so skin tone and uneven light
//!    cancel.
//! 3. **Ridges.** A multi-scale Hessian line filter (scale-normalised largest negative
//!    curvature of the darkness, Lindeberg 1998) gives a ridge strength and a direction per
//!    pixel; non-maximum suppression across the ridge and hysteresis on strength and darkness
//!    give thin centrelines.
//! 4. **Shafts.** Centreline pixels where the line continues on one side only are ends. From
//!    each end the shaft is traced along its centreline by direction continuity, jumping short
//!    gaps, so crossing shafts are followed straight through the crossing (their Hessian is
//!    ambiguous there). Traces that are short, crooked, or run along a side that stays dark
//!    far out (the rim of a mole or a pigment dot) are not hair; traces that mostly repeat a
//!    longer one are the same shaft (or a shaft of the same unit).
//! 5. **Root or tip.** At each end the darkness profile along the shaft gives the exit (where
//!    the darkness falls under `exit_fraction` of the shaft's) and the cues a root has and a cut
//!    tip has not: behind a root the shaft is still seen dimly through the epidermis, with the
//!    opening's pit; the hairs of a unit overlap as they leave their opening (a wider end) and
//!    spread toward their tips (a tip has its siblings' tips around it, off its axis). An end
//!    that leaves the field, or past which the shaft runs on under a crossing one, or that lies
//!    on the body of another shaft (the arm of a unit's Y, a stop at a crossing), is not a seen
//!    opening. Hairs of a scalp region grow the same way, so near-parallel neighbours vote on
//!    each shaft's direction. A gradient-boosted tree ensemble ([`super::generated::roots_model`], fitted
//!    by `models/train/fit_roots.py` on the cues of both ends that `examples/derm_ends.rs`
//!    writes for training seeds 100-199 and 1000-1199) gives each end's probability of being the opening;
//!    the likelier end is reported when it reaches `root_min_probability`. (The hand-weighted
//!    rule it replaced, own cues plus the vote, is kept behind `root_min_probability > 1`: on
//!    check seeds 200-239 it scores F1 0.721 where the classifiers score 0.777.)
//! 6. **Units.** Roots closer than `unit_merge_mm` are one follicular unit: one detection at
//!    their mean, in pixels of the input image. Round, dark, blue-grey blobs of 0.07-0.4 mm
//!    radius are healed pigment dots (carbon ink under the skin reads blue-grey; moles brown).
//! 7. **Vellus openings.** A miniaturised hair is too thin and pale to trace; its opening is a
//!    small round pit in clean skin ([`super::pits`]), reported when no unit is already there.
//!
//! Every threshold is in millimetres or a dimensionless ratio ([`ShaftParams`]); the defaults
//! were fitted on synthetic training seeds 100-139 (`examples/derm_eval.rs`) and checked on
//! held-out seeds only; the two classifiers were fitted on seeds 100-199 and 1000-1199. A 1280x1024 frame at
//! 300 px/mm takes about 30 ms on one core (tracing 14 ms, pits 15 ms).

use image::RgbImage;

use super::field::text_bar_rows;
use super::generated::roots_model::ROOT_MODEL;
use crate::frame::{Detection, DotKind};
use crate::perception::filter::{box_mean, gaussian, red_weighted_blocks, BoxStream, Plane};

/// Scale the detector works at (px/mm).
pub const WORKING_PX_PER_MM: f64 = 100.0;
/// Radius of the box that estimates the local skin level.
const BACKGROUND_RADIUS_MM: f64 = 0.5;
/// Pixels whose skin level is under this share of the frame's median are outside the field
/// (the dark rim of the ring light).
const FIELD_MIN_RATIO: f32 = 0.5;
/// Margin kept below (above) a text bar.
const BAR_MARGIN_MM: f64 = 0.03;
/// Bright lines narrower than twice this are removed (grey opening) before the ridges.
const OPENING_MM: f64 = 0.02;
/// Scales of the ridge filter (Gaussian sigma): thin vellus hairs up to thick shafts.
const RIDGE_SCALES_MM: [f64; 3] = [0.01, 0.018, 0.03];
/// Farthest distance to the field's edge an end's cues measure (mm).
const EDGE_LOOK_MM: f64 = 0.2;
/// An end within this distance of the field's edge leaves the field.
const EDGE_MARGIN_MM: f64 = 0.04;
/// How far past a centreline pixel the line is looked for when testing for an end.
const END_LOOK_MM: f64 = 0.05;
/// Half angle of the cone in which a line continues (degrees).
const CONTINUE_CONE_DEG: f64 = 35.0;
/// Largest gap a trace jumps (a crossing, a break in the centreline).
const GAP_MM: f64 = 0.12;
/// Most hairs a follicular unit is reported with (units of 5 or more are rare on the scalp).
pub const MAX_HAIRS: u8 = 4;
/// Longest trace (longer hairs are followed this far from each end).
const MAX_TRACE_MM: f64 = 8.0;
/// Distance from an end over which the shaft's direction is measured.
const AXIS_MM: f64 = 0.15;
/// Range inside the shaft (from its end) that gives its reference darkness.
const REF_RANGE_MM: (f64, f64) = (0.05, 0.2);
/// Range of the exit search along the axis: inside, outside.
const EXIT_SEARCH_MM: (f64, f64) = (0.15, 0.25);
/// Range behind the exit where the shaft under the skin (or clear skin) is measured.
const BEHIND_MM: (f64, f64) = (0.02, 0.12);
/// Range just inside the exit where a root fades in.
const FADE_MM: (f64, f64) = (0.01, 0.05);
/// Range past an end where a shaft that runs on under a crossing one is seen again.
const CONTINUES_MM: (f64, f64) = (0.15, 0.35);
/// Part of a shaft at each end that is not its body (another shaft's end there shares its
/// opening rather than joining it).
const JUNCTION_GUARD_MM: f64 = 0.12;
/// Half width of a shaft's body when testing whether another shaft ends on it.
const JUNCTION_REACH_MM: f64 = 0.03;
/// Radii of the ring around an exit where a peripilar halo is measured.
const HALO_RING_MM: (f64, f64) = (0.08, 0.15);
/// Distance inside the exit where the shaft's width is measured.
const WIDTH_AT_MM: f64 = 0.06;
/// Offsets across a shaft at which its sides are measured.
const SIDE_MM: [f64; 3] = [0.08, 0.16, 0.24];
/// Radius range of a healed pigment dot (equivalent disc of its dark pixels).
const PIGMENT_RADIUS_MM: (f64, f64) = (0.07, 0.4);
/// Radius reported for an opening.
pub const OPENING_RADIUS_MM: f64 = 0.06;
/// Radius reported for a pit (a vellus hair's opening), mm.
pub const PIT_RADIUS_MM: f64 = 0.02;
/// A pit this close to a reported opening is that opening (mm).
const PIT_CLEARANCE_MM: f64 = 0.1;

/// The tunable thresholds of the shaft detector, in millimetres or ratios.
#[derive(Debug, Clone, PartialEq)]
pub struct ShaftParams {
    /// Ridge strength (scale-normalised, in darkness units) that seeds a centreline.
    pub ridge_high: f32,
    /// Ridge strength a centreline grows through.
    pub ridge_low: f32,
    /// Darkness (relative to the skin) a centreline pixel needs.
    pub min_darkness: f32,
    /// Shortest shaft.
    pub min_length_mm: f64,
    /// Mean darkness under which a shaft counts as faint (vellus) and must be longer.
    pub faint_darkness: f32,
    /// Shortest faint shaft.
    pub faint_min_length_mm: f64,
    /// Least end-to-end distance over path length.
    pub min_straightness: f64,
    /// Least straightness of a faint shaft (the pigment network's walls wander).
    pub faint_min_straightness: f64,
    /// A path sample is line-like when both sides at `SIDE_MM` are darker than this share of
    /// its centre at most.
    pub side_ratio: f32,
    /// Least share of line-like samples along a shaft.
    pub min_line_share: f64,
    /// Share of a trace already covered by longer shafts above which it is a repeat.
    pub max_covered: f64,
    /// Weight of the fade-in cue against the behind-the-exit cue.
    pub fade_weight: f64,
    /// Weight of the width near the end (per mm): the hairs of a unit overlap at their root.
    pub width_weight: f64,
    /// Weight of the darkness around the end, off the shaft: near a tip lie the tips of the
    /// unit's other hairs.
    pub halo_weight: f64,
    /// An end past which the darkness stays at least this share of the shaft's is not an end
    /// (the shaft runs on under a crossing one).
    pub continues_ratio: f64,
    /// Root evidence given to an end that leaves the field.
    pub leave_evidence: f64,
    /// The exit is where the darkness falls under this share of the shaft's.
    pub exit_fraction: f64,
    /// Largest own margin (root evidence difference) a shaft votes with.
    pub vote_clamp: f64,
    /// Distance scale of the neighbours' vote on growth direction.
    pub consensus_radius_mm: f64,
    /// Weight of the neighbours' vote.
    pub consensus_weight: f64,
    /// Roots closer than this are one follicular unit.
    pub unit_merge_mm: f64,
    /// Darkness of a healed pigment dot's pixels.
    pub pigment_darkness: f32,
    /// Most main-over-minor axis ratio of a pigment dot.
    pub pigment_max_elongation: f64,
    /// Least area over the ellipse of its moments.
    pub pigment_min_fill: f64,
    /// Least blue/red of the dot over blue/red of the skin around it.
    pub pigment_min_blueness: f64,
    /// Least probability ([`super::generated::roots_model`]) for a shaft's likelier end to be reported as
    /// its opening; above 1 the hand rule decides instead (own cues plus the neighbours' vote;
    /// an end that leaves the field is no opening).
    pub root_min_probability: f64,
    /// Least probability ([`super::pits`]) for a pit with no traced shaft to be reported as an
    /// opening; above 1 no pits are reported.
    pub pit_min_probability: f64,
}

impl Default for ShaftParams {
    fn default() -> Self {
        Self {
            ridge_high: 0.08,
            ridge_low: 0.03,
            min_darkness: 0.05,
            min_length_mm: 0.12,
            faint_darkness: 0.15,
            faint_min_length_mm: 0.3,
            min_straightness: 0.85,
            faint_min_straightness: 0.85,
            side_ratio: 0.6,
            min_line_share: 0.6,
            max_covered: 0.6,
            fade_weight: 0.0,
            width_weight: 10.0,
            halo_weight: 2.0,
            exit_fraction: 0.8,
            leave_evidence: 1.0,
            continues_ratio: 0.4,
            vote_clamp: 0.3,
            consensus_radius_mm: 1.0,
            consensus_weight: 1.0,
            unit_merge_mm: 0.3,
            pigment_darkness: 0.2,
            pigment_max_elongation: 1.6,
            pigment_min_fill: 0.8,
            pigment_min_blueness: 1.0,
            root_min_probability: 0.4,
            pit_min_probability: 0.5,
        }
    }
}

/// Detects follicle openings in a dermoscope frame at `px_per_mm` with the default thresholds.
pub fn detect_openings(image: &RgbImage, px_per_mm: f64) -> Vec<Detection> {
    detect_openings_with(image, px_per_mm, &ShaftParams::default())
}

/// The working planes of one frame.
struct Work {
    w: usize,
    h: usize,
    /// Working px per mm.
    ppm: f64,
    /// Relative darkness, 0 outside the field.
    dark: Vec<f32>,
    /// Outside the field.
    outside: Vec<bool>,
    /// Blue over red (carbon ink under the skin reads blue-grey; moles and hair brown).
    blue: Vec<f32>,
    /// Unit tangent (along the ridge).
    tangent: Vec<(f32, f32)>,
    /// Centreline pixels.
    line: Vec<bool>,
}

impl Work {
    /// Bilinear darkness at working coordinates (pixel centres at +0.5).
    fn dark_at(&self, x: f64, y: f64) -> f32 {
        let (x, y) = (x - 0.5, y - 0.5);
        if x < 0.0 || y < 0.0 || x > (self.w - 1) as f64 || y > (self.h - 1) as f64 {
            return 0.0;
        }
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let d = &self.dark;
        let top = d[y0 * self.w + x0] * (1.0 - fx) + d[y0 * self.w + x1] * fx;
        let bot = d[y1 * self.w + x0] * (1.0 - fx) + d[y1 * self.w + x1] * fx;
        top * (1.0 - fy) + bot * fy
    }

    /// Distance (px) from (x, y) to the frame's border or the nearest pixel outside the field,
    /// at most `cap`.
    fn edge_distance(&self, x: f64, y: f64, cap: f64) -> f64 {
        let mut best = x
            .min(y)
            .min(self.w as f64 - x)
            .min(self.h as f64 - y)
            .clamp(0.0, cap);
        let m = best.ceil() as i64;
        let (cx, cy) = (x.floor() as i64, y.floor() as i64);
        for yy in (cy - m).max(0)..=(cy + m).min(self.h as i64 - 1) {
            for xx in (cx - m).max(0)..=(cx + m).min(self.w as i64 - 1) {
                if self.outside[yy as usize * self.w + xx as usize] {
                    let d = (xx as f64 + 0.5 - x).hypot(yy as f64 + 0.5 - y);
                    best = best.min(d);
                }
            }
        }
        best
    }

    /// Whether (x, y) is within `margin` px of the frame's border or of the outside.
    fn near_edge(&self, x: f64, y: f64, margin: f64) -> bool {
        if x < margin || y < margin || x > self.w as f64 - margin || y > self.h as f64 - margin {
            return true;
        }
        let m = margin.ceil() as i64;
        let (cx, cy) = (x as i64, y as i64);
        (cy - m..=cy + m).any(|yy| {
            (cx - m..=cx + m).any(|xx| {
                xx >= 0
                    && yy >= 0
                    && (xx as usize) < self.w
                    && (yy as usize) < self.h
                    && self.outside[yy as usize * self.w + xx as usize]
            })
        })
    }
}

/// One traced shaft.
#[derive(Debug, Clone)]
struct Shaft {
    /// Centreline points from one end to the other (working px).
    path: Vec<(f64, f64)>,
    length: f64,
    mean_dark: f32,
}

/// Both ends of a traced shaft and where it lies.
#[derive(Debug, Clone, Copy)]
struct ShaftCue {
    /// The cues of its first and last path points.
    ends: [EndCue; 2],
    /// Unit vector from its first end to its last.
    axis: (f64, f64),
    /// Midpoint of its ends (working px).
    mid: (f64, f64),
}

/// What one end of a shaft says about being a root.
#[derive(Debug, Clone, Copy)]
struct EndCue {
    /// Where the shaft's darkness falls to half (working px).
    exit: (f64, f64),
    /// Root evidence: larger for a root.
    evidence: f64,
    /// Darkness behind the exit over the shaft's (the shaft under the skin, the pit).
    behind: f64,
    /// Darkness just inside the exit over the shaft's (a root fades in).
    fade: f64,
    /// Darkness around the exit, off the shaft's axis, over the shaft's (a peripilar halo).
    halo: f64,
    /// Width of the shaft near its end (mm).
    width_mm: f64,
    /// The end is within `EDGE_MARGIN_MM` of the field's edge.
    edge: bool,
    /// The end lies on the body of another shaft.
    on_body: bool,
    /// Darkness straight on past the end over the shaft's.
    beyond: f64,
    /// Distance from the exit to the field's edge (frame border, text bar, rim), mm, at most
    /// `EDGE_LOOK_MM`.
    edge_mm: f64,
}

impl EndCue {
    /// The end's opening cannot be seen: it leaves the field, lies on another shaft's body, or
    /// the shaft runs on past it (under a crossing shaft).
    fn leaves(&self, p: &ShaftParams) -> bool {
        self.edge || self.on_body || self.beyond >= p.continues_ratio
    }
}

/// Number of features [`EndRecord::features`] holds.
pub const END_FEATURES: usize = 20;

/// One end of a traced shaft as the root classifier sees it (see [`end_records`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndRecord {
    /// Where the shaft's darkness ends at this end, in input-image pixels.
    pub x: f64,
    /// See `x`.
    pub y: f64,
    /// The classifier's inputs: this end's cues, the other end's, the shaft's, and the hand
    /// margin and neighbour vote toward this end ([`feature_names`] names them).
    pub features: [f64; END_FEATURES],
}

/// The names of [`EndRecord::features`], in order.
pub fn feature_names() -> [&'static str; END_FEATURES] {
    [
        "edge",
        "on_body",
        "beyond",
        "behind",
        "fade",
        "halo",
        "width_mm",
        "o_edge",
        "o_on_body",
        "o_beyond",
        "o_behind",
        "o_fade",
        "o_halo",
        "o_width_mm",
        "length_mm",
        "mean_dark",
        "margin",
        "vote",
        "edge_mm",
        "o_edge_mm",
    ]
}

/// Every traced shaft's two ends with their cues, for fitting and checking the root classifier
/// (`examples/derm_ends.rs`).
pub fn end_records(image: &RgbImage, px_per_mm: f64, p: &ShaftParams) -> Vec<[EndRecord; 2]> {
    let Some(work) = prepare(image, px_per_mm, p) else {
        return Vec::new();
    };
    let shafts = trace_shafts(&work, p);
    let f = image.width() as f64 / work.w as f64;
    let fy = image.height() as f64 / work.h as f64;
    let a = analyse_shafts(&work, &shafts, p);
    (0..shafts.len())
        .map(|i| {
            [0, 1].map(|e| {
                let c = &a.cues[i].ends[e];
                EndRecord {
                    x: c.exit.0 * f,
                    y: c.exit.1 * fy,
                    features: a.features(&shafts, work.ppm, i, e),
                }
            })
        })
        .collect()
}

/// Root cues of every shaft, the hand margin and the neighbours' vote.
struct ShaftAnalysis {
    cues: Vec<ShaftCue>,
    /// Own margin: positive when the first end is the root.
    margin: Vec<f64>,
    /// Near-parallel neighbours' margins, weighted: positive when they say the first end.
    vote: Vec<f64>,
}

impl ShaftAnalysis {
    /// The classifier's features of end `e` (0 first, 1 last) of shaft `i` (`ppm`: working px
    /// per mm).
    fn features(&self, shafts: &[Shaft], ppm: f64, i: usize, e: usize) -> [f64; END_FEATURES] {
        let c = &self.cues[i].ends;
        let (me, other) = (&c[e], &c[1 - e]);
        let sign = if e == 0 { 1.0 } else { -1.0 };
        let cue = |k: &EndCue| {
            [
                f64::from(u8::from(k.edge)),
                f64::from(u8::from(k.on_body)),
                k.beyond,
                k.behind,
                k.fade,
                k.halo,
                k.width_mm,
            ]
        };
        let (a, b) = (cue(me), cue(other));
        let mut out = [0.0; END_FEATURES];
        out[..7].copy_from_slice(&a);
        out[7..14].copy_from_slice(&b);
        out[14] = shafts[i].length / ppm;
        out[15] = f64::from(shafts[i].mean_dark);
        out[16] = sign * self.margin[i];
        out[17] = sign * self.vote[i];
        out[18] = me.edge_mm;
        out[19] = other.edge_mm;
        out
    }
}

/// Computes every shaft's end cues, its own margin and its neighbours' vote.
fn analyse_shafts(work: &Work, shafts: &[Shaft], p: &ShaftParams) -> ShaftAnalysis {
    let owner = body_owners(work, shafts);
    // Root cues and the shaft's axis (from its first end to its second).
    let mut cues: Vec<ShaftCue> = Vec::with_capacity(shafts.len());
    for (k, s) in shafts.iter().enumerate() {
        let mut a = end_cue(work, &s.path, p);
        let rev: Vec<(f64, f64)> = s.path.iter().rev().copied().collect();
        let mut b = end_cue(work, &rev, p);
        // An end on the body of another shaft is where this one joins or crosses it (the arms
        // of a unit's Y, a stop at a crossing), not an opening.
        for e in [&mut a, &mut b] {
            let (x, y) = (e.exit.0.max(0.0) as usize, e.exit.1.max(0.0) as usize);
            if x < work.w && y < work.h {
                let o = owner[y * work.w + x];
                if o != u32::MAX && o as usize != k {
                    e.on_body = true;
                }
            }
        }
        let (p0, p1) = (s.path[0], s.path[s.path.len() - 1]);
        let n = (p1.0 - p0.0).hypot(p1.1 - p0.1).max(1e-9);
        let axis = ((p1.0 - p0.0) / n, (p1.1 - p0.1) / n);
        let mid = (0.5 * (p0.0 + p1.0), 0.5 * (p0.1 + p1.1));
        cues.push(ShaftCue {
            ends: [a, b],
            axis,
            mid,
        });
    }
    let margin: Vec<f64> = cues
        .iter()
        .map(|ShaftCue { ends: c, .. }| {
            // An end that leaves the field could be either: it weighs as a typical end.
            let ev = |e: &EndCue| {
                if e.leaves(p) {
                    p.leave_evidence
                } else {
                    e.evidence
                }
            };
            ev(&c[0]) - ev(&c[1])
        })
        .collect();
    let r_vote = p.consensus_radius_mm * work.ppm;
    let vote = cues
        .iter()
        .enumerate()
        .map(|(i, ShaftCue { axis, mid, .. })| {
            let mut vote = 0.0;
            for (j, cj) in cues.iter().enumerate() {
                if i == j {
                    continue;
                }
                let d2 = (mid.0 - cj.mid.0).powi(2) + (mid.1 - cj.mid.1).powi(2);
                let wgt = (-d2 / (2.0 * r_vote * r_vote)).exp();
                let align = axis.0 * cj.axis.0 + axis.1 * cj.axis.1;
                // Only near-parallel neighbours say which way this one grows.
                if align.abs() < 0.5 {
                    continue;
                }
                vote += wgt * margin[j].clamp(-p.vote_clamp, p.vote_clamp) * align;
            }
            vote
        })
        .collect();
    ShaftAnalysis { cues, margin, vote }
}

/// Detects follicle openings in a dermoscope frame at `px_per_mm` with thresholds `p`.
pub fn detect_openings_with(image: &RgbImage, px_per_mm: f64, p: &ShaftParams) -> Vec<Detection> {
    let _span = tracing::trace_span!("shafts", px_per_mm).entered();
    let Some(work) = prepare(image, px_per_mm, p) else {
        return Vec::new();
    };
    let shafts = trace_shafts(&work, p);
    let f = image.width() as f64 / work.w as f64;
    let fy = image.height() as f64 / work.h as f64;
    let ppm = work.ppm;
    let analysis = analyse_shafts(&work, &shafts, p);
    let mut roots: Vec<(f64, f64, f64)> = Vec::new();
    for (i, ShaftCue { ends: c, .. }) in analysis.cues.iter().enumerate() {
        let (margin, vote) = (analysis.margin[i], analysis.vote[i]);
        let (end, confidence) = if p.root_min_probability <= 1.0 {
            // The fitted classifier: the likelier end, if likely enough.
            let pa = ROOT_MODEL.probability(&analysis.features(&shafts, ppm, i, 0));
            let pb = ROOT_MODEL.probability(&analysis.features(&shafts, ppm, i, 1));
            let (end, prob) = if pa >= pb { (0, pa) } else { (1, pb) };
            if prob < p.root_min_probability {
                continue;
            }
            (end, prob)
        } else {
            // The hand rule: own margin plus the neighbours' vote; an end that leaves the
            // field is no opening.
            let total = margin + p.consensus_weight * vote;
            let end = if total >= 0.0 { 0 } else { 1 };
            if c[end].leaves(p) {
                continue;
            }
            (end, 0.5 + 0.5 * (total.abs() / (total.abs() + 0.3)))
        };
        let root = &c[end];
        tracing::trace!(
            x = root.exit.0 * f,
            y = root.exit.1 * fy,
            own = margin,
            vote,
            confidence,
            length_mm = shafts[i].length / ppm,
            "shaft"
        );
        roots.push((root.exit.0, root.exit.1, confidence));
    }
    // One detection per unit.
    let merge = p.unit_merge_mm * ppm;
    let mut units: Vec<(f64, f64, f64, f64)> = Vec::new(); // sum x, sum y, n, best confidence
    roots.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (x, y, c) in roots {
        match units
            .iter_mut()
            .find(|u| (u.0 / u.2 - x).hypot(u.1 / u.2 - y) < merge)
        {
            Some(u) => {
                u.0 += x;
                u.1 += y;
                u.2 += 1.0;
            }
            None => units.push((x, y, 1.0, c)),
        }
    }
    let mut out: Vec<Detection> = units
        .into_iter()
        .map(|(sx, sy, n, c)| Detection {
            x: sx / n * f,
            y: sy / n * fy,
            radius: OPENING_RADIUS_MM * px_per_mm,
            kind: DotKind::Follicle,
            score: c,
            // The roots merged into this unit, each a traced hair.
            hairs: Some((n.round() as u8).clamp(1, MAX_HAIRS)),
        })
        .collect();
    // Openings whose hair the tracer could not follow (vellus): round pits in clean skin.
    if p.pit_min_probability <= 1.0 {
        let near = PIT_CLEARANCE_MM * px_per_mm;
        for pit in super::pits::pit_candidates(image, px_per_mm) {
            if pit.probability < p.pit_min_probability
                || out.iter().any(|d| (d.x - pit.x).hypot(d.y - pit.y) < near)
            {
                continue;
            }
            out.push(Detection {
                x: pit.x,
                y: pit.y,
                radius: PIT_RADIUS_MM * px_per_mm,
                kind: DotKind::Follicle,
                score: pit.probability,
                // A pit is a vellus hair's opening: one hair.
                hairs: Some(1),
            });
        }
    }
    for dot in find_pigment(&work, p) {
        let too_close = out.iter().any(|d| {
            (d.x - dot.0 * f).hypot(d.y - dot.1 * fy) < dot.2 * f + OPENING_RADIUS_MM * px_per_mm
        });
        if !too_close {
            out.push(Detection {
                x: dot.0 * f,
                y: dot.1 * fy,
                radius: dot.2 * f,
                kind: DotKind::Pigment,
                score: dot.3,
                hairs: None,
            });
        }
    }
    out
}

/// Which shaft's body (its path less `JUNCTION_GUARD_MM` at each end, widened by
/// `JUNCTION_REACH_MM`) covers each working pixel; `u32::MAX` where none does.
fn body_owners(work: &Work, shafts: &[Shaft]) -> Vec<u32> {
    let (w, h, ppm) = (work.w, work.h, work.ppm);
    let mut owner = vec![u32::MAX; w * h];
    let guard = JUNCTION_GUARD_MM * ppm;
    let reach = (JUNCTION_REACH_MM * ppm).round().max(1.0) as i64;
    for (k, s) in shafts.iter().enumerate() {
        let (a, b) = (s.path[0], s.path[s.path.len() - 1]);
        for &(x, y) in &s.path {
            if (x - a.0).hypot(y - a.1) < guard || (x - b.0).hypot(y - b.1) < guard {
                continue;
            }
            let (cx, cy) = (x as i64, y as i64);
            for yy in (cy - reach).max(0)..=(cy + reach).min(h as i64 - 1) {
                for xx in (cx - reach).max(0)..=(cx + reach).min(w as i64 - 1) {
                    let i = yy as usize * w + xx as usize;
                    if owner[i] == u32::MAX {
                        owner[i] = k as u32;
                    }
                }
            }
        }
    }
    owner
}

/// Healed pigment dots (SMP): round, dark, blue-grey blobs of 0.1-0.3 mm radius. Returns
/// centre, radius (working px) and a score.
fn find_pigment(work: &Work, p: &ShaftParams) -> Vec<(f64, f64, f64, f64)> {
    let (w, h, ppm) = (work.w, work.h, work.ppm);
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let inside = |i: usize| work.dark[i] >= p.pigment_darkness && !work.outside[i];
    for start in 0..w * h {
        if seen[start] || !inside(start) {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut pix: Vec<usize> = Vec::new();
        while let Some(i) = stack.pop() {
            pix.push(i);
            let (x, y) = (i % w, i / w);
            let mut push = |j: usize| {
                if !seen[j] && inside(j) {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                push(i - 1);
            }
            if x + 1 < w {
                push(i + 1);
            }
            if y > 0 {
                push(i - w);
            }
            if y + 1 < h {
                push(i + w);
            }
        }
        let n = pix.len() as f64;
        let r_eq = (n / std::f64::consts::PI).sqrt();
        if r_eq < PIGMENT_RADIUS_MM.0 * ppm || r_eq > PIGMENT_RADIUS_MM.1 * ppm {
            continue;
        }
        let (mut mx, mut my) = (0.0, 0.0);
        for &i in &pix {
            mx += (i % w) as f64 + 0.5;
            my += (i / w) as f64 + 0.5;
        }
        mx /= n;
        my /= n;
        let (mut sxx, mut syy, mut sxy, mut dark, mut blue) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut touches = false;
        for &i in &pix {
            let (x, y) = (i % w, i / w);
            let (dx, dy) = (x as f64 + 0.5 - mx, y as f64 + 0.5 - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
            dark += f64::from(work.dark[i]);
            blue += f64::from(work.blue[i]);
            touches |= x == 0 || y == 0 || x + 1 == w || y + 1 == h;
        }
        if touches {
            continue;
        }
        let (sxx, syy, sxy) = (sxx / n, syy / n, sxy / n);
        let half_tr = 0.5 * (sxx + syy);
        let disc = (0.25 * (sxx - syy).powi(2) + sxy * sxy).sqrt();
        let (l1, l2) = (half_tr + disc, (half_tr - disc).max(1e-6));
        // A disc of radius r has both second moments r^2 / 4.
        let fill = n / (std::f64::consts::PI * 4.0 * (l1 * l2).sqrt());
        let elongation = (l1 / l2).sqrt();
        // Skin around: a ring at 1.5-2 radii.
        let (mut ring_blue, mut ring_n) = (0.0f64, 0.0f64);
        for k in 0..32 {
            let a = std::f64::consts::TAU * k as f64 / 32.0;
            for rr in [1.6, 2.0] {
                let (x, y) = (mx + a.cos() * rr * r_eq, my + a.sin() * rr * r_eq);
                if x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h {
                    let i = y as usize * w + x as usize;
                    if !work.outside[i] {
                        ring_blue += f64::from(work.blue[i]);
                        ring_n += 1.0;
                    }
                }
            }
        }
        let blueness = (blue / n) / (ring_blue / ring_n.max(1.0)).max(1e-3);
        tracing::trace!(
            x = mx,
            y = my,
            r_mm = r_eq / ppm,
            fill,
            elongation,
            dark = dark / n,
            blueness,
            "pigment candidate"
        );
        if elongation > p.pigment_max_elongation
            || fill < p.pigment_min_fill
            || blueness < p.pigment_min_blueness
            || ring_n < 16.0
        {
            continue;
        }
        out.push((mx, my, r_eq, (0.5 + dark / n).min(1.0)));
    }
    out
}

/// Steps 1-3: field, darkness, ridges and centrelines at the working scale.
fn prepare(image: &RgbImage, px_per_mm: f64, p: &ShaftParams) -> Option<Work> {
    let (w0, h0) = (image.width() as usize, image.height() as usize);
    let f = (px_per_mm / WORKING_PX_PER_MM).round().max(1.0) as usize;
    let (w, h) = (w0 / f, h0 / f);
    if w < 8 || h < 8 {
        return None;
    }
    let ppm = px_per_mm / f as f64;
    let (bar_top, bar_bottom) = text_bar_rows(image);
    // Red-weighted luminance and blue over red, block-averaged.
    let (mut luma, mut blue) = (Plane::default(), Plane::default());
    red_weighted_blocks(image, f, &mut luma, &mut blue);
    // A grey opening removes bright lines narrower than `OPENING_MM`: the specular line along
    // a shaft would otherwise split it into two thin dark ridges.
    let open_r = ((OPENING_MM * ppm).round() as usize).max(1);
    for _ in 0..open_r {
        min3(&mut luma, true);
    }
    for _ in 0..open_r {
        min3(&mut luma, false);
    }
    // Rows of the text bar (and a margin) are outside; so is the dark rim.
    let bar_margin = (BAR_MARGIN_MM * px_per_mm).ceil() as usize;
    let top_rows = if bar_top > 0 {
        (bar_top + bar_margin).div_ceil(f)
    } else {
        0
    };
    let bottom_rows = if bar_bottom > 0 {
        (bar_bottom + bar_margin).div_ceil(f)
    } else {
        0
    };
    let in_bar = |y: usize| y < top_rows || y + bottom_rows >= h;
    // Skin level with the dark shafts clipped out; bar rows take the level of the field.
    let (mut skin, mut scratch) = (Plane::default(), BoxStream::default());
    let r_bg = (BACKGROUND_RADIUS_MM * ppm).round().max(2.0) as usize;
    let mut levels: Vec<f32> = (0..h)
        .filter(|&y| !in_bar(y))
        .flat_map(|y| luma.data[y * w..(y + 1) * w].iter().step_by(5).copied())
        .collect();
    if levels.is_empty() {
        return None;
    }
    let mid = levels.len() / 2;
    let median = *levels.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut src = luma.clone();
    for y in 0..h {
        if in_bar(y) {
            src.data[y * w..(y + 1) * w].fill(median);
        }
    }
    box_mean(&src, &mut skin, &mut scratch, r_bg);
    let mut clipped = src.clone();
    for (c, &s) in clipped.data.iter_mut().zip(&skin.data) {
        *c = c.clamp(0.8 * s, 1.05 * s);
    }
    box_mean(&clipped, &mut skin, &mut scratch, r_bg);
    let field_min = FIELD_MIN_RATIO * median;
    let outside: Vec<bool> = (0..w * h)
        .map(|i| in_bar(i / w) || skin.data[i] < field_min)
        .collect();
    let dark: Vec<f32> = (0..w * h)
        .map(|i| {
            if outside[i] {
                0.0
            } else {
                ((skin.data[i] - luma.data[i]) / skin.data[i].max(1.0)).max(0.0)
            }
        })
        .collect();
    // Multi-scale ridges of the darkness.
    let mut ridge = vec![0.0f32; w * h];
    let mut tangent = vec![(0.0f32, 0.0f32); w * h];
    let mut normal = vec![(0i8, 0i8); w * h];
    let mut g = Plane::default();
    for &s_mm in &RIDGE_SCALES_MM {
        let s = (s_mm * ppm).max(0.7);
        gaussian(&dark, w, h, s, &mut g);
        let s2 = (s * s) as f32;
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let i = y * w + x;
                let c = g.data[i];
                let dxx = g.data[i + 1] - 2.0 * c + g.data[i - 1];
                let dyy = g.data[i + w] - 2.0 * c + g.data[i - w];
                let dxy = 0.25
                    * (g.data[i + w + 1] - g.data[i + w - 1] - g.data[i - w + 1]
                        + g.data[i - w - 1]);
                let half_tr = 0.5 * (dxx + dyy);
                let disc = (0.25 * (dxx - dyy) * (dxx - dyy) + dxy * dxy).sqrt();
                let l1 = half_tr - disc;
                let v = s2 * (-l1).max(0.0);
                if v > ridge[i] {
                    ridge[i] = v;
                    // Normal: eigenvector of l1.
                    let (mut nx, mut ny) = (dxy, l1 - dxx);
                    if nx.abs() + ny.abs() < 1e-9 {
                        (nx, ny) = (l1 - dyy, dxy);
                    }
                    let n = nx.hypot(ny).max(1e-12);
                    let (nx, ny) = (nx / n, ny / n);
                    tangent[i] = (-ny, nx);
                    normal[i] = (nx.round() as i8, ny.round() as i8);
                }
            }
        }
    }
    // Non-maximum suppression across the ridge, then hysteresis.
    let mut cand = vec![0u8; w * h]; // 0 none, 1 weak, 2 strong
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let v = ridge[i];
            if v < p.ridge_low || dark[i] < p.min_darkness {
                continue;
            }
            let (nx, ny) = normal[i];
            let j1 = ((y as i64 + ny as i64) * w as i64 + x as i64 + nx as i64) as usize;
            let j2 = ((y as i64 - ny as i64) * w as i64 + x as i64 - nx as i64) as usize;
            if v >= ridge[j1] && v > ridge[j2] || v > ridge[j1] && v >= ridge[j2] {
                cand[i] = if v >= p.ridge_high { 2 } else { 1 };
            }
        }
    }
    let mut line = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..w * h {
        if cand[i] == 2 && !line[i] {
            line[i] = true;
            stack.push(i);
            while let Some(k) = stack.pop() {
                let (x, y) = (k % w, k / w);
                for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let j = ny * w + nx;
                        if cand[j] > 0 && !line[j] {
                            line[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
        }
    }
    Some(Work {
        w,
        h,
        ppm,
        dark,
        outside,
        blue: blue.data,
        tangent,
        line,
    })
}

/// 3x3 grey-level erosion (`min`) or dilation of `p`, in place (separable).
fn min3(p: &mut Plane, min: bool) {
    let (w, h) = (p.width, p.height);
    let src = p.data.clone();
    {
        let dst = &mut p.data;
        let pick = |a: f32, b: f32| if min { a.min(b) } else { a.max(b) };
        let mut rows = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let mut v = src[i];
                if x > 0 {
                    v = pick(v, src[i - 1]);
                }
                if x + 1 < w {
                    v = pick(v, src[i + 1]);
                }
                rows[i] = v;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let mut v = rows[i];
                if y > 0 {
                    v = pick(v, rows[i - w]);
                }
                if y + 1 < h {
                    v = pick(v, rows[i + w]);
                }
                dst[i] = v;
            }
        }
    }
}

/// Step 4: ends, traces, and the shafts that are hair.
fn trace_shafts(work: &Work, p: &ShaftParams) -> Vec<Shaft> {
    let (w, h, ppm) = (work.w, work.h, work.ppm);
    let look = (END_LOOK_MM * ppm).max(3.0);
    let cos_cone = CONTINUE_CONE_DEG.to_radians().cos();
    let reach = look.ceil() as i64;
    let offsets: Vec<(i64, i64, f64, f64)> = (-reach..=reach)
        .flat_map(|dy| (-reach..=reach).map(move |dx| (dx, dy)))
        .filter_map(|(dx, dy)| {
            let r = ((dx * dx + dy * dy) as f64).sqrt();
            (r >= 1.0 && r <= look).then(|| (dx, dy, dx as f64 / r, dy as f64 / r))
        })
        .collect();
    // Ends: the line continues on one side only.
    let mut ends: Vec<(usize, (f64, f64))> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !work.line[i] {
                continue;
            }
            let (tx, ty) = work.tangent[i];
            let (tx, ty) = (f64::from(tx), f64::from(ty));
            let (mut fwd, mut bwd) = (false, false);
            for &(dx, dy, ux, uy) in &offsets {
                let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                if xx < 0 || yy < 0 || xx >= w as i64 || yy >= h as i64 {
                    continue;
                }
                if !work.line[yy as usize * w + xx as usize] {
                    continue;
                }
                let c = ux * tx + uy * ty;
                if c >= cos_cone {
                    fwd = true;
                } else if c <= -cos_cone {
                    bwd = true;
                }
                if fwd && bwd {
                    break;
                }
            }
            if fwd != bwd {
                let dir = if fwd { (tx, ty) } else { (-tx, -ty) };
                ends.push((i, dir));
            }
        }
    }
    // Trace from every end; the longest first claim their pixels.
    let mut traces: Vec<Shaft> = ends
        .iter()
        .filter_map(|&(i, dir)| trace(work, i, dir))
        .collect();
    traces.sort_by(|a, b| b.length.total_cmp(&a.length));
    let mut claimed = vec![false; w * h];
    let mut out = Vec::new();
    let claim_r = 2i64;
    for t in traces {
        let covered = t
            .path
            .iter()
            .filter(|&&(x, y)| claimed[y as usize * w + x as usize])
            .count() as f64
            / t.path.len() as f64;
        if covered > p.max_covered {
            continue;
        }
        if !is_hair(work, &t, p) {
            continue;
        }
        for &(x, y) in &t.path {
            let (cx, cy) = (x as i64, y as i64);
            for yy in (cy - claim_r).max(0)..=(cy + claim_r).min(h as i64 - 1) {
                for xx in (cx - claim_r).max(0)..=(cx + claim_r).min(w as i64 - 1) {
                    claimed[yy as usize * w + xx as usize] = true;
                }
            }
        }
        out.push(t);
    }
    out
}

/// Follows the centreline from pixel `start` heading `dir`; `None` when it is a lone pixel.
fn trace(work: &Work, start: usize, dir: (f64, f64)) -> Option<Shaft> {
    let (w, h, ppm) = (work.w, work.h, work.ppm);
    let gap = (GAP_MM * ppm).ceil() as i64;
    let max_steps = (MAX_TRACE_MM * ppm) as usize;
    let cos_step = 40f64.to_radians().cos();
    let cos_gap = 20f64.to_radians().cos();
    let mut cur = (start % w, start / w);
    let mut d = dir;
    let mut path = vec![(cur.0 as f64 + 0.5, cur.1 as f64 + 0.5)];
    let mut length = 0.0;
    let mut recent: Vec<usize> = vec![start];
    let mut dark_sum = f64::from(work.dark[start]);
    for _ in 0..max_steps {
        let mut best: Option<((usize, usize), f64)> = None;
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                if dx == 0 && dy == 0 {
                    continue;
                }
                let (xx, yy) = (cur.0 as i64 + dx, cur.1 as i64 + dy);
                if xx < 0 || yy < 0 || xx >= w as i64 || yy >= h as i64 {
                    continue;
                }
                let j = yy as usize * w + xx as usize;
                if !work.line[j] || recent.contains(&j) {
                    continue;
                }
                let n = ((dx * dx + dy * dy) as f64).sqrt();
                let c = (dx as f64 * d.0 + dy as f64 * d.1) / n;
                if c >= cos_step && best.is_none_or(|(_, bc)| c > bc) {
                    best = Some(((xx as usize, yy as usize), c));
                }
            }
        }
        if best.is_none() {
            // Jump a short gap straight ahead, onto a line running the same way.
            'gap: for k in 2..=gap {
                for side in [0i64, 1, -1, 2, -2] {
                    let lat = side as f64;
                    if lat.abs() > k as f64 * 0.36 {
                        continue;
                    }
                    let x = cur.0 as f64 + 0.5 + d.0 * k as f64 - d.1 * lat;
                    let y = cur.1 as f64 + 0.5 + d.1 * k as f64 + d.0 * lat;
                    if x < 0.0 || y < 0.0 || x >= w as f64 || y >= h as f64 {
                        break 'gap;
                    }
                    let j = y as usize * w + x as usize;
                    if !work.line[j] || recent.contains(&j) {
                        continue;
                    }
                    let (tx, ty) = work.tangent[j];
                    let c = (f64::from(tx) * d.0 + f64::from(ty) * d.1).abs();
                    if c >= cos_gap {
                        best = Some(((x as usize, y as usize), c));
                        break 'gap;
                    }
                }
            }
        }
        let Some(((nx, ny), _)) = best else { break };
        let j = ny * w + nx;
        let (sx, sy) = (nx as f64 - cur.0 as f64, ny as f64 - cur.1 as f64);
        length += sx.hypot(sy);
        let (tx, ty) = work.tangent[j];
        let (tx, ty) = (f64::from(tx), f64::from(ty));
        let sign = if tx * d.0 + ty * d.1 >= 0.0 {
            1.0
        } else {
            -1.0
        };
        let (ax, ay) = (0.6 * d.0 + 0.4 * sign * tx, 0.6 * d.1 + 0.4 * sign * ty);
        let n = ax.hypot(ay).max(1e-9);
        d = (ax / n, ay / n);
        cur = (nx, ny);
        path.push((nx as f64 + 0.5, ny as f64 + 0.5));
        dark_sum += f64::from(work.dark[j]);
        recent.push(j);
        if recent.len() > 12 {
            recent.remove(0);
        }
    }
    (path.len() >= 2).then(|| Shaft {
        mean_dark: (dark_sum / path.len() as f64) as f32,
        path,
        length,
    })
}

/// Whether a trace is a hair shaft: long and straight enough for its darkness, and darker
/// than the skin on both sides along most of it.
fn is_hair(work: &Work, s: &Shaft, p: &ShaftParams) -> bool {
    let ppm = work.ppm;
    let min_len = if s.mean_dark < p.faint_darkness {
        p.faint_min_length_mm
    } else {
        p.min_length_mm
    };
    if s.length < min_len * ppm {
        return false;
    }
    let (a, b) = (s.path[0], s.path[s.path.len() - 1]);
    let straightness = if s.mean_dark < p.faint_darkness {
        p.faint_min_straightness
    } else {
        p.min_straightness
    };
    if (b.0 - a.0).hypot(b.1 - a.1) < straightness * s.length {
        return false;
    }
    let step = 3usize;
    let (mut n, mut good) = (0usize, 0usize);
    for k in (0..s.path.len()).step_by(step) {
        let (x, y) = s.path[k];
        let i = y as usize * work.w + x as usize;
        let (tx, ty) = work.tangent[i];
        let (nx, ny) = (-f64::from(ty), f64::from(tx));
        let c = work.dark[i];
        // A side is filled when it stays dark at every offset: the inside of a mole or a
        // pigment dot, not a neighbouring hair.
        let filled = |sign: f64| {
            SIDE_MM.iter().all(|&o| {
                let o = sign * o * ppm;
                work.dark_at(x + nx * o, y + ny * o) > p.side_ratio * c
            })
        };
        n += 1;
        if !filled(1.0) && !filled(-1.0) {
            good += 1;
        }
    }
    let line_share = good as f64 / n.max(1) as f64;
    tracing::trace!(
        length_mm = s.length / ppm,
        dark = s.mean_dark,
        line_share,
        "trace"
    );
    line_share >= p.min_line_share
}

/// Step 5 at the end `path[0]` of a shaft: the exit and the root evidence.
fn end_cue(work: &Work, path: &[(f64, f64)], p: &ShaftParams) -> EndCue {
    let ppm = work.ppm;
    let p0 = path[0];
    // Axis from the end into the shaft.
    let axis_px = AXIS_MM * ppm;
    let far = path
        .iter()
        .find(|q| (q.0 - p0.0).hypot(q.1 - p0.1) >= axis_px)
        .copied()
        .unwrap_or(path[path.len() - 1]);
    let n = (far.0 - p0.0).hypot(far.1 - p0.1).max(1e-9);
    let u = ((far.0 - p0.0) / n, (far.1 - p0.1) / n);
    let total = {
        let q = path[path.len() - 1];
        (q.0 - p0.0).hypot(q.1 - p0.1)
    };
    let at = |s: f64| work.dark_at(p0.0 + u.0 * s, p0.1 + u.1 * s);
    let mean = |lo: f64, hi: f64, from: f64, sign: f64| {
        let steps = 8;
        (0..steps)
            .map(|k| {
                let s = lo + (hi - lo) * (k as f64 + 0.5) / steps as f64;
                f64::from(at(from + sign * s))
            })
            .sum::<f64>()
            / steps as f64
    };
    // Reference darkness inside the shaft.
    let hi = (REF_RANGE_MM.1 * ppm).min(0.8 * total).max(1.0);
    let lo = (REF_RANGE_MM.0 * ppm).min(0.4 * hi);
    let mut samples: Vec<f32> = (0..9)
        .map(|k| at(lo + (hi - lo) * k as f64 / 8.0))
        .collect();
    samples.sort_by(f32::total_cmp);
    let reference = f64::from(samples[4]).max(1e-3);
    // Exit: walking out along the centreline from inside the shaft to its end, then straight
    // on past it, the first point under `exit_fraction` of the reference. Along the
    // centreline, so that where the hairs of a unit part the walk stays on one of them.
    let threshold = p.exit_fraction * reference;
    let inside = (EXIT_SEARCH_MM.0 * ppm).min(0.5 * total);
    let k0 = path
        .iter()
        .position(|q| (q.0 - p0.0).hypot(q.1 - p0.1) >= inside)
        .unwrap_or(0);
    let mut exit = None;
    for k in (0..=k0).rev() {
        let q = path[k];
        if f64::from(work.dark_at(q.0, q.1)) < threshold {
            exit = Some(q);
            break;
        }
    }
    let exit_s = match exit {
        Some(q) => -((q.0 - p0.0) * u.0 + (q.1 - p0.1) * u.1),
        None => {
            let outside = EXIT_SEARCH_MM.1 * ppm;
            let mut s = 0.0;
            while s < outside && f64::from(at(-s)) >= threshold {
                s += 0.5;
            }
            s
        }
    };
    let exit_s = -exit_s;
    let exit = (p0.0 + u.0 * exit_s, p0.1 + u.1 * exit_s);
    let behind = mean(BEHIND_MM.0 * ppm, BEHIND_MM.1 * ppm, exit_s, -1.0) / reference;
    let fade = mean(FADE_MM.0 * ppm, FADE_MM.1 * ppm, exit_s, 1.0) / reference;
    // Around the exit, away from the shaft: a ring, leaving out a cone along the shaft.
    let (mut halo, mut halo_n) = (0.0f64, 0.0f64);
    for k in 0..24 {
        let a = std::f64::consts::TAU * k as f64 / 24.0;
        let (cx, cy) = (a.cos(), a.sin());
        if cx * u.0 + cy * u.1 > 0.5 {
            continue;
        }
        for r in [HALO_RING_MM.0, HALO_RING_MM.1] {
            let r = r * ppm;
            halo += f64::from(work.dark_at(exit.0 + cx * r, exit.1 + cy * r));
            halo_n += 1.0;
        }
    }
    let halo = halo / halo_n.max(1.0) / reference;
    // Width: darker than half the reference across the shaft, a little inside the exit.
    let (wx, wy) = (
        exit.0 + u.0 * WIDTH_AT_MM * ppm,
        exit.1 + u.1 * WIDTH_AT_MM * ppm,
    );
    let mut across = 0usize;
    for k in -20i32..=20 {
        let o = f64::from(k) * 0.5;
        if f64::from(work.dark_at(wx - u.1 * o, wy + u.0 * o)) >= 0.5 * reference {
            across += 1;
        }
    }
    let width_mm = across as f64 * 0.5 / ppm;
    let evidence =
        behind + p.fade_weight * (1.0 - fade) + p.width_weight * width_mm - p.halo_weight * halo;
    // Dark straight on past the end: the shaft runs on under another one (a crossing), or
    // the trace stopped short; either way this is not where it ends.
    let beyond = mean(CONTINUES_MM.0 * ppm, CONTINUES_MM.1 * ppm, exit_s, -1.0) / reference;
    let edge = work.near_edge(exit.0, exit.1, EDGE_MARGIN_MM * ppm)
        || work.near_edge(p0.0, p0.1, EDGE_MARGIN_MM * ppm);
    EndCue {
        exit,
        evidence,
        behind,
        fade,
        halo,
        width_mm,
        edge,
        on_body: false,
        beyond,
        edge_mm: work.edge_distance(exit.0, exit.1, EDGE_LOOK_MM * ppm) / ppm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat skin frame with dark straight shafts drawn from (x0, y0) toward `angle`, each with
    /// a dim continuation under the skin behind its root.
    fn frame(shafts: &[(f64, f64, f64, f64)], bar: bool) -> RgbImage {
        let (w, h) = (640u32, 512u32);
        let mut img = RgbImage::from_pixel(w, h, image::Rgb([200, 150, 135]));
        for y in 0..h {
            for x in 0..w {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let mut k: f64 = 1.0;
                for &(x0, y0, angle, len) in shafts {
                    let (dx, dy) = (angle.cos(), angle.sin());
                    let along = (px - x0) * dx + (py - y0) * dy;
                    let lateral = (-(px - x0) * dy + (py - y0) * dx).abs();
                    if (0.0..=len).contains(&along) && lateral < 12.0 {
                        k = k.min(0.25);
                    } else if (-50.0..0.0).contains(&along) && lateral < 10.0 {
                        k = k.min(1.0 - 0.35 * (1.0 + along / 50.0));
                    }
                }
                let p = img.get_pixel_mut(x, y);
                for c in p.0.iter_mut() {
                    *c = (f64::from(*c) * k) as u8;
                }
            }
        }
        if bar {
            for y in 0..30 {
                for x in 0..w {
                    let v = if (x / 8 + y / 6) % 3 == 0 { 230 } else { 20 };
                    img.put_pixel(x, y, image::Rgb([v, v, v]));
                }
            }
        }
        img
    }

    #[test]
    fn finds_the_root_of_each_shaft() {
        let shafts = [(150.0, 150.0, 0.3, 250.0), (200.0, 400.0, -0.2, 300.0)];
        let found = detect_openings(&frame(&shafts, false), 300.0);
        assert_eq!(found.len(), 2, "{found:?}");
        for &(x0, y0, _, _) in &shafts {
            let d = found
                .iter()
                .map(|d| (d.x - x0).hypot(d.y - y0))
                .fold(f64::INFINITY, f64::min);
            assert!(d < 12.0, "root ({x0}, {y0}) missed by {d:.1} px: {found:?}");
        }
    }

    #[test]
    fn crossing_shafts_give_two_roots() {
        let shafts = [(100.0, 250.0, 0.0, 420.0), (300.0, 80.0, 1.3, 380.0)];
        let found = detect_openings(&frame(&shafts, false), 300.0);
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn a_text_bar_is_ignored() {
        let img = frame(&[(150.0, 250.0, 0.3, 250.0)], true);
        assert_eq!(text_bar_rows(&img).0, 30);
        let found = detect_openings(&img, 300.0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found.iter().all(|d| d.y > 40.0));
    }

    #[test]
    fn blank_skin_has_no_openings() {
        assert!(detect_openings(&frame(&[], false), 300.0).is_empty());
    }
}
