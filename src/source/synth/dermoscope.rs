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
/// Domain warp of the honeycomb, as a fraction of its cell size.
const NETWORK_WARP: f64 = 0.6;
/// Share of scenes with some grey-white hairs, and the most of a scene's hairs that are.
const WHITE_HAIR_SCENE_P: f64 = 0.25;
/// Most of a scene's hairs that are grey-white, in scenes that have them.
const WHITE_HAIR_MAX_SHARE: f64 = 0.25;
/// Colour of a grey-white hair: nearly unpigmented keratin, translucent, so it reads as a
/// greyish tube a little lighter than the skin under it.
const WHITE_HAIR: Rgb = [0.7, 0.68, 0.65];
/// Half width of a vessel (mm).
const VESSEL_HALF_WIDTH_MM: (f64, f64) = (0.005, 0.012);
/// Levels of branching of a vessel (arborizing red lines).
const VESSEL_BRANCH_DEPTH: u32 = 2;
/// Simple red loops per mm² of fair skin, at most.
const LOOPS_PER_MM2: f64 = 6.0;
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
/// What is left of a shaft's specular line under cross-polarised light.
const POLARISED_SPECULAR: f32 = 0.15;
/// Largest slant of a shaft's cut face (length along the shaft per unit across it).
const CUT_SLANT_MAX: f64 = 0.8;
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
        if h01(seed, 7) < 0.6 {
            paint_loops(tex, seed ^ 0x44, LOOPS_PER_MM2 * h01(seed, 8));
        }
    }
    if h01(seed, 5) < 0.55 {
        paint_flakes(tex, seed ^ 0x33, 0.2 + 0.5 * h01(seed, 6));
    }
}

/// A honeycomb pigment network: soft brown lines of uneven width between irregular cells,
/// lighter holes. Cells are a jittered Voronoi pattern seen through a smooth domain warp, so
/// their walls bend like real rete ridges instead of running as straight polygon edges.
fn paint_network(tex: &mut Texture, pal: &Palette, seed: u64, strength: f32) {
    let cell = NETWORK_CELL_MM.0 + (NETWORK_CELL_MM.1 - NETWORK_CELL_MM.0) * h01(seed, 0);
    let brown = [pal.skin[0] * 0.7, pal.skin[1] * 0.55, pal.skin[2] * 0.48];
    let patch_mm = 0.8;
    let warp = NETWORK_WARP * cell;
    for j in 0..tex.h {
        for i in 0..tex.w {
            let (x0, y0) = tex.mm_of(i, j);
            let x = x0 + warp * noise::fbm(seed ^ 0x51, x0, y0, 1.7 * cell, 2, 0.5) as f64;
            let y = y0 + warp * noise::fbm(seed ^ 0x52, x0, y0, 1.7 * cell, 2, 0.5) as f64;
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
            // Walls of uneven width, soft (they lie under the epidermis), fading in and out.
            let line = cell * (0.18 + 0.3 * noise::value(seed ^ 0x53, x / cell, y / cell) as f64);
            let edge = (-((f2 - f1) / line).powi(2)).exp();
            let hole = smoothstep(0.3 * cell, 0.0, f1);
            // The network is patchy, not everywhere.
            let patch = smoothstep(
                0.3,
                0.7,
                noise::value(seed ^ 7, x0 / patch_mm, y0 / patch_mm) as f64,
            );
            let a = (edge * patch) as f32 * strength * 2.2;
            let c = &mut tex.data[j * tex.w + i];
            *c = mix(*c, brown, a.min(1.0));
            *c = mix(
                *c,
                [1.0, 0.96, 0.92],
                (hole * patch) as f32 * strength * 0.6,
            );
        }
    }
}

/// One fine red vessel: a thin wandering curve that may branch (arborizing red lines).
fn paint_vessel(tex: &mut Texture, seed: u64) {
    let texel = 1.0 / tex.px_per_mm;
    let w_mm = tex.w as f64 * texel;
    let h_mm = tex.h as f64 * texel;
    let x = tex.origin_mm[0] + h01(seed, 0) * w_mm;
    let y = tex.origin_mm[1] + h01(seed, 1) * h_mm;
    let hw =
        VESSEL_HALF_WIDTH_MM.0 + (VESSEL_HALF_WIDTH_MM.1 - VESSEL_HALF_WIDTH_MM.0) * h01(seed, 2);
    let len = 0.5 + 2.0 * h01(seed, 3);
    let a = std::f64::consts::TAU * h01(seed, 4);
    let alpha = 0.25 + 0.3 * h01(seed, 5);
    vessel_branch(tex, seed, [x, y], a, len, hw, alpha, VESSEL_BRANCH_DEPTH);
}

/// One branch of a vessel from `start` heading `angle`; thinner branches leave it.
#[allow(clippy::too_many_arguments)]
fn vessel_branch(
    tex: &mut Texture,
    seed: u64,
    start: [f64; 2],
    angle: f64,
    len: f64,
    hw: f64,
    alpha: f64,
    depth: u32,
) {
    let texel = 1.0 / tex.px_per_mm;
    let red = [0.72, 0.25, 0.25];
    let steps = 40;
    let step = len / steps as f64;
    let (mut x, mut y, mut a) = (start[0], start[1], angle);
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
    if depth == 0 {
        return;
    }
    for b in 0..2u64 {
        if h01(seed, 100 + b) < 0.55 {
            let at = points[(8 + (h01(seed, 110 + b) * 28.0) as usize).min(steps as usize)];
            let side = if b == 0 { 1.0 } else { -1.0 };
            vessel_branch(
                tex,
                noise::mix64(seed ^ (0xB4 + b)),
                at,
                a + side * (0.5 + 0.6 * h01(seed, 120 + b)),
                len * (0.3 + 0.3 * h01(seed, 130 + b)),
                (hw * 0.7).max(0.5 * texel),
                alpha * 0.85,
                depth - 1,
            );
        }
    }
}

/// Simple red loops: tiny hairpin capillaries of the papillary dermis, seen end-on as red dots
/// or short twisted loops between the follicles.
fn paint_loops(tex: &mut Texture, seed: u64, per_mm2: f64) {
    let texel = 1.0 / tex.px_per_mm;
    let (w_mm, h_mm) = (tex.w as f64 * texel, tex.h as f64 * texel);
    let n = (w_mm * h_mm * per_mm2) as u64;
    let red = [0.7, 0.2, 0.22];
    for k in 0..n {
        let s = noise::mix64(seed ^ k.wrapping_mul(0x9E37_79B9));
        let x = tex.origin_mm[0] + h01(s, 0) * w_mm;
        let y = tex.origin_mm[1] + h01(s, 1) * h_mm;
        let len = 0.02 + 0.06 * h01(s, 2);
        let a = std::f64::consts::TAU * h01(s, 3);
        let hw = 0.004 + 0.004 * h01(s, 4);
        let (dx, dy) = (a.cos(), a.sin());
        // A hairpin: out along one side, back along the other, with a slight twist.
        let points: Vec<[f64; 2]> = (0..=12)
            .map(|i| {
                let t = std::f64::consts::PI * i as f64 / 12.0;
                let along = len * t.sin();
                let across = 0.012 * t.cos() + 0.006 * (3.0 * t).sin();
                [x + dx * along - dy * across, y + dy * along + dx * across]
            })
            .collect();
        let alpha = 0.2 + 0.3 * h01(s, 5);
        polyline(tex, &points, hw + 2.0 * texel, |_, _, d, _, c| {
            let la = line_alpha(d, hw, texel) * alpha;
            if la > 0.0 {
                let keep = *c;
                over(c, mix(keep, red, 0.6), la);
            }
        });
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
                    over(c, col, 0.32 * a * (0.6 + 0.8 * n.abs()));
                }
            },
        );
    }
}

/// Paints every unit: the opening (with its peripilar halo) and the hair shafts.
pub(crate) fn paint_units(
    tex: &mut Texture,
    pal: &Palette,
    units: &[Unit],
    seed: u64,
    polarised: bool,
) {
    let spec_gain = if polarised { POLARISED_SPECULAR } else { 1.0 };
    let texel = 1.0 / tex.px_per_mm;
    let white_share = if h01(seed, 0) < WHITE_HAIR_SCENE_P {
        WHITE_HAIR_MAX_SHARE * h01(seed, 1)
    } else {
        0.0
    };
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
            let hs = noise::mix64(s ^ hi as u64);
            let white = !u.miniaturised && h01(hs, 20) < white_share;
            paint_shaft(tex, pal, u, h, hs, white, spec_gain);
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
fn paint_shaft(
    tex: &mut Texture,
    pal: &Palette,
    u: &Unit,
    h: &super::scene::Hair,
    seed: u64,
    white: bool,
    spec_gain: f32,
) {
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
    } else if white {
        // Unpigmented hair: translucent, its edges darker than its middle.
        (mix(pal.skin, WHITE_HAIR, 0.6), 0.6 + 0.6 * tone)
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
        (0.16 + 0.26 * h01(seed, 1) as f32) * spec_gain * if white { 0.4 } else { 1.0 }
    };
    let hl_at = -0.3 + 0.25 * h01(seed, 2);
    let reach = 3.0 * r + bend.abs() + SUBSURFACE_MM + 2.0 * texel;
    let (lx, ly) = (x0.min(x1) - reach, y0.min(y1) - reach);
    let (hx, hy) = (x0.max(x1) + reach, y0.max(y1) + reach);
    let darkness = h.darkness.max(0.6);
    let emerge = EMERGE_MM.min(0.4 * len);
    let taper_to = 0.85 + 0.15 * h01(seed, 9);
    // Clippers and razors cut at a slant: the cut face runs across the shaft at an angle.
    let slant = CUT_SLANT_MAX * (2.0 * h01(seed, 11) - 1.0);
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
        if lateral.abs() > rr + soft || along > len + slant.abs() * rr + soft {
            return;
        }
        let s = (lateral / rr).clamp(-1.0, 1.0);
        let edge = 1.0 - smoothstep(rr - soft, rr + soft, lateral.abs());
        let drift = 1.0 + 0.3 * (noise::value(seed, along / 0.35, 0.5) - 0.5);
        let hair_c = [hair[0] * drift, hair[1] * drift, hair[2] * drift];
        let flicker = 0.6 + 0.8 * noise::value(seed ^ 5, along / 0.12, 0.0);
        let col = shaft_colour(*c, hair_c, s, opacity, spec * flicker, hl_at);
        let fade_in = 0.6 + 0.4 * smoothstep(0.0, emerge, along);
        let cut_at = len + slant * lateral;
        let cut = 1.0 - smoothstep(cut_at - 0.5 * soft, cut_at + 0.5 * soft, along);
        over(c, col, edge * fade_in * cut * darkness);
    });
}
