//! 2-D similarity transforms (rotation, uniform scale, translation) and their closed-form fit.

use serde::{Deserialize, Serialize};

/// `p' = [a -b; b a] p + t`: a rotation by `atan2(b, a)`, a scale by `hypot(a, b)`, then a shift.
///
/// Named after the spaces it maps between, as `b_from_a` (e.g. `skin_from_image`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// `scale * cos(angle)`.
    pub a: f64,
    /// `scale * sin(angle)`.
    pub b: f64,
    /// Translation, x.
    pub tx: f64,
    /// Translation, y.
    pub ty: f64,
}

impl Default for Similarity {
    /// The identity.
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Similarity {
    /// The identity.
    pub const IDENTITY: Self = Self {
        a: 1.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// From scale, angle (radians) and translation.
    pub fn new(scale: f64, angle_rad: f64, tx: f64, ty: f64) -> Self {
        Self {
            a: scale * angle_rad.cos(),
            b: scale * angle_rad.sin(),
            tx,
            ty,
        }
    }

    /// A pure translation.
    pub fn translation(tx: f64, ty: f64) -> Self {
        Self {
            tx,
            ty,
            ..Self::IDENTITY
        }
    }

    /// Maps a point.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// The rotation angle, radians.
    pub fn angle_rad(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// `self ∘ rhs`: apply `rhs` first, then `self` (`c_from_a = c_from_b.compose(&b_from_a)`).
    pub fn compose(&self, rhs: &Similarity) -> Similarity {
        let a = self.a * rhs.a - self.b * rhs.b;
        let b = self.a * rhs.b + self.b * rhs.a;
        let t = self.apply([rhs.tx, rhs.ty]);
        Similarity {
            a,
            b,
            tx: t[0],
            ty: t[1],
        }
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        let inv = Similarity {
            a,
            b,
            tx: 0.0,
            ty: 0.0,
        };
        let t = inv.apply([self.tx, self.ty]);
        Similarity {
            a,
            b,
            tx: -t[0],
            ty: -t[1],
        }
    }

    /// As a row-major 2x3 affine matrix `[a, -b, tx, b, a, ty]`.
    pub fn to_affine(&self) -> [f64; 6] {
        [self.a, -self.b, self.tx, self.b, self.a, self.ty]
    }

    /// Least-squares fit of `q ≈ T p` over `(p, q)` pairs, in closed form (Umeyama 1991).
    /// `None` when the `p` are all at one point.
    pub fn fit(pairs: &[([f64; 2], [f64; 2])]) -> Option<Similarity> {
        if pairs.len() < 2 {
            return None;
        }
        let n = pairs.len() as f64;
        let (mut px, mut py, mut qx, mut qy) = (0.0, 0.0, 0.0, 0.0);
        for (p, q) in pairs {
            px += p[0];
            py += p[1];
            qx += q[0];
            qy += q[1];
        }
        let (px, py, qx, qy) = (px / n, py / n, qx / n, qy / n);
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (p, q) in pairs {
            let (ux, uy) = (p[0] - px, p[1] - py);
            let (vx, vy) = (q[0] - qx, q[1] - qy);
            num_a += ux * vx + uy * vy;
            num_b += ux * vy - uy * vx;
            den += ux * ux + uy * uy;
        }
        if den <= f64::EPSILON {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        Some(Similarity {
            a,
            b,
            tx: qx - (a * px - b * py),
            ty: qy - (b * px + a * py),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(p: [f64; 2], q: [f64; 2]) -> bool {
        (p[0] - q[0]).abs() < 1e-9 && (p[1] - q[1]).abs() < 1e-9
    }

    #[test]
    fn inverse_and_compose_round_trip() {
        let t = Similarity::new(0.05, 0.3, 4.0, -2.0);
        let p = [123.0, 45.0];
        assert!(close(t.inverse().apply(t.apply(p)), p));
        assert!(close(t.inverse().compose(&t).apply(p), p));
        let u = Similarity::new(1.2, -0.1, 1.0, 1.0);
        assert!(close(u.compose(&t).apply(p), u.apply(t.apply(p))));
    }

    #[test]
    fn fit_recovers_a_known_transform() {
        let t = Similarity::new(0.05, 0.2, 3.0, 7.0);
        let pairs: Vec<_> = [[0.0, 0.0], [100.0, 5.0], [40.0, 80.0]]
            .iter()
            .map(|&p| (p, t.apply(p)))
            .collect();
        let f = Similarity::fit(&pairs).expect("fit");
        assert!((f.a - t.a).abs() < 1e-12 && (f.ty - t.ty).abs() < 1e-9);
    }
}
