//! Scoring a skin mask against the renderer's truth mask of what is not skin.

use image::RgbImage;

use crate::eval::detect::{score_frame, Score};
use crate::eval::plan::{score_plan_on_skin, PlanScore};
use crate::frame::Detection;
use crate::perception::{SkinMask, SkinMasker};
use crate::planning::{plan_image, PlannerConfig};
use crate::source::synth::{ChairKind, MaskRuns, Pose, Scene, SceneParams, View};

/// How a skin mask compares with the truth, by pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskScore {
    /// Intersection over union of the skin regions.
    pub iou: f64,
    /// Fraction of the frame that is skin in the truth.
    pub true_fraction: f64,
    /// Fraction of the frame the mask calls skin.
    pub fraction: f64,
}

/// Scores `mask` against `not_skin` (the truth; `None`: all skin).
pub fn score_mask(mask: &SkinMask, not_skin: Option<&MaskRuns>) -> MaskScore {
    let (w, h) = mask.dimensions();
    let truth = not_skin.map(MaskRuns::to_mask);
    let (mut inter, mut union, mut truth_skin, mut ours) = (0u64, 0u64, 0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let t = truth.as_ref().is_none_or(|m| m.get_pixel(x, y)[0] == 0);
            let o = mask.is_skin(f64::from(x) + 0.5, f64::from(y) + 0.5);
            inter += u64::from(t && o);
            union += u64::from(t || o);
            truth_skin += u64::from(t);
            ours += u64::from(o);
        }
    }
    let n = (u64::from(w) * u64::from(h)).max(1) as f64;
    MaskScore {
        iou: if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        },
        true_fraction: truth_skin as f64 / n,
        fraction: ours as f64 / n,
    }
}

/// Turns the chroma of `rgb` by `degrees` about the grey axis (BT.601 YCbCr), its luma kept:
/// an occluder of a colour the renderer never draws.
pub fn turn_chroma(rgb: [u8; 3], degrees: f64) -> [u8; 3] {
    let [r, g, b] = rgb.map(f64::from);
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = -0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    let (s, c) = degrees.to_radians().sin_cos();
    let (cb, cr) = (c * cb - s * cr, s * cb + c * cr);
    let out = [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ];
    out.map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// Turns every pixel of `image` that `not_skin` sets (the truth mask, 255 set) by `degrees`
/// ([`turn_chroma`]): the frame's gloves, cartridge, cape, room, hair, ear and ink smears in
/// other colours, the skin as drawn.
pub fn turn_not_skin(image: &mut RgbImage, not_skin: &image::GrayImage, degrees: f64) {
    for (x, y, px) in image.enumerate_pixels_mut() {
        if not_skin.get_pixel(x, y)[0] != 0 {
            px.0 = turn_chroma(px.0, degrees);
        }
    }
}

/// Whether no skin pixel of `not_skin` (a truth mask, 255 where not skin) lies within
/// `reach_px` of (`x`, `y`): a dot there is on what is not skin, not merely at the skin's edge
/// (a dot at the edge may sit a pixel off it).
pub fn far_from_skin(not_skin: &image::GrayImage, x: f64, y: f64, reach_px: f64) -> bool {
    let (w, h) = (i64::from(not_skin.width()), i64::from(not_skin.height()));
    let (x, y) = (x as i64, y as i64);
    let r = reach_px.ceil() as i64;
    !(y - r..=y + r).any(|yy| {
        (x - r..=x + r).any(|xx| {
            (0..w).contains(&xx)
                && (0..h).contains(&yy)
                && ((xx - x).pow(2) + (yy - y).pow(2)) as f64 <= reach_px * reach_px
                && not_skin.get_pixel(xx as u32, yy as u32)[0] == 0
        })
    })
}

/// Fitzpatrick group of a skin type, as the tables report it.
pub fn skin_group(fitzpatrick: u8) -> &'static str {
    match fitzpatrick {
        0..=2 => "I-II",
        3..=4 => "III-IV",
        _ => "V-VI",
    }
}

/// One rig frame at the chair, scored against the same frame without occluders.
#[derive(Debug, Clone)]
pub struct ChairFrameScore {
    /// Scene seed.
    pub seed: u64,
    /// Fitzpatrick type of the scene's skin.
    pub fitzpatrick: u8,
    /// Scale of the frame (px/mm).
    pub px_per_mm: f64,
    /// The skin mask against the truth.
    pub mask: MaskScore,
    /// Detections in the frame at the chair.
    pub detections: usize,
    /// Of those, how many lie on what the truth says is not skin.
    pub detections_on_not_skin: usize,
    /// Detection scored on the skin of the frame at the chair.
    pub on_skin: Score,
    /// Detection on the same frame without occluders, scored over the same skin.
    pub bare: Score,
    /// The plan at the chair (its `on_not_skin` counts recommendations on the truth mask).
    pub plan: PlanScore,
    /// The plan for the frame without occluders, scored over the same skin.
    pub plan_bare: PlanScore,
}

/// Renders scene `seed` (rig view) twice, bare and at the chair (`ChairKind::Working` with the
/// hand), detects with `detect`, masks with `masker` (the product's: with the bundled skin
/// model, [`SkinMasker::with_bundled_model`]), plans at `target_per_cm2`/`spacing_mm` and
/// scores both on the chair frame's skin.
///
/// # Errors
/// What `detect` or the planner returns.
pub fn score_chair_frame(
    seed: u64,
    target_per_cm2: f64,
    spacing_mm: f64,
    masker: &mut SkinMasker,
    detect: &mut dyn FnMut(&RgbImage, f64) -> anyhow::Result<Vec<Detection>>,
) -> anyhow::Result<ChairFrameScore> {
    let mut scene = Scene::generate(&SceneParams::new(seed, View::Rig));
    let ppm = scene.px_per_mm();
    let bare = scene.render(&Pose::default(), seed);
    scene.set_chair(Some(ChairKind::Working), true);
    let chair = scene.render(&Pose::default(), seed);
    let not_skin = chair.truth.not_skin.as_ref();
    let config = PlannerConfig::new(target_per_cm2, spacing_mm);
    let bare_config = config.clone();

    let dets = detect(&chair.image, ppm)?;
    let mask = masker.compute(&chair.image, ppm).clone();
    let on_mask = |d: &&Detection| not_skin.is_some_and(|m| m.contains(d.x, d.y));
    let detections_on_not_skin = dets.iter().filter(on_mask).count();
    let plan = plan_image(&chair.image, ppm, &dets, None, Some(&mask), None, config)?;
    let recs: Vec<[f64; 2]> = plan.recommendations.iter().map(|r| [r.x, r.y]).collect();

    let bare_dets = detect(&bare.image, ppm)?;
    let bare_mask = masker.compute(&bare.image, ppm).clone();
    let bare_plan = plan_image(
        &bare.image,
        ppm,
        &bare_dets,
        None,
        Some(&bare_mask),
        None,
        bare_config,
    )?;
    let bare_recs: Vec<[f64; 2]> = bare_plan
        .recommendations
        .iter()
        .map(|r| [r.x, r.y])
        .collect();
    let bare_on_skin: Vec<Detection> = bare_dets.iter().filter(|d| !on_mask(d)).cloned().collect();

    Ok(ChairFrameScore {
        seed,
        fitzpatrick: scene.fitzpatrick(),
        px_per_mm: ppm,
        mask: score_mask(&mask, not_skin),
        detections: dets.len(),
        detections_on_not_skin,
        on_skin: score_frame(&chair.truth, &dets),
        bare: score_frame(&chair.truth, &bare_on_skin),
        plan: score_plan_on_skin(&chair.truth, &recs, target_per_cm2, spacing_mm, not_skin),
        plan_bare: score_plan_on_skin(
            &chair.truth,
            &bare_recs,
            target_per_cm2,
            spacing_mm,
            not_skin,
        ),
    })
}
