//! Small image kernels on `f32` planes that the detector runs every frame.
//!
//! Each kernel takes its source and a caller-owned destination so that the detector allocates
//! its buffers once and reuses them frame after frame.

use image::RgbImage;

/// A single-channel `f32` image, row-major.
#[derive(Debug, Clone, Default)]
pub struct Plane {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` values, row-major.
    pub data: Vec<f32>,
}

impl Plane {
    /// Resizes (reusing the allocation) to `width` x `height`; contents are unspecified.
    pub fn resize(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.data.resize(width * height, 0.0);
    }

    /// The value at (x, y).
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }
}

/// Luminance (Rec. 601 weights, 0..255) of `src` into `dst`.
pub fn luminance(src: &RgbImage, dst: &mut Plane) {
    let (w, h) = (src.width() as usize, src.height() as usize);
    dst.resize(w, h);
    for (out, px) in dst.data.iter_mut().zip(src.as_raw().chunks_exact(3)) {
        *out = 0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]);
    }
}

/// Mean over the (2r+1)x(2r+1) box around each pixel, clipped at the borders (the mean is over
/// the pixels that exist). Separable running sums: O(1) per pixel whatever `r`.
///
/// `tmp` (the horizontal pass) and `col` (running column sums) are scratch, resized as needed.
pub fn box_mean(src: &Plane, dst: &mut Plane, tmp: &mut Plane, col: &mut Vec<f64>, r: usize) {
    let (w, h) = (src.width, src.height);
    dst.resize(w, h);
    tmp.resize(w, h);
    if w == 0 || h == 0 {
        return;
    }
    for y in 0..h {
        let row = &src.data[y * w..(y + 1) * w];
        let out = &mut tmp.data[y * w..(y + 1) * w];
        let mut sum: f64 = row[..=r.min(w - 1)].iter().map(|&v| f64::from(v)).sum();
        for x in 0..w {
            let n = ((x + r).min(w - 1) - x.saturating_sub(r) + 1) as f64;
            out[x] = (sum / n) as f32;
            if x + r + 1 < w {
                sum += f64::from(row[x + r + 1]);
            }
            if x >= r {
                sum -= f64::from(row[x - r]);
            }
        }
    }
    col.clear();
    col.resize(w, 0.0);
    for y in 0..=r.min(h - 1) {
        for (c, v) in col.iter_mut().zip(&tmp.data[y * w..(y + 1) * w]) {
            *c += f64::from(*v);
        }
    }
    for y in 0..h {
        let n = ((y + r).min(h - 1) - y.saturating_sub(r) + 1) as f64;
        let inv = 1.0 / n;
        for (o, c) in dst.data[y * w..(y + 1) * w].iter_mut().zip(col.iter()) {
            *o = (c * inv) as f32;
        }
        if y + r + 1 < h {
            let add = y + r + 1;
            for (c, v) in col.iter_mut().zip(&tmp.data[add * w..(add + 1) * w]) {
                *c += f64::from(*v);
            }
        }
        if y >= r {
            let sub = y - r;
            for (c, v) in col.iter_mut().zip(&tmp.data[sub * w..(sub + 1) * w]) {
                *c -= f64::from(*v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(src: &Plane, r: usize) -> Vec<f32> {
        let (w, h) = (src.width as i64, src.height as i64);
        let r = r as i64;
        let mut out = vec![0.0; src.data.len()];
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0f64, 0.0f64);
                for yy in (y - r).max(0)..=(y + r).min(h - 1) {
                    for xx in (x - r).max(0)..=(x + r).min(w - 1) {
                        s += f64::from(src.data[(yy * w + xx) as usize]);
                        n += 1.0;
                    }
                }
                out[(y * w + x) as usize] = (s / n) as f32;
            }
        }
        out
    }

    #[test]
    fn box_mean_matches_naive_mean() {
        for &(w, h, r) in &[
            (13usize, 9usize, 2usize),
            (7, 20, 4),
            (5, 5, 9),
            (1, 1, 3),
            (30, 2, 1),
            (16, 16, 0),
        ] {
            let src = Plane {
                width: w,
                height: h,
                data: (0..w * h).map(|i| ((i * 37 % 101) as f32) * 0.5).collect(),
            };
            let (mut dst, mut tmp, mut col) = (Plane::default(), Plane::default(), Vec::new());
            box_mean(&src, &mut dst, &mut tmp, &mut col, r);
            for (a, b) in dst.data.iter().zip(naive(&src, r)) {
                assert!((a - b).abs() < 1e-3, "{w}x{h} r={r}: {a} vs {b}");
            }
        }
    }
}
