//! `stipple synth`: render synthetic frames with ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `stipple synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Seed of the first frame; frame i uses seed + i.
    #[arg(long)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Renders the frames.
pub fn run(_args: SynthArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the renderer lands with the synth branch")
}
