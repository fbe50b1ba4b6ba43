//! The synthetic demo source, the default of `stipple serve`: the project's renderer
//! ([`crate::source::synth`]) shows a patch of scalp that moves as a head in the chair does,
//! while a simulated artist's needle places pigment dots, mostly where the plan says.
//!
//! Motion (all deterministic from the seed): a slow drift of a few millimetres (two sines of
//! incommensurate periods per axis), small rotations (about ±2°), breathing (±0.4 % zoom at
//! 0.25 Hz) and, every 6-12 s, a quick turn: a 2-4 mm step in 0.35 s. The needle places one
//! dot every 0.5-1 s (1-2 dots per second, DOMAIN.md): with probability
//! [`DemoConfig::on_plan_fraction`] on the current recommendation (within 0.05 mm), otherwise
//! somewhere off the plan; while the plan offers no recommendation it waits. The source knows the true pose of every frame, so the pipeline can
//! measure how far the plan drifts on the skin.
//!
//! # Speed
//! The renderer paints a full camera model per pixel (about 20-60 ms a 1280x720 frame on two
//! cores), too slow to leave room for detection at 30 fps. So the demo renders a *plate*, a
//! view of the scene larger than the frame by the head's whole range of motion, and each frame
//! is a shift of the plate (bilinear, about 2 ms). The head's rotation and breathing zoom are
//! slow, so they are rendered into the plate instead, four times a second:
//! each frame carries the rotation and zoom of its quarter second and the shift of its instant,
//! and its truth says exactly that. The needle's dots are painted into the scene and the plate
//! re-rendered, and the plate turned, on a painter thread, swapped in when ready (about 0.1 s
//! later, as ink shows after the needle lifts). Sensor noise and vignetting are therefore
//! frozen on the plate and move with the skin; the skin, its dots and their truth are the
//! renderer's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geometry::Similarity;
use crate::mailbox::Mailbox;
use crate::source::synth::{ChairKind, ChairOverlay, Pose, Scene, SceneParams, View};

/// Largest head offset from the scene centre, millimetres (the scene extends about 9 mm past
/// the view's corners).
const MAX_OFFSET_MM: f64 = 5.0;
/// Duration of a quick turn.
const TURN_S: f64 = 0.35;
/// Poses kept to map a plan made on an earlier frame back to the scene.
const POSE_HISTORY: usize = 240;

/// Settings of the demo source.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Seed of the scene, the motion and the needle.
    pub seed: u64,
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// Scale at the skin.
    pub px_per_mm: f64,
    /// Frames per second.
    pub fps: f64,
    /// Dots the needle places per second (mean).
    pub dots_per_second: f64,
    /// Fraction of dots placed on the recommended spot.
    pub on_plan_fraction: f64,
    /// Whether the head moves (off: a still head, for tests that need one).
    pub motion: bool,
    /// Whether the camera sees the chair too: longer hair, an ear, the cape, the room past
    /// the head, ink smears (all moving with the head), and the artist's gloved hand with the
    /// machine, its needle tip following the simulated needle.
    pub chair: bool,
    /// When the hand comes into view (seconds from the start; it slides in from below): the
    /// artist takes up the machine once the client is seated and the plan is up.
    pub hand_from_s: f64,
}

impl DemoConfig {
    /// 1280x720 at 20 px/mm and 30 fps, the size of `calibration/synthetic.toml`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            width: 1280,
            height: 720,
            px_per_mm: 20.0,
            fps: 30.0,
            dots_per_second: 1.5,
            on_plan_fraction: 0.85,
            motion: true,
            chair: true,
            hand_from_s: 1.5,
        }
    }
}

/// The plan as the needle sees it: recommendations in pixels of frame `seq`, in order.
#[derive(Debug, Clone, Default)]
pub struct NeedleHint {
    /// The frame the targets are expressed in.
    pub seq: u64,
    /// Recommended spots, first one first.
    pub targets_in_image: Vec<[f64; 2]>,
}

/// One dot the simulated needle placed: the truth a recorded session is scored against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeedleDot {
    /// The source's frame counter when it was placed.
    pub frame: u64,
    /// Where, scene millimetres.
    pub in_scene_mm: [f64; 2],
    /// Whether it was aimed at the plan's current recommendation (else placed off the plan).
    pub on_plan: bool,
}

/// Head motion as a function of time.
#[derive(Debug, Clone)]
struct HeadMotion {
    phase: [f64; 5],
    /// Quick turns: (start time s, step mm).
    turns: Vec<(f64, [f64; 2])>,
}

impl HeadMotion {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        let phase = [(); 5].map(|_| rng.gen_range(0.0..std::f64::consts::TAU));
        let mut turns = Vec::new();
        let mut t = rng.gen_range(4.0..8.0);
        let mut offset = [0.0f64, 0.0];
        while t < 3600.0 {
            let len = rng.gen_range(2.0..4.0);
            let mut dir = rng.gen_range(0.0..std::f64::consts::TAU);
            // Head back toward the centre when far from it.
            if offset[0].hypot(offset[1]) > 1.0 {
                dir = (-offset[1]).atan2(-offset[0]) + rng.gen_range(-0.8..0.8);
            }
            let step = [len * dir.cos(), len * dir.sin()];
            offset = [offset[0] + step[0], offset[1] + step[1]];
            turns.push((t, step));
            t += rng.gen_range(6.0..12.0);
        }
        Self { phase, turns }
    }

    fn pose(&self, t: f64) -> Pose {
        use std::f64::consts::TAU;
        let p = &self.phase;
        let mut dx = 1.5 * (TAU * t / 23.0 + p[0]).sin() + 1.0 * (TAU * t / 37.0 + p[1]).sin();
        let mut dy = 1.2 * (TAU * t / 29.0 + p[2]).sin() + 0.8 * (TAU * t / 41.0 + p[3]).sin();
        let mut turn = [0.0, 0.0];
        for &(start, step) in &self.turns {
            if t <= start {
                break;
            }
            let u = ((t - start) / TURN_S).min(1.0);
            let s = u * u * (3.0 - 2.0 * u); // smoothstep
            turn = [turn[0] + s * step[0], turn[1] + s * step[1]];
        }
        dx += turn[0];
        dy += turn[1];
        let r = dx.hypot(dy);
        if r > MAX_OFFSET_MM {
            dx *= MAX_OFFSET_MM / r;
            dy *= MAX_OFFSET_MM / r;
        }
        Pose {
            dx_mm: dx,
            dy_mm: dy,
            angle_rad: 0.035 * (TAU * t / 31.0 + p[4]).sin(),
            scale: 1.0 + 0.004 * (TAU * t / 4.0).sin(),
        }
    }
}

/// The live synthetic head with its needle.
#[derive(Debug)]
pub struct DemoSource {
    config: DemoConfig,
    plate: Plate,
    painter: Painter,
    motion: HeadMotion,
    rng: ChaCha8Rng,
    hints: Arc<Mailbox<NeedleHint>>,
    hint: NeedleHint,
    poses: VecDeque<(u64, Pose)>,
    frame: u64,
    next_due: Option<Instant>,
    next_dot_s: f64,
    last_hint_used: u64,
    dots_placed: u64,
    needle: Vec<NeedleDot>,
    /// Off: frames come as fast as they render (simulated time), for tests and benchmarks.
    paced: bool,
    /// The head's surroundings, laid over each plate.
    head: Option<Arc<ChairOverlay>>,
    /// The artist's hand, laid over each frame with the needle tip at `tip_mm`.
    hand: Option<ChairOverlay>,
    /// Needle tip, scene millimetres.
    tip_mm: [f64; 2],
    /// Whether the hand has come into view.
    hand_in: bool,
    /// The turn the plate should carry, and the [`TURN_EVERY_S`] step it was asked for in.
    turn_wanted: Turn,
    turn_step: Option<u64>,
    /// Scratch rows of [`shift_into`].
    rows: [Vec<u32>; 2],
}

/// How fast the needle tip travels between dots, millimetres per second.
const TIP_SPEED_MM_S: f64 = 12.0;

/// A rendered view of the scene larger than the frame, turned by the head's rotation and zoom.
#[derive(Debug, Clone)]
struct Plate {
    image: Arc<Packed>,
    /// Scene millimetres to plate pixels.
    plate_from_scene: Similarity,
    /// The rotation and zoom the plate carries; every frame warped from it has this pose's
    /// angle and scale, so that the warp is a shift.
    turn: Turn,
}

/// The head's rotation and breathing zoom, as rendered into a plate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Turn {
    angle_rad: f64,
    scale: f64,
}

impl Turn {
    const NONE: Turn = Turn {
        angle_rad: 0.0,
        scale: 1.0,
    };

    fn of(pose: &Pose) -> Self {
        Self {
            angle_rad: pose.angle_rad,
            scale: pose.scale,
        }
    }
}

/// How often the plate is turned to follow the head's rotation and zoom (s). Both are slow
/// (under 0.01 rad/s and 0.7 %/s), so a frame's edge moves at most about 1.5 px between turns,
/// while the quick turns of the head (a shift) stay smooth.
const TURN_EVERY_S: f64 = 0.25;

/// `base` (rendered at the identity pose) rotated and zoomed about its centre by `turn`.
fn turn_plate(base: &Plate, turn: Turn) -> Plate {
    if turn == Turn::NONE {
        return base.clone();
    }
    let _span = tracing::debug_span!("demo_turn").entered();
    let (w, h) = (base.image.width, base.image.height);
    let c = [w as f64 / 2.0, h as f64 / 2.0];
    let about = Similarity::new(turn.scale, turn.angle_rad, 0.0, 0.0).apply(c);
    let turned_from_base =
        Similarity::new(turn.scale, turn.angle_rad, c[0] - about[0], c[1] - about[1]);
    let mut image = RgbImage::new(w as u32, h as u32);
    warp_into(&base.image, &turned_from_base.inverse(), &mut image);
    Plate {
        image: Arc::new(Packed::from_rgb(&image)),
        plate_from_scene: turned_from_base.compose(&base.plate_from_scene),
        turn,
    }
}

/// Paints pigment into the scene, re-renders the plate and turns it with the head: on its own
/// thread when paced, in line when free-running (so tests see each dot on the next frame and
/// each turn on time, deterministically).
#[derive(Debug)]
enum Painter {
    Inline {
        scene: Box<Scene>,
        seed: u64,
        /// The plate at the identity pose.
        base: Plate,
    },
    Thread {
        jobs: std::sync::mpsc::Sender<PaintJob>,
        plates: Arc<Mailbox<Plate>>,
    },
}

/// Work for the painter thread.
#[derive(Debug, Clone, Copy)]
enum PaintJob {
    /// A needle dot: scene x, y and radius (mm), shade.
    Dot([f64; 4]),
    /// The turn the next plate should carry.
    Turn(Turn),
}

/// How long the needle remembers the dots it placed (s), and how far from them a target must
/// be (mm) to be worked: about the planner's minimum spacing.
const RECENT_NEEDLE_S: f64 = 10.0;
const NEEDLE_CLEAR_MM: f64 = 0.5;

/// Extra plate margin around the frame, millimetres: the head's offset plus rotation slack.
const PLATE_MARGIN_MM: f64 = MAX_OFFSET_MM + 2.0;

fn render_plate(scene: &Scene, seed: u64, head: Option<&ChairOverlay>) -> Plate {
    let _span = tracing::debug_span!("demo_plate").entered();
    let p = scene.params();
    let ppm = scene.px_per_mm();
    let mut image = scene.render(&Pose::default(), seed).image;
    if let Some(head) = head {
        head.paint(&mut image, [0.0, 0.0], None);
    }
    Plate {
        image: Arc::new(Packed::from_rgb(&image)),
        plate_from_scene: image_from_scene(&Pose::default(), ppm, p.width, p.height),
        turn: Turn::NONE,
    }
}

/// A plate held as one `u32` per pixel (`0x00BBGGRR`), so that the warp blends red and blue in
/// one multiply and green in another instead of three byte lanes.
#[derive(Debug)]
struct Packed {
    width: usize,
    height: usize,
    pixels: Vec<u32>,
}

impl Packed {
    fn from_rgb(image: &RgbImage) -> Self {
        let pixels = image
            .as_raw()
            .chunks_exact(3)
            .map(|p| u32::from(p[0]) | u32::from(p[1]) << 8 | u32::from(p[2]) << 16)
            .collect();
        Self {
            width: image.width() as usize,
            height: image.height() as usize,
            pixels,
        }
    }
}

/// Red and blue lanes of a packed pixel, and its green lane.
const RB: u32 = 0x00FF_00FF;
const G: u32 = 0x0000_FF00;

/// `a + (b - a) * f / 256` in every lane of two packed pixels, rounded; `f` in 0..=256. No lane
/// overflows: each is at most 255 * 256 plus the rounding half.
#[inline]
fn lerp_packed(a: u32, b: u32, f: u32) -> u32 {
    let g = 256 - f;
    let rb = (((a & RB) * g + (b & RB) * f + 0x0080_0080) >> 8) & RB;
    let gg = (((a & G) * g + (b & G) * f + 0x0000_8000) >> 8) & G;
    rb | gg
}

/// Bilinear affine warp: `dst(x, y) = src(src_from_dst(x, y))`, pixel centres at +0.5,
/// clamped at the border. Fixed point (16.16 positions, 8-bit weights), two lanes a multiply:
/// a few milliseconds for 1280x720, which is what makes the demo source cheap.
fn warp_into(src: &Packed, src_from_dst: &Similarity, dst: &mut RgbImage) {
    const ONE: f64 = 65536.0;
    let (sw, sh) = (src.width as i64, src.height as i64);
    if sw == 0 || sh == 0 {
        return;
    }
    let dw = dst.width() as usize;
    let s = &src.pixels;
    let stride = src.width;
    let t = src_from_dst;
    let (du, dv) = ((t.a * ONE) as i64, (t.b * ONE) as i64);
    for (y, row) in dst.as_mut().chunks_exact_mut(dw * 3).enumerate() {
        let start = t.apply([0.5, y as f64 + 0.5]);
        let mut u = ((start[0] - 0.5) * ONE) as i64;
        let mut v = ((start[1] - 0.5) * ONE) as i64;
        for px in row.chunks_exact_mut(3) {
            let (x0, y0) = (u >> 16, v >> 16);
            let (fx, fy) = (((u >> 8) & 0xFF) as u32, ((v >> 8) & 0xFF) as u32);
            let (p00, p01, p10, p11) = if x0 >= 0 && y0 >= 0 && x0 + 1 < sw && y0 + 1 < sh {
                let i = y0 as usize * stride + x0 as usize;
                match (s.get(i..i + 2), s.get(i + stride..i + stride + 2)) {
                    (Some(top), Some(bottom)) => (top[0], top[1], bottom[0], bottom[1]),
                    _ => (0, 0, 0, 0),
                }
            } else {
                let at = |x: i64, y: i64| {
                    s[y.clamp(0, sh - 1) as usize * stride + x.clamp(0, sw - 1) as usize]
                };
                (
                    at(x0, y0),
                    at(x0 + 1, y0),
                    at(x0, y0 + 1),
                    at(x0 + 1, y0 + 1),
                )
            };
            let p = lerp_packed(lerp_packed(p00, p01, fx), lerp_packed(p10, p11, fx), fy);
            px[0] = p as u8;
            px[1] = (p >> 8) as u8;
            px[2] = (p >> 16) as u8;
            u += du;
            v += dv;
        }
    }
}

/// [`warp_into`] for a pure shift, `dst(x, y) = src(x + tx, y + ty)`, with the same fixed-point
/// weights in the same order (identical output) but one pair of weights for the whole frame:
/// each plate row is blended horizontally once, and each output row is a vertical blend of two
/// such rows, straight loops the compiler vectorises. `rows` is scratch space.
fn shift_into(src: &Packed, tx: f64, ty: f64, dst: &mut RgbImage, rows: &mut [Vec<u32>; 2]) {
    const ONE: f64 = 65536.0;
    let (sw, sh) = (src.width as i64, src.height as i64);
    if sw == 0 || sh == 0 {
        return;
    }
    let dw = dst.width() as usize;
    let (u, v) = ((tx * ONE) as i64, (ty * ONE) as i64);
    let (x0, y0) = (u >> 16, v >> 16);
    let (fx, fy) = (((u >> 8) & 0xFF) as u32, ((v >> 8) & 0xFF) as u32);
    // Plate row `y` (clamped) blended between columns x0 + i and x0 + i + 1, clamped.
    let blend_row = |y: i64, out: &mut Vec<u32>| {
        let y = y.clamp(0, sh - 1) as usize * src.width;
        let row = &src.pixels[y..y + src.width];
        out.clear();
        if x0 >= 0 && x0 + (dw as i64) < sw {
            let row = &row[x0 as usize..x0 as usize + dw + 1];
            out.extend(
                row.iter()
                    .zip(&row[1..])
                    .map(|(&a, &b)| lerp_packed(a, b, fx)),
            );
        } else {
            let at = |x: i64| row[x.clamp(0, sw - 1) as usize];
            out.extend((0..dw as i64).map(|i| lerp_packed(at(x0 + i), at(x0 + i + 1), fx)));
        }
    };
    let [top, bottom] = rows;
    blend_row(y0, top);
    for (y, out) in dst.as_mut().chunks_exact_mut(dw * 3).enumerate() {
        blend_row(y0 + y as i64 + 1, bottom);
        for (px, (&a, &b)) in out.chunks_exact_mut(3).zip(top.iter().zip(bottom.iter())) {
            let p = lerp_packed(a, b, fy);
            px[0] = p as u8;
            px[1] = (p >> 8) as u8;
            px[2] = (p >> 16) as u8;
        }
        std::mem::swap(top, bottom);
    }
}

/// One demo frame with its truth.
#[derive(Debug)]
pub struct DemoFrame {
    /// The picture.
    pub image: RgbImage,
    /// The true `image_from_scene` (scene millimetres to pixels).
    pub image_from_scene: Similarity,
    /// Where the needle tip of the artist's hand is (pixels), when the demo shows it.
    pub hand_tip: Option<[f64; 2]>,
}

impl DemoSource {
    /// Generates the scene (about a second at 1280x720). The pipeline publishes the plan to
    /// `hints`; the needle reads the latest one.
    pub fn new(config: DemoConfig, hints: Arc<Mailbox<NeedleHint>>) -> Self {
        let margin_px = (2.0 * PLATE_MARGIN_MM * config.px_per_mm).ceil() as u32;
        let params = SceneParams {
            seed: config.seed,
            view: View::Rig,
            width: config.width + margin_px,
            height: config.height + margin_px,
            px_per_mm: Some(config.px_per_mm),
        };
        let mut scene = Scene::generate(&params);
        scene.set_jpeg_quality(None);
        let (hand, head) = if config.chair {
            // The hand is drawn with the head's chair, then laid over each frame on its own.
            let (w, h) = (config.width, config.height);
            scene.set_chair_in_view(Some(ChairKind::Working), true, w, h);
            let hand = scene.hand_overlay(w, h);
            // The head's surroundings are laid over each re-rendered plate of the bare scene:
            // painting them per plate would cost the painter ten times the render.
            let head = scene.head_overlay();
            scene.set_chair(None, false);
            (hand, head.map(Arc::new))
        } else {
            (None, None)
        };
        let base = render_plate(&scene, config.seed, head.as_deref());
        let plate = base.clone();
        let painter = Painter::Inline {
            scene: Box::new(scene),
            seed: config.seed,
            base,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xD3_A0);
        let motion = HeadMotion::new(&mut rng);
        let next_dot_s = 2.0;
        Self {
            config,
            plate,
            painter,
            motion,
            rng,
            hints,
            hint: NeedleHint::default(),
            poses: VecDeque::new(),
            frame: 0,
            next_due: None,
            next_dot_s,
            last_hint_used: 0,
            dots_placed: 0,
            needle: Vec::new(),
            paced: true,
            hand,
            head,
            tip_mm: [0.0, 0.0],
            hand_in: false,
            turn_wanted: Turn::NONE,
            turn_step: None,
            rows: [Vec::new(), Vec::new()],
        }
    }

    /// A short description for the page and `/api/status`.
    pub fn describe(&self) -> String {
        format!(
            "synthetic ({}x{} @ {} fps, {} px/mm, seed {})",
            self.config.width,
            self.config.height,
            self.config.fps,
            self.config.px_per_mm,
            self.config.seed
        )
    }

    /// Renders frames as fast as asked, in simulated time (`frame / fps`), instead of waiting
    /// for each to be due; for tests and benchmarks.
    pub fn free_run(&mut self) {
        self.paced = false;
    }

    /// Moves the scene to a painter thread (first paced frame).
    fn start_painter(&mut self) {
        let Painter::Inline { .. } = self.painter else {
            return;
        };
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<PaintJob>();
        let plates = Arc::new(Mailbox::new());
        let placeholder = Painter::Thread {
            jobs: jobs_tx,
            plates: plates.clone(),
        };
        let head = self.head.clone();
        let mut turn = self.plate.turn;
        let Painter::Inline {
            mut scene,
            seed,
            mut base,
        } = std::mem::replace(&mut self.painter, placeholder)
        else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("demo-painter".into())
            .spawn(move || {
                crate::threads::step_back(crate::threads::Role::Background);
                // Ends when the source (the sender) is dropped.
                while let Ok(first) = jobs_rx.recv() {
                    let mut dots = 0u64;
                    for job in std::iter::once(first).chain(jobs_rx.try_iter()) {
                        match job {
                            PaintJob::Dot(d) => {
                                scene.add_pigment(d[0], d[1], d[2], d[3]);
                                dots += 1;
                            }
                            PaintJob::Turn(t) => turn = t,
                        }
                    }
                    if dots > 0 {
                        base = render_plate(&scene, seed, head.as_deref());
                    }
                    plates.put(turn_plate(&base, turn));
                    tracing::trace!(dots, "plate repainted");
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(cause = %err, "no painter thread; the needle's dots will not show");
        }
    }

    /// Dots the simulated needle has placed.
    pub fn dots_placed(&self) -> u64 {
        self.dots_placed
    }

    /// Every dot the needle has placed, in order (the truth for the training report's tests).
    pub fn needle_dots(&self) -> &[NeedleDot] {
        &self.needle
    }

    /// The true pose at time `t_s` (seconds since start); exposed for tests.
    pub fn pose_at(&self, t_s: f64) -> Pose {
        if self.config.motion {
            self.motion.pose(t_s)
        } else {
            Pose::default()
        }
    }

    /// Waits until the next frame is due, moves the head, lets the needle work, renders.
    pub fn next_frame(&mut self) -> DemoFrame {
        if self.paced {
            let period = Duration::from_secs_f64(1.0 / self.config.fps.max(1.0));
            let now = Instant::now();
            let due = *self.next_due.get_or_insert(now);
            if due > now {
                std::thread::sleep(due - now);
            }
            // Fixed-rate schedule; after a stall, restart from now rather than bursting.
            let next = due + period;
            self.next_due = Some(if next + period < Instant::now() {
                Instant::now()
            } else {
                next
            });
        }

        let t = self.frame as f64 / self.config.fps;
        if let Some(h) = self.hints.take_timeout(Duration::ZERO) {
            self.hint = h;
        }
        if self.paced {
            self.start_painter();
        }
        // The head's rotation and zoom, a step at a time, rendered into the plate.
        let step = (t / TURN_EVERY_S).floor() as u64;
        if self.turn_step != Some(step) {
            self.turn_step = Some(step);
            self.turn_wanted = Turn::of(&self.pose_at(step as f64 * TURN_EVERY_S));
            match &mut self.painter {
                Painter::Inline { base, .. } => self.plate = turn_plate(base, self.turn_wanted),
                Painter::Thread { jobs, .. } => {
                    let _ = jobs.send(PaintJob::Turn(self.turn_wanted));
                }
            }
        }
        if let Painter::Thread { plates, .. } = &self.painter {
            if let Some(p) = plates.take_timeout(Duration::ZERO) {
                self.plate = p;
            }
        }
        // The frame's pose: the head's shift now, with the rotation and zoom the plate carries.
        let pose = Pose {
            angle_rad: self.plate.turn.angle_rad,
            scale: self.plate.turn.scale,
            ..self.pose_at(t)
        };
        if t >= self.next_dot_s {
            self.place_dot(&pose);
            let mean = 1.0 / self.config.dots_per_second.max(0.01);
            self.next_dot_s = t + self.rng.gen_range(0.67 * mean..1.33 * mean);
        }
        let _span = tracing::trace_span!("demo_render", frame = self.frame).entered();
        let truth = image_from_scene(
            &pose,
            self.config.px_per_mm,
            self.config.width,
            self.config.height,
        );
        let plate_from_image = self.plate.plate_from_scene.compose(&truth.inverse());
        let mut image = RgbImage::new(self.config.width, self.config.height);
        // The plate carries the frame's rotation and zoom, so this is a shift (up to rounding).
        if (plate_from_image.a - 1.0).abs() < 1e-9 && plate_from_image.b.abs() < 1e-9 {
            let (tx, ty) = (plate_from_image.tx, plate_from_image.ty);
            shift_into(&self.plate.image, tx, ty, &mut image, &mut self.rows);
        } else {
            warp_into(&self.plate.image, &plate_from_image, &mut image);
        }
        let hand_tip = (self.hand.is_some() && t >= self.config.hand_from_s).then(|| {
            self.move_tip(t, &pose);
            truth.apply(self.tip_mm)
        });
        if let (Some(hand), Some(tip)) = (&self.hand, hand_tip) {
            hand.paint(&mut image, tip, None);
        }
        self.poses.push_back((self.frame, pose));
        if self.poses.len() > POSE_HISTORY {
            self.poses.pop_front();
        }
        self.frame += 1;
        DemoFrame {
            image,
            image_from_scene: truth,
            hand_tip,
        }
    }

    /// Moves the needle tip one frame: toward the plan's next spot while the needle works,
    /// else (needle paused) along a slow loop over the middle of the view.
    fn move_tip(&mut self, t: f64, pose: &Pose) {
        let (w, h, ppm) = (self.config.width, self.config.height, self.config.px_per_mm);
        let working = self.config.dots_per_second > 0.0;
        // The next spot the needle has not just worked (it lifts off each dot it places).
        let goal = working
            .then(|| self.fresh_targets().next())
            .flatten()
            .map_or_else(
                || {
                    // A loop of about 40 s over the middle third of the view.
                    let (hw, hh) = (f64::from(w) / ppm / 4.0, f64::from(h) / ppm / 4.0);
                    let (x, y) =
                        pose.skin_from_image(ppm, w, h, f64::from(w) / 2.0, f64::from(h) / 2.0);
                    let a = std::f64::consts::TAU * t / 40.0;
                    [x + hw * a.sin(), y + hh * (2.0 * a).sin()]
                },
                |(x, y)| [x, y],
            );
        if !self.hand_in {
            // Slides in from below the view.
            let (x, y) = pose.skin_from_image(ppm, w, h, f64::from(w) / 2.0, f64::from(h) * 1.3);
            self.tip_mm = [x, y];
            self.hand_in = true;
        }
        let step = TIP_SPEED_MM_S / self.config.fps.max(1.0);
        let (dx, dy) = (goal[0] - self.tip_mm[0], goal[1] - self.tip_mm[1]);
        let d = dx.hypot(dy);
        if d <= step {
            self.tip_mm = goal;
        } else {
            self.tip_mm = [
                self.tip_mm[0] + dx / d * step,
                self.tip_mm[1] + dy / d * step,
            ];
        }
    }

    /// The plan's targets (scene mm, in the plan's order) that are not where the needle has
    /// placed a dot in the last few seconds: the plan cannot see a dot the hand still covers,
    /// but the artist knows it is there and does not needle the spot again.
    fn fresh_targets(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let (w, h, ppm) = (self.config.width, self.config.height, self.config.px_per_mm);
        let recent = (RECENT_NEEDLE_S * self.config.fps) as u64;
        let pose = self
            .poses
            .iter()
            .find(|(f, _)| *f == self.hint.seq)
            .map(|(_, p)| *p);
        self.hint
            .targets_in_image
            .iter()
            .filter_map(move |t| Some(pose?.skin_from_image(ppm, w, h, t[0], t[1])))
            .filter(move |q| {
                !self
                    .needle
                    .iter()
                    .rev()
                    .take_while(|d| d.frame + recent >= self.frame)
                    .any(|d| {
                        (q.0 - d.in_scene_mm[0]).hypot(q.1 - d.in_scene_mm[1]) < NEEDLE_CLEAR_MM
                    })
            })
    }

    /// The artist's hand, when the demo shows the chair.
    pub fn hand(&self) -> Option<&ChairOverlay> {
        self.hand.as_ref()
    }

    /// The frame counter of the source's next frame (the pipeline's `seq` follows it).
    pub fn frame_index(&self) -> u64 {
        self.frame
    }

    fn place_dot(&mut self, now: &Pose) {
        let (w, h, ppm) = (self.config.width, self.config.height, self.config.px_per_mm);
        // The plan's first target, mapped to the scene through the pose of the frame it was
        // made on.
        let planned = (self.hint.seq > self.last_hint_used)
            .then(|| self.fresh_targets().next())
            .flatten();
        let mut on_plan = false;
        let (x, y) = match planned {
            Some((x, y))
                if self
                    .rng
                    .gen_bool(self.config.on_plan_fraction.clamp(0.0, 1.0)) =>
            {
                self.last_hint_used = self.hint.seq;
                on_plan = true;
                (
                    x + self.rng.gen_range(-0.05..0.05),
                    y + self.rng.gen_range(-0.05..0.05),
                )
            }
            // Without a plan to follow (none yet, or the view's plan is done) the artist waits
            // for one rather than tattooing blind.
            None => return,
            Some(_) => {
                // Off the plan: somewhere in the middle of the view.
                let px = self.rng.gen_range(0.2 * f64::from(w)..0.8 * f64::from(w));
                let py = self.rng.gen_range(0.2 * f64::from(h)..0.8 * f64::from(h));
                now.skin_from_image(ppm, w, h, px, py)
            }
        };
        let radius_mm = self.rng.gen_range(0.2..0.28);
        let shade = self.rng.gen_range(0.75..0.9);
        match &mut self.painter {
            Painter::Inline { scene, seed, base } => {
                scene.add_pigment(x, y, radius_mm, shade);
                *base = render_plate(scene, *seed, self.head.as_deref());
                self.plate = turn_plate(base, self.turn_wanted);
            }
            Painter::Thread { jobs, .. } => {
                let _ = jobs.send(PaintJob::Dot([x, y, radius_mm, shade]));
            }
        }
        self.tip_mm = [x, y];
        self.dots_placed += 1;
        self.needle.push(NeedleDot {
            frame: self.frame,
            in_scene_mm: [x, y],
            on_plan,
        });
        tracing::debug!(
            x_mm = x,
            y_mm = y,
            on_plan = planned.is_some(),
            "needle placed a dot"
        );
    }
}

/// The similarity a [`Pose`] applies: scene millimetres to image pixels.
pub fn image_from_scene(pose: &Pose, px_per_mm: f64, width: u32, height: u32) -> Similarity {
    let k = pose.scale * px_per_mm;
    let a = k * pose.angle_rad.cos();
    let b = k * pose.angle_rad.sin();
    let centre = [f64::from(width) / 2.0, f64::from(height) / 2.0];
    let rotated = Similarity {
        a,
        b,
        tx: 0.0,
        ty: 0.0,
    }
    .apply([pose.dx_mm, pose.dy_mm]);
    Similarity {
        a,
        b,
        tx: centre[0] - rotated[0],
        ty: centre[1] - rotated[1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_matches_the_renderer_convention() {
        let pose = Pose {
            dx_mm: 1.5,
            dy_mm: -2.0,
            angle_rad: 0.03,
            scale: 1.002,
        };
        let t = image_from_scene(&pose, 20.0, 1280, 720);
        let (x, y) = pose.image_from_skin(20.0, 1280, 720, 3.0, 4.0);
        let q = t.apply([3.0, 4.0]);
        assert!((q[0] - x).abs() < 1e-9 && (q[1] - y).abs() < 1e-9);
    }

    #[test]
    fn warp_shifts_by_the_transform() {
        let src = RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 7]));
        let packed = Packed::from_rgb(&src);
        let mut dst = RgbImage::new(20, 10);
        // dst pixel (x, y) samples src at (x + 5, y + 3): a pure shift is exact.
        warp_into(&packed, &Similarity::translation(5.0, 3.0), &mut dst);
        assert_eq!(dst.get_pixel(4, 2), src.get_pixel(9, 5));
        // Half a pixel averages neighbours, in every channel.
        warp_into(&packed, &Similarity::translation(5.5, 3.5), &mut dst);
        let mean = |c: usize| {
            let q =
                [(9, 5), (10, 5), (9, 6), (10, 6)].map(|(x, y)| u32::from(src.get_pixel(x, y)[c]));
            (q.iter().sum::<u32>() + 2) / 4
        };
        let got = dst.get_pixel(4, 2);
        for c in 0..3 {
            assert!(
                u32::from(got[c]).abs_diff(mean(c)) <= 1,
                "channel {c}: {got:?}"
            );
        }
        // Outside the plate the border is held.
        warp_into(&packed, &Similarity::translation(-50.0, -50.0), &mut dst);
        assert_eq!(dst.get_pixel(0, 0), src.get_pixel(0, 0));
    }

    #[test]
    fn the_shift_is_the_general_warp_of_a_translation() {
        let src = RgbImage::from_fn(50, 40, |x, y| {
            image::Rgb([(x * 5 + y) as u8, (y * 6) as u8, (x * y) as u8])
        });
        let packed = Packed::from_rgb(&src);
        let mut rows = [Vec::new(), Vec::new()];
        // Inside the plate, across its border on every side, fractions of every sign.
        for (tx, ty) in [
            (5.3, 3.7),
            (0.0, 0.0),
            (-2.6, -1.2),
            (38.9, 33.4),
            (-60.0, 12.5),
        ] {
            let (mut general, mut shifted) = (RgbImage::new(20, 10), RgbImage::new(20, 10));
            warp_into(&packed, &Similarity::translation(tx, ty), &mut general);
            shift_into(&packed, tx, ty, &mut shifted, &mut rows);
            assert_eq!(general, shifted, "shift ({tx}, {ty})");
        }
    }

    #[test]
    fn frames_turn_with_the_head_a_step_at_a_time() {
        let mut demo = DemoSource::new(
            DemoConfig {
                width: 160,
                height: 120,
                dots_per_second: 0.0,
                chair: false,
                ..DemoConfig::new(3)
            },
            Arc::new(Mailbox::new()),
        );
        demo.free_run();
        let mut angles = Vec::new();
        for i in 0..90u32 {
            let f = demo.next_frame();
            let t = f64::from(i) / 30.0;
            let step_t = (t / TURN_EVERY_S).floor() * TURN_EVERY_S;
            let want = demo.pose_at(step_t);
            // The frame's truth carries the head's rotation and zoom of its step, and its shift
            // of this instant.
            assert!((f.image_from_scene.angle_rad() - want.angle_rad).abs() < 1e-12);
            assert!((f.image_from_scene.scale() - 20.0 * want.scale).abs() < 1e-9);
            let now = demo.pose_at(t);
            let exact = image_from_scene(
                &Pose {
                    angle_rad: want.angle_rad,
                    scale: want.scale,
                    ..now
                },
                20.0,
                160,
                120,
            );
            assert!((exact.tx - f.image_from_scene.tx).abs() < 1e-9);
            angles.push(f.image_from_scene.angle_rad());
        }
        angles.dedup();
        // Three seconds: twelve steps, each a different angle.
        assert_eq!(angles.len(), 12, "{angles:?}");
    }

    #[test]
    fn head_motion_stays_in_the_scene() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let m = HeadMotion::new(&mut rng);
        for i in 0..3600 {
            let p = m.pose(f64::from(i) * 0.1);
            assert!(p.dx_mm.hypot(p.dy_mm) <= MAX_OFFSET_MM + 1e-9);
            assert!(p.angle_rad.abs() < 0.05);
        }
    }
}
