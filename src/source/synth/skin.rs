//! Skin: the per-scene palette (Fitzpatrick type, hair, ink) and the base albedo, a mottled
//! multi-octave colour noise with micro-relief and faint pores.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise;
use super::texture::{mix, Rgb, Texture};
use super::truth::View;

/// Base skin reflectance of the scalp per Fitzpatrick type I..VI (gamma-encoded RGB).
const FITZPATRICK_SKIN: [Rgb; 6] = [
    [0.92, 0.76, 0.69],
    [0.87, 0.68, 0.58],
    [0.79, 0.59, 0.46],
    [0.66, 0.46, 0.33],
    [0.50, 0.34, 0.24],
    [0.34, 0.23, 0.17],
];
/// Pores per mm² of skin.
const PORES_PER_MM2: f64 = 1.2;
/// Darkening at a pore's centre (ratio).
const PORE_DEPTH: f32 = 0.07;

/// The colours of one scene.
#[derive(Debug, Clone)]
pub(crate) struct Palette {
    /// Fitzpatrick type, 1..=6.
    pub(crate) fitzpatrick: u8,
    /// Mean skin colour.
    pub(crate) skin: Rgb,
    /// Hair colour (fully dark hair).
    pub(crate) hair: Rgb,
    /// Healed ink colour (carbon under the epidermis; blue-grey on fair skin).
    pub(crate) ink: Rgb,
    /// Strength of the colour mottling (ratio).
    pub(crate) mottle: f32,
}

impl Palette {
    /// Draws the palette of a scene of skin type `fitzpatrick`.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, fitzpatrick: u8, view: View) -> Self {
        let base = FITZPATRICK_SKIN[(fitzpatrick.clamp(1, 6) - 1) as usize];
        let j = rng.gen_range(0.94..1.06);
        let pink = rng.gen_range(-0.03..0.04);
        let mut skin = [base[0] * j + pink, base[1] * j, base[2] * j - pink * 0.5];
        if view == View::Dermoscope && fitzpatrick <= 3 {
            // Under the dermoscope's polarised light fair scalp reads pinker.
            skin = mix(skin, [0.93, 0.70, 0.66], rng.gen_range(0.1..0.35));
        }
        let hair_v = rng.gen_range(0.04..0.13);
        let grey = rng.gen_bool(0.08);
        let hair = if grey {
            [0.28, 0.27, 0.26]
        } else {
            [hair_v * 1.25, hair_v, hair_v * 0.85]
        };
        let ink = if fitzpatrick <= 2 {
            [0.17, 0.2, 0.25]
        } else {
            [0.13, 0.13, 0.14]
        };
        Self {
            fitzpatrick,
            skin,
            hair,
            ink,
            mottle: rng.gen_range(0.6..1.4),
        }
    }
}

/// Paints the base skin over the whole texture: colour mottling at a few scales, micro-relief
/// and faint pores.
pub(crate) fn paint_base(tex: &mut Texture, pal: &Palette, seed: u64, view: View) {
    let (big_mm, fine_mm, relief_mm) = match view {
        View::Rig => (6.0, 1.2, 0.25),
        View::Dermoscope => (2.0, 0.45, 0.07),
    };
    let texel_mm = 1.0 / tex.px_per_mm;
    // Low-frequency colour fields on a coarse grid, interpolated per texel.
    let step = ((fine_mm / 6.0) / texel_mm).floor().max(1.0) as usize;
    let gw = tex.w / step + 2;
    let gh = tex.h / step + 2;
    let mut coarse = Vec::with_capacity(gw * gh);
    for gj in 0..gh {
        for gi in 0..gw {
            let (x, y) = tex.mm_of(gi * step, gj * step);
            let lum = noise::fbm(seed, x, y, big_mm, 3, 0.55) * 0.14
                + noise::fbm(seed ^ 1, x, y, fine_mm, 2, 0.5) * 0.06;
            let red = noise::fbm(seed ^ 2, x, y, big_mm * 0.7, 3, 0.5);
            let mel = noise::fbm(seed ^ 3, x, y, big_mm * 0.5, 3, 0.6);
            coarse.push([lum, red, mel]);
        }
    }
    let relief_on = relief_mm > 2.0 * texel_mm;
    let grain_mm = (2.0 * texel_mm).max(relief_mm * 0.3);
    let m = pal.mottle;
    let skin = pal.skin;
    let brown = [skin[0] * 0.78, skin[1] * 0.66, skin[2] * 0.58];
    for j in 0..tex.h {
        let gj = j / step;
        let fy = (j % step) as f32 / step as f32;
        for i in 0..tex.w {
            let gi = i / step;
            let fx = (i % step) as f32 / step as f32;
            let a = coarse[gj * gw + gi];
            let b = coarse[gj * gw + gi + 1];
            let c = coarse[(gj + 1) * gw + gi];
            let d = coarse[(gj + 1) * gw + gi + 1];
            let mut f = [0.0f32; 3];
            for k in 0..3 {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bot = c[k] + (d[k] - c[k]) * fx;
                f[k] = top + (bot - top) * fy;
            }
            let (lum, red, mel) = (f[0] * m, f[1] * m, f[2] * m);
            let mut px = mix(skin, brown, (mel * 1.6).clamp(0.0, 1.0));
            px[0] *= 1.0 + lum + red * 0.10;
            px[1] *= 1.0 + lum - red * 0.12;
            px[2] *= 1.0 + lum - red * 0.08;
            let (x, y) = tex.mm_of(i, j);
            let grain = 1.0 + 0.045 * (noise::value(seed ^ 6, x / grain_mm, y / grain_mm) - 0.5);
            px = [px[0] * grain, px[1] * grain, px[2] * grain];
            if relief_on {
                let r = noise::value(seed ^ 4, x / relief_mm, y / relief_mm);
                let ridge = 1.0 - (2.0 * r - 1.0).abs();
                let v = 1.0 + 0.05 * (r - 0.5) - 0.035 * ridge.powi(6);
                px = [px[0] * v, px[1] * v, px[2] * v];
            }
            tex.data[j * tex.w + i] = px;
        }
    }
    paint_pores(tex, seed ^ 5, view);
}

/// Faint small darker spots (sweat pores and tiny pits), far fainter than any hair.
fn paint_pores(tex: &mut Texture, seed: u64, view: View) {
    let area = (tex.w as f64 / tex.px_per_mm) * (tex.h as f64 / tex.px_per_mm);
    let n = (area * PORES_PER_MM2) as u64;
    let (r_lo, r_hi) = match view {
        View::Rig => (0.03, 0.06),
        View::Dermoscope => (0.012, 0.03),
    };
    for k in 0..n {
        let h = noise::mix64(seed ^ k.wrapping_mul(0x2545F4914F6CDD1D));
        let u = (h & 0xFFFF) as f64 / 65536.0;
        let v = ((h >> 16) & 0xFFFF) as f64 / 65536.0;
        let s = ((h >> 32) & 0xFFFF) as f64 / 65536.0;
        let x = tex.origin_mm[0] + u * tex.w as f64 / tex.px_per_mm;
        let y = tex.origin_mm[1] + v * tex.h as f64 / tex.px_per_mm;
        let r = r_lo + (r_hi - r_lo) * s;
        let rr = r + 1.0 / tex.px_per_mm;
        tex.for_each_in(x - rr, y - rr, x + rr, y + rr, |px, py, c| {
            let d = (px - x).hypot(py - y) / r;
            let t = (-(d * d) * 1.5).exp() as f32 * PORE_DEPTH;
            c[0] *= 1.0 - t;
            c[1] *= 1.0 - t * 1.1;
            c[2] *= 1.0 - t * 1.1;
        });
    }
}
