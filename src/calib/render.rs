//! The synthetic board renderer: a printed chessboard (white paper margin around it) seen
//! through a known pinhole + Brown-Conrady camera at random poses, with uneven light, blur,
//! sensor noise and an optional glare patch. It is the test oracle for detection and
//! calibration: the true corner positions are the exact forward projection of the board.
//!
//! Rendering is by inverse mapping: every output pixel's footprint is traced back through the
//! lens (exact Newton undistortion at the pixel corners) onto the board plane. Pixels whose four
//! corners land in one region (one square, the paper margin or the background) are uniform; the
//! others are supersampled `SUPERSAMPLE`² times (box filter, i.e. antialiased), with the rays
//! inside the pixel interpolated bilinearly between its corners (the lens is smooth over one
//! pixel: the interpolation error is below 1e-5 px) and mapped exactly onto the plane.

use image::{GrayImage, ImageBuffer, Luma};
use nalgebra::{Isometry3, Matrix3, Point3, Translation3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::board::BoardSpec;
use super::model::{Calibration, Distortion, Intrinsics};

/// Sub-samples per axis for pixels that straddle an edge. 8 left the edges' areas quantised
/// enough to move the detector's corners (noise-free views of seeds 11, 12, 2024: 0.008 px
/// from the truth with 8, 0.005-0.006 px with 32; 64 changes nothing): with 32 what is left is
/// the detector's own error.
const SUPERSAMPLE: usize = 32;
/// Reflectance of the printed black squares.
const BLACK: f32 = 0.08;
/// Reflectance of the paper.
const WHITE: f32 = 0.92;
/// Reflectance of what lies beyond the paper (skin-like mid grey).
const BACKGROUND: f32 = 0.45;
/// Paper margin around the outer squares, in squares.
const MARGIN_SQUARES: f64 = 0.8;
/// Largest tilt of the board away from facing the camera, in degrees.
const MAX_TILT_DEG: f64 = 45.0;
/// Tries to find a pose with the whole paper inside the image before giving up.
const POSE_TRIES: usize = 2000;
/// Views aimed at an edge or corner cell keep this much of the board in the image, in squares
/// around the inner corners: the outer squares whole, the paper margin possibly cut off.
const BORDER_MARGIN_SQUARES: f64 = 1.0;
/// Views aimed at an edge or corner cell pick, among this many poses that fit, the one whose
/// corners reach closest to that edge or corner: as calibration guides ask, the board is held
/// out to the image borders (with its paper margin still in view), so that the lens is
/// observed where its distortion is largest instead of extrapolated there.
const REACH_CANDIDATES: usize = 12;

/// The camera the synthetic board views are rendered through (the "truth" of the calibration
/// tests): 1280x720, a slightly anisotropic focal length, an off-centre principal point and a
/// barrel lens of about 25 px displacement in the image corners.
pub fn reference_camera() -> Calibration {
    let mut c = Calibration::pinhole(
        1280,
        720,
        Intrinsics {
            fx: 1380.0,
            fy: 1386.0,
            cx: 652.5,
            cy: 349.0,
        },
        20.0,
    );
    c.distortion = Distortion {
        k1: -0.15,
        k2: 0.10,
        p1: 0.0008,
        p2: -0.0005,
        k3: -0.02,
    };
    c
}

/// [`reference_camera`] for frames of another size: the same lens and field of view, the
/// intrinsics scaled with the image (pixel centres at integers, as everywhere in [`super`]).
pub fn reference_camera_for(width: u32, height: u32) -> Calibration {
    let mut c = reference_camera();
    let sx = f64::from(width) / f64::from(c.image_width);
    let sy = f64::from(height) / f64::from(c.image_height);
    let k = &mut c.intrinsics;
    k.fx *= sx;
    k.fy *= sy;
    k.cx = (k.cx + 0.5) * sx - 0.5;
    k.cy = (k.cy + 0.5) * sy - 0.5;
    c.px_per_mm *= (sx * sy).sqrt();
    c.image_width = width;
    c.image_height = height;
    c
}

/// Imaging conditions of a rendered view.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RenderConditions {
    /// Gaussian blur of the optics, sigma in pixels.
    pub blur_sigma_px: f64,
    /// Sensor noise, standard deviation in grey levels (0-255).
    pub noise_sigma: f64,
    /// Whether a specular glare patch was added.
    pub glare: bool,
}

/// One rendered view and its ground truth.
#[derive(Debug, Clone)]
pub struct BoardView {
    /// The 8-bit grey image.
    pub image: GrayImage,
    /// Pose of the board: maps board coordinates (mm) to camera coordinates (mm).
    pub camera_from_board: Isometry3<f64>,
    /// Exact corner positions in the image, in [`BoardSpec::object_points`] order.
    pub corners_in_image: Vec<[f64; 2]>,
    /// How it was imaged.
    pub conditions: RenderConditions,
}

/// Renders views of `board` through `camera`; deterministic from `seed`.
///
/// Each view gets its own pose (the whole paper inside the image, the board 30-55% of the image
/// width across, tilted up to 45 degrees, any in-plane rotation, views spread over a 3x3 grid of
/// the image), a smooth illumination gradient with vignetting, blur of 0.5-1.3 px, noise of
/// 1.5-4 grey levels, and in one view of three a glare patch (a Gaussian highlight of 15-45 px
/// next to a corner).
pub struct BoardRenderer {
    camera: Calibration,
    board: BoardSpec,
    /// Undistorted normalized ray through each pixel corner `(u - 0.5, v - 0.5)`,
    /// `(width + 1) x (height + 1)`, row-major.
    rays: Vec<[f64; 2]>,
}

impl BoardRenderer {
    /// Precomputes the rays of `camera` (the expensive part, shared by all views).
    pub fn new(camera: Calibration, board: BoardSpec) -> Self {
        let (w, h) = (camera.image_width as usize, camera.image_height as usize);
        let mut rays = Vec::with_capacity((w + 1) * (h + 1));
        for v in 0..=h {
            for u in 0..=w {
                let (x, y) = camera.unproject(u as f64 - 0.5, v as f64 - 0.5);
                rays.push([x, y]);
            }
        }
        Self {
            camera,
            board,
            rays,
        }
    }

    /// The camera the views are rendered through.
    pub fn camera(&self) -> &Calibration {
        &self.camera
    }

    /// Renders `count` views, view `i` from the random stream seeded by `seed`.
    #[tracing::instrument(skip(self))]
    pub fn render_views(&self, seed: u64, count: usize) -> Vec<BoardView> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|i| self.render_random(&mut rng, i))
            .collect()
    }

    /// A random pose for view number `index`, aimed at cell `index mod 9` of a 3x3 grid of the
    /// image, as [`BoardRenderer::render_random`] draws it.
    pub fn random_view_pose(&self, rng: &mut ChaCha8Rng, index: usize) -> Isometry3<f64> {
        self.random_pose(rng, index % 9)
    }

    /// A pose of the board lying on the scalp, the working plane: square-on at the depth where
    /// the camera's `px_per_mm` holds (`sqrt(fx fy) / px_per_mm` mm), its centre within a tenth
    /// of the image of the principal point, turned up to 20 degrees in its plane, the paper
    /// inside the image. Its px/mm at the board centre is the camera's `px_per_mm`.
    pub fn plane_pose(&self, rng: &mut ChaCha8Rng) -> Isometry3<f64> {
        let s = self.board.square_mm;
        let centre = Vector3::new(
            (self.board.inner_cols as f64 - 1.0) * s / 2.0,
            (self.board.inner_rows as f64 - 1.0) * s / 2.0,
            0.0,
        );
        let (w, h) = (
            f64::from(self.camera.image_width),
            f64::from(self.camera.image_height),
        );
        let k = self.camera.intrinsics;
        let z = (k.fx * k.fy).sqrt() / self.camera.px_per_mm;
        let outline = self.outline(1.0);
        let mut pose = Isometry3::identity();
        for _ in 0..POSE_TRIES {
            let rotation = UnitQuaternion::from_axis_angle(
                &Vector3::z_axis(),
                rng.gen_range(-20f64..20.0).to_radians(),
            );
            // The board centre lies on the ray through (u, v): undistorted pixels, the lens's
            // own offset is the renderer's business.
            let (u, v) = (
                k.cx + rng.gen_range(-0.1..0.1) * w,
                k.cy + rng.gen_range(-0.1..0.1) * h,
            );
            let at = Vector3::new((u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z);
            // Square-on: the board's normal along the optical axis, whatever the offset.
            pose = Isometry3::from_parts(Translation3::from(at - rotation * centre), rotation);
            let inside = outline.iter().all(|p| {
                let q = pose * p;
                let (pu, pv) = self.camera.project([q.x, q.y, q.z]);
                pu > 2.0 && pv > 2.0 && pu < w - 3.0 && pv < h - 3.0
            });
            if inside {
                break;
            }
        }
        pose
    }

    /// Renders view number `index` at a random pose and random conditions. Views are spread
    /// over the image like an artist is told to: view `i` aims the board at cell `i mod 9` of a
    /// 3x3 grid of the image (jittered), so a set of views covers the corners too.
    pub fn render_random(&self, rng: &mut ChaCha8Rng, index: usize) -> BoardView {
        let pose = self.random_pose(rng, index % 9);
        let conditions = RenderConditions {
            blur_sigma_px: rng.gen_range(0.5..1.3),
            noise_sigma: rng.gen_range(1.5..4.0),
            glare: rng.gen_bool(1.0 / 3.0),
        };
        self.render(&pose, conditions, rng)
    }

    /// Points along a rectangle around the inner corners, `margin_squares` squares out.
    fn outline(&self, margin_squares: f64) -> Vec<Point3<f64>> {
        let s = self.board.square_mm;
        let m = margin_squares * s;
        let (x0, y0) = (-m, -m);
        let x1 = (self.board.inner_cols as f64 - 1.0) * s + m;
        let y1 = (self.board.inner_rows as f64 - 1.0) * s + m;
        let mut pts = Vec::new();
        for i in 0..=20 {
            let t = f64::from(i) / 20.0;
            pts.push(Point3::new(x0 + t * (x1 - x0), y0, 0.0));
            pts.push(Point3::new(x0 + t * (x1 - x0), y1, 0.0));
            pts.push(Point3::new(x0, y0 + t * (y1 - y0), 0.0));
            pts.push(Point3::new(x1, y0 + t * (y1 - y0), 0.0));
        }
        pts
    }

    fn random_pose(&self, rng: &mut ChaCha8Rng, cell: usize) -> Isometry3<f64> {
        let s = self.board.square_mm;
        let centre = Vector3::new(
            (self.board.inner_cols as f64 - 1.0) * s / 2.0,
            (self.board.inner_rows as f64 - 1.0) * s / 2.0,
            0.0,
        );
        let board_width_mm = (self.board.inner_cols as f64 + 1.0) * s;
        let (w, h) = (
            f64::from(self.camera.image_width),
            f64::from(self.camera.image_height),
        );
        let k = self.camera.intrinsics;
        // The centre cell keeps the whole paper in view; views aimed at the borders may lose
        // the paper margin past the frame edge, but keep every square whole.
        let margin = if cell == 4 {
            1.0 + MARGIN_SQUARES
        } else {
            BORDER_MARGIN_SQUARES
        };
        let outline = self.outline(margin);
        let mut last = Isometry3::identity();
        let mut best: Option<(f64, Isometry3<f64>)> = None;
        let mut candidates = 0;
        for _ in 0..POSE_TRIES {
            let spin = UnitQuaternion::from_axis_angle(
                &Vector3::z_axis(),
                rng.gen_range(-std::f64::consts::PI..std::f64::consts::PI),
            );
            let axis_angle = rng.gen_range(0.0..std::f64::consts::TAU);
            let axis = nalgebra::Unit::new_normalize(Vector3::new(
                axis_angle.cos(),
                axis_angle.sin(),
                0.0,
            ));
            let tilt = UnitQuaternion::from_axis_angle(
                &axis,
                rng.gen_range(0.0..MAX_TILT_DEG).to_radians(),
            );
            let rotation = tilt * spin;
            // Board width between 30% and 55% of the image width.
            let width_px = rng.gen_range(0.30..0.55) * w;
            let z = k.fx * board_width_mm / width_px;
            let (gx, gy) = ((cell % 3) as f64, (cell / 3) as f64);
            let (u, v) = (
                w * (gx + rng.gen_range(0.0..1.0)) / 3.0,
                h * (gy + rng.gen_range(0.0..1.0)) / 3.0,
            );
            let ray = Vector3::new((u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0) * z;
            let t = ray - rotation * centre;
            let pose = Isometry3::from_parts(Translation3::from(t), rotation);
            last = pose;
            let inside = outline.iter().all(|p| {
                let q = pose * p;
                if q.z <= 1.0 {
                    return false;
                }
                let (pu, pv) = self.camera.project([q.x, q.y, q.z]);
                pu > 2.0 && pv > 2.0 && pu < w - 3.0 && pv < h - 3.0
            });
            if !inside {
                continue;
            }
            let Some(reach) = self.reach_px(&pose, cell) else {
                return pose; // the centre cell: any pose that fits
            };
            candidates += 1;
            if best.is_none_or(|(r, _)| reach < r) {
                best = Some((reach, pose));
            }
            if candidates == REACH_CANDIDATES {
                break;
            }
        }
        best.map_or(last, |(_, pose)| pose)
    }

    /// For a view aimed at an edge or corner cell of the 3x3 grid: how far the board's nearest
    /// inner corner stays from that image edge or corner (px; smaller reaches further). `None`
    /// for the centre cell.
    fn reach_px(&self, pose: &Isometry3<f64>, cell: usize) -> Option<f64> {
        let (w, h) = (
            f64::from(self.camera.image_width),
            f64::from(self.camera.image_height),
        );
        let target = |g: usize, size: f64| match g {
            0 => Some(0.0),
            2 => Some(size),
            _ => None,
        };
        let (tu, tv) = (target(cell % 3, w), target(cell / 3, h));
        if tu.is_none() && tv.is_none() {
            return None;
        }
        self.board
            .object_points()
            .iter()
            .map(|p| {
                let q = pose * Point3::new(p[0], p[1], 0.0);
                let (u, v) = self.camera.project([q.x, q.y, q.z]);
                let du = tu.map_or(0.0, |t| u - t);
                let dv = tv.map_or(0.0, |t| v - t);
                du.hypot(dv)
            })
            .min_by(f64::total_cmp)
    }

    /// Renders the board at `pose` under `conditions` (the rng draws light and noise).
    pub fn render(
        &self,
        pose: &Isometry3<f64>,
        conditions: RenderConditions,
        rng: &mut ChaCha8Rng,
    ) -> BoardView {
        let (w, h) = (
            self.camera.image_width as usize,
            self.camera.image_height as usize,
        );
        // Homography from board plane (x, y, 1) to normalized rays, and its inverse.
        let r = pose.rotation.to_rotation_matrix();
        let rm = r.matrix();
        let t = pose.translation.vector;
        let ray_from_board = Matrix3::new(
            rm[(0, 0)],
            rm[(0, 1)],
            t.x,
            rm[(1, 0)],
            rm[(1, 1)],
            t.y,
            rm[(2, 0)],
            rm[(2, 1)],
            t.z,
        );
        let board_from_ray = ray_from_board
            .try_inverse()
            .unwrap_or_else(Matrix3::identity);
        let to_board = |ray: [f64; 2]| -> [f64; 2] {
            let p = board_from_ray * Vector3::new(ray[0], ray[1], 1.0);
            [p.x / p.z, p.y / p.z]
        };
        let s = self.board.square_mm;
        let (cols, rows) = (self.board.inner_cols as f64, self.board.inner_rows as f64);
        let m = (1.0 + MARGIN_SQUARES) * s;
        // Region id and reflectance of a board point.
        let region = |b: [f64; 2]| -> (i64, f32) {
            let (x, y) = (b[0], b[1]);
            if x >= -s && x < cols * s && y >= -s && y < rows * s {
                let ix = (x / s).floor() as i64 + 1;
                let iy = (y / s).floor() as i64 + 1;
                let refl = if (ix + iy) % 2 == 0 { BLACK } else { WHITE };
                (iy * 1000 + ix, refl)
            } else if x >= -m && x < (cols - 1.0) * s + m && y >= -m && y < (rows - 1.0) * s + m {
                (-1, WHITE)
            } else {
                (-2, BACKGROUND)
            }
        };
        let stride = w + 1;
        let corners: Vec<[f64; 2]> = self.rays.iter().map(|&ray| to_board(ray)).collect();
        let regions: Vec<(i64, f32)> = corners.iter().map(|&b| region(b)).collect();

        // Illumination: a tilted plane of light times vignetting, 0.45-1.1.
        let grad_angle = rng.gen_range(0.0..std::f64::consts::TAU);
        let grad = rng.gen_range(0.1..0.45);
        let base = rng.gen_range(0.65..0.95);
        let vignette = rng.gen_range(0.1..0.35);
        let glare = conditions.glare.then(|| {
            let k = self.board.inner_cols * self.board.inner_rows;
            let idx = rng.gen_range(0..k);
            let p = self.board.object_points()[idx];
            let q = pose * Point3::new(p[0] + s * 0.5, p[1] + s * 0.5, 0.0);
            let (gu, gv) = self.camera.project([q.x, q.y, q.z]);
            (gu, gv, rng.gen_range(15.0..45.0), rng.gen_range(0.15..0.35))
        });
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        let diag = cx.hypot(cy);

        let mut radiance = ImageBuffer::<Luma<f32>, Vec<f32>>::new(w as u32, h as u32);
        let n = SUPERSAMPLE;
        for v in 0..h {
            for u in 0..w {
                let i00 = v * stride + u;
                let ids = [i00, i00 + 1, i00 + stride, i00 + stride + 1];
                let first = regions[ids[0]];
                let refl = if ids.iter().all(|&i| regions[i].0 == first.0) {
                    first.1
                } else {
                    let [r00, r10, r01, r11] = ids.map(|i| self.rays[i]);
                    let mut acc = 0.0f32;
                    for sy in 0..n {
                        let fy = (sy as f64 + 0.5) / n as f64;
                        for sx in 0..n {
                            let fx = (sx as f64 + 0.5) / n as f64;
                            let lerp = |k: usize| {
                                (r00[k] * (1.0 - fx) + r10[k] * fx) * (1.0 - fy)
                                    + (r01[k] * (1.0 - fx) + r11[k] * fx) * fy
                            };
                            acc += region(to_board([lerp(0), lerp(1)])).1;
                        }
                    }
                    acc / (n * n) as f32
                };
                let (du, dv) = (u as f64 - cx, v as f64 - cy);
                let along = (du * grad_angle.cos() + dv * grad_angle.sin()) / diag;
                let rr = (du * du + dv * dv) / (diag * diag);
                let light = (base + grad * along) * (1.0 - vignette * rr);
                let mut value = f64::from(refl) * light;
                if let Some((gu, gv, sigma, amp)) = glare {
                    let d2 = (u as f64 - gu).powi(2) + (v as f64 - gv).powi(2);
                    value += amp * (-d2 / (2.0 * sigma * sigma)).exp();
                }
                radiance.put_pixel(u as u32, v as u32, Luma([(value * 255.0) as f32]));
            }
        }
        let blurred =
            imageproc::filter::gaussian_blur_f32(&radiance, conditions.blur_sigma_px as f32);
        let noise = Normal::new(0.0, conditions.noise_sigma.max(0.0)).ok();
        let image = GrayImage::from_fn(w as u32, h as u32, |x, y| {
            let n = noise.as_ref().map_or(0.0, |d| d.sample(rng));
            let value = f64::from(blurred.get_pixel(x, y).0[0]) + n;
            Luma([value.round().clamp(0.0, 255.0) as u8])
        });
        let corners_in_image = self
            .board
            .object_points()
            .iter()
            .map(|p| {
                let q = pose * Point3::new(p[0], p[1], 0.0);
                let (u, v) = self.camera.project([q.x, q.y, q.z]);
                [u, v]
            })
            .collect();
        BoardView {
            image,
            camera_from_board: *pose,
            corners_in_image,
            conditions,
        }
    }
}
