//! Ground truth written beside every synthetic frame: where every follicle, unit, pigment dot
//! and negative (thing that is not a dot) lies, in pixels of the rendered image.
//!
//! This is the test oracle for detection, planning and registration, and the label source for
//! the segmentation model, so its format is a contract: `NNN.json` beside `NNN.png|jpg`.

use serde::{Deserialize, Serialize};

pub use crate::frame::View;

/// One hair of a follicular unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TruthHair {
    /// Where the hair leaves the skin, x (px).
    pub x: f64,
    /// Where the hair leaves the skin, y (px).
    pub y: f64,
    /// Radius of the dark tip / shaft (px).
    pub radius: f64,
    /// Direction the hair (and its shadow) points, radians, image coordinates (0 = +x, pi/2 = +y).
    pub angle_rad: f64,
    /// Visible length of the shaft or shadow (px).
    pub length_px: f64,
}

/// One follicular unit: one opening in the skin with 1-4 hairs. A detector reports one dot per unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TruthUnit {
    /// Centre of the opening, x (px).
    pub x: f64,
    /// Centre of the opening, y (px).
    pub y: f64,
    /// Radius that encloses the unit's tips / opening (px).
    pub radius: f64,
    /// The unit's hairs (1-4).
    pub hairs: Vec<TruthHair>,
    /// A faint, thin miniaturised hair of the thinning zone.
    pub miniaturised: bool,
}

/// One healed pigment dot from an earlier session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TruthPigment {
    /// Centre x (px).
    pub x: f64,
    /// Centre y (px).
    pub y: f64,
    /// Radius (px).
    pub radius: f64,
    /// Darkness 0 (skin) ..= 1 (black).
    pub shade: f64,
}

/// What a negative is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeKind {
    /// A pale round FUE extraction scar, 0.3-0.5 mm.
    FueScar,
    /// A pale band without follicles left by strip surgery.
    StripScar,
    /// A brown mole, 0.5-2 mm.
    Mole,
    /// A loose hair strand lying across the skin.
    Strand,
    /// Specular glare.
    Glare,
    /// An empty follicle opening seen as a yellow dot under the dermoscope (no hair, not a unit).
    YellowDot,
}

/// Where a negative lies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    /// A disc.
    Circle {
        /// Centre x (px).
        x: f64,
        /// Centre y (px).
        y: f64,
        /// Radius (px).
        r: f64,
    },
    /// A polyline with a half width (strands, strip scars).
    Band {
        /// Polyline vertices (px).
        points: Vec<[f64; 2]>,
        /// Half of the band's width (px).
        half_width: f64,
    },
}

impl Shape {
    /// Distance from a point to the shape's area (0 inside).
    pub fn distance(&self, px: f64, py: f64) -> f64 {
        match self {
            Shape::Circle { x, y, r } => ((px - x).hypot(py - y) - r).max(0.0),
            Shape::Band { points, half_width } => {
                let mut best = f64::INFINITY;
                for seg in points.windows(2) {
                    let (ax, ay, bx, by) = (seg[0][0], seg[0][1], seg[1][0], seg[1][1]);
                    let (dx, dy) = (bx - ax, by - ay);
                    let len2 = dx * dx + dy * dy;
                    let t = if len2 > 0.0 {
                        (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    best = best.min((px - ax - t * dx).hypot(py - ay - t * dy));
                }
                if points.len() == 1 {
                    best = (px - points[0][0]).hypot(py - points[0][1]);
                }
                (best - half_width).max(0.0)
            }
        }
    }

    /// Whether a point lies on the shape.
    pub fn contains(&self, px: f64, py: f64) -> bool {
        self.distance(px, py) <= 0.0
    }
}

/// One thing on the skin that is not a dot and must never be reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TruthNegative {
    /// What it is.
    pub kind: NegativeKind,
    /// Where it is.
    pub shape: Shape,
}

/// Everything the renderer knows about one frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    /// Seed of this frame.
    pub seed: u64,
    /// Which view was rendered.
    pub view: View,
    /// Image width (px).
    pub width: u32,
    /// Image height (px).
    pub height: u32,
    /// Scale at the skin.
    pub px_per_mm: f64,
    /// Fitzpatrick skin type, 1..=6.
    pub fitzpatrick: u8,
    /// Follicular units (each one true dot).
    pub units: Vec<TruthUnit>,
    /// Healed pigment dots (each one true dot).
    pub pigment: Vec<TruthPigment>,
    /// Things that are not dots.
    pub negatives: Vec<TruthNegative>,
    /// At the chair: where the frame is not treatable skin (room, longer hair, ear, cape,
    /// gloves, machine, ink smears). Absent: every pixel is skin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_skin: Option<MaskRuns>,
}

/// A binary mask of a frame as runs of set pixels per row: compact in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaskRuns {
    /// Mask width (px).
    pub width: u32,
    /// Mask height (px).
    pub height: u32,
    /// Runs `[y, x0, x1]`: pixels `x0..x1` of row `y` are set.
    pub runs: Vec<[u32; 3]>,
}

impl MaskRuns {
    /// The runs of the non-zero pixels of `mask`.
    pub fn from_mask(mask: &image::GrayImage) -> Self {
        let (w, h) = mask.dimensions();
        let mut runs = Vec::new();
        for y in 0..h {
            let mut x = 0;
            while x < w {
                if mask.get_pixel(x, y)[0] == 0 {
                    x += 1;
                    continue;
                }
                let x0 = x;
                while x < w && mask.get_pixel(x, y)[0] != 0 {
                    x += 1;
                }
                runs.push([y, x0, x]);
            }
        }
        Self {
            width: w,
            height: h,
            runs,
        }
    }

    /// The mask as an image: 255 set, 0 clear.
    pub fn to_mask(&self) -> image::GrayImage {
        let mut m = image::GrayImage::new(self.width, self.height);
        for &[y, x0, x1] in &self.runs {
            for x in x0..x1.min(self.width) {
                if y < self.height {
                    m.put_pixel(x, y, image::Luma([255]));
                }
            }
        }
        m
    }

    /// Number of set pixels.
    pub fn area(&self) -> u64 {
        self.runs
            .iter()
            .map(|r| u64::from(r[2].saturating_sub(r[1])))
            .sum()
    }

    /// Whether the pixel under point (x, y) (px) is set; points off the frame are not.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        if !(x >= 0.0 && y >= 0.0) {
            return false;
        }
        let (xi, yi) = (x.floor() as u32, y.floor() as u32);
        // Runs are sorted by row, then column.
        let start = self.runs.partition_point(|r| r[0] < yi);
        self.runs[start..]
            .iter()
            .take_while(|r| r[0] == yi)
            .any(|r| xi >= r[1] && xi < r[2])
    }
}
