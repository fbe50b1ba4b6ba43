//! `stipple calibrate`: calibrate a camera rig from chessboard photos.
//!
//! ```text
//! stipple calibrate --board 9x6 --square-mm 3.0 [--out FILE.toml] [--format json|table] \
//!     [--plane IMAGE] IMAGE...
//! ```
//!
//! With `--format json`, stdout is exactly one JSON object:
//! `{"fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "rms_px", "views_used",
//! "views_rejected": [{"image", "reason"}]}`. Images that cannot be read, have another size
//! than the first, or show no complete board are rejected with the reason; the command fails
//! only when fewer than 3 views remain.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::calib::{
    calibrate_images, px_per_mm_from_view, BoardSpec, CalibrationReport, RejectedView,
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
    /// A view of the board lying on the scalp (the working plane) for px/mm; without it the
    /// least tilted calibration view is used.
    #[arg(long)]
    pub plane: Option<PathBuf>,
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
}

#[derive(Debug, Serialize)]
struct JsonRejected {
    image: String,
    reason: String,
}

/// Reads an image as grey, upright: the EXIF orientation of phone photos is applied, as
/// OpenCV's `imread` does, so both tools see the same pixels.
fn load_gray(path: &Path) -> anyhow::Result<GrayImage> {
    use image::ImageDecoder;
    let reader = crate::source::file::checked_reader(path, crate::source::file::Damaged::Refuse)?;
    let read = || -> image::ImageResult<image::DynamicImage> {
        let mut decoder = reader.into_decoder()?;
        let orientation = decoder.orientation()?;
        let mut img = image::DynamicImage::from_decoder(decoder)?;
        img.apply_orientation(orientation);
        Ok(img)
    };
    Ok(read()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .to_luma8())
}

/// Runs the calibration.
///
/// # Errors
/// A bad `--board`, fewer than 3 usable views, an unreadable `--plane` view or an unwritable
/// `--out`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let spec = BoardSpec::parse(&args.board, args.square_mm).context("--board/--square-mm")?;
    let mut images = Vec::new();
    let mut unreadable = Vec::new();
    let mut loaded = Vec::new();
    for path in &args.images {
        let name = path.display().to_string();
        match load_gray(path) {
            Ok(img) => loaded.push((name, img)),
            Err(err) => unreadable.push(RejectedView {
                name,
                reason: format!("{err:#}"),
            }),
        }
    }
    // The image size is the one most readable views share (the first among equals), so one
    // odd first image does not make every good view "the wrong size".
    let mut counts: Vec<((u32, u32), usize)> = Vec::new();
    for (_, img) in &loaded {
        match counts.iter_mut().find(|(d, _)| *d == img.dimensions()) {
            Some((_, n)) => *n += 1,
            None => counts.push((img.dimensions(), 1)),
        }
    }
    let size = counts
        .iter()
        .fold(
            None,
            |best: Option<((u32, u32), usize)>, &(d, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((d, n)),
            },
        )
        .map(|(d, _)| d);
    for (name, img) in loaded {
        let dims = img.dimensions();
        match size {
            Some(s) if s != dims => unreadable.push(RejectedView {
                name,
                reason: format!(
                    "image is {}x{} px, most images are {}x{}",
                    dims.0, dims.1, s.0, s.1
                ),
            }),
            _ => images.push((name, img)),
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
    if let Some(plane) = &args.plane {
        let img = load_gray(plane)?;
        let corners = crate::calib::detect_board(&img, &spec)
            .with_context(|| format!("--plane {}: no board", plane.display()))?;
        report.calibration.px_per_mm = px_per_mm_from_view(&report.calibration, &corners, &spec)
            .with_context(|| format!("--plane {}", plane.display()))?;
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
    if let Some(out) = &args.out {
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
            };
            serde_json::to_writer(&mut stdout, &json)?;
            writeln!(stdout)?;
        }
        Format::Table => write_table(&mut stdout, &report)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, report: &CalibrationReport) -> std::io::Result<()> {
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
    writeln!(out, "px/mm      {:10.3}", c.px_per_mm)?;
    writeln!(
        out,
        "RMS        {:10.4} px over {} views",
        c.rms_px,
        report.views.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<40} {:>9} {:>9} {:>9}",
        "view", "rms_px", "tilt_deg", "px/mm"
    )?;
    for v in &report.views {
        writeln!(
            out,
            "{:<40} {:>9.4} {:>9.1} {:>9.3}",
            v.name, v.rms_px, v.tilt_deg, v.px_per_mm
        )?;
    }
    for r in &report.rejected {
        writeln!(out, "{:<40} rejected: {}", r.name, r.reason)?;
    }
    Ok(())
}
