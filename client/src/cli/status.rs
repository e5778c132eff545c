//! `vovctl status [SWEEP]`: what the store knows.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;

use super::common::{print, StoreArgs};
use super::CliError;
use crate::report::table::markdown_table;
use crate::store::TrialState;

/// Arguments of `vovctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A sweep (all sweeps when omitted).
    pub sweep: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

pub(super) fn run(args: StatusArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let sweeps = match &args.sweep {
        Some(s) if store.has_sweep(s).map_err(err)? => vec![s.clone()],
        Some(s) => {
            return Err(CliError::Usage(format!(
                "no sweep named '{s}' in the store"
            )))
        }
        None => store.sweeps().map_err(err)?,
    };
    let mut summary = Vec::new();
    let mut json = Vec::new();
    for sweep in &sweeps {
        let trials = store.trials(sweep).map_err(err)?;
        let mut counts: BTreeMap<&str, usize> =
            TrialState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for t in &trials {
            *counts.entry(t.state.as_str()).or_default() += 1;
        }
        if args.sweep.is_some() {
            let rows: Vec<Vec<String>> = trials
                .iter()
                .map(|t| {
                    vec![
                        t.trial_id.clone(),
                        t.label.clone(),
                        t.state.to_string(),
                        t.failure.clone(),
                        t.host.clone().unwrap_or_default(),
                        format!("{}/{}", t.epoch, t.epochs),
                        format!("{:.2}", t.last_val_acc * 100.0),
                    ]
                })
                .collect();
            if !args.json {
                print(&markdown_table(
                    &[
                        "trial",
                        "config",
                        "state",
                        "failure",
                        "host",
                        "epoch",
                        "val acc %",
                    ],
                    &rows,
                ));
            }
        }
        let mut row = vec![sweep.clone(), trials.len().to_string()];
        row.extend(
            TrialState::ALL
                .iter()
                .map(|s| counts[s.as_str()].to_string()),
        );
        summary.push(row);
        json.push(serde_json::json!({"sweep": sweep, "trials": trials.len(), "states": counts}));
    }
    if args.json {
        print(&(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"));
    } else {
        let mut header = vec!["sweep", "trials"];
        header.extend(TrialState::ALL.iter().map(|s| s.as_str()));
        print(&format!("\n{}", markdown_table(&header, &summary)));
    }
    Ok(ExitCode::SUCCESS)
}
