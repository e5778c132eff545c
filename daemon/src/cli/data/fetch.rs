//! `vovd data fetch`.

use std::process::ExitCode;

use clap::Args;

use super::DataDirArgs;
use crate::cli::CliError;
use crate::data::DatasetName;

/// Arguments of `vovd data fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The data set.
    pub name: DatasetName,
    /// Where the data sets live.
    #[command(flatten)]
    pub dir: DataDirArgs,
}

pub(super) fn run(args: &FetchArgs) -> Result<ExitCode, CliError> {
    Err(CliError::Failed(format!("fetching {} is not built yet", args.name)))
}
