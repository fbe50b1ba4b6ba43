//! The scene: everything on a patch of scalp, laid out in skin millimetres from one seed, and
//! painted once into an albedo texture that every frame samples.
//!
//! Layout follows the domain numbers: follicular units of 1-4 hairs at 60-100 per cm² where hair
//! is full (random sequential addition with a minimum spacing, never a grid), thinned by a smooth
//! per-scene field toward a bald zone where faint miniaturised hairs remain; healed pigment dots
//! mostly in the thin zones; negatives (scars, moles, strands, glare) that nothing sits under.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info_span};

use super::camera::Camera;
use super::chair::{Chair, ChairKind, ChairOverlay, Light};
use super::noise;
use super::skin::{ColourModel, Palette};
use super::texture::{smoothstep, Texture};
use super::truth::{
    MaskRuns, NegativeKind, Shape, Truth, TruthHair, TruthNegative, TruthPigment, TruthUnit, View,
};
use super::{dermoscope, paint, rig, skin, Pose, SceneParams, SynthFrame};
use super::{DERMOSCOPE_PX_PER_MM, RIG_PX_PER_MM};

/// How much larger than the frame diagonal the painted skin is, so the demo can move and turn.
const EXTENT_OVER_DIAGONAL: f64 = 1.25;
/// Follicular units per cm² where hair is full (rig), drawn per scene.
const RIG_UNITS_PER_CM2: (f64, f64) = (66.0, 94.0);
/// Minimum distance between two unit centres at rig scale (mm).
const RIG_MIN_SPACING_MM: (f64, f64) = (0.35, 0.42);
/// Follicular units per cm² in a dermoscope frame where hair is full.
const DERMO_UNITS_PER_CM2: (f64, f64) = (55.0, 90.0);
/// Share of dermoscope scenes taken in cross-polarised light.
const DERMO_POLARISED_P: f64 = 0.5;
/// Minimum distance between two follicle openings in a dermoscope frame (mm).
const DERMO_MIN_SPACING_MM: f64 = 0.62;
/// Clearance kept between a unit and any negative it must not sit under (mm).
const NEGATIVE_CLEARANCE_MM: f64 = 0.15;
/// Clearance kept between a pigment dot and a unit or another dot (mm).
const PIGMENT_CLEARANCE_MM: f64 = 0.12;
/// Rig hair tip radius (mm).
const RIG_TIP_RADIUS_MM: (f64, f64) = (0.05, 0.12);
/// Largest distance of a hair from its unit centre at rig scale (mm): one opening.
const RIG_UNIT_SPREAD_MM: f64 = 0.065;
/// Dermoscope shaft radius (mm): shafts are 60-110 um thick.
const DERMO_SHAFT_RADIUS_MM: (f64, f64) = (0.03, 0.055);
/// Largest distance of a shaft's exit from the opening centre (mm).
const DERMO_UNIT_SPREAD_MM: f64 = 0.035;
/// Typical visible length of shaved stubble in a dermoscope scene (mm), drawn per scene.
const DERMO_STUBBLE_MM: (f64, f64) = (0.3, 2.2);
/// Share of dermoscope scenes shaved within the last day: stubs barely out of the skin.
const DERMO_FRESH_SHAVE_P: f64 = 0.15;
/// Visible length of freshly shaved stubs (mm).
const DERMO_FRESH_MM: (f64, f64) = (0.12, 0.3);
/// Share of dermoscope scenes with longer, unshaved hair, and its length (mm).
const DERMO_LONG_HAIR_P: f64 = 0.15;
/// Visible length of longer hair in a dermoscope scene (mm).
const DERMO_LONG_MM: (f64, f64) = (2.5, 5.0);
/// Healed pigment dot radius (mm).
const PIGMENT_RADIUS_MM: (f64, f64) = (0.1, 0.3);

/// One hair, relative to its unit.
#[derive(Debug, Clone)]
pub(crate) struct Hair {
    /// Offset of the hair's exit from the unit centre (mm).
    pub(crate) dx_mm: f64,
    /// Offset of the hair's exit from the unit centre (mm).
    pub(crate) dy_mm: f64,
    /// Direction the hair leans, skin frame (radians).
    pub(crate) angle_rad: f64,
    /// Visible length of the stub (rig) or shaft (dermoscope), mm.
    pub(crate) length_mm: f64,
    /// Tip (rig) or shaft (dermoscope) radius, mm.
    pub(crate) radius_mm: f64,
    /// How dark the hair is, 0 (skin) ..= 1 (full hair colour).
    pub(crate) darkness: f64,
}

/// One follicular unit in skin space.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// Centre of the opening (mm).
    pub(crate) x_mm: f64,
    /// Centre of the opening (mm).
    pub(crate) y_mm: f64,
    /// 1-4 hairs.
    pub(crate) hairs: Vec<Hair>,
    /// A faint thin hair of the thinning zone (vellus in the dermoscope).
    pub(crate) miniaturised: bool,
}

impl Unit {
    /// Radius enclosing the tips (rig) or the opening (mm).
    pub(crate) fn radius_mm(&self) -> f64 {
        self.hairs
            .iter()
            .map(|h| h.dx_mm.hypot(h.dy_mm) + h.radius_mm)
            .fold(0.0, f64::max)
    }
}

/// One healed pigment dot in skin space.
#[derive(Debug, Clone)]
pub(crate) struct Pigment {
    /// Centre (mm).
    pub(crate) x_mm: f64,
    /// Centre (mm).
    pub(crate) y_mm: f64,
    /// Radius (mm).
    pub(crate) radius_mm: f64,
    /// Darkness 0 ..= 1.
    pub(crate) shade: f64,
    /// Seed of its irregular outline.
    pub(crate) seed: u64,
}

/// One negative in skin space (glare lives with the camera instead).
#[derive(Debug, Clone)]
pub(crate) struct Negative {
    /// What it is.
    pub(crate) kind: NegativeKind,
    /// Where, in skin millimetres.
    pub(crate) shape: Shape,
    /// Seed of its texture.
    pub(crate) seed: u64,
}

/// The smooth per-scene fields: hair density (thinning) and hair direction.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    seed: u64,
    /// Unit vector of the thinning gradient (toward full hair).
    dir: (f64, f64),
    /// Position of the ramp's middle along `dir` (mm).
    offset_mm: f64,
    /// Half width of the ramp (mm); `None` means no thinning at all.
    ramp_mm: Option<f64>,
    /// A bald blob: centre, radius (mm), depth.
    blob: Option<(f64, f64, f64, f64)>,
    /// Scale of the density wobble (mm).
    wobble_mm: f64,
    /// Mean hair direction (radians).
    angle0: f64,
    /// Scale over which the direction turns (mm).
    angle_scale_mm: f64,
}

impl Fields {
    fn draw(rng: &mut ChaCha8Rng, view_half_mm: f64, view: View) -> Self {
        let a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
        let full = rng.gen_bool(0.18);
        let ramp = rng.gen_range(0.25..0.9) * view_half_mm;
        let offset = rng.gen_range(-0.5..0.5) * view_half_mm;
        let blob = if rng.gen_bool(0.45) {
            Some((
                rng.gen_range(-1.0..1.0) * view_half_mm,
                rng.gen_range(-0.6..0.6) * view_half_mm,
                rng.gen_range(0.25..0.6) * view_half_mm,
                rng.gen_range(0.5..1.0),
            ))
        } else {
            None
        };
        Self {
            seed: rng.gen(),
            dir: (a.cos(), a.sin()),
            offset_mm: offset,
            ramp_mm: (!full).then_some(ramp),
            blob: if full { None } else { blob },
            wobble_mm: view_half_mm * 0.5,
            angle0: rng.gen_range(0.0..std::f64::consts::TAU),
            angle_scale_mm: match view {
                View::Rig => rng.gen_range(12.0..30.0),
                View::Dermoscope => rng.gen_range(2.5..6.0),
            },
        }
    }

    /// Hair density relative to full, `0..=1` (1 = full, 0 = bald).
    pub(crate) fn density(&self, x: f64, y: f64) -> f64 {
        let Some(ramp) = self.ramp_mm else { return 1.0 };
        let along = x * self.dir.0 + y * self.dir.1 - self.offset_mm;
        let mut d = smoothstep(-ramp, ramp, along);
        if let Some((bx, by, br, depth)) = self.blob {
            let r2 = ((x - bx).powi(2) + (y - by).powi(2)) / (br * br);
            d *= 1.0 - depth * (-r2).exp();
        }
        d += 0.25 * noise::fbm(self.seed, x, y, self.wobble_mm, 3, 0.5) as f64;
        (d * 1.25 - 0.1).clamp(0.0, 1.0)
    }

    /// Direction hairs lean at a skin point (radians).
    pub(crate) fn angle(&self, x: f64, y: f64) -> f64 {
        self.angle0 + 2.2 * noise::fbm(self.seed ^ 0xA11, x, y, self.angle_scale_mm, 2, 0.5) as f64
    }
}

/// A uniform grid of discs for fast "is anything near here" queries.
struct DiscGrid {
    cell_mm: f64,
    origin_mm: f64,
    n: usize,
    cells: Vec<Vec<(f64, f64, f64)>>,
}

impl DiscGrid {
    fn new(half_mm: f64, cell_mm: f64) -> Self {
        let n = ((2.0 * half_mm / cell_mm).ceil() as usize).max(1);
        Self {
            cell_mm,
            origin_mm: -half_mm,
            n,
            cells: vec![Vec::new(); n * n],
        }
    }

    fn cell(&self, v: f64) -> usize {
        (((v - self.origin_mm) / self.cell_mm).floor().max(0.0) as usize).min(self.n - 1)
    }

    fn insert(&mut self, x: f64, y: f64, r: f64) {
        let (i, j) = (self.cell(x), self.cell(y));
        self.cells[j * self.n + i].push((x, y, r));
    }

    /// Whether any disc's edge is within `gap` of the disc (x, y, r). `gap + r + max r` must not
    /// exceed one cell.
    fn near(&self, x: f64, y: f64, r: f64, gap: f64) -> bool {
        let (i, j) = (self.cell(x), self.cell(y));
        for jj in j.saturating_sub(1)..=(j + 1).min(self.n - 1) {
            for ii in i.saturating_sub(1)..=(i + 1).min(self.n - 1) {
                for &(px, py, pr) in &self.cells[jj * self.n + ii] {
                    if (px - x).hypot(py - y) < r + pr + gap {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// A patch of scalp in skin millimetres, with its painted albedo and its camera.
///
/// Build one with [`Scene::generate`], look at it with [`Scene::render`], and tattoo it with
/// [`Scene::add_pigment`].
#[derive(Clone)]
pub struct Scene {
    params: SceneParams,
    px_per_mm: f64,
    fitzpatrick: u8,
    palette: Palette,
    fields: Fields,
    units: Vec<Unit>,
    pigment: Vec<Pigment>,
    negatives: Vec<Negative>,
    albedo: Texture,
    camera: Camera,
    chair: Option<Chair>,
}

impl std::fmt::Debug for Scene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scene")
            .field("params", &self.params)
            .field("fitzpatrick", &self.fitzpatrick)
            .field("units", &self.units.len())
            .field("pigment", &self.pigment.len())
            .field("negatives", &self.negatives.len())
            .field("texture", &(self.albedo.w, self.albedo.h))
            .finish()
    }
}

impl Scene {
    /// Lays out and paints the scene of `p`. Deterministic: same parameters, same scene.
    pub fn generate(p: &SceneParams) -> Scene {
        Self::generate_with(p, ColourModel::Standard)
    }

    /// [`Scene::generate`] with the ink and hair colours of `model`; the layout, skin, light
    /// and camera are those of [`Scene::generate`] for the same parameters.
    pub fn generate_with(p: &SceneParams, model: ColourModel) -> Scene {
        let _span = info_span!("synth_generate", seed = p.seed, view = ?p.view).entered();
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x5CA1_9000);
        let drawn_ppm = match p.view {
            View::Rig => rng.gen_range(RIG_PX_PER_MM.0..RIG_PX_PER_MM.1),
            View::Dermoscope => DERMOSCOPE_PX_PER_MM,
        };
        let px_per_mm = p
            .px_per_mm
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(drawn_ppm);
        let (w, h) = (p.width.max(1), p.height.max(1));
        let fitzpatrick: u8 = rng.gen_range(1..=6);
        let palette = Palette::draw(&mut rng, fitzpatrick, p.view, model);
        let half_mm = 0.5 * (w as f64).hypot(h as f64) * EXTENT_OVER_DIAGONAL / px_per_mm;
        let view_half_mm = 0.5 * (w.min(h) as f64) / px_per_mm;
        let fields = Fields::draw(&mut rng, view_half_mm, p.view);
        let skin_lum = (palette.skin[0] + palette.skin[1] + palette.skin[2]) / 3.0;
        // Polarised dermoscopy (half the scenes) cancels surface reflection: no glare, and
        // hair shafts without their specular line.
        let polarised = p.view == View::Dermoscope
            && (noise::mix64(p.seed ^ 0x9014_A215) as f64 / u64::MAX as f64) < DERMO_POLARISED_P;
        let camera = Camera::draw(&mut rng, p.view, w, h, skin_lum, polarised);

        let negatives = draw_negatives(&mut rng, p.view, half_mm, w, h, px_per_mm);
        let units = draw_units(
            &mut rng, p.view, half_mm, &fields, &negatives, &camera, px_per_mm, w, h,
        );
        let pigment = draw_pigment(
            &mut rng, p.view, half_mm, &fields, &units, &negatives, &camera, px_per_mm, w, h,
        );

        let n = (2.0 * half_mm * px_per_mm).ceil() as usize;
        let mut albedo = Texture::new(n, n, [-half_mm, -half_mm], px_per_mm, palette.skin);
        let paint_seed: u64 = rng.gen();
        {
            let _s = info_span!("paint").entered();
            skin::paint_base(&mut albedo, &palette, paint_seed, p.view);
            if p.view == View::Dermoscope {
                dermoscope::paint_surface(&mut albedo, &palette, paint_seed ^ 0xD5, &units);
            }
            for neg in &negatives {
                paint::negative_under(&mut albedo, &palette, neg);
            }
            for dot in &pigment {
                paint::pigment(&mut albedo, &palette, dot, 0.0);
            }
            match p.view {
                View::Rig => rig::paint_units(&mut albedo, &palette, &units),
                View::Dermoscope => {
                    let seed = paint_seed ^ 0x3A1;
                    dermoscope::paint_units(&mut albedo, &palette, &units, seed, polarised)
                }
            }
            for neg in &negatives {
                paint::negative_over(&mut albedo, &palette, neg, p.view);
            }
            grade(&mut albedo, &mut rng, p.view);
            albedo.blur(camera.blur_sigma_px);
            albedo.pack();
        }
        debug!(
            units = units.len(),
            pigment = pigment.len(),
            negatives = negatives.len(),
            px_per_mm,
            "scene generated"
        );
        Scene {
            params: SceneParams {
                width: w,
                height: h,
                px_per_mm: Some(px_per_mm),
                ..p.clone()
            },
            px_per_mm,
            fitzpatrick,
            palette,
            fields,
            units,
            pigment,
            negatives,
            albedo,
            camera,
            chair: None,
        }
    }

    /// The parameters the scene was generated with, `px_per_mm` resolved.
    pub fn params(&self) -> &SceneParams {
        &self.params
    }

    /// Scale at the skin at the identity pose (px/mm).
    pub fn px_per_mm(&self) -> f64 {
        self.px_per_mm
    }

    /// Fitzpatrick skin type of the scene, 1..=6.
    pub fn fitzpatrick(&self) -> u8 {
        self.fitzpatrick
    }

    /// Turns JPEG compression on (quality 1..=100) or off for later renders; the live demo turns
    /// it off to stay fast.
    pub fn set_jpeg_quality(&mut self, quality: Option<u8>) {
        self.camera.jpeg_quality = quality.map(|q| q.clamp(1, 100));
    }

    /// Hair density relative to full (`0..=1`) at a skin point: where the scalp thins.
    pub fn density_at(&self, x_mm: f64, y_mm: f64) -> f64 {
        self.fields.density(x_mm, y_mm)
    }

    /// The simulated needle: adds a freshly placed pigment dot (fresh black ink under the
    /// epidermis) at a skin point and repaints only
    /// the texture patch around it. `shade` is its darkness in `0..=1`.
    pub fn add_pigment(&mut self, x_mm: f64, y_mm: f64, radius_mm: f64, shade: f64) {
        let seed =
            noise::mix64(self.params.seed ^ (self.pigment.len() as u64).wrapping_mul(0x9E37));
        let dot = Pigment {
            x_mm,
            y_mm,
            radius_mm: radius_mm.max(0.01),
            shade: shade.clamp(0.0, 1.0),
            seed,
        };
        let blur_mm = self.camera.blur_sigma_px / self.px_per_mm;
        // A dot the needle has just placed is fresh ink, not healed.
        let fresh = Palette {
            ink: self.palette.fresh_ink,
            ..self.palette.clone()
        };
        paint::pigment(&mut self.albedo, &fresh, &dot, blur_mm);
        let reach = dot.radius_mm * 2.0 + 3.0 * blur_mm + 2.0 / self.px_per_mm;
        self.albedo
            .pack_rect(x_mm - reach, y_mm - reach, x_mm + reach, y_mm + reach);
        self.pigment.push(dot);
    }

    /// Puts the scene at the chair: what else the camera sees (see [`Chair`]), drawn from the
    /// scene's seed, its skin and its hair. `with_hand`: still frames show the artist's gloves
    /// and machine at a drawn needle position; the live demo paints the hand itself, per frame.
    pub fn set_chair(&mut self, kind: Option<ChairKind>, with_hand: bool) {
        let (w, h) = (self.params.width, self.params.height);
        self.set_chair_in_view(kind, with_hand, w, h);
    }

    /// [`Scene::set_chair`] for a camera that sees only the middle `width` x `height` pixels
    /// of the scene's frame (the live demo renders a larger plate and shows a moving part of
    /// it): the chair is laid out around that view.
    pub fn set_chair_in_view(
        &mut self,
        kind: Option<ChairKind>,
        with_hand: bool,
        width: u32,
        height: u32,
    ) {
        self.chair = kind.map(|kind| {
            let chair = Chair::draw(
                kind,
                self.params.seed,
                width,
                height,
                self.px_per_mm,
                self.palette.skin,
                self.palette.hair,
            );
            if with_hand {
                chair
            } else {
                chair.without_hand()
            }
        });
    }

    /// The chair's hand rendered once for frames of `width` x `height` at the scene's scale and
    /// light, to move with a needle (see [`ChairOverlay`]); `None` without a hand.
    pub fn hand_overlay(&self, width: u32, height: u32) -> Option<ChairOverlay> {
        let chair = self.chair.as_ref()?;
        ChairOverlay::hand(chair, width, height, self.px_per_mm, &self.camera.light())
    }

    /// The chair's head items (room, hair, cape, ear, smears, pools) over the scene's whole
    /// frame at the identity pose, to lay over re-rendered frames of the bare scene (the live
    /// demo's plates); `None` without a chair.
    pub fn head_overlay(&self) -> Option<ChairOverlay> {
        let chair = self.chair.as_ref()?;
        let (w, h) = (self.params.width, self.params.height);
        Some(ChairOverlay::head(
            chair,
            w,
            h,
            &Pose::default(),
            self.px_per_mm,
            &self.camera.light(),
        ))
    }

    /// Renders the scene through `pose`; `noise_seed` drives the sensor noise only.
    pub fn render(&self, pose: &Pose, noise_seed: u64) -> SynthFrame {
        let _span = info_span!("synth_render", seed = self.params.seed).entered();
        let mut image = self
            .camera
            .render(&self.albedo, pose, self.px_per_mm, noise_seed);
        let not_skin = self.paint_chair(Some(&mut image), pose, &self.camera.light());
        let image = self.camera.finish(image);
        SynthFrame {
            image,
            truth: self.truth_with(pose, not_skin),
        }
    }

    /// Paints the chair over a rendered frame (when given) and returns its not-skin mask.
    fn paint_chair(
        &self,
        mut image: Option<&mut image::RgbImage>,
        pose: &Pose,
        light: &Light<'_>,
    ) -> Option<image::GrayImage> {
        let chair = self.chair.as_ref()?;
        let (w, h) = (self.params.width, self.params.height);
        let mut mask = image::GrayImage::new(w, h);
        chair.paint_head(image.as_deref_mut(), &mut mask, pose, self.px_per_mm, light);
        if chair.has_hand() {
            let tip = chair.still_tip(w, h);
            chair.paint_hand(image, &mut mask, tip, pose.scale * self.px_per_mm, light);
        }
        Some(mask)
    }

    /// The ground truth of a frame seen through `pose`, in pixels; only what lies in the frame
    /// and, at the chair, only what no occluder hides.
    pub fn truth(&self, pose: &Pose) -> Truth {
        let not_skin = self.paint_chair(None, pose, &self.camera.light());
        self.truth_with(pose, not_skin)
    }

    fn truth_with(&self, pose: &Pose, not_skin: Option<image::GrayImage>) -> Truth {
        let (w, h) = (self.params.width, self.params.height);
        let k = pose.scale * self.px_per_mm;
        let to_px = |x: f64, y: f64| pose.image_from_skin(self.px_per_mm, w, h, x, y);
        let inside = |x: f64, y: f64| self.camera.visible(x, y);
        let units: Vec<TruthUnit> = self
            .units
            .iter()
            .filter_map(|u| {
                let (x, y) = to_px(u.x_mm, u.y_mm);
                inside(x, y).then(|| TruthUnit {
                    x,
                    y,
                    radius: u.radius_mm() * k,
                    hairs: u
                        .hairs
                        .iter()
                        .map(|hr| {
                            let (hx, hy) = to_px(u.x_mm + hr.dx_mm, u.y_mm + hr.dy_mm);
                            TruthHair {
                                x: hx,
                                y: hy,
                                radius: hr.radius_mm * k,
                                angle_rad: wrap_angle(hr.angle_rad + pose.angle_rad),
                                length_px: hr.length_mm * k,
                            }
                        })
                        .collect(),
                    miniaturised: u.miniaturised,
                })
            })
            .collect();
        let pigment: Vec<TruthPigment> = self
            .pigment
            .iter()
            .filter_map(|d| {
                let (x, y) = to_px(d.x_mm, d.y_mm);
                inside(x, y).then_some(TruthPigment {
                    x,
                    y,
                    radius: d.radius_mm * k,
                    shade: d.shade,
                })
            })
            .collect();
        let frame = Shape::Band {
            points: vec![[0.0, h as f64 / 2.0], [w as f64, h as f64 / 2.0]],
            half_width: h as f64 / 2.0,
        };
        let mut negatives: Vec<TruthNegative> = self
            .negatives
            .iter()
            .filter_map(|n| {
                let shape = map_shape(&n.shape, to_px, k);
                shape_touches(&shape, &frame, w, h).then_some(TruthNegative {
                    kind: n.kind,
                    shape,
                })
            })
            .collect();
        negatives.extend(self.camera.glare_truth());
        let not_skin = not_skin.map(|m| MaskRuns::from_mask(&m));
        let (mut units, mut pigment) = (units, pigment);
        if let Some(m) = &not_skin {
            units.retain(|u: &TruthUnit| !m.contains(u.x, u.y));
            pigment.retain(|d: &TruthPigment| !m.contains(d.x, d.y));
        }
        Truth {
            seed: self.params.seed,
            view: self.params.view,
            width: w,
            height: h,
            px_per_mm: k,
            fitzpatrick: self.fitzpatrick,
            units,
            pigment,
            negatives,
            not_skin,
        }
    }

    #[cfg(test)]
    pub(crate) fn units(&self) -> &[Unit] {
        &self.units
    }

    #[cfg(test)]
    pub(crate) fn negatives(&self) -> &[Negative] {
        &self.negatives
    }
}

/// A per-scene colour grade (saturation and gamma), as cameras and their processing differ.
fn grade(tex: &mut Texture, rng: &mut ChaCha8Rng, view: View) {
    let (sat, gamma) = match view {
        View::Rig => (rng.gen_range(0.85..1.1), rng.gen_range(0.92..1.08)),
        View::Dermoscope => (rng.gen_range(0.75..1.2), rng.gen_range(0.85..1.15)),
    };
    let (sat, gamma) = (sat as f32, gamma as f32);
    for c in tex.data.iter_mut() {
        let lum = (c[0] + c[1] + c[2]) / 3.0;
        for v in c.iter_mut() {
            *v = (lum + (*v - lum) * sat).clamp(0.0, 1.0).powf(gamma);
        }
    }
}

/// Angle wrapped to `-pi..pi`.
fn wrap_angle(a: f64) -> f64 {
    let t = std::f64::consts::TAU;
    let r = a.rem_euclid(t);
    if r > std::f64::consts::PI {
        r - t
    } else {
        r
    }
}

/// Maps a skin-space shape to pixels (`k` px per mm).
fn map_shape(shape: &Shape, f: impl Fn(f64, f64) -> (f64, f64), k: f64) -> Shape {
    match shape {
        Shape::Circle { x, y, r } => {
            let (px, py) = f(*x, *y);
            Shape::Circle {
                x: px,
                y: py,
                r: r * k,
            }
        }
        Shape::Band { points, half_width } => Shape::Band {
            points: points
                .iter()
                .map(|p| {
                    let (x, y) = f(p[0], p[1]);
                    [x, y]
                })
                .collect(),
            half_width: half_width * k,
        },
    }
}

/// Whether a pixel-space shape reaches into the `w` x `h` frame (checked on a coarse grid).
fn shape_touches(shape: &Shape, _frame: &Shape, w: u32, h: u32) -> bool {
    match shape {
        Shape::Circle { x, y, r } => {
            let cx = x.clamp(0.0, w as f64);
            let cy = y.clamp(0.0, h as f64);
            (cx - x).hypot(cy - y) <= *r
        }
        Shape::Band { points, half_width } => {
            // Any segment sample within the frame grown by the half width.
            points.windows(2).any(|s| {
                (0..=16).any(|t| {
                    let t = t as f64 / 16.0;
                    let x = s[0][0] + (s[1][0] - s[0][0]) * t;
                    let y = s[0][1] + (s[1][1] - s[0][1]) * t;
                    x >= -half_width
                        && y >= -half_width
                        && x <= w as f64 + half_width
                        && y <= h as f64 + half_width
                })
            })
        }
    }
}

/// Draws the skin-space negatives over the whole extent.
fn draw_negatives(
    rng: &mut ChaCha8Rng,
    view: View,
    half_mm: f64,
    w: u32,
    h: u32,
    ppm: f64,
) -> Vec<Negative> {
    let mut out = Vec::new();
    let view_area_mm2 = (w as f64 / ppm) * (h as f64 / ppm);
    let extent_area = 4.0 * half_mm * half_mm;
    let per_view = |n: f64| n * extent_area / view_area_mm2;
    let uniform = |rng: &mut ChaCha8Rng| {
        (
            rng.gen_range(-half_mm..half_mm),
            rng.gen_range(-half_mm..half_mm),
        )
    };
    let (p_strip, p_fue, p_mole, p_strand, p_yellow) = match view {
        View::Rig => (0.3, 0.45, 0.55, 0.5, 0.0),
        View::Dermoscope => (0.06, 0.12, 0.08, 0.25, 0.45),
    };
    if rng.gen_bool(p_strip) {
        // A gently curved band across the whole patch, passing near the frame.
        let y0 = rng.gen_range(-0.6..0.6) * (h as f64 / ppm / 2.0);
        let slope = rng.gen_range(-0.35..0.35);
        let wave = rng.gen_range(0.0..0.04) * half_mm;
        let phase: f64 = rng.gen_range(0.0..6.3);
        let turn: f64 = rng.gen_range(-0.4..0.4);
        let (c, s) = (turn.cos(), turn.sin());
        let points = (0..=24)
            .map(|i| {
                let x = -half_mm + 2.0 * half_mm * i as f64 / 24.0;
                let y = y0 + slope * x + wave * (x / half_mm * 3.0 + phase).sin();
                [c * x - s * y, s * x + c * y]
            })
            .collect();
        let half_width = match view {
            View::Rig => rng.gen_range(0.5..1.5),
            View::Dermoscope => rng.gen_range(0.5..1.0),
        };
        out.push(Negative {
            kind: NegativeKind::StripScar,
            shape: Shape::Band { points, half_width },
            seed: rng.gen(),
        });
    }
    if rng.gen_bool(p_fue) {
        let n = per_view(rng.gen_range(3.0..14.0_f64)).round() as usize;
        for _ in 0..n {
            let (x, y) = uniform(rng);
            let r = rng.gen_range(0.15..0.25);
            out.push(Negative {
                kind: NegativeKind::FueScar,
                shape: Shape::Circle { x, y, r },
                seed: rng.gen(),
            });
        }
    }
    if rng.gen_bool(p_mole) {
        let n = per_view(rng.gen_range(1.0..3.5_f64)).round().max(1.0) as usize;
        for _ in 0..n {
            let (x, y) = uniform(rng);
            let r = rng.gen_range(0.25..1.0);
            out.push(Negative {
                kind: NegativeKind::Mole,
                shape: Shape::Circle { x, y, r },
                seed: rng.gen(),
            });
        }
    }
    if rng.gen_bool(p_yellow) {
        let n = per_view(rng.gen_range(1.0..4.0_f64)).round().max(1.0) as usize;
        for _ in 0..n {
            let (x, y) = uniform(rng);
            let r = rng.gen_range(0.06..0.13);
            out.push(Negative {
                kind: NegativeKind::YellowDot,
                shape: Shape::Circle { x, y, r },
                seed: rng.gen(),
            });
        }
    }
    if rng.gen_bool(p_strand) {
        let n = per_view(rng.gen_range(1.0..3.5_f64)).round().max(1.0) as usize;
        for _ in 0..n {
            let (mut x, mut y) = uniform(rng);
            let len_mm = match view {
                View::Rig => rng.gen_range(8.0..40.0),
                View::Dermoscope => rng.gen_range(3.0..8.0),
            };
            let steps = 24;
            let step = len_mm / steps as f64;
            let mut a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            // Curvature (rad/mm) drifts smoothly: hair lies in gentle arcs, never kinks.
            // Total turn stays under about 2.5 rad, whatever the length.
            let max_curl = 2.5 / len_mm;
            let mut curl: f64 = rng.gen_range(-0.5..0.5) * max_curl;
            let mut points = vec![[x, y]];
            for _ in 0..steps {
                curl = (curl + rng.gen_range(-0.15..0.15) * max_curl).clamp(-max_curl, max_curl);
                a += curl * step;
                x += a.cos() * step;
                y += a.sin() * step;
                points.push([x, y]);
            }
            let half_width = rng.gen_range(0.028..0.05);
            out.push(Negative {
                kind: NegativeKind::Strand,
                shape: Shape::Band { points, half_width },
                seed: rng.gen(),
            });
        }
    }
    out
}

/// Whether a unit or dot at a skin point would sit under a negative (strands excepted).
fn under_negative(negatives: &[Negative], x: f64, y: f64, r: f64) -> bool {
    negatives
        .iter()
        .filter(|n| n.kind != NegativeKind::Strand)
        .any(|n| n.shape.distance(x, y) < r + NEGATIVE_CLEARANCE_MM)
}

/// Draws the follicular units: random sequential addition at full density, then thinning.
#[allow(clippy::too_many_arguments)]
fn draw_units(
    rng: &mut ChaCha8Rng,
    view: View,
    half_mm: f64,
    fields: &Fields,
    negatives: &[Negative],
    camera: &Camera,
    ppm: f64,
    w: u32,
    h: u32,
) -> Vec<Unit> {
    let _s = info_span!("units").entered();
    let (per_cm2, spacing) = match view {
        View::Rig => (
            rng.gen_range(RIG_UNITS_PER_CM2.0..RIG_UNITS_PER_CM2.1),
            rng.gen_range(RIG_MIN_SPACING_MM.0..RIG_MIN_SPACING_MM.1),
        ),
        View::Dermoscope => (
            rng.gen_range(DERMO_UNITS_PER_CM2.0..DERMO_UNITS_PER_CM2.1),
            DERMO_MIN_SPACING_MM,
        ),
    };
    let area_mm2 = 4.0 * half_mm * half_mm;
    let target = (per_cm2 * area_mm2 / 100.0).round() as usize;
    let mut grid = DiscGrid::new(half_mm, spacing.max(0.3) * 1.5);
    let mut sites = Vec::with_capacity(target);
    let mut attempts = 0;
    while sites.len() < target && attempts < target * 8 {
        attempts += 1;
        let x = rng.gen_range(-half_mm..half_mm);
        let y = rng.gen_range(-half_mm..half_mm);
        if grid.near(x, y, 0.0, spacing) {
            continue;
        }
        grid.insert(x, y, 0.0);
        sites.push((x, y));
    }
    let tip = rng.gen_range(RIG_TIP_RADIUS_MM.0..RIG_TIP_RADIUS_MM.1 - 0.02);
    // Days since the last shave: every hair of a scene has about the same visible length.
    let stubble = if rng.gen_bool(DERMO_LONG_HAIR_P) {
        rng.gen_range(DERMO_LONG_MM.0..DERMO_LONG_MM.1)
    } else if rng.gen_bool(DERMO_FRESH_SHAVE_P) {
        rng.gen_range(DERMO_FRESH_MM.0..DERMO_FRESH_MM.1)
    } else {
        rng.gen_range(DERMO_STUBBLE_MM.0..DERMO_STUBBLE_MM.1)
    };
    let mut units = Vec::with_capacity(sites.len());
    for (x, y) in sites {
        let d = fields.density(x, y);
        let u: f64 = rng.gen();
        let mini = if u < d {
            false
        } else if u < d + 0.4 * (1.0 - d) {
            true
        } else {
            continue;
        };
        let unit = make_unit(rng, view, fields, x, y, d, mini, tip, stubble);
        let r = unit.radius_mm();
        if under_negative(negatives, x, y, r) {
            continue;
        }
        let (px, py) = Pose::default().image_from_skin(ppm, w, h, x, y);
        if camera.glare_covers(px, py, r * ppm) {
            continue;
        }
        units.push(unit);
    }
    units
}

/// Draws the hairs of one unit.
#[allow(clippy::too_many_arguments)]
fn make_unit(
    rng: &mut ChaCha8Rng,
    view: View,
    fields: &Fields,
    x: f64,
    y: f64,
    d: f64,
    mini: bool,
    tip_mm: f64,
    stubble_mm: f64,
) -> Unit {
    let mut n = if mini {
        1
    } else {
        match rng.gen_range(0.0..1.0) {
            v if v < 0.28 => 1,
            v if v < 0.8 => 2,
            v if v < 0.96 => 3,
            _ => 4,
        }
    };
    if n > 1 && rng.gen_bool((0.8 - d).clamp(0.0, 0.8)) {
        n -= 1;
    }
    let base_angle = fields.angle(x, y);
    let (spread, radius) = match view {
        View::Rig => (RIG_UNIT_SPREAD_MM, tip_mm),
        View::Dermoscope => (
            DERMO_UNIT_SPREAD_MM,
            rng.gen_range(DERMO_SHAFT_RADIUS_MM.0..DERMO_SHAFT_RADIUS_MM.1),
        ),
    };
    let mut hairs = Vec::with_capacity(n);
    let turn: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
    for i in 0..n {
        let (dx, dy) = if n == 1 {
            (0.0, 0.0)
        } else {
            let a = turn + std::f64::consts::TAU * i as f64 / n as f64 + rng.gen_range(-0.4..0.4);
            let r = spread * rng.gen_range(0.55..1.0);
            (r * a.cos(), r * a.sin())
        };
        let splay = match view {
            View::Rig => 0.25,
            View::Dermoscope => 0.12,
        };
        let angle = base_angle + rng.gen_range(-splay..splay);
        let hair = match (view, mini) {
            (View::Rig, false) => Hair {
                dx_mm: dx,
                dy_mm: dy,
                angle_rad: angle,
                length_mm: rng.gen_range(0.15..0.5),
                radius_mm: (radius * rng.gen_range(0.85..1.15))
                    .clamp(RIG_TIP_RADIUS_MM.0, RIG_TIP_RADIUS_MM.1),
                darkness: rng.gen_range(0.8..1.0),
            },
            (View::Rig, true) => Hair {
                dx_mm: dx,
                dy_mm: dy,
                angle_rad: angle,
                length_mm: rng.gen_range(0.08..0.25),
                radius_mm: rng.gen_range(0.05..0.065),
                darkness: rng.gen_range(0.6..0.75),
            },
            (View::Dermoscope, false) => Hair {
                dx_mm: dx,
                dy_mm: dy,
                angle_rad: angle,
                length_mm: (stubble_mm * rng.gen_range(0.6..1.4)).clamp(0.1, 7.0),
                radius_mm: (radius * rng.gen_range(0.9..1.1))
                    .clamp(DERMO_SHAFT_RADIUS_MM.0, DERMO_SHAFT_RADIUS_MM.1),
                darkness: rng.gen_range(0.85..1.0),
            },
            (View::Dermoscope, true) => Hair {
                dx_mm: dx,
                dy_mm: dy,
                angle_rad: angle + rng.gen_range(-0.5..0.5),
                length_mm: rng.gen_range(0.2..1.2),
                radius_mm: rng.gen_range(0.008..0.02),
                darkness: rng.gen_range(0.3..0.5),
            },
        };
        hairs.push(hair);
    }
    Unit {
        x_mm: x,
        y_mm: y,
        hairs,
        miniaturised: mini,
    }
}

/// Draws healed pigment dots, mostly where the hair is thin, never on a unit or another dot.
#[allow(clippy::too_many_arguments)]
fn draw_pigment(
    rng: &mut ChaCha8Rng,
    view: View,
    half_mm: f64,
    fields: &Fields,
    units: &[Unit],
    negatives: &[Negative],
    camera: &Camera,
    ppm: f64,
    w: u32,
    h: u32,
) -> Vec<Pigment> {
    let _s = info_span!("pigment").entered();
    let fill = if rng.gen_bool(0.25) {
        0.0
    } else {
        rng.gen_range(0.3..0.8)
    };
    let per_cm2 = match view {
        View::Rig => 70.0,
        View::Dermoscope => 60.0,
    };
    let area_mm2 = 4.0 * half_mm * half_mm;
    let attempts = (fill * per_cm2 * area_mm2 / 100.0 * 1.5) as usize;
    let cell = 2.0 * PIGMENT_RADIUS_MM.1
        + 2.0 * RIG_TIP_RADIUS_MM.1
        + 2.0 * DERMO_UNIT_SPREAD_MM
        + PIGMENT_CLEARANCE_MM
        + 0.3;
    let mut unit_grid = DiscGrid::new(half_mm, cell);
    for u in units {
        unit_grid.insert(u.x_mm, u.y_mm, u.radius_mm());
    }
    let mut dot_grid = DiscGrid::new(half_mm, cell);
    let (shade_lo, shade_hi) = (rng.gen_range(0.35..0.6), rng.gen_range(0.7..0.95));
    let mut out = Vec::new();
    for _ in 0..attempts {
        let x = rng.gen_range(-half_mm..half_mm);
        let y = rng.gen_range(-half_mm..half_mm);
        let r = rng.gen_range(PIGMENT_RADIUS_MM.0..PIGMENT_RADIUS_MM.1);
        let d = fields.density(x, y);
        if !rng.gen_bool((1.0 - d).powf(1.5) * 0.9 + 0.05) {
            continue;
        }
        if unit_grid.near(x, y, r, PIGMENT_CLEARANCE_MM)
            || dot_grid.near(x, y, r, PIGMENT_CLEARANCE_MM + 0.2)
            || under_negative(negatives, x, y, r)
            || {
                let (px, py) = Pose::default().image_from_skin(ppm, w, h, x, y);
                camera.glare_covers(px, py, r * ppm)
            }
        {
            continue;
        }
        dot_grid.insert(x, y, r);
        out.push(Pigment {
            x_mm: x,
            y_mm: y,
            radius_mm: r,
            shade: rng.gen_range(shade_lo..shade_hi),
            seed: rng.gen(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_zone_density_is_natural() {
        for seed in [1u64, 2, 3] {
            let p = SceneParams {
                seed,
                view: View::Rig,
                width: 640,
                height: 400,
                px_per_mm: Some(14.0),
            };
            let s = Scene::generate(&p);
            // Area (by sampling) and units where the field is full and no negative intrudes.
            let free = |x: f64, y: f64| {
                s.fields.density(x, y) >= 1.0 && !under_negative(s.negatives(), x, y, 0.2)
            };
            let half = s.albedo.w as f64 / s.px_per_mm / 2.0 * 0.95;
            let n = 200;
            let step = 2.0 * half / n as f64;
            let mut cells = 0usize;
            for j in 0..n {
                for i in 0..n {
                    if free(
                        -half + (i as f64 + 0.5) * step,
                        -half + (j as f64 + 0.5) * step,
                    ) {
                        cells += 1;
                    }
                }
            }
            let area_cm2 = cells as f64 * step * step / 100.0;
            if area_cm2 < 2.0 {
                continue;
            }
            let count = s
                .units()
                .iter()
                .filter(|u| u.x_mm.abs() < half && u.y_mm.abs() < half && free(u.x_mm, u.y_mm))
                .count();
            let per_cm2 = count as f64 / area_cm2;
            assert!(
                (60.0..=100.0).contains(&per_cm2),
                "seed {seed}: {per_cm2:.1} units/cm2"
            );
        }
    }

    #[test]
    fn units_keep_their_spacing() {
        let s = Scene::generate(&SceneParams {
            seed: 4,
            view: View::Rig,
            width: 320,
            height: 240,
            px_per_mm: Some(20.0),
        });
        let u = s.units();
        for (i, a) in u.iter().enumerate().take(300) {
            for b in &u[i + 1..] {
                assert!((a.x_mm - b.x_mm).hypot(a.y_mm - b.y_mm) >= RIG_MIN_SPACING_MM.0 - 1e-9);
            }
        }
    }
}
