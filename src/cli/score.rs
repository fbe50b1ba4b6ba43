//! `stipple score`: scores detections (ours or a peer's, in the `detect --format jsonl` format)
//! against the renderer's ground truth written by `stipple synth`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::eval::detect::{score_frame, Score};
use crate::eval::visible::{score_frame_visible, skin_group, SKIN_GROUPS};
use crate::frame::Detection;
use crate::source::synth::Truth;

/// Arguments of `stipple score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Detections as written by `stipple detect --format jsonl` (one image per line). Each
    /// image's truth is the `.json` file beside it.
    pub detections: PathBuf,
    /// A name for this detector in the output.
    #[arg(long, default_value = "stipple")]
    pub name: String,
    /// Print JSON instead of table lines.
    #[arg(long)]
    pub json: bool,
    /// Score every dot the renderer drew, seen or not; by default a dot the frame does not show
    /// (measured on the image, see `eval::visible`) is neither a miss nor a false positive.
    #[arg(long)]
    pub all_dots: bool,
}

#[derive(Debug, Deserialize)]
struct Line {
    image: String,
    detections: Vec<Detection>,
}

/// The summary printed by `stipple score --json`.
#[derive(Debug, Serialize)]
pub struct ScoreReport {
    /// The detector's name.
    pub name: String,
    /// Frames scored.
    pub frames: usize,
    /// Precision over all frames.
    pub precision: f64,
    /// Recall over all frames.
    pub recall: f64,
    /// F1 over all true dots.
    pub f1: f64,
    /// Kind accuracy on matched dots.
    pub kind_accuracy: f64,
    /// Relative error of the detected density (signed).
    pub density_error: f64,
    /// Share of detections on negatives.
    pub negative_rate: f64,
    /// Follicle openings alone (follicle detections against units): precision.
    pub openings_precision: f64,
    /// Follicle openings alone: recall.
    pub openings_recall: f64,
    /// Follicle openings alone: F1 (the dermoscope bar).
    pub openings_f1: f64,
    /// The raw counts.
    pub counts: Score,
    /// The same per Fitzpatrick group (I-II, III-IV, V-VI); groups without frames are left out.
    pub groups: Vec<GroupReport>,
}

/// One Fitzpatrick group's figures in [`ScoreReport`].
#[derive(Debug, Serialize)]
pub struct GroupReport {
    /// `I-II`, `III-IV` or `V-VI`.
    pub group: &'static str,
    /// Frames scored.
    pub frames: usize,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// Kind accuracy on matched dots.
    pub kind_accuracy: f64,
    /// Relative error of the detected density (signed).
    pub density_error: f64,
}

fn truth_path(image: &Path) -> PathBuf {
    image.with_extension("json")
}

/// Scores every line of the detections file.
pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&args.detections)
        .with_context(|| format!("{}: cannot open", args.detections.display()))?;
    let mut total = Score::default();
    let mut groups: [Score; 3] = Default::default();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: cannot read", args.detections.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a detection line",
                args.detections.display(),
                n + 1
            )
        })?;
        let tp = truth_path(Path::new(&parsed.image));
        let text = std::fs::read_to_string(&tp)
            .with_context(|| format!("{}: cannot read the truth", tp.display()))?;
        let truth: Truth = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a stipple truth file", tp.display()))?;
        let score = if args.all_dots {
            score_frame(&truth, &parsed.detections)
        } else {
            let img = crate::source::file::load_rgb(Path::new(&parsed.image)).with_context(|| {
                format!(
                    "{}: cannot read the image to measure which dots it shows (--all-dots scores without it)",
                    parsed.image
                )
            })?;
            score_frame_visible(&img, &truth, &parsed.detections)
        };
        total.add(&score);
        groups[skin_group(truth.fitzpatrick)].add(&score);
    }
    let groups: Vec<GroupReport> = groups
        .iter()
        .zip(SKIN_GROUPS)
        .filter(|(g, _)| g.frames > 0)
        .map(|(g, name)| GroupReport {
            group: name,
            frames: g.frames,
            precision: g.precision(),
            recall: g.recall(),
            f1: g.f1(),
            kind_accuracy: g.kind_accuracy(),
            density_error: g.density_error(),
        })
        .collect();
    let report = ScoreReport {
        name: args.name,
        frames: total.frames,
        precision: total.precision(),
        recall: total.recall(),
        f1: total.f1(),
        kind_accuracy: total.kind_accuracy(),
        density_error: total.density_error(),
        negative_rate: total.negative_rate(),
        openings_precision: total.openings_precision(),
        openings_recall: total.openings_recall(),
        openings_f1: total.openings_f1(),
        counts: total,
        groups,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<12} frames {:>3}  P {:.3}  R {:.3}  F1 {:.3}  kind {:.3}  density {:+.1}%  on-neg {:.2}%  openings P {:.3} R {:.3} F1 {:.3}",
            report.name,
            report.frames,
            report.precision,
            report.recall,
            report.f1,
            report.kind_accuracy,
            100.0 * report.density_error,
            100.0 * report.negative_rate,
            report.openings_precision,
            report.openings_recall,
            report.openings_f1
        )?;
        for g in &report.groups {
            writeln!(
                out,
                "{:<12}   {:<6} frames {:>3}  P {:.3}  R {:.3}  F1 {:.3}  kind {:.3}  density {:+.1}%",
                report.name,
                g.group,
                g.frames,
                g.precision,
                g.recall,
                g.f1,
                g.kind_accuracy,
                100.0 * g.density_error
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
