//! The training score of a recorded session: `stipple replay FILE.mcap --report OUT.html`.
//!
//! What a trainer looks at, from the recording alone:
//! - **dots placed** (the session's placed-dot events) and **dots per minute** over the
//!   recording's duration;
//! - **on plan**: the share of placed dots that landed within [`ON_PLAN_MM`] of a
//!   recommendation standing when they were placed;
//! - **spacing violations** (blowout risk): placed dots closer to another dot than the
//!   design's minimum spacing;
//! - **density per zone against target**, and a **density map picture per zone**;
//! - **consistency** ([`Consistency`]): how much the placed dots' size, shade (darkness
//!   measured on every [`SHADE_EVERY`]-th frame) and distance to their nearest dot vary;
//! - a **grade** out of 100 with its rubric stated ([`Grade::score`]).
//!
//! Densities come from the skin map rebuilt from the recording ([`SkinMap`]): every frame's
//! detections, mapped to the skin through that frame's registration, clustered into dots
//! (a dot is kept once seen in [`MIN_OBSERVATIONS`] frames); a zone's density counts the
//! dots inside the part of the zone that was in view, over that area.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use image::{Rgb, RgbImage};
use serde::Serialize;

use super::reader::Recording;
use crate::calib::PlaneMap;
use crate::frame::DotKind;
use crate::geometry::polygon_contains;
use crate::planning::{Design, ZoneKind};
use crate::registration::Similarity;
use crate::session::PlacedDot;

/// A placed dot within this distance of a recommendation counts as on plan, millimetres.
pub const ON_PLAN_MM: f64 = 0.2;
/// A cluster of observations becomes a map dot once seen in this many frames.
pub const MIN_OBSERVATIONS: u32 = 3;
/// Observations closer than this to a map dot belong to it, millimetres.
const CLUSTER_MM: f64 = 0.3;
/// Side of a coverage cell, millimetres.
const COVER_CELL_MM: f64 = 0.5;
/// A coverage cell counts as seen once in view in this many frames (half a second at 30 fps).
const COVER_MIN_FRAMES: u32 = 15;
/// Density pictures: pixels per millimetre.
const PICTURE_PX_PER_MM: f64 = 8.0;
/// Density pictures: radius of the disc over which local density is measured, millimetres.
const DENSITY_RADIUS_MM: f64 = 2.5;
/// Margin of the picture in which the view is not trusted (dots cut by the edge), pixels.
const BORDER_PX: f64 = 24.0;

/// One dot of the rebuilt skin map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MapDot {
    /// Position, skin millimetres (mean of the observations).
    pub in_skin_mm: [f64; 2],
    /// Radius, millimetres (mean).
    pub radius_mm: f64,
    /// Darkness against the skin around it, 0 (invisible) to 1 (black), when measured.
    pub darkness: Option<f64>,
    /// Follicle or pigment (majority of observations).
    pub kind: DotKind,
    /// Frames it was seen in.
    pub observations: u32,
}

/// The skin map rebuilt from a recording, with what was in view.
#[derive(Debug, Clone, Default)]
pub struct SkinMap {
    /// The dots.
    pub dots: Vec<MapDot>,
    /// Coverage cells seen (skin cell index → frames in view).
    cover: HashMap<(i64, i64), u32>,
}

#[derive(Debug, Clone, Copy)]
struct Cluster {
    sum: [f64; 2],
    radius_sum: f64,
    n: u32,
    pigment: u32,
    dark_sum: f64,
    dark_n: u32,
}

impl Cluster {
    fn mean(&self) -> [f64; 2] {
        let n = f64::from(self.n);
        [self.sum[0] / n, self.sum[1] / n]
    }
}

/// How the pixels of a recorded frame map to the skin map: through the recording's lens to
/// ideal pixels (as the live session registered them, see
/// [`crate::session::SessionConfig::lens`]), then through the frame's registration.
struct FrameToSkin<'a> {
    skin_from_ideal: Similarity,
    ideal_from_skin: Similarity,
    lens: Option<&'a PlaneMap>,
}

impl<'a> FrameToSkin<'a> {
    /// The mapping of frame `f`, when it was registered.
    fn of(f: &super::RecordedFrame, lens: Option<&'a PlaneMap>) -> Option<Self> {
        if !f.overlay.registered {
            return None;
        }
        let skin_from_ideal = match &f.plan {
            Some(p) => p.skin_from_image,
            None => {
                let m = f.overlay.image_from_skin;
                Similarity {
                    a: m[0],
                    b: m[3],
                    tx: m[2],
                    ty: m[5],
                }
                .inverse()
            }
        };
        Some(Self {
            skin_from_ideal,
            ideal_from_skin: skin_from_ideal.inverse(),
            lens,
        })
    }

    /// A pixel of the frame on the skin (mm).
    fn skin_of(&self, p: [f64; 2]) -> [f64; 2] {
        self.skin_from_ideal
            .apply(self.lens.map_or(p, |l| l.to_ideal(p)))
    }

    /// Where a skin point (mm) lies in the frame (px).
    fn image_of(&self, q: [f64; 2]) -> [f64; 2] {
        let v = self.ideal_from_skin.apply(q);
        self.lens.map_or(v, |l| l.from_ideal(v))
    }

    /// The frame's pixels per millimetre at skin point `q` (the lens's scale there).
    fn px_per_mm_at(&self, q: [f64; 2]) -> f64 {
        let (a, b) = (
            self.image_of([q[0] - 0.5, q[1]]),
            self.image_of([q[0] + 0.5, q[1]]),
        );
        (a[0] - b[0]).hypot(a[1] - b[1])
    }

    /// The frame's outline (corners and edge middles) on the skin.
    fn outline(&self, w: f64, h: f64) -> [[f64; 2]; 8] {
        crate::geometry::picture_outline(w, h, 0.0).map(|c| self.skin_of(c))
    }
}

impl SkinMap {
    /// Rebuilds the map from every registered frame. With `darkness_every = Some(n)`, every
    /// n-th frame is decoded and each dot's darkness measured (for the touch-up comparison).
    pub fn from_recording(rec: &Recording, darkness_every: Option<usize>) -> Self {
        let _span = tracing::debug_span!("skin_map", frames = rec.frames.len()).entered();
        let mut clusters: Vec<Cluster> = Vec::new();
        let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        let mut cover: HashMap<(i64, i64), u32> = HashMap::new();
        let cell = |p: [f64; 2]| {
            (
                (p[0] / CLUSTER_MM).floor() as i64,
                (p[1] / CLUSTER_MM).floor() as i64,
            )
        };
        let lens = rec.lens();
        for (i, f) in rec.frames.iter().enumerate() {
            let (Some(t), Some(d)) = (FrameToSkin::of(f, lens.as_ref()), f.detections.as_ref())
            else {
                continue;
            };
            let luma = darkness_every
                .filter(|n| *n > 0 && i % n == 0)
                .and_then(|_| super::decode_jpeg(f.seq, &f.jpeg).ok())
                .map(|img| image::imageops::grayscale(&img));
            // Coverage: the cells whose centre is in the trusted part of the view.
            let (w, h) = (f64::from(d.width), f64::from(d.height));
            let corners = t.outline(w, h);
            let (x0, x1) = min_max(corners.iter().map(|c| c[0]));
            let (y0, y1) = min_max(corners.iter().map(|c| c[1]));
            let (cx0, cx1) = (
                (x0 / COVER_CELL_MM).floor() as i64,
                (x1 / COVER_CELL_MM).ceil() as i64,
            );
            let (cy0, cy1) = (
                (y0 / COVER_CELL_MM).floor() as i64,
                (y1 / COVER_CELL_MM).ceil() as i64,
            );
            for cy in cy0..cy1 {
                for cx in cx0..cx1 {
                    let c = [
                        (cx as f64 + 0.5) * COVER_CELL_MM,
                        (cy as f64 + 0.5) * COVER_CELL_MM,
                    ];
                    let q = t.image_of(c);
                    if q[0] >= BORDER_PX
                        && q[1] >= BORDER_PX
                        && q[0] < w - BORDER_PX
                        && q[1] < h - BORDER_PX
                    {
                        *cover.entry((cx, cy)).or_insert(0) += 1;
                    }
                }
            }
            let uniform_scale = t.skin_from_ideal.scale();
            for det in &d.detections {
                let p = t.skin_of([det.x, det.y]);
                // Millimetres per pixel of the frame there (the lens changes it across).
                let scale = match lens {
                    Some(_) => 1.0 / t.px_per_mm_at(p),
                    None => uniform_scale,
                };
                let (gx, gy) = cell(p);
                let mut best: Option<(usize, f64)> = None;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        for &k in grid.get(&(gx + dx, gy + dy)).into_iter().flatten() {
                            let m = clusters[k].mean();
                            let dist = (m[0] - p[0]).hypot(m[1] - p[1]);
                            if dist < CLUSTER_MM && best.is_none_or(|b| dist < b.1) {
                                best = Some((k, dist));
                            }
                        }
                    }
                }
                let k = match best {
                    Some((k, _)) => k,
                    None => {
                        clusters.push(Cluster {
                            sum: [0.0, 0.0],
                            radius_sum: 0.0,
                            n: 0,
                            pigment: 0,
                            dark_sum: 0.0,
                            dark_n: 0,
                        });
                        grid.entry((gx, gy)).or_default().push(clusters.len() - 1);
                        clusters.len() - 1
                    }
                };
                let c = &mut clusters[k];
                c.sum = [c.sum[0] + p[0], c.sum[1] + p[1]];
                c.radius_sum += det.radius * scale;
                c.n += 1;
                c.pigment += u32::from(det.kind == DotKind::Pigment);
                if let Some(dark) = luma
                    .as_ref()
                    .and_then(|l| darkness(l, det.x, det.y, det.radius))
                {
                    c.dark_sum += dark;
                    c.dark_n += 1;
                }
            }
        }
        let dots = clusters
            .iter()
            .filter(|c| c.n >= MIN_OBSERVATIONS)
            .map(|c| MapDot {
                in_skin_mm: c.mean(),
                radius_mm: c.radius_sum / f64::from(c.n),
                darkness: (c.dark_n > 0).then(|| c.dark_sum / f64::from(c.dark_n)),
                kind: if 2 * c.pigment >= c.n {
                    DotKind::Pigment
                } else {
                    DotKind::Follicle
                },
                observations: c.n,
            })
            .collect();
        Self { dots, cover }
    }

    /// A map from known dots, everything around them counted as seen (tests, synthetic maps).
    pub fn from_dots(dots: Vec<MapDot>) -> Self {
        let mut cover = HashMap::new();
        for d in &dots {
            let (cx, cy) = (
                (d.in_skin_mm[0] / COVER_CELL_MM).floor() as i64,
                (d.in_skin_mm[1] / COVER_CELL_MM).floor() as i64,
            );
            for dy in -4..=4 {
                for dx in -4..=4 {
                    cover.insert((cx + dx, cy + dy), COVER_MIN_FRAMES);
                }
            }
        }
        Self { dots, cover }
    }

    /// Whether a skin point was in view long enough to count.
    pub fn seen(&self, p: [f64; 2]) -> bool {
        let c = (
            (p[0] / COVER_CELL_MM).floor() as i64,
            (p[1] / COVER_CELL_MM).floor() as i64,
        );
        self.cover.get(&c).is_some_and(|n| *n >= COVER_MIN_FRAMES)
    }

    /// The area seen inside `poly` (all seen area when `None`), cm².
    pub fn seen_area_cm2(&self, poly: Option<&[[f64; 2]]>) -> f64 {
        let cell_cm2 = COVER_CELL_MM * COVER_CELL_MM / 100.0;
        self.cover
            .iter()
            .filter(|(_, n)| **n >= COVER_MIN_FRAMES)
            .filter(|((cx, cy), _)| {
                let c = [
                    (*cx as f64 + 0.5) * COVER_CELL_MM,
                    (*cy as f64 + 0.5) * COVER_CELL_MM,
                ];
                poly.is_none_or(|p| polygon_contains(p, c[0], c[1]))
            })
            .count() as f64
            * cell_cm2
    }

    /// Bounding box of the seen area, millimetres: `[x0, y0, x1, y1]`.
    fn seen_bbox(&self) -> Option<[f64; 4]> {
        let seen: Vec<_> = self
            .cover
            .iter()
            .filter(|(_, n)| **n >= COVER_MIN_FRAMES)
            .map(|(c, _)| *c)
            .collect();
        if seen.is_empty() {
            return None;
        }
        let (x0, x1) = min_max(seen.iter().map(|c| c.0 as f64));
        let (y0, y1) = min_max(seen.iter().map(|c| c.1 as f64));
        Some([
            x0 * COVER_CELL_MM,
            y0 * COVER_CELL_MM,
            (x1 + 1.0) * COVER_CELL_MM,
            (y1 + 1.0) * COVER_CELL_MM,
        ])
    }
}

fn min_max(it: impl Iterator<Item = f64>) -> (f64, f64) {
    it.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Darkness of a dot against the skin around it: `1 - mean(disc) / mean(ring)`, luminance.
pub fn darkness(luma: &image::GrayImage, x: f64, y: f64, radius: f64) -> Option<f64> {
    let r_in = radius.max(1.0);
    let (r0, r1) = (r_in + 1.5, r_in + 3.5);
    let (w, h) = (i64::from(luma.width()), i64::from(luma.height()));
    let (mut disc, mut nd, mut ring, mut nr) = (0.0, 0u32, 0.0, 0u32);
    let reach = r1.ceil() as i64;
    let (cx, cy) = (x.floor() as i64, y.floor() as i64);
    for py in cy - reach..=cy + reach {
        for px in cx - reach..=cx + reach {
            if px < 0 || py < 0 || px >= w || py >= h {
                return None;
            }
            let d = (px as f64 + 0.5 - x).hypot(py as f64 + 0.5 - y);
            let v = f64::from(luma.get_pixel(px as u32, py as u32)[0]);
            if d <= r_in {
                disc += v;
                nd += 1;
            } else if d >= r0 && d <= r1 {
                ring += v;
                nr += 1;
            }
        }
    }
    (nd > 0 && nr > 0 && ring > 0.0).then(|| 1.0 - (disc / f64::from(nd)) / (ring / f64::from(nr)))
}

/// A violation is minor while the dot keeps at least this share of the minimum spacing...
pub const MINOR_SPACING_SHARE: f64 = 0.8;
/// ...major down to this share, severe below it (the dots nearly touch: blowout, merging).
pub const SEVERE_SPACING_SHARE: f64 = 0.5;

/// How bad a spacing violation is, from the share of the minimum spacing the dot kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// At least [`MINOR_SPACING_SHARE`] of the minimum spacing kept.
    Minor,
    /// Between [`SEVERE_SPACING_SHARE`] and [`MINOR_SPACING_SHARE`].
    Major,
    /// Below [`SEVERE_SPACING_SHARE`]: the dots nearly touch.
    Severe,
}

impl Severity {
    /// The severity of a dot `nearest_dot_mm` from its neighbour where `min_spacing_mm` was
    /// asked for.
    pub fn of(nearest_dot_mm: f64, min_spacing_mm: f64) -> Self {
        let share = nearest_dot_mm / min_spacing_mm;
        if share >= MINOR_SPACING_SHARE {
            Self::Minor
        } else if share >= SEVERE_SPACING_SHARE {
            Self::Major
        } else {
            Self::Severe
        }
    }

    /// Points a violation of this severity costs in the grade's spacing part.
    pub fn penalty(self) -> f64 {
        match self {
            Self::Minor => 2.0,
            Self::Major => 5.0,
            Self::Severe => 10.0,
        }
    }
}

/// Points of the grade's parts: on plan, spacing violations, dot size, dot shade, spacing
/// evenness, pace, density goal.
pub const GRADE_POINTS: [(&str, f64); 7] = [
    ("on plan", 35.0),
    ("spacing violations", 25.0),
    ("dot size consistency", 5.0),
    ("dot shade consistency", 5.0),
    ("spacing evenness", 5.0),
    ("pace", 5.0),
    ("density goal", 20.0),
];

/// Dot size consistency earns full points up to this coefficient of variation of the placed
/// dots' radii, none from [`SIZE_CV_NONE`] (linear between).
pub const SIZE_CV_FULL: f64 = 0.10;
/// See [`SIZE_CV_FULL`].
pub const SIZE_CV_NONE: f64 = 0.40;
/// Dot shade consistency: full points up to this standard deviation of the placed dots'
/// darkness (0 skin ..= 1 black), none from [`SHADE_SD_NONE`].
pub const SHADE_SD_FULL: f64 = 0.05;
/// See [`SHADE_SD_FULL`].
pub const SHADE_SD_NONE: f64 = 0.20;
/// Spacing evenness: full points up to this coefficient of variation of each placed dot's
/// distance to its nearest neighbour, none from [`SPACING_CV_NONE`].
pub const SPACING_CV_FULL: f64 = 0.25;
/// See [`SPACING_CV_FULL`].
pub const SPACING_CV_NONE: f64 = 0.60;
/// Pace: full points between these dots per minute (1-2 dots a second, DOMAIN.md); below, in
/// proportion; above, less the further (none at twice the upper end: rushing).
pub const PACE_FULL_PER_MIN: [f64; 2] = [60.0, 120.0];
/// How often the report decodes a frame to measure the dots' darkness (every n-th frame).
pub const SHADE_EVERY: usize = 10;

/// How alike the student's dots are: size, shade and spacing, over the dots placed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Consistency {
    /// Coefficient of variation (sd / mean) of the placed dots' radii; `None` under 2 dots.
    pub size_cv: Option<f64>,
    /// Standard deviation of the placed dots' darkness as the map measured it (0 skin ..= 1
    /// black); `None` under 2 dots with a measured darkness.
    pub shade_sd: Option<f64>,
    /// Coefficient of variation of each placed dot's distance to its nearest dot when placed;
    /// `None` under 2 such distances.
    pub spacing_cv: Option<f64>,
}

/// Mean and standard deviation; `None` under two values.
fn mean_sd(v: &[f64]) -> Option<(f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

impl Consistency {
    /// Measures the placed dots; their darkness is the map's dot within 0.2 mm of each.
    pub fn of(placed: &[PlacedDot], map: &SkinMap) -> Self {
        let radii: Vec<f64> = placed
            .iter()
            .map(|p| p.radius_mm)
            .filter(|r| r.is_finite() && *r > 0.0)
            .collect();
        let shades: Vec<f64> = placed
            .iter()
            .filter_map(|p| {
                map.dots
                    .iter()
                    .filter(|d| {
                        (d.in_skin_mm[0] - p.in_skin_mm[0]).hypot(d.in_skin_mm[1] - p.in_skin_mm[1])
                            <= 0.2
                    })
                    .find_map(|d| d.darkness)
            })
            .collect();
        let gaps: Vec<f64> = placed
            .iter()
            .filter_map(|p| p.nearest_dot_mm)
            .filter(|d| d.is_finite())
            .collect();
        let cv = |v: &[f64]| mean_sd(v).and_then(|(m, sd)| (m > 0.0).then(|| sd / m));
        Self {
            size_cv: cv(&radii),
            shade_sd: mean_sd(&shades).map(|(_, sd)| sd),
            spacing_cv: cv(&gaps),
        }
    }
}

/// `max` points at or under `full`, none at or over `none`, linear between; none unmeasured.
fn linear_points(value: Option<f64>, full: f64, none: f64, max: f64) -> f64 {
    value.map_or(0.0, |v| max * ((none - v) / (none - full)).clamp(0.0, 1.0))
}

/// The session's grade with its rubric.
#[derive(Debug, Clone, Serialize)]
pub struct Grade {
    /// 0-100.
    pub points: f64,
    /// A (>= 90), B (>= 80), C (>= 70), D (>= 60), else E.
    pub letter: char,
    /// Each part: name, points earned, points possible, how it was counted.
    pub rubric: Vec<GradePart>,
}

/// One part of the grade.
#[derive(Debug, Clone, Serialize)]
pub struct GradePart {
    /// What it scores.
    pub name: String,
    /// Points earned.
    pub points: f64,
    /// Points possible.
    pub out_of: f64,
    /// How they were counted.
    pub rule: String,
}

impl Grade {
    /// The rubric: on plan 35 x the on-plan share; spacing violations 25 minus 2 per minor, 5
    /// per major and 10 per severe violation (not below 0); dot size, dot shade and spacing
    /// evenness 5 each ([`SIZE_CV_FULL`], [`SHADE_SD_FULL`], [`SPACING_CV_FULL`]; none when
    /// not measured); pace 5 ([`PACE_FULL_PER_MIN`]); density goal 20 x the zones' mean share
    /// of their target reached (capped at 1 per zone; 0 without zones in view).
    pub fn score(
        on_plan_share: f64,
        violations: &[Violation],
        consistency: &Consistency,
        dots_per_minute: f64,
        zones: &[ZoneReport],
    ) -> Self {
        let [(plan_name, plan_max), (spacing_name, spacing_max), (size_name, size_max), (shade_name, shade_max), (even_name, even_max), (pace_name, pace_max), (goal_name, goal_max)] =
            GRADE_POINTS;
        let size = linear_points(consistency.size_cv, SIZE_CV_FULL, SIZE_CV_NONE, size_max);
        let shade = linear_points(
            consistency.shade_sd,
            SHADE_SD_FULL,
            SHADE_SD_NONE,
            shade_max,
        );
        let even = linear_points(
            consistency.spacing_cv,
            SPACING_CV_FULL,
            SPACING_CV_NONE,
            even_max,
        );
        let [lo, hi] = PACE_FULL_PER_MIN;
        let pace = pace_max
            * if dots_per_minute < lo {
                (dots_per_minute / lo).max(0.0)
            } else {
                (1.0 - (dots_per_minute - hi) / hi).clamp(0.0, 1.0)
            };
        let plan = plan_max * on_plan_share;
        let penalty: f64 = violations.iter().map(|v| v.severity.penalty()).sum();
        let spacing = (spacing_max - penalty).max(0.0);
        let reached: Vec<f64> = zones
            .iter()
            .filter(|z| z.area_cm2 > 0.0)
            .map(|z| z.reached.min(1.0))
            .collect();
        let goal = if reached.is_empty() {
            0.0
        } else {
            goal_max * reached.iter().sum::<f64>() / reached.len() as f64
        };
        let points = plan + spacing + size + shade + even + pace + goal;
        let letter = match points {
            p if p >= 90.0 => 'A',
            p if p >= 80.0 => 'B',
            p if p >= 70.0 => 'C',
            p if p >= 60.0 => 'D',
            _ => 'E',
        };
        let part = |name: &str, points: f64, out_of: f64, rule: String| GradePart {
            name: name.to_owned(),
            points,
            out_of,
            rule,
        };
        Self {
            points,
            letter,
            rubric: vec![
                part(plan_name, plan, plan_max, format!("{plan_max:.0} x share of placed dots within {ON_PLAN_MM} mm of a recommendation")),
                part(spacing_name, spacing, spacing_max, format!("{spacing_max:.0} minus 2 per minor, 5 per major, 10 per severe spacing violation")),
                part(size_name, size, size_max, format!("{size_max:.0} when the radii vary by at most {:.0}% (sd / mean), none from {:.0}%", 100.0 * SIZE_CV_FULL, 100.0 * SIZE_CV_NONE)),
                part(shade_name, shade, shade_max, format!("{shade_max:.0} when the darkness varies by at most {SHADE_SD_FULL} (sd, 0 skin to 1 black), none from {SHADE_SD_NONE}")),
                part(even_name, even, even_max, format!("{even_max:.0} when the distance to the nearest dot varies by at most {:.0}% (sd / mean), none from {:.0}%", 100.0 * SPACING_CV_FULL, 100.0 * SPACING_CV_NONE)),
                part(pace_name, pace, pace_max, format!("{pace_max:.0} at {lo:.0}-{hi:.0} dots a minute, in proportion below, less above (none at {:.0})", 2.0 * hi)),
                part(goal_name, goal, goal_max, format!("{goal_max:.0} x mean share of each zone's target density reached (at most 1 per zone)")),
            ],
        }
    }
}

/// A placed dot closer to another dot than the design allows.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// The frame on which it was placed.
    pub seq: u64,
    /// Seconds from the start of the recording.
    pub t_s: f64,
    /// Where, skin millimetres.
    pub in_skin_mm: [f64; 2],
    /// Distance to the nearest other dot, millimetres.
    pub nearest_dot_mm: f64,
    /// The minimum spacing of the design then, millimetres.
    pub min_spacing_mm: f64,
    /// How much closer than allowed, millimetres.
    pub short_by_mm: f64,
    /// How bad.
    pub severity: Severity,
    /// The picture around it, PNG (see [`violation_crop`]); empty when the frame could not be
    /// read or the dot was off it.
    #[serde(skip)]
    pub crop_png: Vec<u8>,
}

/// Side of a violation's crop on the skin (mm) and in the report (px).
pub const CROP_MM: f64 = 3.0;
/// See [`CROP_MM`].
pub const CROP_PX: u32 = 240;
/// Most violations given a crop (each decodes one frame).
pub const MAX_CROPS: usize = 60;

/// The recorded picture around a violation: [`CROP_MM`] of skin around the new dot, enlarged to
/// [`CROP_PX`], with a red ring at the minimum spacing around it (the neighbour inside it is the
/// violation) and a 1 mm scale bar in the lower left corner (white on black).
pub fn violation_crop(rec: &Recording, v: &Violation) -> Option<Vec<u8>> {
    let i = rec.frames.partition_point(|f| f.seq < v.seq);
    let f = rec.frames.get(i)?;
    let image = super::decode_jpeg(f.seq, &f.jpeg).ok()?;
    let crop = skin_crop(
        f,
        rec.lens().as_ref(),
        &image,
        v.in_skin_mm,
        v.min_spacing_mm,
        Rgb([230, 30, 30]),
    )?;
    png(&crop)
}

/// Whether frame `f` (of a recording with lens `lens`, [`Recording::lens`]) shows the whole
/// [`CROP_MM`] square of skin around `in_skin_mm`.
pub fn frame_shows(
    f: &super::RecordedFrame,
    lens: Option<&PlaneMap>,
    in_skin_mm: [f64; 2],
) -> bool {
    crop_square(f, lens, in_skin_mm).is_some()
}

/// The crop square around `in_skin_mm` in frame `f`: its corner and side in pixels, the point in
/// pixels and the frame's px/mm there; `None` when the frame was not registered or the square
/// leaves the picture.
fn crop_square(
    f: &super::RecordedFrame,
    lens: Option<&PlaneMap>,
    in_skin_mm: [f64; 2],
) -> Option<([f64; 2], f64, [f64; 2], f64)> {
    let t = FrameToSkin::of(f, lens)?;
    let d = f.detections.as_ref();
    let (w, h) = d.map_or((f64::INFINITY, f64::INFINITY), |d| {
        (f64::from(d.width), f64::from(d.height))
    });
    let ppm = t.px_per_mm_at(in_skin_mm);
    let c = t.image_of(in_skin_mm);
    let half = CROP_MM / 2.0 * ppm;
    let (x0, y0) = ((c[0] - half).round(), (c[1] - half).round());
    let side = (2.0 * half).round().max(1.0);
    (x0 >= 0.0 && y0 >= 0.0 && x0 + side <= w && y0 + side <= h).then_some(([x0, y0], side, c, ppm))
}

/// [`CROP_MM`] of skin around `in_skin_mm` as recorded in frame `f` (decoded as `image`; `lens`
/// the recording's, [`Recording::lens`]), enlarged to [`CROP_PX`], with a ring of `ring_mm`
/// radius around the point and a 1 mm scale bar in the lower left corner (white on black), both
/// at the frame's scale there; `None` when the frame was not registered or the square leaves
/// the picture.
pub fn skin_crop(
    f: &super::RecordedFrame,
    lens: Option<&PlaneMap>,
    image: &RgbImage,
    in_skin_mm: [f64; 2],
    ring_mm: f64,
    ring_colour: Rgb<u8>,
) -> Option<RgbImage> {
    let ([x0, y0], side, c, ppm) = crop_square(f, lens, in_skin_mm)?;
    if x0 + side > f64::from(image.width()) || y0 + side > f64::from(image.height()) {
        return None;
    }
    let crop =
        image::imageops::crop_imm(image, x0 as u32, y0 as u32, side as u32, side as u32).to_image();
    let mut big = image::imageops::resize(&crop, CROP_PX, CROP_PX, image::imageops::Triangle);
    let k = f64::from(CROP_PX) / side;
    let centre = (
        ((c[0] - x0) * k).round() as i32,
        ((c[1] - y0) * k).round() as i32,
    );
    let ring = (ring_mm * ppm * k).round() as i32;
    for r in [ring, ring + 1] {
        imageproc::drawing::draw_hollow_circle_mut(&mut big, centre, r, ring_colour);
    }
    let bar = (ppm * k).round() as u32;
    let y = CROP_PX - 14;
    imageproc::drawing::draw_filled_rect_mut(
        &mut big,
        imageproc::rect::Rect::at(8, y as i32 - 2).of_size(bar + 4, 8),
        Rgb([0, 0, 0]),
    );
    imageproc::drawing::draw_filled_rect_mut(
        &mut big,
        imageproc::rect::Rect::at(10, y as i32).of_size(bar, 4),
        Rgb([255, 255, 255]),
    );
    Some(big)
}

/// Density reached in one zone.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneReport {
    /// The zone ("whole view" without zones).
    pub name: String,
    /// Area of the zone that was in view, cm².
    pub area_cm2: f64,
    /// Dots (follicles and pigment) in it.
    pub dots: usize,
    /// Of them, pigment dots.
    pub pigment_dots: usize,
    /// Dots placed in it this session.
    pub placed: usize,
    /// Dots per cm² reached.
    pub density_per_cm2: f64,
    /// Dots per cm² asked for.
    pub target_per_cm2: f64,
    /// `density / target`.
    pub reached: f64,
    /// The density map, PNG (in the HTML report, not in JSON).
    #[serde(skip)]
    pub picture_png: Vec<u8>,
}

/// The training score of one session.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The recording.
    pub file: String,
    /// The artist or student (recording metadata; `serve --artist`).
    pub student: Option<String>,
    /// The client (recording metadata; `serve --client`).
    pub client: Option<String>,
    /// Date of the session, UTC, `YYYY-MM-DD`.
    pub date: String,
    /// Session number of the design (1-4), when recorded.
    pub session_number: Option<String>,
    /// The grade with its rubric.
    pub grade: Grade,
    /// How alike the placed dots are (size, shade, spacing).
    pub consistency: Consistency,
    /// The source it was recorded from.
    pub source: String,
    /// The model live perception used.
    pub model: String,
    /// From the first to the last frame, seconds.
    pub duration_s: f64,
    /// Frames in the recording.
    pub frames: usize,
    /// Whether the file was finished cleanly (else: cut short, reported up to where it got).
    pub finished: bool,
    /// Frames the recorder dropped (slow disk), from its last statistics.
    pub frames_dropped_by_recorder: u64,
    /// Dots placed.
    pub dots_placed: usize,
    /// Placed within [`ON_PLAN_MM`] of a standing recommendation.
    pub on_plan: usize,
    /// `on_plan / dots_placed` (0 without dots).
    pub on_plan_share: f64,
    /// Placed while no recommendation stood (before the first plan).
    pub without_plan: usize,
    /// Median distance from a placed dot to the nearest recommendation, millimetres.
    pub median_offset_mm: Option<f64>,
    /// Dots placed per minute.
    pub dots_per_minute: f64,
    /// Placed dots too close to another dot.
    pub spacing_violations: Vec<Violation>,
    /// Density per zone against target.
    pub zones: Vec<ZoneReport>,
    /// How each zone moved toward its target during the session, as the page showed it.
    pub progress: Vec<ZoneProgress>,
    /// The progress chart, PNG (in the HTML report, not in JSON).
    #[serde(skip)]
    pub progress_png: Vec<u8>,
    /// The design at the end of the session.
    pub design: Design,
}

impl Report {
    /// Scores a recording.
    pub fn from_recording(rec: &Recording) -> Self {
        let map = SkinMap::from_recording(rec, Some(SHADE_EVERY));
        Self::from_parts(rec, &map)
    }

    /// Scores a recording against an already rebuilt map.
    pub fn from_parts(rec: &Recording, map: &SkinMap) -> Self {
        let _span = tracing::debug_span!("report").entered();
        let t0 = rec.frames.first().map_or(0, |f| f.log_time_ns);
        let t_of = |seq: u64| {
            let i = rec.frames.partition_point(|f| f.seq < seq);
            rec.frames
                .get(i.min(rec.frames.len().saturating_sub(1)))
                .map_or(0.0, |f| f.log_time_ns.saturating_sub(t0) as f64 / 1e9)
        };
        let placed = &rec.placed;
        let on_plan = placed
            .iter()
            .filter(|p| p.nearest_rec_mm.is_some_and(|d| d <= ON_PLAN_MM))
            .count();
        let without_plan = placed.iter().filter(|p| p.nearest_rec_mm.is_none()).count();
        let mut offsets: Vec<f64> = placed.iter().filter_map(|p| p.nearest_rec_mm).collect();
        offsets.sort_by(f64::total_cmp);
        let spacing_violations: Vec<Violation> = placed
            .iter()
            .filter_map(|p| {
                let d = p.nearest_dot_mm?;
                (d < p.min_spacing_mm).then(|| Violation {
                    seq: p.seq,
                    t_s: t_of(p.seq),
                    in_skin_mm: p.in_skin_mm,
                    nearest_dot_mm: d,
                    min_spacing_mm: p.min_spacing_mm,
                    short_by_mm: p.min_spacing_mm - d,
                    severity: Severity::of(d, p.min_spacing_mm),
                    crop_png: Vec::new(),
                })
            })
            .collect();
        let duration_s = rec.duration_s();
        let design = rec
            .frames
            .last()
            .map_or_else(Design::default, |f| rec.design_at(f.seq));
        let zones = zone_reports(map, &design, placed);
        let dots_per_minute = if duration_s > 0.0 {
            placed.len() as f64 * 60.0 / duration_s
        } else {
            0.0
        };
        let consistency = Consistency::of(placed, map);
        let progress = zone_progress(rec);
        let progress_png = progress_chart(&progress, duration_s)
            .and_then(|img| png(&img))
            .unwrap_or_default();
        let mut spacing_violations = spacing_violations;
        for v in spacing_violations.iter_mut().take(MAX_CROPS) {
            v.crop_png = violation_crop(rec, v).unwrap_or_default();
        }
        let on_plan_share = if placed.is_empty() {
            0.0
        } else {
            on_plan as f64 / placed.len() as f64
        };
        Self {
            file: rec.path.display().to_string(),
            student: rec.session_field("artist"),
            client: rec.session_field("client"),
            date: rec.session_field("date").unwrap_or_else(|| rec.info.date()),
            session_number: rec.session_field("session_number"),
            grade: Grade::score(
                on_plan_share,
                &spacing_violations,
                &consistency,
                dots_per_minute,
                &zones,
            ),
            consistency,
            source: rec.info.source.clone(),
            model: rec.info.model.clone(),
            duration_s,
            frames: rec.frames.len(),
            finished: rec.finished,
            frames_dropped_by_recorder: rec.recorder.as_ref().map_or(0, |r| r.frames_dropped),
            dots_placed: placed.len(),
            on_plan,
            on_plan_share,
            without_plan,
            median_offset_mm: offsets.get(offsets.len() / 2).copied(),
            dots_per_minute,
            spacing_violations,
            zones,
            progress,
            progress_png,
            design,
        }
    }

    /// The report as JSON (pictures left out).
    ///
    /// # Errors
    /// Never in practice (plain numbers and strings).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The report as a self-contained HTML page (pictures embedded as PNG).
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let pct = |v: f64| format!("{:.0}%", 100.0 * v);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stipple session report</title>{CSS}</head><body>\
             <h1>Session report</h1><p class=\"sub\"><b>{}</b> on client <b>{}</b> · {} · session {} · {} · {} · {:.0} s, {} frames{}</p>",
            esc(self.student.as_deref().unwrap_or("student not recorded")),
            esc(self.client.as_deref().unwrap_or("not recorded")),
            esc(&self.date),
            esc(self.session_number.as_deref().unwrap_or("?")),
            esc(&self.file),
            esc(&self.source),
            self.duration_s,
            self.frames,
            if self.finished { "" } else { " · <b>file cut short: scored up to where it got</b>" }
        );
        let verdict = |ok: bool| if ok { "good" } else { "warn" };
        let _ = write!(
            h,
            "<div class=\"cards\">\
             <div class=\"card\"><b>{}</b><span>dots placed</span></div>\
             <div class=\"card {}\"><b>{}</b><span>within {} mm of a recommendation ({} of {})</span></div>\
             <div class=\"card {}\"><b>{}</b><span>spacing violations (closer than the minimum spacing: blowout risk)</span></div>\
             <div class=\"card\"><b>{:.1}</b><span>dots per minute</span></div>\
             </div>",
            self.dots_placed,
            verdict(self.on_plan_share >= 0.8),
            pct(self.on_plan_share),
            ON_PLAN_MM,
            self.on_plan,
            self.dots_placed,
            verdict(self.spacing_violations.is_empty()),
            self.spacing_violations.len(),
            self.dots_per_minute,
        );
        let _ = write!(
            h,
            "<p>Design at the end: session {}, target {:.0} dots/cm², minimum spacing {:.2} mm. \
             Median distance from a placed dot to the nearest recommendation: {}. \
             {} dots were placed before the first plan.{}</p>",
            self.design.session_or_default(),
            self.design.target_or_default(),
            self.design.spacing_or_default(),
            self.median_offset_mm
                .map_or("n/a".into(), |d| format!("{d:.2} mm")),
            self.without_plan,
            if self.frames_dropped_by_recorder > 0 {
                format!(
                    " The recorder dropped {} frames (slow disk); events were kept.",
                    self.frames_dropped_by_recorder
                )
            } else {
                String::new()
            }
        );
        let _ = write!(
            h,
            "<h2>Grade: {} ({:.0}/100)</h2><table><tr><th>part</th><th>points</th><th>rule</th></tr>",
            self.grade.letter, self.grade.points
        );
        for p in &self.grade.rubric {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.1} / {:.0}</td><td>{}</td></tr>",
                esc(&p.name),
                p.points,
                p.out_of,
                esc(&p.rule)
            );
        }
        h.push_str("</table><p>A from 90, B from 80, C from 70, D from 60.</p>");
        let measured = |v: Option<f64>, pct: bool| match v {
            Some(v) if pct => format!("{:.0}%", 100.0 * v),
            Some(v) => format!("{v:.3}"),
            None => "not measured (under 2 dots)".to_string(),
        };
        let _ = write!(
            h,
            "<h2>Consistency</h2><table><tr><th>what</th><th>spread</th></tr>\
             <tr><td>dot size (radius, sd / mean)</td><td>{}</td></tr>\
             <tr><td>dot shade (darkness, sd)</td><td>{}</td></tr>\
             <tr><td>distance to the nearest dot when placed (sd / mean)</td><td>{}</td></tr></table>",
            measured(self.consistency.size_cv, true),
            measured(self.consistency.shade_sd, false),
            measured(self.consistency.spacing_cv, true)
        );
        if !self.spacing_violations.is_empty() {
            h.push_str("<h2>Spacing violations</h2><table><tr><th>time</th><th>frame</th><th>where (skin mm)</th><th>nearest dot</th><th>minimum</th><th>short by</th><th>severity</th><th>picture (ring: minimum spacing; bar: 1 mm)</th></tr>");
            for v in &self.spacing_violations {
                let _ = write!(
                    h,
                    "<tr><td>{:.1} s</td><td>{}</td><td>{:.1}, {:.1}</td><td>{:.2} mm</td><td>{:.2} mm</td><td>{:.2} mm</td><td class=\"{}\">{:?}</td><td>{}</td></tr>",
                    v.t_s,
                    v.seq,
                    v.in_skin_mm[0],
                    v.in_skin_mm[1],
                    v.nearest_dot_mm,
                    v.min_spacing_mm,
                    v.short_by_mm,
                    if v.severity == Severity::Minor { "warn" } else { "bad" },
                    v.severity,
                    if v.crop_png.is_empty() {
                        "not in the recorded picture".to_string()
                    } else {
                        format!(
                            "<img class=\"crop\" alt=\"the skin around the violation at {:.1} s\" src=\"data:image/png;base64,{}\">",
                            v.t_s,
                            base64::engine::general_purpose::STANDARD.encode(&v.crop_png)
                        )
                    }
                );
            }
            h.push_str("</table>");
        }
        if !self.progress.is_empty() {
            h.push_str("<h2>Progress against the goal</h2>");
            if !self.progress_png.is_empty() {
                let _ = write!(
                    h,
                    "<figure><img alt=\"density over the session against each zone's target\" src=\"data:image/png;base64,{}\">\
                     <figcaption>Density in view per zone over the session (solid) against its target (dashed), as the page \
                     showed it; a tick where the plan had nothing left to place there (this session's goal reached); light grid lines every 20 dots/cm² and every minute.</figcaption></figure>",
                    base64::engine::general_purpose::STANDARD.encode(&self.progress_png)
                );
            }
            h.push_str("<table><tr><th>zone</th><th>density, start → end</th><th>target</th><th>next dots left, start → end</th><th>session goal</th></tr>");
            for z in &self.progress {
                let (Some(a), Some(b)) = (z.samples.first(), z.samples.last()) else {
                    continue;
                };
                let goal = z.goal_reached_at_s.map_or_else(
                    || format!("not reached ({} left)", b.dots_left),
                    |t| format!("reached at {}:{:02}", (t / 60.0) as u64, (t % 60.0) as u64),
                );
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{:.0} → {:.0}/cm²</td><td>{:.0}/cm²</td><td>{} → {}</td><td class=\"{}\">{}</td></tr>",
                    esc(&z.name),
                    a.density_per_cm2,
                    b.density_per_cm2,
                    z.target_per_cm2,
                    a.dots_left,
                    b.dots_left,
                    if z.goal_reached_at_s.is_some() { "" } else { "warn" },
                    goal
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>Density per zone</h2><table><tr><th>zone</th><th>area in view</th><th>dots</th><th>placed</th><th>density</th><th>target</th><th>reached</th></tr>");
        for z in &self.zones {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.2} cm²</td><td>{} ({} pigment)</td><td>{}</td><td>{:.0}/cm²</td><td>{:.0}/cm²</td>\
                 <td><div class=\"bar\"><div style=\"width:{:.0}%\" class=\"{}\"></div></div> {}</td></tr>",
                esc(&z.name),
                z.area_cm2,
                z.dots,
                z.pigment_dots,
                z.placed,
                z.density_per_cm2,
                z.target_per_cm2,
                (100.0 * z.reached).min(100.0),
                verdict(z.reached >= 0.9),
                pct(z.reached)
            );
        }
        h.push_str("</table>");
        for z in &self.zones {
            if z.picture_png.is_empty() {
                continue;
            }
            let _ = write!(
                h,
                "<figure><img alt=\"density map of {0}\" src=\"data:image/png;base64,{1}\">\
                 <figcaption>{0}: local density against target (red below, yellow near, green at target; grey not in view). \
                 Dark dots: pigment; light: follicles; cyan rings: placed this session; red rings: spacing violations.</figcaption></figure>",
                esc(&z.name),
                base64::engine::general_purpose::STANDARD.encode(&z.picture_png)
            );
        }
        let _ = write!(
            h,
            "<p class=\"sub\">How this is measured: a dot counts as placed when a new pigment dot appears on skin that was already in view; \
             on plan means within {ON_PLAN_MM} mm of a recommendation standing at that moment; densities count every dot (follicles and pigment) \
             of the skin map rebuilt from the recording, over the part of each zone that was in view. Model: {}.</p></body></html>",
            esc(&self.model)
        );
        h
    }
}

const CSS: &str = "<style>body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:0}.sub{color:#666}.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1.5em 0}\
.card{flex:1 1 180px;border:1px solid #ddd;border-radius:8px;padding:.8em 1em}.card b{display:block;font-size:2em}\
.card span{color:#555}.card.good{border-color:#3a3;background:#f3fbf3}.card.warn{border-color:#d80;background:#fff8ec}\
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #eee;padding:.35em .5em;text-align:left}\
.bar{display:inline-block;width:120px;height:10px;background:#eee;border-radius:5px;vertical-align:middle}\
.bar div{height:10px;border-radius:5px}.bar .good{background:#3a3}.bar .warn{background:#d80}td.bad{color:#c00;font-weight:bold}td.warn{color:#b60}\
figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd;image-rendering:pixelated}figcaption{color:#555;font-size:.9em}\
img.crop{width:120px;height:120px;image-rendering:auto}</style>";

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn zone_reports(map: &SkinMap, design: &Design, placed: &[PlacedDot]) -> Vec<ZoneReport> {
    /// A zone to score: name, polygon (none: everything seen), target.
    type ZoneSpec = (String, Option<Vec<[f64; 2]>>, f64);
    let mut zones: Vec<ZoneSpec> = design
        .zones
        .iter()
        .filter(|z| z.kind != ZoneKind::Nogo)
        .map(|z| {
            (
                z.name.clone(),
                Some(z.polygon.clone()),
                design.zone_target_per_cm2(z),
            )
        })
        .collect();
    if zones.is_empty() {
        zones.push(("whole view".into(), None, design.target_or_default()));
    }
    zones
        .into_iter()
        .map(|(name, poly, target)| {
            let inside = |p: [f64; 2]| {
                map.seen(p)
                    && poly
                        .as_deref()
                        .is_none_or(|z| polygon_contains(z, p[0], p[1]))
            };
            let dots: Vec<&MapDot> = map.dots.iter().filter(|d| inside(d.in_skin_mm)).collect();
            let area_cm2 = map.seen_area_cm2(poly.as_deref());
            let density = if area_cm2 > 0.0 {
                dots.len() as f64 / area_cm2
            } else {
                0.0
            };
            let picture_png = picture(map, poly.as_deref(), target, placed)
                .and_then(|img| png(&img))
                .unwrap_or_default();
            ZoneReport {
                area_cm2,
                pigment_dots: dots.iter().filter(|d| d.kind == DotKind::Pigment).count(),
                dots: dots.len(),
                placed: placed.iter().filter(|p| inside(p.in_skin_mm)).count(),
                density_per_cm2: density,
                target_per_cm2: target,
                reached: density / target.max(1e-9),
                name,
                picture_png,
            }
        })
        .collect()
}

/// Seconds between two points of a zone's progress.
pub const PROGRESS_EVERY_S: f64 = 1.0;

/// One point of a zone's progress.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProgressPoint {
    /// Seconds from the first frame.
    pub t_s: f64,
    /// Dots per cm² in view in the zone, as the plan counted them.
    pub density_per_cm2: f64,
    /// Recommendations left in the zone.
    pub dots_left: u64,
}

/// How one zone moved toward its target: the plan's own figures on the recorded frames (what
/// the page showed), one point every [`PROGRESS_EVERY_S`].
#[derive(Debug, Clone, Serialize)]
pub struct ZoneProgress {
    /// The zone ("view" without zones).
    pub name: String,
    /// Dots per cm² asked for (the last asked, when the design changed).
    pub target_per_cm2: f64,
    /// The points, in time order.
    pub samples: Vec<ProgressPoint>,
    /// When the plan first had nothing left to place in the zone (this session's goal
    /// reached), seconds from the first frame.
    pub goal_reached_at_s: Option<f64>,
}

/// Each zone's progress from the recorded plan snapshots, in the order zones first appear.
pub fn zone_progress(rec: &Recording) -> Vec<ZoneProgress> {
    let t0 = rec.frames.first().map_or(0, |f| f.log_time_ns);
    let mut out: Vec<ZoneProgress> = Vec::new();
    let mut next_t = 0.0;
    for f in &rec.frames {
        // Before the map holds a dot, the plan has counted nothing yet: no point.
        let Some(plan) = f.plan.as_ref().filter(|p| p.map_dots > 0) else {
            continue;
        };
        let t_s = f.log_time_ns.saturating_sub(t0) as f64 / 1e9;
        let sample = t_s >= next_t;
        if sample {
            next_t = t_s + PROGRESS_EVERY_S;
        }
        for z in &plan.zones {
            let k = match out.iter().position(|p| p.name == z.name) {
                Some(k) => k,
                None => {
                    out.push(ZoneProgress {
                        name: z.name.clone(),
                        target_per_cm2: z.target_per_cm2,
                        samples: Vec::new(),
                        goal_reached_at_s: None,
                    });
                    out.len() - 1
                }
            };
            let p = &mut out[k];
            p.target_per_cm2 = z.target_per_cm2;
            if z.goal_reached && p.goal_reached_at_s.is_none() {
                p.goal_reached_at_s = Some(t_s);
            }
            // A zone with nothing counted and nothing planned has no plan yet: no point.
            let planned = z.density_per_cm2 > 0.0 || z.dots_left > 0;
            if sample && planned && z.density_per_cm2.is_finite() {
                p.samples.push(ProgressPoint {
                    t_s,
                    density_per_cm2: z.density_per_cm2,
                    dots_left: z.dots_left,
                });
            }
        }
    }
    out
}

/// Width and height of the progress chart, px.
const CHART_SIZE: (u32, u32) = (720, 240);

/// The progress chart: density over time per zone (solid) against its target (dashed), a
/// vertical tick where its goal was reached; `None` without points.
fn progress_chart(progress: &[ZoneProgress], duration_s: f64) -> Option<RgbImage> {
    const COLOURS: [Rgb<u8>; 5] = [
        Rgb([0, 120, 220]),
        Rgb([220, 110, 0]),
        Rgb([0, 160, 80]),
        Rgb([170, 0, 170]),
        Rgb([120, 120, 0]),
    ];
    if progress.iter().all(|z| z.samples.is_empty()) {
        return None;
    }
    let (w, h) = CHART_SIZE;
    let (left, right, top, bottom) = (40.0, 10.0, 10.0, 24.0);
    let top_value = progress
        .iter()
        .flat_map(|z| {
            z.samples
                .iter()
                .map(|p| p.density_per_cm2)
                .chain([z.target_per_cm2])
        })
        .fold(1.0, f64::max)
        * 1.1;
    let span = duration_s.max(PROGRESS_EVERY_S);
    let x_of = |t: f64| (left + (t / span).clamp(0.0, 1.0) * (f64::from(w) - left - right)) as f32;
    let y_of = |v: f64| {
        (f64::from(h) - bottom - (v / top_value).clamp(0.0, 1.0) * (f64::from(h) - top - bottom))
            as f32
    };
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let axis = Rgb([90, 90, 90]);
    let (x0, y0) = (x_of(0.0), y_of(0.0));
    imageproc::drawing::draw_line_segment_mut(&mut img, (x0, y0), (x_of(span), y0), axis);
    imageproc::drawing::draw_line_segment_mut(&mut img, (x0, y0), (x0, y_of(top_value)), axis);
    // A light grid line every 20 dots/cm² and every minute.
    let grid = Rgb([225, 225, 225]);
    let mut v = 20.0;
    while v < top_value {
        imageproc::drawing::draw_line_segment_mut(
            &mut img,
            (x0 + 1.0, y_of(v)),
            (x_of(span), y_of(v)),
            grid,
        );
        v += 20.0;
    }
    let mut t = 60.0;
    while t < span {
        imageproc::drawing::draw_line_segment_mut(
            &mut img,
            (x_of(t), y0 - 1.0),
            (x_of(t), y_of(top_value)),
            grid,
        );
        t += 60.0;
    }
    for (i, z) in progress.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let yt = y_of(z.target_per_cm2);
        let mut x = x0;
        while x < x_of(span) {
            let x1 = (x + 6.0).min(x_of(span));
            imageproc::drawing::draw_line_segment_mut(&mut img, (x, yt), (x1, yt), colour);
            x += 10.0;
        }
        for pair in z.samples.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            for d in [0.0, 1.0] {
                imageproc::drawing::draw_line_segment_mut(
                    &mut img,
                    (x_of(a.t_s), y_of(a.density_per_cm2) + d),
                    (x_of(b.t_s), y_of(b.density_per_cm2) + d),
                    colour,
                );
            }
        }
        if let Some(t) = z.goal_reached_at_s {
            let x = x_of(t);
            imageproc::drawing::draw_line_segment_mut(
                &mut img,
                (x, y0 - 12.0),
                (x, y0 + 6.0),
                colour,
            );
            imageproc::drawing::draw_line_segment_mut(
                &mut img,
                (x + 1.0, y0 - 12.0),
                (x + 1.0, y0 + 6.0),
                colour,
            );
        }
    }
    Some(img)
}

/// Red (0) through yellow to green (at or above 1).
fn ratio_colour(r: f64) -> Rgb<u8> {
    let t = r.clamp(0.0, 1.0);
    let (red, green) = if t < 0.5 {
        (255.0, 2.0 * t * 255.0)
    } else {
        ((1.0 - t) * 2.0 * 255.0, 200.0)
    };
    Rgb([red as u8, green as u8, 60])
}

/// The density map of a zone (or of everything seen): local density against target as colour,
/// the dots on top.
fn picture(
    map: &SkinMap,
    poly: Option<&[[f64; 2]]>,
    target: f64,
    placed: &[PlacedDot],
) -> Option<RgbImage> {
    let [mut x0, mut y0, mut x1, mut y1] = map.seen_bbox()?;
    if let Some(p) = poly {
        let (px0, px1) = min_max(p.iter().map(|q| q[0]));
        let (py0, py1) = min_max(p.iter().map(|q| q[1]));
        (x0, y0, x1, y1) = (x0.max(px0), y0.max(py0), x1.min(px1), y1.min(py1));
    }
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let s = PICTURE_PX_PER_MM;
    let (w, h) = (((x1 - x0) * s).ceil() as u32, ((y1 - y0) * s).ceil() as u32);
    if w == 0 || h == 0 || w > 4000 || h > 4000 {
        return None;
    }
    let mut img = RgbImage::from_pixel(w, h, Rgb([200, 200, 200]));
    // Local density on a coarse grid (every 0.5 mm), drawn as blocks.
    let step = (0.5 * s).max(1.0) as u32;
    let area_cm2 = std::f64::consts::PI * DENSITY_RADIUS_MM * DENSITY_RADIUS_MM / 100.0;
    let mut by_cell: HashMap<(i64, i64), Vec<[f64; 2]>> = HashMap::new();
    for d in &map.dots {
        let c = (
            (d.in_skin_mm[0] / DENSITY_RADIUS_MM).floor() as i64,
            (d.in_skin_mm[1] / DENSITY_RADIUS_MM).floor() as i64,
        );
        by_cell.entry(c).or_default().push(d.in_skin_mm);
    }
    let mut by = 0;
    while by < h {
        let mut bx = 0;
        while bx < w {
            let c = [
                x0 + (f64::from(bx) + 0.5 * f64::from(step)) / s,
                y0 + (f64::from(by) + 0.5 * f64::from(step)) / s,
            ];
            if map.seen(c) && poly.is_none_or(|p| polygon_contains(p, c[0], c[1])) {
                let (gx, gy) = (
                    (c[0] / DENSITY_RADIUS_MM).floor() as i64,
                    (c[1] / DENSITY_RADIUS_MM).floor() as i64,
                );
                let mut n = 0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        n += by_cell.get(&(gx + dx, gy + dy)).map_or(0, |v| {
                            v.iter()
                                .filter(|q| (q[0] - c[0]).hypot(q[1] - c[1]) <= DENSITY_RADIUS_MM)
                                .count()
                        });
                    }
                }
                let colour = ratio_colour(n as f64 / area_cm2 / target.max(1e-9));
                for yy in by..(by + step).min(h) {
                    for xx in bx..(bx + step).min(w) {
                        img.put_pixel(xx, yy, colour);
                    }
                }
            }
            bx += step;
        }
        by += step;
    }
    let to_px = |q: [f64; 2]| (((q[0] - x0) * s) as i32, ((q[1] - y0) * s) as i32);
    for d in &map.dots {
        let r = ((d.radius_mm * s).round() as i32).max(1);
        let colour = match d.kind {
            DotKind::Pigment => Rgb([30, 30, 60]),
            DotKind::Follicle => Rgb([250, 250, 250]),
        };
        imageproc::drawing::draw_filled_circle_mut(&mut img, to_px(d.in_skin_mm), r, colour);
    }
    for p in placed {
        let bad = p.nearest_dot_mm.is_some_and(|d| d < p.min_spacing_mm);
        let colour = if bad {
            Rgb([230, 0, 0])
        } else {
            Rgb([0, 200, 230])
        };
        let r = ((p.radius_mm * s).round() as i32).max(1) + 3;
        imageproc::drawing::draw_hollow_circle_mut(&mut img, to_px(p.in_skin_mm), r, colour);
        if bad {
            imageproc::drawing::draw_hollow_circle_mut(
                &mut img,
                to_px(p.in_skin_mm),
                r + 1,
                colour,
            );
        }
    }
    if let Some(poly) = poly {
        for (i, a) in poly.iter().enumerate() {
            let b = poly[(i + 1) % poly.len()];
            let (pa, pb) = (to_px(*a), to_px(b));
            imageproc::drawing::draw_line_segment_mut(
                &mut img,
                (pa.0 as f32, pa.1 as f32),
                (pb.0 as f32, pb.1 as f32),
                Rgb([255, 176, 0]),
            );
        }
    }
    Some(img)
}

/// PNG bytes of an image.
pub fn png(img: &RgbImage) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .ok()?;
    Some(out)
}
