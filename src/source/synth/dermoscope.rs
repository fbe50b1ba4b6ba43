//! Dermoscope-view painting (trichoscopy at 20-70x, about 300 px/mm): the skin surface (honeycomb
//! pigment network on darker skin, fine vessels on fair skin, scale and flakes) and the hairs
//! (shafts leaving follicle openings at an angle, with a lengthwise specular highlight, a soft
//! shadow, and often a brownish peripilar halo around the opening).

use super::noise;
use super::paint::{disc_alpha, line_alpha, over, polyline};
use super::scene::Unit;
use super::skin::Palette;
use super::texture::{mix, smoothstep, Rgb, Texture};

/// Honeycomb cell size (mm).
const NETWORK_CELL_MM: (f64, f64) = (0.12, 0.2);
/// Half width of a vessel (mm).
const VESSEL_HALF_WIDTH_MM: (f64, f64) = (0.005, 0.012);
/// Radius of the peripilar halo around an opening (mm).
const HALO_RADIUS_MM: (f64, f64) = (0.1, 0.2);
/// Length over which a shaft emerges from the translucent skin (mm).
const EMERGE_MM: f64 = 0.08;
/// Length of the shaft seen under the skin behind the opening (mm), and its opacity.
const SUBSURFACE_MM: f64 = 0.22;
/// Opacity of the shaft seen under the skin.
const SUBSURFACE_ALPHA: f64 = 0.35;
/// Edge softening of a shaft per mm of its length, as a fraction of its radius (defocus).
const DEFOCUS_PER_MM: f64 = 0.25;
/// Share of openings with a whitish collar of scale around them.
const PERIFOLLICULAR_SCALE_P: f64 = 0.2;
/// Light colour of vellus hairs (blend toward skin by their darkness).
const VELLUS: Rgb = [0.62, 0.52, 0.44];

/// A hashed unit float from a seed and an index.
fn h01(seed: u64, k: u64) -> f64 {
    (noise::mix64(seed ^ noise::mix64(k)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Paints the skin surface details of the dermoscope view.
pub(crate) fn paint_surface(tex: &mut Texture, pal: &Palette, seed: u64, _units: &[Unit]) {
    let fitz = pal.fitzpatrick;
    if fitz >= 3 || h01(seed, 1) < 0.3 {
        let strength = 0.02 + 0.03 * (fitz as f64 - 2.5).max(0.0) + 0.04 * h01(seed, 2);
        paint_network(tex, pal, seed ^ 0x11, strength as f32);
    }
    if fitz <= 3 || h01(seed, 3) < 0.2 {
        let n_area = (tex.w as f64 / tex.px_per_mm) * (tex.h as f64 / tex.px_per_mm);
        let n = (n_area * (0.2 + 0.6 * h01(seed, 4))) as u64;
        for k in 0..n {
            paint_vessel(tex, seed ^ 0x22 ^ noise::mix64(k));
        }
    }
    if h01(seed, 5) < 0.55 {
        paint_flakes(tex, seed ^ 0x33, 0.2 + 0.5 * h01(seed, 6));
    }
}

/// A honeycomb pigment network: darker lines between jittered cells, lighter holes.
fn paint_network(tex: &mut Texture, pal: &Palette, seed: u64, strength: f32) {
    let cell = NETWORK_CELL_MM.0 + (NETWORK_CELL_MM.1 - NETWORK_CELL_MM.0) * h01(seed, 0);
    let line = 0.4 * cell;
    let brown = [pal.skin[0] * 0.7, pal.skin[1] * 0.55, pal.skin[2] * 0.48];
    let patch_mm = 0.8;
    for j in 0..tex.h {
        for i in 0..tex.w {
            let (x, y) = tex.mm_of(i, j);
            let (gx, gy) = ((x / cell).floor() as i64, (y / cell).floor() as i64);
            let (mut f1, mut f2) = (f64::MAX, f64::MAX);
            for oy in -1..=1 {
                for ox in -1..=1 {
                    let (cx, cy) = (gx + ox, gy + oy);
                    let hsh = noise::mix64(
                        seed ^ (cx as u64).wrapping_mul(0x9E37_79B9)
                            ^ (cy as u64).wrapping_mul(0xC2B2_AE35),
                    );
                    let jx = (hsh & 0xFFFF) as f64 / 65536.0;
                    let jy = ((hsh >> 16) & 0xFFFF) as f64 / 65536.0;
                    let d = ((cx as f64 + 0.15 + 0.7 * jx) * cell - x)
                        .hypot((cy as f64 + 0.15 + 0.7 * jy) * cell - y);
                    if d < f1 {
                        f2 = f1;
                        f1 = d;
                    } else if d < f2 {
                        f2 = d;
                    }
                }
            }
            let edge = 1.0 - smoothstep(0.0, line, f2 - f1);
            // The network is patchy, not everywhere.
            let patch = smoothstep(
                0.35,
                0.65,
                noise::value(seed ^ 7, x / patch_mm, y / patch_mm) as f64,
            );
            let a = (edge * patch) as f32 * strength * 2.5;
            let c = &mut tex.data[j * tex.w + i];
            *c = if a >= 0.0 {
                mix(*c, brown, a.min(1.0))
            } else {
                mix(*c, [1.0, 0.97, 0.93], (-a * 0.5).min(1.0))
            };
        }
    }
}

/// One fine red vessel: a thin wandering curve.
fn paint_vessel(tex: &mut Texture, seed: u64) {
    let texel = 1.0 / tex.px_per_mm;
    let w_mm = tex.w as f64 * texel;
    let h_mm = tex.h as f64 * texel;
    let mut x = tex.origin_mm[0] + h01(seed, 0) * w_mm;
    let mut y = tex.origin_mm[1] + h01(seed, 1) * h_mm;
    let hw =
        VESSEL_HALF_WIDTH_MM.0 + (VESSEL_HALF_WIDTH_MM.1 - VESSEL_HALF_WIDTH_MM.0) * h01(seed, 2);
    let len = 0.5 + 2.0 * h01(seed, 3);
    let mut a = std::f64::consts::TAU * h01(seed, 4);
    let alpha = 0.25 + 0.3 * h01(seed, 5);
    let red = [0.72, 0.25, 0.25];
    let steps = 40;
    let step = len / steps as f64;
    let mut points = vec![[x, y]];
    for k in 0..steps {
        a += (h01(seed, 10 + k) - 0.5) * 0.9;
        x += a.cos() * step;
        y += a.sin() * step;
        points.push([x, y]);
    }
    polyline(tex, &points, hw + 2.0 * texel, |_, _, d, _, c| {
        let la = line_alpha(d, hw, texel) * alpha;
        if la > 0.0 {
            let keep = *c;
            over(c, mix(keep, red, 0.6), la * 0.6);
        }
    });
}

/// White-yellow scale and flakes: soft irregular patches lying on the skin.
fn paint_flakes(tex: &mut Texture, seed: u64, amount: f64) {
    let texel = 1.0 / tex.px_per_mm;
    let area = (tex.w as f64 * texel) * (tex.h as f64 * texel);
    let n = (area * amount * 0.6) as u64;
    for k in 0..n {
        let x = tex.origin_mm[0] + h01(seed, 3 * k) * tex.w as f64 * texel;
        let y = tex.origin_mm[1] + h01(seed, 3 * k + 1) * tex.h as f64 * texel;
        let r = 0.05 + 0.3 * h01(seed, 3 * k + 2).powi(2);
        let s = noise::mix64(seed ^ k);
        let col = [0.95, 0.93, 0.86];
        tex.for_each_in(
            x - 1.5 * r,
            y - 1.5 * r,
            x + 1.5 * r,
            y + 1.5 * r,
            |px, py, c| {
                let d = (px - x).hypot(py - y) / r;
                let n = noise::fbm(s, px, py, r * 0.6, 3, 0.6) as f64;
                let a = 1.0 - smoothstep(0.5, 1.0, d + n * 0.9);
                if a > 0.0 {
                    over(c, col, 0.32 * a * (0.6 + 0.8 * n.abs()));
                }
            },
        );
    }
}

/// Paints every unit: the opening (with its peripilar halo) and the hair shafts.
pub(crate) fn paint_units(tex: &mut Texture, pal: &Palette, units: &[Unit]) {
    let texel = 1.0 / tex.px_per_mm;
    let halo_col = [pal.skin[0] * 0.72, pal.skin[1] * 0.58, pal.skin[2] * 0.52];
    for (k, u) in units.iter().enumerate() {
        let s = noise::mix64(k as u64 ^ (u.x_mm.to_bits() >> 7));
        let (ux, uy) = (u.x_mm, u.y_mm);
        // Opening and peripilar sign.
        if !u.miniaturised {
            let hr = HALO_RADIUS_MM.0 + (HALO_RADIUS_MM.1 - HALO_RADIUS_MM.0) * h01(s, 1);
            let strength = if h01(s, 2) < 0.6 {
                0.12 + 0.25 * h01(s, 3)
            } else {
                0.05
            };
            tex.for_each_in(
                ux - 2.0 * hr,
                uy - 2.0 * hr,
                ux + 2.0 * hr,
                uy + 2.0 * hr,
                |x, y, c| {
                    let d = (x - ux).hypot(y - uy);
                    let a = (-(d * d) / (2.0 * (hr * 0.6).powi(2))).exp();
                    over(c, halo_col, strength * a);
                },
            );
        }
        if !u.miniaturised && h01(s, 4) < PERIFOLLICULAR_SCALE_P {
            // Perifollicular scale: a whitish, broken collar around the opening.
            let ring = u.radius_mm() + 0.03 + 0.05 * h01(s, 5);
            let width = 0.02 + 0.03 * h01(s, 6);
            let reach = ring + 2.0 * width;
            tex.for_each_in(ux - reach, uy - reach, ux + reach, uy + reach, |x, y, c| {
                let d = (x - ux).hypot(y - uy);
                let a = (-((d - ring) / width).powi(2)).exp();
                let broken = smoothstep(0.35, 0.7, noise::value(s, x / 0.05, y / 0.05) as f64);
                over(c, [0.94, 0.92, 0.84], 0.5 * a * broken);
            });
        }
        let pit_r = u.radius_mm() * 0.9;
        tex.for_each_in(
            ux - 2.0 * pit_r,
            uy - 2.0 * pit_r,
            ux + 2.0 * pit_r,
            uy + 2.0 * pit_r,
            |x, y, c| {
                let d = (x - ux).hypot(y - uy);
                let a = disc_alpha(d, pit_r, 0.5 * pit_r, texel);
                let k = (1.0 - 0.25 * a) as f32;
                *c = [c[0] * k, c[1] * k * 0.97, c[2] * k * 0.97];
            },
        );
        for (hi, h) in u.hairs.iter().enumerate() {
            paint_shaft(tex, pal, u, h, noise::mix64(s ^ hi as u64));
        }
    }
}

/// Colour of a hair shaft over `under` at lateral position `s` (`-1..1` across the shaft): light
/// passes a chord `sqrt(1 - s^2)` through a cylinder of opacity `opacity` per radius, so brown
/// hair has translucent edges and black hair is opaque, plus a lengthwise specular line.
#[inline]
pub(crate) fn shaft_colour(
    under: Rgb,
    hair: Rgb,
    s: f64,
    opacity: f64,
    spec: f32,
    hl_at: f64,
) -> Rgb {
    let chord = (1.0 - s * s).max(0.0).sqrt();
    let a = (1.0 - (-opacity * (0.25 + chord)).exp()) as f32;
    let mut c = mix(under, hair, a);
    let hl = spec * (-((s - hl_at) / 0.2).powi(2)).exp() as f32
        + 0.3 * spec * (-((s + 0.55) / 0.15).powi(2)).exp() as f32;
    c[0] += hl;
    c[1] += hl;
    c[2] += hl * 1.04;
    c
}

/// One hair shaft, slightly bent: soft shadow, then the shaft with translucent edges and a
/// lengthwise highlight, fading in where it leaves the skin and cut flat at its end.
fn paint_shaft(tex: &mut Texture, pal: &Palette, u: &Unit, h: &super::scene::Hair, seed: u64) {
    let texel = 1.0 / tex.px_per_mm;
    let (x0, y0) = (u.x_mm + h.dx_mm, u.y_mm + h.dy_mm);
    let (dx, dy) = (h.angle_rad.cos(), h.angle_rad.sin());
    let len = h.length_mm.max(1e-6);
    let (x1, y1) = (x0 + dx * len, y0 + dy * len);
    let r = h.radius_mm;
    let bend = len * (h01(seed, 7) - 0.5) * 0.16;
    let tone = h01(seed, 8);
    let (hair, opacity) = if u.miniaturised {
        (mix(pal.skin, VELLUS, (h.darkness * 1.6) as f32), 0.8)
    } else {
        // Some hairs are browner and more translucent than others.
        let brown = [
            pal.hair[0] * 1.9 + 0.08,
            pal.hair[1] * 1.6 + 0.04,
            pal.hair[2] * 1.3 + 0.02,
        ];
        (mix(pal.hair, brown, (tone * 0.6) as f32), 4.5 - 2.5 * tone)
    };
    let spec = if u.miniaturised {
        0.06
    } else {
        0.16 + 0.26 * h01(seed, 1) as f32
    };
    let hl_at = -0.3 + 0.25 * h01(seed, 2);
    let reach = 3.0 * r + bend.abs() + SUBSURFACE_MM + 2.0 * texel;
    let (lx, ly) = (x0.min(x1) - reach, y0.min(y1) - reach);
    let (hx, hy) = (x0.max(x1) + reach, y0.max(y1) + reach);
    let darkness = h.darkness.max(0.6);
    let emerge = EMERGE_MM.min(0.4 * len);
    let taper_to = 0.85 + 0.15 * h01(seed, 9);
    tex.for_each_in(lx, ly, hx, hy, |x, y, c| {
        let (rx, ry) = (x - x0, y - y0);
        let along = rx * dx + ry * dy;
        let t = (along / len).clamp(0.0, 1.0);
        let lateral = (-rx * dy + ry * dx) - bend * 4.0 * t * (1.0 - t);
        let beyond = if along < 0.0 {
            -along
        } else if along > len {
            along - len
        } else {
            0.0
        };
        // Shadow beside the shaft.
        let sl = lateral - 0.9 * r;
        let sd = sl.hypot(beyond);
        let sh = (-(sd * sd) / (2.0 * (1.2 * r).powi(2))).exp() * 0.16 * darkness;
        let k = (1.0 - sh) as f32;
        *c = [c[0] * k, c[1] * k, c[2] * k];
        let rr = r * (1.0 - (1.0 - taper_to) * t);
        if along < 0.0 {
            // The shaft under the skin toward the bulb, seen dimly through the epidermis.
            let depth = -along / SUBSURFACE_MM;
            if depth < 1.0 {
                let w = rr * (1.0 + 0.8 * depth);
                let a = (-(lateral * lateral) / (2.0 * (0.7 * w).powi(2))).exp()
                    * (1.0 - depth).powi(2);
                over(c, mix(*c, hair, 0.6), a * SUBSURFACE_ALPHA * darkness);
            }
            return;
        }
        // The shaft rises off the skin, out of the dermoscope's shallow focus: softer edges
        // toward its end.
        let soft = texel + (DEFOCUS_PER_MM * along).min(0.8) * r;
        if lateral.abs() > rr + soft || along > len + soft {
            return;
        }
        let s = (lateral / rr).clamp(-1.0, 1.0);
        let edge = 1.0 - smoothstep(rr - soft, rr + soft, lateral.abs());
        let drift = 1.0 + 0.3 * (noise::value(seed, along / 0.35, 0.5) - 0.5);
        let hair_c = [hair[0] * drift, hair[1] * drift, hair[2] * drift];
        let flicker = 0.6 + 0.8 * noise::value(seed ^ 5, along / 0.12, 0.0);
        let col = shaft_colour(*c, hair_c, s, opacity, spec * flicker, hl_at);
        let fade_in = 0.6 + 0.4 * smoothstep(0.0, emerge, along);
        let cut = 1.0 - smoothstep(len - 0.5 * soft, len + 0.5 * soft, along);
        over(c, col, edge * fade_in * cut * darkness);
    });
}
