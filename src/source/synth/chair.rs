//! The scene at the chair: what a camera over the scalp sees that is not treatable skin.
//!
//! Two families, each with a truth mask (255 where the pixel is not skin the plan may use):
//!
//! - **On the head**, laid out in skin millimetres so they move with the head: the room past the
//!   head's silhouette (out of focus), a mass of longer hair at the border of the thinning area
//!   (strands of 1-10 mm lying in a flow, some straying over the bald skin), an ear edge, a cape
//!   or towel, wiped ink smears and ink pooled at a fresh dot.
//! - **In the artist's hand**, placed in image pixels around the needle tip so they follow the
//!   needle, not the head: gloved fingertips stretching the skin (blue, black, white or violet
//!   nitrile, glossy, with wrinkles) and the machine's cartridge (opaque or translucent) with its
//!   needle and its shadow on the skin.
//!
//! Everything is painted after the camera's sensor model, lit by the camera's own light and white
//! balance (so casts apply to it as to the skin), with its own sensor noise; JPEG comes after.
//! Shadows fall on skin and stay skin in the truth.

use image::{GrayImage, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::noise;
use super::texture::{mix, seg_dist, smoothstep, Rgb};
use super::Pose;

/// Truth mask value of a pixel that is not skin.
pub const NOT_SKIN: u8 = 255;
/// A smear is not skin where its ink covers at least this much.
const SMEAR_TRUTH_ALPHA: f32 = 0.3;
/// Translucent cartridges let this much of the skin through.
const TRANSLUCENT_ALPHA: f32 = 0.55;
/// Nitrile glove colours (reflectance): blue, black, white, violet.
const GLOVES: [Rgb; 4] = [
    [0.22, 0.42, 0.86],
    [0.06, 0.06, 0.07],
    [0.90, 0.91, 0.92],
    [0.50, 0.33, 0.82],
];
/// Cartridge colours; the last two are translucent.
const CARTRIDGES: [(Rgb, bool); 5] = [
    ([0.92, 0.92, 0.90], false),
    ([0.08, 0.08, 0.09], false),
    ([0.20, 0.45, 0.80], false),
    ([0.80, 0.88, 0.95], true),
    ([0.95, 0.55, 0.70], true),
];
/// Out-of-focus room colours (walls, curtains, furniture, plants, shade).
const ROOM: [Rgb; 7] = [
    [0.86, 0.86, 0.83],
    [0.50, 0.51, 0.53],
    [0.30, 0.50, 0.52],
    [0.12, 0.12, 0.14],
    [0.22, 0.30, 0.55],
    [0.22, 0.40, 0.17],
    [0.70, 0.72, 0.78],
];
/// Cape and towel colours.
const CAPES: [Rgb; 6] = [
    [0.07, 0.07, 0.08],
    [0.12, 0.16, 0.35],
    [0.90, 0.90, 0.90],
    [0.45, 0.46, 0.48],
    [0.45, 0.10, 0.14],
    [0.15, 0.45, 0.45],
];

/// Which chair to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChairKind {
    /// A rig frame at the chair: one to three things at the frame's borders, smears, and the
    /// artist's hand at the needle.
    Working,
    /// A photograph of a whole head (3-8 px/mm): room, hair around the crown, the shirt.
    WholeHead,
}

/// One thing on the head, in skin millimetres.
#[derive(Debug, Clone)]
enum HeadItem {
    /// Past the head's silhouette (outside an ellipse): the room, out of focus.
    Room {
        c: [f64; 2],
        axes: [f64; 2],
        colours: [Rgb; 2],
        seed: u64,
    },
    /// Inside a circle: a mass of longer hair, with its strands.
    Hair {
        c: [f64; 2],
        r: f64,
        flow_rad: f64,
        strands: Vec<Strand>,
    },
    /// Beyond a wavy line (`n . p > d`): a cape or towel with folds.
    Cape {
        n: [f64; 2],
        d: f64,
        colour: Rgb,
        seed: u64,
    },
    /// An ear (an ellipse), redder and brighter than the scalp, out of focus.
    Ear {
        c: [f64; 2],
        axes: [f64; 2],
        angle: f64,
    },
    /// Ink wiped across the skin along a polyline.
    Smear {
        points: Vec<[f64; 2]>,
        half_width: f64,
        strength: f32,
        seed: u64,
    },
    /// Ink pooled at a fresh dot: dark and glossy.
    Pool { c: [f64; 2], r: f64 },
}

/// One strand of longer hair (skin mm).
#[derive(Debug, Clone, Copy)]
struct Strand {
    a: [f64; 2],
    b: [f64; 2],
    half_width: f64,
    shade: f32,
}

/// The artist's hand: gloved fingertips and the machine, placed relative to the needle tip in
/// image pixels.
#[derive(Debug, Clone)]
struct Hand {
    /// Direction from the tip toward the machine's body (radians, image frame).
    machine_rad: f64,
    /// Exposed needle length (mm).
    needle_mm: f64,
    /// Cartridge half width (mm).
    cartridge_half_mm: f64,
    cartridge: (Rgb, bool),
    /// Shadow offset (mm, image axes).
    shadow_mm: [f64; 2],
    glove: Rgb,
    /// Fingertips: centre offset from the tip (mm, image axes), axis direction, radius (mm).
    fingers: Vec<([f64; 2], f64, f64)>,
    seed: u64,
}

/// Everything at the chair that is not skin, for one scene.
#[derive(Debug, Clone)]
pub struct Chair {
    head: Vec<HeadItem>,
    hand: Option<Hand>,
    hair: Rgb,
    skin: Rgb,
    seed: u64,
}

/// How the camera lit a frame: gain per pixel and white balance. `None` gain: uniform.
pub(crate) struct Light<'a> {
    pub(crate) gain: Option<&'a [f32]>,
    pub(crate) tint: Rgb,
    /// Veiling flare of a low-contrast frame: the share of the scene's light that is kept, and
    /// the flat veil added per channel (fraction of full scale). It lies over the whole frame,
    /// so what is painted over the skin takes it too. No veil: `(1.0, [0.0; 3])`.
    pub(crate) veil: (f32, Rgb),
}

impl Light<'_> {
    /// The 8-bit level, before noise, of reflectance `c` in channel `ch` under gain `g`.
    fn level(&self, c: Rgb, g: f32, ch: usize) -> f32 {
        let (keep, veil) = self.veil;
        (c[ch] * g * self.tint[ch] * keep + veil[ch]) * 255.0
    }
}

impl Chair {
    /// Draws a chair for a scene with frame `width` x `height` at `px_per_mm`, skin colour `skin`
    /// and hair colour `hair` (reflectance). Deterministic from `seed`.
    pub(crate) fn draw(
        kind: ChairKind,
        seed: u64,
        width: u32,
        height: u32,
        px_per_mm: f64,
        skin: Rgb,
        hair: Rgb,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC4A1_2000);
        let half = [
            f64::from(width) / 2.0 / px_per_mm,
            f64::from(height) / 2.0 / px_per_mm,
        ];
        let (head, hand) = match kind {
            ChairKind::Working => (working_head(&mut rng, half), Some(draw_hand(&mut rng))),
            ChairKind::WholeHead => (whole_head(&mut rng, half), None),
        };
        Self {
            head,
            hand,
            hair,
            skin,
            seed,
        }
    }

    /// The same chair without the hand (the live demo paints the hand per frame itself).
    pub fn without_hand(mut self) -> Self {
        self.hand = None;
        self
    }

    /// Whether the chair has a hand (gloves and machine).
    pub fn has_hand(&self) -> bool {
        self.hand.is_some()
    }

    /// Paints what lies on the head into `img` (if given) and marks it in `mask`.
    pub(crate) fn paint_head(
        &self,
        mut img: Option<&mut RgbImage>,
        mask: &mut GrayImage,
        pose: &Pose,
        px_per_mm: f64,
        light: &Light<'_>,
    ) {
        if self.head.is_empty() {
            return;
        }
        let (w, h) = mask.dimensions();
        // Strands first (bounding boxes), then the per-pixel regions.
        let mut strand_alpha = vec![0.0f32; (w * h) as usize];
        let k = pose.scale * px_per_mm;
        for item in &self.head {
            if let HeadItem::Hair { strands, .. } = item {
                for s in strands {
                    let a = pose.image_from_skin(px_per_mm, w, h, s.a[0], s.a[1]);
                    let b = pose.image_from_skin(px_per_mm, w, h, s.b[0], s.b[1]);
                    let hw = (s.half_width * k).max(0.6);
                    let x0 = (a.0.min(b.0) - hw - 1.0).floor().max(0.0) as u32;
                    let y0 = (a.1.min(b.1) - hw - 1.0).floor().max(0.0) as u32;
                    let x1 = ((a.0.max(b.0) + hw + 1.0).ceil().max(0.0) as u32).min(w);
                    let y1 = ((a.1.max(b.1) + hw + 1.0).ceil().max(0.0) as u32).min(h);
                    for y in y0..y1 {
                        for x in x0..x1 {
                            let (d, _) = seg_dist(
                                f64::from(x) + 0.5,
                                f64::from(y) + 0.5,
                                a.0,
                                a.1,
                                b.0,
                                b.1,
                            );
                            let cover = (1.0 - smoothstep(hw - 0.5, hw + 0.5, d)) as f32 * s.shade;
                            let i = (y * w + x) as usize;
                            strand_alpha[i] = strand_alpha[i].max(cover);
                        }
                    }
                }
            }
        }
        let hair = self.hair;
        for y in 0..h {
            for x in 0..w {
                let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                let (sx, sy) = pose.skin_from_image(px_per_mm, w, h, px, py);
                let i = (y * w + x) as usize;
                let mut layer: Option<(Rgb, f32)> = None;
                let mut not_skin = false;
                let mut shade = 1.0f32;
                for item in &self.head {
                    if let Some((c, a, truth, s)) = self.sample_item(item, sx, sy, k) {
                        shade *= s;
                        if a > 0.0 {
                            layer = Some(match layer {
                                None => (c, a),
                                Some((c0, a0)) => (mix(c0, c, a), a0.max(a)),
                            });
                        }
                        not_skin |= truth;
                    }
                }
                let sa = strand_alpha[i];
                if sa > 0.0 {
                    let gloss = 1.0 + 0.5 * ((px * 0.7 + py * 0.3).sin() as f32).max(0.0);
                    let strand = [hair[0] * gloss, hair[1] * gloss, hair[2] * gloss];
                    layer = Some(match layer {
                        None => (strand, sa),
                        Some((c0, a0)) => (mix(c0, strand, sa), a0.max(sa)),
                    });
                    if sa >= 0.5 {
                        not_skin = true;
                    }
                }
                if not_skin {
                    mask.put_pixel(x, y, image::Luma([NOT_SKIN]));
                }
                if let Some(img) = img.as_deref_mut() {
                    if layer.is_none() && shade >= 1.0 {
                        continue;
                    }
                    let g = light.gain.map_or(0.9, |g| g[i]);
                    let p = img.get_pixel_mut(x, y);
                    let n = pixel_noise(self.seed, x, y);
                    for ch in 0..3 {
                        let under = f32::from(p[ch]) * shade;
                        let v = match layer {
                            Some((c, a)) => {
                                let over = light.level(c, g, ch) + n;
                                under + (over - under) * a
                            }
                            None => under,
                        };
                        p[ch] = v.clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }

    /// One head item at a skin point: (colour, alpha, is-not-skin, shade on the skin).
    fn sample_item(
        &self,
        item: &HeadItem,
        x: f64,
        y: f64,
        k: f64,
    ) -> Option<(Rgb, f32, bool, f32)> {
        let px_mm = 1.0 / k;
        match item {
            HeadItem::Room {
                c,
                axes,
                colours,
                seed,
            } => {
                let e = ((x - c[0]) / axes[0]).hypot((y - c[1]) / axes[1]);
                // Distance past the silhouette, roughly in mm.
                let d = (e - 1.0) * axes[0].min(axes[1]);
                if d < -4.0 {
                    return None;
                }
                // Skin curves away from the light toward the silhouette.
                let shade = 1.0 - 0.3 * smoothstep(-4.0, 0.0, d) as f32;
                let soft = (0.25f64).max(px_mm);
                let a = smoothstep(-soft, soft, d) as f32;
                let t = 0.5 + noise::fbm(*seed, x, y, 40.0, 2, 0.5) * 1.6;
                let col = mix(colours[0], colours[1], t.clamp(0.0, 1.0));
                Some((col, a, d > 0.0, shade))
            }
            HeadItem::Hair { c, r, flow_rad, .. } => {
                let d = r - (x - c[0]).hypot(y - c[1]);
                if d < -1.0 {
                    return None;
                }
                let along = x * flow_rad.cos() + y * flow_rad.sin();
                let across = -x * flow_rad.sin() + y * flow_rad.cos();
                let streak = noise::fbm(self.seed ^ 0x4A1, along * 0.15, across * 3.0, 1.0, 3, 0.6);
                let base = mix(
                    [
                        self.skin[0] * 0.45,
                        self.skin[1] * 0.45,
                        self.skin[2] * 0.45,
                    ],
                    self.hair,
                    0.75,
                );
                let col = mix(
                    base,
                    [base[0] * 1.8, base[1] * 1.8, base[2] * 1.8],
                    (streak + 0.5).clamp(0.0, 1.0) * 0.5,
                );
                let a = smoothstep(-0.3, 0.5, d) as f32;
                Some((
                    col,
                    a,
                    d > 0.0,
                    1.0 - 0.25 * smoothstep(-1.0, 0.0, d) as f32,
                ))
            }
            HeadItem::Cape { n, d, colour, seed } => {
                let along = -x * n[1] + y * n[0];
                let edge = d + 1.5 * (along * 0.15 + (*seed % 7) as f64).sin();
                let s = x * n[0] + y * n[1] - edge;
                if s < -2.0 {
                    return None;
                }
                let fold = 0.78
                    + 0.22 * ((along * 0.4 + s * 0.1).sin() as f32)
                    + noise::fbm(*seed, x, y, 6.0, 2, 0.5) * 0.2;
                let weave = 1.0 + 0.04 * (((x * 12.0).sin() * (y * 12.0).sin()) as f32);
                let col = [
                    colour[0] * fold * weave,
                    colour[1] * fold * weave,
                    colour[2] * fold * weave,
                ];
                let a = smoothstep(-0.2, 0.2, s) as f32;
                // The cape's edge shades the skin just above it.
                let shade = 1.0 - 0.35 * smoothstep(-2.0, 0.0, s) as f32;
                Some((col, a, s > 0.0, shade))
            }
            HeadItem::Ear { c, axes, angle } => {
                let (cs, sn) = (angle.cos(), angle.sin());
                let (dx, dy) = (x - c[0], y - c[1]);
                let (u, v) = (cs * dx + sn * dy, -sn * dx + cs * dy);
                let e = (u / axes[0]).hypot(v / axes[1]);
                let d = (1.0 - e) * axes[0].min(axes[1]);
                if d < -1.5 {
                    return None;
                }
                // Closer to the light than the scalp: brighter, and redder (thin, vascular
                // skin), with the
                // helix's fold as a soft darker band.
                let bright = 1.08 + 0.08 * (1.0 - e).max(0.0) as f32;
                let fold = 1.0 - 0.25 * (-((e - 0.8) / 0.06).powi(2)).exp() as f32;
                let col = [
                    (self.skin[0] * bright * 1.15 * fold).min(1.0),
                    self.skin[1] * bright * 0.85 * fold,
                    self.skin[2] * bright * 0.9 * fold,
                ];
                let a = smoothstep(-0.3, 0.3, d) as f32;
                // The crease where the ear meets the head is in shadow.
                let shade = 1.0 - 0.55 * (smoothstep(-1.5, 0.0, d) as f32);
                Some((col, a, d > 0.0, shade))
            }
            HeadItem::Smear {
                points,
                half_width,
                strength,
                seed,
            } => {
                let mut best = (f64::INFINITY, 0.0);
                for (i, seg) in points.windows(2).enumerate() {
                    let (dd, t) = seg_dist(x, y, seg[0][0], seg[0][1], seg[1][0], seg[1][1]);
                    if dd < best.0 {
                        best = (dd, i as f64 + t);
                    }
                }
                if best.0 > *half_width {
                    return None;
                }
                let streak = 0.7 + noise::fbm(*seed, best.1 * 4.0, best.0 * 3.0, 1.0, 2, 0.5);
                let edge = 1.0 - smoothstep(half_width * 0.5, *half_width, best.0) as f32;
                let a = (strength * edge * streak).clamp(0.0, 0.95);
                let ink = [0.10, 0.11, 0.16];
                Some((ink, a, a >= SMEAR_TRUTH_ALPHA, 1.0))
            }
            HeadItem::Pool { c, r } => {
                let d = (x - c[0]).hypot(y - c[1]);
                if d > *r {
                    return None;
                }
                let t = (d / r) as f32;
                let gloss = if (x - c[0] + 0.3 * r).hypot(y - c[1] + 0.3 * r) < 0.2 * r {
                    0.6
                } else {
                    0.0
                };
                let ink = [0.05 + gloss, 0.05 + gloss, 0.08 + gloss];
                let a = 1.0 - smoothstep(0.8, 1.0, f64::from(t)) as f32;
                Some((ink, a, true, 1.0))
            }
        }
    }

    /// Paints the hand (gloves, cartridge, needle, shadow) with the needle tip at `tip` (image
    /// px) into `img` (if given) and marks it in `mask`; `k` is px per mm at the skin.
    pub(crate) fn paint_hand(
        &self,
        mut img: Option<&mut RgbImage>,
        mask: &mut GrayImage,
        tip: (f64, f64),
        k: f64,
        light: &Light<'_>,
    ) {
        let Some(hand) = &self.hand else { return };
        let (w, h) = mask.dimensions();
        let (dx, dy) = (hand.machine_rad.cos(), hand.machine_rad.sin());
        let start = (
            tip.0 + dx * hand.needle_mm * k,
            tip.1 + dy * hand.needle_mm * k,
        );
        let far = 400.0 * k;
        let end = (start.0 + dx * far, start.1 + dy * far);
        let cart_hw = hand.cartridge_half_mm * k;
        let needle_hw = (0.15 * k).max(0.7);
        let shadow = (hand.shadow_mm[0] * k, hand.shadow_mm[1] * k);
        let fingers: Vec<Capsule> = hand
            .fingers
            .iter()
            .map(|&(off, ang, r)| {
                let c = (tip.0 + off[0] * k, tip.1 + off[1] * k);
                let far_c = (c.0 + ang.cos() * far, c.1 + ang.sin() * far);
                (c, far_c, r * k)
            })
            .collect();
        let (cart_col, translucent) = hand.cartridge;
        for y in 0..h {
            for x in 0..w {
                let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                let i = (y * w + x) as usize;
                let mut layer: Option<(Rgb, f32)> = None;
                let mut shade = 1.0f32;
                // Cartridge and needle shadows on the skin.
                let (ds, _) =
                    seg_dist(px - shadow.0, py - shadow.1, start.0, start.1, end.0, end.1);
                if ds < cart_hw {
                    shade *= 0.6;
                }
                let (dn_s, _) =
                    seg_dist(px - shadow.0, py - shadow.1, tip.0, tip.1, start.0, start.1);
                if dn_s < needle_hw * 1.5 {
                    shade *= 0.7;
                }
                for &(c, far_c, r) in &fingers {
                    let (d, t) = seg_dist(px, py, c.0, c.1, far_c.0, far_c.1);
                    if d < r + 1.5 * k && d >= r {
                        shade *= 0.75;
                    }
                    if d < r {
                        // Across the finger: a cylinder's shading and a specular line.
                        let ax = (far_c.0 - c.0, far_c.1 - c.1);
                        let len = ax.0.hypot(ax.1).max(1e-9);
                        let side = ((px - c.0) * -ax.1 + (py - c.1) * ax.0) / len / r;
                        let u = side.clamp(-1.0, 1.0) as f32;
                        let mut s = 0.5 + 0.5 * (1.0 - u * u).max(0.0).sqrt();
                        s += 0.35 * (-((u - 0.35) / 0.15).powi(2)).exp();
                        let along_mm = t * len / k;
                        let wr = noise::fbm(hand.seed, along_mm, side * 3.0, 1.0, 2, 0.5);
                        if along_mm < 14.0
                            && ((along_mm * 2.2 + f64::from(wr) * 6.0).sin()).abs() < 0.1
                        {
                            s *= 0.8;
                        }
                        let col = [hand.glove[0] * s, hand.glove[1] * s, hand.glove[2] * s];
                        layer = Some((col, 1.0));
                    }
                }
                let (dc, _) = seg_dist(px, py, start.0, start.1, end.0, end.1);
                if dc < cart_hw {
                    let u = (dc / cart_hw) as f32;
                    let s = 0.65
                        + 0.35 * (1.0 - u * u).sqrt()
                        + 0.3 * (-((u - 0.3) / 0.1).powi(2)).exp();
                    let col = [cart_col[0] * s, cart_col[1] * s, cart_col[2] * s];
                    let a = if translucent { TRANSLUCENT_ALPHA } else { 1.0 };
                    layer = Some(match layer {
                        Some((c0, _)) if translucent => (mix(c0, col, a), 1.0),
                        _ => (col, a),
                    });
                }
                let (dn, _) = seg_dist(px, py, tip.0, tip.1, start.0, start.1);
                if dn < needle_hw {
                    layer = Some(([0.62, 0.63, 0.66], 1.0));
                }
                if layer.is_some() {
                    mask.put_pixel(x, y, image::Luma([NOT_SKIN]));
                }
                if let Some(img) = img.as_deref_mut() {
                    if layer.is_none() && shade >= 1.0 {
                        continue;
                    }
                    let g = light.gain.map_or(0.9, |g| g[i]);
                    let p = img.get_pixel_mut(x, y);
                    let n = pixel_noise(self.seed ^ 0x4A4D, x, y);
                    for ch in 0..3 {
                        let under = f32::from(p[ch]) * shade;
                        let v = match layer {
                            Some((c, a)) => under + (light.level(c, g, ch) + n - under) * a,
                            None => under,
                        };
                        p[ch] = v.clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }

    /// Where a still frame puts the needle tip: a point of the central part of the frame.
    pub(crate) fn still_tip(&self, width: u32, height: u32) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x71B);
        (
            f64::from(width) * rng.gen_range(0.3..0.7),
            f64::from(height) * rng.gen_range(0.3..0.7),
        )
    }
}

/// Sensor noise of a painted pixel (8-bit levels), hashed so frames are reproducible.
fn pixel_noise(seed: u64, x: u32, y: u32) -> f32 {
    let h = noise::mix64(seed ^ (u64::from(x) << 32) ^ u64::from(y));
    let u = ((h >> 11) as f64 / (1u64 << 53) as f64) as f32;
    let v = ((h & 0x7FF) as f32 + 0.5) / 2048.0;
    // Sum of two uniforms, about unit-ish spread of 2.5 levels.
    (u + v - 1.0) * 4.0
}

/// Unit vector toward one side of the frame: 0 left, 1 right, 2 top, 3 bottom.
fn side_normal(side: usize) -> [f64; 2] {
    match side {
        0 => [-1.0, 0.0],
        1 => [1.0, 0.0],
        2 => [0.0, -1.0],
        _ => [0.0, 1.0],
    }
}

fn working_head(rng: &mut ChaCha8Rng, half: [f64; 2]) -> Vec<HeadItem> {
    let mut sides = [0usize, 1, 2, 3];
    for i in (1..4).rev() {
        let j = rng.gen_range(0..=i);
        sides.swap(i, j);
    }
    let count = [0usize, 1, 1, 1, 2, 2][rng.gen_range(0..6usize)];
    let mut items = Vec::new();
    for &side in &sides[..count] {
        let n = side_normal(side);
        let extent = if n[0] != 0.0 { half[0] } else { half[1] };
        // The item covers 8-22% of the frame along this direction.
        let cover = rng.gen_range(0.08..0.22);
        let d = extent * (1.0 - 2.0 * cover);
        let along = [-n[1], n[0]];
        let shift = rng.gen_range(-0.3..0.3) * if n[0] != 0.0 { half[1] } else { half[0] };
        match rng.gen_range(0..4u32) {
            0 => {
                let r = rng.gen_range(60.0..110.0);
                let c = [
                    n[0] * (d - r) + along[0] * shift,
                    n[1] * (d - r) + along[1] * shift,
                ];
                let a = rng.gen_range(0..ROOM.len());
                let b = rng.gen_range(0..ROOM.len());
                items.push(HeadItem::Room {
                    c,
                    axes: [r, r * rng.gen_range(1.0..1.3)],
                    colours: [ROOM[a], ROOM[b]],
                    seed: rng.gen(),
                });
            }
            1 => {
                let r = rng.gen_range(40.0..90.0);
                let c = [
                    n[0] * (d + r) + along[0] * shift,
                    n[1] * (d + r) + along[1] * shift,
                ];
                let flow = rng.gen_range(0.0..std::f64::consts::TAU);
                let strands = draw_strands(rng, c, r, flow, half);
                items.push(HeadItem::Hair {
                    c,
                    r,
                    flow_rad: flow,
                    strands,
                });
            }
            2 => items.push(HeadItem::Cape {
                n,
                d,
                colour: CAPES[rng.gen_range(0..CAPES.len())],
                seed: rng.gen(),
            }),
            _ => {
                let ax = rng.gen_range(12.0..20.0);
                let ay = rng.gen_range(22.0..32.0);
                let angle = if n[0] != 0.0 {
                    0.0
                } else {
                    std::f64::consts::FRAC_PI_2
                };
                let c = [
                    n[0] * (d + ax) + along[0] * shift,
                    n[1] * (d + ax) + along[1] * shift,
                ];
                items.push(HeadItem::Ear {
                    c,
                    axes: [ax, ay],
                    angle,
                });
            }
        }
    }
    for _ in 0..rng.gen_range(0..=2u32) {
        let x0 = rng.gen_range(-0.6..0.6) * half[0];
        let y0 = rng.gen_range(-0.6..0.6) * half[1];
        let ang: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
        let len = rng.gen_range(3.0..8.0);
        let bend = rng.gen_range(-0.4..0.4);
        let mid = [x0 + ang.cos() * len * 0.5, y0 + ang.sin() * len * 0.5];
        let end = [
            mid[0] + (ang + bend).cos() * len * 0.5,
            mid[1] + (ang + bend).sin() * len * 0.5,
        ];
        items.push(HeadItem::Smear {
            points: vec![[x0, y0], mid, end],
            half_width: rng.gen_range(0.6..1.5),
            strength: rng.gen_range(0.5..0.9),
            seed: rng.gen(),
        });
    }
    if rng.gen_bool(0.5) {
        items.push(HeadItem::Pool {
            c: [
                rng.gen_range(-0.5..0.5) * half[0],
                rng.gen_range(-0.5..0.5) * half[1],
            ],
            r: rng.gen_range(0.4..0.9),
        });
    }
    items
}

/// Strands of longer hair in and just past a hair mass, lying along a flow.
fn draw_strands(
    rng: &mut ChaCha8Rng,
    c: [f64; 2],
    r: f64,
    flow: f64,
    half: [f64; 2],
) -> Vec<Strand> {
    let mut out = Vec::new();
    // Strands only where the frame can see them (the frame and a margin, at any pose).
    let reach = half[0].hypot(half[1]) * 1.3;
    let n = 1800;
    for _ in 0..n {
        let x = rng.gen_range(-reach..reach);
        let y = rng.gen_range(-reach..reach);
        let d = r - (x - c[0]).hypot(y - c[1]);
        // Inside the mass, and up to 3 mm past its edge, thinning out.
        if d < -3.0 || (d < 0.0 && rng.gen_bool((-d / 3.0).clamp(0.0, 1.0))) || d > 8.0 {
            continue;
        }
        let ang =
            flow + 0.4 * (x * 0.08).sin() + 0.3 * (y * 0.11).cos() + rng.gen_range(-0.15..0.15);
        let len = rng.gen_range(1.0..10.0);
        out.push(Strand {
            a: [x, y],
            b: [x + ang.cos() * len, y + ang.sin() * len],
            half_width: rng.gen_range(0.03..0.05),
            shade: rng.gen_range(0.75..1.0),
        });
    }
    out
}

fn draw_hand(rng: &mut ChaCha8Rng) -> Hand {
    let machine_rad = rng.gen_range(0.0..std::f64::consts::TAU);
    let mut fingers = Vec::new();
    let count = if rng.gen_bool(0.6) { 1 } else { 2 };
    for i in 0..count {
        let side = if i == 0 { 1.0 } else { -1.0 };
        let off_ang = machine_rad + side * rng.gen_range(1.3..2.2);
        let dist = rng.gen_range(11.0..17.0);
        let r = rng.gen_range(6.5..8.5);
        fingers.push((
            [off_ang.cos() * dist, off_ang.sin() * dist],
            off_ang + rng.gen_range(-0.3..0.3),
            r,
        ));
    }
    Hand {
        machine_rad,
        needle_mm: rng.gen_range(1.5..3.0),
        cartridge_half_mm: rng.gen_range(4.0..5.5),
        cartridge: CARTRIDGES[rng.gen_range(0..CARTRIDGES.len())],
        shadow_mm: [rng.gen_range(-3.0..3.0), rng.gen_range(1.5..4.0)],
        glove: GLOVES[rng.gen_range(0..GLOVES.len())],
        fingers,
        seed: rng.gen(),
    }
}

fn whole_head(rng: &mut ChaCha8Rng, half: [f64; 2]) -> Vec<HeadItem> {
    let head = [rng.gen_range(70.0..82.0), rng.gen_range(88.0..100.0)];
    let c = [rng.gen_range(-10.0..10.0), rng.gen_range(-5.0..15.0)];
    let a = rng.gen_range(0..ROOM.len());
    let b = rng.gen_range(0..ROOM.len());
    let mut items = vec![HeadItem::Room {
        c,
        axes: head,
        colours: [ROOM[a], ROOM[b]],
        seed: rng.gen(),
    }];
    // Hair on both sides and the back of the head, leaving the thinning crown.
    for sx in [-1.0, 1.0] {
        let r = head[0] * 0.9;
        let hc = [c[0] + sx * head[0] * 1.25, c[1] + head[1] * 0.2];
        let flow = if sx < 0.0 { 1.9 } else { 1.2 };
        let strands = draw_strands(rng, hc, r, flow, half);
        items.push(HeadItem::Hair {
            c: hc,
            r,
            flow_rad: flow,
            strands,
        });
    }
    items.push(HeadItem::Cape {
        n: [0.0, 1.0],
        d: c[1] + head[1] * 0.85,
        colour: CAPES[rng.gen_range(0..CAPES.len())],
        seed: rng.gen(),
    });
    items
}
/// A finger as a capsule: from its tip centre to a far point, with its radius (image px).
type Capsule = ((f64, f64), (f64, f64), f64);

/// Part of the chair rendered once, to be laid over frames at any offset: the artist's hand
/// (gloves, cartridge, needle and their shadows; anchored at the needle tip, so the live demo
/// moves it with the simulated needle at the cost of a copy) or the head's surroundings
/// (anchored at the frame's corner, laid over each re-rendered plate). Each covered pixel keeps
/// `out = under * mul / 255 + add` (the renderer's over-compositing, `shade * (1 - alpha)` and
/// `colour * alpha`), and whether it hides the skin.
#[derive(Debug, Clone)]
pub struct ChairOverlay {
    /// Anchor (needle tip, or the frame's corner) in overlay pixels.
    tip: (i64, i64),
    /// Per overlay row: spans `(x0, x1, first)` of covered pixels, `first` indexing `pixels`.
    rows: Vec<Vec<(i64, i64, usize)>>,
    /// `[mul, r, g, b, hides]` per covered pixel.
    pixels: Vec<[u8; 5]>,
}

impl ChairOverlay {
    /// Renders `chair`'s hand for frames of `width` x `height` at `px_per_mm` under the camera's
    /// tint and veil (its gain varies over the frame and is left out: the hand moves);
    /// `None` when the chair has no hand.
    pub(crate) fn hand(
        chair: &Chair,
        width: u32,
        height: u32,
        px_per_mm: f64,
        camera: &Light<'_>,
    ) -> Option<Self> {
        chair.hand.as_ref()?;
        let (w, h) = (width.max(1) * 2, height.max(1) * 2);
        let tip = (f64::from(width), f64::from(height));
        let light = Light {
            gain: None,
            tint: camera.tint,
            veil: camera.veil,
        };
        Some(Self::from_painter(
            w,
            h,
            (i64::from(width), i64::from(height)),
            |img, mask| {
                chair.paint_hand(Some(img), mask, tip, px_per_mm, &light);
            },
        ))
    }

    /// Renders `chair`'s head items (room, hair, cape, ear, smears, pools) for a `width` x
    /// `height` frame seen through `pose`, anchored at the frame's corner.
    pub(crate) fn head(
        chair: &Chair,
        width: u32,
        height: u32,
        pose: &Pose,
        px_per_mm: f64,
        light: &Light<'_>,
    ) -> Self {
        Self::from_painter(width.max(1), height.max(1), (0, 0), |img, mask| {
            chair.paint_head(Some(img), mask, pose, px_per_mm, light);
        })
    }

    /// Paints twice, over black and over white, and keeps what the painter changed.
    fn from_painter(
        w: u32,
        h: u32,
        tip: (i64, i64),
        paint: impl Fn(&mut RgbImage, &mut GrayImage),
    ) -> Self {
        let mut black = RgbImage::new(w, h);
        let mut white = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
        let mut mask = GrayImage::new(w, h);
        paint(&mut black, &mut mask);
        paint(&mut white, &mut mask);
        let mut rows = Vec::with_capacity(h as usize);
        let mut pixels = Vec::new();
        for y in 0..h {
            let mut spans = Vec::new();
            let mut x = 0;
            let touched = |x: u32| {
                white.get_pixel(x, y).0 != [255, 255, 255]
                    || black.get_pixel(x, y).0 != [0; 3]
                    || mask.get_pixel(x, y)[0] != 0
            };
            while x < w {
                if !touched(x) {
                    x += 1;
                    continue;
                }
                let (x0, first) = (x, pixels.len());
                while x < w && touched(x) {
                    let (b, wh) = (black.get_pixel(x, y).0, white.get_pixel(x, y).0);
                    let mul = (0..3)
                        .map(|c| u16::from(wh[c].saturating_sub(b[c])))
                        .sum::<u16>()
                        / 3;
                    let hides = u8::from(mask.get_pixel(x, y)[0] != 0);
                    pixels.push([mul as u8, b[0], b[1], b[2], hides]);
                    x += 1;
                }
                spans.push((i64::from(x0), i64::from(x), first));
            }
            rows.push(spans);
        }
        Self { tip, rows, pixels }
    }

    /// Lays the overlay over `image` with its anchor at `tip` (image px); marks what it hides
    /// in `not_skin` (same size as `image`) when given.
    pub fn paint(&self, image: &mut RgbImage, tip: [f64; 2], mut not_skin: Option<&mut GrayImage>) {
        let (w, h) = (i64::from(image.width()), i64::from(image.height()));
        let dx = tip[0].round() as i64 - self.tip.0;
        let dy = tip[1].round() as i64 - self.tip.1;
        let stride = w as usize * 3;
        let raw: &mut [u8] = image;
        for (sy, spans) in self.rows.iter().enumerate() {
            let y = sy as i64 + dy;
            if y < 0 || y >= h {
                continue;
            }
            for &(x0, x1, first) in spans {
                let (a, b) = ((x0 + dx).max(0), (x1 + dx).min(w));
                if a >= b {
                    continue;
                }
                let row = y as usize * stride;
                let from = first + (a - dx - x0) as usize;
                let over = &self.pixels[from..from + (b - a) as usize];
                let under = &mut raw[row + a as usize * 3..row + b as usize * 3];
                for (q, p) in under.chunks_exact_mut(3).zip(over) {
                    if p[0] == 0 {
                        q.copy_from_slice(&p[1..4]);
                    } else {
                        for c in 0..3 {
                            let kept = u16::from(q[c]) * u16::from(p[0]) / 255;
                            q[c] = (kept + u16::from(p[1 + c])).min(255) as u8;
                        }
                    }
                }
                if let Some(m) = not_skin.as_deref_mut() {
                    for (x, p) in (a..b).zip(over) {
                        if p[4] != 0 {
                            m.put_pixel(x as u32, y as u32, image::Luma([NOT_SKIN]));
                        }
                    }
                }
            }
        }
    }

    /// Whether the overlay, anchored at `tip`, hides the image point (x, y).
    pub fn hides(&self, tip: [f64; 2], x: f64, y: f64) -> bool {
        let sx = x.floor() as i64 - (tip[0].round() as i64 - self.tip.0);
        let sy = y.floor() as i64 - (tip[1].round() as i64 - self.tip.1);
        if sy < 0 || sy as usize >= self.rows.len() {
            return false;
        }
        self.rows[sy as usize]
            .iter()
            .find(|s| (s.0..s.1).contains(&sx))
            .is_some_and(|s| self.pixels[s.2 + (sx - s.0) as usize][4] != 0)
    }
}
