//! The `stipple` binary: parses the command line, sets up logging, and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stipple::cli::Cli::parse();
    stipple::cli::init_tracing();
    match stipple::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stipple: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
