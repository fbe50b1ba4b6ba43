//! The skin map's memory of the skin itself: how often each patch has been seen as skin and
//! how often it was in view but covered (by a glove, the machine, hair, the room). Tells a dot
//! just placed by the needle from one that merely came into view, at the edge of the picture or
//! from under an occluder, and tells skin that is covered for a moment from what is never skin.

/// Cell side of the coverage grid, millimetres.
pub const CELL_MM: f64 = 0.5;
/// Half-extent of the grid around the skin origin, millimetres (a whole head fits).
pub const HALF_EXTENT_MM: f64 = 200.0;

/// Frames a patch must have been seen as skin before the skin map calls it skin.
pub const SKIN_AFTER_FRAMES: u16 = 3;
/// A patch stays skin while it was seen as skin in at least this fraction of the frames that
/// had it in view (a glove resting on it for a while does not unmake it; the room, a cape or
/// hair, never seen as skin but by the odd mistake, never become skin).
pub const SKIN_MIN_SHARE: f64 = 0.1;

/// Per-cell counts of frames in which the cell was well inside the view: seen as skin, or
/// covered by what is not skin.
#[derive(Debug, Clone)]
pub struct Coverage {
    side: usize,
    frames_seen: Vec<u16>,
    frames_covered: Vec<u16>,
}

impl Default for Coverage {
    fn default() -> Self {
        Self::new()
    }
}

impl Coverage {
    /// An empty grid.
    pub fn new() -> Self {
        let side = (2.0 * HALF_EXTENT_MM / CELL_MM) as usize;
        Self {
            side,
            frames_seen: vec![0; side * side],
            frames_covered: vec![0; side * side],
        }
    }

    fn index(&self, p: [f64; 2]) -> Option<usize> {
        let x = ((p[0] + HALF_EXTENT_MM) / CELL_MM).floor();
        let y = ((p[1] + HALF_EXTENT_MM) / CELL_MM).floor();
        let n = self.side as f64;
        (x >= 0.0 && y >= 0.0 && x < n && y < n).then(|| y as usize * self.side + x as usize)
    }

    /// Frames in which `p` was in view and seen as skin.
    pub fn seen(&self, p: [f64; 2]) -> u16 {
        self.index(p).map_or(0, |i| self.frames_seen[i])
    }

    /// Whether the skin map holds `p` for skin: seen as skin often enough, and not covered
    /// nearly always (see [`SKIN_AFTER_FRAMES`], [`SKIN_MIN_SHARE`]).
    pub fn is_skin(&self, p: [f64; 2]) -> bool {
        self.index(p).is_some_and(|i| {
            let (seen, covered) = (self.frames_seen[i], self.frames_covered[i]);
            seen >= SKIN_AFTER_FRAMES
                && f64::from(seen) >= SKIN_MIN_SHARE * (f64::from(seen) + f64::from(covered))
        })
    }

    /// Counts one frame: every cell whose centre maps, through `image_from_skin` (to ideal
    /// pixels) and the lens (to the frame's pixels), inside the image shrunk by `margin_px`, as
    /// seen where `skin` (the frame's mask; `None`: all skin) calls it skin, else as covered.
    pub fn add_view(
        &mut self,
        skin_from_image: &crate::registration::Similarity,
        lens: Option<&crate::calib::PlaneMap>,
        width: u32,
        height: u32,
        margin_px: f64,
        skin: Option<&crate::perception::SkinMask>,
    ) {
        let image_from_skin = skin_from_image.inverse();
        let (w, h) = (f64::from(width), f64::from(height));
        let (ideal, input) = (
            |p: [f64; 2]| lens.map_or(p, |l| l.to_ideal(p)),
            |q: [f64; 2]| lens.map_or(q, |l| l.from_ideal(q)),
        );
        let outline =
            crate::geometry::picture_outline(w, h, 0.0).map(|c| skin_from_image.apply(ideal(c)));
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for c in outline {
            x0 = x0.min(c[0]);
            y0 = y0.min(c[1]);
            x1 = x1.max(c[0]);
            y1 = y1.max(c[1]);
        }
        let mut y = (y0 / CELL_MM).floor() * CELL_MM + 0.5 * CELL_MM;
        while y < y1 {
            let mut x = (x0 / CELL_MM).floor() * CELL_MM + 0.5 * CELL_MM;
            while x < x1 {
                let q = input(image_from_skin.apply([x, y]));
                if q[0] >= margin_px
                    && q[1] >= margin_px
                    && q[0] <= w - margin_px
                    && q[1] <= h - margin_px
                {
                    if let Some(i) = self.index([x, y]) {
                        if skin.is_none_or(|m| m.is_skin(q[0], q[1])) {
                            self.frames_seen[i] = self.frames_seen[i].saturating_add(1);
                        } else {
                            self.frames_covered[i] = self.frames_covered[i].saturating_add(1);
                        }
                    }
                }
                x += CELL_MM;
            }
            y += CELL_MM;
        }
    }
}
