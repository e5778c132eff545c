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

use super::{output, CliError};
use crate::data::verify::Verified;
use crate::data::DatasetName;

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

/// Prints `NAME  STATE  DETAIL` on stdout: one line per data set.
fn print_line(name: DatasetName, state: &str, detail: &str) -> Result<(), CliError> {
    output::print_text(&format!("{name}  {state}  {detail}\n"))
}

/// Prints a verified data set's line: counts, records digest and directory as
/// `key=value` fields, and whether it matched the install record or the
/// published records.
fn print_verified(name: DatasetName, state: &str, v: &Verified) -> Result<(), CliError> {
    let mut detail = format!(
        "train={} val={} sha256={} dir={}",
        v.train_records,
        v.val_records,
        v.records_sha256,
        v.dir.display()
    );
    match v.official {
        Some(true) => detail += " (the published records)",
        Some(false) => detail += " (not the published records)",
        None => {}
    }
    if v.recorded {
        detail += " (matches its install record)";
    }
    print_line(name, state, &detail)
}
