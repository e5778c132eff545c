//! The `vovctl` binary: parse, run the library's command, print errors with their
//! exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vovctl::cli::Cli::parse();
    match vovctl::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vovctl: error: {err}");
            err.exit_code()
        }
    }
}
