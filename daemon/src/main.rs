//! The `vovd` binary: parse, set up logging, run the library's command.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = vovd::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match vovd::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vovd: error: {err}");
            err.exit_code()
        }
    }
}
