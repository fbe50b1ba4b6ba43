//! Draws a plan over its frame: zones as outlines, existing dots as rings (follicles green,
//! pigment blue, suspected undetected spots orange), recommendations as filled discs coloured
//! along the working path (yellow first, through red, to magenta last), joined by a thin path
//! line, with every [`OverlayStyle::label_every`]-th order number written beside its dot.
//! Where the planner declined to plan (not skin, too coarse a scale) is shaded and hatched
//! ([`shade_declined_mut`]).

use crate::calib::PlaneMap;
use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_circle_mut, draw_hollow_circle_mut, draw_hollow_polygon_mut, draw_line_segment_mut,
};
use imageproc::point::Point;

use crate::planning::{Plan, ZoneKind};

/// What an existing dot is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayKind {
    /// A natural follicle.
    Follicle,
    /// Earlier pigment.
    Pigment,
    /// A dark spot the detector did not report.
    Suspected,
}

/// An existing dot in pixels of the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayDot {
    /// Centre x (px).
    pub x: f64,
    /// Centre y (px).
    pub y: f64,
    /// Radius (px).
    pub radius: f64,
    /// Its kind.
    pub kind: OverlayKind,
}

/// A zone outline in pixels of the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayZone {
    /// The zone's kind, for its colour.
    pub kind: ZoneKind,
    /// Polygon vertices (px).
    pub polygon: Vec<[f64; 2]>,
}

/// How the overlay looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayStyle {
    /// Write the order number of every n-th recommendation (0: none).
    pub label_every: u32,
    /// Draw the working path between consecutive recommendations.
    pub path: bool,
    /// Smallest drawn radius of a recommendation (px), so small dots stay visible.
    pub min_radius_px: f64,
}

impl Default for OverlayStyle {
    fn default() -> Self {
        Self {
            label_every: 100,
            path: true,
            min_radius_px: 2.0,
        }
    }
}

/// Draws onto a copy of `frame`; see [`draw_plan_mut`].
pub fn draw_plan(
    frame: &RgbImage,
    plane: impl Into<PlaneMap>,
    existing: &[OverlayDot],
    zones: &[OverlayZone],
    plan: &Plan,
    style: &OverlayStyle,
) -> RgbImage {
    let mut out = frame.clone();
    draw_plan_mut(&mut out, plane, existing, zones, plan, style);
    out
}

/// Draws zones, existing dots, the working path and the recommendations onto `canvas`: the
/// plan's millimetres through `plane` (a scale in px/mm, or a calibration's lens), the dots
/// and zones as given, in pixels.
pub fn draw_plan_mut(
    canvas: &mut RgbImage,
    plane: impl Into<PlaneMap>,
    existing: &[OverlayDot],
    zones: &[OverlayZone],
    plan: &Plan,
    style: &OverlayStyle,
) {
    let plane: PlaneMap = plane.into();
    let px_per_mm = plane.px_per_mm();
    let at = |x_mm: f64, y_mm: f64| {
        let (x, y) = plane.to_px(x_mm, y_mm);
        (x as f32, y as f32)
    };
    for z in zones {
        if z.polygon.len() < 3 {
            continue;
        }
        let colour = match z.kind {
            ZoneKind::Hairline => Rgb([255, 200, 0]),
            ZoneKind::Fill => Rgb([0, 200, 255]),
            ZoneKind::Scar => Rgb([255, 255, 255]),
            ZoneKind::Nogo => Rgb([255, 0, 0]),
        };
        let poly: Vec<Point<f32>> = z
            .polygon
            .iter()
            .map(|p| Point::new(p[0] as f32, p[1] as f32))
            .collect();
        draw_hollow_polygon_mut(canvas, &poly, colour);
    }
    for d in existing {
        let c = (d.x.round() as i32, d.y.round() as i32);
        let r = d.radius.round().max(2.0) as i32;
        match d.kind {
            OverlayKind::Follicle => draw_hollow_circle_mut(canvas, c, r + 1, Rgb([0, 230, 0])),
            OverlayKind::Pigment => draw_hollow_circle_mut(canvas, c, r + 1, Rgb([40, 120, 255])),
            OverlayKind::Suspected => {
                draw_hollow_circle_mut(canvas, c, r + 1, Rgb([255, 140, 0]));
            }
        }
    }
    let n = plan.recommendations.len().max(1) as f64;
    let colour_at = |k: usize| -> Rgb<u8> {
        let t = k as f64 / n;
        if t < 0.5 {
            Rgb([255, (230.0 * (1.0 - 2.0 * t)) as u8, 0])
        } else {
            Rgb([255, 0, (255.0 * (2.0 * t - 1.0)) as u8])
        }
    };
    if style.path {
        for (k, w) in plan.recommendations.windows(2).enumerate() {
            let a = at(w[0].x_mm, w[0].y_mm);
            let b = at(w[1].x_mm, w[1].y_mm);
            let Rgb([r, g, bl]) = colour_at(k);
            draw_line_segment_mut(canvas, a, b, Rgb([r / 2, g / 2, bl / 2]));
        }
    }
    for (k, rec) in plan.recommendations.iter().enumerate() {
        let c = (
            at(rec.x_mm, rec.y_mm).0.round() as i32,
            at(rec.x_mm, rec.y_mm).1.round() as i32,
        );
        let r = (rec.radius_mm * px_per_mm).max(style.min_radius_px).round() as i32;
        draw_filled_circle_mut(canvas, c, r, colour_at(k));
        if style.label_every > 0 && (rec.order == 1 || rec.order % style.label_every == 0) {
            draw_number_mut(
                canvas,
                c.0 + r + 2,
                c.1 - 3,
                rec.order,
                Rgb([255, 255, 255]),
            );
        }
    }
}

/// 3x5 pixel digits, one row per `u8` (three low bits, left to right).
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// Writes a number at `(x, y)` (top-left) in a 3x5 pixel font scaled by 2, with a dark outline.
pub fn draw_number_mut(canvas: &mut RgbImage, x: i32, y: i32, value: u32, colour: Rgb<u8>) {
    let text = value.to_string();
    let scale = 2;
    let (w, h) = (canvas.width() as i32, canvas.height() as i32);
    let mut put = |px: i32, py: i32, c: Rgb<u8>| {
        if px >= 0 && py >= 0 && px < w && py < h {
            canvas.put_pixel(px as u32, py as u32, c);
        }
    };
    for pass in 0..2 {
        for (i, ch) in text.bytes().enumerate() {
            let glyph = DIGITS[usize::from(ch - b'0')];
            let ox = x + i as i32 * 4 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) == 0 {
                        continue;
                    }
                    for sy in 0..scale {
                        for sx in 0..scale {
                            let px = ox + col * scale + sx;
                            let py = y + row as i32 * scale + sy;
                            if pass == 0 {
                                for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                                    put(px + dx, py + dy, Rgb([0, 0, 0]));
                                }
                            } else {
                                put(px, py, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Shades each polygon (pixels of the canvas, even-odd rule) where the planner declined to
/// plan: the picture dimmed to 40% and grey, magenta diagonal hatching every 10 px, and a
/// magenta outline, so that a person sees at once where no dot is recommended and that it was
/// on purpose. Polygons with fewer than 3 points are skipped.
pub fn shade_declined_mut(canvas: &mut RgbImage, polygons: &[Vec<[f64; 2]>]) {
    const HATCH: Rgb<u8> = Rgb([230, 60, 230]);
    let (w, h) = canvas.dimensions();
    for poly in polygons.iter().filter(|p| p.len() >= 3) {
        let (y0, y1) = poly
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p[1]), hi.max(p[1]))
            });
        let first = y0.floor().max(0.0) as u32;
        let last = (y1.ceil().max(0.0) as u32).min(h);
        let mut xs: Vec<f64> = Vec::new();
        for y in first..last {
            // Crossings of the row through the pixel centres (half-open in y: no double count
            // at a shared vertex).
            let yc = f64::from(y) + 0.5;
            xs.clear();
            for (i, a) in poly.iter().enumerate() {
                let b = poly[(i + 1) % poly.len()];
                if (a[1] <= yc) != (b[1] <= yc) {
                    xs.push(a[0] + (yc - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
                }
            }
            xs.sort_by(f64::total_cmp);
            for span in xs.chunks_exact(2) {
                let from = (span[0] - 0.5).ceil().max(0.0) as u32;
                let to = ((span[1] - 0.5).floor() + 1.0).clamp(0.0, f64::from(w)) as u32;
                for x in from..to {
                    let p = canvas.get_pixel_mut(x, y);
                    if (x + y) % 10 < 2 {
                        *p = HATCH;
                    } else {
                        let grey = (u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3;
                        let v = (grey * 2 / 5) as u8;
                        *p = Rgb([v, v, v]);
                    }
                }
            }
        }
        let outline: Vec<Point<f32>> = poly
            .iter()
            .map(|p| Point::new(p[0] as f32, p[1] as f32))
            .collect();
        if outline.first() != outline.last() {
            draw_hollow_polygon_mut(canvas, &outline, HATCH);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::{RecRole, RecStatus, Recommendation};

    #[test]
    fn draws_existing_and_recommendations() {
        let frame = RgbImage::from_pixel(100, 60, Rgb([200, 170, 150]));
        let rec = |order: u32, x: f64| Recommendation {
            id: order,
            x_mm: x,
            y_mm: 3.0,
            radius_mm: 0.2,
            shade: 0.7,
            order,
            zone: "fill".into(),
            role: RecRole::Fill,
            status: RecStatus::Pending,
        };
        let plan = Plan {
            recommendations: vec![rec(1, 2.0), rec(2, 6.0)],
            density_before_per_cm2: 0.0,
            density_after_per_cm2: 0.0,
            skin_area_mm2: 0.0,
            note: String::new(),
        };
        let existing = [OverlayDot {
            x: 50.0,
            y: 50.0,
            radius: 3.0,
            kind: OverlayKind::Follicle,
        }];
        let out = draw_plan(
            &frame,
            10.0,
            &existing,
            &[],
            &plan,
            &OverlayStyle::default(),
        );
        assert_eq!(out.get_pixel(20, 30), &Rgb([255, 230, 0]));
        assert_eq!(out.get_pixel(60, 30)[0], 255);
        assert_eq!(out.get_pixel(54, 50), &Rgb([0, 230, 0]));
        assert_eq!(out.get_pixel(5, 5), &Rgb([200, 170, 150]));
    }
}
