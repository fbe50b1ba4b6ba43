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
    luma_row(src.as_raw(), &mut dst.data);
}

/// The luminance [`luminance`] gives one pixel.
#[inline]
pub fn luma_of(r: u8, g: u8, b: u8) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// Turns `image` grey in place, every channel its [`luma_of`] rounded: the picture a greyscale
/// or infrared camera gives, for checking what the pipeline does with one.
pub fn grey_in_place(image: &mut image::RgbImage) {
    for p in image.pixels_mut() {
        let l = luma_of(p[0], p[1], p[2]).round() as u8;
        p.0 = [l, l, l];
    }
}

/// Each channel's term of [`luma_of`], per 8-bit value: a table lookup is the same sum and
/// about twice as fast as converting and multiplying (the three channels interleaved do not
/// vectorise).
static LUMA_TERMS: std::sync::LazyLock<[[f32; 256]; 3]> = std::sync::LazyLock::new(|| {
    let weights = [0.299f32, 0.587, 0.114];
    std::array::from_fn(|c| std::array::from_fn(|v| weights[c] * f32::from(v as u8)))
});

/// [`luma_of`] of each pixel of the interleaved RGB `rgb` into `out` (as many as both hold).
pub fn luma_row(rgb: &[u8], out: &mut [f32]) {
    let [tr, tg, tb] = &*LUMA_TERMS;
    for (o, px) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        *o = tr[usize::from(px[0])] + tg[usize::from(px[1])] + tb[usize::from(px[2])];
    }
}

/// The dermoscope detectors' planes, averaged over `f` x `f` blocks of `src` (the last partial
/// block row and column are dropped): a red-weighted luminance (0.55 R + 0.35 G + 0.1 B, so
/// red vessels and brown pigment fade against hair, which is dark in every channel) into
/// `luma`, and blue over red, `(B + 1) / (R + 1)` of the block means, into `blue` (carbon ink
/// under the skin reads blue-grey; moles and hair brown).
pub fn red_weighted_blocks(src: &RgbImage, f: usize, luma: &mut Plane, blue: &mut Plane) {
    let f = f.max(1);
    let (w0, w, h) = (
        src.width() as usize,
        src.width() as usize / f,
        src.height() as usize / f,
    );
    luma.resize(w, h);
    blue.resize(w, h);
    let raw = src.as_raw();
    let inv = 1.0 / (f * f) as f32;
    for y in 0..h {
        for x in 0..w {
            let (mut s, mut r, mut b) = (0.0f32, 0.0f32, 0.0f32);
            for yy in y * f..(y + 1) * f {
                let row = &raw[3 * (yy * w0 + x * f)..3 * (yy * w0 + (x + 1) * f)];
                for p in row.chunks_exact(3) {
                    let (pr, pg, pb) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
                    s += 0.55 * pr + 0.35 * pg + 0.1 * pb;
                    r += pr;
                    b += pb;
                }
            }
            luma.data[y * w + x] = s * inv;
            blue.data[y * w + x] = (b * inv + 1.0) / (r * inv + 1.0);
        }
    }
}

/// A normalised Gaussian kernel of standard deviation `sigma` (px): `2r + 1` taps, r = 3 sigma
/// rounded up.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as i64;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Separable Gaussian blur of the `w` x `h` row-major `src` into `dst`, edges repeated.
/// Both passes run over whole rows (padded rows, then row combinations), so the inner loops
/// have no bounds clamps and vectorise.
pub fn gaussian(src: &[f32], w: usize, h: usize, sigma: f64, dst: &mut Plane) {
    let k = gaussian_kernel(sigma);
    let r = k.len() / 2;
    dst.resize(w, h);
    if w == 0 || h == 0 {
        return;
    }
    let mut tmp = vec![0.0f32; w * h];
    let mut pad = vec![0.0f32; w + 2 * r];
    for (row, out) in src.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        pad[..r].fill(row[0]);
        pad[r..r + w].copy_from_slice(row);
        pad[r + w..].fill(row[w - 1]);
        for (t, &kv) in k.iter().enumerate() {
            for (o, &v) in out.iter_mut().zip(&pad[t..t + w]) {
                *o += kv * v;
            }
        }
    }
    for (y, out) in dst.data.chunks_exact_mut(w).enumerate() {
        out.fill(0.0);
        for (t, &kv) in k.iter().enumerate() {
            let yy = (y + t).saturating_sub(r).min(h - 1);
            for (o, &v) in out.iter_mut().zip(&tmp[yy * w..(yy + 1) * w]) {
                *o += kv * v;
            }
        }
    }
}

/// A box mean (see [`box_mean`]) computed a row at a time, on demand: [`BoxStream::next_row`]
/// returns the next row of the mean and pulls from its caller only the source rows that row
/// needs. It holds the horizontal sums of the last `2r + 5` rows, not whole planes, so kernels
/// chained through it (a plane derived row by row on the way in, a box mean of a box mean, a
/// result combined on the way out) stay in cache instead of passing every intermediate plane
/// through memory: on the development machine a whole-plane pass costs about what its memory
/// traffic costs. The sums are those of a whole-plane pass, in the same order.
#[derive(Debug, Clone, Default)]
pub struct BoxStream {
    w: usize,
    h: usize,
    r: usize,
    ring_rows: usize,
    ring: Vec<f32>,
    input: Vec<f32>,
    col: Vec<f32>,
    mean: Vec<f32>,
    /// Source rows summed horizontally so far.
    summed: usize,
    /// The row the next call returns.
    next: usize,
}

impl BoxStream {
    /// Starts the mean over the (2r+1)x(2r+1) box of a `w` x `h` plane (buffers reused).
    pub fn start(&mut self, w: usize, h: usize, r: usize) {
        // Rows are summed horizontally four at a time (rows 4k..4k+4, the last h % 4 one by
        // one) into ring slots `row % ring_rows`; a multiple of four keeps a group's slots
        // contiguous. When row y + r + 1 is summed the ring must still hold row y - r: 2r + 2
        // rows, plus up to three more of the group that brought y + r + 1 in.
        self.ring_rows = (2 * r + 5).div_ceil(4) * 4;
        (self.w, self.h, self.r) = (w, h, r);
        self.ring.resize(self.ring_rows * w, 0.0);
        self.input.resize(4 * w, 0.0);
        self.mean.resize(w, 0.0);
        self.col.clear();
        self.col.resize(w, 0.0);
        (self.summed, self.next) = (0, 0);
    }

    /// The next row of the mean (rows 0, 1, ... in order; `None` past the last). `fill(y, row)`
    /// writes source row `y`; it is called for each source row once, in order.
    pub fn next_row(&mut self, mut fill: impl FnMut(usize, &mut [f32])) -> Option<&[f32]> {
        let (w, h, r, y) = (self.w, self.h, self.r, self.next);
        if y >= h || w == 0 {
            return None;
        }
        if y == 0 {
            let top = r.min(h - 1);
            self.sum_through(top, &mut fill);
            for k in 0..=top {
                let slot = k % self.ring_rows;
                for (c, v) in self
                    .col
                    .iter_mut()
                    .zip(&self.ring[slot * w..(slot + 1) * w])
                {
                    *c += v;
                }
            }
        } else {
            // The step from row y - 1 to y: row y + r comes in, row y - 1 - r goes out.
            let add = (y + r < h).then_some(y + r);
            let sub = (y > r).then(|| y - 1 - r);
            if let Some(a) = add {
                self.sum_through(a, &mut fill);
            }
            let ring_row = |k: usize| {
                let slot = k % self.ring_rows;
                slot * w..(slot + 1) * w
            };
            match (add, sub) {
                (Some(a), Some(s)) => {
                    let (ra, rs) = (&self.ring[ring_row(a)], &self.ring[ring_row(s)]);
                    for ((c, va), vs) in self.col.iter_mut().zip(ra).zip(rs) {
                        *c += va - vs;
                    }
                }
                (Some(a), None) => {
                    for (c, v) in self.col.iter_mut().zip(&self.ring[ring_row(a)]) {
                        *c += v;
                    }
                }
                (None, Some(s)) => {
                    for (c, v) in self.col.iter_mut().zip(&self.ring[ring_row(s)]) {
                        *c -= v;
                    }
                }
                (None, None) => {}
            }
        }
        let n = ((y + r).min(h - 1) - y.saturating_sub(r) + 1) as f32;
        let inv = 1.0 / n;
        for (o, c) in self.mean.iter_mut().zip(&self.col) {
            *o = c * inv;
        }
        self.next += 1;
        Some(&self.mean)
    }

    /// Sums source rows horizontally up to and including `last`.
    fn sum_through(&mut self, last: usize, fill: &mut impl FnMut(usize, &mut [f32])) {
        let (w, r) = (self.w, self.r);
        let grouped = self.h - self.h % 4;
        while self.summed <= last.min(self.h - 1) {
            let slot = self.summed % self.ring_rows;
            if self.summed < grouped {
                for (k, row) in self.input.chunks_exact_mut(w).enumerate() {
                    fill(self.summed + k, row);
                }
                horizontal_box4(&self.input, &mut self.ring[slot * w..(slot + 4) * w], w, r);
                self.summed += 4;
            } else {
                let row = &mut self.input[..w];
                fill(self.summed, row);
                horizontal_box(row, &mut self.ring[slot * w..(slot + 1) * w], r);
                self.summed += 1;
            }
        }
    }
}

/// Mean over the (2r+1)x(2r+1) box around each pixel, clipped at the borders (the mean is over
/// the pixels that exist). Separable running sums: O(1) per pixel whatever `r`. `stream` is
/// scratch, reused.
///
/// Sums are `f32`: a row or column of 8-bit-scale values drifts by far less than 1e-3.
pub fn box_mean(src: &Plane, dst: &mut Plane, stream: &mut BoxStream, r: usize) {
    let (w, h) = (src.width, src.height);
    dst.resize(w, h);
    stream.start(w, h, r);
    let fill = |y: usize, row: &mut [f32]| row.copy_from_slice(&src.data[y * w..(y + 1) * w]);
    for out in dst.data.chunks_exact_mut(w.max(1)) {
        let Some(mean) = stream.next_row(fill) else {
            break;
        };
        out.copy_from_slice(mean);
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

/// [`horizontal_box`] on four rows of width `w` at once (`src` and `out` hold the four): in the
/// interior, four running sums advance together, so the adds of one row do not wait on the
/// previous add of the same row.
fn horizontal_box4(src: &[f32], out: &mut [f32], w: usize, r: usize) {
    let left_end = (r + 1).min(w);
    let right_start = w.saturating_sub(r).max(left_end);
    if right_start <= left_end + 1 {
        for (row, o) in src.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            horizontal_box(row, o, r);
        }
        return;
    }
    let mut sum = [0.0f32; 4];
    for ((row, o), s) in src
        .chunks_exact(w)
        .zip(out.chunks_exact_mut(w))
        .zip(&mut sum)
    {
        box_edges(row, o, r, left_end, right_start);
        // The full window of x = left_end.
        *s = row[left_end - r..=left_end + r].iter().sum();
    }
    let inv = 1.0 / (2 * r + 1) as f32;
    let (s0, rest) = src.split_at(w);
    let (s1, rest) = rest.split_at(w);
    let (s2, s3) = rest.split_at(w);
    let (o0, rest) = out.split_at_mut(w);
    let (o1, rest) = rest.split_at_mut(w);
    let (o2, o3) = rest.split_at_mut(w);
    // Every x here but the last has a next window inside the row.
    for x in left_end..right_start - 1 {
        o0[x] = sum[0] * inv;
        o1[x] = sum[1] * inv;
        o2[x] = sum[2] * inv;
        o3[x] = sum[3] * inv;
        let (add, sub) = (x + r + 1, x - r);
        sum[0] += s0[add] - s0[sub];
        sum[1] += s1[add] - s1[sub];
        sum[2] += s2[add] - s2[sub];
        sum[3] += s3[add] - s3[sub];
    }
    let last = right_start - 1;
    o0[last] = sum[0] * inv;
    o1[last] = sum[1] * inv;
    o2[last] = sum[2] * inv;
    o3[last] = sum[3] * inv;
}

/// The clipped windows at both ends of a row (`x < left_end` and `x >= right_start`).
fn box_edges(row: &[f32], out: &mut [f32], r: usize, left_end: usize, right_start: usize) {
    let w = row.len();
    let mut sum: f32 = row[..=r.min(w - 1)].iter().sum();
    for x in 0..left_end {
        out[x] = sum / ((x + r).min(w - 1) + 1) as f32;
        if x + r + 1 < w {
            sum += row[x + r + 1];
        }
    }
    let mut sum: f32 = row[right_start - r..].iter().sum();
    for x in right_start..w {
        out[x] = sum / (w - (x - r)) as f32;
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
    fn gaussian_matches_a_direct_sum_and_keeps_constants() {
        let (w, h) = (23usize, 17usize);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
        let mut out = Plane::default();
        gaussian(&src, w, h, 1.7, &mut out);
        let k = gaussian_kernel(1.7);
        let r = (k.len() / 2) as i64;
        for (x, y) in [(0usize, 0usize), (5, 9), (22, 16), (11, 0)] {
            let mut want = 0.0f32;
            for (j, ky) in k.iter().enumerate() {
                for (i, kx) in k.iter().enumerate() {
                    let xx = (x as i64 + i as i64 - r).clamp(0, w as i64 - 1) as usize;
                    let yy = (y as i64 + j as i64 - r).clamp(0, h as i64 - 1) as usize;
                    want += ky * kx * src[yy * w + xx];
                }
            }
            assert!(
                (out.at(x, y) - want).abs() < 1e-4,
                "({x}, {y}): {} vs {want}",
                out.at(x, y)
            );
        }
        gaussian(&vec![3.5; w * h], w, h, 4.0, &mut out);
        assert!(out.data.iter().all(|v| (v - 3.5).abs() < 1e-4));
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
            (64, 11, 5),
            (9, 8, 3),
            (40, 8, 19),
            (12, 50, 2),
            (9, 37, 1),
            (21, 45, 0),
        ] {
            let src = Plane {
                width: w,
                height: h,
                data: (0..w * h).map(|i| ((i * 37 % 101) as f32) * 0.5).collect(),
            };
            let (mut dst, mut stream) = (Plane::default(), BoxStream::default());
            box_mean(&src, &mut dst, &mut stream, r);
            for (a, b) in dst.data.iter().zip(naive(&src, r)) {
                assert!((a - b).abs() < 1e-3, "{w}x{h} r={r}: {a} vs {b}");
            }
        }
    }
}

/// CIELAB (D65 white, CIE 1976) of an 8-bit sRGB colour: `[L*, a*, b*]`, L* in 0..=100.
///
/// Follows the sRGB transfer curve (IEC 61966-2-1) and the CIE 1976 L*a*b* definition; used
/// where a colour difference should track what a person sees (ΔE*ab = Euclidean distance).
pub fn srgb_to_lab(rgb: [u8; 3]) -> [f64; 3] {
    srgb_to_lab_f(rgb.map(f64::from))
}

/// [`srgb_to_lab`] of a colour in 8-bit units that need not be whole (a mean of pixels).
pub fn srgb_to_lab_f(rgb: [f64; 3]) -> [f64; 3] {
    fn lin(v: f64) -> f64 {
        let c = (v / 255.0).clamp(0.0, 1.0);
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }
    fn f(t: f64) -> f64 {
        const E: f64 = 216.0 / 24389.0;
        const K: f64 = 24389.0 / 27.0;
        if t > E {
            t.cbrt()
        } else {
            (K * t + 16.0) / 116.0
        }
    }
    let (r, g, b) = (lin(rgb[0]), lin(rgb[1]), lin(rgb[2]));
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

#[cfg(test)]
mod lab_tests {
    use super::srgb_to_lab;

    #[test]
    fn lab_of_reference_colours() {
        let w = srgb_to_lab([255, 255, 255]);
        assert!(
            (w[0] - 100.0).abs() < 0.01 && w[1].abs() < 0.01 && w[2].abs() < 0.01,
            "{w:?}"
        );
        assert_eq!(srgb_to_lab([0, 0, 0]), [0.0, 0.0, 0.0]);
        // sRGB red: L* 53.24, a* 80.09, b* 67.20 (Bruce Lindbloom's calculator).
        let r = srgb_to_lab([255, 0, 0]);
        assert!(
            (r[0] - 53.24).abs() < 0.05 && (r[1] - 80.09).abs() < 0.1 && (r[2] - 67.20).abs() < 0.1,
            "{r:?}"
        );
    }
}
