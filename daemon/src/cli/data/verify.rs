//! `vovd data verify`.

use std::process::ExitCode;

use clap::Args;

use super::DataDirArgs;
use crate::cli::CliError;
use crate::data::DatasetName;

/// Arguments of `vovd data verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// One data set [default: every one].
    pub name: Option<DatasetName>,
    /// Where the data sets live.
    #[command(flatten)]
    pub dir: DataDirArgs,
}

pub(super) fn run(args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let _ = args.dir.resolve()?;
    Err(CliError::Failed("verify is not built yet".into()))
}
