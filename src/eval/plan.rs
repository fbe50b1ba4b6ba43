//! Scoring a plan against the renderer's ground truth, the way the product is judged: spacing
//! violations against the TRUE existing dots (not the detector's), density reached over 5x5 mm
//! squares that started below target, and how irregular the recommendations are.

use serde::Serialize;

use crate::geometry::SpatialGrid;
use crate::planning::shade::median;
use crate::source::synth::{MaskRuns, Truth};

/// Side of the squares density is judged over (mm).
pub const JUDGE_CELL_MM: f64 = 5.0;
/// A recommendation violates spacing when closer than this fraction of the minimum spacing.
pub const VIOLATION_FRACTION: f64 = 0.9;

/// How one plan fares against the truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanScore {
    /// Number of recommendations.
    pub recommendations: usize,
    /// Recommendations closer than 90% of the spacing to a true existing dot.
    pub too_close_to_existing: usize,
    /// Recommendations closer than 90% of the spacing to another recommendation.
    pub too_close_to_recommendation: usize,
    /// Judged squares that started below target.
    pub short_cells: usize,
    /// Median relative density error over those squares after the plan.
    pub median_density_error: f64,
    /// Median signed relative error over those squares (negative: still short).
    pub median_density_bias: f64,
    /// Coefficient of variation of the recommendations' nearest-neighbour distances (to any dot).
    pub nn_cv: f64,
    /// Recommendations on what the truth says is not skin (scored with a not-skin mask only;
    /// they are left out of every other figure).
    pub on_not_skin: usize,
}

impl PlanScore {
    /// Fraction of recommendations that violate spacing (to truth or each other).
    pub fn violation_rate(&self) -> f64 {
        let bad = self.too_close_to_existing + self.too_close_to_recommendation;
        bad as f64 / self.recommendations.max(1) as f64
    }
}

/// Scores recommendations `(x, y)` in pixels against a frame's truth.
pub fn score_plan(
    truth: &Truth,
    recommendations_px: &[[f64; 2]],
    target_density_per_cm2: f64,
    min_spacing_mm: f64,
) -> PlanScore {
    score_plan_on_skin(
        truth,
        recommendations_px,
        target_density_per_cm2,
        min_spacing_mm,
        None,
    )
}

/// [`score_plan`] on the skin of `not_skin` (a truth mask of what is not skin; `None`: all
/// skin). Recommendations on the mask are counted in [`PlanScore::on_not_skin`] and left out of
/// the other figures; density is judged only over squares whose skin continues at least one
/// minimum spacing past their edges, where a plan can reach the target at all. Scoring a frame
/// without occluders with the mask of the same frame with them gives figures over the same skin.
pub fn score_plan_on_skin(
    truth: &Truth,
    recommendations_px: &[[f64; 2]],
    target_density_per_cm2: f64,
    min_spacing_mm: f64,
    not_skin: Option<&MaskRuns>,
) -> PlanScore {
    let ppm = truth.px_per_mm;
    let on_mask = |x: f64, y: f64| not_skin.is_some_and(|m| m.contains(x, y));
    let kept: Vec<[f64; 2]> = recommendations_px
        .iter()
        .copied()
        .filter(|p| !on_mask(p[0], p[1]))
        .collect();
    let on_not_skin = recommendations_px.len() - kept.len();
    let recommendations_px = &kept[..];
    let (w_mm, h_mm) = (f64::from(truth.width) / ppm, f64::from(truth.height) / ppm);
    let true_mm: Vec<[f64; 2]> = truth
        .units
        .iter()
        .map(|u| [u.x / ppm, u.y / ppm])
        .chain(truth.pigment.iter().map(|p| [p.x / ppm, p.y / ppm]))
        .collect();
    let recs_mm: Vec<[f64; 2]> = recommendations_px
        .iter()
        .map(|p| [p[0] / ppm, p[1] / ppm])
        .collect();
    let mut truth_grid = SpatialGrid::new(w_mm, h_mm, 1.0);
    for (i, p) in true_mm.iter().enumerate() {
        truth_grid.insert(i as u32, p[0], p[1]);
    }
    let mut rec_grid = SpatialGrid::new(w_mm, h_mm, 1.0);
    for (i, p) in recs_mm.iter().enumerate() {
        rec_grid.insert(i as u32, p[0], p[1]);
    }
    let limit = VIOLATION_FRACTION * min_spacing_mm;
    let mut score = PlanScore {
        recommendations: recs_mm.len(),
        on_not_skin,
        ..PlanScore::default()
    };
    let mut nn = Vec::with_capacity(recs_mm.len());
    for (i, p) in recs_mm.iter().enumerate() {
        let to_truth = truth_grid.nearest_within(p[0], p[1], 3.0).map(|b| b.1);
        let mut to_rec = f64::INFINITY;
        rec_grid.for_each_within(p[0], p[1], 3.0, |j, d| {
            if j as usize != i {
                to_rec = to_rec.min(d);
            }
        });
        if to_truth.is_some_and(|d| d < limit) {
            score.too_close_to_existing += 1;
        }
        if to_rec < limit {
            score.too_close_to_recommendation += 1;
        }
        let near = to_truth.unwrap_or(f64::INFINITY).min(to_rec);
        if near.is_finite() {
            nn.push(to_rec.min(3.0));
        }
    }
    if !nn.is_empty() {
        let mean = nn.iter().sum::<f64>() / nn.len() as f64;
        let var = nn.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / nn.len() as f64;
        score.nn_cv = var.sqrt() / mean.max(1e-12);
    }
    let cols = (w_mm / JUDGE_CELL_MM).floor() as usize;
    let rows = (h_mm / JUDGE_CELL_MM).floor() as usize;
    let cell = |p: &[f64; 2]| -> Option<usize> {
        let (c, r) = (
            (p[0] / JUDGE_CELL_MM).floor(),
            (p[1] / JUDGE_CELL_MM).floor(),
        );
        (c >= 0.0 && r >= 0.0 && (c as usize) < cols && (r as usize) < rows)
            .then(|| r as usize * cols + c as usize)
    };
    let mut before = vec![0usize; cols * rows];
    let mut added = vec![0usize; cols * rows];
    for p in &true_mm {
        if let Some(c) = cell(p) {
            before[c] += 1;
        }
    }
    // Squares that touch the mask grown by one spacing are not judged.
    let mut judged = vec![true; cols * rows];
    if let Some(mask) = not_skin {
        let grow = min_spacing_mm;
        for &[y, x0, x1] in &mask.runs {
            let (y_mm, x0_mm, x1_mm) =
                (f64::from(y) / ppm, f64::from(x0) / ppm, f64::from(x1) / ppm);
            let r0 = ((y_mm - grow) / JUDGE_CELL_MM).floor().max(0.0) as usize;
            let r1 = ((y_mm + 1.0 / ppm + grow) / JUDGE_CELL_MM).floor().max(0.0) as usize;
            let c0 = ((x0_mm - grow) / JUDGE_CELL_MM).floor().max(0.0) as usize;
            let c1 = ((x1_mm + grow) / JUDGE_CELL_MM).floor().max(0.0) as usize;
            for r in r0..=r1.min(rows.saturating_sub(1)) {
                for c in c0..=c1.min(cols.saturating_sub(1)) {
                    judged[r * cols + c] = false;
                }
            }
        }
    }
    for p in &recs_mm {
        if let Some(c) = cell(p) {
            added[c] += 1;
        }
    }
    let want = target_density_per_cm2 / 100.0 * JUDGE_CELL_MM * JUDGE_CELL_MM;
    let mut signed: Vec<f64> = (0..cols * rows)
        .filter(|&c| judged[c] && (before[c] as f64) < want)
        .map(|c| ((before[c] + added[c]) as f64 - want) / want)
        .collect();
    let mut errors: Vec<f64> = signed.iter().map(|e| e.abs()).collect();
    score.median_density_bias = median(&mut signed).unwrap_or(0.0);
    score.short_cells = errors.len();
    score.median_density_error = median(&mut errors).unwrap_or(0.0);
    score
}
