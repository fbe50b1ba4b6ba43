//! Chessboard detection: finds the `N x M` inner corners of a printed chessboard and refines
//! them to sub-pixel accuracy, or says why it could not.
//!
//! # Algorithm
//!
//! 0. **Scale.** Big photos are first box-downscaled by a power of two to at most 1600 px on the
//!    long side; steps 1-4 run there (then one scale coarser and one finer if they fail), and
//!    step 5 refines at full resolution.
//! 1. **Saddle candidates.** The grey image is smoothed (Gaussian, [`CANDIDATE_SIGMA_PX`]) and
//!    the Hessian determinant computed; an X-junction of a chessboard is a saddle, where
//!    `Ixy² - Ixx·Iyy` peaks. Local maxima above a small absolute floor are kept. The response
//!    is scale-free above the blur and does not care about the absolute light level, so uneven
//!    light and glare only lower it locally.
//! 2. **Ring test.** Around each candidate, [`RING_SAMPLES`] samples on a circle must look like
//!    an X-junction: the second angular harmonic dominates the first (an edge or a blob would
//!    not). Its phase gives the corner's *polarity* (the axis of the bright diagonal); corners
//!    that share a square edge have roughly perpendicular polarities, diagonal ones parallel.
//! 3. **Grid growth.** From the strongest candidates, a 3x3 seed lattice is formed from nearest
//!    neighbours of alternating polarity, then grown cell by cell: each empty lattice position
//!    is predicted by linear extrapolation from its filled neighbours (which follows perspective
//!    and lens curvature) and filled with the nearest unused candidate of the expected polarity
//!    within 35% of the local spacing. Every lattice link must be a board edge: the grey levels
//!    on its two sides differ, with the bright side alternating along rows and columns as on a
//!    chessboard (this keeps the lattice out of noise and clutter). A hole under glare is filled
//!    from another side.
//! 4. **Board fit.** The grown lattice must contain a complete `N x M` window (either
//!    orientation). Corners are then ordered like OpenCV: rows of `N`, with the board's x axis
//!    along a row and the y axis down the columns, never mirrored (so board z points away from
//!    the camera).
//! 5. **Sub-pixel refinement**, in two steps over a window sized to the local square size
//!    (0.4 of the spacing to the nearest neighbour; on the grid's border no farther out than
//!    the outer squares reach, for boards printed with partial outer squares). First the gradient-orthogonality condition
//!    of Förstner (as OpenCV's `cornerSubPix`): every gradient in a window around a true corner
//!    is orthogonal to the vector from the corner, solved iteratively with Gaussian weights,
//!    after taking off the window's mean gradient (uneven light). Then, from there, a
//!    least-squares fit of a model of the blurred corner to the pixels ([`super::saddle`]),
//!    which uses the image's information better than gradient directions do: 0.011-0.013 px
//!    from the truth instead of 0.021-0.024 px on rendered views with noise.

use std::collections::{HashMap, VecDeque};

use image::{GrayImage, ImageBuffer, Luma};
use serde::{Deserialize, Serialize};

use super::saddle;
use super::CalibError;

/// Smoothing before the saddle response, in pixels.
pub const CANDIDATE_SIGMA_PX: f32 = 1.5;
/// Smallest saddle response (grey levels² per px⁴) worth considering: about a 7-level contrast at the sharpest.
const MIN_RESPONSE: f32 = 0.15;
/// Images are worked on downscaled to at most this many pixels on the long side first.
const WORK_MAX_SIDE_PX: u32 = 1600;
/// A coarser scale is tried while the short side keeps this many pixels.
const WORK_MIN_SIDE_PX: u32 = 240;
/// Non-maximum suppression radius, in pixels.
const NMS_RADIUS: i32 = 3;
/// Samples on the ring of the X-junction test.
pub const RING_SAMPLES: usize = 32;
/// Radius of the ring, in pixels.
const RING_RADIUS_PX: f64 = 4.5;
/// The second harmonic must be at least this fraction of an ideal X-junction's.
const RING_MIN_X_FRACTION: f64 = 0.35;
/// How far a predicted corner may be from the candidate that fills it, as a fraction of the
/// local corner spacing.
const SEARCH_FRACTION: f64 = 0.35;
/// Lattice edges: the two sides are sampled this fraction of the edge length away from it...
const EDGE_SIDE_FRACTION: f64 = 0.25;
/// ...and must differ by this fraction of the corners' ring contrast.
const EDGE_MIN_FRACTION: f64 = 0.25;
/// A detected corner farther than this fraction of the local spacing (plus the slack) from its
/// lattice prediction is snapped to the prediction before refinement...
const STRAY_BEFORE_REFINE: f64 = 0.15;
/// ...and a refined corner farther than this rejects the view.
const STRAY_AFTER_REFINE: f64 = 0.15;
/// Slack of the stray-corner tests, in pixels.
const STRAY_SLACK_PX: f64 = 1.0;
/// Seeds tried before giving up.
const MAX_SEEDS: usize = 400;
/// Sub-pixel refinement: window half-size as a fraction of the local spacing, and its bounds.
/// Border corners' windows also stay inside the outer squares when those are cut short
/// (`outer_square_reach`). 0.5 fitted corners a little closer to the truth (rms 8-11% lower),
/// but its distortion was worse in the image corners on the seeds not used to choose (31001:
/// 0.099 px against 0.062, 13: 0.108 against 0.093): a larger window sees more of the lens's
/// bending of the edges. See docs/calibration.md.
const SUBPIX_WINDOW_FRACTION: f64 = 0.4;
const SUBPIX_MIN_HALF: i32 = 3;
const SUBPIX_MAX_HALF: i32 = 20;
const SUBPIX_MAX_ITERS: usize = 40;
const SUBPIX_EPS_PX: f64 = 1e-3;
/// Outer squares (see `outer_square_reach`): the walk starts this far out and steps by this
/// much (in units of the spacing to the inward neighbour); squares that reach this far are
/// whole; the two squares must differ by this many grey levels to tell; the refinement window
/// stays this many pixels (at full resolution, times the detection scale) inside their end.
const OUTER_WALK_START: f64 = 0.15;
const OUTER_WALK_STEP: f64 = 0.02;
const OUTER_WHOLE: f64 = 0.9;
const OUTER_MIN_CONTRAST: f64 = 20.0;
const OUTER_EDGE_MARGIN_PX: f64 = 3.0;
/// Förstner's gradients are computed once over its window plus this margin (the window
/// follows the estimate, which rarely moves more).
const PATCH_MARGIN_PX: i64 = 3;

/// A printed chessboard: inner-corner counts (OpenCV's pattern size) and square size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoardSpec {
    /// Inner corners along a row (9 for a "9x6" board).
    pub inner_cols: usize,
    /// Inner corners along a column (6 for a "9x6" board).
    pub inner_rows: usize,
    /// Side of a printed square, in millimetres.
    pub square_mm: f64,
}

impl BoardSpec {
    /// A board with `inner_cols x inner_rows` inner corners and squares of `square_mm`.
    ///
    /// # Errors
    /// [`CalibError::BadBoard`] if a count is below 3 or the square size is not positive.
    pub fn new(inner_cols: usize, inner_rows: usize, square_mm: f64) -> Result<Self, CalibError> {
        if inner_cols < 3 || inner_rows < 3 {
            return Err(CalibError::BadBoard(format!(
                "a board needs at least 3x3 inner corners, got {inner_cols}x{inner_rows}"
            )));
        }
        if !square_mm.is_finite() || square_mm <= 0.0 {
            return Err(CalibError::BadBoard(format!(
                "square size must be positive, got {square_mm} mm"
            )));
        }
        Ok(Self {
            inner_cols,
            inner_rows,
            square_mm,
        })
    }

    /// Parses `"9x6"` (inner corners, as OpenCV) with the given square size.
    ///
    /// # Errors
    /// [`CalibError::BadBoard`] if the text is not `COLSxROWS` or [`BoardSpec::new`] refuses it.
    pub fn parse(text: &str, square_mm: f64) -> Result<Self, CalibError> {
        let bad = || {
            CalibError::BadBoard(format!(
                "expected COLSxROWS of inner corners like 9x6, got {text:?}"
            ))
        };
        let (c, r) = text
            .to_ascii_lowercase()
            .split_once('x')
            .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
            .ok_or_else(bad)?;
        let cols = c.parse().map_err(|_| bad())?;
        let rows = r.parse().map_err(|_| bad())?;
        Self::new(cols, rows, square_mm)
    }

    /// Number of inner corners.
    pub fn corner_count(&self) -> usize {
        self.inner_cols * self.inner_rows
    }

    /// The outline of a view's corner grid (row-major corners, as detected): the first row,
    /// the last column, the last row backwards, the first column upwards. Empty when `corners`
    /// is not one per inner corner.
    pub fn outline(&self, corners: &[[f64; 2]]) -> Vec<[f64; 2]> {
        let (c, r) = (self.inner_cols, self.inner_rows);
        if corners.len() != c * r {
            return Vec::new();
        }
        let mut ring: Vec<[f64; 2]> = (0..c).map(|i| corners[i]).collect();
        ring.extend((1..r).map(|j| corners[j * c + c - 1]));
        ring.extend((0..c - 1).rev().map(|i| corners[(r - 1) * c + i]));
        ring.extend((1..r - 1).rev().map(|j| corners[j * c]));
        ring
    }

    /// Inner corners on the board plane in mm, `(i·s, j·s)`, row-major (rows of `inner_cols`).
    pub fn object_points(&self) -> Vec<[f64; 2]> {
        let s = self.square_mm;
        (0..self.inner_rows)
            .flat_map(|j| (0..self.inner_cols).map(move |i| [i as f64 * s, j as f64 * s]))
            .collect()
    }
}

/// Why no board was found in an image.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotFound {
    /// Nothing in the image looks like a chessboard corner.
    #[error("no chessboard corners found: no board in view, or it is too blurred, dark or small")]
    NoCorners,
    /// Corners were found, but no connected grid of the right size.
    #[error("{}", incomplete_text(.found, .expected, .cols, .rows))]
    Incomplete {
        /// Corners in the largest connected grid.
        found: usize,
        /// Corners the board has.
        expected: usize,
        /// Extent of that grid along its first axis.
        cols: usize,
        /// Extent of that grid along its second axis.
        rows: usize,
    },
    /// A corner does not line up with its neighbours even after refinement.
    #[error(
        "corner ({col}, {row}) does not line up with its neighbours: noise, glare or clutter \
         on the board"
    )]
    Inconsistent {
        /// Its column.
        col: usize,
        /// Its row.
        row: usize,
    },
    /// The image is too small to hold a board.
    #[error("image of {width}x{height} px is too small")]
    TooSmall {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

fn incomplete_text(found: &usize, expected: &usize, cols: &usize, rows: &usize) -> String {
    let hint = "board partly out of frame, hidden, under glare, too tilted or blurred, \
                or the --board size is wrong";
    if found < expected {
        format!("found only {found} of {expected} inner corners in one grid (largest {cols}x{rows}): {hint}")
    } else {
        format!("found a grid of {found} corners ({cols}x{rows}) but no complete board of {expected} inner corners in it: {hint}")
    }
}

/// The detected inner corners of one view, in [`BoardSpec::object_points`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardCorners {
    /// Sub-pixel corner positions, distorted pixels.
    pub corners_in_image: Vec<[f64; 2]>,
    /// Width of the image they were found in.
    pub image_width: u32,
    /// Height of the image they were found in.
    pub image_height: u32,
}

impl BoardCorners {
    /// `(image_width, image_height)`.
    pub fn size(&self) -> (u32, u32) {
        (self.image_width, self.image_height)
    }
}

/// A saddle candidate.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    x: f64,
    y: f64,
    response: f32,
    /// Axis of the bright diagonal, radians in [0, π).
    polarity: f64,
    /// Grey-level range on the test ring: the local contrast.
    contrast: f64,
}

type Img = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Finds the board's inner corners in `image`.
///
/// # Errors
/// [`NotFound`] with the reason when no complete board is found.
#[tracing::instrument(skip(image, spec), fields(w = image.width(), h = image.height()))]
pub fn detect_board(image: &GrayImage, spec: &BoardSpec) -> Result<BoardCorners, NotFound> {
    let (w, h) = image.dimensions();
    if w < 32 || h < 32 {
        return Err(NotFound::TooSmall {
            width: w,
            height: h,
        });
    }
    let gray: Img =
        ImageBuffer::from_fn(w, h, |x, y| Luma([f32::from(image.get_pixel(x, y).0[0])]));
    let mut best_err = NotFound::NoCorners;
    for scale in scale_plan(w, h) {
        let small;
        let work = if scale == 1 {
            &gray
        } else {
            small = downsample(&gray, scale);
            &small
        };
        match find_grid(work, spec) {
            Ok(corners) => {
                // Back to full-resolution pixel centres, then refine there.
                let s = f64::from(scale);
                let off = (s - 1.0) / 2.0;
                let corners: Vec<[f64; 2]> = corners
                    .iter()
                    .map(|p| [p[0] * s + off, p[1] * s + off])
                    .collect();
                let corners = snap_stray_corners(corners, spec);
                let gradients = Gradients::new(&gray);
                let refined = refine_corners(&gradients, &corners, spec, scale as i32);
                if let Some((col, row)) = stray_corner(&refined, spec, STRAY_AFTER_REFINE) {
                    return Err(NotFound::Inconsistent { col, row });
                }
                tracing::debug!(scale, "board found");
                return Ok(BoardCorners {
                    corners_in_image: refined,
                    image_width: w,
                    image_height: h,
                });
            }
            Err(err) => {
                let better = match (&err, &best_err) {
                    (
                        NotFound::Incomplete { found: a, .. },
                        NotFound::Incomplete { found: b, .. },
                    ) => a > b,
                    (NotFound::Incomplete { .. }, _) => true,
                    _ => false,
                };
                if better {
                    best_err = err;
                }
            }
        }
    }
    Err(best_err)
}

/// Integer downscales to try: first the one that brings the image to at most
/// [`WORK_MAX_SIDE_PX`] (corners of big photos become sharp saddles of a few pixels), then one
/// coarser (heavy blur, huge squares) while the image keeps [`WORK_MIN_SIDE_PX`], then one finer.
fn scale_plan(w: u32, h: u32) -> Vec<u32> {
    let mut s0 = 1;
    while w.max(h) / s0 > WORK_MAX_SIDE_PX {
        s0 *= 2;
    }
    let mut plan = vec![s0];
    if w.min(h) / (2 * s0) >= WORK_MIN_SIDE_PX {
        plan.push(2 * s0);
    }
    if s0 > 1 {
        plan.push(s0 / 2);
    }
    plan
}

/// Box-filter downsampling by an integer factor.
fn downsample(img: &Img, s: u32) -> Img {
    let (w, h) = (img.width() / s, img.height() / s);
    let norm = 1.0 / (s * s) as f32;
    ImageBuffer::from_fn(w, h, |x, y| {
        let mut acc = 0.0;
        for dy in 0..s {
            for dx in 0..s {
                acc += img.get_pixel(x * s + dx, y * s + dy).0[0];
            }
        }
        Luma([acc * norm])
    })
}

/// Candidates, lattice growth and board fit at one scale; corners before refinement.
fn find_grid(gray: &Img, spec: &BoardSpec) -> Result<Vec<[f64; 2]>, NotFound> {
    let (w, h) = gray.dimensions();
    let smooth = imageproc::filter::gaussian_blur_f32(gray, CANDIDATE_SIGMA_PX);
    let candidates = find_candidates(&smooth);
    tracing::debug!(candidates = candidates.len(), w, "saddle candidates");
    if candidates.len() < 4 {
        return Err(NotFound::NoCorners);
    }
    let index = SpatialIndex::new(&candidates, w, h);
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| candidates[b].response.total_cmp(&candidates[a].response));
    let mut best_partial = (0usize, 0usize, 0usize);
    let mut tried = vec![false; candidates.len()];
    for &seed in order.iter().take(MAX_SEEDS) {
        if tried[seed] {
            continue;
        }
        let Some(grid) = grow_grid(&smooth, seed, &candidates, &index, spec) else {
            continue;
        };
        for &c in grid.values() {
            tried[c] = true;
        }
        match fit_board(&grid, &candidates, spec) {
            Ok(corners) => return Ok(corners),
            Err((found, cols, rows)) => {
                if found > best_partial.0 {
                    best_partial = (found, cols, rows);
                }
            }
        }
    }
    if best_partial.0 == 0 {
        return Err(NotFound::NoCorners);
    }
    Err(NotFound::Incomplete {
        found: best_partial.0,
        expected: spec.corner_count(),
        cols: best_partial.1,
        rows: best_partial.2,
    })
}

/// Bilinear sample with clamping.
fn sample(img: &Img, x: f64, y: f64) -> f64 {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let x = x.clamp(0.0, (w - 1) as f64);
    let y = y.clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let p = |xx: i64, yy: i64| f64::from(img.get_pixel(xx as u32, yy as u32).0[0]);
    (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
        + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy
}

fn find_candidates(smooth: &Img) -> Vec<Candidate> {
    let (w, h) = (smooth.width() as i32, smooth.height() as i32);
    let s = smooth.as_raw();
    let at = |x: i32, y: i32| s[(y * w + x) as usize];
    let mut resp = vec![0f32; (w * h) as usize];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = at(x, y);
            let ixx = at(x + 1, y) - 2.0 * c + at(x - 1, y);
            let iyy = at(x, y + 1) - 2.0 * c + at(x, y - 1);
            let ixy =
                (at(x + 1, y + 1) - at(x + 1, y - 1) - at(x - 1, y + 1) + at(x - 1, y - 1)) * 0.25;
            resp[(y * w + x) as usize] = (ixy * ixy - ixx * iyy).max(0.0);
        }
    }
    let border = (RING_RADIUS_PX.ceil() as i32 + 2).max(NMS_RADIUS + 1);
    let mut out = Vec::new();
    for y in border..h - border {
        'px: for x in border..w - border {
            let r = resp[(y * w + x) as usize];
            if r < MIN_RESPONSE {
                continue;
            }
            for dy in -NMS_RADIUS..=NMS_RADIUS {
                for dx in -NMS_RADIUS..=NMS_RADIUS {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let o = resp[((y + dy) * w + x + dx) as usize];
                    // Strict on one side so plateaus keep exactly one maximum.
                    if o > r || (o == r && (dy < 0 || (dy == 0 && dx < 0))) {
                        continue 'px;
                    }
                }
            }
            // Quadratic peak interpolation of the response for a better starting point.
            let rr = |dx: i32, dy: i32| f64::from(resp[((y + dy) * w + x + dx) as usize]);
            let denom_x = rr(-1, 0) - 2.0 * rr(0, 0) + rr(1, 0);
            let denom_y = rr(0, -1) - 2.0 * rr(0, 0) + rr(0, 1);
            let ox = if denom_x < 0.0 {
                (0.5 * (rr(-1, 0) - rr(1, 0)) / denom_x).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            let oy = if denom_y < 0.0 {
                (0.5 * (rr(0, -1) - rr(0, 1)) / denom_y).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            let (cx, cy) = (f64::from(x) + ox, f64::from(y) + oy);
            if let Some((polarity, contrast)) = ring_test(smooth, cx, cy) {
                out.push(Candidate {
                    x: cx,
                    y: cy,
                    response: r,
                    polarity,
                    contrast,
                });
            }
        }
    }
    out
}

/// The X-junction test; returns the bright-diagonal axis in [0, π) and the ring's contrast when
/// it passes.
fn ring_test(img: &Img, x: f64, y: f64) -> Option<(f64, f64)> {
    let n = RING_SAMPLES;
    let mut vals = [0f64; RING_SAMPLES];
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    let (mut c1, mut s1, mut c2, mut s2) = (0.0, 0.0, 0.0, 0.0);
    for (k, v) in vals.iter_mut().enumerate() {
        let t = std::f64::consts::TAU * k as f64 / n as f64;
        *v = sample(
            img,
            x + RING_RADIUS_PX * t.cos(),
            y + RING_RADIUS_PX * t.sin(),
        );
        lo = lo.min(*v);
        hi = hi.max(*v);
        c1 += *v * t.cos();
        s1 += *v * t.sin();
        c2 += *v * (2.0 * t).cos();
        s2 += *v * (2.0 * t).sin();
    }
    let a1 = c1.hypot(s1);
    let a2 = c2.hypot(s2);
    let ideal = n as f64 * (hi - lo) / std::f64::consts::PI;
    if hi - lo < 8.0 || a2 < RING_MIN_X_FRACTION * ideal || a1 > 0.8 * a2 {
        return None;
    }
    // Ring signal ≈ cos(2θ - ψ): brightest along θ = ψ / 2.
    let psi = s2.atan2(c2);
    Some(((psi / 2.0).rem_euclid(std::f64::consts::PI), hi - lo))
}

/// Which side of the segment `a → b` is brighter, if the segment is a chessboard edge: at three
/// points along it, the grey levels on either side (a quarter of its length away) must differ in
/// the same direction by at least `min_contrast`. Returns the sign of left − right.
fn edge_sign(img: &Img, a: [f64; 2], b: [f64; 2], min_contrast: f64) -> Option<f64> {
    let d = [b[0] - a[0], b[1] - a[1]];
    let len = d[0].hypot(d[1]);
    if len < 2.0 {
        return None;
    }
    let off = (EDGE_SIDE_FRACTION * len).max(1.5) / len;
    let n = [-d[1] * off, d[0] * off];
    let mut sign = 0.0;
    for t in [0.35, 0.5, 0.65] {
        let m = [a[0] + t * d[0], a[1] + t * d[1]];
        let diff = sample(img, m[0] + n[0], m[1] + n[1]) - sample(img, m[0] - n[0], m[1] - n[1]);
        if diff.abs() < min_contrast || (sign != 0.0 && diff.signum() != sign) {
            return None;
        }
        sign = diff.signum();
    }
    Some(sign)
}

/// Angle between two polarity axes, in [0, π/2].
fn axis_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::PI);
    d.min(std::f64::consts::PI - d)
}

struct SpatialIndex {
    cell: f64,
    cols: usize,
    rows: usize,
    buckets: Vec<Vec<usize>>,
}

impl SpatialIndex {
    const CELL_PX: f64 = 16.0;

    fn new(cands: &[Candidate], w: u32, h: u32) -> Self {
        let cell = Self::CELL_PX;
        let cols = (f64::from(w) / cell).ceil() as usize + 1;
        let rows = (f64::from(h) / cell).ceil() as usize + 1;
        let mut buckets = vec![Vec::new(); cols * rows];
        for (i, c) in cands.iter().enumerate() {
            let bx = ((c.x / cell) as usize).min(cols - 1);
            let by = ((c.y / cell) as usize).min(rows - 1);
            buckets[by * cols + bx].push(i);
        }
        Self {
            cell,
            cols,
            rows,
            buckets,
        }
    }

    /// Candidates within `radius` of `(x, y)`.
    fn within(&self, x: f64, y: f64, radius: f64) -> impl Iterator<Item = usize> + '_ {
        let lo_x = ((x - radius) / self.cell).floor().max(0.0) as usize;
        let lo_y = ((y - radius) / self.cell).floor().max(0.0) as usize;
        let hi_x = (((x + radius) / self.cell).floor().max(0.0) as usize).min(self.cols - 1);
        let hi_y = (((y + radius) / self.cell).floor().max(0.0) as usize).min(self.rows - 1);
        (lo_y..=hi_y).flat_map(move |by| {
            (lo_x..=hi_x).flat_map(move |bx| self.buckets[by * self.cols + bx].iter().copied())
        })
    }
}

/// Nearest unused candidate to `at` within `radius` whose polarity axis is parallel to `axis`
/// (`parallel`) or perpendicular to it (`!parallel`).
fn nearest(
    index: &SpatialIndex,
    cands: &[Candidate],
    at: [f64; 2],
    radius: f64,
    axis: f64,
    parallel: bool,
    used: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    let [x, y] = at;
    let mut best: Option<(f64, usize)> = None;
    for i in index.within(x, y, radius) {
        if used(i) {
            continue;
        }
        let c = &cands[i];
        let d = (c.x - x).hypot(c.y - y);
        if d > radius {
            continue;
        }
        let diff = axis_diff(c.polarity, axis);
        let ok = if parallel {
            diff < std::f64::consts::FRAC_PI_4
        } else {
            diff > std::f64::consts::FRAC_PI_4
        };
        if ok && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, i));
        }
    }
    best.map(|(_, i)| i)
}

type Grid = HashMap<(i32, i32), usize>;

/// Grows a lattice from `seed`; `None` if no 3x3 seed lattice forms around it.
fn grow_grid(
    img: &Img,
    seed: usize,
    cands: &[Candidate],
    index: &SpatialIndex,
    spec: &BoardSpec,
) -> Option<Grid> {
    let c = cands[seed];
    let pol = |i: i32, j: i32| -> (f64, bool) {
        // Polarity axis expected at lattice (i, j) relative to the seed's: parallel when i+j even.
        (c.polarity, (i + j).rem_euclid(2) == 0)
    };
    // Neighbours of opposite polarity, nearest first.
    let mut neigh: Vec<(f64, usize)> = index
        .within(c.x, c.y, 200.0)
        .filter(|&i| {
            i != seed && axis_diff(cands[i].polarity, c.polarity) > std::f64::consts::FRAC_PI_4
        })
        .map(|i| ((cands[i].x - c.x).hypot(cands[i].y - c.y), i))
        .filter(|&(d, _)| d > 4.0)
        .collect();
    neigh.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n1 = neigh.first()?.1;
    let d1 = (cands[n1].x - c.x, cands[n1].y - c.y);
    let len1 = d1.0.hypot(d1.1);
    let n2 = neigh
        .iter()
        .skip(1)
        .find(|&&(d, i)| {
            let v = (cands[i].x - c.x, cands[i].y - c.y);
            let cos = (v.0 * d1.0 + v.1 * d1.1) / (d * len1);
            cos.abs() < 0.75 && d < 2.5 * len1 && d > 0.4 * len1
        })?
        .1;
    let d2 = (cands[n2].x - c.x, cands[n2].y - c.y);
    // Edges of the lattice must be edges of the board, with the bright side alternating.
    let edge = |a: usize, b: usize| {
        let min_contrast = EDGE_MIN_FRACTION * cands[a].contrast.min(cands[b].contrast);
        edge_sign(
            img,
            [cands[a].x, cands[a].y],
            [cands[b].x, cands[b].y],
            min_contrast,
        )
    };
    let sign_x = edge(seed, n1)?;
    let sign_y = edge(seed, n2)?;
    // Expected sign of the edge from (i, j) to (i + 1, j) (or (i, j + 1)).
    let expected = |i: i32, j: i32, along_i: bool| {
        let s = if along_i { sign_x } else { sign_y };
        if (i + j).rem_euclid(2) == 0 {
            s
        } else {
            -s
        }
    };
    let edges_ok = |grid: &Grid, (i, j): (i32, i32), k: usize| {
        [(1, 0), (-1, 0), (0, 1), (0, -1)].iter().all(|&(di, dj)| {
            let Some(&o) = grid.get(&(i + di, j + dj)) else {
                return true;
            };
            // Always measure from the lower lattice index to the higher.
            let (lo, hi, li, lj) = if di + dj > 0 {
                (k, o, i, j)
            } else {
                (o, k, i + di, j + dj)
            };
            edge(lo, hi) == Some(expected(li, lj, di != 0))
        })
    };
    let mut grid: Grid = HashMap::new();
    let mut used = vec![false; cands.len()];
    let put = |grid: &mut Grid, used: &mut Vec<bool>, ij: (i32, i32), k: usize| {
        grid.insert(ij, k);
        used[k] = true;
    };
    put(&mut grid, &mut used, (0, 0), seed);
    put(&mut grid, &mut used, (1, 0), n1);
    put(&mut grid, &mut used, (0, 1), n2);
    // The diagonal corner must exist for a genuine lattice.
    let len2 = d2.0.hypot(d2.1);
    let (pa, par) = pol(1, 1);
    let diag = nearest(
        index,
        cands,
        [c.x + d1.0 + d2.0, c.y + d1.1 + d2.1],
        SEARCH_FRACTION * len1.min(len2),
        pa,
        par,
        &|i| used[i],
    )?;
    if !edges_ok(&grid, (1, 1), diag) {
        return None;
    }
    put(&mut grid, &mut used, (1, 1), diag);

    let max_extent = spec.inner_cols.max(spec.inner_rows) as i32 + 2;
    let mut queue: VecDeque<(i32, i32)> = VecDeque::new();
    let push_neighbours = |queue: &mut VecDeque<(i32, i32)>, (i, j): (i32, i32)| {
        for (di, dj) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
            queue.push_back((i + di, j + dj));
        }
    };
    for ij in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        push_neighbours(&mut queue, ij);
    }
    let mut bounds = (0, 1, 0, 1);
    let mut steps = 0;
    while let Some((i, j)) = queue.pop_front() {
        steps += 1;
        if steps > 20_000 {
            break;
        }
        if grid.contains_key(&(i, j)) {
            continue;
        }
        let (min_i, max_i, min_j, max_j) = (
            bounds.0.min(i),
            bounds.1.max(i),
            bounds.2.min(j),
            bounds.3.max(j),
        );
        if max_i - min_i + 1 > max_extent || max_j - min_j + 1 > max_extent {
            continue;
        }
        let Some((px, py, spacing)) = predict(&grid, cands, i, j) else {
            continue;
        };
        let (pa, par) = pol(i, j);
        let Some(k) = nearest(
            index,
            cands,
            [px, py],
            SEARCH_FRACTION * spacing,
            pa,
            par,
            &|q| used[q],
        ) else {
            continue;
        };
        if !edges_ok(&grid, (i, j), k) {
            continue;
        }
        put(&mut grid, &mut used, (i, j), k);
        bounds = (min_i, max_i, min_j, max_j);
        push_neighbours(&mut queue, (i, j));
    }
    Some(grid)
}

/// Predicts the position of lattice cell `(i, j)` from filled neighbours: the mean of the linear
/// extrapolations along each axis direction and of the parallelogram completions. Returns the
/// prediction and the local spacing.
fn predict(grid: &Grid, cands: &[Candidate], i: i32, j: i32) -> Option<(f64, f64, f64)> {
    let p = |i: i32, j: i32| grid.get(&(i, j)).map(|&k| (cands[k].x, cands[k].y));
    let mut sum = (0.0, 0.0, 0.0);
    let mut n = 0.0;
    for (di, dj) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
        if let (Some(a), Some(b)) = (p(i + di, j + dj), p(i + 2 * di, j + 2 * dj)) {
            let pred = (2.0 * a.0 - b.0, 2.0 * a.1 - b.1);
            let spacing = (a.0 - b.0).hypot(a.1 - b.1);
            // Second-order (quadratic) extrapolation where three points exist.
            let pred = match p(i + 3 * di, j + 3 * dj) {
                Some(c) => (3.0 * a.0 - 3.0 * b.0 + c.0, 3.0 * a.1 - 3.0 * b.1 + c.1),
                None => pred,
            };
            sum = (sum.0 + pred.0, sum.1 + pred.1, sum.2 + spacing);
            n += 1.0;
        }
    }
    if n == 0.0 {
        for (di, dj) in [(1, 1), (1, -1), (-1, 1), (-1, -1)] {
            if let (Some(a), Some(b), Some(d)) = (p(i + di, j), p(i, j + dj), p(i + di, j + dj)) {
                let pred = (a.0 + b.0 - d.0, a.1 + b.1 - d.1);
                let spacing = (a.0 - d.0)
                    .hypot(a.1 - d.1)
                    .min((b.0 - d.0).hypot(b.1 - d.1));
                sum = (sum.0 + pred.0, sum.1 + pred.1, sum.2 + spacing);
                n += 1.0;
            }
        }
    }
    (n > 0.0).then(|| (sum.0 / n, sum.1 / n, sum.2 / n))
}

/// Picks the complete `cols x rows` window out of a grown lattice and orders it like OpenCV.
/// On failure returns (corners in the lattice, its extent along i, along j).
fn fit_board(
    grid: &Grid,
    cands: &[Candidate],
    spec: &BoardSpec,
) -> Result<Vec<[f64; 2]>, (usize, usize, usize)> {
    let min_i = grid.keys().map(|k| k.0).min().unwrap_or(0);
    let max_i = grid.keys().map(|k| k.0).max().unwrap_or(0);
    let min_j = grid.keys().map(|k| k.1).min().unwrap_or(0);
    let max_j = grid.keys().map(|k| k.1).max().unwrap_or(0);
    let (ext_i, ext_j) = ((max_i - min_i + 1) as usize, (max_j - min_j + 1) as usize);
    let fail = (grid.len(), ext_i, ext_j);
    let (nc, nr) = (spec.inner_cols as i32, spec.inner_rows as i32);
    // (window along i, window along j, transposed)
    let mut best: Option<(f32, i32, i32, bool)> = None;
    for (wi, wj, transposed) in [(nc, nr, false), (nr, nc, true)] {
        for i0 in min_i..=max_i - wi + 1 {
            for j0 in min_j..=max_j - wj + 1 {
                let mut score = 0f32;
                let mut full = true;
                'cells: for di in 0..wi {
                    for dj in 0..wj {
                        match grid.get(&(i0 + di, j0 + dj)) {
                            Some(&k) => score += cands[k].response,
                            None => {
                                full = false;
                                break 'cells;
                            }
                        }
                    }
                }
                if full && best.is_none_or(|b| score > b.0) {
                    best = Some((score, i0, j0, transposed));
                }
            }
        }
    }
    let (_, i0, j0, transposed) = best.ok_or(fail)?;
    let at = |c: i32, r: i32| -> [f64; 2] {
        let key = if transposed {
            (i0 + r, j0 + c)
        } else {
            (i0 + c, j0 + r)
        };
        let k = grid[&key];
        [cands[k].x, cands[k].y]
    };
    let mut pts: Vec<Vec<[f64; 2]>> = (0..nr)
        .map(|r| (0..nc).map(|c| at(c, r)).collect())
        .collect();
    // Not mirrored: board x (along a row) × board y (down the columns) must point into the
    // image like image x × image y (positive z-cross).
    let dx = [pts[0][1][0] - pts[0][0][0], pts[0][1][1] - pts[0][0][1]];
    let dy = [pts[1][0][0] - pts[0][0][0], pts[1][0][1] - pts[0][0][1]];
    if dx[0] * dy[1] - dx[1] * dy[0] < 0.0 {
        pts.reverse();
    }
    // Of the two remaining (180-degree) orders, start nearest the image's top-left.
    let first = pts[0][0];
    let last = pts[pts.len() - 1][pts[0].len() - 1];
    if last[0] + last[1] < first[0] + first[1] {
        pts.reverse();
        for row in &mut pts {
            row.reverse();
        }
    }
    Ok(pts.into_iter().flatten().collect())
}

/// Image gradients of the unsmoothed image at pixel centres: Scharr's 3x3 operator (the most
/// rotation-invariant 3x3 derivative), computed only in the refinement windows instead of over
/// a whole, possibly 12-megapixel, image. Pixels outside the image read as the nearest border
/// pixel.
struct Gradients<'a> {
    gray: &'a Img,
}

impl<'a> Gradients<'a> {
    fn new(gray: &'a Img) -> Self {
        Self { gray }
    }

    fn at_pixel(&self, x: i64, y: i64) -> (f64, f64) {
        let g = self.gray;
        let (w, h) = (i64::from(g.width()), i64::from(g.height()));
        let p = |xx: i64, yy: i64| {
            f64::from(
                g.get_pixel(xx.clamp(0, w - 1) as u32, yy.clamp(0, h - 1) as u32)
                    .0[0],
            )
        };
        let gx = 3.0 * (p(x + 1, y - 1) - p(x - 1, y - 1))
            + 10.0 * (p(x + 1, y) - p(x - 1, y))
            + 3.0 * (p(x + 1, y + 1) - p(x - 1, y + 1));
        let gy = 3.0 * (p(x - 1, y + 1) - p(x - 1, y - 1))
            + 10.0 * (p(x, y + 1) - p(x, y - 1))
            + 3.0 * (p(x + 1, y + 1) - p(x + 1, y - 1));
        (gx / 32.0, gy / 32.0)
    }
}

/// Gradients of one refinement window, computed once: Förstner's iterations move the window by
/// a pixel or two at most, and read the same pixels' gradients again each time. Pixels outside
/// the patch are computed on demand.
struct GradientPatch {
    x0: i64,
    y0: i64,
    side: i64,
    data: Vec<(f64, f64)>,
}

impl GradientPatch {
    /// Gradients of the pixels within `radius` of `(cx, cy)`.
    fn around(g: &Gradients<'_>, cx: i64, cy: i64, radius: i64) -> Self {
        let side = 2 * radius + 1;
        let (x0, y0) = (cx - radius, cy - radius);
        let mut data = Vec::with_capacity((side * side) as usize);
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                data.push(g.at_pixel(x, y));
            }
        }
        Self { x0, y0, side, data }
    }

    fn at_pixel(&self, g: &Gradients<'_>, x: i64, y: i64) -> (f64, f64) {
        let (dx, dy) = (x - self.x0, y - self.y0);
        if (0..self.side).contains(&dx) && (0..self.side).contains(&dy) {
            self.data[(dy * self.side + dx) as usize]
        } else {
            g.at_pixel(x, y)
        }
    }
}

/// Where the lattice says corner `k` should be: the mean of the midpoints of its row and column
/// neighbours, or linear extrapolations on the border. `None` on a board too small to tell.
fn lattice_prediction(corners: &[[f64; 2]], spec: &BoardSpec, k: usize) -> Option<[f64; 2]> {
    let (nc, nr) = (spec.inner_cols as i64, spec.inner_rows as i64);
    let (c, r) = ((k as i64) % nc, (k as i64) / nc);
    let at = |c: i64, r: i64| {
        (c >= 0 && r >= 0 && c < nc && r < nr).then(|| corners[(r * nc + c) as usize])
    };
    let mut acc = [0.0, 0.0];
    let mut n = 0.0;
    for (dc, dr) in [(1, 0), (0, 1)] {
        let pred = match (at(c - dc, r - dr), at(c + dc, r + dr)) {
            (Some(a), Some(b)) => Some([(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]),
            (Some(a), None) => {
                at(c - 2 * dc, r - 2 * dr).map(|b| [2.0 * a[0] - b[0], 2.0 * a[1] - b[1]])
            }
            (None, Some(a)) => {
                at(c + 2 * dc, r + 2 * dr).map(|b| [2.0 * a[0] - b[0], 2.0 * a[1] - b[1]])
            }
            (None, None) => None,
        };
        if let Some(p) = pred {
            acc = [acc[0] + p[0], acc[1] + p[1]];
            n += 1.0;
        }
    }
    (n > 0.0).then(|| [acc[0] / n, acc[1] / n])
}

/// The first corner farther than `tolerance` x the local spacing from its lattice prediction.
fn stray_corner(corners: &[[f64; 2]], spec: &BoardSpec, tolerance: f64) -> Option<(usize, usize)> {
    (0..corners.len()).find_map(|k| {
        let p = lattice_prediction(corners, spec, k)?;
        let off = (p[0] - corners[k][0]).hypot(p[1] - corners[k][1]);
        (off > tolerance * local_spacing(corners, spec, k) + STRAY_SLACK_PX)
            .then_some((k % spec.inner_cols, k / spec.inner_cols))
    })
}

/// Moves corners that stray from the lattice (a wrong saddle picked in noise) to where the
/// lattice predicts them, so the refinement starts near the true corner.
fn snap_stray_corners(mut corners: Vec<[f64; 2]>, spec: &BoardSpec) -> Vec<[f64; 2]> {
    for k in 0..corners.len() {
        if let Some(p) = lattice_prediction(&corners, spec, k) {
            let off = (p[0] - corners[k][0]).hypot(p[1] - corners[k][1]);
            if off > STRAY_BEFORE_REFINE * local_spacing(&corners, spec, k) + STRAY_SLACK_PX {
                tracing::debug!(k, off, "snapping a stray corner to the lattice");
                corners[k] = p;
            }
        }
    }
    corners
}

/// Local spacing of corner `k` of a row-major `cols x rows` board: the shortest distance to a
/// lattice neighbour.
fn local_spacing(corners: &[[f64; 2]], spec: &BoardSpec, k: usize) -> f64 {
    let (c, r) = ((k % spec.inner_cols) as i64, (k / spec.inner_cols) as i64);
    let mut best = f64::MAX;
    for (dc, dr) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
        let (cc, rr) = (c + dc, r + dr);
        if cc >= 0 && rr >= 0 && (cc as usize) < spec.inner_cols && (rr as usize) < spec.inner_rows
        {
            let o = corners[rr as usize * spec.inner_cols + cc as usize];
            best = best.min((o[0] - corners[k][0]).hypot(o[1] - corners[k][1]));
        }
    }
    best
}

/// Sub-pixel refinement of every corner (see the module docs, step 5): Förstner's estimate,
/// then the fit of a blurred X-junction ([`saddle::fit_corner`]) from there, over the same
/// window. The window may grow with the detection scale (big photos have big, soft corners).
fn refine_corners(
    g: &Gradients<'_>,
    corners: &[[f64; 2]],
    spec: &BoardSpec,
    scale: i32,
) -> Vec<[f64; 2]> {
    corners
        .iter()
        .enumerate()
        .map(|(k, &p)| {
            let spacing = local_spacing(corners, spec, k);
            let mut half = ((SUBPIX_WINDOW_FRACTION * spacing).round() as i32)
                .clamp(SUBPIX_MIN_HALF, SUBPIX_MAX_HALF * scale);
            let dirs = lattice_directions(corners, spec, k);
            if let Some(reach) = outer_square_reach(g.gray, corners, spec, k, dirs) {
                let cap = (reach - OUTER_EDGE_MARGIN_PX * f64::from(scale)).floor() as i32;
                half = half.min(cap.max(SUBPIX_MIN_HALF));
            }
            let first = refine_corner(g, p, half);
            saddle::fit_corner(g.gray, first, dirs, half).unwrap_or(first)
        })
        .collect()
}

/// How far the board's outer squares reach beyond corner `k` when it is on the grid's border
/// and they are cut short (a board printed with partial outer squares, or trimmed, where the
/// paper edge or the background come close): the distance in pixels from the corner to where
/// the outer squares end, or `None` when they are whole (or the corner is inside the grid).
/// Walks outward through the two outer squares that meet the corner, half a square to either
/// side of the grid line, until either leaves its starting grey level by half the contrast
/// between them.
/// `dirs` are the corner's [`lattice_directions`].
fn outer_square_reach(
    gray: &Img,
    corners: &[[f64; 2]],
    spec: &BoardSpec,
    k: usize,
    dirs: [[f64; 2]; 2],
) -> Option<f64> {
    let (nc, nr) = (spec.inner_cols, spec.inner_rows);
    let (c, r) = (k % nc, k / nc);
    if c != 0 && r != 0 && c + 1 != nc && r + 1 != nr {
        return None;
    }
    let p = corners[k];
    let unit = |d: [f64; 2]| {
        let n = d[0].hypot(d[1]).max(1e-9);
        [d[0] / n, d[1] / n]
    };
    let (row, col) = (unit(dirs[0]), unit(dirs[1]));
    // (inward neighbour, the grid line across) for each border the corner is on.
    let mut outward = Vec::new();
    if c == 0 && nc > 1 {
        outward.push((k + 1, col));
    }
    if c + 1 == nc && nc > 1 {
        outward.push((k - 1, col));
    }
    if r == 0 && nr > 1 {
        outward.push((k + nc, row));
    }
    if r + 1 == nr && nr > 1 {
        outward.push((k - nc, row));
    }
    let mut reach: Option<f64> = None;
    for (inner, across) in outward {
        let q = corners[inner];
        let step = [p[0] - q[0], p[1] - q[1]];
        let len = step[0].hypot(step[1]);
        if len < 4.0 {
            continue;
        }
        let side = 0.5 * len;
        let level = |t: f64, sign: f64| {
            sample(
                gray,
                p[0] + t * step[0] + sign * side * across[0],
                p[1] + t * step[1] + sign * side * across[1],
            )
        };
        let t0 = OUTER_WALK_START;
        let (a, b) = (level(t0, 1.0), level(t0, -1.0));
        let contrast = (a - b).abs();
        if contrast < OUTER_MIN_CONTRAST {
            continue;
        }
        let mut t = t0;
        while t <= 1.0 {
            let moved = (level(t, 1.0) - a).abs().max((level(t, -1.0) - b).abs());
            if moved > 0.5 * contrast {
                break;
            }
            t += OUTER_WALK_STEP;
        }
        if t < OUTER_WHOLE {
            let d = t * len;
            reach = Some(reach.map_or(d, |r| r.min(d)));
        }
    }
    reach
}

/// Directions of corner `k`'s row and column through it (to its neighbours on the lattice):
/// the two board edges that cross there.
fn lattice_directions(corners: &[[f64; 2]], spec: &BoardSpec, k: usize) -> [[f64; 2]; 2] {
    let (nc, nr) = (spec.inner_cols, spec.inner_rows);
    let (c, r) = (k % nc, k / nc);
    let along = |prev: Option<usize>, next: Option<usize>| {
        let a = corners[prev.unwrap_or(k)];
        let b = corners[next.unwrap_or(k)];
        [b[0] - a[0], b[1] - a[1]]
    };
    [
        along(
            c.checked_sub(1).map(|cc| r * nc + cc),
            (c + 1 < nc).then(|| r * nc + c + 1),
        ),
        along(
            r.checked_sub(1).map(|rr| rr * nc + c),
            (r + 1 < nr).then(|| (r + 1) * nc + c),
        ),
    ]
}

/// Förstner's corner at one corner: the point `p` that minimises `Σ w (g · (q - p))²` over the
/// pixels `q` of a window around it, `g` the gradient at `q` (every edge pixel's line along its
/// edge passes through the corner), iterated as the window follows `p`.
///
/// Gradients are taken at pixel centres and only the window's weights move with `p` (a
/// Gaussian of `half / 2`, tapered to zero at `half + 0.5` so that it is continuous in `p`).
/// OpenCV's `cornerSubPix` instead resamples the image bilinearly at `p + integer offsets`: all
/// its samples then share `p`'s sub-pixel phase, and bilinear interpolation blurs differently at
/// each phase, which pulls corners toward or away from pixel centres ("pixel locking"; about
/// 0.03 px on sharp synthetic boards, measured against their exact corners).
///
/// The window's weighted mean gradient is taken off every gradient first. Around a true corner
/// the board's gradients are point-symmetric (opposite quadrants have one colour), so their
/// mean is zero; uneven light (a glare spot, a light gradient) adds a gradient that is nearly
/// constant over the window, which would otherwise pull the corner along it (noise-free
/// renders: 0.030 -> 0.011 px from the truth, glare views 0.03-0.08 -> 0.01 px).
fn refine_corner(g: &Gradients<'_>, start: [f64; 2], half: i32) -> [f64; 2] {
    let mut p = start;
    let sigma = f64::from(half) * 0.5;
    let reach = f64::from(half) + 0.5;
    let taper = |o: f64| (reach - o.abs()).clamp(0.0, 1.0);
    let span = i64::from(half) + 1;
    let patch = GradientPatch::around(
        g,
        start[0].round() as i64,
        start[1].round() as i64,
        span + PATCH_MARGIN_PX,
    );
    let mut samples: Vec<(f64, f64, f64, f64, f64)> = Vec::new();
    for _ in 0..SUBPIX_MAX_ITERS {
        samples.clear();
        let (px, py) = (p[0].round() as i64, p[1].round() as i64);
        let (mut sw, mut mgx, mut mgy) = (0.0, 0.0, 0.0);
        for qy in py - span..=py + span {
            for qx in px - span..=px + span {
                let (qxf, qyf) = (qx as f64, qy as f64);
                let (ox, oy) = (qxf - p[0], qyf - p[1]);
                let wgt =
                    (-(ox * ox + oy * oy) / (2.0 * sigma * sigma)).exp() * taper(ox) * taper(oy);
                if wgt == 0.0 {
                    continue;
                }
                let (gx, gy) = patch.at_pixel(g, qx, qy);
                sw += wgt;
                mgx += wgt * gx;
                mgy += wgt * gy;
                samples.push((qxf, qyf, wgt, gx, gy));
            }
        }
        if sw <= 0.0 {
            break;
        }
        let (mgx, mgy) = (mgx / sw, mgy / sw);
        let (mut a, mut b, mut c, mut bx, mut by) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(qxf, qyf, wgt, gx, gy) in &samples {
            let (gx, gy) = (gx - mgx, gy - mgy);
            let (gxx, gxy, gyy) = (wgt * gx * gx, wgt * gx * gy, wgt * gy * gy);
            a += gxx;
            b += gxy;
            c += gyy;
            bx += gxx * qxf + gxy * qyf;
            by += gxy * qxf + gyy * qyf;
        }
        let det = a * c - b * b;
        if det.abs() < 1e-9 {
            break;
        }
        let nx = (c * bx - b * by) / det;
        let ny = (a * by - b * bx) / det;
        let step = (nx - p[0]).hypot(ny - p[1]);
        // A corner that wanders off by more than the window is not a corner: keep the start.
        if (nx - start[0]).hypot(ny - start[1]) > f64::from(half) {
            return start;
        }
        p = [nx, ny];
        if step < SUBPIX_EPS_PX {
            break;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_board_sizes() -> Result<(), CalibError> {
        let b = BoardSpec::parse("9x6", 3.0)?;
        assert_eq!((b.inner_cols, b.inner_rows), (9, 6));
        assert!(BoardSpec::parse("9by6", 3.0).is_err());
        assert!(BoardSpec::parse("2x6", 3.0).is_err());
        assert!(BoardSpec::parse("9x6", -1.0).is_err());
        Ok(())
    }

    #[test]
    fn outline_walks_the_grid_edge_once() -> Result<(), CalibError> {
        let b = BoardSpec::new(4, 3, 1.0)?;
        let corners: Vec<[f64; 2]> = (0..12).map(|i| [(i % 4) as f64, (i / 4) as f64]).collect();
        let ring = b.outline(&corners);
        // 2 (c + r) - 4 edge corners, clockwise from the first.
        assert_eq!(
            ring,
            vec![
                [0.0, 0.0],
                [1.0, 0.0],
                [2.0, 0.0],
                [3.0, 0.0],
                [3.0, 1.0],
                [3.0, 2.0],
                [2.0, 2.0],
                [1.0, 2.0],
                [0.0, 2.0],
                [0.0, 1.0]
            ]
        );
        assert!(b.outline(&corners[..11]).is_empty());
        Ok(())
    }

    #[test]
    fn blank_image_has_no_board() {
        let img = GrayImage::from_pixel(200, 100, Luma([128]));
        let spec = BoardSpec {
            inner_cols: 9,
            inner_rows: 6,
            square_mm: 3.0,
        };
        assert_eq!(detect_board(&img, &spec), Err(NotFound::NoCorners));
    }
}
