//! `vovd models`: the presets and their parameter counts.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::CliError;
use vov_spec::{Family, Preset};

use crate::model::preset_count;

/// Arguments of `vovd models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One preset with its counts (for a 3-channel 32x32 input, 10 classes).
#[derive(Debug, Serialize)]
pub(super) struct PresetRow {
    /// Preset.
    pub(super) name: Preset,
    /// Family.
    pub family: Family,
    /// Keras' `count_params()`.
    pub params: usize,
    /// Trainable parameters.
    pub trainable: usize,
}

/// Counts every preset.
pub(super) fn rows() -> Result<Vec<PresetRow>, CliError> {
    Preset::ALL
        .iter()
        .map(|&name| {
            let count = preset_count(name).map_err(|e| CliError::Failed(e.to_string()))?;
            Ok(PresetRow {
                name,
                family: name.family(),
                params: count.total,
                trainable: count.trainable,
            })
        })
        .collect()
}

pub(super) fn run(args: &ModelsArgs) -> Result<ExitCode, CliError> {
    let rows = rows()?;
    if args.json {
        super::output::print_json(&rows)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.name.to_string(),
                    r.family.to_string(),
                    r.params.to_string(),
                    r.trainable.to_string(),
                    format!("{:.3}", r.params as f64 / 1e6),
                ]
            })
            .collect();
        super::output::print_table(
            &["model", "family", "params", "trainable", "params (M)"],
            &table,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
