//! The camera model: a pinhole with Brown-Conrady distortion, exactly as OpenCV defines it
//! (`calibrateCamera` with the default flags: k1, k2, p1, p2, k3), and the [`Calibration`] that
//! the rest of Stipple reads.
//!
//! Forward model, for a point `(X, Y, Z)` in the camera frame:
//!
//! ```text
//! x = X / Z, y = Y / Z, r² = x² + y²
//! radial = 1 + k1 r² + k2 r⁴ + k3 r⁶
//! x_d = x radial + 2 p1 x y + p2 (r² + 2 x²)
//! y_d = y radial + p1 (r² + 2 y²) + 2 p2 x y
//! u = fx x_d + cx, v = fy y_d + cy
//! ```
//!
//! The inverse (undistortion) has no closed form; it is solved by Newton's method on the 2x2
//! system, to 1e-12 in normalized units (far below 0.001 px).

use serde::{Deserialize, Serialize};

/// Largest number of Newton steps when undistorting a point.
const UNDISTORT_MAX_ITERS: usize = 30;
/// Newton stops once the distorted point is reproduced to this (normalized units).
const UNDISTORT_TOL: f64 = 1e-14;

/// Pinhole intrinsics in pixels (OpenCV's camera matrix, zero skew).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intrinsics {
    /// Focal length along x, in pixels.
    pub fx: f64,
    /// Focal length along y, in pixels.
    pub fy: f64,
    /// Principal point x, in pixels (pixel centres at integer coordinates, as OpenCV).
    pub cx: f64,
    /// Principal point y, in pixels.
    pub cy: f64,
}

/// Brown-Conrady distortion coefficients with OpenCV's meaning and sign.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distortion {
    /// Radial, r² term.
    pub k1: f64,
    /// Radial, r⁴ term.
    pub k2: f64,
    /// Tangential (decentering), first coefficient.
    pub p1: f64,
    /// Tangential (decentering), second coefficient.
    pub p2: f64,
    /// Radial, r⁶ term.
    pub k3: f64,
}

impl Distortion {
    /// Applies the distortion to a normalized, undistorted point `(x, y) = (X/Z, Y/Z)`.
    pub fn distort(&self, x: f64, y: f64) -> (f64, f64) {
        let r2 = x * x + y * y;
        let radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3));
        let xd = x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x);
        let yd = y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y;
        (xd, yd)
    }

    /// The 2x2 Jacobian of [`Distortion::distort`] at `(x, y)`, row-major.
    fn distort_jacobian(&self, x: f64, y: f64) -> [f64; 4] {
        let r2 = x * x + y * y;
        let radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3));
        // d radial / d r2
        let dradial = self.k1 + r2 * (2.0 * self.k2 + 3.0 * r2 * self.k3);
        let dxx = radial + x * dradial * 2.0 * x + 2.0 * self.p1 * y + self.p2 * 6.0 * x;
        let dxy = x * dradial * 2.0 * y + 2.0 * self.p1 * x + self.p2 * 2.0 * y;
        let dyx = y * dradial * 2.0 * x + self.p1 * 2.0 * x + 2.0 * self.p2 * y;
        let dyy = radial + y * dradial * 2.0 * y + self.p1 * 6.0 * y + 2.0 * self.p2 * x;
        [dxx, dxy, dyx, dyy]
    }

    /// Inverts [`Distortion::distort`]: the undistorted normalized point whose distortion is
    /// `(xd, yd)`. Newton's method from `(xd, yd)`; for the distortions real lenses have this
    /// converges in a handful of steps.
    pub fn undistort(&self, xd: f64, yd: f64) -> (f64, f64) {
        let (mut x, mut y) = (xd, yd);
        for _ in 0..UNDISTORT_MAX_ITERS {
            let (fx, fy) = self.distort(x, y);
            let (ex, ey) = (fx - xd, fy - yd);
            if ex.abs() < UNDISTORT_TOL && ey.abs() < UNDISTORT_TOL {
                break;
            }
            let [a, b, c, d] = self.distort_jacobian(x, y);
            let det = a * d - b * c;
            if det.abs() < 1e-12 {
                break;
            }
            x -= (d * ex - b * ey) / det;
            y -= (-c * ex + a * ey) / det;
        }
        (x, y)
    }
}

/// A calibrated camera: image size, intrinsics, distortion and the scale at the working plane.
///
/// This is what `calib::load` returns and what perception and planning consume: pixels become
/// millimetres through `px_per_mm`, after undistortion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Camera model name; only `"pinhole-brown-conrady"` exists.
    pub model: String,
    /// Width of the images this calibration is valid for, in pixels.
    pub image_width: u32,
    /// Height of the images this calibration is valid for, in pixels.
    pub image_height: u32,
    /// Pixels per millimetre at the working plane (the scalp), in undistorted pixels.
    pub px_per_mm: f64,
    /// Overall RMS reprojection error of the calibration, in pixels (0 for a nominal model).
    pub rms_px: f64,
    /// Date the calibration was made, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Focal lengths and principal point.
    pub intrinsics: Intrinsics,
    /// Lens distortion.
    pub distortion: Distortion,
    /// The board the calibration was made with; absent for a nominal (designed) camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<BoardInfo>,
    /// One-sigma uncertainty of the intrinsics, from the refinement's covariance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Intrinsics>,
}

/// The board a calibration was made with, kept in the file so a result can be traced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    /// Inner corners along a row (OpenCV's pattern width, 9 for a 9x6 board).
    pub inner_cols: u32,
    /// Inner corners along a column (OpenCV's pattern height, 6 for a 9x6 board).
    pub inner_rows: u32,
    /// Side of one printed square, in millimetres.
    pub square_mm: f64,
    /// Number of views the calibration used.
    pub views_used: u32,
}

/// The model name written in calibration files.
pub const MODEL_NAME: &str = "pinhole-brown-conrady";

impl Calibration {
    /// A distortion-free pinhole calibration, as for the synthetic demo source.
    pub fn pinhole(
        image_width: u32,
        image_height: u32,
        intrinsics: Intrinsics,
        px_per_mm: f64,
    ) -> Self {
        Self {
            model: MODEL_NAME.to_owned(),
            image_width,
            image_height,
            px_per_mm,
            rms_px: 0.0,
            date: String::new(),
            intrinsics,
            distortion: Distortion::default(),
            board: None,
            uncertainty: None,
        }
    }

    /// Projects a point in the camera frame (any unit, `z > 0`) to distorted pixel coordinates.
    pub fn project(&self, point_in_camera: [f64; 3]) -> (f64, f64) {
        let [x, y, z] = point_in_camera;
        self.distort_point(x / z, y / z)
    }

    /// Maps a normalized, undistorted point `(X/Z, Y/Z)` to distorted pixel coordinates.
    pub fn distort_point(&self, x: f64, y: f64) -> (f64, f64) {
        let (xd, yd) = self.distortion.distort(x, y);
        let k = &self.intrinsics;
        (k.fx * xd + k.cx, k.fy * yd + k.cy)
    }

    /// Maps a distorted pixel to its normalized, undistorted ray `(X/Z, Y/Z)`.
    pub fn unproject(&self, u: f64, v: f64) -> (f64, f64) {
        let k = &self.intrinsics;
        self.distortion
            .undistort((u - k.cx) / k.fx, (v - k.cy) / k.fy)
    }

    /// Removes the lens distortion from a pixel: the pixel where an ideal pinhole with the same
    /// intrinsics would have imaged the same ray. Measure distances on these.
    pub fn undistort_point(&self, u: f64, v: f64) -> (f64, f64) {
        let (x, y) = self.unproject(u, v);
        let k = &self.intrinsics;
        (k.fx * x + k.cx, k.fy * y + k.cy)
    }

    /// Inverse of [`Calibration::undistort_point`]: where an ideal-pinhole pixel lands in the real
    /// (distorted) image.
    pub fn redistort_point(&self, u: f64, v: f64) -> (f64, f64) {
        let k = &self.intrinsics;
        self.distort_point((u - k.cx) / k.fx, (v - k.cy) / k.fy)
    }

    /// Millimetres between two distorted pixels that both lie on the working plane.
    pub fn distance_mm(&self, a: (f64, f64), b: (f64, f64)) -> f64 {
        let a = self.undistort_point(a.0, a.1);
        let b = self.undistort_point(b.0, b.1);
        (a.0 - b.0).hypot(a.1 - b.1) / self.px_per_mm
    }

    /// A lookup table that undistorts whole frames of this calibration's size.
    pub fn undistort_map(&self) -> UndistortMap {
        UndistortMap::new(self)
    }

    /// How far `other`'s distortion map is from this one's: where undistortion moves each pixel
    /// of a 20 px grid over this calibration's image (each model with its own intrinsics), in
    /// px. Returns the largest difference inside any of the `covered` polygons (the areas the
    /// calibration views covered, e.g. [`crate::calib::BoardSpec::outline`]), the largest over
    /// the whole image, and the mean over the whole image (the metric of
    /// `scripts/calib_vs_opencv.py`'s "distortion map err").
    pub fn distortion_difference(
        &self,
        other: &Calibration,
        covered: &[Vec<[f64; 2]>],
    ) -> (f64, f64, f64) {
        let (mut cov, mut full, mut sum, mut n): (f64, f64, f64, u32) = (0.0, 0.0, 0.0, 0);
        for v in (0..=self.image_height).step_by(20) {
            for u in (0..=self.image_width).step_by(20) {
                let (u, v) = (f64::from(u), f64::from(v));
                let (ua, va) = self.undistort_point(u, v);
                let (ub, vb) = other.undistort_point(u, v);
                let d = (ua - ub).hypot(va - vb);
                full = full.max(d);
                sum += d;
                n += 1;
                if covered
                    .iter()
                    .any(|poly| crate::geometry::polygon_contains(poly, u, v))
                {
                    cov = cov.max(d);
                }
            }
        }
        (cov, full, sum / f64::from(n.max(1)))
    }
}

/// How pixels of the input image map to millimetres on the working plane (the scalp): the
/// scale, and the lens where it distorts. Detection stays in input pixels; spacing, sizes,
/// densities and the plan are measured in these millimetres, so that they are true ones across
/// the whole frame. Points are undistorted one by one, never whole frames.
///
/// Millimetres are undistorted pixels divided by `px_per_mm`: the origin is the ideal pinhole
/// image's corner, so without distortion a pixel `(x, y)` is `(x / px_per_mm, y / px_per_mm)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneMap {
    px_per_mm: f64,
    /// The calibration, when its lens distorts at all (shared: the live session hands its map
    /// to every frame's plan snapshot).
    lens: Option<std::sync::Arc<Calibration>>,
}

impl From<f64> for PlaneMap {
    fn from(px_per_mm: f64) -> Self {
        Self::uniform(px_per_mm)
    }
}

impl PlaneMap {
    /// A distortion-free camera at `px_per_mm`.
    pub fn uniform(px_per_mm: f64) -> Self {
        Self {
            px_per_mm,
            lens: None,
        }
    }

    /// A calibrated camera: its scale at the working plane and its lens.
    pub fn of(calib: &Calibration) -> Self {
        let d = calib.distortion;
        let distorts = [d.k1, d.k2, d.p1, d.p2, d.k3].iter().any(|&c| c != 0.0);
        Self {
            px_per_mm: calib.px_per_mm,
            lens: distorts.then(|| std::sync::Arc::new(calib.clone())),
        }
    }

    /// Pixels per millimetre at the working plane (undistorted pixels).
    pub fn px_per_mm(&self) -> f64 {
        self.px_per_mm
    }

    /// Whether the lens distorts (else millimetres are pixels over `px_per_mm`).
    pub fn distorts(&self) -> bool {
        self.lens.is_some()
    }

    /// An input pixel on the working plane, in millimetres. Detections put pixel `i` over
    /// `[i, i + 1)`; the intrinsics (OpenCV's) put its centre at `i`: half a pixel between.
    pub fn to_mm(&self, x: f64, y: f64) -> (f64, f64) {
        let (u, v) = match &self.lens {
            Some(c) => {
                let (u, v) = c.undistort_point(x - 0.5, y - 0.5);
                (u + 0.5, v + 0.5)
            }
            None => (x, y),
        };
        (u / self.px_per_mm, v / self.px_per_mm)
    }

    /// Where a point of the working plane (mm) lies in the input image (px); inverse of
    /// [`PlaneMap::to_mm`].
    pub fn to_px(&self, x_mm: f64, y_mm: f64) -> (f64, f64) {
        let (u, v) = (x_mm * self.px_per_mm, y_mm * self.px_per_mm);
        match &self.lens {
            Some(c) => {
                let (x, y) = c.redistort_point(u - 0.5, v - 0.5);
                (x + 0.5, y + 0.5)
            }
            None => (u, v),
        }
    }

    /// An input pixel in the ideal pinhole image at the same scale (undistorted pixels:
    /// [`PlaneMap::to_mm`] times the scale). The identity without a lens. The live session
    /// registers and plans in these pixels, so that the skin map is in true millimetres.
    pub fn to_ideal(&self, p: [f64; 2]) -> [f64; 2] {
        if self.lens.is_none() {
            return p;
        }
        let (u, v) = self.to_mm(p[0], p[1]);
        [u * self.px_per_mm, v * self.px_per_mm]
    }

    /// Where an ideal (undistorted) pixel lies in the input image; inverse of
    /// [`PlaneMap::to_ideal`].
    pub fn from_ideal(&self, q: [f64; 2]) -> [f64; 2] {
        if self.lens.is_none() {
            return q;
        }
        let (x, y) = self.to_px(q[0] / self.px_per_mm, q[1] / self.px_per_mm);
        [x, y]
    }

    /// Area on the working plane of the pixel rectangle `[x0, x1) x [y0, y1)` (mm²): the
    /// quadrilateral its corners map to.
    pub fn area_mm2(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
        if self.lens.is_none() {
            return (x1 - x0) * (y1 - y0) / (self.px_per_mm * self.px_per_mm);
        }
        let q = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)].map(|(x, y)| self.to_mm(x, y));
        let mut twice = 0.0;
        for i in 0..4 {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            twice += a.0 * b.1 - b.0 * a.1;
        }
        twice.abs() / 2.0
    }

    /// Area on the working plane of a whole `width` x `height` image (mm²), summed over blocks
    /// of 16 px so that the lens's change of scale across the frame is followed.
    pub fn image_area_mm2(&self, width: u32, height: u32) -> f64 {
        const BLOCK: u32 = 16;
        let mut area = 0.0;
        for y0 in (0..height).step_by(BLOCK as usize) {
            for x0 in (0..width).step_by(BLOCK as usize) {
                let (x1, y1) = ((x0 + BLOCK).min(width), (y0 + BLOCK).min(height));
                area += self.area_mm2(f64::from(x0), f64::from(y0), f64::from(x1), f64::from(y1));
            }
        }
        area
    }
}

/// For every pixel of the undistorted output, where to sample the distorted input. Build it once
/// per calibration and reuse it for every frame.
#[derive(Debug, Clone)]
pub struct UndistortMap {
    width: u32,
    height: u32,
    /// Source x, y for each destination pixel, row-major.
    src_xy: Vec<[f32; 2]>,
}

impl UndistortMap {
    /// Builds the map for `calib`'s image size.
    pub fn new(calib: &Calibration) -> Self {
        let (w, h) = (calib.image_width, calib.image_height);
        let mut src_xy = Vec::with_capacity(w as usize * h as usize);
        for v in 0..h {
            for u in 0..w {
                let (su, sv) = calib.redistort_point(f64::from(u), f64::from(v));
                src_xy.push([su as f32, sv as f32]);
            }
        }
        Self {
            width: w,
            height: h,
            src_xy,
        }
    }

    /// Undistorts `src` into the caller-owned `dst` (bilinear; outside pixels become black).
    ///
    /// # Errors
    /// [`super::CalibError::ImageSizeMismatch`] if either image differs from the map's size.
    pub fn undistort_mut(
        &self,
        src: &image::RgbImage,
        dst: &mut image::RgbImage,
    ) -> Result<(), super::CalibError> {
        for (what, img) in [
            ("source frame", src.dimensions()),
            ("destination frame", dst.dimensions()),
        ] {
            if img != (self.width, self.height) {
                return Err(super::CalibError::ImageSizeMismatch {
                    what: what.to_owned(),
                    expected: (self.width, self.height),
                    got: img,
                });
            }
        }
        let (w, h) = (self.width as f32, self.height as f32);
        for (i, px) in dst.pixels_mut().enumerate() {
            let [x, y] = self.src_xy[i];
            if x < 0.0 || y < 0.0 || x > w - 1.0 || y > h - 1.0 {
                *px = image::Rgb([0, 0, 0]);
                continue;
            }
            let (x0, y0) = (x.floor() as u32, y.floor() as u32);
            let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let p = |xx, yy| src.get_pixel(xx, yy).0;
            let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
            let mut out = [0u8; 3];
            for ch in 0..3 {
                let top = f32::from(a[ch]) * (1.0 - fx) + f32::from(b[ch]) * fx;
                let bot = f32::from(c[ch]) * (1.0 - fx) + f32::from(d[ch]) * fx;
                out[ch] = (top * (1.0 - fy) + bot * fy).round().clamp(0.0, 255.0) as u8;
            }
            *px = image::Rgb(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens() -> Calibration {
        let mut c = Calibration::pinhole(
            1280,
            720,
            Intrinsics {
                fx: 1400.0,
                fy: 1390.0,
                cx: 650.0,
                cy: 355.0,
            },
            20.0,
        );
        c.distortion = Distortion {
            k1: -0.15,
            k2: 0.1,
            p1: 0.0008,
            p2: -0.0005,
            k3: -0.02,
        };
        c
    }

    #[test]
    fn the_plane_map_inverts_itself_and_measures_true_areas() {
        let mut cal = Calibration::pinhole(
            1280,
            720,
            Intrinsics {
                fx: 1400.0,
                fy: 1400.0,
                cx: 639.5,
                cy: 359.5,
            },
            20.0,
        );
        let flat = PlaneMap::of(&cal);
        assert!(!flat.distorts());
        assert_eq!(flat.to_mm(100.0, 40.0), (5.0, 2.0));
        assert!((flat.image_area_mm2(1280, 720) - 64.0 * 36.0).abs() < 1e-9);
        cal.distortion.k1 = -0.3;
        let lens = PlaneMap::of(&cal);
        assert!(lens.distorts());
        for (x, y) in [(0.0, 0.0), (640.0, 360.0), (1279.0, 10.0), (300.0, 700.0)] {
            let (mx, my) = lens.to_mm(x, y);
            let (bx, by) = lens.to_px(mx, my);
            assert!((bx - x).abs() < 1e-6 && (by - y).abs() < 1e-6, "({x}, {y})");
        }
        // A barrel lens shows more skin than a pinhole: the corners reach past the rectangle.
        let (cx, cy) = lens.to_mm(0.0, 0.0);
        assert!(cx < -2.0 && cy < -1.0, "({cx}, {cy})");
        assert!(lens.image_area_mm2(1280, 720) > 1.1 * 64.0 * 36.0);
        // Near the centre a pixel is still 1/20 mm.
        let a = lens.area_mm2(639.0, 359.0, 641.0, 361.0);
        assert!((a - 0.01).abs() < 1e-4, "{a}");
    }

    #[test]
    fn undistort_inverts_distort_over_the_image() {
        let c = lens();
        for v in (0..720).step_by(40) {
            for u in (0..1280).step_by(40) {
                let (ux, uy) = c.undistort_point(f64::from(u), f64::from(v));
                let (du, dv) = c.redistort_point(ux, uy);
                assert!((du - f64::from(u)).abs() < 1e-6 && (dv - f64::from(v)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn undistort_map_is_identity_without_distortion_and_checks_sizes() {
        let calib = Calibration::pinhole(
            8,
            6,
            Intrinsics {
                fx: 10.0,
                fy: 10.0,
                cx: 4.0,
                cy: 3.0,
            },
            1.0,
        );
        let src =
            image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, 7]));
        let mut dst = image::RgbImage::new(8, 6);
        let map = calib.undistort_map();
        assert!(map.undistort_mut(&src, &mut dst).is_ok());
        assert_eq!(src, dst);
        let mut wrong = image::RgbImage::new(9, 6);
        assert!(matches!(
            map.undistort_mut(&src, &mut wrong),
            Err(crate::calib::CalibError::ImageSizeMismatch { .. })
        ));
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let d = lens().distortion;
        let (x, y, h) = (0.3, -0.2, 1e-6);
        let j = d.distort_jacobian(x, y);
        let (a, b) = d.distort(x + h, y);
        let (c, e) = d.distort(x - h, y);
        assert!(((a - c) / (2.0 * h) - j[0]).abs() < 1e-6);
        assert!(((b - e) / (2.0 * h) - j[2]).abs() < 1e-6);
        let (a, b) = d.distort(x, y + h);
        let (c, e) = d.distort(x, y - h);
        assert!(((a - c) / (2.0 * h) - j[1]).abs() < 1e-6);
        assert!(((b - e) / (2.0 * h) - j[3]).abs() < 1e-6);
    }
}
