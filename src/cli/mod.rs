//! The command-line front end: one file per sub-command, each with its clap arguments and a
//! `run` that returns the process exit code. Errors bubble up as `anyhow` with context and are
//! printed once, by `main`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod calibrate;
mod detect;
mod plan;
mod replay;
mod score;
mod serve;
mod synth;
mod synth_board;

/// `--view` values: how the camera sees the skin ([`crate::frame::View`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ViewArg {
    /// An artist's rig camera: dots of a few pixels (12-28 px/mm).
    Rig,
    /// A trichoscopy dermoscope: hair shafts resolved (60-400 px/mm).
    Dermoscope,
}

impl From<ViewArg> for crate::frame::View {
    fn from(v: ViewArg) -> Self {
        match v {
            ViewArg::Rig => Self::Rig,
            ViewArg::Dermoscope => Self::Dermoscope,
        }
    }
}

/// Stipple: machine-vision guidance for scalp micropigmentation.
#[derive(Debug, Parser)]
#[command(name = "stipple", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render synthetic scalp frames with ground truth (NNN.png + NNN.json).
    Synth(synth::SynthArgs),
    /// Find every follicle and pigment dot in images, in pixels, with a kind and a score.
    Detect(detect::DetectArgs),
    /// Recommend the next dots: where, how big, how dark, in what order (JSON in pixels).
    Plan(plan::PlanArgs),
    /// Score detections (`detect --format jsonl` lines) against `synth` ground truth.
    Score(score::ScoreArgs),
    /// The live service: camera to overlay at the chair, on a page at http://127.0.0.1:8080/.
    Serve(serve::ServeArgs),
    /// Replay a recorded session on the live page, score it (--report) or compare it with a
    /// later one (--compare).
    Replay(replay::ReplayArgs),
    /// Calibrate the camera rig from chessboard photos (intrinsics, distortion, px/mm).
    Calibrate(calibrate::CalibrateArgs),
    /// Render chessboard views through the reference camera, with ground truth.
    SynthBoard(synth_board::SynthBoardArgs),
}

/// Sets up `tracing` once: `RUST_LOG` if given, else warnings only (stdout stays clean for JSON).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,stipple::pipeline=info,stipple::source=info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the sub-command fails with, with context naming the file or flag at fault.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Synth(args) => synth::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Score(args) => score::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::SynthBoard(args) => synth_board::run(args),
    }
}
