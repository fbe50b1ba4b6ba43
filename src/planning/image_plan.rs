//! Planning for one image: detections in pixels in, a plan in pixels out.
//!
//! This is the glue between perception and the planner that the CLI and the live service share:
//! it converts detections to skin millimetres through the scale, measures each dot's shade and
//! the unexplained dark spots from the image ([`skin::analyse`]), builds the [`Planner`] and
//! converts the plan back to pixels.

use image::RgbImage;
use serde::Serialize;
use tracing::instrument;

use super::skin::{self, DotInImage};
use super::{
    Design, ExistingDot, ExistingKind, Plan, PlanError, PlanInput, Planner, PlannerConfig,
};
use crate::frame::{Detection, DotKind};

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
    /// Dark spots no detection explains (mm); kept clear of and counted as natural.
    pub suspected: Vec<ExistingDot>,
    /// Fraction of the image the guard keeps recommendations off.
    pub guarded_fraction: f64,
    /// Relative darkness above which a pixel counted as dark.
    pub dark_threshold: f64,
    /// Contrast evidence of each detection (noise units), in input order.
    pub evidence: Vec<f64>,
    /// Whether each detection was taken as a dot (enough evidence in the image).
    pub trusted: Vec<bool>,
}

/// Plans the next dots for one image.
///
/// `design` may be in pixels or millimetres; it is converted with `px_per_mm`.
///
/// # Errors
/// [`PlanError::InvalidConfig`] for a bad scale, density or spacing.
#[instrument(skip_all, fields(w = image.width(), h = image.height(), dets = detections.len()))]
pub fn plan_image(
    image: &RgbImage,
    px_per_mm: f64,
    detections: &[Detection],
    design: Option<&Design>,
    config: PlannerConfig,
) -> Result<ImagePlan, PlanError> {
    if !(px_per_mm.is_finite() && px_per_mm > 0.0) {
        return Err(PlanError::InvalidConfig {
            name: "px/mm",
            value: px_per_mm,
            reason: "must be a positive number",
        });
    }
    let dots: Vec<DotInImage> = detections
        .iter()
        .map(|d| DotInImage {
            x: d.x,
            y: d.y,
            radius: d.radius,
            score: d.score,
        })
        .collect();
    let analysis = skin::analyse(image, px_per_mm, &dots, config.min_spacing_mm);
    let mut existing: Vec<ExistingDot> = detections
        .iter()
        .zip(&analysis.shades)
        .zip(analysis.dropped.iter().zip(&analysis.trusted))
        .filter(|(_, (&dropped, _))| !dropped)
        .map(|((d, &shade), (_, &trusted))| ExistingDot {
            x_mm: d.x / px_per_mm,
            y_mm: d.y / px_per_mm,
            radius_mm: d.radius / px_per_mm,
            kind: match d.kind {
                _ if !trusted => ExistingKind::Uncertain,
                DotKind::Follicle => ExistingKind::Follicle,
                DotKind::Pigment => ExistingKind::Pigment,
            },
            shade: Some(shade),
        })
        .collect();
    existing.extend(analysis.suspected.iter().copied());
    let guarded_fraction = analysis.guard.blocked_fraction();
    let dark_threshold = analysis.dark_threshold;
    let input = PlanInput {
        frame_mm: [
            f64::from(image.width()) / px_per_mm,
            f64::from(image.height()) / px_per_mm,
        ],
        existing,
        design: design.map(|d| d.in_mm(px_per_mm)),
        guard: Some(analysis.guard),
    };
    let planner = Planner::new(config, input)?;
    let plan = planner.plan();
    let recommendations = plan
        .recommendations
        .iter()
        .map(|r| RecommendationPx {
            x: r.x_mm * px_per_mm,
            y: r.y_mm * px_per_mm,
            radius_mm: r.radius_mm,
            shade: r.shade,
            order: r.order,
            zone: r.zone.clone(),
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
    })
}
