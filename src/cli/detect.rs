//! `stipple detect`: find every follicle and pigment dot in still images.

use crate::source::file::Damaged;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::ViewArg;
use crate::frame::{Detection, View};
use crate::geometry::density_per_cm2;
use crate::perception::{
    Detector, FuseConfig, ModelKind, OnnxSegmenter, SegmentConfig, Segmenter, SkinMask,
};

/// Output formats of `stipple detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectFormat {
    /// One JSON object per image, one per line.
    Jsonl,
    /// One JSON array of all images.
    Json,
    /// A human-readable table.
    Table,
}

/// The scale at the skin, shared by every per-image command: `--px-per-mm` or `--calibration`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Scale at the skin in pixels per millimetre.
    #[arg(
        long,
        required_unless_present = "calibration",
        allow_negative_numbers = true
    )]
    pub px_per_mm: Option<f64>,
    /// A calibration file (TOML) giving the scale (and the image size it was made for).
    #[arg(long, conflicts_with = "px_per_mm")]
    pub calibration: Option<PathBuf>,
    /// How the camera sees the skin: `rig` (dots) or `dermoscope` (hair shafts resolved).
    /// Default: from the scale, dermoscope from 60 px/mm.
    #[arg(long, value_enum)]
    pub view: Option<ViewArg>,
    /// Use truncated JPEGs anyway (their missing part comes out grey) with a warning naming
    /// the file, instead of refusing them.
    #[arg(long)]
    pub accept_damaged_images: bool,
}

/// The detector of every per-image command: the classical blobs fused with the bundled
/// segmentation model (default), with `--model FILE`, or alone with `--no-model`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Segmentation model (ONNX) to fuse with the classical detector, instead of the bundled
    /// models/stipple-seg.onnx. A missing or broken file is an error, never a silent fallback.
    #[arg(long, value_name = "FILE", conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Classical detection only: no segmentation model.
    #[arg(long)]
    pub no_model: bool,
    /// ONNX Runtime intra-op threads for the model.
    #[arg(
        long,
        default_value_t = crate::perception::segment::DEFAULT_INTRA_THREADS,
        value_parser = crate::limits::parse_model_threads
    )]
    pub model_threads: usize,
}

/// Arguments of `stipple detect`.
#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Where the scale comes from.
    #[command(flatten)]
    pub scale: ScaleArgs,
    /// Which detector: the bundled model (default), another model, or classical only.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DetectFormat::Jsonl)]
    pub format: DetectFormat,
    /// Images to read (PNG, JPEG, TIFF, BMP or WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// The result for one image: the JSON contract of `stipple detect`.
#[derive(Debug, Serialize)]
pub struct ImageDetections {
    /// The path as given on the command line.
    pub image: String,
    /// Image width (px).
    pub width: u32,
    /// Image height (px).
    pub height: u32,
    /// Scale used.
    pub px_per_mm: f64,
    /// The dots, in pixels of the input image.
    pub detections: Vec<Detection>,
    /// Dots per cm2 of skin in the frame: over the skin area, not the whole frame.
    pub density_per_cm2: f64,
    /// Fraction of the frame that is treatable skin (rig view: the skin mask; 1 in the
    /// dermoscope view, whose lens touches the skin).
    pub skin_fraction: f64,
}

/// Dots per cm² over the skin part (`skin_fraction`) of a frame; 0 when there is no skin.
pub(crate) fn density_on_skin(
    n: usize,
    width: u32,
    height: u32,
    px_per_mm: f64,
    skin_fraction: f64,
) -> f64 {
    if skin_fraction > 0.0 {
        density_per_cm2(n, width, height, px_per_mm) / skin_fraction
    } else {
        0.0
    }
}

/// Dots per cm² of skin through a distorting lens: the skin's own area on the working plane
/// (each skin cell's, or the whole frame's without a mask), not pixels over the scale.
pub(crate) fn density_through_lens(
    n: usize,
    plane: &crate::calib::PlaneMap,
    width: u32,
    height: u32,
    skin: Option<&crate::perception::SkinMask>,
) -> f64 {
    let area_mm2 = match skin {
        Some(mask) => {
            let mut mask = mask.clone();
            mask.set_plane(plane.clone());
            mask.skin_area_mm2()
        }
        None => plane.image_area_mm2(width, height),
    };
    if area_mm2 > 0.0 {
        n as f64 / area_mm2 * 100.0
    } else {
        0.0
    }
}

/// The scale (and, with a calibration, the image size it was made for).
pub(crate) struct Scale {
    /// Pixels per millimetre at the skin.
    pub px_per_mm: f64,
    /// The calibration file and the image size it was made for.
    pub calibration: Option<(std::path::PathBuf, u32, u32)>,
    /// Pixels to millimetres on the skin: the scale, and the calibration's lens where it
    /// distorts (points are undistorted, never whole frames).
    pub plane: crate::calib::PlaneMap,
    /// How the camera sees the skin, decided once here (`--view`, else from the scale).
    pub view: View,
    /// What to do with a truncated JPEG (`--accept-damaged-images`).
    pub damaged: crate::source::file::Damaged,
}

impl Scale {
    /// Checks that an image fits the calibration (same size).
    pub fn check_image(&self, width: u32, height: u32) -> Result<(), String> {
        match &self.calibration {
            Some((path, w, h)) if (*w, *h) != (width, height) => Err(format!(
                "the image is {width}x{height} but calibration {} is for {w}x{h}",
                path.display()
            )),
            _ => Ok(()),
        }
    }
}

/// Loads one image for a per-image command. A bad image (unreadable, corrupt, or of another size
/// than the calibration) is reported on stderr naming the file and counted in `failures`; `None`
/// tells the caller to go on with the next image.
pub(crate) fn load_checked(
    path: &std::path::Path,
    scale: &Scale,
    failures: &mut usize,
) -> Option<image::RgbImage> {
    let image = match crate::source::file::load_rgb_with(path, scale.damaged) {
        Ok(img) => img,
        Err(err) => {
            eprintln!("stipple: error: {err}");
            *failures += 1;
            return None;
        }
    };
    if let Err(why) = scale.check_image(image.width(), image.height()) {
        eprintln!("stipple: error: {}: {why}", path.display());
        *failures += 1;
        return None;
    }
    Some(image)
}

/// Resolves the scale from `--px-per-mm` or `--calibration`.
pub(crate) fn resolve_scale(args: &ScaleArgs) -> anyhow::Result<Scale> {
    let scale = match (args.px_per_mm, args.calibration.as_deref()) {
        (Some(p), _) => Scale {
            px_per_mm: p,
            calibration: None,
            plane: crate::calib::PlaneMap::uniform(p),
            view: args.view.map_or(View::for_scale(p), View::from),
            damaged: Damaged::Refuse,
        },
        (None, Some(path)) => {
            let cal = crate::calib::load(path)?;
            Scale {
                px_per_mm: cal.px_per_mm,
                calibration: Some((path.to_owned(), cal.image_width, cal.image_height)),
                plane: crate::calib::PlaneMap::of(&cal),
                view: args.view.map_or(View::for_scale(cal.px_per_mm), View::from),
                damaged: Damaged::Refuse,
            }
        }
        (None, None) => anyhow::bail!("give --px-per-mm or --calibration"),
    };
    let scale = Scale {
        damaged: if args.accept_damaged_images {
            Damaged::Warn
        } else {
            Damaged::Refuse
        },
        ..scale
    };
    let what = match &scale.calibration {
        Some((path, _, _)) => format!("calibration {}: px_per_mm", path.display()),
        None => "--px-per-mm".to_string(),
    };
    crate::limits::check_px_per_mm(&what, scale.px_per_mm).map_err(anyhow::Error::msg)?;
    Ok(scale)
}

/// The detector the flags ask for: bundled model (default), `--model FILE`, or `--no-model`.
///
/// # Errors
/// A missing or broken model file (never a silent fallback to classical detection).
pub fn build_detector(args: &ModelArgs, view: View, px_per_mm: f64) -> anyhow::Result<Detector> {
    if args.no_model {
        return Ok(Detector::classical_in(view, px_per_mm));
    }
    let cfg = SegmentConfig {
        intra_threads: args.model_threads.max(1),
    };
    let (segmenter, name) = match &args.model {
        Some(path) => (
            OnnxSegmenter::from_file(path, &cfg)
                .with_context(|| format!("--model {}: cannot use this model", path.display()))?,
            format!("--model {}", path.display()),
        ),
        None => {
            let kind = ModelKind::for_view(view);
            let (_, bundled) = kind.bundled();
            (
                OnnxSegmenter::bundled_kind(kind, &cfg).with_context(|| {
                    format!("cannot use the bundled model ({bundled}); --no-model runs without it")
                })?,
                bundled.to_string(),
            )
        }
    };
    let mut detector = Detector::fused_in(
        view,
        px_per_mm,
        Segmenter::Onnx(Box::new(segmenter)),
        FuseConfig::default(),
    )
    .with_context(|| format!("{name}: cannot use this model here"))?;
    // The skin mask fuses the bundled skin model wherever a model takes part.
    detector.use_bundled_skin_model().with_context(|| {
        format!(
            "cannot use the bundled skin model ({}); --no-model runs without it",
            crate::perception::segment::BUNDLED_SKIN_MODEL_PATH
        )
    })?;
    Ok(detector)
}

/// Says on stderr (a warning, so a script's JSON stays clean) when `image`'s skin mask rests on
/// less than it should: the picture carried no colour, so the mask rests on lightness and
/// texture alone ([`SkinMask::colourless`]) and a wall, cape or glove as light and as textured
/// as skin is not told apart from it; or the skin model's view was set aside because it and the
/// colour rules disagreed on most of the skin ([`SkinMask::learned_set_aside`]).
pub(crate) fn warn_if_mask_unsure(image: &std::path::Path, mask: Option<&SkinMask>) {
    let Some(mask) = mask else {
        return;
    };
    if mask.colourless() {
        tracing::warn!(
            "{}: the picture has no colour; its skin mask rests on lightness and texture alone \
             (the colour rules and the skin model need colour), so a surface as light and as \
             textured as skin is counted as skin",
            image.display()
        );
    } else if mask.learned_set_aside() {
        tracing::warn!(
            "{}: the skin model and the colour rules disagree on most of what the rules call \
             skin, so the skin mask rests on the colour rules alone (skin fraction {:.2}); \
             something one of them was not made for is in view, such as a glove, cape or \
             machine of an unusual colour",
            image.display(),
            mask.fraction()
        );
    }
}

/// Runs detection on every image; a bad image is reported and skipped, and the exit status is
/// non-zero at the end.
pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let scale = resolve_scale(&args.scale)?;
    let px_per_mm = scale.px_per_mm;
    if scale.view == View::Rig && px_per_mm < crate::planning::MIN_PLAN_PX_PER_MM {
        // Said once for the run: the scale is the run's, not a picture's.
        tracing::warn!(
            "at {px_per_mm} px/mm (--px-per-mm or the calibration) a dot of 0.2-0.6 mm is {:.1}-{:.1} \
             px across: detections are unreliable at this scale (on a whole-head photograph at 3 \
             px/mm some fall on the wall), and `stipple plan` declines pictures under {} px/mm",
            0.2 * px_per_mm,
            0.6 * px_per_mm,
            crate::planning::MIN_PLAN_PX_PER_MM
        );
    }
    let mut detector = build_detector(&args.model, scale.view, px_per_mm)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0usize;
    let mut all = Vec::new();
    if args.format == DetectFormat::Table {
        writeln!(
            out,
            "{:<40} {:>6} {:>9} {:>8} {:>9} {:>11}",
            "image", "dots", "follicles", "pigment", "per cm2", "hairs/cm2"
        )?;
    }
    for path in &args.images {
        let _span = tracing::info_span!("detect", image = %path.display()).entered();
        let Some(image) = load_checked(path, &scale, &mut failures) else {
            continue;
        };
        let (width, height) = image.dimensions();
        let detections = detector
            .detect(&image)
            .with_context(|| format!("{}: the segmentation model failed", path.display()))?;
        let skin_fraction = detector.skin_mask().map_or(1.0, |m| m.fraction());
        warn_if_mask_unsure(path, detector.skin_mask());
        let density_per_cm2 = if scale.plane.distorts() {
            let n = detections.len();
            density_through_lens(n, &scale.plane, width, height, detector.skin_mask())
        } else {
            density_on_skin(detections.len(), width, height, px_per_mm, skin_fraction)
        };
        let result = ImageDetections {
            image: path.display().to_string(),
            width,
            height,
            px_per_mm,
            density_per_cm2,
            skin_fraction,
            detections,
        };
        match args.format {
            DetectFormat::Jsonl => {
                serde_json::to_writer(&mut out, &result)?;
                writeln!(out)?;
                out.flush()?;
            }
            DetectFormat::Json => all.push(result),
            DetectFormat::Table => {
                let follicles: Vec<&Detection> = result
                    .detections
                    .iter()
                    .filter(|d| d.kind == crate::frame::DotKind::Follicle)
                    .collect();
                // Hairs per cm2 where the detector counts hairs (dermoscope frames); "-" else.
                let hairs = if follicles.iter().any(|d| d.hairs.is_some()) {
                    let n: usize = follicles
                        .iter()
                        .map(|d| usize::from(d.hairs.unwrap_or(1)))
                        .sum();
                    let per_cm2 = if scale.plane.distorts() {
                        density_through_lens(n, &scale.plane, width, height, detector.skin_mask())
                    } else {
                        density_on_skin(n, width, height, px_per_mm, result.skin_fraction)
                    };
                    format!("{per_cm2:.1}")
                } else {
                    "-".to_string()
                };
                writeln!(
                    out,
                    "{:<40} {:>6} {:>9} {:>8} {:>9.1} {:>11}",
                    result.image,
                    result.detections.len(),
                    follicles.len(),
                    result.detections.len() - follicles.len(),
                    result.density_per_cm2,
                    hairs
                )?;
            }
        }
    }
    if args.format == DetectFormat::Json {
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(exit_status(failures, args.images.len()))
}

/// The exit status of a per-image command: failure when any image could not be processed
/// (each was reported as it came), after the others were.
pub(super) fn exit_status(failures: usize, images: usize) -> ExitCode {
    if failures > 0 {
        eprintln!("stipple: {failures} of {images} images could not be processed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
