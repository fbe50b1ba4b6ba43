//! Where the skin is: a per-frame mask of treatable scalp in the rig view.
//!
//! A camera at the chair sees more than shaved scalp: the room past the head, longer hair, an
//! ear, the cape, gloved fingers, the machine, wiped ink. No dot is reported and nothing is
//! planned outside this mask.
//!
//! # Method (classical, about 6-7 ms at 1280x720 and 20 px/mm on one core)
//! 1. The frame is averaged over cells of about [`CELL_MM`] and each cell converted to CIELAB
//!    (D65).
//! 2. **The scalp's colour** is chosen among the peaks of the frame's (a*, b*) histogram, over
//!    cells of a plausible skin hue ([`SKIN_HUE_DEG`]) or near neutral: skin of every
//!    Fitzpatrick type is a warm hue that differs mostly in lightness and chroma, and a white
//!    balance error or coloured room light moves it (a pale scalp under a cool cast is almost
//!    grey). The scalp is the peak whose colour covers the largest connected region (on blocks of
//!    about 1 mm), not the densest bin: a glossy cartridge or glove is one tight colour, often
//!    warm-tinted under a warm cast, but a smaller and separate piece, while skin is one broad
//!    surface. A near-neutral peak must be textured like skin (dots, mottling) and dominate the
//!    frame, since its hue is no evidence. The scalp's spread (robust, MAD) sets the colour
//!    tolerance, so mottled skin or a noisy sensor widens it.
//! 3. **The local skin lightness** is a high percentile of the skin-coloured cells' L* in blocks
//!    of [`BLOCK_MM`], interpolated: vignetting and uneven light change it across the frame.
//! 4. A cell is *not skin* when it is not close to the scalp's colour in (a*, b*) and its hue
//!    differs from the scalp's by more than the tolerance, or
//!    its chroma, scaled to its lightness (a shadow keeps the hue and loses chroma in
//!    proportion), is outside [`CHROMA_RATIO`] of the scalp's, or when it is
//!    much darker ([`DARK_RATIO`]) or brighter ([`BRIGHT_DELTA`]) than the skin around it.
//! 5. **Smooth and saturated**: a connected area of at least [`SMOOTH_MIN_MM2`] whose blocks of
//!    about 1 mm are far smoother than the frame's plainest skin ([`SMOOTH_RATIO`]) and, on
//!    average, more saturated than the scalp at their lightness ([`SMOOTH_MIN_CHROMA_RATIO`]) is
//!    not skin: a translucent or glossy cartridge of the skin's hue passes the colour tests, but
//!    skin is never smooth over millimetres (dots, follicles, pores, mottling).
//! 6. Clean-up: not-skin regions smaller than [`MIN_REGION_MM2`] are dots, follicles, moles or
//!    noise and are skin again; the rest is closed over [`CLOSE_MM`] (gaps between strands,
//!    glove wrinkles) and skin islands smaller than [`MIN_REGION_MM2`] inside it are filled.
//! 7. **Out of focus and apart from the scalp**: a skin region not connected to the largest
//!    one whose median sharpness (a cell's mean absolute Laplacian over its mean) is under
//!    [`ISLAND_SHARPNESS_RATIO`] of the largest region's is not skin: a fold of the ear or the
//!    room seen between occluders, outside the focal plane. A piece of scalp that an occluder
//!    cuts off is as sharp as the rest.
//! 8. **The edge at a finer step**: cells that straddle the edge mix skin with what is not, so
//!    a mask of whole cells runs up to a cell inside the skin, and a soft edge (an ear, a cape
//!    out of focus) or an occluder's shadow moves it further. Near the edge the mask is redrawn
//!    on cells a third the size, each taking the kind of the nearest colour among the decided
//!    cells around it (both kinds come in several colours: lit and shadowed skin; a glove, its
//!    cartridge, a cape).
//!
//! What it does not separate alone: a wall, cloth or ear of the skin's own colour and lightness
//! that touches the scalp (step 7 needs it apart), and longer hair lying sparse over skin.
//!
//! # With the skin model
//! When a skin model is set ([`SkinMasker::set_model`]; `stipple detect`, `plan` and `serve`
//! set the bundled one, `models/stipple-skin.onnx`, unless `--no-model`), it sees the frame at
//! 6 px/mm with about 40 mm of context, and its probability of not-skin p at each colour cell
//! is fused with the classical decision before the edge is redrawn (step 8): a cell is not skin
//! when p is over [`LEARNED_NOT_SKIN`], or when the classical steps say so and p is over
//! [`LEARNED_KEEP`]. The model finds the surfaces of the skin's own colour that the colour tests
//! pass (a mass of hair, an ear, a cape); the colour tests keep the edges sharp, and a classical
//! call of not-skin where the model is sure of skin is dropped. A view that would call more than
//! [`LEARNED_MAX_OVERRULED`] of what the colour tests call skin not skin is set aside for that
//! frame: the model has met something it never learned (an occluder of another colour).

use image::RgbImage;

use crate::perception::filter::luma_of;
use crate::perception::segment::{ModelKind, OnnxSegmenter, SegMask, SegmentError};

/// Side of a mask cell (mm).
pub const CELL_MM: f64 = 0.25;
/// Smallest side of a mask cell (px): finer cells only add sensor noise.
const MIN_CELL_PX: f64 = 3.0;
/// Side of a block for the local skin lightness (mm).
pub const BLOCK_MM: f64 = 4.0;
/// Hue angle range (degrees, atan2(b*, a*)) a skin colour may take, casts included.
pub const SKIN_HUE_DEG: (f64, f64) = (-10.0, 100.0);
/// Skin needs at least this chroma (C*ab): greys, blacks and whites are not skin.
pub const SKIN_MIN_CHROMA: f64 = 4.0;
/// Hue tolerance: floor (degrees) and multiple of the scalp's robust hue spread.
pub const HUE_TOL_DEG: (f64, f64) = (10.0, 4.0);
/// Chroma relative to the scalp's (at the cell's lightness) that skin may have.
pub const CHROMA_RATIO: (f64, f64) = (0.6, 1.7);
/// A cell darker than this fraction of the local skin lightness is not skin. Skin in a
/// glove's, a cartridge's or an ear's shadow keeps the scalp's chromaticity and passes the
/// colour tests down to about half its lightness; what is darker still is taken for not skin
/// (hair, a black cartridge, the shadow's deepest core).
pub const DARK_RATIO: f64 = 0.5;
/// A cell this much brighter (L* units) than the local skin, at least, is not skin.
pub const BRIGHT_DELTA: f64 = 14.0;
/// Percentile of skin-coloured cells' L* taken as the local skin lightness.
pub const SKIN_L_PERCENTILE: f64 = 0.75;
/// Not-skin regions smaller than this are dots on the skin; skin islands smaller than this
/// inside not-skin are part of it (mm²).
pub const MIN_REGION_MM2: f64 = 0.8;
/// Closing radius over not-skin regions (mm).
pub const CLOSE_MM: f64 = 0.4;
/// Below this chroma (C*ab) a colour is near neutral: it may be skin under a cast.
const NEUTRAL_CHROMA: f64 = 6.0;
/// A frame whose every colour cell is under this chroma (C*ab) carries no colour: a greyscale
/// or infrared picture (its cells' chroma is 0 up to rounding). Skin under the strongest cast
/// still varies in colour by more from cell to cell (mottling, dots, follicles).
pub const COLOURLESS_CHROMA: f64 = 1.0;
/// Most candidate scalp colours (histogram peaks) weighed by their mass.
const MAX_CANDIDATES: usize = 6;
/// Radius in (a*, b*) around a candidate colour that counts as its mass: floor, and fraction of
/// its chroma.
const CANDIDATE_RADIUS: (f32, f32) = (4.0, 0.3);
/// A cell this textured (spread of luminance over its mean) has dots or mottling in it.
const TEXTURE_CV: f32 = 0.08;
/// [`TEXTURE_CV`] on a colourless frame ([`COLOURLESS_CHROMA`]). There nothing but texture tells
/// a surface from a flat card, and a pale scalp seen in grey at a coarse scale has few cells
/// past [`TEXTURE_CV`] (5.5% on a rendered type II frame at 14 px/mm, against 76% past this);
/// a uniform frame has none.
const TEXTURE_CV_COLOURLESS: f32 = 0.02;
/// Share of a near-neutral candidate's cells that must be textured for it to be the scalp.
const NEUTRAL_TEXTURED: f64 = 0.05;
/// A near-neutral candidate is the scalp only when its region is this many times the largest
/// skin-hued one.
const NEUTRAL_MARGIN: f64 = 2.0;
/// Radius in (a*, b*) around the scalp's colour, as a fraction of its chroma, of the cells whose
/// spread sets the colour tolerance (floored at `CANDIDATE_RADIUS.0`).
const SPREAD_RADIUS: f32 = 0.2;
/// Side of the blocks over which candidate regions are connected (mm).
const CANDIDATE_BLOCK_MM: f64 = 1.0;
/// A cell within this distance in (a*, b*) of the scalp's colour (scaled to its lightness) is
/// skin-coloured.
const NEAR_AB: f64 = 3.0;
/// A block of about 1 mm whose texture (mean of its cells' luminance spread
/// over mean) is under this fraction of the scalp's plainest blocks ([`SMOOTH_REF_PERCENTILE`]
/// of the blocks: skin between dots, its own mottling and the sensor's noise) is smooth.
pub const SMOOTH_RATIO: f32 = 0.8;
/// Percentile of the skin blocks' texture taken as the scalp's plainest.
pub const SMOOTH_REF_PERCENTILE: f64 = 0.25;
/// A smooth area is taken for not skin only when it is this much more saturated than the scalp
/// at its lightness (mean over its cells): plastics are; skin in an occluder's shadow keeps the
/// scalp's chroma for its lightness, and would otherwise pass for smooth.
pub const SMOOTH_MIN_CHROMA_RATIO: f32 = 1.2;
/// Connected smooth blocks covering at least this much (mm²) are a surface of the skin's colour
/// that is not skin (a translucent cartridge, a cloth); smaller smooth patches are skin between
/// dots.
pub const SMOOTH_MIN_MM2: f64 = 6.0;

/// A skin region apart from the scalp (the largest) whose median sharpness is under this share
/// of the scalp's is out of the camera's focus: an ear or the room, not skin to treat.
/// Chosen on the development seeds 7000-7063, where such pieces of the room and ear measure
/// 0.20-0.71 and pieces of the scalp cut off by an occluder 0.80-0.99 (docs/skin-mask.md).
pub const ISLAND_SHARPNESS_RATIO: f32 = 0.75;

/// The mask's edge is drawn on cells this many times finer than the colour cells (at least
/// [`MIN_EDGE_CELL_PX`] px): a colour cell that straddles the edge mixes skin with what is not,
/// so the edge of a mask of whole colour cells runs up to a cell inside the skin.
const EDGE_SUBDIVISION: f64 = 3.0;
/// Smallest side of an edge cell (px).
const MIN_EDGE_CELL_PX: u32 = 2;
/// Colour cells within this many cells (Chebyshev) of the other kind are redrawn at the edge
/// step: a soft edge (an ear or a cape out of focus) mixes colours over more than one cell.
const EDGE_BAND_CELLS: usize = 2;
/// The reference colours of the edge come from colour cells outside the band within this many
/// cells of it.
const EDGE_REFERENCE_CELLS: usize = 2;

/// A colour cell in the band whose colour is this many times nearer (squared CIELAB
/// difference, at least 1) to the nearest reference of its own kind than to the other's is
/// that kind whole, and not redrawn cell by cell (a quarter of the edge's cost).
const EDGE_PLAIN_RATIO: f32 = 16.0;

/// A colour cell whose skin-model probability of not-skin is over this is not skin, whatever
/// the classical steps say. With [`LEARNED_KEEP`], chosen on the development chair seeds
/// 7000-7063 (docs/skin-mask.md) among 0.5-0.8 and 0.02-0.3, fused pixel by pixel in a trial:
/// skin IoU there went from a minimum of 0.831 (classical alone; the model alone 0.927) to
/// 0.953; as built, at the colour cells, 0.956.
pub const LEARNED_NOT_SKIN: f32 = 0.5;
/// A colour cell the classical steps call not skin stays so only when the skin model's
/// probability of not-skin is over this.
pub const LEARNED_KEEP: f32 = 0.1;
/// A probability of not-skin between [`LEARNED_KEEP`] and [`LEARNED_NOT_SKIN`]: it leaves the
/// classical decision standing. A skin model's view warped from an earlier frame holds it where
/// that frame did not show the skin (see `SegMask::warp_into`).
pub const LEARNED_UNDECIDED: f32 = 0.5 * (LEARNED_KEEP + LEARNED_NOT_SKIN);
/// The skin model's view is set aside for a frame when it calls more than this share of the
/// colour cells the classical steps call skin not skin. A model that learned one renderer's
/// gloves and rooms can turn a frame inside out when an occluder has a colour it never saw: on
/// the development chair seeds 7000-7031 with their occluders turned to other hues
/// (`examples/mask_stress.rs`), the bundled model called a yellow glove skin and up to all of
/// the skin not skin: 39 of 224 turned frames fell under 0.1 of skin IoU, where the colour
/// rules alone stayed over 0.95 on all but 5. As drawn, it overrules at most 16% (an ear
/// against the scalp; 62 of the 64 seeds 7000-7063 under 2.5%), so the limit sits at about
/// twice that: set aside wrongly, the model costs a frame little (the colour rules alone: mean
/// IoU 0.98 on those seeds); used wrongly, it can cost most of the frame.
pub const LEARNED_MAX_OVERRULED: f64 = 0.3;
/// [`LEARNED_MAX_OVERRULED`] holds from this scale (px/mm) up: the rig's view, where the scalp
/// fills most of the frame. The colour rules take the colour of the largest skin-coloured
/// region for the scalp's; at a whole head's scale (3-8 px/mm) a wall or room of the skin's
/// colour can be larger than the scalp, and the rules then call the wall skin and the scalp not
/// skin, which is what the skin model learned to undo (it saw whole-head photographs). It is
/// also the planner's least scale ([`crate::planning::MIN_PLAN_PX_PER_MM`]).
pub const LEARNED_GUARD_MIN_PX_PER_MM: f64 = 10.0;

/// The skin mask of one frame, on a grid of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SkinMask {
    width: u32,
    height: u32,
    cell: u32,
    cols: usize,
    rows: usize,
    px_per_mm: f64,
    /// Row-major per cell: true where skin.
    skin: Vec<bool>,
    fraction: f64,
    /// A calibrated lens for the millimetre queries; `None`: pixels over `px_per_mm`.
    plane: Option<crate::calib::PlaneMap>,
    /// The frame carried no colour ([`COLOURLESS_CHROMA`]): the mask rests on lightness and
    /// texture alone.
    colourless: bool,
    /// A skin model's view was given and set aside ([`LEARNED_MAX_OVERRULED`]).
    learned_set_aside: bool,
}

impl SkinMask {
    /// A mask of a `width` x `height` frame from a rule: each `cell` x `cell` block is skin
    /// where `is_skin` says so at its centre (pixels). For masks made from something other than
    /// one picture, such as the live session's skin map over the planner's rectangle.
    pub fn from_fn(
        width: u32,
        height: u32,
        cell: u32,
        px_per_mm: f64,
        is_skin: impl Fn(f64, f64) -> bool,
    ) -> Self {
        let cell = cell.max(1);
        let cols = width.div_ceil(cell).max(1) as usize;
        let rows = height.div_ceil(cell).max(1) as usize;
        let mut skin = Vec::with_capacity(cols * rows);
        let (mut area, mut total) = (0u64, 0u64);
        for r in 0..rows {
            for c in 0..cols {
                let (x0, y0) = (c as u32 * cell, r as u32 * cell);
                let (cw, ch) = (
                    cell.min(width.saturating_sub(x0)),
                    cell.min(height.saturating_sub(y0)),
                );
                let yes = is_skin(
                    f64::from(x0) + f64::from(cw) / 2.0,
                    f64::from(y0) + f64::from(ch) / 2.0,
                );
                let n = u64::from(cw) * u64::from(ch);
                total += n;
                area += if yes { n } else { 0 };
                skin.push(yes);
            }
        }
        Self {
            width,
            height,
            cell,
            cols,
            rows,
            px_per_mm,
            skin,
            fraction: area as f64 / total.max(1) as f64,
            plane: None,
            colourless: false,
            learned_set_aside: false,
        }
    }

    /// Answers the millimetre queries ([`SkinMask::is_skin_mm`], [`SkinMask::skin_area_mm2`])
    /// through `plane` (a calibrated lens; it must have the mask's scale).
    pub fn set_plane(&mut self, plane: crate::calib::PlaneMap) {
        self.plane = Some(plane);
    }

    /// Fraction of the frame's pixels that are skin.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Whether the frame carried no colour (a greyscale or infrared picture: every colour cell's
    /// chroma under [`COLOURLESS_CHROMA`]). Its mask then rests on lightness and texture alone:
    /// the colour rules have nothing to read, and the skin model, which learned colour, is set
    /// aside. A grey surface textured like skin (dots, mottling) is skin, a flat one is not.
    /// Callers that name the picture should say so.
    pub fn colourless(&self) -> bool {
        self.colourless
    }

    /// Whether a skin model's view of this frame was set aside because it would have called
    /// more than [`LEARNED_MAX_OVERRULED`] of what the colour rules call skin not skin (at
    /// [`LEARNED_GUARD_MIN_PX_PER_MM`] and finer). The mask then rests on the colour rules
    /// alone, and one of the two met something it was not made for, most often an occluder of
    /// a colour the model never learned (the model is then wrong). Callers that name the
    /// picture should say so: its skin fraction is not to be trusted blindly.
    pub fn learned_set_aside(&self) -> bool {
        self.learned_set_aside
    }

    /// Frame size (px).
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Side of a cell (px).
    pub fn cell_px(&self) -> u32 {
        self.cell
    }

    /// Grid size in cells (columns, rows).
    pub fn grid(&self) -> (usize, usize) {
        (self.cols, self.rows)
    }

    /// Whether the cell at (col, row) is skin; cells off the grid are not.
    pub fn cell_is_skin(&self, col: usize, row: usize) -> bool {
        col < self.cols && row < self.rows && self.skin[row * self.cols + col]
    }

    /// Whether the point (x, y) in pixels is on skin. Points off the frame are not: nothing is
    /// known there.
    pub fn is_skin(&self, x: f64, y: f64) -> bool {
        if !(x >= 0.0 && y >= 0.0 && x < f64::from(self.width) && y < f64::from(self.height)) {
            return false;
        }
        let c = (x / f64::from(self.cell)) as usize;
        let r = (y / f64::from(self.cell)) as usize;
        self.cell_is_skin(c, r)
    }

    /// Whether the point (x, y) in millimetres of the frame (pixels / px_per_mm, or through
    /// the lens after [`SkinMask::set_plane`]) is on skin.
    pub fn is_skin_mm(&self, x_mm: f64, y_mm: f64) -> bool {
        match &self.plane {
            Some(plane) => {
                let (x, y) = plane.to_px(x_mm, y_mm);
                self.is_skin(x, y)
            }
            None => self.is_skin(x_mm * self.px_per_mm, y_mm * self.px_per_mm),
        }
    }

    /// Skin area of the frame (mm²); through the lens, each skin cell's own area on the plane.
    pub fn skin_area_mm2(&self) -> f64 {
        let Some(plane) = &self.plane else {
            return f64::from(self.width) * f64::from(self.height) * self.fraction
                / (self.px_per_mm * self.px_per_mm);
        };
        let (w, h, cell) = (
            f64::from(self.width),
            f64::from(self.height),
            f64::from(self.cell),
        );
        let mut area = 0.0;
        for r in 0..self.rows {
            for c in 0..self.cols {
                if self.skin[r * self.cols + c] {
                    let (x0, y0) = (c as f64 * cell, r as f64 * cell);
                    area += plane.area_mm2(x0, y0, (x0 + cell).min(w), (y0 + cell).min(h));
                }
            }
        }
        area
    }

    /// Distance in pixels from (x, y) to the nearest not-skin cell centre within `reach` px,
    /// or `None` if there is none that close. The frame's border is not an edge of the skin.
    pub fn distance_to_not_skin(&self, x: f64, y: f64, reach: f64) -> Option<f64> {
        self.distance_to(x, y, reach, false)
    }

    /// Distance in pixels from (x, y) to the nearest skin cell within `reach` px (0 on skin),
    /// or `None` if there is none that close.
    pub fn distance_to_skin(&self, x: f64, y: f64, reach: f64) -> Option<f64> {
        self.distance_to(x, y, reach, true)
    }

    fn distance_to(&self, x: f64, y: f64, reach: f64, skin: bool) -> Option<f64> {
        let cell = f64::from(self.cell);
        let (c0, r0) = ((x / cell).floor() as i64, (y / cell).floor() as i64);
        let span = (reach / cell).ceil() as i64 + 1;
        let (c_lo, c_hi) = ((c0 - span).max(0), (c0 + span).min(self.cols as i64 - 1));
        if c_lo > c_hi {
            return None;
        }
        let mut best: Option<f64> = None;
        for r in (r0 - span).max(0)..=(r0 + span).min(self.rows as i64 - 1) {
            let row = r as usize * self.cols;
            let cells = &self.skin[row + c_lo as usize..=row + c_hi as usize];
            // Most rows near a dot hold no cell of the kind: one scan of the row rules it out.
            if !cells.contains(&skin) {
                continue;
            }
            for (c, _) in (c_lo..).zip(cells).filter(|(_, &s)| s == skin) {
                // Nearest point of the cell's square (squared distance).
                let (x0, y0) = (c as f64 * cell, r as f64 * cell);
                let dx = (x0 - x).max(0.0).max(x - (x0 + cell));
                let dy = (y0 - y).max(0.0).max(y - (y0 + cell));
                let d2 = dx * dx + dy * dy;
                if d2 <= reach * reach && best.is_none_or(|b| d2 < b) {
                    best = Some(d2);
                }
            }
        }
        best.map(f64::sqrt)
    }

    /// Per cell: whether the cell lies within `radius_px` of a not-skin cell (itself included),
    /// row-major on [`SkinMask::grid`]. The frame's border is not an edge of the skin.
    pub fn keep_out_cells(&self, radius_px: f64) -> Vec<bool> {
        let r = (radius_px / f64::from(self.cell)).max(0.0);
        let span = r.ceil() as i64;
        let offsets: Vec<(i64, i64)> = (-span..=span)
            .flat_map(|dy| (-span..=span).map(move |dx| (dx, dy)))
            // Cell squares closer than r: centre distance minus about one cell.
            .filter(|&(dx, dy)| {
                let gx = (dx.abs() - 1).max(0) as f64;
                let gy = (dy.abs() - 1).max(0) as f64;
                gx.hypot(gy) < r
            })
            .collect();
        let (cols, rows) = (self.cols as i64, self.rows as i64);
        let mut out: Vec<bool> = self.skin.iter().map(|&s| !s).collect();
        let skin_at = |c: i64, r: i64| {
            c >= 0 && r >= 0 && c < cols && r < rows && self.skin[(r * cols + c) as usize]
        };
        for row in 0..rows {
            for col in 0..cols {
                // Only the not-skin cells at the edge reach skin: the way from a skin cell to a
                // not-skin cell inside passes one at the edge that is closer.
                if self.skin[(row * cols + col) as usize]
                    || !(skin_at(col - 1, row)
                        || skin_at(col + 1, row)
                        || skin_at(col, row - 1)
                        || skin_at(col, row + 1))
                {
                    continue;
                }
                for &(dx, dy) in &offsets {
                    let (c, rr) = (col + dx, row + dy);
                    if c >= 0 && rr >= 0 && c < cols && rr < rows {
                        out[(rr * cols + c) as usize] = true;
                    }
                }
            }
        }
        out
    }

    /// The outlines of the not-skin regions, in pixels, simplified to within about a quarter
    /// millimetre (or a cell, if coarser);
    /// at most `max_regions` of them, largest first.
    pub fn not_skin_polygons(&self, max_regions: usize) -> Vec<Vec<[f64; 2]>> {
        let not_skin: Vec<bool> = self.skin.iter().map(|&s| !s).collect();
        let cell = f64::from(self.cell);
        let grid = crate::geometry::CellGrid {
            set: &not_skin,
            cols: self.cols,
            rows: self.rows,
            cell_px: cell,
            size: [f64::from(self.width), f64::from(self.height)],
        };
        // Within a quarter millimetre (a colour cell) or a cell, whichever is coarser.
        grid.outlines((CELL_MM * self.px_per_mm / cell).max(1.0), max_regions, 0.0)
    }

    /// The mask as an image, 255 where not skin (for the page, tests and figures).
    pub fn not_skin_image(&self) -> image::GrayImage {
        image::GrayImage::from_fn(self.width, self.height, |x, y| {
            let skin = self.is_skin(f64::from(x) + 0.5, f64::from(y) + 0.5);
            image::Luma([if skin { 0 } else { 255 }])
        })
    }
}

/// Computes skin masks, reusing its buffers from frame to frame.
#[derive(Debug, Default)]
pub struct SkinMasker {
    /// The skin model fused with the classical decision, when set.
    model: Option<Box<OnnxSegmenter>>,
    lab: Vec<[f32; 3]>,
    /// Per cell: spread of linear luminance over its mean (coefficient of variation).
    texture: Vec<f32>,
    /// Per cell: chroma over the scalp's at the cell's lightness (1: the scalp's own).
    rho: Vec<f32>,
    bad: Vec<bool>,
    /// Per colour cell: the skin model's probability of not-skin (see `fuse_learned`).
    learned_p: Vec<f32>,
    /// Scratch of [`for_each_region`]: cells already in a region.
    seen: Vec<bool>,
    stack: Vec<usize>,
    tmp: Vec<bool>,
    /// CIELAB's f(t) on `0..=1` in [`CBRT_STEPS`] steps.
    cbrt: Vec<f32>,
    /// The decision per colour cell (true: skin), before the edge is redrawn at the finer step;
    /// [`SkinMasker::ring_is_skin`] reads the colour cells.
    coarse: Vec<bool>,
    /// Colour cell side (px) and grid (columns, rows) of `lab` and `coarse`.
    coarse_cell: u32,
    coarse_grid: (usize, usize),
    /// Whether the edge is left at the colour cells (see [`SkinMasker::set_fine_edge`]).
    coarse_edge: bool,
    mask: SkinMask,
}

/// Whether every pixel of `image` has its three channels equal. Such a frame is colourless
/// ([`SkinMask::colourless`]); one with a few unequal pixels may be too, decided on its cells.
pub(crate) fn every_pixel_grey(image: &RgbImage) -> bool {
    image
        .as_raw()
        .chunks_exact(3)
        .all(|p| p[0] == p[1] && p[1] == p[2])
}

/// Steps of the table of CIELAB's f(t).
const CBRT_STEPS: usize = 4096;

/// sRGB byte to linear light (built once: it is read per frame and per edge dot).
fn srgb_lut() -> &'static [f32; 256] {
    static LUT: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    LUT.get_or_init(|| {
        std::array::from_fn(|i| {
            let c = i as f32 / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
    })
}

fn lab_f(t: f32) -> f32 {
    if t > 0.008_856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

/// CIELAB's f(t) from the table, linearly interpolated.
fn lab_f_table(table: &[f32], t: f32) -> f32 {
    let x = t.clamp(0.0, 1.0) * CBRT_STEPS as f32;
    let i = (x as usize).min(CBRT_STEPS - 1);
    let f = x - i as f32;
    table[i] + (table[i + 1] - table[i]) * f
}

/// Linear RGB (0..1) to CIELAB under D65.
fn lab_of_linear(table: &[f32], r: f32, g: f32, b: f32) -> [f32; 3] {
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let (fx, fy, fz) = (
        lab_f_table(table, x),
        lab_f_table(table, y),
        lab_f_table(table, z),
    );
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Squared CIELAB difference (ΔE*ab²).
fn delta_e2(a: [f32; 3], b: [f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Absolute difference of two angles (radians), in `0..=pi`.
fn hue_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(std::f32::consts::TAU);
    d.min(std::f32::consts::TAU - d)
}

fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f32::total_cmp).1
}

fn percentile(v: &mut [f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable_by(i, f32::total_cmp).1
}

impl SkinMasker {
    /// A masker with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the mask's edge is drawn finer than the colour cells (step 7; the default). The
    /// live service leaves it at the colour cells: the finer edge, and the finer mask every
    /// consumer then reads each frame, cost more than the live budget leaves on two cores
    /// (docs/skin-mask.md); the live skin map's edge then runs up to a colour cell inside the
    /// skin.
    pub fn set_fine_edge(&mut self, fine: bool) {
        self.coarse_edge = !fine;
    }

    /// Fuses the skin model `model` (of [`ModelKind::Skin`]) with the classical decision from
    /// the next frame on; `None` leaves the classical mask alone.
    ///
    /// # Errors
    /// [`SegmentError::Metadata`] when the model is of another kind.
    pub fn set_model(&mut self, model: Option<OnnxSegmenter>) -> Result<(), SegmentError> {
        if let Some(m) = &model {
            if m.contract().kind != ModelKind::Skin {
                return Err(SegmentError::Metadata {
                    path: m.name().to_string(),
                    key: "stipple.classes",
                    problem: format!("{} is not a skin model", m.contract().classes.join(",")),
                });
            }
        }
        self.model = model.map(Box::new);
        Ok(())
    }

    /// A masker that fuses the bundled skin model ([`OnnxSegmenter::bundled_skin`]), as
    /// `stipple detect`, `plan` and `serve` do unless `--no-model`.
    ///
    /// # Errors
    /// When the bundled skin model cannot be opened.
    pub fn with_bundled_model() -> Result<Self, SegmentError> {
        let mut masker = Self::new();
        masker.set_model(Some(OnnxSegmenter::bundled_skin()?))?;
        Ok(masker)
    }

    /// Fuses a skin model's view `learned` (of `image`, or of a frame a moment older) into the
    /// colour cells' decision `self.bad` (see the module docs), unless the model would call
    /// more than [`LEARNED_MAX_OVERRULED`] of the cells the colour rules call skin not skin:
    /// then it is out of what it learned and the colour rules stand alone for this frame (at
    /// [`LEARNED_GUARD_MIN_PX_PER_MM`] and finer). Returns whether the view was fused (false:
    /// set aside).
    fn fuse_learned(
        &mut self,
        learned: &SegMask,
        image: &RgbImage,
        (cell, cols): (u32, usize),
        px_per_mm: f64,
    ) -> bool {
        let half = f64::from(cell) / 2.0;
        let (w, h) = (f64::from(image.width()), f64::from(image.height()));
        self.learned_p.clear();
        self.learned_p.extend((0..self.bad.len()).map(|i| {
            let (c, r) = ((i % cols) as f64, (i / cols) as f64);
            let x = (c * f64::from(cell) + half).min(w - 0.5);
            let y = (r * f64::from(cell) + half).min(h - 0.5);
            learned.sample(0, x, y)
        }));
        let (mut skin, mut overruled) = (0usize, 0usize);
        for (&bad, &p) in self.bad.iter().zip(&self.learned_p) {
            if !bad {
                skin += 1;
                overruled += usize::from(p > LEARNED_NOT_SKIN);
            }
        }
        if px_per_mm >= LEARNED_GUARD_MIN_PX_PER_MM
            && overruled as f64 > LEARNED_MAX_OVERRULED * skin as f64
        {
            tracing::debug!(
                skin_cells = skin,
                overruled,
                "the skin model disagrees with the colour rules on most of the skin; not used"
            );
            return false;
        }
        for (bad, &p) in self.bad.iter_mut().zip(&self.learned_p) {
            *bad = p > LEARNED_NOT_SKIN || (*bad && p > LEARNED_KEEP);
        }
        true
    }

    /// The last mask computed.
    pub fn mask(&self) -> &SkinMask {
        &self.mask
    }

    /// Whether a dot at (x, y) of radius `radius_px` in `image` (the frame of the last
    /// [`SkinMasker::compute`]) sits on skin although its centre falls in a cell called not
    /// skin: a skin cell is within `reach_px` of it, and the ring of skin around the dot
    /// (0.1-0.3 mm past its edge) differs from the nearby skin cells' colour by less than
    /// `max_delta_e` (CIELAB). Where the mask's edge still runs inside the skin (an occluder's
    /// deep shadow, a dot at the edge), a dot there keeps its skin-coloured ring; a glove's, a
    /// cartridge's or a hair's edge has none. The nearby skin is read on the colour cells.
    pub fn ring_is_skin(
        &self,
        image: &RgbImage,
        x: f64,
        y: f64,
        radius_px: f64,
        reach_px: f64,
        max_delta_e: f32,
    ) -> bool {
        let m = &self.mask;
        if m.dimensions() != image.dimensions() || self.cbrt.is_empty() {
            return false;
        }
        // The nearby skin's colour: the mean of the skin colour cells within reach.
        let cell = f64::from(self.coarse_cell);
        let (cols, rows) = self.coarse_grid;
        let (c0, r0) = ((x / cell).floor() as i64, (y / cell).floor() as i64);
        let span = (reach_px / cell).ceil() as i64 + 1;
        let (mut skin, mut n) = ([0.0f32; 3], 0u32);
        for r in (r0 - span).max(0)..=(r0 + span).min(rows as i64 - 1) {
            for c in (c0 - span).max(0)..=(c0 + span).min(cols as i64 - 1) {
                let i = r as usize * cols + c as usize;
                if !self.coarse[i] {
                    continue;
                }
                let (cx, cy) = ((c as f64 + 0.5) * cell, (r as f64 + 0.5) * cell);
                if (cx - x).hypot(cy - y) > reach_px + cell {
                    continue;
                }
                for (acc, v) in skin.iter_mut().zip(self.lab[i]) {
                    *acc += v;
                }
                n += 1;
            }
        }
        if n == 0 {
            return false;
        }
        let skin = skin.map(|v| v / n as f32);
        // The ring around the dot, in linear light, then CIELAB.
        let lut = srgb_lut();
        let ppm = m.px_per_mm;
        let (r_in, r_out) = (radius_px + 0.1 * ppm, radius_px + 0.3 * ppm);
        let (w, h) = image.dimensions();
        let (x0, x1) = (
            (x - r_out).floor().max(0.0) as u32,
            ((x + r_out).ceil().max(0.0) as u32).min(w),
        );
        let (y0, y1) = (
            (y - r_out).floor().max(0.0) as u32,
            ((y + r_out).ceil().max(0.0) as u32).min(h),
        );
        let mut sum = [0.0f32; 4];
        for py in y0..y1 {
            for px in x0..x1 {
                let d = (f64::from(px) + 0.5 - x).hypot(f64::from(py) + 0.5 - y);
                if d < r_in || d > r_out {
                    continue;
                }
                let p = image.get_pixel(px, py);
                sum[0] += lut[p[0] as usize];
                sum[1] += lut[p[1] as usize];
                sum[2] += lut[p[2] as usize];
                sum[3] += 1.0;
            }
        }
        if sum[3] < 4.0 {
            return false;
        }
        let ring = lab_of_linear(
            &self.cbrt,
            sum[0] / sum[3],
            sum[1] / sum[3],
            sum[2] / sum[3],
        );
        let de = ((ring[0] - skin[0]).powi(2)
            + (ring[1] - skin[1]).powi(2)
            + (ring[2] - skin[2]).powi(2))
        .sqrt();
        de < max_delta_e
    }

    /// Computes the skin mask of `image` at `px_per_mm` and returns it; with a skin model
    /// ([`SkinMasker::set_model`]), the model runs on `image` and is fused. A model that fails
    /// to run on a frame leaves the classical mask, with a warning: the frame still has a mask.
    pub fn compute(&mut self, image: &RgbImage, px_per_mm: f64) -> &SkinMask {
        let mut model = self.model.take();
        // A grey picture's view would be set aside (see `SkinMask::colourless`): not run. The
        // pixels are looked at only when there is a model to spare.
        let learned = match model
            .as_mut()
            .filter(|_| !every_pixel_grey(image))
            .map(|m| {
                let _span = tracing::trace_span!("skin_model").entered();
                m.segment(image, px_per_mm)
            }) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "skin model failed on this frame; the classical mask stands");
                None
            }
            None => None,
        };
        self.compute_inner(image, px_per_mm, learned);
        self.model = model;
        &self.mask
    }

    /// Computes the skin mask of `image` at `px_per_mm`, fused with `learned`, a skin model's
    /// view computed elsewhere (the live service runs the model on its own thread, on a frame a
    /// moment older); `None`: the classical mask alone. The masker's own model is not run.
    pub fn compute_with(
        &mut self,
        image: &RgbImage,
        px_per_mm: f64,
        learned: Option<&SegMask>,
    ) -> &SkinMask {
        self.compute_inner(image, px_per_mm, learned);
        &self.mask
    }

    fn compute_inner(&mut self, image: &RgbImage, px_per_mm: f64, learned: Option<&SegMask>) {
        let _span = tracing::trace_span!("skin_mask").entered();
        let (w, h) = image.dimensions();
        let cell = (CELL_MM * px_per_mm).round().max(MIN_CELL_PX) as u32;
        let cols = w.div_ceil(cell).max(1) as usize;
        let rows = h.div_ceil(cell).max(1) as usize;
        let n = cols * rows;
        let cell_mm2 = (f64::from(cell) / px_per_mm).powi(2);
        let lut = srgb_lut();
        if self.cbrt.is_empty() {
            self.cbrt = (0..=CBRT_STEPS)
                .map(|i| lab_f(i as f32 / CBRT_STEPS as f32))
                .collect();
        }
        self.bad.clear();
        self.bad.resize(n, false);
        // 1. Cell means in linear light, then CIELAB.
        self.lab.clear();
        self.lab.resize(n, [0.0; 3]);
        self.texture.clear();
        self.texture.resize(n, 0.0);
        let mut sums = vec![[0.0f32; 5]; cols];
        for r in 0..rows {
            sums.iter_mut().for_each(|s| *s = [0.0; 5]);
            let y1 = ((r as u32 + 1) * cell).min(h);
            // Every other row and column: a cell's mean needs no more, and it halves the cost
            // twice over.
            for y in (r as u32 * cell..y1).step_by(2) {
                let row = &image.as_raw()[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
                for (x, px) in row.chunks_exact(3).enumerate().step_by(2) {
                    let s = &mut sums[x / cell as usize];
                    let (lr, lg, lb) = (
                        lut[px[0] as usize],
                        lut[px[1] as usize],
                        lut[px[2] as usize],
                    );
                    // Sum of the channels stands in for luminance in the texture measure.
                    let y = lr + lg + lb;
                    s[0] += lr;
                    s[1] += lg;
                    s[2] += lb;
                    s[3] += 1.0;
                    s[4] += y * y;
                }
            }
            for (c, s) in sums.iter().enumerate() {
                let k = s[3].max(1.0);
                let i = r * cols + c;
                self.lab[i] = lab_of_linear(&self.cbrt, s[0] / k, s[1] / k, s[2] / k);
                let mean_y = (s[0] + s[1] + s[2]) / k;
                let var = (s[4] / k - mean_y * mean_y).max(0.0);
                self.texture[i] = var.sqrt() / mean_y.max(1e-4);
            }
        }
        // A picture without colour (greyscale, infrared) leaves the colour rules nothing to
        // read, and the skin model learned colour: on such a frame it called up to 29% of
        // rendered skin not skin. The mask rests on lightness and texture alone, and says so.
        let colourless = self
            .lab
            .iter()
            .all(|l| f64::from(l[1].hypot(l[2])) < COLOURLESS_CHROMA);
        let learned = if colourless {
            tracing::debug!(
                "the frame has no colour: the skin mask rests on lightness and texture alone"
            );
            None
        } else {
            learned
        };
        // 2. The scalp's colour: the (a*, b*) histogram's peak among skin hues.
        let texture_cv = if colourless {
            TEXTURE_CV_COLOURLESS
        } else {
            TEXTURE_CV
        };
        const BINS: usize = 64;
        const LO: f32 = -32.0;
        const BIN: f32 = 1.5;
        // Votes weighted by lightness squared: the scalp is the brightest warm surface in a
        // rig frame but for an ear; longer hair of the same hue is darker.
        let mut hist = vec![0f32; BINS * BINS];
        // Hue inside SKIN_HUE_DEG, tested with cross products (no atan2 per cell).
        let (lo_dir, hi_dir) = (
            (SKIN_HUE_DEG.0.to_radians() as f32).sin_cos(),
            (SKIN_HUE_DEG.1.to_radians() as f32).sin_cos(),
        );
        let hue_ok = |a: f32, b: f32| {
            let c2 = a * a + b * b;
            // Counter-clockwise of the low bound and clockwise of the high bound.
            let after_lo = lo_dir.1 * b - lo_dir.0 * a >= 0.0;
            let before_hi = hi_dir.1 * b - hi_dir.0 * a <= 0.0;
            f64::from(c2) >= SKIN_MIN_CHROMA * SKIN_MIN_CHROMA && after_lo && before_hi
        };
        // A near-neutral cell may be skin under a cast (its hue is no evidence either way).
        let neutral2 = (NEUTRAL_CHROMA * NEUTRAL_CHROMA) as f32;
        let gate = |a: f32, b: f32| a * a + b * b < neutral2 || hue_ok(a, b);
        for l in &self.lab {
            if l[0] > 5.0 && gate(l[1], l[2]) {
                let i = ((l[1] - LO) / BIN).floor();
                let j = ((l[2] - LO) / BIN).floor();
                if i >= 0.0 && j >= 0.0 && (i as usize) < BINS && (j as usize) < BINS {
                    hist[j as usize * BINS + i as usize] += (l[0] / 100.0).powi(2);
                }
            }
        }
        // Candidate colours: local maxima of the smoothed histogram.
        let mut smooth = vec![0f32; BINS * BINS];
        for j in 1..BINS - 1 {
            for i in 1..BINS - 1 {
                let mut s = 0.0;
                for dj in 0..3 {
                    for di in 0..3 {
                        s += hist[(j + dj - 1) * BINS + i + di - 1];
                    }
                }
                smooth[j * BINS + i] = s;
            }
        }
        let mut candidates: Vec<(f32, [f32; 2])> = Vec::new();
        for j in 1..BINS - 1 {
            for i in 1..BINS - 1 {
                let v = smooth[j * BINS + i];
                let is_max = v > 0.0
                    && (0..3).all(|dj| {
                        (0..3).all(|di| {
                            let u = smooth[(j + dj - 1) * BINS + i + di - 1];
                            u < v || (u == v && (j + dj - 1, i + di - 1) >= (j, i))
                        })
                    });
                if is_max {
                    let p = [LO + (i as f32 + 0.5) * BIN, LO + (j as f32 + 0.5) * BIN];
                    candidates.push((v, p));
                }
            }
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        candidates.truncate(MAX_CANDIDATES);
        // The scalp is the candidate whose colour covers the largest connected region, not the
        // densest bin: a glossy cartridge or glove is one tight colour, skin a broad one, and
        // cartridges, gloves and hair come in separate pieces while the scalp is one surface.
        // A near-neutral candidate (a pale scalp under a cool cast) must be textured like skin
        // (dots, mottling) and dominate the frame, since its hue says nothing: white and black
        // parts of the machine are neutral too.
        let bcell_c = ((CANDIDATE_BLOCK_MM * px_per_mm / f64::from(cell)).round() as usize).max(1);
        let (bcols_c, brows_c) = (cols.div_ceil(bcell_c), rows.div_ceil(bcell_c));
        // Per block: mean (L*, a*, b*) of its cells and its share of textured cells; candidates
        // are weighed on blocks, which is enough to tell regions apart and keeps this cheap.
        let mut blocks = vec![[0f32; 5]; bcols_c * brows_c];
        for r in 0..rows {
            let brow = &mut blocks[(r / bcell_c) * bcols_c..(r / bcell_c + 1) * bcols_c];
            let cells = &self.lab[r * cols..(r + 1) * cols];
            let tex = &self.texture[r * cols..(r + 1) * cols];
            for ((chunk, t), b) in cells
                .chunks(bcell_c)
                .zip(tex.chunks(bcell_c))
                .zip(brow.iter_mut())
            {
                for (l, &t) in chunk.iter().zip(t) {
                    b[0] += l[0];
                    b[1] += l[1];
                    b[2] += l[2];
                    b[3] += f32::from(u8::from(t >= texture_cv));
                    b[4] += 1.0;
                }
            }
        }
        for b in &mut blocks {
            let k = b[4].max(1.0);
            *b = [b[0] / k, b[1] / k, b[2] / k, b[3] / k, k];
        }
        let mut best = (0usize, [0f32; 2]);
        let mut best_neutral = (0usize, [0f32; 2]);
        for &(_, p) in &candidates {
            let radius = CANDIDATE_RADIUS
                .0
                .max(CANDIDATE_RADIUS.1 * p[0].hypot(p[1]));
            let (mut count, mut textured) = (0f32, 0f32);
            self.tmp.clear();
            self.tmp.extend(blocks.iter().map(|b| {
                let (da, db) = (b[1] - p[0], b[2] - p[1]);
                let hit = b[0] > 5.0 && da * da + db * db <= radius * radius;
                if hit {
                    count += 1.0;
                    textured += b[3];
                }
                hit
            }));
            let region = self.largest_region(bcols_c, brows_c);
            let neutral = f64::from(p[0].hypot(p[1])) < NEUTRAL_CHROMA;
            if neutral {
                if f64::from(textured) >= NEUTRAL_TEXTURED * f64::from(count)
                    && region > best_neutral.0
                {
                    best_neutral = (region, p);
                }
            } else if region > best.0 {
                best = (region, p);
            }
        }
        if best_neutral.0 as f64 > NEUTRAL_MARGIN * best.0 as f64 {
            best = best_neutral;
        }
        let best = ((best.0 * bcell_c * bcell_c) as f32, best.1);
        // A region of at least 2% of the frame.
        let min_votes = (n / 50).max(4) as f32;
        if best.0 < min_votes {
            // No colour in the frame is skin (but for what the skin model is sure of).
            self.bad.iter_mut().for_each(|b| *b = true);
            let learned_set_aside =
                learned.is_some_and(|l| !self.fuse_learned(l, image, (cell, cols), px_per_mm));
            self.coarse.clear();
            self.coarse.extend(self.bad.iter().map(|&b| !b));
            (self.coarse_cell, self.coarse_grid) = (cell, (cols, rows));
            let skin_px: u64 = (0..n)
                .filter(|&i| self.coarse[i])
                .map(|i| {
                    let (c, r) = ((i % cols) as u32, (i / cols) as u32);
                    let cw = u64::from(((c + 1) * cell).min(w) - c * cell);
                    let ch = u64::from(((r + 1) * cell).min(h) - r * cell);
                    cw * ch
                })
                .sum();
            self.mask = SkinMask {
                width: w,
                height: h,
                cell,
                cols,
                rows,
                px_per_mm,
                skin: self.coarse.clone(),
                fraction: skin_px as f64 / (u64::from(w) * u64::from(h)).max(1) as f64,
                plane: None,
                colourless,
                learned_set_aside,
            };
            return;
        }
        let peak = (best.1[0], best.1[1]);
        // The scalp's cells, whose spread sets the tolerances: near its colour, within a share
        // of its chroma (a mottled or red-blotched scalp spreads with its chroma).
        let peak_radius = CANDIDATE_RADIUS.0.max(SPREAD_RADIUS * peak.0.hypot(peak.1));
        let near: Vec<usize> = (0..n)
            .filter(|&i| {
                let l = self.lab[i];
                let (da, db) = (l[1] - peak.0, l[2] - peak.1);
                da * da + db * db <= peak_radius * peak_radius && l[0] > 5.0
            })
            .collect();
        let mut va: Vec<f32> = near.iter().map(|&i| self.lab[i][1]).collect();
        let mut vb: Vec<f32> = near.iter().map(|&i| self.lab[i][2]).collect();
        let mut vl: Vec<f32> = near.iter().map(|&i| self.lab[i][0]).collect();
        let (a0, b0) = (median(&mut va), median(&mut vb));
        let l0 = percentile(&mut vl, SKIN_L_PERCENTILE).max(1.0);
        // Spread of the scalp's hue (degrees) and relative chroma.
        let (h0, c0) = (b0.atan2(a0), a0.hypot(b0).max(1.0));
        let mut dh: Vec<f32> = near
            .iter()
            .map(|&i| hue_diff(self.lab[i][2].atan2(self.lab[i][1]), h0).to_degrees())
            .collect();
        let hue_tol = HUE_TOL_DEG
            .0
            .max(HUE_TOL_DEG.1 * f64::from(median(&mut dh)) * 1.4826)
            .min(90.0);
        let cos_tol = hue_tol.to_radians().cos() as f32;
        let (ua, ub) = (a0 / c0, b0 / c0);
        let chroma_ok = |l: [f32; 3], lref: f32| {
            // A shadow keeps the hue and loses chroma with lightness; glare loses chroma too.
            let s = (l[0] / lref).clamp(0.3, 1.0);
            // Near the scalp's own colour in (a*, b*) is skin whatever the hue says: a pale scalp
            // under a cool cast is almost neutral, and its hue is noise.
            let (da, db) = (l[1] - a0 * s, l[2] - b0 * s);
            if da * da + db * db <= (NEAR_AB * NEAR_AB) as f32 {
                return true;
            }
            let c = (l[1] * l[1] + l[2] * l[2]).sqrt();
            let rho = c / (c0 * s);
            // cos of the hue difference from the scalp's.
            let cos_dh = (l[1] * ua + l[2] * ub) / c.max(1e-6);
            rho >= CHROMA_RATIO.0 as f32 && rho <= CHROMA_RATIO.1 as f32 && cos_dh >= cos_tol
        };
        // 3. Local skin lightness per block, from skin-coloured cells.
        let bcell = ((BLOCK_MM * px_per_mm / f64::from(cell)).round() as usize).max(1);
        let (bcols, brows) = (cols.div_ceil(bcell), rows.div_ceil(bcell));
        let mut block_l = vec![f32::NAN; bcols * brows];
        let mut scratch = Vec::new();
        for br in 0..brows {
            for bc in 0..bcols {
                scratch.clear();
                for r in br * bcell..((br + 1) * bcell).min(rows) {
                    for c in bc * bcell..((bc + 1) * bcell).min(cols) {
                        let l = self.lab[r * cols + c];
                        if chroma_ok(l, l0) && l[0] > 0.5 * l0 {
                            scratch.push(l[0]);
                        }
                    }
                }
                if scratch.len() * 4 >= bcell * bcell {
                    block_l[br * bcols + bc] = percentile(&mut scratch, SKIN_L_PERCENTILE);
                }
            }
        }
        fill_missing(&mut block_l, bcols, brows, l0);
        // 4. Per-cell decision.
        self.rho.clear();
        self.rho.resize(n, 1.0);
        for r in 0..rows {
            for c in 0..cols {
                let lref = bilinear(&block_l, bcols, brows, bcell, c, r);
                let l = self.lab[r * cols + c];
                self.rho[r * cols + c] = (l[1] * l[1] + l[2] * l[2]).sqrt()
                    / (c0 * (l[0] / lref.max(1.0)).clamp(0.3, 1.0));
                let dark = l[0] < DARK_RATIO as f32 * lref;
                let bright = l[0] > lref + BRIGHT_DELTA as f32;
                self.bad[r * cols + c] = dark || bright || !chroma_ok(l, lref);
            }
        }
        // 5. Skin-coloured but smooth: a large connected patch far smoother than the scalp.
        self.reject_smooth(px_per_mm, cell, cols, rows);
        // 6. Clean-up.
        let min_cells = (MIN_REGION_MM2 / cell_mm2).ceil() as usize;
        self.drop_small(true, min_cells, cols, rows);
        let close = (CLOSE_MM * px_per_mm / f64::from(cell)).round() as usize;
        self.dilate(close, cols, rows, true);
        self.dilate(close, cols, rows, false);
        self.drop_small(false, min_cells, cols, rows);
        // 7. Skin-coloured pieces apart from the scalp and out of focus.
        self.reject_blurred_islands(image, cell, cols, rows);
        // With the skin model: its view fused with the classical decision.
        let learned_set_aside =
            learned.is_some_and(|l| !self.fuse_learned(l, image, (cell, cols), px_per_mm));
        self.coarse.clear();
        self.coarse.extend(self.bad.iter().map(|&b| !b));
        (self.coarse_cell, self.coarse_grid) = (cell, (cols, rows));
        // 8. The edge at a finer step.
        let (fine, fcols, frows, skin) = self.refine_edge(image);
        // Fraction by pixels (edge cells are partial).
        let mut skin_px = 0u64;
        for r in 0..frows {
            let ch = u64::from(((r as u32 + 1) * fine).min(h) - r as u32 * fine);
            for c in 0..fcols {
                if skin[r * fcols + c] {
                    let cw = u64::from(((c as u32 + 1) * fine).min(w) - c as u32 * fine);
                    skin_px += cw * ch;
                }
            }
        }
        self.mask = SkinMask {
            width: w,
            height: h,
            cell: fine,
            cols: fcols,
            rows: frows,
            px_per_mm,
            skin,
            fraction: skin_px as f64 / (u64::from(w) * u64::from(h)).max(1) as f64,
            plane: None,
            colourless,
            learned_set_aside,
        };
    }

    /// Draws the edge of the colour-cell decision (`coarse`) on cells [`EDGE_SUBDIVISION`]
    /// times finer; returns the edge cell's side (px), the grid (columns, rows) and the
    /// decision per edge cell (true: skin).
    ///
    /// Colour cells within [`EDGE_BAND_CELLS`] of the other kind form the band. Each edge cell
    /// whose centre lies in the band takes the kind of the colour cell outside the band, within
    /// [`EDGE_REFERENCE_CELLS`] of its own, whose colour is nearest to its own (CIELAB): skin
    /// comes lit and in an occluder's shadow, and what is not skin in several colours (a glove,
    /// a cartridge, a cape), so each kind is as many colours as it has cells. A band cell with no
    /// reference of one kind keeps its colour cell's decision; outside the band the colour cell's
    /// decision stands.
    fn refine_edge(&self, image: &RgbImage) -> (u32, usize, usize, Vec<bool>) {
        let (w, h) = image.dimensions();
        let cell = self.coarse_cell;
        let (cols, rows) = self.coarse_grid;
        let fine = if self.coarse_edge {
            cell
        } else {
            ((f64::from(cell) / EDGE_SUBDIVISION).round() as u32)
                .max(MIN_EDGE_CELL_PX)
                .min(cell)
        };
        let (fcols, frows) = (
            w.div_ceil(fine).max(1) as usize,
            h.div_ceil(fine).max(1) as usize,
        );
        // At the colour cells (the live service's mask, or cells too small to split) the
        // decision is the colour cells' own.
        if fine == cell {
            return (cell, cols, rows, self.coarse.clone());
        }
        // Per colour cell column (row): the edge cell columns (rows) whose centre is in it.
        let spans = |size: u32, count: usize, fcount: usize| {
            let mut out = vec![0..0; count];
            for f in 0..fcount {
                let lo = f as u32 * fine;
                let centre = lo + (fine.min(size - lo)) / 2;
                let c = ((centre / cell) as usize).min(count - 1);
                out[c] = if out[c].is_empty() {
                    f..f + 1
                } else {
                    out[c].start..f + 1
                };
            }
            out
        };
        let col_spans = spans(w, cols, fcols);
        let row_spans = spans(h, rows, frows);
        let mut skin = vec![false; fcols * frows];
        for (coarse_row, fine_rows) in self.coarse.chunks_exact(cols).zip(&row_spans) {
            for (&v, fine_cols) in coarse_row.iter().zip(&col_spans) {
                for fr in fine_rows.clone() {
                    skin[fr * fcols + fine_cols.start..fr * fcols + fine_cols.end].fill(v);
                }
            }
        }
        if self.coarse.iter().all(|&s| s) || !self.coarse.iter().any(|&s| s) {
            return (fine, fcols, frows, skin);
        }
        let band = self.near_other_kind(EDGE_BAND_CELLS, cols, rows);
        let lut = srgb_lut();
        let raw = image.as_raw();
        let k = EDGE_REFERENCE_CELLS + EDGE_BAND_CELLS;
        let (mut skins, mut others): (Vec<[f32; 3]>, Vec<[f32; 3]>) = (Vec::new(), Vec::new());
        let nearest = |refs: &[[f32; 3]], lab: [f32; 3]| {
            refs.iter()
                .map(|&o| delta_e2(lab, o))
                .fold(f32::INFINITY, f32::min)
        };
        for r in 0..rows {
            for c in 0..cols {
                if !band[r * cols + c] {
                    continue;
                }
                skins.clear();
                others.clear();
                // Every other row and column of the grid: neighbouring cells' colours are close,
                // and a quarter of them halves the cost of the edge.
                let (r0, c0) = (r.saturating_sub(k) & !1, c.saturating_sub(k) & !1);
                for rr in (r0..=(r + k).min(rows - 1)).step_by(2) {
                    for cc in (c0..=(c + k).min(cols - 1)).step_by(2) {
                        let i = rr * cols + cc;
                        if !band[i] {
                            if self.coarse[i] {
                                skins.push(self.lab[i]);
                            } else {
                                others.push(self.lab[i]);
                            }
                        }
                    }
                }
                if skins.is_empty() || others.is_empty() {
                    continue;
                }
                // A colour cell plainly of its own kind (its colour [`EDGE_PLAIN_RATIO`] times
                // nearer its own kind's than the other's, in ΔE²) is that kind whole.
                let own = self.lab[r * cols + c];
                let (d_skin, d_other) = (nearest(&skins, own), nearest(&others, own));
                let (same, other) = if self.coarse[r * cols + c] {
                    (d_skin, d_other)
                } else {
                    (d_other, d_skin)
                };
                if other > EDGE_PLAIN_RATIO * same.max(1.0) {
                    continue;
                }
                for fr in row_spans[r].clone() {
                    let (y0, y1) = (fr as u32 * fine, ((fr as u32 + 1) * fine).min(h));
                    for fc in col_spans[c].clone() {
                        let (x0, x1) = (fc as u32 * fine, ((fc as u32 + 1) * fine).min(w));
                        let mut sum = [0f32; 3];
                        for y in y0..y1 {
                            let at = |x: u32| (y * w + x) as usize * 3;
                            for px in raw[at(x0)..at(x1)].chunks_exact(3) {
                                sum[0] += lut[px[0] as usize];
                                sum[1] += lut[px[1] as usize];
                                sum[2] += lut[px[2] as usize];
                            }
                        }
                        let n = ((y1 - y0) * (x1 - x0)).max(1) as f32;
                        let lab = lab_of_linear(&self.cbrt, sum[0] / n, sum[1] / n, sum[2] / n);
                        let d = nearest(&skins, lab);
                        skin[fr * fcols + fc] = !others.iter().any(|&o| delta_e2(lab, o) < d);
                    }
                }
            }
        }
        (fine, fcols, frows, skin)
    }

    /// Per colour cell: whether cells of both kinds (skin and not) lie within `radius` cells
    /// (Chebyshev) of it, itself included.
    fn near_other_kind(&self, radius: usize, cols: usize, rows: usize) -> Vec<bool> {
        // Per kind, separable: any cell of the kind within `radius` along the row, then along
        // the column.
        let mut row_any = vec![[false; 2]; cols * rows];
        for r in 0..rows {
            let row = &self.coarse[r * cols..(r + 1) * cols];
            for c in 0..cols {
                let window = &row[c.saturating_sub(radius)..=(c + radius).min(cols - 1)];
                row_any[r * cols + c] = [window.contains(&true), window.contains(&false)];
            }
        }
        let mut out = vec![false; cols * rows];
        for c in 0..cols {
            for r in 0..rows {
                let (mut skin, mut other) = (false, false);
                for rr in r.saturating_sub(radius)..=(r + radius).min(rows - 1) {
                    let [s, o] = row_any[rr * cols + c];
                    skin |= s;
                    other |= o;
                }
                out[r * cols + c] = skin && other;
            }
        }
        out
    }

    /// Size of the largest 4-connected region of `tmp` (a `bcols` x `brows` grid of flags).
    fn largest_region(&mut self, bcols: usize, brows: usize) -> usize {
        let mut best = 0;
        let tmp = &self.tmp;
        for_each_region(
            |i| tmp[i],
            bcols,
            brows,
            &mut self.seen,
            &mut self.stack,
            |region| best = best.max(region.len()),
        );
        best
    }

    /// Marks not-skin the skin cells of large connected areas much smoother than the scalp and
    /// more saturated than it.
    ///
    /// Skin under a rig camera is never smooth over millimetres: dots, follicles, pores and
    /// mottling give every block of about 1 mm some texture. A glossy or translucent cartridge,
    /// a cap or a cloth of the skin's own colour passes the colour tests but not this one. The
    /// reference is the frame's own plainest skin, so a soft-focus or noisy camera moves the
    /// threshold with it.
    fn reject_smooth(&mut self, px_per_mm: f64, cell: u32, cols: usize, rows: usize) {
        let b = ((CANDIDATE_BLOCK_MM * px_per_mm / f64::from(cell)).round() as usize).max(1);
        let (bcols, brows) = (cols.div_ceil(b), rows.div_ceil(b));
        // Per block: mean texture of its skin cells, NaN under three quarters skin.
        let mut tex = vec![f32::NAN; bcols * brows];
        for br in 0..brows {
            for bc in 0..bcols {
                let (mut sum, mut n, mut all) = (0f32, 0usize, 0usize);
                for r in br * b..((br + 1) * b).min(rows) {
                    for c in bc * b..((bc + 1) * b).min(cols) {
                        all += 1;
                        if !self.bad[r * cols + c] {
                            sum += self.texture[r * cols + c];
                            n += 1;
                        }
                    }
                }
                if n * 4 >= all * 3 {
                    tex[br * bcols + bc] = sum / n as f32;
                }
            }
        }
        let mut known: Vec<f32> = tex.iter().copied().filter(|t| t.is_finite()).collect();
        if known.len() < 8 {
            return;
        }
        let limit = SMOOTH_RATIO * percentile(&mut known, SMOOTH_REF_PERCENTILE);
        let block_mm2 = (b as f64 * f64::from(cell) / px_per_mm).powi(2);
        let min_blocks = (SMOOTH_MIN_MM2 / block_mm2).ceil() as usize;
        let smooth: Vec<bool> = tex.iter().map(|&t| t.is_finite() && t < limit).collect();
        let mut large = Vec::new();
        for_each_region(
            |i| smooth[i],
            bcols,
            brows,
            &mut self.seen,
            &mut self.stack,
            |region| {
                if region.len() >= min_blocks {
                    large.push(region.to_vec());
                }
            },
        );
        for region in large {
            let (mut rho, mut k) = (0f32, 0usize);
            for &i in &region {
                let (bc, br) = (i % bcols, i / bcols);
                for r in br * b..((br + 1) * b).min(rows) {
                    for c in bc * b..((bc + 1) * b).min(cols) {
                        if !self.bad[r * cols + c] {
                            rho += self.rho[r * cols + c];
                            k += 1;
                        }
                    }
                }
            }
            if rho < SMOOTH_MIN_CHROMA_RATIO * k.max(1) as f32 {
                continue;
            }
            for &i in &region {
                let (bc, br) = (i % bcols, i / bcols);
                for r in br * b..((br + 1) * b).min(rows) {
                    for c in bc * b..((bc + 1) * b).min(cols) {
                        self.bad[r * cols + c] = true;
                    }
                }
            }
        }
    }

    /// Marks not-skin the skin regions apart from the largest one (4-connected colour cells)
    /// whose median sharpness is under [`ISLAND_SHARPNESS_RATIO`] of the largest region's.
    ///
    /// The camera is focused on the scalp; an ear's fold or the room seen between occluders
    /// can have the skin's colour but lies outside the focal plane. An occluder that cuts the
    /// scalp into pieces leaves each piece as sharp as the rest (its dots, follicles and pores
    /// are in focus), and a soft frame is soft everywhere, so the reference is the frame's own
    /// largest skin region.
    fn reject_blurred_islands(&mut self, image: &RgbImage, cell: u32, cols: usize, rows: usize) {
        let mut regions: Vec<Vec<usize>> = Vec::new();
        let bad = &self.bad;
        for_each_region(
            |i| !bad[i],
            cols,
            rows,
            &mut self.seen,
            &mut self.stack,
            |region| regions.push(region.to_vec()),
        );
        if regions.len() < 2 {
            return;
        }
        let largest = (0..regions.len())
            .max_by_key(|&k| regions[k].len())
            .unwrap_or(0);
        // Each region's median from at most REFERENCE_CELLS cells spread over it.
        const REFERENCE_CELLS: usize = 300;
        let step = regions[largest].len().div_ceil(REFERENCE_CELLS).max(1);
        let mut sharp: Vec<f32> = regions[largest]
            .iter()
            .step_by(step)
            .filter_map(|&i| cell_sharpness(image, cell, i % cols, i / cols))
            .collect();
        if sharp.is_empty() {
            return;
        }
        let reference = median(&mut sharp);
        for (k, region) in regions.iter().enumerate() {
            if k == largest {
                continue;
            }
            sharp.clear();
            let step = region.len().div_ceil(REFERENCE_CELLS).max(1);
            sharp.extend(
                region
                    .iter()
                    .step_by(step)
                    .filter_map(|&i| cell_sharpness(image, cell, i % cols, i / cols)),
            );
            if sharp.is_empty() {
                continue;
            }
            let ratio = median(&mut sharp) / reference.max(1e-6);
            if ratio < ISLAND_SHARPNESS_RATIO {
                for &i in region {
                    self.bad[i] = true;
                }
            }
        }
    }

    /// Flips connected regions (4-connected) of `bad == value` smaller than `min_cells`.
    fn drop_small(&mut self, value: bool, min_cells: usize, cols: usize, rows: usize) {
        let mut flip = Vec::new();
        let bad = &self.bad;
        for_each_region(
            |i| bad[i] == value,
            cols,
            rows,
            &mut self.seen,
            &mut self.stack,
            |region| {
                if region.len() < min_cells {
                    flip.extend_from_slice(region);
                }
            },
        );
        for i in flip {
            self.bad[i] = !value;
        }
    }

    /// Grows (`grow`) or shrinks the not-skin cells by `radius` cells (a square, separable).
    fn dilate(&mut self, radius: usize, cols: usize, rows: usize, grow: bool) {
        if radius == 0 {
            return;
        }
        let n = cols * rows;
        self.tmp.clear();
        self.tmp.resize(n, false);
        // Horizontal pass into tmp, vertical pass back.
        for r in 0..rows {
            for c in 0..cols {
                let (lo, hi) = (c.saturating_sub(radius), (c + radius).min(cols - 1));
                let row = &self.bad[r * cols + lo..=r * cols + hi];
                self.tmp[r * cols + c] = if grow {
                    row.iter().any(|&b| b)
                } else {
                    row.iter().all(|&b| b)
                };
            }
        }
        for c in 0..cols {
            for r in 0..rows {
                let (lo, hi) = (r.saturating_sub(radius), (r + radius).min(rows - 1));
                let mut v = !grow;
                for rr in lo..=hi {
                    let t = self.tmp[rr * cols + c];
                    if grow && t {
                        v = true;
                        break;
                    }
                    if !grow && !t {
                        v = false;
                        break;
                    }
                }
                self.bad[r * cols + c] = v;
            }
        }
    }
}

/// Calls `on_region` with the cells of each 4-connected region of the `cols` x `rows` grid
/// cells where `member` holds (`seen` and `stack` are the caller's scratch buffers).
fn for_each_region(
    member: impl Fn(usize) -> bool,
    cols: usize,
    rows: usize,
    seen: &mut Vec<bool>,
    stack: &mut Vec<usize>,
    mut on_region: impl FnMut(&[usize]),
) {
    let n = cols * rows;
    seen.clear();
    seen.resize(n, false);
    let mut region = Vec::new();
    for start in 0..n {
        if seen[start] || !member(start) {
            continue;
        }
        region.clear();
        stack.clear();
        stack.push(start);
        seen[start] = true;
        while let Some(i) = stack.pop() {
            region.push(i);
            let (c, r) = (i % cols, i / cols);
            let neighbours = [
                (c > 0).then(|| i - 1),
                (c + 1 < cols).then(|| i + 1),
                (r > 0).then(|| i - cols),
                (r + 1 < rows).then(|| i + cols),
            ];
            for j in neighbours.into_iter().flatten() {
                if !seen[j] && member(j) {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        on_region(&region);
    }
}

/// Sharpness of the cell at (`c`, `r`) of side `cell`: mean absolute 4-neighbour Laplacian
/// of the luminance (Rec. 601) over its mean; `None` for a cell without an interior pixel.
fn cell_sharpness(image: &RgbImage, cell: u32, c: usize, r: usize) -> Option<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw();
    let luma = |x: usize, y: usize| {
        let i = 3 * (y * w + x);
        luma_of(raw[i], raw[i + 1], raw[i + 2])
    };
    let cell = cell as usize;
    let (x0, y0) = ((c * cell).max(1), (r * cell).max(1));
    let (x1, y1) = (
        ((c + 1) * cell).min(w.saturating_sub(1)),
        ((r + 1) * cell).min(h.saturating_sub(1)),
    );
    let (mut lap, mut sum, mut n) = (0f32, 0f32, 0u32);
    for y in y0..y1 {
        for x in x0..x1 {
            let v = luma(x, y);
            let around = luma(x - 1, y) + luma(x + 1, y) + luma(x, y - 1) + luma(x, y + 1);
            lap += (4.0 * v - around).abs();
            sum += v;
            n += 1;
        }
    }
    (n > 0).then(|| lap / sum.max(1.0))
}

/// Fills blocks without a value from their neighbours (repeatedly), or with `fallback`.
fn fill_missing(v: &mut [f32], cols: usize, rows: usize, fallback: f32) {
    if v.iter().all(|x| x.is_nan()) {
        v.iter_mut().for_each(|x| *x = fallback);
        return;
    }
    for _ in 0..cols.max(rows) {
        if !v.iter().any(|x| x.is_nan()) {
            break;
        }
        let prev = v.to_vec();
        for r in 0..rows {
            for c in 0..cols {
                if !prev[r * cols + c].is_nan() {
                    continue;
                }
                let mut s = 0.0;
                let mut k = 0.0;
                for (dc, dr) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                    let (cc, rr) = (c as i64 + dc, r as i64 + dr);
                    if cc >= 0 && rr >= 0 && (cc as usize) < cols && (rr as usize) < rows {
                        let x = prev[rr as usize * cols + cc as usize];
                        if !x.is_nan() {
                            s += x;
                            k += 1.0;
                        }
                    }
                }
                if k > 0.0 {
                    v[r * cols + c] = s / k;
                }
            }
        }
    }
    v.iter_mut()
        .filter(|x| x.is_nan())
        .for_each(|x| *x = fallback);
}

/// The block value at cell (c, r), bilinear between block centres.
fn bilinear(v: &[f32], bcols: usize, brows: usize, bcell: usize, c: usize, r: usize) -> f32 {
    let fx = ((c as f32 + 0.5) / bcell as f32 - 0.5).clamp(0.0, (bcols - 1) as f32);
    let fy = ((r as f32 + 0.5) / bcell as f32 - 0.5).clamp(0.0, (brows - 1) as f32);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(bcols - 1), (y0 + 1).min(brows - 1));
    let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
    let top = v[y0 * bcols + x0] * (1.0 - tx) + v[y0 * bcols + x1] * tx;
    let bottom = v[y1 * bcols + x0] * (1.0 - tx) + v[y1 * bcols + x1] * tx;
    top * (1.0 - ty) + bottom * ty
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skin_frame(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let n = ((x * 7 + y * 13) % 5) as u8;
            image::Rgb([200 + n, 150 + n, 130 + n])
        })
    }

    /// 400x300 of skin with a blue glove over its right quarter (x >= 300).
    fn gloved_frame() -> RgbImage {
        let mut img = skin_frame(400, 300);
        for y in 0..300 {
            for x in 300..400 {
                img.put_pixel(x, y, image::Rgb([60, 110, 220]));
            }
        }
        img
    }

    /// A skin model's view of [`gloved_frame`] on cells of 10 px (40 x 30): `p(column, row)`.
    fn gloved_view(p: impl Fn(usize, usize) -> f32) -> SegMask {
        let (cols, rows) = (40, 30);
        let hot: Vec<_> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (c, r)))
            .map(|(c, r)| (0, c, r, p(c, r)))
            .collect();
        SegMask::test_grid(cols, rows, 1, 10.0, &hot)
    }

    #[test]
    fn a_blue_glove_is_not_skin_and_dots_are() {
        let ppm = 20.0;
        // A blue square (glove) on the right, dark dots on the skin.
        let mut img = gloved_frame();
        for &(cx, cy) in &[(50i32, 50i32), (120, 200), (200, 100)] {
            for dy in -3..=3 {
                for dx in -3..=3 {
                    img.put_pixel((cx + dx) as u32, (cy + dy) as u32, image::Rgb([40, 30, 30]));
                }
            }
        }
        let mut m = SkinMasker::new();
        let mask = m.compute(&img, ppm);
        assert!(mask.is_skin(50.0, 50.0), "a dot is skin");
        assert!(mask.is_skin(10.0, 10.0));
        assert!(!mask.is_skin(350.0, 150.0), "the glove is not skin");
        assert!((mask.fraction() - 0.75).abs() < 0.02, "{}", mask.fraction());
        let d = mask.distance_to_not_skin(290.0, 150.0, 30.0);
        assert!(d.is_some_and(|d| d < 12.0), "{d:?}");
        assert!(mask.distance_to_not_skin(100.0, 150.0, 30.0).is_none());
    }

    #[test]
    fn the_skin_models_view_is_fused_with_the_colour_rules() {
        // 400x300 at 20 px/mm, a blue glove on the right (x >= 300). The skin model's view on
        // cells of 10 px: a surface of the skin's own colour on the left (x < 70, under the
        // share of the skin whose overruling sets the view aside) that it is sure is not skin,
        // and on the glove a top half it is fairly sure of and a bottom half it is sure is skin.
        let ppm = 20.0;
        let img = gloved_frame();
        let learned = gloved_view(|c, r| match (c, r) {
            (c, _) if c < 7 => 0.9,
            (c, r) if c >= 30 && r < 15 => 0.3,
            (c, _) if c >= 30 => 0.02,
            _ => 0.0,
        });
        let mut m = SkinMasker::new();
        let classical = m.compute(&img, ppm).clone();
        assert!(
            classical.is_skin(30.0, 150.0),
            "the colour rules take it for skin"
        );
        assert!(!classical.is_skin(350.0, 50.0) && !classical.is_skin(350.0, 250.0));
        let fused = m.compute_with(&img, ppm, Some(&learned)).clone();
        assert!(
            !fused.is_skin(30.0, 150.0),
            "p 0.9: not skin whatever the colour says"
        );
        assert!(
            !fused.is_skin(350.0, 50.0),
            "the glove, p 0.3: the colour rules stand"
        );
        assert!(
            fused.is_skin(350.0, 250.0),
            "p 0.02: the model is sure it is skin"
        );
        assert!(fused.is_skin(200.0, 150.0), "skin both ways stays skin");
        // Skin: the middle of the frame and the glove's bottom half (0.7), and up to the bands
        // of two colour cells (10 px) at the model's edges, which the edge step redraws by
        // colour: here both sides of each have one colour (the skin's; the glove's).
        let f = fused.fraction();
        assert!((0.695..=0.75).contains(&f), "{f}");
        // Without a view the classical mask comes back.
        assert_eq!(m.compute_with(&img, ppm, None), &classical);
    }

    #[test]
    fn a_skin_model_that_turns_the_frame_inside_out_is_set_aside() {
        // The glove on the right as above; a view that calls the skin not skin and the glove
        // skin (what the bundled model did with a yellow glove), one that calls 40% of the skin
        // not skin, and one that calls 20% of it not skin (an ear or hair mass against the
        // scalp).
        let ppm = 20.0;
        let img = gloved_frame();
        let view = |not_skin_below: usize| {
            gloved_view(|c, _| {
                if c < not_skin_below.min(30) {
                    0.95
                } else {
                    0.0
                }
            })
        };
        let mut m = SkinMasker::new();
        let classical = m.compute(&img, ppm).clone();
        assert!(!classical.learned_set_aside());
        let inverted = m.compute_with(&img, ppm, Some(&view(30))).clone();
        assert_eq!(
            inverted.skin, classical.skin,
            "the colour rules stand alone"
        );
        assert!(inverted.learned_set_aside(), "and the mask says so");
        let most = m.compute_with(&img, ppm, Some(&view(12))).clone();
        assert_eq!(
            most.skin, classical.skin,
            "40% overruled: the colour rules stand alone"
        );
        assert!(most.learned_set_aside());
        // 20% (x < 60; the edge step redraws two colour cells either side of x = 60).
        let partial = m.compute_with(&img, ppm, Some(&view(6))).clone();
        assert!(
            !partial.is_skin(30.0, 150.0),
            "20% overruled: the view is used"
        );
        assert!(
            partial.is_skin(350.0, 150.0),
            "and restores the glove it is sure of"
        );
        assert!(!partial.learned_set_aside());
    }

    #[test]
    fn the_edge_is_drawn_finer_than_the_colour_cells() {
        // 20 px/mm: colour cells of 5 px. A glove edge at x = 203 and a slanted one, neither
        // on a cell boundary, and a skin channel 1 mm wide between two gloves.
        let ppm = 20.0;
        let mut img = dotted_frame(400, 300, [200, 150, 130]);
        let glove = image::Rgb([60, 110, 220]);
        for y in 0..300u32 {
            for x in 0..400u32 {
                let right = x >= 203;
                let slant = f64::from(x) < 60.0 + 0.5 * f64::from(y) - 100.0;
                if right || slant {
                    img.put_pixel(x, y, glove);
                }
            }
        }
        let mut m = SkinMasker::new();
        let mask = m.compute(&img, ppm).clone();
        assert!(mask.cell_px() < 5, "edge cells of {} px", mask.cell_px());
        // Straight edge: within 2 px either side.
        for y in (20..280).step_by(7) {
            let y = f64::from(y) + 0.5;
            assert!(mask.is_skin(200.5, y), "skin at x 200.5, y {y}");
            assert!(!mask.is_skin(205.5, y), "glove at x 205.5, y {y}");
        }
        // Slanted edge: the mask's edge along each row within 3 px of the truth.
        for y in (220..300).step_by(9) {
            let edge = 60.0 + 0.5 * f64::from(y) - 100.0;
            let y = f64::from(y) + 0.5;
            assert!(
                mask.is_skin(edge + 3.0, y),
                "skin right of the slant, y {y}"
            );
            assert!(
                !mask.is_skin(edge - 3.0, y),
                "glove left of the slant, y {y}"
            );
        }
        // The live service's mask keeps the edge at the colour cells.
        let mut live = SkinMasker::new();
        live.set_fine_edge(false);
        let coarse = live.compute(&img, ppm);
        assert_eq!(coarse.cell_px(), 5);
        assert!(
            !coarse.is_skin(200.5, 150.5),
            "the straddling colour cell is not skin"
        );
        let truth = 1.0 - (400.0 - 203.0) / 400.0;
        let slant_area: f64 = (0..300)
            .map(|y| (60.0 + 0.5 * f64::from(y) - 100.0).clamp(0.0, 203.0))
            .sum::<f64>()
            / (400.0 * 300.0);
        assert!(
            (mask.fraction() - (truth - slant_area)).abs() < 0.01,
            "skin fraction {} against {}",
            mask.fraction(),
            truth - slant_area
        );
    }

    /// Skin of colour `skin` with dark dots every 24 px, as the rig sees a scalp.
    fn dotted_frame(w: u32, h: u32, skin: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let n = ((x * 7 + y * 13) % 5) as u8;
            let dot = (x % 24).abs_diff(12) <= 2 && (y % 24).abs_diff(12) <= 2;
            if dot {
                image::Rgb([50, 40, 40])
            } else {
                image::Rgb(skin.map(|c| c.saturating_add(n)))
            }
        })
    }

    /// A glove band across the frame cuts off its right piece (x >= 290); `soft` paints that
    /// piece as a surface of the skin's colour out of focus (a slow gradient, no dots or grain).
    fn cut_off_piece(soft: bool) -> RgbImage {
        let mut img = dotted_frame(400, 300, [200, 150, 130]);
        for y in 0..300u32 {
            for x in 250..400u32 {
                let p = if x < 290 {
                    image::Rgb([60, 110, 220])
                } else if soft {
                    let t = f64::from(x - 290) / 110.0 + f64::from(y) / 600.0;
                    let k = (6.0 * (t * std::f64::consts::PI).sin()) as i16;
                    image::Rgb([(202 + k) as u8, (151 + k) as u8, (131 + k) as u8])
                } else {
                    continue;
                };
                img.put_pixel(x, y, p);
            }
        }
        img
    }

    #[test]
    fn a_piece_apart_from_the_scalp_and_out_of_focus_is_not_skin() {
        let ppm = 20.0;
        let mut m = SkinMasker::new();
        // Dotted skin cut off by the glove is as sharp as the scalp: skin.
        let sharp = m.compute(&cut_off_piece(false), ppm).clone();
        assert!(sharp.is_skin(100.0, 150.0));
        assert!(!sharp.is_skin(270.0, 150.0), "the glove");
        for (x, y) in [(340.0, 60.0), (350.0, 150.0), (370.0, 250.0)] {
            assert!(sharp.is_skin(x, y), "the sharp piece at ({x}, {y})");
        }
        // The same colour out of focus, apart from the scalp: not skin.
        let soft = m.compute(&cut_off_piece(true), ppm).clone();
        assert!(soft.is_skin(100.0, 150.0));
        for (x, y) in [(340.0, 60.0), (350.0, 150.0), (370.0, 250.0)] {
            assert!(!soft.is_skin(x, y), "the soft piece at ({x}, {y})");
        }
        assert!(
            (soft.fraction() - 250.0 / 400.0).abs() < 0.02,
            "skin fraction {}",
            soft.fraction()
        );
    }

    #[test]
    fn a_smooth_saturated_surface_of_skin_hue_is_not_skin_but_shadowed_skin_is() {
        let ppm = 20.0;
        let base = [200u8, 150, 120];
        let textured = dotted_frame(400, 300, base);
        let in_disk =
            |x: u32, y: u32, cx: f64| (f64::from(x) - cx).hypot(f64::from(y) - 150.0) < 60.0;
        // A translucent cartridge seen end-on: the skin's hue, more saturated, and smooth.
        let salmon = [240u8, 150, 110];
        let mut frame = textured.clone();
        // The same colour with the skin's dots and grain: what only colour would see.
        let mut grainy = textured.clone();
        // Skin in a glove's shadow: darker, its chroma down with it, its grain kept.
        let mut shadowed = textured.clone();
        for (x, y, p) in textured.enumerate_pixels() {
            if in_disk(x, y, 120.0) {
                frame.put_pixel(x, y, image::Rgb(salmon));
                let (d, n) = (p.0[0] < 100, ((x * 7 + y * 13) % 5) as u8);
                grainy.put_pixel(
                    x,
                    y,
                    if d {
                        *p
                    } else {
                        image::Rgb(salmon.map(|c| c.saturating_add(n)))
                    },
                );
                shadowed.put_pixel(x, y, image::Rgb(p.0.map(|c| (f32::from(c) * 0.7) as u8)));
            }
        }
        let mut m = SkinMasker::new();
        let mask = m.compute(&frame, ppm);
        assert!(
            !mask.is_skin(120.0, 150.0),
            "the smooth cartridge is not skin"
        );
        assert!(mask.is_skin(320.0, 150.0), "the scalp beside it is skin");
        let mask = m.compute(&grainy, ppm);
        assert!(
            mask.is_skin(120.0, 150.0),
            "its colour alone passes for skin"
        );
        let mask = m.compute(&shadowed, ppm);
        assert!(mask.is_skin(120.0, 150.0), "skin in shadow is skin");
    }

    #[test]
    fn r19_casts_keep_the_scalp_skin() {
        let ppm = 20.0;
        // Warm cast: the scalp's hue moves and a white cartridge turns warm and bright, a tight
        // colour peak; the scalp, the larger surface, is still the skin.
        let mut warm = dotted_frame(400, 300, [215, 140, 95]);
        for y in 40..140 {
            for x in 0..400 {
                warm.put_pixel(x, y, image::Rgb([250, 228, 200]));
            }
        }
        let mut m = SkinMasker::new();
        let mask = m.compute(&warm, ppm);
        assert!(mask.is_skin(100.0, 220.0), "the scalp is skin");
        assert!(!mask.is_skin(200.0, 90.0), "the cartridge is not skin");
        assert!(
            (mask.fraction() - 2.0 / 3.0).abs() < 0.05,
            "{}",
            mask.fraction()
        );
        // Cool cast on a pale scalp: almost grey, yet dotted skin; a violet glove is not skin.
        let mut cool = dotted_frame(400, 300, [188, 186, 184]);
        for y in 0..300 {
            for x in 320..400 {
                cool.put_pixel(x, y, image::Rgb([120, 90, 200]));
            }
        }
        let mask = m.compute(&cool, ppm);
        assert!(mask.is_skin(100.0, 100.0), "the pale scalp is skin");
        assert!(!mask.is_skin(360.0, 150.0), "the glove is not skin");
        assert!((mask.fraction() - 0.8).abs() < 0.05, "{}", mask.fraction());
    }

    #[test]
    fn a_grey_frame_has_no_skin() {
        let img = RgbImage::from_pixel(200, 100, image::Rgb([128, 128, 128]));
        let mut m = SkinMasker::new();
        let mask = m.compute(&img, 20.0);
        assert_eq!(mask.fraction(), 0.0);
        assert!(mask.colourless());
    }

    /// A greyscale picture of a scalp: the colour rules have nothing to read, and a skin model's
    /// view (it learned colour) is set aside, so the skin is kept by lightness and texture; the
    /// same view on the picture in colour is fused as usual.
    #[test]
    fn a_picture_without_colour_keeps_its_skin_and_sets_the_skin_model_aside() {
        use crate::source::synth::{render, SceneParams, View};
        let mut params = SceneParams::new(9001, View::Rig);
        (params.width, params.height) = (480, 360);
        params.px_per_mm = Some(20.0);
        let colour = render(&params).image;
        let mut grey = colour.clone();
        crate::perception::filter::grey_in_place(&mut grey);
        // The view calls the left fifth not skin (cells of 10 px, 48 x 36): under the share at
        // which a view is set aside on a frame in colour.
        let hot: Vec<_> = (0..36)
            .flat_map(|r| (0..10).map(move |c| (0, c, r, 0.9)))
            .collect();
        let view = SegMask::test_grid(48, 36, 1, 10.0, &hot);
        let mut m = SkinMasker::new();
        let mask = m.compute_with(&grey, 20.0, Some(&view));
        assert!(mask.colourless());
        assert!(mask.fraction() > 0.98, "grey: {}", mask.fraction());
        assert!(mask.is_skin(40.0, 180.0), "grey: the view is set aside");
        let mask = m.compute_with(&colour, 20.0, Some(&view));
        assert!(!mask.colourless());
        assert!(!mask.is_skin(40.0, 180.0), "colour: the view is fused");
        assert!(mask.is_skin(300.0, 180.0));
        let no_view = m.compute_with(&grey, 20.0, None).fraction();
        assert!(no_view > 0.98, "grey without a view: {no_view}");
        // A pale scalp (type II) at a coarse scale: in grey, few of its cells are as textured as
        // a colour frame's near-neutral scalp must be, and it is skin all the same.
        let frame = render(&SceneParams::new(453, View::Rig));
        let (mut pale, ppm) = (frame.image, frame.truth.px_per_mm);
        assert!(ppm < 15.0 && frame.truth.fitzpatrick == 2);
        crate::perception::filter::grey_in_place(&mut pale);
        let mask = m.compute_with(&pale, ppm, None);
        assert!(mask.colourless());
        assert!(
            mask.fraction() > 0.98,
            "pale, coarse, grey: {}",
            mask.fraction()
        );
    }
}
