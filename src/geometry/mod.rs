//! The ground floor of shared geometry every stage uses: polygons (containment, area), bounding
//! boxes, dot density over an area, the one spatial grid ([`SpatialGrid`]) and 2-D similarity
//! transforms ([`Similarity`]). It imports no
//! other module of the crate.

mod grid;
mod similarity;

pub use grid::{PointId, SpatialGrid};
pub use similarity::Similarity;

/// Even-odd point-in-polygon test. A polygon of fewer than three points contains nothing.
pub fn polygon_contains(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = (poly[i][0], poly[i][1]);
        let (xj, yj) = (poly[j][0], poly[j][1]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// The outline of a `w` x `h` picture shrunk by `margin` on every side: its corners and the
/// middles of its edges, clockwise from the top left. Mapped through a lens, the picture's edges
/// become curves (bowing in under a barrel lens, out under a pincushion), and the middles bound
/// them where the corners alone would not.
pub fn picture_outline(w: f64, h: f64, margin: f64) -> [[f64; 2]; 8] {
    let (m, cx, cy) = (margin, w / 2.0, h / 2.0);
    [
        [m, m],
        [cx, m],
        [w - m, m],
        [w - m, cy],
        [w - m, h - m],
        [cx, h - m],
        [m, h - m],
        [m, cy],
    ]
}

/// Area of a simple polygon (shoelace formula), in the square of its units.
pub fn polygon_area(poly: &[[f64; 2]]) -> f64 {
    let n = poly.len();
    let mut s = 0.0;
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        s += a[0] * b[1] - b[0] * a[1];
    }
    0.5 * s.abs()
}

/// A grid of cells over a picture with some cells set (what is not skin, what glare hides):
/// the outline of each region of set cells, for declaring where a plan declined.
#[derive(Debug, Clone, Copy)]
pub struct CellGrid<'a> {
    /// Row-major, `cols * rows`: whether each cell is set.
    pub set: &'a [bool],
    /// Cells per row.
    pub cols: usize,
    /// Rows of cells.
    pub rows: usize,
    /// Side of a cell in picture pixels.
    pub cell_px: f64,
    /// The picture's width and height in pixels (outlines are clamped to it).
    pub size: [f64; 2],
}

impl CellGrid<'_> {
    /// The outer outline of each connected region of set cells, in picture pixels through the
    /// centres of its boundary cells (a region one cell wide, which that would not enclose, by
    /// its cells' bounding edges), simplified (Douglas-Peucker) within `epsilon` cells;
    /// largest first, at most `max_regions`, and none of area below `min_area_px` (px²). Holes
    /// are not outlined: a region is declared whole.
    pub fn outlines(
        &self,
        epsilon: f64,
        max_regions: usize,
        min_area_px: f64,
    ) -> Vec<Vec<[f64; 2]>> {
        if self.set.len() != self.cols * self.rows || !self.set.iter().any(|&s| s) {
            return Vec::new();
        }
        // One clear cell around the grid, so regions touching the border close along it.
        let (gw, gh) = (self.cols as u32 + 2, self.rows as u32 + 2);
        let grid = image::GrayImage::from_fn(gw, gh, |x, y| {
            let inside = x >= 1 && y >= 1 && x <= self.cols as u32 && y <= self.rows as u32;
            let on = inside && self.set[(y - 1) as usize * self.cols + (x - 1) as usize];
            image::Luma([if on { 255 } else { 0 }])
        });
        let [w, h] = self.size;
        let cell = self.cell_px;
        let mut polys: Vec<(f64, Vec<[f64; 2]>)> = imageproc::contours::find_contours::<i32>(&grid)
            .into_iter()
            .filter(|c| c.border_type == imageproc::contours::BorderType::Outer)
            .map(|c| {
                let simple = if c.points.len() > 2 {
                    imageproc::geometry::approximate_polygon_dp(&c.points, epsilon, true)
                } else {
                    c.points.clone()
                };
                // Padded index i is cell i - 1, whose centre is at (i - 0.5) cells.
                let at = |x: f64, y: f64| [(x * cell).clamp(0.0, w), (y * cell).clamp(0.0, h)];
                let mut poly: Vec<[f64; 2]> = simple
                    .iter()
                    .map(|p| at(f64::from(p.x) - 0.5, f64::from(p.y) - 0.5))
                    .collect();
                if polygon_area(&poly) == 0.0 {
                    // A region one cell wide (a cell, a line of cells): through the cells'
                    // centres it encloses nothing, so it is outlined by the cells' edges.
                    let b = BBox::of(c.points.iter().map(|p| [f64::from(p.x), f64::from(p.y)]));
                    poly = vec![
                        at(b.min_x - 1.0, b.min_y - 1.0),
                        at(b.max_x, b.min_y - 1.0),
                        at(b.max_x, b.max_y),
                        at(b.min_x - 1.0, b.max_y),
                    ];
                }
                (polygon_area(&poly), poly)
            })
            .filter(|(area, _)| *area >= min_area_px)
            .collect();
        polys.sort_by(|a, b| b.0.total_cmp(&a.0));
        polys
            .into_iter()
            .take(max_regions)
            .map(|(_, p)| p)
            .collect()
    }
}

/// An axis-aligned bounding box; empty (min above max) until a point is added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Smallest x.
    pub min_x: f64,
    /// Smallest y.
    pub min_y: f64,
    /// Largest x.
    pub max_x: f64,
    /// Largest y.
    pub max_y: f64,
}

impl Default for BBox {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl BBox {
    /// The box of no point.
    pub const EMPTY: Self = Self {
        min_x: f64::INFINITY,
        min_y: f64::INFINITY,
        max_x: f64::NEG_INFINITY,
        max_y: f64::NEG_INFINITY,
    };

    /// The box of `points` ([`BBox::EMPTY`] when there are none).
    pub fn of(points: impl IntoIterator<Item = [f64; 2]>) -> Self {
        points.into_iter().fold(Self::EMPTY, |b, p| b.with(p))
    }

    /// This box grown to hold `p`.
    pub fn with(self, p: [f64; 2]) -> Self {
        Self {
            min_x: self.min_x.min(p[0]),
            min_y: self.min_y.min(p[1]),
            max_x: self.max_x.max(p[0]),
            max_y: self.max_y.max(p[1]),
        }
    }

    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.min_x > self.max_x || self.min_y > self.max_y
    }

    /// Width (0 when empty).
    pub fn width(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.max_x - self.min_x
        }
    }

    /// Height (0 when empty).
    pub fn height(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.max_y - self.min_y
        }
    }
}

/// Density of `n` dots over a `width` x `height` image at `px_per_mm`, in dots per cm2.
pub fn density_per_cm2(n: usize, width: u32, height: u32, px_per_mm: f64) -> f64 {
    let area_cm2 = f64::from(width) * f64::from(height) / (px_per_mm * px_per_mm) / 100.0;
    if area_cm2 > 0.0 {
        n as f64 / area_cm2
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_regions_are_outlined_and_a_lone_cell_by_its_edges() {
        // 6 x 4 cells of 10 px over a 60 x 40 picture: a 3 x 2 block and a lone cell.
        let mut set = vec![false; 24];
        for (c, r) in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (5, 3)] {
            set[r * 6 + c] = true;
        }
        let grid = CellGrid {
            set: &set,
            cols: 6,
            rows: 4,
            cell_px: 10.0,
            size: [60.0, 40.0],
        };
        let got = grid.outlines(1.0, 8, 0.0);
        assert_eq!(got.len(), 2, "{got:?}");
        // The block, largest first: between its boundary cells' centres (5..25 x 5..15) and
        // its cells' edges (0..30 x 0..20; a contour this small simplifies to a line).
        let area = polygon_area(&got[0]);
        assert!((200.0..=600.0).contains(&area), "{:?}", got[0]);
        assert!(
            got[0].iter().all(|p| p[0] <= 30.0 && p[1] <= 20.0),
            "{:?}",
            got[0]
        );
        assert!(polygon_contains(&got[0], 15.0, 10.0));
        // The lone cell by its edges, 50..60 x 30..40.
        assert!((polygon_area(&got[1]) - 100.0).abs() < 1e-9, "{:?}", got[1]);
        assert!(polygon_contains(&got[1], 55.0, 35.0));
        // Regions under the smallest area, and a cap on how many.
        assert_eq!(grid.outlines(1.0, 8, 150.0).len(), 1);
        assert_eq!(grid.outlines(1.0, 1, 0.0).len(), 1);
        assert!(CellGrid {
            set: &[false; 24],
            ..grid
        }
        .outlines(1.0, 8, 0.0)
        .is_empty());
    }

    #[test]
    fn polygons_boxes_and_density() {
        let sq = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(polygon_contains(&sq, 5.0, 5.0));
        assert!(!polygon_contains(&sq, 15.0, 5.0));
        assert!(!polygon_contains(&sq[..2], 5.0, 0.0));
        assert!((polygon_area(&sq) - 100.0).abs() < 1e-12);
        let b = BBox::of(sq);
        assert_eq!(
            (b.min_x, b.max_y, b.width(), b.height()),
            (0.0, 10.0, 10.0, 10.0)
        );
        assert!(BBox::of([]).is_empty());
        assert_eq!(BBox::EMPTY.width(), 0.0);
        assert!((density_per_cm2(40, 200, 100, 20.0) - 80.0).abs() < 1e-9);
    }
}
