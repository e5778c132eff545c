//! `vovd data list`: the data sets as this host's daemon reports them (the same
//! quick structural check as `HostInfo`), with the command that fixes each one
//! that is absent or broken.

use std::process::ExitCode;

use clap::Args;

use super::DataDirArgs;
use crate::cli::{output, CliError};
use crate::data::availability::{self, Availability};

/// Arguments of `vovd data list`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vovd data list --data-dir /var/lib/vovd/data\n  \
                        vovd data list --json    (keys: name, state, train_images, val_images, detail, fix)"
)]
pub struct ListArgs {
    /// Where the data sets live.
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn row(a: &Availability) -> Vec<String> {
    vec![
        a.name.to_string(),
        a.state.to_string(),
        a.train_images.to_string(),
        a.val_images.to_string(),
        a.detail.clone(),
        a.fix.clone().unwrap_or_default(),
    ]
}

pub(super) fn run(args: &ListArgs) -> Result<ExitCode, CliError> {
    let root = args.dir.resolve()?;
    let rows = availability::check_all(&root);
    if args.json {
        output::print_json(&rows.iter().map(Availability::report).collect::<Vec<_>>())?;
    } else {
        let table: Vec<Vec<String>> = rows.iter().map(row).collect();
        output::print_table(
            &["data set", "state", "train", "val", "detail", "fix"],
            &table,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
