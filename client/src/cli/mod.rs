//! The `vovctl` command line. The binary parses and calls [`run`]; every verb
//! lives in its own file.
//!
//! Exit codes: 0 every trial succeeded, 1 the sweep ran but some trials failed,
//! 2 usage, sweep file or connection error. A closed stdout pipe is not an error.

pub mod cancel;
mod common;
mod data;
mod dry_run;
mod evaluate;
mod hosts;
mod prune;
mod results;
mod status;
mod sweep;
mod target;
mod ui;
mod weights;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use thiserror::Error;

pub use common::{HostArgs, LocalDataArgs, StoreArgs};
pub use ui::{DashboardAccess, UiArgs, DEFAULT_LISTEN};

/// vovctl: run image-classification benchmark sweeps over vovd hosts.
#[derive(Debug, Parser)]
#[command(
    name = "vovctl",
    version,
    about = "Run benchmark sweeps over vovd hosts and report them",
    long_about = "vovctl expands a sweep file into trials, places them on the slots of your vovd hosts \
                  (or a local vovd it starts), follows them live, keeps every result in a local SQLite \
                  store, and reports the published table and plots.",
    after_help = "Examples:\n  vovctl sweep configs/quick.toml\n  vovctl sweep configs/all.toml --hosts gpu1:7070,gpu2:7070 --detach\n  \
                  vovctl attach published\n  vovctl results published --collect\n  vovctl report published --out report/\n  vovctl ui\n\n\
                  Exit codes: 0 all trials succeeded, 1 some failed, 2 usage or connection error."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a sweep file: expand, plan, place, follow, store, report.
    Sweep(Box<sweep::SweepArgs>),
    /// Follow a sweep placed earlier (after --detach, or a killed vovctl).
    Attach(sweep::AttachArgs),
    /// Each host: reachable, version, fingerprint, slots, queue.
    Hosts(hosts::HostsArgs),
    /// Which host has which data set (present, absent, broken) and how to fix it.
    Data(data::DataArgs),
    /// Trial states of a sweep (or all sweeps) from the store.
    Status(status::StatusArgs),
    /// Cancel a sweep's unfinished trials, or one trial.
    Cancel(cancel::CancelArgs),
    /// Per-trial results of a sweep; --collect fetches them from the hosts first.
    Results(results::ResultsArgs),
    /// The published table (md, csv, json) and, with --out, SVG plots.
    Report(results::ReportArgs),
    /// Fetch a trial's kept weights (safetensors) from its host.
    Weights(weights::WeightsArgs),
    /// Measure a trial's kept weights on other hosts (accuracy, batch-1, batch-32).
    Evaluate(evaluate::EvaluateArgs),
    /// Remove a sweep's kept weights from its hosts (each configuration's best stays).
    Prune(prune::PruneArgs),
    /// Serve a live web dashboard of the results store (sweeps, trials, curves).
    Ui(ui::UiArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A command failed; the variant decides the exit code.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad usage, sweep file or store (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No host could be reached (exit 2).
    #[error("{0}")]
    Connection(String),
}

impl CliError {
    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(2)
    }
}

/// Exit code for a sweep's outcome.
pub(crate) fn outcome(all_ok: bool) -> ExitCode {
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "vovctl", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    runtime.block_on(async {
        match cli.command {
            Command::Sweep(args) => sweep::sweep(*args).await,
            Command::Attach(args) => sweep::attach(args).await,
            Command::Hosts(args) => hosts::run(args).await,
            Command::Data(args) => data::run(args).await,
            Command::Status(args) => status::run(args),
            Command::Cancel(args) => cancel::run(args).await,
            Command::Results(args) => results::results(args).await,
            Command::Report(args) => results::report(args),
            Command::Ui(args) => ui::run(args).await,
            Command::Weights(args) => weights::run(args).await,
            Command::Evaluate(args) => evaluate::run(args).await,
            Command::Prune(args) => prune::run(args).await,
            Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    })
}
