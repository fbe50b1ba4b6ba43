//! Cheap deterministic noise: hashed lattice value noise (multi-octave "fBm") for skin
//! mottling and lighting, and a fast table-driven Gaussian for sensor noise.
//!
//! Everything is a pure function of its seed and coordinates, so scenes and frames are
//! reproducible without any global state.

/// Mixes a 64-bit value (SplitMix64 finaliser); the basis of every hash here.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of an integer lattice point to a value in `0..1`.
fn lattice(seed: u64, ix: i64, iy: i64) -> f32 {
    let h = mix64(
        seed ^ mix64((ix as u64).wrapping_mul(0x1000_0000_01B3) ^ (iy as u64).rotate_left(32)),
    );
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in `0..1` with features about one unit apart.
pub(crate) fn value(seed: u64, x: f64, y: f64) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i64, fy as i64);
    let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
    let sx = tx * tx * (3.0 - 2.0 * tx);
    let sy = ty * ty * (3.0 - 2.0 * ty);
    let a = lattice(seed, ix, iy);
    let b = lattice(seed, ix + 1, iy);
    let c = lattice(seed, ix, iy + 1);
    let d = lattice(seed, ix + 1, iy + 1);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// Fractal (multi-octave) value noise, centred on 0, roughly in `-0.5..0.5`.
///
/// `scale` is the size of the coarsest feature in the units of `x` and `y`; every octave halves
/// it and multiplies the amplitude by `gain`.
pub(crate) fn fbm(seed: u64, x: f64, y: f64, scale: f64, octaves: u32, gain: f32) -> f32 {
    let mut sum = 0.0;
    let mut amp = 1.0;
    let mut norm = 0.0;
    let mut freq = 1.0 / scale;
    for o in 0..octaves {
        sum += amp * (value(seed.wrapping_add(o as u64 * 7919), x * freq, y * freq) - 0.5);
        norm += amp;
        amp *= gain;
        freq *= 2.0;
    }
    sum / norm
}

/// Size of the Gaussian table; a power of two so indices are a mask.
const GAUSS_TABLE_LEN: usize = 1 << 16;

/// A table of standard normal samples with a xorshift cursor: a few ns per sample, good enough
/// for sensor noise.
#[derive(Clone)]
pub(crate) struct FastGauss {
    table: std::sync::Arc<[f32]>,
    state: u64,
}

impl FastGauss {
    /// Builds the table from `seed` (Box-Muller on hashed uniforms).
    pub(crate) fn new(seed: u64) -> Self {
        let mut table = Vec::with_capacity(GAUSS_TABLE_LEN);
        let mut i = 0u64;
        while table.len() < GAUSS_TABLE_LEN {
            let u1 = ((mix64(seed ^ mix64(i)) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (mix64(seed ^ mix64(i + 1) ^ 0xABCD) >> 11) as f64 / (1u64 << 53) as f64;
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            table.push((r * t.cos()) as f32);
            table.push((r * t.sin()) as f32);
            i += 2;
        }
        Self {
            table: table.into(),
            state: mix64(seed) | 1,
        }
    }

    /// Restarts the cursor from a frame's noise seed.
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.state = mix64(seed) | 1;
    }

    /// Next three independent standard normal samples (one RGB pixel) from one step of the
    /// generator: three 16-bit table indices from one 64-bit state.
    #[inline]
    pub(crate) fn next3(&mut self) -> [f32; 3] {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        let m = GAUSS_TABLE_LEN - 1;
        [
            self.table[(x >> 16) as usize & m],
            self.table[(x >> 32) as usize & m],
            self.table[(x >> 48) as usize & m],
        ]
    }

    /// Next standard normal sample.
    #[inline]
    #[cfg(test)]
    pub(crate) fn next(&mut self) -> f32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        self.table[(x >> 20) as usize & (GAUSS_TABLE_LEN - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_noise_is_bounded_and_deterministic() {
        for i in 0..1000 {
            let (x, y) = (i as f64 * 0.173, i as f64 * 0.311);
            let v = value(7, x, y);
            assert!((0.0..=1.0).contains(&v));
            assert_eq!(v, value(7, x, y));
        }
    }

    #[test]
    fn fast_gauss_has_unit_variance() {
        let mut g = FastGauss::new(3);
        let n = 100_000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let v = g.next() as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
