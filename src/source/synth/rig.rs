//! Rig-view hairs: at 12-28 px/mm a shaved hair is a dark tip (the cut shaft in its opening)
//! with a short stub and shadow along the direction it leans.

use super::noise;
use super::paint::{disc_alpha, over};
use super::scene::Unit;
use super::skin::Palette;
use super::texture::{seg_dist, Texture};

/// Darkness of a stub at its root, relative to the tip.
const STUB_DARKNESS: f64 = 0.7;
/// Half width of a stub at its root, relative to the tip radius.
const STUB_WIDTH: f64 = 0.75;
/// The shaft under the skin, seen through it as a faint blue-grey streak: length (mm), half
/// width relative to the tip, and darkness.
const SUBSURFACE: (f64, f64, f64) = (0.6, 1.1, 0.22);
/// Colour of hair seen through the epidermis.
const SUBSURFACE_TINT: [f32; 3] = [0.42, 0.45, 0.52];
/// Faint shadow ring around an opening: radius relative to the tip, and darkness.
const HALO: (f64, f64) = (2.4, 0.12);

/// Paints every unit's hairs into the texture.
pub(crate) fn paint_units(tex: &mut Texture, pal: &Palette, units: &[Unit]) {
    let texel = 1.0 / tex.px_per_mm;
    for u in units {
        for (k, h) in u.hairs.iter().enumerate() {
            // Which of the scene's hair colours this hair takes: fixed by where it grows.
            let pick = noise::mix64(u.x_mm.to_bits() ^ u.y_mm.to_bits().rotate_left(17) ^ k as u64)
                as f64
                / u64::MAX as f64;
            let hair = pal.hair_for(pick);
            let (x0, y0) = (u.x_mm + h.dx_mm, u.y_mm + h.dy_mm);
            let (ex, ey) = (
                x0 + h.angle_rad.cos() * h.length_mm,
                y0 + h.angle_rad.sin() * h.length_mm,
            );
            let r = h.radius_mm;
            let sub_len = SUBSURFACE.0 * (0.6 + 0.8 * h.length_mm);
            let (bx, by) = (
                x0 - h.angle_rad.cos() * sub_len,
                y0 - h.angle_rad.sin() * sub_len,
            );
            let reach = (h.length_mm.max(sub_len) + HALO.0 * r).max(r * 2.0) + 2.0 * texel;
            let dark = h.darkness;
            tex.for_each_in(x0 - reach, y0 - reach, x0 + reach, y0 + reach, |x, y, c| {
                let d = (x - x0).hypot(y - y0);
                // Halo: the opening's shadow.
                let halo = (-(d * d) / (2.0 * (HALO.0 * r * 0.5).powi(2))).exp();
                let k = (1.0 - HALO.1 * dark * halo) as f32;
                *c = [c[0] * k, c[1] * k, c[2] * k];
                // The shaft under the skin, toward the follicle.
                let (db, tb) = seg_dist(x, y, x0, y0, bx, by);
                let sw = r * SUBSURFACE.1;
                let a_sub = (-(db * db) / (2.0 * sw * sw)).exp() * (1.0 - tb) * SUBSURFACE.2 * dark;
                let tint = [
                    c[0] * SUBSURFACE_TINT[0] * 1.6,
                    c[1] * SUBSURFACE_TINT[1] * 1.6,
                    c[2] * SUBSURFACE_TINT[2] * 1.6,
                ];
                over(c, tint, a_sub);
                // Stub: a tapering capsule along the hair.
                let (ds, t) = seg_dist(x, y, x0, y0, ex, ey);
                let hw = r * STUB_WIDTH * (1.0 - 0.6 * t);
                let a_stub =
                    disc_alpha(ds, hw, 0.4 * hw, texel) * STUB_DARKNESS * (1.0 - t).powf(0.8);
                // Tip.
                let a_tip = disc_alpha(d, r, 0.3 * r, texel);
                over(c, hair, dark * a_tip.max(a_stub));
            });
        }
    }
}
