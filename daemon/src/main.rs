//! The `vovd` binary: parse, run the library's command, print errors with their
//! exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vovd::cli::Cli::parse();
    match vovd::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vovd: error: {err}");
            err.exit_code()
        }
    }
}
