//! A bounded spatial hash over a rectangle (millimetres of skin, or pixels): the one neighbour
//! index of the crate (the planner, the shade picker, the plan scorer, the renderer).
//!
//! The frame is cut into square buckets of `cell_mm` (the minimum spacing), so a query of radius
//! `r <= cell_mm` touches at most 3x3 buckets and costs O(1) on average whatever the number of
//! dots. Points outside the frame are clamped into the border buckets; because clamping is
//! monotone, a query still sees every point within its radius (only efficiency suffers there).

/// Identifier of a point stored in the grid (an index into the planner's dot table).
pub type PointId = u32;

/// A bucketed point index over a rectangle of skin, in millimetres.
#[derive(Debug, Clone)]
pub struct SpatialGrid {
    /// Side of one bucket (mm), at least the largest query radius one expects to ask cheaply.
    cell_mm: f64,
    /// Number of bucket columns.
    cols: usize,
    /// Number of bucket rows.
    rows: usize,
    /// Row-major buckets holding `(id, x_mm, y_mm)`, positions copied so queries never chase ids.
    buckets: Vec<Vec<(PointId, f64, f64)>>,
}

impl SpatialGrid {
    /// An empty grid covering `[0, width_mm] x [0, height_mm]` with buckets of `cell_mm`.
    ///
    /// # Panics
    /// Never: degenerate sizes are raised to one bucket.
    pub fn new(width_mm: f64, height_mm: f64, cell_mm: f64) -> Self {
        let cell_mm = if cell_mm.is_finite() && cell_mm > 0.0 {
            cell_mm
        } else {
            1.0
        };
        let cols = ((width_mm / cell_mm).ceil().max(1.0) as usize).min(1 << 14);
        let rows = ((height_mm / cell_mm).ceil().max(1.0) as usize).min(1 << 14);
        Self {
            cell_mm,
            cols,
            rows,
            buckets: vec![Vec::new(); cols * rows],
        }
    }

    fn col(&self, x_mm: f64) -> usize {
        let c = (x_mm / self.cell_mm).floor();
        if c.is_nan() || c < 0.0 {
            0
        } else {
            (c as usize).min(self.cols - 1)
        }
    }

    fn row(&self, y_mm: f64) -> usize {
        let r = (y_mm / self.cell_mm).floor();
        if r.is_nan() || r < 0.0 {
            0
        } else {
            (r as usize).min(self.rows - 1)
        }
    }

    /// Stores a point.
    pub fn insert(&mut self, id: PointId, x_mm: f64, y_mm: f64) {
        let i = self.row(y_mm) * self.cols + self.col(x_mm);
        self.buckets[i].push((id, x_mm, y_mm));
    }

    /// Removes a point stored at `(x_mm, y_mm)` under `id`; returns whether it was there.
    pub fn remove(&mut self, id: PointId, x_mm: f64, y_mm: f64) -> bool {
        let i = self.row(y_mm) * self.cols + self.col(x_mm);
        let bucket = &mut self.buckets[i];
        match bucket.iter().position(|&(pid, _, _)| pid == id) {
            Some(k) => {
                bucket.swap_remove(k);
                true
            }
            None => false,
        }
    }

    /// Calls `f(id, distance_mm)` for every point within `radius_mm` of `(x_mm, y_mm)`.
    pub fn for_each_within(
        &self,
        x_mm: f64,
        y_mm: f64,
        radius_mm: f64,
        mut f: impl FnMut(PointId, f64),
    ) {
        let (c0, c1) = (self.col(x_mm - radius_mm), self.col(x_mm + radius_mm));
        let (r0, r1) = (self.row(y_mm - radius_mm), self.row(y_mm + radius_mm));
        let r2 = radius_mm * radius_mm;
        for r in r0..=r1 {
            for c in c0..=c1 {
                for &(id, px, py) in &self.buckets[r * self.cols + c] {
                    let d2 = (px - x_mm).powi(2) + (py - y_mm).powi(2);
                    if d2 <= r2 {
                        f(id, d2.sqrt());
                    }
                }
            }
        }
    }

    /// Distance to the nearest stored point within `radius_mm`, or `None` if there is none.
    pub fn nearest_within(&self, x_mm: f64, y_mm: f64, radius_mm: f64) -> Option<(PointId, f64)> {
        let mut best: Option<(PointId, f64)> = None;
        self.for_each_within(x_mm, y_mm, radius_mm, |id, d| {
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((id, d));
            }
        });
        best
    }

    /// Whether any stored point lies strictly closer than `radius_mm`.
    pub fn any_closer_than(&self, x_mm: f64, y_mm: f64, radius_mm: f64) -> bool {
        let (c0, c1) = (self.col(x_mm - radius_mm), self.col(x_mm + radius_mm));
        let (r0, r1) = (self.row(y_mm - radius_mm), self.row(y_mm + radius_mm));
        let r2 = radius_mm * radius_mm;
        for r in r0..=r1 {
            for c in c0..=c1 {
                for &(_, px, py) in &self.buckets[r * self.cols + c] {
                    if (px - x_mm).powi(2) + (py - y_mm).powi(2) < r2 {
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_points_across_buckets_and_outside_the_frame() {
        let mut g = SpatialGrid::new(10.0, 10.0, 0.7);
        g.insert(1, 0.69, 0.69);
        g.insert(2, 0.71, 0.71);
        g.insert(3, -3.0, 5.0);
        g.insert(4, 12.0, 12.0);
        let mut seen = Vec::new();
        g.for_each_within(0.7, 0.7, 0.05, |id, _| seen.push(id));
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2]);
        assert_eq!(g.nearest_within(-2.5, 5.0, 0.7).map(|p| p.0), Some(3));
        assert!(g.any_closer_than(11.5, 11.8, 0.7));
        assert!(g.remove(4, 12.0, 12.0));
        assert!(!g.any_closer_than(11.5, 11.8, 0.7));
        assert!(!g.remove(4, 12.0, 12.0));
    }
}
