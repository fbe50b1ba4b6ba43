//! Scores detections against the renderer's ground truth.
//!
//! The true dots are the follicular units and the pigment dots. A detection matches a true dot
//! when it lies within `max(2 px, radius + 1 px)` of it (for a unit: of its opening or of any of
//! its hairs), one to one, closest pairs first. Detections that match nothing and lie on a
//! negative (scar, mole, strand, glare) are counted as "on negatives".
//!
//! The dermoscope bar is on follicle openings alone (one per follicular unit), so the openings
//! are also scored on their own: detections of kind follicle against the units, matched the
//! same way ([`Score::openings_f1`]).

use serde::Serialize;

use crate::frame::{Detection, DotKind};
pub use crate::geometry::density_per_cm2;
use crate::source::synth::Truth;

/// Minimum match distance (px), whatever the dot's radius.
const MIN_MATCH_PX: f64 = 2.0;
/// Added to a true dot's radius to give its match distance (px).
const MATCH_SLACK_PX: f64 = 1.0;

/// One true dot as the scorer sees it.
#[derive(Debug, Clone)]
struct TrueDot {
    kind: DotKind,
    /// The points a detection may be near: the opening and each hair tip.
    points: Vec<(f64, f64)>,
    radius: f64,
}

/// Counts and rates for one frame or a set of frames.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Score {
    /// True dots in the truth.
    pub true_dots: usize,
    /// Detections reported.
    pub detections: usize,
    /// Matched pairs.
    pub matched: usize,
    /// Matched pairs whose kind agrees.
    pub kind_correct: usize,
    /// Unmatched detections lying on a negative.
    pub on_negatives: usize,
    /// Sum over frames of the true density (dots / cm2), for averaging.
    pub true_density_sum: f64,
    /// Sum over frames of the detected density (dots / cm2).
    pub detected_density_sum: f64,
    /// Frames added up.
    pub frames: usize,
    /// Follicular units in the truth (each has one opening).
    pub openings_true: usize,
    /// Detections of kind follicle.
    pub openings_detected: usize,
    /// Follicle detections matched one to one with units (units and follicles alone).
    pub openings_matched: usize,
}

impl Score {
    /// Matched / detections.
    pub fn precision(&self) -> f64 {
        ratio(self.matched, self.detections)
    }
    /// Matched / true dots.
    pub fn recall(&self) -> f64 {
        ratio(self.matched, self.true_dots)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        harmonic_mean(self.precision(), self.recall())
    }
    /// Follicle openings alone: matched / follicle detections.
    pub fn openings_precision(&self) -> f64 {
        ratio(self.openings_matched, self.openings_detected)
    }
    /// Follicle openings alone: matched / units.
    pub fn openings_recall(&self) -> f64 {
        ratio(self.openings_matched, self.openings_true)
    }
    /// Follicle openings alone: harmonic mean of their precision and recall.
    pub fn openings_f1(&self) -> f64 {
        harmonic_mean(self.openings_precision(), self.openings_recall())
    }
    /// Share of matched dots whose kind is right.
    pub fn kind_accuracy(&self) -> f64 {
        ratio(self.kind_correct, self.matched)
    }
    /// Share of detections lying on negatives.
    pub fn negative_rate(&self) -> f64 {
        ratio(self.on_negatives, self.detections)
    }
    /// Relative error of the detected density against the truth (signed; total over frames).
    pub fn density_error(&self) -> f64 {
        if self.true_density_sum == 0.0 {
            0.0
        } else {
            (self.detected_density_sum - self.true_density_sum) / self.true_density_sum
        }
    }
    /// Adds another score to this one.
    pub fn add(&mut self, other: &Score) {
        self.true_dots += other.true_dots;
        self.detections += other.detections;
        self.matched += other.matched;
        self.kind_correct += other.kind_correct;
        self.on_negatives += other.on_negatives;
        self.true_density_sum += other.true_density_sum;
        self.detected_density_sum += other.detected_density_sum;
        self.frames += other.frames;
        self.openings_true += other.openings_true;
        self.openings_detected += other.openings_detected;
        self.openings_matched += other.openings_matched;
    }
}

/// 2pr / (p + r), 0 when both are 0.
fn harmonic_mean(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        if a == 0 {
            1.0
        } else {
            0.0
        }
    } else {
        a as f64 / b as f64
    }
}

fn true_dots(truth: &Truth) -> Vec<TrueDot> {
    let units = truth.units.iter().map(|u| TrueDot {
        kind: DotKind::Follicle,
        points: std::iter::once((u.x, u.y))
            .chain(u.hairs.iter().map(|h| (h.x, h.y)))
            .collect(),
        radius: u.radius,
    });
    let pigment = truth.pigment.iter().map(|p| TrueDot {
        kind: DotKind::Pigment,
        points: vec![(p.x, p.y)],
        radius: p.radius,
    });
    units.chain(pigment).collect()
}

/// Pairs detections with true dots one to one, closest first, within each dot's match distance.
fn match_pairs(dots: &[TrueDot], detections: &[&Detection]) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    let max_r = dots.iter().map(|d| d.radius).fold(0.0, f64::max);
    let reach = (max_r + MATCH_SLACK_PX).max(MIN_MATCH_PX);
    let grid = Grid::new(dots, reach);
    for (di, det) in detections.iter().enumerate() {
        for ti in grid.near(det.x, det.y) {
            let dot = &dots[ti];
            let limit = (dot.radius + MATCH_SLACK_PX).max(MIN_MATCH_PX);
            let d = dot
                .points
                .iter()
                .map(|&(x, y)| (x - det.x).hypot(y - det.y))
                .fold(f64::INFINITY, f64::min);
            if d <= limit {
                pairs.push((d, di, ti));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut det_used = vec![false; detections.len()];
    let mut dot_used = vec![false; dots.len()];
    let mut out = Vec::new();
    for (_, di, ti) in pairs {
        if det_used[di] || dot_used[ti] {
            continue;
        }
        det_used[di] = true;
        dot_used[ti] = true;
        out.push((di, ti));
    }
    out
}

/// Pairs of (detection index, true dot index) matched one to one as [`score_frame`] does; true
/// dots are indexed units first, then pigment dots, in truth order.
pub fn pairs(truth: &Truth, detections: &[Detection]) -> Vec<(usize, usize)> {
    let dots = true_dots(truth);
    let all: Vec<&Detection> = detections.iter().collect();
    match_pairs(&dots, &all)
}

/// Scores one frame's detections against its truth.
pub fn score_frame(truth: &Truth, detections: &[Detection]) -> Score {
    let dots = true_dots(truth);
    let all: Vec<&Detection> = detections.iter().collect();
    let pairs = match_pairs(&dots, &all);
    let mut det_used = vec![false; detections.len()];
    for &(di, _) in &pairs {
        det_used[di] = true;
    }
    let units: Vec<TrueDot> = dots
        .iter()
        .filter(|d| d.kind == DotKind::Follicle)
        .cloned()
        .collect();
    let follicles: Vec<&Detection> = detections
        .iter()
        .filter(|d| d.kind == DotKind::Follicle)
        .collect();
    let mut score = Score {
        true_dots: dots.len(),
        detections: detections.len(),
        frames: 1,
        true_density_sum: density_per_cm2(dots.len(), truth.width, truth.height, truth.px_per_mm),
        detected_density_sum: density_per_cm2(
            detections.len(),
            truth.width,
            truth.height,
            truth.px_per_mm,
        ),
        openings_true: units.len(),
        openings_detected: follicles.len(),
        openings_matched: match_pairs(&units, &follicles).len(),
        ..Score::default()
    };
    for &(di, ti) in &pairs {
        score.matched += 1;
        if detections[di].kind == dots[ti].kind {
            score.kind_correct += 1;
        }
    }
    score.on_negatives = detections
        .iter()
        .zip(&det_used)
        .filter(|(det, used)| {
            !**used
                && truth
                    .negatives
                    .iter()
                    .any(|n| n.shape.contains(det.x, det.y))
        })
        .count();
    score
}

/// A uniform grid over the true dots' points, for finding candidates near a detection.
struct Grid {
    cell: f64,
    cells: std::collections::HashMap<(i64, i64), Vec<usize>>,
}

impl Grid {
    fn new(dots: &[TrueDot], cell: f64) -> Self {
        let mut cells: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
        for (i, dot) in dots.iter().enumerate() {
            let mut keys: Vec<(i64, i64)> = dot
                .points
                .iter()
                .map(|&(x, y)| ((x / cell).floor() as i64, (y / cell).floor() as i64))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                cells.entry(k).or_default().push(i);
            }
        }
        Self { cell, cells }
    }

    fn near(&self, x: f64, y: f64) -> Vec<usize> {
        let (cx, cy) = (
            (x / self.cell).floor() as i64,
            (y / self.cell).floor() as i64,
        );
        let mut out = Vec::new();
        for gy in cy - 1..=cy + 1 {
            for gx in cx - 1..=cx + 1 {
                if let Some(v) = self.cells.get(&(gx, gy)) {
                    out.extend_from_slice(v);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::synth::{
        NegativeKind, Shape, TruthHair, TruthNegative, TruthPigment, TruthUnit, View,
    };

    fn truth() -> Truth {
        Truth {
            seed: 0,
            view: View::Rig,
            width: 200,
            height: 100,
            px_per_mm: 20.0,
            fitzpatrick: 3,
            units: vec![TruthUnit {
                x: 50.0,
                y: 50.0,
                radius: 2.0,
                hairs: vec![TruthHair {
                    x: 51.0,
                    y: 50.0,
                    radius: 1.0,
                    angle_rad: 0.0,
                    length_px: 5.0,
                }],
                miniaturised: false,
            }],
            pigment: vec![TruthPigment {
                x: 100.0,
                y: 50.0,
                radius: 4.0,
                shade: 0.8,
            }],
            negatives: vec![TruthNegative {
                kind: NegativeKind::Mole,
                shape: Shape::Circle {
                    x: 150.0,
                    y: 50.0,
                    r: 10.0,
                },
            }],
            not_skin: None,
        }
    }

    fn det(x: f64, y: f64, kind: DotKind) -> Detection {
        Detection {
            x,
            y,
            radius: 2.0,
            kind,
            score: 1.0,
            hairs: None,
        }
    }

    #[test]
    fn perfect_detections_score_one() {
        let s = score_frame(
            &truth(),
            &[
                det(50.5, 50.0, DotKind::Follicle),
                det(101.0, 52.0, DotKind::Pigment),
            ],
        );
        assert_eq!((s.matched, s.kind_correct, s.on_negatives), (2, 2, 0));
        assert!((s.f1() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn far_wrong_and_negative_detections_are_counted() {
        // 6 px from the pigment dot of radius 4 is outside its 5 px reach; one on the mole.
        let s = score_frame(
            &truth(),
            &[
                det(53.5, 50.0, DotKind::Pigment),
                det(106.0, 50.0, DotKind::Pigment),
                det(150.0, 52.0, DotKind::Follicle),
            ],
        );
        assert_eq!(
            s.matched, 1,
            "only the unit matches (via its hair at 51,50)"
        );
        assert_eq!(s.kind_correct, 0);
        assert_eq!(s.on_negatives, 1);
        assert!((s.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.recall() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn matching_is_one_to_one_closest_first() {
        let s = score_frame(
            &truth(),
            &[
                det(50.0, 51.0, DotKind::Follicle),
                det(50.0, 50.0, DotKind::Follicle),
            ],
        );
        assert_eq!((s.matched, s.detections), (1, 2));
    }

    #[test]
    fn density_is_per_square_centimetre() {
        // 200x100 px at 20 px/mm = 10 x 5 mm = 0.5 cm2.
        assert!((density_per_cm2(40, 200, 100, 20.0) - 80.0).abs() < 1e-9);
    }
}
