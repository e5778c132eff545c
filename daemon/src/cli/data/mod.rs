//! `vovd data`: install, check and list the data sets on this host.
//!
//! The daemon itself never downloads anything: a host may have no internet, and a
//! download must never start behind a user's back. These commands are how an
//! operator (or `deploy/install.sh --fetch-data`) puts a data set in place.

mod dir;
mod fetch;
mod list;
mod verify;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CliError;

pub use dir::DataDirArgs;
pub use fetch::FetchArgs;
pub use list::ListArgs;
pub use verify::VerifyArgs;

/// Arguments of `vovd data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `vovd data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download (or install from a file) a data set, checksum verified.
    Fetch(FetchArgs),
    /// Decode the installed data sets and check every record; exit 1 if one is broken.
    Verify(VerifyArgs),
    /// List the data sets as the daemon reports them (present, absent or broken).
    List(ListArgs),
}

pub(super) fn run(args: &DataArgs) -> Result<ExitCode, CliError> {
    match &args.command {
        DataCommand::Fetch(a) => fetch::run(a),
        DataCommand::Verify(a) => verify::run(a),
        DataCommand::List(a) => list::run(a),
    }
}
