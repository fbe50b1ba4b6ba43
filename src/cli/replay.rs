//! `stipple replay`: a recorded session on the live page, its training report, or a touch-up
//! comparison with a later recording.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::config::{ModelChoice, DEFAULT_BIND};
use crate::record::replay::ReplayOptions;
use crate::record::{compare, report, rerun, Recording};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A self-contained page with pictures.
    Html,
    /// Numbers only.
    Json,
}

/// Arguments of `stipple replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording (`stipple serve --record FILE.mcap`).
    pub file: PathBuf,
    /// Address to serve the page on.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Playback speed (1 = as recorded).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Start paused on the first frame.
    #[arg(long)]
    pub paused: bool,
    /// Re-run perception and planning on the recorded frames (with the recording's model
    /// unless --model or --no-model), to compare on the page and in /api/replay.
    #[arg(long)]
    pub rerun: bool,
    /// Model for the re-run (a newer one to compare).
    #[arg(long, requires = "rerun", conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Re-run with classical detection only.
    #[arg(long, requires = "rerun")]
    pub no_model: bool,
    /// Write the training report (or, with --compare, the comparison) to this file and exit.
    #[arg(long, value_name = "OUT.html|OUT.json")]
    pub report: Option<PathBuf>,
    /// Report format (default: from the extension of --report, else html).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// A later recording of the same scalp: report which dots faded or spread (needs --report).
    #[arg(long, value_name = "NEW.mcap", requires = "report")]
    pub compare: Option<PathBuf>,
}

/// Runs `stipple replay`.
///
/// # Errors
/// A file that is not a Stipple recording, a report that cannot be written, an address that
/// cannot be bound.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.speed.is_finite() && args.speed > 0.0,
        "--speed must be positive, got {}",
        args.speed
    );
    let rec = Recording::open(&args.file)?;
    tracing::info!(
        file = %args.file.display(),
        frames = rec.frames.len(),
        duration_s = rec.duration_s(),
        finished = rec.finished,
        "recording read"
    );
    if let Some(out) = &args.report {
        let format = args.format.unwrap_or_else(|| format_of(out));
        let text = match &args.compare {
            Some(new_path) => {
                let new = Recording::open(new_path)?;
                let c = compare::compare(&rec, &new)?;
                match format {
                    ReportFormat::Html => c.to_html(),
                    ReportFormat::Json => c.to_json().context("formatting the comparison")?,
                }
            }
            None => {
                let r = report::Report::from_recording(&rec);
                match format {
                    ReportFormat::Html => r.to_html(),
                    ReportFormat::Json => r.to_json().context("formatting the report")?,
                }
            }
        };
        std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rerun = if args.rerun {
        Some(match (&args.model, args.no_model) {
            (_, true) => ModelChoice::None,
            (Some(path), false) => {
                anyhow::ensure!(path.is_file(), "--model {}: no such file", path.display());
                ModelChoice::File(path.clone())
            }
            (None, false) => rerun::default_model(&rec)?,
        })
    } else {
        None
    };
    let opts = ReplayOptions {
        speed: args.speed,
        autoplay: !args.paused,
        rerun,
        token: None,
    };
    let mut opts = opts;
    if !args.bind.ip().is_loopback() {
        tracing::warn!(bind = %args.bind, "listening beyond loopback: the page is reachable from the network");
        // As `serve`: beyond loopback every request carries a token, shown once here.
        let token = super::serve::new_token();
        let line = format!(
            "access token required; open http://HOST:{}/?token={token}\n",
            args.bind.port()
        );
        std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes())
            .context("writing to stderr")?;
        opts.token = Some(token);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stipple-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::record::replay::run(
        rec,
        opts,
        args.bind,
        crate::shutdown::signal(),
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The format a report path asks for: `.json` is JSON, anything else HTML.
fn format_of(path: &Path) -> ReportFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => ReportFormat::Json,
        _ => ReportFormat::Html,
    }
}
