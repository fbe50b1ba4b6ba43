//! `stipple calibrate`: calibrate a camera rig from chessboard photos.
//!
//! ```text
//! stipple calibrate --board 9x6 --square-mm 3.0 [--out FILE.toml] [--format json|table] \
//!     [--plane IMAGE | --px-per-mm-from-views] IMAGE...
//! ```
//!
//! With `--format json`, stdout is exactly one JSON object:
//! `{"fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "rms_px", "views_used",
//! "views_rejected": [{"image", "reason"}], "image_width", "image_height", "px_per_mm",
//! "px_per_mm_sigma", "px_per_mm_source", "working_distance_mm", "coverage", "verdict":
//! {"good_for_smp", "summary", "todo"}, "warnings", "saved_to"}`. Images that cannot be read,
//! show no complete board or have another size than most of those with a board are rejected
//! with the reason; the command fails only when fewer than 3 views remain (or two image sizes
//! tie).
//!
//! px/mm is measured on `--plane`, a view of the board lying on the scalp. Without it the
//! least tilted calibration view stands in (`px_per_mm_source: "least-tilted-view"`, with an
//! uncertainty spanning the views' distances), and `--out` refuses to save unless told so with
//! `--px-per-mm-from-views`: every density and spacing would rest on a scale taken wherever
//! the board happened to be held.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::calib::scale::GOOD_VIEWS;
use crate::calib::{
    calibrate_images, plane_scale, verdict, views_scale, BoardSpec, CalibrationReport,
    RejectedView, ScaleEstimate, ScaleSource, Verdict,
};
use anyhow::Context;
use image::GrayImage;
use serde::Serialize;

/// Output format of `stipple calibrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object on stdout (the machine contract).
    Json,
    /// A human-readable summary.
    Table,
}

/// Arguments of `stipple calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Inner corners of the chessboard, COLSxROWS (OpenCV's pattern size: 9x6 is 10x7 squares).
    #[arg(long)]
    pub board: String,
    /// Side of one printed square, in millimetres.
    #[arg(long)]
    pub square_mm: f64,
    /// Write the calibration (TOML) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// A view of the board lying flat on the scalp (the working plane): px/mm is measured on
    /// it. Without it `--out` refuses to save, unless `--px-per-mm-from-views`.
    #[arg(long, value_name = "IMAGE")]
    pub plane: Option<PathBuf>,
    /// Save px/mm from the least tilted calibration view when there is no `--plane` view
    /// (not measured at the skin: densities can be off by the ratio of the distances).
    #[arg(long, conflicts_with = "plane")]
    pub px_per_mm_from_views: bool,
    /// Also write the detected corners of every used view here (JSON `{image: [[x, y], ...]}`,
    /// OpenCV order), to inspect or compare detections.
    #[arg(long)]
    pub dump_corners: Option<PathBuf>,
    /// The calibration photos (at least 3 with the whole board visible; 10-20 recommended).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// The JSON contract of `--format json`; field order is part of it.
#[derive(Debug, Serialize)]
struct JsonOut {
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
    k1: f64,
    k2: f64,
    p1: f64,
    p2: f64,
    k3: f64,
    rms_px: f64,
    views_used: usize,
    views_rejected: Vec<JsonRejected>,
    image_width: u32,
    image_height: u32,
    /// px/mm at the working plane (`--plane`) or its stand-in; null when unmeasurable.
    px_per_mm: Option<f64>,
    /// One-sigma uncertainty of `px_per_mm`.
    px_per_mm_sigma: Option<f64>,
    /// `"plane"` or `"least-tilted-view"`.
    px_per_mm_source: Option<ScaleSource>,
    /// Camera to board centre of the view px/mm was measured on, mm.
    working_distance_mm: Option<f64>,
    /// Share of the image the views' corners covered, 0-1.
    coverage: f64,
    verdict: Verdict,
    warnings: Vec<String>,
    /// The file written, or null.
    saved_to: Option<String>,
}

#[derive(Debug, Serialize)]
struct JsonRejected {
    image: String,
    reason: String,
}

/// Reads an image as grey, upright (the EXIF orientation of phone photos applied, as OpenCV's
/// `imread` does, so both tools see the same pixels).
fn load_gray(path: &Path) -> anyhow::Result<GrayImage> {
    Ok(crate::source::file::open_checked(path, crate::source::file::Damaged::Refuse)?.to_luma8())
}

/// Runs the calibration.
///
/// # Errors
/// A bad `--board`, fewer than 3 usable views, two image sizes tied, an unreadable `--plane`
/// view or one without a board, an unwritable `--out`, or `--out` without `--plane` or
/// `--px-per-mm-from-views` (after printing the result, so the run is not lost).
pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let spec = BoardSpec::parse(&args.board, args.square_mm).context("--board/--square-mm")?;
    let mut images = Vec::new();
    let mut unreadable = Vec::new();
    for path in &args.images {
        let name = path.display().to_string();
        match load_gray(path) {
            Ok(img) => images.push((name, img)),
            Err(err) => unreadable.push(RejectedView {
                name,
                reason: format!("{err:#}"),
            }),
        }
    }
    let result = calibrate_images(&images, &spec);
    let mut report: CalibrationReport = match result {
        Ok(r) => r,
        Err(err) => {
            for r in &unreadable {
                tracing::warn!(image = %r.name, reason = %r.reason, "image rejected");
            }
            return Err(err).context("calibration failed");
        }
    };
    report.rejected.splice(0..0, unreadable);
    let scale: Option<ScaleEstimate> = match &args.plane {
        Some(plane) => {
            let img = load_gray(plane).context("--plane")?;
            let corners = crate::calib::detect_board(&img, &spec)
                .with_context(|| format!("--plane {}: no board", plane.display()))?;
            let s = plane_scale(
                &report.calibration,
                &corners,
                &spec,
                &plane.display().to_string(),
            )
            .with_context(|| format!("--plane {}", plane.display()))?;
            Some(s)
        }
        None => views_scale(&report),
    };
    if let Some(s) = &scale {
        report.calibration.px_per_mm = s.px_per_mm;
    }
    let verdict = verdict(&report, scale.as_ref());
    let mut warnings = Vec::new();
    if report.views.len() < GOOD_VIEWS {
        warnings.push(format!(
            "only {} views: take at least {GOOD_VIEWS} (10-20) for a calibration to trust",
            report.views.len()
        ));
    }
    if let Some(path) = &args.dump_corners {
        let corners: std::collections::BTreeMap<&str, &Vec<[f64; 2]>> = report
            .views
            .iter()
            .map(|v| (v.name.as_str(), &v.corners_in_image))
            .collect();
        let file =
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &corners)?;
    }
    let from_plane = scale
        .as_ref()
        .is_some_and(|s| s.source == ScaleSource::Plane);
    let refused = match (&args.out, from_plane || args.px_per_mm_from_views) {
        (Some(out), false) => Some(refusal(out, scale.as_ref())),
        _ => None,
    };
    let mut saved_to = None;
    if let (Some(out), None) = (&args.out, &refused) {
        // A mistyped square size (`--square-mm 3000`) gives a scale no other command accepts:
        // refuse it here rather than write a file that fails later.
        crate::limits::check_px_per_mm("the measured scale", report.calibration.px_per_mm)
            .map_err(|why| {
                anyhow::anyhow!(
                    "not writing {}: {why} (check --square-mm, {} mm)",
                    out.display(),
                    args.square_mm
                )
            })?;
        report
            .calibration
            .save(out)
            .with_context(|| format!("writing {}", out.display()))?;
        saved_to = Some(out.display().to_string());
    }
    if let Some(why) = &refused {
        warnings.push(why.clone());
    } else if args.out.is_none() {
        warnings.push(
            "nothing saved: pass --out calibration/NAME.toml to keep this calibration".to_owned(),
        );
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let c = &report.calibration;
            let (k, d) = (c.intrinsics, c.distortion);
            let json = JsonOut {
                fx: k.fx,
                fy: k.fy,
                cx: k.cx,
                cy: k.cy,
                k1: d.k1,
                k2: d.k2,
                p1: d.p1,
                p2: d.p2,
                k3: d.k3,
                rms_px: c.rms_px,
                views_used: report.views.len(),
                views_rejected: report
                    .rejected
                    .iter()
                    .map(|r| JsonRejected {
                        image: r.name.clone(),
                        reason: r.reason.clone(),
                    })
                    .collect(),
                image_width: c.image_width,
                image_height: c.image_height,
                px_per_mm: scale.as_ref().map(|s| s.px_per_mm),
                px_per_mm_sigma: scale.as_ref().map(|s| s.sigma_px_per_mm),
                px_per_mm_source: scale.as_ref().map(|s| s.source),
                working_distance_mm: scale.as_ref().map(|s| s.working_distance_mm),
                coverage: report.coverage,
                verdict: verdict.clone(),
                warnings: warnings.clone(),
                saved_to: saved_to.clone(),
            };
            serde_json::to_writer(&mut stdout, &json)?;
            writeln!(stdout)?;
        }
        Format::Table => {
            write_table(&mut stdout, &report, scale.as_ref(), &verdict)?;
            match &saved_to {
                Some(path) => writeln!(stdout, "saved      {path}")?,
                None => writeln!(stdout, "saved      nothing")?,
            }
        }
    }
    if let Some(why) = refused {
        anyhow::bail!("{why}");
    }
    if let Some(path) = &saved_to {
        eprintln!("saved the calibration to {path}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Why `--out` without a working-plane view saves nothing.
fn refusal(out: &Path, scale: Option<&ScaleEstimate>) -> String {
    let measured = scale.map_or(String::new(), |s| {
        format!(
            " (the calibration views put it anywhere within ±{:.0}% of {:.2} px/mm)",
            100.0 * s.relative_sigma(),
            s.px_per_mm
        )
    });
    format!(
        "{} not saved: px/mm must be measured at the skin{measured}, and every density and spacing rests on it. Lay the board flat on the scalp, take one picture and pass it with --plane IMAGE; or pass --px-per-mm-from-views to save the least tilted view's scale anyway",
        out.display()
    )
}

fn write_table(
    out: &mut impl Write,
    report: &CalibrationReport,
    scale: Option<&ScaleEstimate>,
    verdict: &Verdict,
) -> std::io::Result<()> {
    let c = &report.calibration;
    let (k, d) = (c.intrinsics, c.distortion);
    let sigma = c.uncertainty.unwrap_or(crate::calib::Intrinsics {
        fx: f64::NAN,
        fy: f64::NAN,
        cx: f64::NAN,
        cy: f64::NAN,
    });
    writeln!(out, "image      {} x {} px", c.image_width, c.image_height)?;
    writeln!(out, "fx         {:10.3} px  ± {:.3}", k.fx, sigma.fx)?;
    writeln!(out, "fy         {:10.3} px  ± {:.3}", k.fy, sigma.fy)?;
    writeln!(out, "cx         {:10.3} px  ± {:.3}", k.cx, sigma.cx)?;
    writeln!(out, "cy         {:10.3} px  ± {:.3}", k.cy, sigma.cy)?;
    writeln!(out, "k1 k2 k3   {:+.6} {:+.6} {:+.6}", d.k1, d.k2, d.k3)?;
    writeln!(out, "p1 p2      {:+.6} {:+.6}", d.p1, d.p2)?;
    match scale {
        Some(s) => {
            let from = match s.source {
                ScaleSource::Plane => "working plane",
                ScaleSource::LeastTiltedView => "least tilted view, NOT the skin",
            };
            writeln!(
                out,
                "px/mm      {:10.3}     ± {:.3} ({:.2}%), {from}: {}",
                s.px_per_mm,
                s.sigma_px_per_mm,
                100.0 * s.relative_sigma(),
                s.view
            )?;
            writeln!(out, "distance   {:10.1} mm", s.working_distance_mm)?;
        }
        None => writeln!(out, "px/mm      unknown")?,
    }
    writeln!(
        out,
        "RMS        {:10.4} px over {} views",
        c.rms_px,
        report.views.len()
    )?;
    writeln!(out, "coverage   {:10.0} %", 100.0 * report.coverage)?;
    writeln!(out, "verdict    {}", verdict.summary)?;
    for t in &verdict.todo {
        writeln!(out, "  - {t}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<40} {:>9} {:>9} {:>9} {:>9}",
        "view", "rms_px", "tilt_deg", "px/mm", "dist_mm"
    )?;
    for v in &report.views {
        writeln!(
            out,
            "{:<40} {:>9.4} {:>9.1} {:>9.3} {:>9.1}",
            v.name, v.rms_px, v.tilt_deg, v.px_per_mm, v.distance_mm
        )?;
    }
    for r in &report.rejected {
        writeln!(out, "{:<40} rejected: {}", r.name, r.reason)?;
    }
    Ok(())
}
