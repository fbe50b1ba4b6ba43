//! Skin: the per-scene palette (Fitzpatrick type, hair, ink) and the base albedo, a mottled
//! multi-octave colour noise with micro-relief and faint pores.

use rand::{Rng, SeedableRng};
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

/// Which model of ink and hair colours a rig scene is painted with.
///
/// [`ColourModel::Standard`] is the renderer every rule and model of the project is fitted on.
/// [`ColourModel::Alternate`] is a deliberately different ink and hair model that nothing is
/// fitted on, used only to evaluate: a different pigment (blue-green under the skin rather than
/// blue-grey), other strengths and healing, another split of the skin's light between epidermis
/// and dermis, and red-brown, blond and salt-and-pepper hair. The dermoscope view ignores it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColourModel {
    /// The renderer's own ink and hair model.
    #[default]
    Standard,
    /// The held-out ink and hair model (evaluation only).
    Alternate,
}

/// Share of the skin's remitted light that never reaches the dermis (where ink sits), per
/// Fitzpatrick type I..VI: epidermal melanin absorbs and scatters it first, so ink under dark
/// skin changes the colour less than under fair skin.
const EPIDERMAL_SHARE: [f32; 6] = [0.10, 0.15, 0.22, 0.32, 0.45, 0.58];
/// How much more the epidermis withholds green and blue than red from the dermis at type VI
/// (melanin absorbs short wavelengths more); scaled linearly from none at type I.
const MELANIN_TILT: [f32; 3] = [1.0, 0.9, 0.75];
/// Carbon's absorption per channel under the epidermis (red, green, blue), fresh ink: nearly
/// flat (black).
const CARBON_FRESH: [f32; 3] = [1.0, 0.95, 0.86];
/// The same for faded, healed ink: blue comes back from the dermis above the particles
/// (Tyndall scattering), so it reads blue-grey.
const CARBON_FADED: [f32; 3] = [1.0, 0.82, 0.62];
/// Optical depth of the ink layer: fresh (black) to faded.
const INK_DEPTH: (f32, f32) = (3.2, 0.7);
/// Share of rig scenes whose hair is grey (a mix of dark and white hairs).
const GREY_HAIR_P: f64 = 0.14;
/// Share of rig scenes whose hair is white.
const WHITE_HAIR_P: f64 = 0.05;

/// The colours of one scene.
#[derive(Debug, Clone)]
pub(crate) struct Palette {
    /// Fitzpatrick type, 1..=6.
    pub(crate) fitzpatrick: u8,
    /// Mean skin colour.
    pub(crate) skin: Rgb,
    /// Hair colour (fully dark hair).
    pub(crate) hair: Rgb,
    /// A second hair colour (white hairs among dark ones), and the share of hairs that take it.
    pub(crate) hair_alt: Option<(Rgb, f64)>,
    /// Healed ink colour (carbon under the epidermis; blue-grey on fair skin).
    pub(crate) ink: Rgb,
    /// Colour of ink the needle has just placed (the simulated needle paints with it; rig
    /// scenes only, else the healed ink): see [`fresh_ink`].
    pub(crate) fresh_ink: Rgb,
    /// Strength of the colour mottling (ratio).
    pub(crate) mottle: f32,
}

/// sRGB-like gamma used to move between the texture's encoded values and linear light.
const GAMMA: f32 = 2.2;

fn to_linear(c: Rgb) -> Rgb {
    c.map(|v| v.max(0.0).powf(GAMMA))
}

fn to_encoded(c: Rgb) -> Rgb {
    c.map(|v| v.clamp(0.0, 1.0).powf(1.0 / GAMMA))
}

/// Colour of skin with an ink layer of optical depth `depth` and per-channel absorption
/// `absorb` under an epidermis that keeps `epi` of the remitted light from the dermis (with
/// `tilt` more of it kept in green and blue): a two-layer model, skin = epidermis + dermis,
/// where only the dermal part passes the ink.
fn ink_under(skin: Rgb, epi: f32, tilt: Rgb, absorb: Rgb, depth: f32) -> Rgb {
    let lin = to_linear(skin);
    let mut out = [0.0; 3];
    for c in 0..3 {
        let dermal = (1.0 - epi) * tilt[c];
        let t = (-depth * absorb[c]).exp();
        out[c] = lin[c] * ((1.0 - dermal) + dermal * t);
    }
    to_encoded(out)
}

/// Optical depth of ink the needle has just placed.
const FRESH_INK_DEPTH: f32 = 2.0;

/// Ink just placed sits in the epidermis as well as under it (the epidermis sheds its share
/// over the weeks of healing, which leaves the dot lighter): no layer shields it, so it is
/// near black on every skin, a little blue.
fn fresh_ink(skin: Rgb) -> Rgb {
    ink_under(skin, 0.0, [1.0; 3], CARBON_FRESH, FRESH_INK_DEPTH)
}

impl Palette {
    /// Draws the palette of a scene of skin type `fitzpatrick`.
    ///
    /// The wider rig colours (ink healing stage, grey and white hair) come from their own stream
    /// seeded from `rng` without advancing it, so every draw after the palette is what it was.
    pub(crate) fn draw(
        rng: &mut ChaCha8Rng,
        fitzpatrick: u8,
        view: View,
        model: ColourModel,
    ) -> Self {
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
        let mottle = rng.gen_range(0.6..1.4);
        let mut pal = Self {
            fitzpatrick,
            skin,
            hair,
            hair_alt: None,
            ink,
            fresh_ink: ink,
            mottle,
        };
        if view == View::Rig {
            let mut wide = ChaCha8Rng::seed_from_u64(rng.clone().gen::<u64>() ^ 0x1A7E_C010);
            match model {
                ColourModel::Standard => pal.widen_standard(&mut wide, hair_v),
                ColourModel::Alternate => pal.widen_alternate(&mut wide, hair_v),
            }
        }
        pal
    }

    /// The standard rig model: carbon ink under the epidermis at a drawn healing stage (fresh
    /// black to faded blue-grey), and black, brown, grey or white hair.
    fn widen_standard(&mut self, rng: &mut ChaCha8Rng, hair_v: f32) {
        let k = (self.fitzpatrick.clamp(1, 6) - 1) as usize;
        let f = k as f32 / 5.0;
        let tilt = MELANIN_TILT.map(|m| 1.0 - (1.0 - m) * f);
        let healed: f32 = rng.gen_range(0.0..1.0);
        let absorb =
            std::array::from_fn(|c| CARBON_FRESH[c] + (CARBON_FADED[c] - CARBON_FRESH[c]) * healed);
        let depth = INK_DEPTH.0 + (INK_DEPTH.1 - INK_DEPTH.0) * healed;
        self.ink = ink_under(self.skin, EPIDERMAL_SHARE[k], tilt, absorb, depth);
        self.fresh_ink = ink_under(
            self.skin,
            EPIDERMAL_SHARE[k],
            tilt,
            CARBON_FRESH,
            INK_DEPTH.0,
        );
        let u: f64 = rng.gen_range(0.0..1.0);
        if u < WHITE_HAIR_P {
            let w = rng.gen_range(0.72..0.86);
            self.hair = [w, w * 0.98, w * 0.94];
        } else if u < WHITE_HAIR_P + GREY_HAIR_P {
            // Salt and pepper: dark hairs with a share of white ones.
            self.hair = [hair_v * 1.2, hair_v, hair_v * 0.9];
            let w = rng.gen_range(0.65..0.85);
            self.hair_alt = Some(([w, w * 0.98, w * 0.95], rng.gen_range(0.2..0.6)));
        } else {
            // Black to mid brown.
            let v = rng.gen_range(0.03..0.2);
            let warm = rng.gen_range(1.05..1.45);
            self.hair = [v * warm, v, v * (2.0 - warm).max(0.6)];
        }
    }

    /// The held-out model: a blue-green pigment at other strengths under a differently split
    /// epidermis, and red-brown, blond or salt-and-pepper hair.
    fn widen_alternate(&mut self, rng: &mut ChaCha8Rng, hair_v: f32) {
        let k = (self.fitzpatrick.clamp(1, 6) - 1) as usize;
        let epi = (EPIDERMAL_SHARE[k] * rng.gen_range(0.75..1.3)).clamp(0.05, 0.7);
        let tilt = [1.0, rng.gen_range(0.8..1.0), rng.gen_range(0.65..0.95)];
        let absorb = [1.0, rng.gen_range(0.7..0.85), rng.gen_range(0.72..0.9)];
        let depth = rng.gen_range(0.9..2.6);
        self.ink = ink_under(self.skin, epi, tilt, absorb, depth);
        self.fresh_ink = fresh_ink(self.skin);
        let u: f64 = rng.gen_range(0.0..1.0);
        if u < 0.3 {
            // Red-brown.
            let v = rng.gen_range(0.1..0.22);
            self.hair = [v * 1.9, v * 1.05, v * 0.7];
        } else if u < 0.45 {
            // Dark blond.
            let v = rng.gen_range(0.3..0.42);
            self.hair = [v * 1.25, v * 1.05, v * 0.75];
        } else if u < 0.7 {
            self.hair = [hair_v * 1.1, hair_v, hair_v];
            let w = rng.gen_range(0.55..0.8);
            self.hair_alt = Some(([w, w, w * 0.97], rng.gen_range(0.3..0.7)));
        } else {
            let v = rng.gen_range(0.02..0.1);
            self.hair = [v, v, v * 1.05];
        }
    }

    /// The colour of one hair: the scene's hair, or its second colour for the share of hairs
    /// `pick` (uniform in `0..1`, fixed per hair) falls under.
    pub(crate) fn hair_for(&self, pick: f64) -> Rgb {
        match self.hair_alt {
            Some((alt, share)) if pick < share => alt,
            _ => self.hair,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lum(c: Rgb) -> f32 {
        0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    }

    /// Ink under the epidermis is darker and bluer than the skin on every type, by less on
    /// the darkest; the held-out model draws other inks from the same skin.
    #[test]
    fn ink_is_darker_and_bluer_than_skin_on_every_type() {
        let mut contrast = [0.0f32; 6];
        for fitz in 1..=6u8 {
            for seed in 0..40u64 {
                for model in [ColourModel::Standard, ColourModel::Alternate] {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let p = Palette::draw(&mut rng, fitz, View::Rig, model);
                    let (s, i) = (p.skin, p.ink);
                    assert!(lum(i) < lum(s), "type {fitz} seed {seed}: {i:?} vs {s:?}");
                    assert!(i[2] / i[0] > s[2] / s[0], "type {fitz}: not bluer");
                    if model == ColourModel::Standard {
                        contrast[fitz as usize - 1] += (lum(s) - lum(i)) / lum(s) / 40.0;
                    }
                }
            }
        }
        assert!(contrast[5] < contrast[0] * 0.8, "{contrast:?}");
        assert!(
            contrast[5] > 0.05,
            "ink still shows on type VI: {contrast:?}"
        );
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = a.clone();
        let std = Palette::draw(&mut a, 4, View::Rig, ColourModel::Standard);
        let alt = Palette::draw(&mut b, 4, View::Rig, ColourModel::Alternate);
        assert_eq!(std.skin, alt.skin, "same skin");
        assert_ne!(std.ink, alt.ink, "another ink");
    }

    /// The widened colours come from their own stream: the draws after the palette, which lay
    /// out the scene, are the same whichever model painted it.
    #[test]
    fn the_colour_model_leaves_the_layout_alone() {
        let mut a = ChaCha8Rng::seed_from_u64(9);
        let mut b = a.clone();
        let _ = Palette::draw(&mut a, 2, View::Rig, ColourModel::Standard);
        let _ = Palette::draw(&mut b, 2, View::Rig, ColourModel::Alternate);
        assert_eq!(a.gen::<u64>(), b.gen::<u64>());
    }
}
