//! Painting of the features both views share into the albedo texture: healed pigment dots and
//! the negatives (scars, moles, yellow dots, loose strands).
//!
//! Every primitive is anti-aliased by coverage: a feature thinner than a texel is drawn wider and
//! proportionally fainter, so tiny hairs stay visible without aliasing.

use super::noise;
use super::scene::{Negative, Pigment};
use super::skin::Palette;
use super::texture::{mix, seg_dist, smoothstep, Rgb, Texture};
use super::truth::{NegativeKind, Shape, View};

/// Relative wobble of a pigment dot's outline.
const PIGMENT_OUTLINE_WOBBLE: f64 = 0.12;
/// Soft edge of a healed pigment dot, as a fraction of its radius.
const PIGMENT_EDGE: f64 = 0.28;

/// Alpha of a soft disc of radius `r` at distance `d`, with `texel` the texel size (same units):
/// discs smaller than a texel are widened and faded to keep their total ink.
#[inline]
pub(crate) fn disc_alpha(d: f64, r: f64, edge: f64, texel: f64) -> f64 {
    let r_eff = r.max(0.7 * texel);
    let fade = (r / r_eff).powi(2);
    let e = edge.max(0.5 * texel);
    fade * (1.0 - smoothstep(r_eff - e, r_eff + e, d))
}

/// Alpha of a line of half width `hw` at distance `d` (same anti-aliasing as [`disc_alpha`]).
#[inline]
pub(crate) fn line_alpha(d: f64, hw: f64, texel: f64) -> f64 {
    let hw_eff = hw.max(0.6 * texel);
    let fade = hw / hw_eff;
    fade * (1.0 - smoothstep(hw_eff - 0.5 * texel, hw_eff + 0.5 * texel, d))
}

/// Blends `c` toward `col` by `a`.
#[inline]
pub(crate) fn over(c: &mut Rgb, col: Rgb, a: f64) {
    *c = mix(*c, col, a.clamp(0.0, 1.0) as f32);
}

/// Calls `f(x, y, distance, signed_lateral, texel)` for every texel within `reach` of a polyline,
/// once per texel, from the segment nearest to it (ties go to the first), so joints blend
/// seamlessly. `signed_lateral` is the offset across the line, positive to its left.
pub(crate) fn polyline(
    tex: &mut Texture,
    points: &[[f64; 2]],
    reach: f64,
    mut f: impl FnMut(f64, f64, f64, f64, &mut Rgb),
) {
    for (si, seg) in points.windows(2).enumerate() {
        let (ax, ay, bx, by) = (seg[0][0], seg[0][1], seg[1][0], seg[1][1]);
        let (lx, ly) = (ax.min(bx) - reach, ay.min(by) - reach);
        let (hx, hy) = (ax.max(bx) + reach, ay.max(by) + reach);
        tex.for_each_in(lx, ly, hx, hy, |x, y, c| {
            let (d, _) = seg_dist(x, y, ax, ay, bx, by);
            if d > reach {
                return;
            }
            for (sj, other) in points.windows(2).enumerate() {
                if sj == si {
                    continue;
                }
                let (od, _) = seg_dist(x, y, other[0][0], other[0][1], other[1][0], other[1][1]);
                if od < d || (od == d && sj < si) {
                    return;
                }
            }
            let (dx, dy) = (bx - ax, by - ay);
            let len = dx.hypot(dy).max(1e-12);
            let lateral = ((x - ax) * -dy + (y - ay) * dx) / len;
            let signed = if lateral >= 0.0 { d } else { -d };
            f(x, y, d, signed, c);
        });
    }
}

/// Paints one healed pigment dot: soft, slightly irregular, grey to black (blue-grey on fair
/// skin). `blur_mm` widens the edge to match a texture that was already defocused.
pub(crate) fn pigment(tex: &mut Texture, pal: &Palette, dot: &Pigment, blur_mm: f64) {
    let texel = 1.0 / tex.px_per_mm;
    let r = dot.radius_mm;
    let edge = (PIGMENT_EDGE * r).hypot(blur_mm);
    let reach = r * (1.0 + PIGMENT_OUTLINE_WOBBLE) + 2.0 * edge + texel;
    let (x0, y0) = (dot.x_mm, dot.y_mm);
    let ph: [f64; 3] = [
        (dot.seed & 0xFF) as f64 / 40.0,
        ((dot.seed >> 8) & 0xFF) as f64 / 40.0,
        ((dot.seed >> 16) & 0xFF) as f64 / 40.0,
    ];
    let ink = pal.ink;
    let shade = dot.shade;
    let seed = dot.seed;
    tex.for_each_in(x0 - reach, y0 - reach, x0 + reach, y0 + reach, |x, y, c| {
        let (dx, dy) = (x - x0, y - y0);
        let th = dy.atan2(dx);
        let wob = 1.0
            + PIGMENT_OUTLINE_WOBBLE
                * (0.5 * (2.0 * th + ph[0]).sin()
                    + 0.3 * (3.0 * th + ph[1]).sin()
                    + 0.2 * (5.0 * th + ph[2]).sin());
        let d = dx.hypot(dy);
        let a = disc_alpha(d, r * wob, edge, texel);
        if a <= 0.0 {
            return;
        }
        let grain = 1.0 + 0.18 * (noise::value(seed, x / (0.3 * r), y / (0.3 * r)) as f64 - 0.5);
        over(c, ink, shade * a * grain);
    });
}

/// Paints the negatives that lie in the skin (under hairs): scars, moles and yellow dots.
pub(crate) fn negative_under(tex: &mut Texture, pal: &Palette, neg: &Negative) {
    let texel = 1.0 / tex.px_per_mm;
    let skin = pal.skin;
    let seed = neg.seed;
    match (neg.kind, &neg.shape) {
        (NegativeKind::FueScar, Shape::Circle { x, y, r }) => {
            let (x0, y0, r) = (*x, *y, *r);
            let pale = [
                (skin[0] * 1.12 + 0.07).min(1.0),
                (skin[1] * 1.14 + 0.09).min(1.0),
                (skin[2] * 1.15 + 0.1).min(1.0),
            ];
            let shine_at = (x0 - 0.3 * r, y0 - 0.3 * r);
            let reach = 1.4 * r + texel;
            tex.for_each_in(x0 - reach, y0 - reach, x0 + reach, y0 + reach, |x, y, c| {
                let d = (x - x0).hypot(y - y0);
                let wob =
                    1.0 + 0.1 * (noise::value(seed, x / (0.5 * r), y / (0.5 * r)) as f64 - 0.5);
                let a = disc_alpha(d * wob, r, 0.3 * r, texel);
                over(c, pale, 0.8 * a);
                let s =
                    (-((x - shine_at.0).powi(2) + (y - shine_at.1).powi(2)) / (0.12 * r * r)).exp();
                over(c, [1.0, 1.0, 1.0], 0.18 * s * a);
            });
        }
        (NegativeKind::StripScar, Shape::Band { points, half_width }) => {
            let hw = *half_width;
            let pale = [
                (skin[0] * 1.1 + 0.08).min(1.0),
                (skin[1] * 1.1 + 0.07).min(1.0),
                (skin[2] * 1.12 + 0.08).min(1.0),
            ];
            polyline(tex, points, 1.3 * hw, |x, y, d, _, c| {
                // Width and edge wander along the scar; its surface is smooth but streaked.
                // Stays inside the truth band: the faded edge ends by 1.08 half widths.
                let wob =
                    (0.75 + 0.45 * (noise::fbm(seed, x, y, 4.0, 3, 0.5) as f64)).clamp(0.5, 0.9);
                let a = 1.0 - smoothstep(0.45 * hw * wob, 1.2 * hw * wob, d);
                let streak = 1.0 + 0.05 * (noise::value(seed ^ 9, x / 0.8, y / 0.08) - 0.5);
                let col = [pale[0] * streak, pale[1] * streak, pale[2] * streak];
                over(c, col, 0.85 * a);
            });
        }
        (NegativeKind::Mole, Shape::Circle { x, y, r }) => {
            let (x0, y0, r) = (*x, *y, *r);
            let depth = 0.35 + 0.25 * ((seed & 0xFF) as f32 / 255.0);
            let brown = [
                skin[0] * (0.62 - depth * 0.3),
                skin[1] * (0.48 - depth * 0.3),
                skin[2] * (0.42 - depth * 0.3),
            ];
            let reach = 1.5 * r + texel;
            tex.for_each_in(x0 - reach, y0 - reach, x0 + reach, y0 + reach, |x, y, c| {
                let d = (x - x0).hypot(y - y0);
                let wob =
                    1.0 + 0.16 * (noise::value(seed, x / (0.6 * r), y / (0.6 * r)) as f64 - 0.5);
                let a = 1.0 - smoothstep(0.35 * r, 1.05 * r, d * wob);
                let mottle =
                    1.0 + 0.15 * (noise::value(seed ^ 3, x / (0.25 * r), y / (0.25 * r)) - 0.5);
                over(
                    c,
                    [brown[0] * mottle, brown[1] * mottle, brown[2] * mottle],
                    0.9 * a,
                );
            });
        }
        (NegativeKind::YellowDot, Shape::Circle { x, y, r }) => {
            let (x0, y0, r) = (*x, *y, *r);
            let yellow = [0.86, 0.72, 0.42];
            let reach = 1.3 * r + texel;
            tex.for_each_in(x0 - reach, y0 - reach, x0 + reach, y0 + reach, |x, y, c| {
                let d = (x - x0).hypot(y - y0);
                let a = 1.0 - smoothstep(0.4 * r, 1.1 * r, d);
                over(c, yellow, 0.55 * a);
                // A faint darker keratin plug in the middle.
                let core = (-(d * d) / (0.08 * r * r)).exp();
                over(c, [0.62, 0.5, 0.3], 0.3 * core);
            });
        }
        _ => {}
    }
}

/// Paints the negatives that lie on top of everything: loose hair strands across the skin.
pub(crate) fn negative_over(tex: &mut Texture, pal: &Palette, neg: &Negative, view: View) {
    let (NegativeKind::Strand, Shape::Band { points, half_width }) = (neg.kind, &neg.shape) else {
        return;
    };
    let texel = 1.0 / tex.px_per_mm;
    let hw = *half_width;
    let hair = pal.hair;
    let spec = match view {
        View::Rig => 0.1,
        View::Dermoscope => 0.18,
    };
    // Soft shadow first (the strand lies a little above the skin), then the strand.
    let shadow: Vec<[f64; 2]> = points
        .iter()
        .map(|p| [p[0] + 0.3 * hw, p[1] + 0.5 * hw])
        .collect();
    polyline(tex, &shadow, 5.0 * hw + 2.0 * texel, |_, _, d, _, c| {
        let a = (-(d * d) / (2.0 * (2.2 * hw).powi(2))).exp();
        let k = (1.0 - 0.1 * a) as f32;
        *c = [c[0] * k, c[1] * k, c[2] * k];
    });
    polyline(tex, points, hw + 2.0 * texel, |_, _, d, signed, c| {
        let a = line_alpha(d, hw, texel);
        if a <= 0.0 {
            return;
        }
        let col = super::dermoscope::shaft_colour(
            *c,
            hair,
            (signed / hw).clamp(-1.0, 1.0),
            4.0,
            spec,
            -0.3,
        );
        over(c, col, 0.95 * a);
    });
}
