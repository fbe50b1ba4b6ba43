//! The camera: what happens between the skin and the file. Uneven light and vignetting (a ring
//! light with dark corners for the dermoscope), specular glare, defocus (baked into the texture
//! once, see [`Camera::blur_sigma_px`]), sensor noise (Gaussian read noise plus shot noise),
//! a burned-in info bar on some dermoscope frames, and JPEG compression.
//!
//! A frame is one affine bilinear warp of the albedo texture plus per-pixel light, glare and noise,
//! so it renders in a few milliseconds in a release build.

use image::{ImageEncoder, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::warn;

use super::noise::{self, FastGauss};
use super::texture::{seg_dist, smoothstep, Rgb, Texture};
use super::truth::{NegativeKind, Shape, TruthNegative, View};
use super::Pose;

/// Defocus blur sigma range (px), rig.
const BLUR_SIGMA_PX: (f64, f64) = (0.3, 1.2);
/// Defocus blur sigma range (px), dermoscope: contact optics at 70x are soft.
const DERMO_BLUR_SIGMA_PX: (f64, f64) = (0.8, 2.4);
/// Read-noise sigma range (fraction of full scale).
const READ_NOISE: (f32, f32) = (0.006, 0.02);
/// Shot-noise factor range (sigma = factor * sqrt(signal)).
const SHOT_NOISE: (f32, f32) = (0.005, 0.02);
/// JPEG quality range for seeds that are compressed.
const JPEG_QUALITY: (u8, u8) = (70, 95);
/// Mean skin reflectance that auto-exposure aims for.
const AUTO_EXPOSURE_TARGET: f64 = 0.55;
/// Largest auto-exposure gain.
const AUTO_EXPOSURE_MAX: f64 = 1.45;
/// Horizontal bands a frame is rendered in; each has its own noise stream.
const RENDER_BANDS: u32 = 16;
/// Most threads one frame is rendered on.
const RENDER_THREADS: usize = 8;
/// Pixels darker than this light gain (dermoscope corners) hide what lies under them.
const MIN_VISIBLE_GAIN: f32 = 0.35;

/// Lateral chromatic aberration at the frame's corner (px of red/blue shift), dermoscope.
const DERMO_CHROMA_SHIFT_PX: (f64, f64) = (0.0, 3.0);
/// Extra blur at the frame's corner (sigma, px), dermoscope: field curvature of the lens.
const DERMO_EDGE_BLUR_PX: (f64, f64) = (0.0, 2.5);
/// Share of burned-in text bars that are light with dark text.
const LIGHT_BAR_P: f64 = 0.3;
/// Rig: share of scenes with a white-balance error or a coloured room light: a warm or cool
/// cast (red against blue) up to `RIG_CAST.0`, green against magenta up to `RIG_CAST.1`.
const RIG_CAST_P: f64 = 0.5;
/// See [`RIG_CAST_P`].
const RIG_CAST: (f32, f32) = (0.14, 0.05);
/// Rig: share of low-contrast scenes (veiling flare from a window or a scratched cover glass,
/// a flat tone curve), and how much of the frame's light the veil makes up.
const RIG_LOW_CONTRAST_P: f64 = 0.2;
/// See [`RIG_LOW_CONTRAST_P`].
const RIG_VEIL: (f32, f32) = (0.12, 0.35);

/// One specular highlight, in pixels of the frame (it moves with the light, not the skin).
#[derive(Debug, Clone)]
struct Glare {
    /// Core of the glare: a point or a streak; the glow reaches `r` beyond it.
    shape: Shape,
    /// Peak added brightness.
    strength: f32,
}

/// The burned-in text bar of a device photo.
#[derive(Debug, Clone)]
struct InfoBar {
    height_px: u32,
    shade: f32,
    /// Brightness of the text.
    ink: u8,
    /// Light rectangles: x0, y0, x1, y1 (px).
    glyphs: Vec<[u32; 4]>,
}

/// Everything about the camera of one scene; the per-pixel maps are for its frame size.
#[derive(Clone)]
pub(crate) struct Camera {
    w: u32,
    h: u32,
    /// Defocus sigma in pixels; the scene blurs its texture by this much once.
    pub(crate) blur_sigma_px: f64,
    /// Light gain per pixel: exposure, uneven light and vignetting.
    gain: Vec<f32>,
    /// White balance per channel.
    tint: Rgb,
    glare: Vec<Glare>,
    /// Added glare brightness per pixel.
    glare_map: Vec<f32>,
    read_noise: f32,
    shot_noise: f32,
    /// JPEG quality, or `None` to keep the frame lossless.
    pub(crate) jpeg_quality: Option<u8>,
    info_bar: Option<InfoBar>,
    /// Lens effects toward the edges of a dermoscope frame, if any.
    lens: Option<Lens>,
    /// Veiling flare: share of the light that is a flat veil, and the veil's level per channel
    /// (fraction of full scale); a low-contrast frame.
    veil: Option<(f32, Rgb)>,
    gauss: FastGauss,
}

/// Lens effects that grow toward the frame's edges: lateral chromatic aberration (red and blue
/// magnified differently) and field-curvature blur.
#[derive(Debug, Clone, Copy)]
struct Lens {
    /// Radial shift of red (outward) and blue (inward) at the corner (px).
    chroma_px: f64,
    /// Blur sigma at the corner (px).
    edge_blur_px: f64,
}

impl Camera {
    /// Draws the camera and light of a scene.
    /// `skin_lum` is the mean skin reflectance: auto-exposure lifts dark skin part of the way.
    /// `polarised` (dermoscope only) removes every surface glare.
    pub(crate) fn draw(
        rng: &mut ChaCha8Rng,
        view: View,
        w: u32,
        h: u32,
        skin_lum: f32,
        polarised: bool,
    ) -> Self {
        let auto = (AUTO_EXPOSURE_TARGET / skin_lum.max(0.05) as f64)
            .sqrt()
            .clamp(1.0, AUTO_EXPOSURE_MAX);
        let blur_sigma_px = match view {
            View::Rig => rng.gen_range(BLUR_SIGMA_PX.0..BLUR_SIGMA_PX.1),
            View::Dermoscope => rng.gen_range(DERMO_BLUR_SIGMA_PX.0..DERMO_BLUR_SIGMA_PX.1),
        };
        let read_noise = rng.gen_range(READ_NOISE.0..READ_NOISE.1);
        let shot_noise = rng.gen_range(SHOT_NOISE.0..SHOT_NOISE.1);
        let jpeg_quality = match view {
            View::Rig => rng.gen_bool(0.5),
            View::Dermoscope => rng.gen_bool(0.8),
        }
        .then(|| rng.gen_range(JPEG_QUALITY.0..=JPEG_QUALITY.1));
        let wb = match view {
            View::Rig => 0.05,
            View::Dermoscope => 0.09,
        };
        let t = rng.gen_range(-wb..wb);
        let tint = [1.0 + t, 1.0 + rng.gen_range(-0.02..0.02), 1.0 - t];
        let light_seed: u64 = rng.gen();
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        let half_diag = cx.hypot(cy);
        let mut gain = vec![0.0f32; (w * h) as usize];
        match view {
            View::Rig => {
                let exposure = auto * rng.gen_range(0.9..1.1);
                let ga: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
                let gs = rng.gen_range(0.05..0.22);
                let vig = rng.gen_range(0.12..0.4);
                let blotch = rng.gen_range(0.03..0.1);
                for y in 0..h {
                    for x in 0..w {
                        let (dx, dy) = (
                            (x as f64 + 0.5 - cx) / half_diag,
                            (y as f64 + 0.5 - cy) / half_diag,
                        );
                        let r2 = dx * dx + dy * dy;
                        let grad = 1.0 + gs * (dx * ga.cos() + dy * ga.sin());
                        let uneven =
                            1.0 + blotch * 2.0 * noise::fbm(light_seed, dx, dy, 0.6, 2, 0.5) as f64;
                        let v = (1.0 - vig * r2).powi(2);
                        gain[(y * w + x) as usize] = (exposure * grad * uneven * v) as f32;
                    }
                }
            }
            View::Dermoscope => {
                let exposure = auto * rng.gen_range(0.95..1.12);
                let centre = rng.gen_range(0.1..0.3);
                let ring = rng.gen_range(0.82..1.08);
                let soft = rng.gen_range(0.1..0.22);
                let (ox, oy) = (rng.gen_range(-0.05..0.05), rng.gen_range(-0.05..0.05));
                for y in 0..h {
                    for x in 0..w {
                        let (dx, dy) = (
                            (x as f64 + 0.5 - cx) / half_diag - ox,
                            (y as f64 + 0.5 - cy) / half_diag - oy,
                        );
                        let r = dx.hypot(dy);
                        let bright = 1.0 + centre * (1.0 - r * r * 1.6);
                        let edge = 1.0 - smoothstep(ring - soft, ring + soft * 0.4, r);
                        let uneven =
                            1.0 + 0.06 * noise::fbm(light_seed, dx, dy, 0.5, 2, 0.5) as f64;
                        gain[(y * w + x) as usize] = (exposure * bright * uneven * edge) as f32;
                    }
                }
            }
        }
        let mut glare = draw_glare(rng, view, w, h);
        // Dermoscope-only choices come from their own stream, so the rig view's draws stay
        // exactly as they were.
        let mut derm = ChaCha8Rng::seed_from_u64(light_seed ^ 0xDE57_C09E);
        let lens = (view == View::Dermoscope).then(|| Lens {
            chroma_px: derm.gen_range(DERMO_CHROMA_SHIFT_PX.0..DERMO_CHROMA_SHIFT_PX.1),
            edge_blur_px: derm.gen_range(DERMO_EDGE_BLUR_PX.0..DERMO_EDGE_BLUR_PX.1),
        });
        if view == View::Dermoscope && polarised {
            glare.clear();
        }
        // Rig colour casts and low contrast come from their own stream too, for the same reason.
        let mut look = ChaCha8Rng::seed_from_u64(light_seed ^ 0x10C0_57A7);
        let mut tint = tint;
        let mut veil = None;
        if view == View::Rig {
            if look.gen_bool(RIG_CAST_P) {
                let warm = look.gen_range(-RIG_CAST.0..RIG_CAST.0);
                let green = look.gen_range(-RIG_CAST.1..RIG_CAST.1);
                tint = [
                    tint[0] * (1.0 + warm),
                    tint[1] * (1.0 + green),
                    tint[2] * (1.0 - warm),
                ];
            }
            if look.gen_bool(RIG_LOW_CONTRAST_P) {
                let share = look.gen_range(RIG_VEIL.0..RIG_VEIL.1);
                let level = look.gen_range(0.45..0.8);
                let hue = look.gen_range(-0.04..0.04);
                veil = Some((share, [level * (1.0 + hue), level, level * (1.0 - hue)]));
            }
        }
        let mut glare_map = vec![0.0f32; (w * h) as usize];
        for (k, g) in glare.iter().enumerate() {
            paint_glare(&mut glare_map, w, h, g, light_seed ^ k as u64);
        }
        let mut info_bar =
            (view == View::Dermoscope && rng.gen_bool(0.35)).then(|| draw_info_bar(rng, w, h));
        if let Some(bar) = info_bar.as_mut() {
            if derm.gen_bool(LIGHT_BAR_P) {
                bar.shade = derm.gen_range(0.82..0.97);
                bar.ink = derm.gen_range(10..60);
            }
        }
        Self {
            w,
            h,
            blur_sigma_px,
            gain,
            tint,
            glare,
            glare_map,
            read_noise,
            shot_noise,
            jpeg_quality,
            info_bar,
            lens,
            veil,
            gauss: FastGauss::new(light_seed ^ 0x6A05),
        }
    }

    /// Whether a glare lies over the disc (x, y, r) in pixels (at the identity pose).
    pub(crate) fn glare_covers(&self, x: f64, y: f64, r: f64) -> bool {
        self.glare.iter().any(|g| g.shape.distance(x, y) < r + 2.0)
    }

    /// Whether something at pixel (x, y) can be seen at all: not under the info bar, not in the
    /// black corners of a dermoscope.
    pub(crate) fn visible(&self, x: f64, y: f64) -> bool {
        if x < 0.0 || y < 0.0 || x >= self.w as f64 || y >= self.h as f64 {
            return false;
        }
        if let Some(bar) = &self.info_bar {
            if y < bar.height_px as f64 + 2.0 {
                return false;
            }
        }
        self.gain[(y as u32 * self.w + x as u32) as usize] >= MIN_VISIBLE_GAIN
    }

    /// The glare negatives, in pixels.
    pub(crate) fn glare_truth(&self) -> Vec<TruthNegative> {
        self.glare
            .iter()
            .map(|g| TruthNegative {
                kind: NegativeKind::Glare,
                shape: g.shape.clone(),
            })
            .collect()
    }

    /// The light of this camera's frames, for what is painted over them.
    pub(crate) fn light(&self) -> super::chair::Light<'_> {
        super::chair::Light {
            gain: Some(&self.gain),
            tint: self.tint,
            veil: self.veil_terms(),
        }
    }

    /// The veil as the share of the scene's light kept and the level added per channel.
    fn veil_terms(&self) -> (f32, Rgb) {
        match self.veil {
            Some((share, level)) => (1.0 - share, level.map(|v| v * share)),
            None => (1.0, [0.0; 3]),
        }
    }

    /// Renders one frame of the texture through `pose`: light and sensor only; the lens, the
    /// text bar and JPEG come in [`Camera::finish`].
    pub(crate) fn render(&self, tex: &Texture, pose: &Pose, ppm: f64, noise_seed: u64) -> RgbImage {
        let (w, h) = (self.w, self.h);
        let k = pose.scale * ppm;
        let (c, s) = (pose.angle_rad.cos(), pose.angle_rad.sin());
        // texel = tex_ppm * (d + R(-angle) * (img - centre) / k - origin)
        let q = tex.px_per_mm / k;
        let (a00, a01, a10, a11) = (q * c, q * s, -q * s, q * c);
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        let b0 = tex.px_per_mm * (pose.dx_mm - tex.origin_mm[0]) - a00 * cx - a01 * cy;
        let b1 = tex.px_per_mm * (pose.dy_mm - tex.origin_mm[1]) - a10 * cx - a11 * cy;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let (rn2, sn2) = (
            self.read_noise * self.read_noise,
            self.shot_noise * self.shot_noise,
        );
        // Noise sigma (in 8-bit levels) per mean signal level: no square root per pixel.
        let sd_lut: [f32; 256] =
            std::array::from_fn(|i| (rn2 + sn2 * i as f32 / 255.0).sqrt() * 255.0);
        // Fixed bands, each with its own noise stream, so the bytes do not depend on how many
        // threads render them.
        let band_rows = h.div_ceil(RENDER_BANDS).max(1) as usize;
        let row_bytes = w as usize * 3;
        let render_band = |band: usize, out: &mut [u8]| {
            let mut gauss = self.gauss.clone();
            gauss.reseed(noise_seed ^ noise::mix64(band as u64));
            let y0 = band * band_rows;
            for (ry, line) in out.chunks_mut(row_bytes).enumerate() {
                let y = y0 + ry;
                let py = y as f64 + 0.5;
                let u = a00 * 0.5 + a01 * py + b0;
                let v = a10 * 0.5 + a11 * py + b1;
                let row = y * w as usize;
                let gains = &self.gain[row..row + w as usize];
                let glares = &self.glare_map[row..row + w as usize];
                // 16.16 fixed point on the texel-centre grid.
                const ONE: f64 = 65536.0;
                let (mut u_fp, mut v_fp) = (((u - 0.5) * ONE) as i64, ((v - 0.5) * ONE) as i64);
                let (du_fp, dv_fp) = ((a00 * ONE) as i64, (a10 * ONE) as i64);
                let tint = self.tint;
                let (keep, veil) = self.veil_terms();
                for ((px, &g), &gl) in line.chunks_exact_mut(3).zip(gains).zip(glares) {
                    let alb = tex.sample_fixed(u_fp, v_fp);
                    u_fp += du_fp;
                    v_fp += dv_fp;
                    let val = [
                        (alb[0] * g * tint[0]) * keep + veil[0] + gl,
                        (alb[1] * g * tint[1]) * keep + veil[1] + gl,
                        (alb[2] * g * tint[2]) * keep + veil[2] + gl,
                    ];
                    // One noise level per pixel, from its mean signal.
                    let mean = (val[0] + val[1] + val[2]) * (255.0 / 3.0);
                    let sd = sd_lut[(mean.clamp(0.0, 255.0)) as usize];
                    let n = gauss.next3();
                    for ch in 0..3 {
                        let q = val[ch] * 255.0 + sd * n[ch] + 0.5;
                        px[ch] = q.clamp(0.0, 255.0) as u8;
                    }
                }
            }
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(RENDER_THREADS);
        let bands: Vec<(usize, &mut [u8])> =
            buf.chunks_mut(band_rows * row_bytes).enumerate().collect();
        if threads <= 1 {
            for (i, out) in bands {
                render_band(i, out);
            }
        } else {
            let mut per_thread: Vec<Vec<(usize, &mut [u8])>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (k, b) in bands.into_iter().enumerate() {
                per_thread[k % threads].push(b);
            }
            std::thread::scope(|sc| {
                for work in per_thread {
                    let render_band = &render_band;
                    sc.spawn(move || {
                        for (i, out) in work {
                            render_band(i, out);
                        }
                    });
                }
            });
        }
        RgbImage::from_raw(w, h, buf).unwrap_or_else(|| RgbImage::new(w, h))
    }

    /// The optics and encoding after the sensor: lens effects, the text bar, JPEG.
    pub(crate) fn finish(&self, mut img: RgbImage) -> RgbImage {
        if let Some(lens) = self.lens {
            apply_lens(&mut img, lens);
        }
        if let Some(bar) = &self.info_bar {
            draw_bar(&mut img, bar);
        }
        if let Some(q) = self.jpeg_quality {
            img = jpeg_round_trip(img, q);
        }
        img
    }
}

/// Encodes and decodes a frame as JPEG in memory; on failure keeps the frame as it was.
fn jpeg_round_trip(img: RgbImage, quality: u8) -> RgbImage {
    let mut bytes = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    if let Err(err) = enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    ) {
        warn!(cause = %err, "jpeg encode failed; frame kept lossless");
        return img;
    }
    match image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg) {
        Ok(d) => d.to_rgb8(),
        Err(err) => {
            warn!(cause = %err, "jpeg decode failed; frame kept lossless");
            img
        }
    }
}

fn draw_glare(rng: &mut ChaCha8Rng, view: View, w: u32, h: u32) -> Vec<Glare> {
    let mut out = Vec::new();
    let (p, n_max, r_px, strength) = match view {
        View::Rig => (0.55, 3, (25.0, 90.0), (0.12, 0.35)),
        View::Dermoscope => (0.7, 9, (5.0, 26.0), (0.35, 0.9)),
    };
    if !rng.gen_bool(p) {
        return out;
    }
    let n = rng.gen_range(1..=n_max);
    for _ in 0..n {
        let x = rng.gen_range(0.1..0.9) * w as f64;
        let y = rng.gen_range(0.1..0.9) * h as f64;
        let r = rng.gen_range(r_px.0..r_px.1);
        let streak_p = match view {
            View::Rig => 0.35,
            View::Dermoscope => 0.1,
        };
        let shape = if rng.gen_bool(streak_p) {
            let a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            let len = r * rng.gen_range(2.0..6.0);
            Shape::Band {
                points: vec![[x, y], [x + a.cos() * len, y + a.sin() * len]],
                half_width: r,
            }
        } else {
            Shape::Circle { x, y, r }
        };
        out.push(Glare {
            shape,
            strength: rng.gen_range(strength.0..strength.1),
        });
    }
    out
}

fn paint_glare(map: &mut [f32], w: u32, h: u32, g: &Glare, seed: u64) {
    let (core, reach) = match &g.shape {
        Shape::Circle { x, y, r } => (vec![[*x, *y], [*x, *y]], *r),
        Shape::Band { points, half_width } => (points.clone(), *half_width),
    };
    let (mut lx, mut ly, mut hx, mut hy) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in &core {
        lx = lx.min(p[0] - reach);
        ly = ly.min(p[1] - reach);
        hx = hx.max(p[0] + reach);
        hy = hy.max(p[1] + reach);
    }
    let x0 = lx.max(0.0) as u32;
    let y0 = ly.max(0.0) as u32;
    let x1 = (hx.max(0.0) as u32).min(w);
    let y1 = (hy.max(0.0) as u32).min(h);
    let (a, b) = (core[0], core[1]);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let (d, t) = seg_dist(px, py, a[0], a[1], b[0], b[1]);
            // Streaks taper toward their ends; the sheen is broken up by the skin's relief.
            let taper = if a == b {
                1.0
            } else {
                0.35 + 0.65 * (std::f64::consts::PI * t).sin()
            };
            let r = d / (reach * taper);
            if r < 1.0 {
                let rough = 0.55
                    + 0.9 * noise::value(seed, px / (0.25 * reach), py / (0.25 * reach)) as f64;
                let v = (-(r * r) * 3.0).exp() * (1.0 - r * r) * rough;
                map[(y * w + x) as usize] += g.strength * v as f32;
            }
        }
    }
}

fn draw_info_bar(rng: &mut ChaCha8Rng, w: u32, h: u32) -> InfoBar {
    let height_px = ((h as f64) * rng.gen_range(0.035..0.06)) as u32;
    let glyph_h = (height_px as f64 * rng.gen_range(0.45..0.6)) as u32;
    let cell = (glyph_h as f64 * 0.65).max(3.0) as u32;
    let top = (height_px - glyph_h) / 2;
    let mut glyphs = Vec::new();
    let mut x = rng.gen_range(8..30);
    while x + cell < w - 10 {
        let word = rng.gen_range(2..10);
        for _ in 0..word {
            if x + cell >= w - 10 {
                break;
            }
            // A 3x5 block glyph: a few lit cells.
            let (cw, ch) = (cell.max(3) / 3, glyph_h.max(5) / 5);
            for gy in 0..5 {
                for gx in 0..3 {
                    if rng.gen_bool(0.55) {
                        glyphs.push([
                            x + gx * cw,
                            top + gy * ch,
                            x + (gx + 1) * cw,
                            top + (gy + 1) * ch,
                        ]);
                    }
                }
            }
            x += cell + cell / 3;
        }
        x += cell * rng.gen_range(1..4);
        if rng.gen_bool(0.15) {
            x += w / 5;
        }
    }
    InfoBar {
        height_px,
        shade: rng.gen_range(0.02..0.15),
        ink: 235,
        glyphs,
    }
}

fn draw_bar(img: &mut RgbImage, bar: &InfoBar) {
    let v = (bar.shade * 255.0) as u8;
    for y in 0..bar.height_px.min(img.height()) {
        for x in 0..img.width() {
            img.put_pixel(x, y, image::Rgb([v, v, v]));
        }
    }
    for g in &bar.glyphs {
        for y in g[1]..g[3].min(bar.height_px) {
            for x in g[0]..g[2].min(img.width()) {
                img.put_pixel(x, y, image::Rgb([bar.ink, bar.ink, bar.ink]));
            }
        }
    }
}

/// Applies the lens's edge effects in place: red sampled slightly inward and blue slightly
/// outward of each pixel (so red fringes fall outward, blue inward), and a blur that grows with
/// the squared distance from the centre.
fn apply_lens(img: &mut RgbImage, lens: Lens) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 4 || h < 4 {
        return;
    }
    let src: Vec<[f32; 3]> = img
        .pixels()
        .map(|p| [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])])
        .collect();
    let mut blurred = src.clone();
    super::texture::blur_rgb(&mut blurred, w, h, lens.edge_blur_px.max(0.0));
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let r_corner2 = cx * cx + cy * cy;
    let sample = |buf: &[[f32; 3]], x: f64, y: f64, ch: usize| -> f32 {
        let x = x.clamp(0.0, (w - 1) as f64);
        let y = y.clamp(0.0, (h - 1) as f64);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let top = buf[y0 * w + x0][ch] * (1.0 - fx) + buf[y0 * w + x1][ch] * fx;
        let bot = buf[y1 * w + x0][ch] * (1.0 - fx) + buf[y1 * w + x1][ch] * fx;
        top * (1.0 - fy) + bot * fy
    };
    let k = lens.chroma_px / r_corner2.sqrt();
    for (i, px) in img.pixels_mut().enumerate() {
        let (x, y) = ((i % w) as f64, (i / w) as f64);
        let (dx, dy) = (x - cx, y - cy);
        let r2 = (dx * dx + dy * dy) / r_corner2;
        let b = r2 as f32;
        let mixed = |ch: usize, sx: f64, sy: f64| {
            let sharp = sample(&src, sx, sy, ch);
            let soft = sample(&blurred, sx, sy, ch);
            sharp + (soft - sharp) * b
        };
        // The shift grows linearly with the radius (dx * k is k * r along the radius).
        let r = mixed(0, x - dx * k, y - dy * k);
        let g = mixed(1, x, y);
        let bl = mixed(2, x + dx * k, y + dy * k);
        *px = image::Rgb([
            (r + 0.5).clamp(0.0, 255.0) as u8,
            (g + 0.5).clamp(0.0, 255.0) as u8,
            (bl + 0.5).clamp(0.0, 255.0) as u8,
        ]);
    }
}
