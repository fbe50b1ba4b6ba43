//! The skin albedo texture: an RGB float image laid over skin millimetres, painted once when a
//! scene is generated and sampled (bilinearly, through the view pose) for every frame.

/// Linear RGB triple in `0..=1` (values are reflectances, not gamma encoded pixels).
pub(crate) type Rgb = [f32; 3];

/// An RGB float texture covering a rectangle of skin.
///
/// Texel `(i, j)` has its centre at skin `origin_mm + ((i + 0.5), (j + 0.5)) / px_per_mm`.
#[derive(Debug, Clone)]
pub(crate) struct Texture {
    /// Width in texels.
    pub(crate) w: usize,
    /// Height in texels.
    pub(crate) h: usize,
    /// Skin position of the top-left corner of texel (0, 0), mm.
    pub(crate) origin_mm: [f64; 2],
    /// Texels per skin millimetre.
    pub(crate) px_per_mm: f64,
    /// Row-major texels.
    pub(crate) data: Vec<Rgb>,
    /// The same texels packed to 8 bits for rendering: a third of the memory traffic of
    /// `data`, which dominates a frame. Refreshed by [`Texture::pack`] and [`Texture::pack_rect`].
    packed: Vec<[u8; 4]>,
}

impl Texture {
    /// A texture of `w` x `h` texels filled with `fill`.
    pub(crate) fn new(w: usize, h: usize, origin_mm: [f64; 2], px_per_mm: f64, fill: Rgb) -> Self {
        Self {
            w,
            h,
            origin_mm,
            px_per_mm,
            data: vec![fill; w * h],
            packed: vec![to_u8(fill); w * h],
        }
    }

    /// Skin position (mm) of the centre of texel `(i, j)`.
    #[inline]
    pub(crate) fn mm_of(&self, i: usize, j: usize) -> (f64, f64) {
        (
            self.origin_mm[0] + (i as f64 + 0.5) / self.px_per_mm,
            self.origin_mm[1] + (j as f64 + 0.5) / self.px_per_mm,
        )
    }

    /// Continuous texel coordinates of a skin point (texel `i` spans `i..i+1`).
    #[inline]
    pub(crate) fn texel_of(&self, x_mm: f64, y_mm: f64) -> (f64, f64) {
        (
            (x_mm - self.origin_mm[0]) * self.px_per_mm,
            (y_mm - self.origin_mm[1]) * self.px_per_mm,
        )
    }

    /// Calls `f(x_mm, y_mm, texel)` for every texel whose centre lies in the skin rectangle
    /// `[x0, x1] x [y0, y1]` (mm), clipped to the texture.
    pub(crate) fn for_each_in(
        &mut self,
        x0_mm: f64,
        y0_mm: f64,
        x1_mm: f64,
        y1_mm: f64,
        mut f: impl FnMut(f64, f64, &mut Rgb),
    ) {
        let (u0, v0) = self.texel_of(x0_mm, y0_mm);
        let (u1, v1) = self.texel_of(x1_mm, y1_mm);
        let i0 = (u0.floor().max(0.0) as usize).min(self.w);
        let j0 = (v0.floor().max(0.0) as usize).min(self.h);
        let i1 = ((u1.ceil().max(0.0)) as usize).min(self.w);
        let j1 = ((v1.ceil().max(0.0)) as usize).min(self.h);
        for j in j0..j1 {
            for i in i0..i1 {
                let (x, y) = self.mm_of(i, j);
                f(x, y, &mut self.data[j * self.w + i]);
            }
        }
    }

    /// Refreshes the whole packed copy from `data`.
    pub(crate) fn pack(&mut self) {
        for (p, c) in self.packed.iter_mut().zip(&self.data) {
            *p = to_u8(*c);
        }
    }

    /// Refreshes the packed copy over a skin rectangle (mm), after painting there.
    pub(crate) fn pack_rect(&mut self, x0_mm: f64, y0_mm: f64, x1_mm: f64, y1_mm: f64) {
        let (u0, v0) = self.texel_of(x0_mm, y0_mm);
        let (u1, v1) = self.texel_of(x1_mm, y1_mm);
        let i0 = (u0.floor().max(0.0) as usize).min(self.w);
        let j0 = (v0.floor().max(0.0) as usize).min(self.h);
        let i1 = (u1.ceil().max(0.0) as usize).min(self.w);
        let j1 = (v1.ceil().max(0.0) as usize).min(self.h);
        for j in j0..j1 {
            for i in i0..i1 {
                self.packed[j * self.w + i] = to_u8(self.data[j * self.w + i]);
            }
        }
    }

    /// Bilinear sample of the packed copy at 16.16 fixed-point texel coordinates of the texel
    /// grid (texel centres at integers), in integer arithmetic; clamped to the edge. This is the
    /// per-pixel hot path of a frame.
    #[inline]
    pub(crate) fn sample_fixed(&self, u_fp: i64, v_fp: i64) -> Rgb {
        let (w, h) = (self.w as i64, self.h as i64);
        let (mut xi, mut yi) = (u_fp >> 16, v_fp >> 16);
        let mut fx = ((u_fp >> 8) & 0xFF) as u32;
        let mut fy = ((v_fp >> 8) & 0xFF) as u32;
        if xi < 0 || xi >= w - 1 {
            xi = xi.clamp(0, w - 2);
            fx = if u_fp < 0 { 0 } else { 256 };
        }
        if yi < 0 || yi >= h - 1 {
            yi = yi.clamp(0, h - 2);
            fy = if v_fp < 0 { 0 } else { 256 };
        }
        let i = (yi * w + xi) as usize;
        let (a, b) = (self.packed[i], self.packed[i + 1]);
        let (c, d) = (self.packed[i + self.w], self.packed[i + self.w + 1]);
        let (gx, gy) = (256 - fx, 256 - fy);
        let mut out = [0.0; 3];
        for k in 0..3 {
            let top = a[k] as u32 * gx + b[k] as u32 * fx;
            let bottom = c[k] as u32 * gx + d[k] as u32 * fx;
            out[k] = (top * gy + bottom * fy) as f32 * (1.0 / (65536.0 * 255.0));
        }
        out
    }

    /// Separable Gaussian blur in place (defocus), `sigma` in texels; no-op below 0.05.
    pub(crate) fn blur(&mut self, sigma: f64) {
        blur_rgb(&mut self.data, self.w, self.h, sigma);
    }
}

/// Separable Gaussian blur of an interleaved RGB float buffer, edges clamped.
pub(crate) fn blur_rgb(data: &mut [Rgb], w: usize, h: usize, sigma: f64) {
    if sigma < 0.05 || w == 0 || h == 0 {
        return;
    }
    let radius = (sigma * 3.0).ceil() as isize;
    let mut kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    let mut line = vec![[0.0f32; 3]; w.max(h)];
    for j in 0..h {
        let row = &mut data[j * w..(j + 1) * w];
        line[..w].copy_from_slice(row);
        for (i, out) in row.iter_mut().enumerate() {
            let mut acc = [0.0f32; 3];
            for (t, k) in kernel.iter().enumerate() {
                let s = (i as isize + t as isize - radius).clamp(0, w as isize - 1) as usize;
                let p = line[s];
                acc[0] += k * p[0];
                acc[1] += k * p[1];
                acc[2] += k * p[2];
            }
            *out = acc;
        }
    }
    for i in 0..w {
        for j in 0..h {
            line[j] = data[j * w + i];
        }
        for j in 0..h {
            let mut acc = [0.0f32; 3];
            for (t, k) in kernel.iter().enumerate() {
                let s = (j as isize + t as isize - radius).clamp(0, h as isize - 1) as usize;
                let p = line[s];
                acc[0] += k * p[0];
                acc[1] += k * p[1];
                acc[2] += k * p[2];
            }
            data[j * w + i] = acc;
        }
    }
}

/// Packs a reflectance to 8 bits per channel.
#[inline]
fn to_u8(c: Rgb) -> [u8; 4] {
    let q = |v: f32| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
    [q(c[0]), q(c[1]), q(c[2]), 255]
}

/// `a + (b - a) * t` per channel.
#[inline]
pub(crate) fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Hermite smoothstep of `x` between `e0` and `e1`.
#[inline]
pub(crate) fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Distance from point `p` to segment `a`-`b`, and the parameter `t` in `0..=1` of the nearest point.
#[inline]
pub(crate) fn seg_dist(px: f64, py: f64, ax: f64, ay: f64, bx: f64, by: f64) -> (f64, f64) {
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((px - ax - t * dx).hypot(py - ay - t * dy), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texel_round_trip() {
        let t = Texture::new(10, 10, [-1.0, -2.0], 5.0, [0.5; 3]);
        let (x, y) = t.mm_of(3, 4);
        let (u, v) = t.texel_of(x, y);
        assert!((u - 3.5).abs() < 1e-9 && (v - 4.5).abs() < 1e-9);
    }

    #[test]
    fn blur_keeps_constant_images() {
        let mut data = vec![[0.3f32, 0.4, 0.5]; 64];
        blur_rgb(&mut data, 8, 8, 1.0);
        assert!(data.iter().all(|p| (p[0] - 0.3).abs() < 1e-5));
    }
}
