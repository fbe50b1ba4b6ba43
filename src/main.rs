//! The `stipple` binary: parses the command line, sets up logging, and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stipple::cli::Cli::parse();
    stipple::cli::init_tracing();
    match stipple::cli::run(cli) {
        Ok(code) => code,
        Err(err) if reader_gone(&err) => {
            // `stipple detect ... | head`: the reader took what it wanted. Nothing is wrong to
            // report; the exit status is the shell's for a writer whose pipe closed (128 +
            // SIGPIPE), so a script can still tell the output was cut.
            ExitCode::from(141)
        }
        Err(err) => {
            eprintln!("stipple: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `err` comes from writing to a pipe whose reader has closed it.
fn reader_gone(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
    })
}
