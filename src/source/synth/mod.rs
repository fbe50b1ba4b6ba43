//! The synthetic scalp renderer: deterministic from a seed, with full ground truth.
//!
//! It is the demo camera, the test oracle for the detector, and the training data of the
//! segmentation model, so it aims to look like real skin rather than dots on a flat colour.
//!
//! # Layout
//!
//! - [`Scene::generate`] lays out everything in *skin millimetres* (follicular units, healed
//!   pigment dots, negatives such as scars, moles and strands), then paints it once into an albedo
//!   texture (`texture`, `skin`, `paint`, `rig`, `dermoscope`).
//! - [`Scene::render`] looks at that skin through a [`Pose`] (a similarity about the image
//!   centre) and applies the camera (`camera`: lighting, glare, sensor noise, JPEG), returning the
//!   image and the [`Truth`] in pixels of that view. Defocus is baked into the texture, so a frame
//!   is one bilinear warp plus per-pixel light and noise.
//! - [`Scene::add_pigment`] is the simulated needle: it records a new dot and repaints only the
//!   small patch of texture around it.
//!
//! # Live use
//!
//! Generate once, then per frame call [`Scene::render`] with the head's [`Pose`] and a fresh
//! noise seed; turn JPEG off with [`Scene::set_jpeg_quality`]`(None)` to stay fast. A frame is
//! rendered in 16 fixed horizontal bands (each with its own noise stream, so the bytes do not
//! depend on the thread count) on up to 8 threads. Generation paints a texture about 1.25 times
//! the frame diagonal square, so poses within a few millimetres and any rotation stay on skin.
//!
//! Tools: `cargo run --release --example synth_peek -- SEED rig|dermoscope /tmp/out` writes a
//! frame and a zoomed crop (with `PEEK_BENCH=1`, timings); `--example synth_f1` scores a naive
//! dark-spot detector against the truth as a sanity check of the oracle.
//!
//! # Conventions
//!
//! Skin space is millimetres, x right and y down as seen at the identity pose, with the origin
//! under the image centre. A pose maps a skin point `p` to the image as
//! `image = centre + scale * px_per_mm * R(angle) * (p - (dx_mm, dy_mm))`, so `(dx_mm, dy_mm)`
//! is the skin point under the image centre. Pixel coordinates follow [`crate::frame`]: the
//! centre of pixel (0, 0) is (0.5, 0.5).
//!
//! # Examples
//!
//! ```
//! use stipple::source::synth::{render, SceneParams, View};
//! let frame = render(&SceneParams { seed: 1, view: View::Rig, width: 320, height: 240, px_per_mm: Some(20.0) });
//! assert_eq!(frame.image.dimensions(), (320, 240));
//! assert!(!frame.truth.units.is_empty());
//! ```

mod camera;
pub mod chair;
mod dermoscope;
mod noise;
mod paint;
mod rig;
mod scene;
mod skin;
mod texture;
pub mod truth;

pub use chair::{Chair, ChairKind, ChairOverlay};
pub use scene::Scene;
pub use skin::ColourModel;
pub use truth::{
    MaskRuns, NegativeKind, Shape, Truth, TruthHair, TruthNegative, TruthPigment, TruthUnit, View,
};

/// Default rig frame size (px).
pub const RIG_SIZE: (u32, u32) = (1280, 720);
/// Default dermoscope frame size (px).
pub const DERMOSCOPE_SIZE: (u32, u32) = (1280, 1024);
/// Range of rig scales drawn per seed when none is given (px/mm).
pub const RIG_PX_PER_MM: (f64, f64) = (12.0, 28.0);
/// Dermoscope scale when none is given (px/mm): about 70x on a 1280x1024 sensor.
pub const DERMOSCOPE_PX_PER_MM: f64 = 300.0;

/// What to generate: everything else is drawn from `seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneParams {
    /// Seed of the scene; the same seed gives the same scene, byte for byte.
    pub seed: u64,
    /// Which camera to imitate.
    pub view: View,
    /// Frame width (px).
    pub width: u32,
    /// Frame height (px).
    pub height: u32,
    /// Scale at the skin; drawn per seed (rig) or [`DERMOSCOPE_PX_PER_MM`] when `None`.
    pub px_per_mm: Option<f64>,
}

impl SceneParams {
    /// Parameters with the view's default size and a drawn scale.
    pub fn new(seed: u64, view: View) -> Self {
        let (width, height) = match view {
            View::Rig => RIG_SIZE,
            View::Dermoscope => DERMOSCOPE_SIZE,
        };
        Self {
            seed,
            view,
            width,
            height,
            px_per_mm: None,
        }
    }
}

/// Where the camera looks: a similarity about the image centre (see the module conventions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Skin x (mm) under the image centre.
    pub dx_mm: f64,
    /// Skin y (mm) under the image centre.
    pub dy_mm: f64,
    /// Rotation of the skin in the image, radians (positive turns +x toward +y).
    pub angle_rad: f64,
    /// Zoom relative to the scene's px/mm (1 = nominal).
    pub scale: f64,
}

impl Default for Pose {
    fn default() -> Self {
        Self {
            dx_mm: 0.0,
            dy_mm: 0.0,
            angle_rad: 0.0,
            scale: 1.0,
        }
    }
}

impl Pose {
    /// Maps a skin point (mm) to image pixels, given the scene scale and frame size.
    pub fn image_from_skin(
        &self,
        px_per_mm: f64,
        width: u32,
        height: u32,
        x_mm: f64,
        y_mm: f64,
    ) -> (f64, f64) {
        let k = self.scale * px_per_mm;
        let (c, s) = (self.angle_rad.cos(), self.angle_rad.sin());
        let (x, y) = (x_mm - self.dx_mm, y_mm - self.dy_mm);
        (
            width as f64 / 2.0 + k * (c * x - s * y),
            height as f64 / 2.0 + k * (s * x + c * y),
        )
    }

    /// Maps image pixels back to skin millimetres (inverse of [`Pose::image_from_skin`]).
    pub fn skin_from_image(
        &self,
        px_per_mm: f64,
        width: u32,
        height: u32,
        x_px: f64,
        y_px: f64,
    ) -> (f64, f64) {
        let k = self.scale * px_per_mm;
        let (c, s) = (self.angle_rad.cos(), self.angle_rad.sin());
        let (x, y) = (
            (x_px - width as f64 / 2.0) / k,
            (y_px - height as f64 / 2.0) / k,
        );
        (self.dx_mm + c * x + s * y, self.dy_mm - s * x + c * y)
    }
}

/// One rendered frame and its ground truth.
#[derive(Debug, Clone)]
pub struct SynthFrame {
    /// The pixels.
    pub image: image::RgbImage,
    /// Where everything is, in pixels of `image`.
    pub truth: Truth,
}

/// Generates the scene of `p` and renders it at the identity pose with `noise_seed = p.seed`.
pub fn render(p: &SceneParams) -> SynthFrame {
    Scene::generate(p).render(&Pose::default(), p.seed)
}

/// [`render`] with the ink and hair colours of `model` (see [`ColourModel`]).
pub fn render_with(p: &SceneParams, model: ColourModel) -> SynthFrame {
    Scene::generate_with(p, model).render(&Pose::default(), p.seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_round_trip() {
        let pose = Pose {
            dx_mm: 1.5,
            dy_mm: -2.0,
            angle_rad: 0.3,
            scale: 1.2,
        };
        let (x, y) = pose.image_from_skin(20.0, 640, 480, 3.0, 4.0);
        let (a, b) = pose.skin_from_image(20.0, 640, 480, x, y);
        assert!((a - 3.0).abs() < 1e-9 && (b - 4.0).abs() < 1e-9);
        let (cx, cy) = pose.image_from_skin(20.0, 640, 480, 1.5, -2.0);
        assert!((cx - 320.0).abs() < 1e-9 && (cy - 240.0).abs() < 1e-9);
    }
}
