//! `vovd data list`: the data sets as this host's daemon reports them.

use std::process::ExitCode;

use clap::Args;

use super::DataDirArgs;
use crate::cli::{output, CliError};
use crate::data::{availability, DatasetName};

/// Arguments of `vovd data list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where the data sets live.
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: &ListArgs) -> Result<ExitCode, CliError> {
    let root = args.dir.resolve()?;
    let rows: Vec<availability::Availability> = DatasetName::ALL
        .iter()
        .map(|&name| availability::check(name, &root))
        .collect();
    if args.json {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name.to_string(), "available": a.available,
                    "train_images": a.train_images, "val_images": a.val_images,
                    "detail": a.detail,
                })
            })
            .collect();
        output::print_json(&json)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|a| {
                vec![
                    a.name.to_string(),
                    if a.available { "present" } else { "absent" }.to_string(),
                    a.train_images.to_string(),
                    a.val_images.to_string(),
                    a.detail.clone(),
                ]
            })
            .collect();
        output::print_table(&["data set", "state", "train", "val", "detail"], &table)?;
    }
    Ok(ExitCode::SUCCESS)
}
