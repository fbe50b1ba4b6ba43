//! Interim recommendation of the next dots, used until `stipple::planning` lands on `main`:
//! greedy farthest-point placement on a candidate lattice, so that each next dot goes where the
//! skin is emptiest, never closer than the design's spacing to an existing dot, and only where
//! the density is still below target.

use crate::session::design::Design;

/// Candidate lattice step relative to the minimum spacing.
const LATTICE_STEP_FRACTION: f64 = 0.4;

/// Proposes up to `n` new dot positions (skin mm) inside the convex `view` polygon.
///
/// `existing` are the dots on the skin (and the recommendations to keep); `density_at` gives
/// the density reached around a point, dots per cm².
pub fn propose(
    design: &Design,
    view: &[[f64; 2]],
    existing: &[[f64; 2]],
    density_at: impl Fn([f64; 2]) -> f64,
    n: usize,
) -> Vec<[f64; 2]> {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for c in view {
        x0 = x0.min(c[0]);
        y0 = y0.min(c[1]);
        x1 = x1.max(c[0]);
        y1 = y1.max(c[1]);
    }
    if !(x1 > x0 && y1 > y0) || n == 0 {
        return Vec::new();
    }
    let step = design.min_spacing_mm * LATTICE_STEP_FRACTION;
    // Candidates with their squared distance to the nearest dot.
    let mut cands: Vec<([f64; 2], f64)> = Vec::new();
    let mut y = y0 + 0.5 * step;
    let mut row = 0u32;
    while y < y1 {
        // Offset every other row: a hexagonal lattice gives fewer ties.
        let mut x = x0 + if row % 2 == 0 { 0.5 * step } else { step };
        while x < x1 {
            let p = [x, y];
            if crate::session::design::point_in_polygon(p, view) {
                if let Some(target) = design.target_at(p) {
                    if density_at(p) < target {
                        cands.push((p, f64::MAX));
                    }
                }
            }
            x += step;
        }
        y += step;
        row += 1;
    }
    // Nearest-dot distances through a coarse bucket grid of the existing dots.
    let cell = design.min_spacing_mm.max(0.5) * 2.0;
    let mut buckets: std::collections::HashMap<(i64, i64), Vec<[f64; 2]>> = Default::default();
    for e in existing {
        buckets
            .entry(((e[0] / cell).floor() as i64, (e[1] / cell).floor() as i64))
            .or_default()
            .push(*e);
    }
    for (p, d2) in &mut cands {
        let (cx, cy) = ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64);
        for gx in cx - 1..=cx + 1 {
            for gy in cy - 1..=cy + 1 {
                for e in buckets.get(&(gx, gy)).into_iter().flatten() {
                    *d2 = d2.min((e[0] - p[0]).powi(2) + (e[1] - p[1]).powi(2));
                }
            }
        }
    }
    let min2 = design.min_spacing_mm * design.min_spacing_mm;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some((best, d2)) = cands.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            break;
        };
        if d2 < min2 {
            break;
        }
        out.push(best);
        for (p, d) in &mut cands {
            *d = d.min((best[0] - p[0]).powi(2) + (best[1] - p[1]).powi(2));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respects_spacing_and_fills_the_emptiest_place_first() {
        let design = Design::default();
        let view = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        let existing: Vec<[f64; 2]> = (0..10).map(|i| [f64::from(i), 0.5]).collect();
        let recs = propose(&design, &view, &existing, |_| 0.0, 8);
        assert_eq!(recs.len(), 8);
        assert!(
            recs[0][1] > 8.0,
            "first recommendation should be far from the dots: {recs:?}"
        );
        for (i, a) in recs.iter().enumerate() {
            for b in existing.iter().chain(&recs[..i]) {
                assert!((a[0] - b[0]).hypot(a[1] - b[1]) >= design.min_spacing_mm - 1e-9);
            }
        }
    }
}
