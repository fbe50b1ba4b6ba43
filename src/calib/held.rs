//! A synthetic board held up to the camera: the frame source behind `stipple serve --source
//! synthetic-board`, so that calibration mode can be used and tested without a camera.
//!
//! A render thread draws the [`HELD_BOARD`] through [`render::reference_camera_for`] the frame
//! size, with [`BoardRenderer`]: the board moves to a new random pose (spread over the image as
//! [`BoardRenderer::render_random`] spreads views, tilted up to 45 degrees) in
//! [`MOVE_FRAMES`] motion-blurred in-between frames, then is held still for [`HOLD_S`]. A
//! render takes tens of milliseconds, so frames are rendered ahead, one pose at a time, and each
//! is shown for as many frame periods as it lasts; the frame rate never waits for the renderer
//! (if a render is late, the held frame is simply shown longer).
//!
//! Every [`PLANE_EVERY`]-th pose the board lies on the scalp instead
//! ([`BoardRenderer::plane_pose`]: square-on at the working plane, where the true camera's px/mm
//! holds) and stays there [`PLANE_HOLD_S`], longer than calibration mode's
//! [`crate::calib::PLANE_STILL_S`], as an artist lays it down for the page's last step.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::{GrayImage, RgbImage};
use nalgebra::{Isometry3, Translation3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::board::BoardSpec;
use super::model::Calibration;
use super::render::{self, BoardRenderer, RenderConditions};

/// The board the synthetic source shows: 9x6 inner corners, 3 mm squares.
pub const HELD_BOARD: BoardSpec = BoardSpec {
    inner_cols: 9,
    inner_rows: 6,
    square_mm: 3.0,
};
/// How long the board is held still at each pose, seconds.
pub const HOLD_S: f64 = 1.2;
/// Every this many poses, the board lies on the scalp (the working plane).
pub const PLANE_EVERY: usize = 6;
/// How long the board lies on the scalp, seconds.
pub const PLANE_HOLD_S: f64 = 3.5;
/// Motion-blurred frames between two poses.
pub const MOVE_FRAMES: usize = 2;
/// Each in-between frame is shown this many frame periods.
const MOVE_FRAME_PERIODS: u32 = 2;
/// Blur of a board in motion, pixels (sigma).
const MOTION_BLUR_PX: f64 = 2.5;

/// Settings of the held-board source.
#[derive(Debug, Clone, Copy)]
pub struct HeldBoardConfig {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Seed of the poses, light and noise.
    pub seed: u64,
}

/// One rendered picture and how many frame periods it is shown.
struct Shot {
    image: Arc<RgbImage>,
    periods: u32,
}

/// The held-board source (see the module docs).
#[derive(Debug)]
pub struct HeldBoard {
    config: HeldBoardConfig,
    camera: Calibration,
    shots: Receiver<Shot>,
    current: Option<(Arc<RgbImage>, u32)>,
    next_due: Option<Instant>,
    renderer: Option<JoinHandle<()>>,
}

impl HeldBoard {
    /// Starts the render thread.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn new(config: HeldBoardConfig) -> std::io::Result<Self> {
        let camera = render::reference_camera_for(config.width, config.height);
        let (tx, rx) = sync_channel::<Shot>(2);
        let hold = ((HOLD_S * config.fps).round() as u32).max(1);
        let plane_hold = ((PLANE_HOLD_S * config.fps).round() as u32).max(1);
        let renderer = {
            let camera = camera.clone();
            std::thread::Builder::new()
                .name("held-board".into())
                .spawn(move || {
                    let renderer = BoardRenderer::new(camera, HELD_BOARD);
                    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xB0A2D);
                    let mut from: Option<Isometry3<f64>> = None;
                    for index in 0.. {
                        let on_scalp = index % PLANE_EVERY == PLANE_EVERY - 1;
                        let to = if on_scalp {
                            renderer.plane_pose(&mut rng)
                        } else {
                            renderer.random_view_pose(&mut rng, index)
                        };
                        // One light and noise level per pose, so that only the board moves.
                        let light_seed = rng.gen::<u64>();
                        let conditions = RenderConditions {
                            blur_sigma_px: rng.gen_range(0.6..1.1),
                            noise_sigma: rng.gen_range(1.5..3.0),
                            glare: false,
                        };
                        let mut shots = Vec::new();
                        if let Some(from) = from {
                            for k in 1..=MOVE_FRAMES {
                                let t = k as f64 / (MOVE_FRAMES + 1) as f64;
                                let pose = interpolate(&from, &to, t);
                                let moving = RenderConditions {
                                    blur_sigma_px: MOTION_BLUR_PX,
                                    ..conditions
                                };
                                shots.push((pose, moving, MOVE_FRAME_PERIODS));
                            }
                        }
                        shots.push((to, conditions, if on_scalp { plane_hold } else { hold }));
                        for (pose, cond, periods) in shots {
                            let mut light = ChaCha8Rng::seed_from_u64(light_seed);
                            let view = renderer.render(&pose, cond, &mut light);
                            let shot = Shot {
                                image: Arc::new(gray_to_rgb(&view.image)),
                                periods,
                            };
                            if tx.send(shot).is_err() {
                                return; // the source is gone
                            }
                        }
                        from = Some(to);
                    }
                })?
        };
        Ok(Self {
            config,
            camera,
            shots: rx,
            current: None,
            next_due: None,
            renderer: Some(renderer),
        })
    }

    /// The true camera the board is rendered through (the calibration's target).
    pub fn camera(&self) -> &Calibration {
        &self.camera
    }

    /// For the page and `/api/status`.
    pub fn describe(&self) -> String {
        let k = self.camera.intrinsics;
        format!(
            "synthetic board {}x{} ({} mm squares), {}x{} @ {} fps, true fx {:.1} fy {:.1}",
            HELD_BOARD.inner_cols,
            HELD_BOARD.inner_rows,
            HELD_BOARD.square_mm,
            self.config.width,
            self.config.height,
            self.config.fps,
            k.fx,
            k.fy
        )
    }

    /// Blocks until the next frame is due and returns it.
    pub fn next_frame(&mut self) -> RgbImage {
        let period = Duration::from_secs_f64(1.0 / self.config.fps.max(0.1));
        let now = Instant::now();
        let due = *self.next_due.get_or_insert(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        self.next_due = Some((due + period).max(Instant::now() - period));
        let expired = self.current.as_ref().is_none_or(|(_, left)| *left == 0);
        if expired {
            let next = if self.current.is_none() {
                // The very first picture: wait for it.
                self.shots.recv().ok()
            } else {
                self.shots.try_recv().ok()
            };
            if let Some(shot) = next {
                self.current = Some((shot.image, shot.periods));
            }
        }
        match &mut self.current {
            Some((image, left)) => {
                *left = left.saturating_sub(1);
                image.as_ref().clone()
            }
            None => RgbImage::new(self.config.width, self.config.height),
        }
    }
}

impl Drop for HeldBoard {
    fn drop(&mut self) {
        // Closing the channel ends the render thread at its next send.
        let (_, rx) = sync_channel(1);
        drop(std::mem::replace(&mut self.shots, rx));
        if let Some(t) = self.renderer.take() {
            if t.join().is_err() {
                tracing::error!("the held-board renderer panicked");
            }
        }
    }
}

fn interpolate(a: &Isometry3<f64>, b: &Isometry3<f64>, t: f64) -> Isometry3<f64> {
    let rotation = a.rotation.slerp(&b.rotation, t);
    let translation = a.translation.vector.lerp(&b.translation.vector, t);
    Isometry3::from_parts(Translation3::from(translation), rotation)
}

fn gray_to_rgb(gray: &GrayImage) -> RgbImage {
    RgbImage::from_fn(gray.width(), gray.height(), |x, y| {
        let v = gray.get_pixel(x, y).0[0];
        image::Rgb([v, v, v])
    })
}
