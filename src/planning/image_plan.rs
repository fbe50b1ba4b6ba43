//! Planning for one image: detections in pixels in, a plan in pixels out.
//!
//! This is the glue between perception and the planner that the CLI and the live service share:
//! it converts detections to skin millimetres through the scale, measures each dot's shade and
//! the unexplained dark spots from the image ([`skin::analyse`]), builds the [`Planner`] and
//! converts the plan back to pixels.
//!
//! When the dot model ran, its follicle peaks that no detection explains are suspected dots too
//! ([`model_suspects`]): a miniaturised follicle too faint for the blobs is often still seen by
//! the model at a probability too low to report it as a dot, and a plan that trusted the
//! detector's misses would tattoo over it. On check seeds 300-323 (`MODEL=1 cargo run --release
//! --example plan_eval -- 300 24`) this cut recommendations closer than 90% of the spacing to a
//! true dot from 0.63% to 0.16%, for 11% fewer recommendations and the same density error
//! (median 0.086); on seeds 240-263 from 0.05% to 0.01% (8% fewer recommendations).

use image::RgbImage;
use serde::Serialize;
use tracing::instrument;

use super::skin::{self, DotInImage, SkinAnalysis};
use super::{
    Declined, Design, ExistingDot, ExistingKind, Plan, PlanError, PlanInput, Planner, PlannerConfig,
};
use crate::calib::PlaneMap;
use crate::frame::{Detection, DotKind};
use crate::perception::dermoscope::openings::{peaks_into, Peak};
use crate::perception::segment::{SegMask, CLASSES, FOLLICLE};
use crate::perception::SkinMask;

/// Follicle peaks of the dot model at least this probable are suspected dots (chosen on check
/// seeds 300-323 among 0.1, 0.2, 0.3, 0.5, 0.7 with a first version that did not yet skip peaks
/// near suspected dark spots: 0.21%, 0.14%, 0.22%, 0.49%, 0.54% of recommendations too close).
pub const MODEL_SUSPECT_MIN: f32 = 0.2;
/// A model peak this close to a detection or a dark spot already suspected is that one (mm).
pub const MODEL_SUSPECT_CLEARANCE_MM: f64 = 0.3;
/// Radius given to a suspected follicle from the model (mm): a miniaturised unit's opening.
const MODEL_SUSPECT_RADIUS_MM: f64 = 0.08;

/// The dot model's follicle peaks (at least [`MODEL_SUSPECT_MIN`]) farther than
/// [`MODEL_SUSPECT_CLEARANCE_MM`] from every detection and every dot in `also_clear_of`, as
/// suspected existing dots (mm). A mask of another model kind gives none.
pub fn model_suspects(
    mask: &SegMask,
    detections: &[Detection],
    also_clear_of: &[ExistingDot],
    px_per_mm: f64,
) -> Vec<ExistingDot> {
    if mask.classes != CLASSES.len() {
        return Vec::new();
    }
    let mut peaks: Vec<Peak> = Vec::new();
    peaks_into(mask, FOLLICLE, MODEL_SUSPECT_MIN, &mut peaks);
    let clear = MODEL_SUSPECT_CLEARANCE_MM * px_per_mm;
    peaks
        .iter()
        .filter(|p| {
            detections
                .iter()
                .all(|d| (d.x - p.x).hypot(d.y - p.y) > clear)
                && also_clear_of
                    .iter()
                    .all(|e| (e.x_mm * px_per_mm - p.x).hypot(e.y_mm * px_per_mm - p.y) > clear)
        })
        .map(|p| ExistingDot {
            x_mm: p.x / px_per_mm,
            y_mm: p.y / px_per_mm,
            radius_mm: MODEL_SUSPECT_RADIUS_MM,
            kind: ExistingKind::Suspected,
            shade: None,
        })
        .collect()
}

/// One recommendation in pixels of the input image: the JSON contract of `stipple plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendationPx {
    /// Centre x (px).
    pub x: f64,
    /// Centre y (px).
    pub y: f64,
    /// Suggested deposit radius (mm).
    pub radius_mm: f64,
    /// Suggested darkness 0 (skin) ..= 1 (black).
    pub shade: f64,
    /// Position on the working path, from 1.
    pub order: u32,
    /// The zone it serves.
    pub zone: String,
}

/// The plan of one image, in pixels, with what it was built from.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// The planner, ready for incremental updates.
    pub planner: Planner,
    /// The plan (mm).
    pub plan: Plan,
    /// The recommendations in pixels, in working order.
    pub recommendations: Vec<RecommendationPx>,
    /// Dark spots no detection explains, and the model's unexplained follicle peaks (mm); kept
    /// clear of and counted as natural.
    pub suspected: Vec<ExistingDot>,
    /// Fraction of the image the guard keeps recommendations off.
    pub guarded_fraction: f64,
    /// Relative darkness above which a pixel counted as dark.
    pub dark_threshold: f64,
    /// Contrast evidence of each detection (noise units), in input order.
    pub evidence: Vec<f64>,
    /// Whether each detection was taken as a dot (enough evidence in the image).
    pub trusted: Vec<bool>,
    /// Fraction of the frame that is skin (1 without a skin mask).
    pub skin_fraction: f64,
    /// Where the plan declined to plan, and why.
    pub declined: Vec<Declined>,
}

/// Below this scale follicles (0.1-0.2 mm) are under two pixels: nothing on the skin can be
/// seen well enough to plan around, so the whole frame is declined.
pub const MIN_PLAN_PX_PER_MM: f64 = 10.0;
/// Most regions of each reason (not skin, glare, dark marks) listed in
/// [`ImagePlan::declined`], largest first.
pub const MAX_DECLINED_REGIONS: usize = 32;
/// Side of the cells glare and dark marks are declared in (mm): about a dot.
pub const DECLARE_CELL_MM: f64 = 0.25;
/// Glare: cells at least a quarter glare, in regions of 1 mm² or more. A glint on a hair or a
/// drop hides a dot or two, not an area: it is kept clear of but not listed.
const GLARE_DECLARED: Declare = Declare {
    min_share: 0.25,
    grow: 0,
    min_area_mm2: 1.0,
};
/// Dark marks (already larger or longer than any dot): every cell they touch, grown by a cell so
/// that a strand one cell wide is enclosed.
const MARKS_DECLARED: Declare = Declare {
    min_share: 0.0,
    grow: 1,
    min_area_mm2: 0.0,
};
/// Reason given for what is not skin.
pub const NOT_SKIN_REASON: &str =
    "not skin (background, hair, ear, cape, glove, machine or ink): nothing is planned here or within the minimum spacing of its edge";

/// Plans the next dots for one image.
///
/// `plane` is the scale at the skin (px/mm), or a calibration's [`PlaneMap`]: with a distorting
/// lens, every dot is undistorted (points, not the frame) so that spacing, sizes, densities and
/// the plan are in true millimetres, while the recommendations come back in input pixels.
/// `design` may be in pixels or millimetres; pixels are converted through `plane`. `mask` is the
/// dot model's mask of the same image, when the model ran ([`model_suspects`]). `skin` is the
/// frame's skin mask (rig view): nothing is planned off it or within the minimum spacing of its
/// edge, density counts only the skin, and the not-skin regions are listed as declined.
///
/// # Errors
/// [`PlanError::InvalidConfig`] for a bad scale, density or spacing.
#[instrument(skip_all, fields(w = image.width(), h = image.height(), dets = detections.len()))]
pub fn plan_image(
    image: &RgbImage,
    plane: impl Into<PlaneMap>,
    detections: &[Detection],
    mask: Option<&SegMask>,
    skin: Option<&SkinMask>,
    design: Option<&Design>,
    config: PlannerConfig,
) -> Result<ImagePlan, PlanError> {
    let plane: PlaneMap = plane.into();
    let px_per_mm = plane.px_per_mm();
    if !(px_per_mm.is_finite() && px_per_mm > 0.0) {
        return Err(PlanError::InvalidConfig {
            name: "px/mm",
            value: px_per_mm,
            reason: "must be a positive number",
        });
    }
    let dots: Vec<DotInImage> = detections.iter().map(DotInImage::from).collect();
    let mut analysis = skin::analyse(image, px_per_mm, &dots, config.min_spacing_mm, skin);
    if let Some(mask) = mask {
        let from_model = model_suspects(mask, detections, &analysis.suspected, px_per_mm);
        // As the skin analysis's own suspects: none off the skin mask.
        analysis.suspected.extend(
            from_model
                .into_iter()
                .filter(|s| skin.is_none_or(|m| m.is_skin(s.x_mm * px_per_mm, s.y_mm * px_per_mm))),
        );
    }
    if plane.distorts() {
        // The suspects were found in pixels over the scale: back to pixels, then through the lens.
        for s in &mut analysis.suspected {
            (s.x_mm, s.y_mm) = plane.to_mm(s.x_mm * px_per_mm, s.y_mm * px_per_mm);
        }
    }
    let mut existing: Vec<ExistingDot> = detections
        .iter()
        .zip(&analysis.shades)
        .zip(analysis.dropped.iter().zip(&analysis.trusted))
        .filter(|(_, (&dropped, _))| !dropped)
        .map(|((d, &shade), (_, &trusted))| {
            let (x_mm, y_mm) = plane.to_mm(d.x, d.y);
            ExistingDot {
                x_mm,
                y_mm,
                radius_mm: d.radius / px_per_mm,
                kind: match d.kind {
                    _ if !trusted => ExistingKind::Uncertain,
                    DotKind::Follicle => ExistingKind::Follicle,
                    DotKind::Pigment => ExistingKind::Pigment,
                },
                shade: Some(shade),
            }
        })
        .collect();
    existing.extend(analysis.suspected.iter().copied());
    let (w, h) = image.dimensions();
    let coarse = px_per_mm < MIN_PLAN_PX_PER_MM;
    let mut declined = Vec::new();
    if coarse {
        analysis.guard.block_all();
        declined.push(Declined {
            polygon: vec![
                [0.0, 0.0],
                [f64::from(w), 0.0],
                [f64::from(w), f64::from(h)],
                [0.0, f64::from(h)],
            ],
            reason: format!(
                "the scale ({px_per_mm:.1} px/mm) is too coarse to see follicles: planning needs at \
                 least {MIN_PLAN_PX_PER_MM} px/mm (a closer view of the scalp)"
            ),
        });
    } else if let Some(skin) = skin {
        analysis
            .guard
            .block_off_skin(skin, config.min_spacing_mm * px_per_mm);
        declined.extend(
            skin.not_skin_polygons(MAX_DECLINED_REGIONS)
                .into_iter()
                .map(|polygon| Declined {
                    polygon,
                    reason: NOT_SKIN_REASON.to_string(),
                }),
        );
    }
    if !coarse {
        declined.extend(declined_by_analysis(
            &analysis,
            w,
            h,
            px_per_mm,
            skin,
            config.min_spacing_mm,
        ));
    }
    let skin_fraction = skin.map_or(1.0, SkinMask::fraction);
    let guarded_fraction = analysis.guard.blocked_fraction();
    let dark_threshold = analysis.dark_threshold;
    let mut skin = skin.cloned();
    if plane.distorts() {
        analysis.guard.set_plane(plane.clone());
        if let Some(skin) = &mut skin {
            skin.set_plane(plane.clone());
        }
    }
    let input = PlanInput {
        frame_mm: [
            f64::from(image.width()) / px_per_mm,
            f64::from(image.height()) / px_per_mm,
        ],
        existing,
        design: design.map(|d| d.in_mm_through(&plane)),
        guard: Some(analysis.guard),
        skin,
        kept: Vec::new(),
    };
    let planner = Planner::new(config, input)?;
    let plan = planner.plan();
    let recommendations = plan
        .recommendations
        .iter()
        .map(|r| {
            let (x, y) = plane.to_px(r.x_mm, r.y_mm);
            RecommendationPx {
                x,
                y,
                radius_mm: r.radius_mm,
                shade: r.shade,
                order: r.order,
                zone: r.zone.clone(),
            }
        })
        .collect();
    Ok(ImagePlan {
        planner,
        plan,
        recommendations,
        suspected: analysis.suspected,
        guarded_fraction,
        dark_threshold,
        evidence: analysis.evidence.clone(),
        trusted: analysis.trusted.clone(),
        skin_fraction,
        declined,
    })
}

/// Where a frame's skin analysis keeps the plan off, as declined regions with their reasons:
/// glare and dark marks larger than a dot, on the skin (`skin`, when there is one), in pixels
/// of the `w` x `h` frame the analysis was made on. `stipple plan` lists them; the live session
/// shows them on the page.
pub fn declined_by_analysis(
    analysis: &SkinAnalysis,
    w: u32,
    h: u32,
    px_per_mm: f64,
    skin: Option<&SkinMask>,
    min_spacing_mm: f64,
) -> Vec<Declined> {
    let guard_mm = skin::GUARD_FRACTION * min_spacing_mm;
    let glare = format!(
        "glare: the light hides the skin and any dot under it; nothing is planned here or \
         within {guard_mm:.2} mm of it (move the light or blot the skin, then look again)"
    );
    let marks = format!(
        "a dark mark larger than a dot (a mole, a strand of hair, a scab): nothing is planned \
         on it or within {guard_mm:.2} mm of it"
    );
    let mut declined = Vec::new();
    for (mask, how, reason) in [
        (&analysis.glare, &GLARE_DECLARED, glare),
        (&analysis.marks, &MARKS_DECLARED, marks),
    ] {
        declined.extend(
            declared_outlines(mask, w, h, px_per_mm, skin, how)
                .into_iter()
                .map(|polygon| Declined {
                    polygon,
                    reason: reason.clone(),
                }),
        );
    }
    declined
}

/// How a per-pixel mask of one reason is turned into declined outlines.
struct Declare {
    /// Least share of a cell's pixels set for the cell to count (0: any one pixel, which takes
    /// a strand one pixel wide).
    min_share: f64,
    /// Cells the set cells grow by before outlining: outlines pass through the centres of the
    /// boundary cells, so a region one cell wide needs it to enclose anything.
    grow: usize,
    /// Smallest region listed (mm²).
    min_area_mm2: f64,
}

/// Outlines (input pixels) of what `mask` marks on the skin: cells of [`DECLARE_CELL_MM`]
/// with enough of their pixels set, on the skin mask where there is one (a glove's glare or
/// the edge of the hair is declined as not skin), grown and outlined as `how` says; at most
/// [`MAX_DECLINED_REGIONS`], largest first.
fn declared_outlines(
    mask: &[bool],
    w: u32,
    h: u32,
    px_per_mm: f64,
    skin: Option<&SkinMask>,
    how: &Declare,
) -> Vec<Vec<[f64; 2]>> {
    let (wu, hu) = (w as usize, h as usize);
    if mask.len() != wu * hu || !mask.iter().any(|&g| g) {
        return Vec::new();
    }
    let side = (DECLARE_CELL_MM * px_per_mm).round().max(1.0) as usize;
    let (cols, rows) = (wu.div_ceil(side), hu.div_ceil(side));
    let mut count = vec![0u32; cols * rows];
    for (y, row) in mask.chunks_exact(wu).enumerate() {
        let base = (y / side) * cols;
        for (x, _) in row.iter().enumerate().filter(|(_, &g)| g) {
            count[base + x / side] += 1;
        }
    }
    let on: Vec<bool> = count
        .iter()
        .enumerate()
        .map(|(c, &n)| {
            let (col, row) = (c % cols, c / cols);
            let cw = side.min(wu - col * side);
            let ch = side.min(hu - row * side);
            let centre = (
                (col * side) as f64 + cw as f64 / 2.0,
                (row * side) as f64 + ch as f64 / 2.0,
            );
            n > 0
                && f64::from(n) >= how.min_share * (cw * ch) as f64
                && skin.is_none_or(|m| m.is_skin(centre.0, centre.1))
        })
        .collect();
    let g = how.grow;
    let set: Vec<bool> = (0..cols * rows)
        .map(|c| {
            let (col, row) = (c % cols, c / cols);
            (row.saturating_sub(g)..=(row + g).min(rows - 1)).any(|r| {
                (col.saturating_sub(g)..=(col + g).min(cols - 1)).any(|k| on[r * cols + k])
            })
        })
        .collect();
    let grid = crate::geometry::CellGrid {
        set: &set,
        cols,
        rows,
        cell_px: side as f64,
        size: [f64::from(w), f64::from(h)],
    };
    grid.outlines(
        1.0,
        MAX_DECLINED_REGIONS,
        how.min_area_mm2 * px_per_mm * px_per_mm,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(classes: usize, hot: &[(usize, usize, f32)]) -> SegMask {
        let class = if classes == CLASSES.len() {
            FOLLICLE
        } else {
            0
        };
        let hot: Vec<_> = hot.iter().map(|&(c, r, p)| (class, c, r, p)).collect();
        SegMask::test_grid(20, 20, classes, 10.0, &hot)
    }

    #[test]
    fn model_suspects_are_the_unexplained_follicle_peaks() {
        // At 100 px/mm the clearance is 30 px (3 cells).
        let ppm = 100.0;
        let m = mask(
            CLASSES.len(),
            &[(3, 3, 0.6), (12, 12, 0.4), (16, 4, 0.1), (5, 15, 0.5)],
        );
        let det = Detection {
            x: 125.0,
            y: 125.0,
            radius: 8.0,
            kind: DotKind::Follicle,
            score: 0.9,
            hairs: None,
        };
        let skin_suspect = ExistingDot {
            x_mm: 0.55,
            y_mm: 1.55,
            radius_mm: 0.1,
            kind: ExistingKind::Suspected,
            shade: None,
        };
        let got = model_suspects(&m, &[det], &[skin_suspect], ppm);
        // (3, 3) is unexplained; (12, 12) lies on the detection, (5, 15) on the skin suspect,
        // (16, 4) is under the threshold.
        assert_eq!(got.len(), 1, "{got:?}");
        assert!((got[0].x_mm - 0.35).abs() < 1e-9 && (got[0].y_mm - 0.35).abs() < 1e-9);
        assert_eq!(got[0].kind, ExistingKind::Suspected);
        // An openings mask (one class) is not the dot model's: nothing.
        assert!(model_suspects(&mask(1, &[(3, 3, 0.9)]), &[], &[], ppm).is_empty());
    }

    #[test]
    fn nothing_is_suspected_off_the_skin() {
        // 10 x 10 mm at 20 px/mm; the left half is not skin (a glove, the room). A dark spot the
        // size of a dot and a follicle peak of the dot model in each half.
        let ppm = 20.0;
        let image = RgbImage::from_fn(200, 200, |x, y| {
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            if (fx - 50.0).hypot(fy - 100.0) < 2.5 || (fx - 150.0).hypot(fy - 100.0) < 2.5 {
                image::Rgb([90, 60, 50])
            } else {
                image::Rgb([200, 160, 140])
            }
        });
        let m = mask(CLASSES.len(), &[(5, 15, 0.6), (15, 15, 0.6)]);
        let skin = SkinMask::from_fn(200, 200, 5, ppm, |x, _| x >= 100.0);
        let plan = |skin: Option<&SkinMask>| {
            plan_image(
                &image,
                ppm,
                &[],
                Some(&m),
                skin,
                None,
                PlannerConfig::new(70.0, 0.7),
            )
            .expect("plan")
        };
        let near = |s: &ExistingDot, x: f64, y: f64| {
            (s.x_mm * ppm - x).abs() < 2.0 && (s.y_mm * ppm - y).abs() < 2.0
        };
        let got = plan(Some(&skin));
        assert_eq!(got.suspected.len(), 2, "{:?}", got.suspected);
        assert!(got.suspected.iter().any(|s| near(s, 150.5, 100.5)));
        assert!(got.suspected.iter().any(|s| near(s, 155.0, 155.0)));
        // Without a skin mask all four are suspected.
        assert_eq!(plan(None).suspected.len(), 4);
    }

    /// Light skin whose red channel clips, with a white highlight 2 mm across and a glint
    /// 0.3 mm across, at 20 px/mm.
    fn clipped_skin_with_glare() -> RgbImage {
        RgbImage::from_fn(400, 300, |x, y| {
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            if (fx - 300.0).hypot(fy - 150.0) < 40.0 || (fx - 100.0).hypot(fy - 60.0) < 6.0 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([255, 205, 185])
            }
        })
    }

    #[test]
    fn glare_is_declined_and_named_and_skin_with_its_red_clipped_is_planned() {
        let ppm = 20.0;
        let config = PlannerConfig::new(70.0, 0.7);
        let got = plan_image(
            &clipped_skin_with_glare(),
            ppm,
            &[],
            None,
            None,
            None,
            config,
        )
        .expect("plan");
        // The highlight is declined, with its reason; the glint is kept clear of but too small
        // to list.
        assert_eq!(got.declined.len(), 1, "{:?}", got.declined);
        let d = &got.declined[0];
        assert!(d.reason.starts_with("glare:"), "{}", d.reason);
        let guard_mm = skin::GUARD_FRACTION * 0.7;
        assert!(
            d.reason.contains(&format!("within {guard_mm:.2} mm")),
            "{}",
            d.reason
        );
        assert!(crate::geometry::polygon_contains(&d.polygon, 300.0, 150.0));
        assert!(!crate::geometry::polygon_contains(&d.polygon, 100.0, 150.0));
        assert!(!crate::geometry::polygon_contains(&d.polygon, 250.0, 150.0));
        // Nothing under either or within the guard (0.95 x 0.7 mm = 13.3 px) of it.
        let guard = guard_mm * ppm;
        for r in &got.recommendations {
            assert!(
                (r.x - 300.0).hypot(r.y - 150.0) >= 40.0 + guard - 1.5,
                "{r:?}"
            );
            assert!(
                (r.x - 100.0).hypot(r.y - 60.0) >= 6.0 + guard - 1.5,
                "{r:?}"
            );
        }
        // The rest is planned: a clipped red channel alone hides no dot (a dot darkens every
        // channel), so 20 x 15 mm of bare skin gets about 70/cm² (0.4 of the frame's area is
        // within the frame margin or the guard at most).
        let wanted = 70.0 / 100.0 * 20.0 * 15.0;
        assert!(
            got.recommendations.len() as f64 > 0.6 * wanted,
            "{} recommendations for {wanted:.0} wanted",
            got.recommendations.len()
        );
    }

    #[test]
    fn a_mole_and_a_strand_are_declined_as_dark_marks_and_a_dot_is_not() {
        let ppm = 20.0;
        // Skin with a mole 1.2 mm across, a strand 3 mm long and 0.1 mm wide, and an unreported
        // spot the size of a dot (kept clear of as a suspected dot, not declined).
        let image = RgbImage::from_fn(400, 300, |x, y| {
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let mole = (fx - 100.0).hypot(fy - 100.0) < 12.0;
            let strand = (200.0..260.0).contains(&fx) && (219.0..221.0).contains(&fy);
            let spot = (fx - 300.0).hypot(fy - 80.0) < 2.5;
            if mole || strand || spot {
                image::Rgb([90, 60, 50])
            } else {
                image::Rgb([200, 160, 140])
            }
        });
        let got = plan_image(
            &image,
            ppm,
            &[],
            None,
            None,
            None,
            PlannerConfig::new(70.0, 0.7),
        )
        .expect("plan");
        assert_eq!(got.declined.len(), 2, "{:?}", got.declined);
        for d in &got.declined {
            assert!(
                d.reason.starts_with("a dark mark larger than a dot"),
                "{}",
                d.reason
            );
            assert!(!crate::geometry::polygon_contains(&d.polygon, 300.0, 80.0));
        }
        let holds = |x: f64, y: f64| {
            got.declined
                .iter()
                .any(|d| crate::geometry::polygon_contains(&d.polygon, x, y))
        };
        assert!(holds(100.0, 100.0) && holds(230.0, 220.0) && holds(205.0, 220.0));
        assert!(!holds(150.0, 150.0));
        assert_eq!(got.suspected.len(), 1, "{:?}", got.suspected);
    }
}
