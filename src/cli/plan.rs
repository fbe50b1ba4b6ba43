//! `stipple plan`: recommend the next dots for still images.
//!
//! Detects what is on the skin (or reads it with `--dots`), plans with [`crate::planning`], and
//! prints the plan in pixels of the input image; `--overlay` also draws it for a person to check
//! (where it declined to plan shaded and hatched in magenta; the reasons are in the JSON).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::detect::load_checked;
use crate::frame::{Detection, DotKind};
use crate::overlay::{
    draw_plan_mut, shade_declined_mut, OverlayDot, OverlayKind, OverlayStyle, OverlayZone,
};
use crate::planning::{
    plan_image, Declined, Design, PlannerConfig, RecommendationPx, DEFAULT_SEED,
};

/// Output formats of `stipple plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// One JSON object for one image, a JSON array for several.
    Json,
    /// One JSON object per image, one per line.
    Jsonl,
    /// A human-readable table line per image.
    Table,
}

/// Arguments of `stipple plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Where the scale comes from.
    #[command(flatten)]
    pub scale: super::detect::ScaleArgs,
    /// Which detector finds the existing dots: the bundled model (default), another model, or
    /// classical only.
    #[command(flatten)]
    pub model: super::detect::ModelArgs,
    /// Final target density in dots per cm², existing dots included (where the design gives none).
    #[arg(long, allow_negative_numbers = true)]
    pub target_density: f64,
    /// Minimum centre-to-centre spacing of a new dot to any dot, in mm.
    #[arg(long, allow_negative_numbers = true)]
    pub min_spacing_mm: f64,
    /// Session to plan (1-4): session 1 is sparse and light, later ones fill the gaps. Without
    /// it, the plan reaches the final density in one go.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub session: Option<u8>,
    /// Treatment design (TOML: hairline, fill, scar and no-go zones). Without it the whole
    /// frame is one fill zone at `--target-density`.
    #[arg(long)]
    pub design: Option<PathBuf>,
    /// Existing dots as JSON (a list of detections, or a `stipple detect` object) instead of
    /// running the detector; one image only.
    #[arg(long)]
    pub dots: Option<PathBuf>,
    /// Seed of the planner: the same input and seed give the same plan.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Json)]
    pub format: PlanFormat,
    /// Also write the image with existing dots and the plan drawn on it (PNG). With several
    /// images, `OUT-<image name>.png` each.
    #[arg(long)]
    pub overlay: Option<PathBuf>,
    /// Images to read (PNG, JPEG, TIFF, BMP or WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// One existing dot in the output, in pixels.
#[derive(Debug, Serialize)]
pub struct ExistingPx {
    /// Centre x (px).
    pub x: f64,
    /// Centre y (px).
    pub y: f64,
    /// Radius (px).
    pub radius: f64,
    /// `follicle` or `pigment`.
    pub kind: DotKind,
}

/// A dark spot the detector did not report, in pixels.
#[derive(Debug, Serialize)]
pub struct SuspectedPx {
    /// Centre x (px).
    pub x: f64,
    /// Centre y (px).
    pub y: f64,
    /// Radius (px).
    pub radius: f64,
}

/// The plan of one image: the JSON contract of `stipple plan`.
#[derive(Debug, Serialize)]
pub struct ImagePlanOut {
    /// The path as given on the command line.
    pub image: String,
    /// Scale used.
    pub px_per_mm: f64,
    /// The session planned, `null` for the final-density plan.
    pub session: Option<u8>,
    /// The dots already on the skin (detected or given), in pixels.
    pub existing: Vec<ExistingPx>,
    /// Dark spots no detection explains: kept clear of and counted as existing.
    pub suspected: Vec<SuspectedPx>,
    /// The recommended dots in working order, in pixels.
    pub recommendations: Vec<RecommendationPx>,
    /// Density of the counted skin before the plan (dots/cm²).
    pub density_before_per_cm2: f64,
    /// Density once every recommendation is done (dots/cm²).
    pub density_after_per_cm2: f64,
    /// The session schedule and why.
    pub note: String,
    /// Fraction of the frame that is treatable skin (1 in the dermoscope view).
    pub skin_fraction: f64,
    /// Where the plan declined to plan (outlines in pixels) and why.
    pub declined: Vec<Declined>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DotsFile {
    List(Vec<Detection>),
    Object { detections: Vec<Detection> },
}

fn load_dots(path: &Path) -> anyhow::Result<Vec<Detection>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read dots", path.display()))?;
    let parsed: DotsFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON list of detections or an object with `detections`",
            path.display()
        )
    })?;
    Ok(match parsed {
        DotsFile::List(d) | DotsFile::Object { detections: d } => d,
    })
}

fn overlay_path(base: &Path, image: &Path, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base.file_stem().map_or_else(
        || "overlay".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let name = image
        .file_stem()
        .map_or_else(|| "image".to_string(), |s| s.to_string_lossy().into_owned());
    base.with_file_name(format!("{stem}-{name}.png"))
}

/// Plans every image; a bad image is reported and skipped, and the exit status is non-zero at
/// the end.
///
/// # Errors
/// A bad scale, design or dots file, or a failure to write the output.
pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let scale = super::detect::resolve_scale(&args.scale)?;
    let px_per_mm = scale.px_per_mm;
    let design = args
        .design
        .as_deref()
        .map(|p| {
            let d = Design::load(p)?;
            // The zones' targets must be reachable at the spacing this plan uses.
            d.check_reachable(Some(args.target_density), args.min_spacing_mm)?;
            Ok::<_, crate::planning::PlanError>(d)
        })
        .transpose()
        .with_context(|| {
            format!(
                "{}: bad design",
                args.design.as_deref().unwrap_or(Path::new("")).display()
            )
        })?;
    let given_dots = args.dots.as_deref().map(load_dots).transpose()?;
    if given_dots.is_some() && args.images.len() != 1 {
        anyhow::bail!("--dots describes one image; give exactly one");
    }
    let config = PlannerConfig {
        target_density_per_cm2: args.target_density,
        min_spacing_mm: args.min_spacing_mm,
        session: args.session,
        seed: args.seed,
    };
    let mut detector = super::detect::build_detector(&args.model, scale.view, px_per_mm)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0usize;
    let mut all = Vec::new();
    if args.format == PlanFormat::Table {
        writeln!(
            out,
            "{:<40} {:>8} {:>9} {:>6} {:>10} {:>9}",
            "image", "existing", "suspected", "recs", "before/cm2", "after/cm2"
        )?;
    }
    for path in &args.images {
        let _span = tracing::info_span!("plan", image = %path.display()).entered();
        let Some(image) = load_checked(path, &scale, &mut failures) else {
            continue;
        };
        let detections = match &given_dots {
            Some(d) => d.clone(),
            None => detector
                .detect(&image)
                .with_context(|| format!("{}: the segmentation model failed", path.display()))?,
        };
        // The dot model's mask of this image (also when the dots were given on the command
        // line): its unexplained follicle peaks are kept clear of.
        let mask = if given_dots.is_none() {
            detector.mask()
        } else {
            detector
                .segment(&image)
                .with_context(|| format!("{}: the segmentation model failed", path.display()))?
        };
        let mask = mask.cloned();
        let skin = if given_dots.is_none() {
            detector.skin_mask().cloned()
        } else {
            detector.compute_skin_mask(&image).cloned()
        };
        super::detect::warn_if_mask_unsure(path, skin.as_ref());
        let planned = plan_image(
            &image,
            scale.plane.clone(),
            &detections,
            mask.as_ref(),
            skin.as_ref(),
            design.as_ref(),
            config.clone(),
        )
        .context("cannot plan")?;
        if let Some(base) = &args.overlay {
            let target = overlay_path(base, path, args.images.len() > 1);
            let mut canvas = image.clone();
            let declined: Vec<Vec<[f64; 2]>> =
                planned.declined.iter().map(|d| d.polygon.clone()).collect();
            shade_declined_mut(&mut canvas, &declined);
            let existing: Vec<OverlayDot> = detections
                .iter()
                .map(|d| OverlayDot {
                    x: d.x,
                    y: d.y,
                    radius: d.radius,
                    kind: match d.kind {
                        DotKind::Follicle => OverlayKind::Follicle,
                        DotKind::Pigment => OverlayKind::Pigment,
                    },
                })
                .chain(planned.suspected.iter().map(|s| {
                    let (x, y) = scale.plane.to_px(s.x_mm, s.y_mm);
                    OverlayDot {
                        x,
                        y,
                        radius: s.radius_mm * px_per_mm,
                        kind: OverlayKind::Suspected,
                    }
                }))
                .collect();
            let zones: Vec<OverlayZone> = design
                .as_ref()
                .map(|d| d.in_mm_through(&scale.plane))
                .into_iter()
                .flat_map(|d| d.zones)
                .map(|z| OverlayZone {
                    kind: z.kind,
                    polygon: z
                        .polygon
                        .iter()
                        .map(|p| {
                            let (x, y) = scale.plane.to_px(p[0], p[1]);
                            [x, y]
                        })
                        .collect(),
                })
                .collect();
            draw_plan_mut(
                &mut canvas,
                scale.plane.clone(),
                &existing,
                &zones,
                &planned.plan,
                &OverlayStyle::default(),
            );
            canvas
                .save(&target)
                .with_context(|| format!("{}: cannot write overlay", target.display()))?;
        }
        let result = ImagePlanOut {
            image: path.display().to_string(),
            px_per_mm,
            session: args.session,
            existing: detections
                .iter()
                .map(|d| ExistingPx {
                    x: d.x,
                    y: d.y,
                    radius: d.radius,
                    kind: d.kind,
                })
                .collect(),
            suspected: planned
                .suspected
                .iter()
                .map(|s| {
                    let (x, y) = scale.plane.to_px(s.x_mm, s.y_mm);
                    SuspectedPx {
                        x,
                        y,
                        radius: s.radius_mm * px_per_mm,
                    }
                })
                .collect(),
            density_before_per_cm2: planned.plan.density_before_per_cm2,
            density_after_per_cm2: planned.plan.density_after_per_cm2,
            note: planned.plan.note.clone(),
            skin_fraction: planned.skin_fraction,
            declined: planned.declined.clone(),
            recommendations: planned.recommendations,
        };
        match args.format {
            PlanFormat::Jsonl => {
                serde_json::to_writer(&mut out, &result)?;
                writeln!(out)?;
                out.flush()?;
            }
            PlanFormat::Json => all.push(result),
            PlanFormat::Table => writeln!(
                out,
                "{:<40} {:>8} {:>9} {:>6} {:>10.1} {:>9.1}",
                result.image,
                result.existing.len(),
                result.suspected.len(),
                result.recommendations.len(),
                result.density_before_per_cm2,
                result.density_after_per_cm2
            )?,
        }
    }
    if args.format == PlanFormat::Json {
        if all.len() == 1 && args.images.len() == 1 {
            serde_json::to_writer(&mut out, &all[0])?;
        } else {
            serde_json::to_writer(&mut out, &all)?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(super::detect::exit_status(failures, args.images.len()))
}
