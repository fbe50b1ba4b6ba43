//! Dermoscope-view painting (trichoscopy at 20-70x, about 300 px/mm): the skin surface (honeycomb
//! pigment network on darker skin, fine vessels on fair skin, scale and flakes) and the hairs
//! (shafts leaving follicle openings at an angle, with a lengthwise specular highlight, a soft
//! shadow, and often a brownish peripilar halo around the opening).

use super::noise;
use super::paint::{disc_alpha, line_alpha, over};
use super::scene::Unit;
use super::skin::Palette;
use super::texture::{mix, seg_dist, smoothstep, Rgb, Texture};

/// Honeycomb cell size (mm).
const NETWORK_CELL_MM: (f64, f64) = (0.12, 0.2);
/// Half width of a vessel (mm).
const VESSEL_HALF_WIDTH_MM: (f64, f64) = (0.005, 0.012);
/// Radius of the peripilar halo around an opening (mm).
const HALO_RADIUS_MM: (f64, f64) = (0.1, 0.2);
/// Length over which a shaft emerges from the translucent skin (mm).
const EMERGE_MM: f64 = 0.08;
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
        let strength = 0.05 + 0.035 * (fitz as f64 - 2.0).max(0.0) + 0.05 * h01(seed, 2);
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
    let line = 0.18 * cell;
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
            *c = mix(*c, brown, a.min(1.0));
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
    for k in 0..steps {
        a += (h01(seed, 10 + k) - 0.5) * 0.9;
        let (nx, ny) = (x + a.cos() * step, y + a.sin() * step);
        let reach = hw + 2.0 * texel;
        let (ax, ay) = (x, y);
        tex.for_each_in(
            ax.min(nx) - reach,
            ay.min(ny) - reach,
            ax.max(nx) + reach,
            ay.max(ny) + reach,
            |px, py, c| {
                let (d, _) = seg_dist(px, py, ax, ay, nx, ny);
                let la = line_alpha(d, hw, texel) * alpha;
                // Overlapping segments paint twice at joints; keep the strongest by blending gently.
                if la > 0.0 {
                    let keep = *c;
                    over(c, mix(keep, red, 0.6), la * 0.6);
                }
            },
        );
        x = nx;
        y = ny;
    }
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
                    over(c, col, 0.45 * a * (0.7 + 0.6 * n.abs()));
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

/// One hair shaft: shadow, then the shaft with cylinder shading and a lengthwise highlight.
fn paint_shaft(tex: &mut Texture, pal: &Palette, u: &Unit, h: &super::scene::Hair, seed: u64) {
    let texel = 1.0 / tex.px_per_mm;
    let (x0, y0) = (u.x_mm + h.dx_mm, u.y_mm + h.dy_mm);
    let (dx, dy) = (h.angle_rad.cos(), h.angle_rad.sin());
    let (x1, y1) = (x0 + dx * h.length_mm, y0 + dy * h.length_mm);
    let r = h.radius_mm;
    let base = if u.miniaturised {
        mix(pal.skin, VELLUS, h.darkness as f32 * 1.6)
    } else {
        pal.hair
    };
    let spec = if u.miniaturised {
        0.08
    } else {
        0.2 + 0.25 * h01(seed, 1) as f32
    };
    let hl_at = -0.35 + 0.2 * h01(seed, 2);
    // Slight taper and colour drift along the shaft.
    let reach = 3.0 * r + 2.0 * texel;
    let (lx, ly) = (x0.min(x1) - reach, y0.min(y1) - reach);
    let (hx, hy) = (x0.max(x1) + reach, y0.max(y1) + reach);
    let len = h.length_mm.max(1e-6);
    let darkness = h.darkness;
    let emerge = EMERGE_MM.min(0.4 * len);
    tex.for_each_in(lx, ly, hx, hy, |x, y, c| {
        let (d, t) = seg_dist(x, y, x0, y0, x1, y1);
        let along = t * len;
        // Shadow: a soft darkening beside the shaft.
        let sd = seg_dist(x - 0.6 * r, y - 0.8 * r, x0, y0, x1, y1).0;
        let sh = (-(sd * sd) / (2.0 * (1.3 * r).powi(2))).exp() * 0.2 * darkness;
        let k = (1.0 - sh) as f32;
        *c = [c[0] * k, c[1] * k, c[2] * k];
        // The shaft itself.
        let a = line_alpha(d, r, texel);
        if a <= 0.0 {
            return;
        }
        let lateral = ((x - x0) * -dy + (y - y0) * dx) / r;
        let rim = 1.0 - 0.35 * lateral.abs().powi(2) as f32;
        let hl = spec * (-((lateral - hl_at) / 0.22).powi(2)).exp() as f32;
        let drift = 1.0 + 0.25 * (noise::value(seed, along / 0.4, 0.0) - 0.5);
        let col = [
            base[0] * rim * drift + hl,
            base[1] * rim * drift + hl,
            base[2] * rim * drift + hl * 1.05,
        ];
        let fade_in = 0.55 + 0.45 * smoothstep(0.0, emerge, along);
        let cut = 1.0 - smoothstep(len - 0.5 * texel, len + 0.5 * texel, along);
        over(c, col, a * fade_in * cut * darkness.max(0.6));
    });
}
