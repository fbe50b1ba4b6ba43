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
/// Sums are `f32`: a row or column of 8-bit-scale values drifts by far less than 1e-3.
pub fn box_mean(src: &Plane, dst: &mut Plane, tmp: &mut Plane, col: &mut Vec<f32>, r: usize) {
    let (w, h) = (src.width, src.height);
    dst.resize(w, h);
    tmp.resize(w, h);
    if w == 0 || h == 0 {
        return;
    }
    for (row, out) in src.data.chunks_exact(w).zip(tmp.data.chunks_exact_mut(w)) {
        horizontal_box(row, out, r);
    }
    col.clear();
    col.resize(w, 0.0);
    for row in tmp.data.chunks_exact(w).take(r.min(h - 1) + 1) {
        for (c, v) in col.iter_mut().zip(row) {
            *c += v;
        }
    }
    for y in 0..h {
        let n = ((y + r).min(h - 1) - y.saturating_sub(r) + 1) as f32;
        let inv = 1.0 / n;
        for (o, c) in dst.data[y * w..(y + 1) * w].iter_mut().zip(col.iter()) {
            *o = c * inv;
        }
        let add = (y + r + 1 < h).then_some(y + r + 1);
        let sub = (y >= r).then(|| y - r);
        match (add, sub) {
            (Some(a), Some(s)) => {
                let (ra, rs) = (&tmp.data[a * w..(a + 1) * w], &tmp.data[s * w..(s + 1) * w]);
                for ((c, va), vs) in col.iter_mut().zip(ra).zip(rs) {
                    *c += va - vs;
                }
            }
            (Some(a), None) => {
                for (c, v) in col.iter_mut().zip(&tmp.data[a * w..(a + 1) * w]) {
                    *c += v;
                }
            }
            (None, Some(s)) => {
                for (c, v) in col.iter_mut().zip(&tmp.data[s * w..(s + 1) * w]) {
                    *c -= v;
                }
            }
            (None, None) => {}
        }
    }
}

/// One row of [`box_mean`]'s horizontal pass.
fn horizontal_box(row: &[f32], out: &mut [f32], r: usize) {
    let w = row.len();
    let mut sum: f32 = row[..=r.min(w - 1)].iter().sum();
    // Left edge, where the window is clipped.
    let left_end = (r + 1).min(w);
    for x in 0..left_end {
        let n = ((x + r).min(w - 1) + 1) as f32;
        out[x] = sum / n;
        if x + r + 1 < w {
            sum += row[x + r + 1];
        }
    }
    if left_end >= w {
        return;
    }
    // Interior: full windows. `sum` holds the window of x = left_end minus row[left_end - r - 1].
    sum -= row[0];
    let inv = 1.0 / (2 * r + 1) as f32;
    let right_start = w.saturating_sub(r).max(left_end);
    for x in left_end..right_start {
        out[x] = sum * inv;
        if x + r + 1 < w {
            sum += row[x + r + 1];
        }
        sum -= row[x - r];
    }
    // Right edge.
    for x in right_start..w {
        let n = (w - (x - r)) as f32;
        out[x] = sum / n;
        sum -= row[x - r];
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
