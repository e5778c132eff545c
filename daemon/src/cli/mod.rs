//! The `vovd` command line: argument types, dispatch and exit codes. The binary
//! only parses and calls [`run`].

mod bench;
mod check_kernels;
mod data;
mod devices;
mod evaluate;
mod keys;
mod logging;
mod models;
mod output;
mod serve;
mod task;
mod train;
mod trial;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use thiserror::Error;

pub use bench::BenchArgs;
pub use check_kernels::CheckKernelsArgs;
pub use data::{DataArgs, DataCommand, DataDirArgs, FetchArgs, ListArgs, VerifyArgs};
pub use devices::DevicesArgs;
pub use evaluate::EvaluateArgs;
pub use models::ModelsArgs;
pub use serve::{CheckConfigArgs, ConfigArgs, ServeArgs};
pub use task::{DeviceChoice, TaskArgs};
pub use train::TrainArgs;

/// vovd: trains and times image-classification models for vov.
#[derive(Debug, Parser)]
#[command(
    name = "vovd",
    version,
    about = "Train and time the VoVNet / DenseNet benchmark models",
    long_about = "vovd trains and evaluates the benchmark's candle models on this host and \
                  measures them the way the published table does (max validation accuracy, \
                  train s/epoch, batch-1 and batch-32 inference, parameter counts).",
    after_help = "Examples:\n  vovd models\n  vovd train --model vovnet-27-slim --dataset synthetic --epochs 2 --train-limit 1024 --val-limit 256\n  vovd train --model densenet-koshian-2 --dataset fashion-mnist --epochs 3 --bn-momentum 0.9 --json"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the model presets with their parameter counts.
    Models(ModelsArgs),
    /// Train one model on one data set and print the published columns.
    Train(Box<TrainArgs>),
    /// Run the daemon: accept trials over gRPC and run one per slot.
    Serve(ServeArgs),
    /// Validate the daemon configuration and print the effective values.
    CheckConfig(CheckConfigArgs),
    /// List the CPU and GPUs; --compare checks a GPU against the CPU.
    Devices(DevicesArgs),
    /// Measure training and inference speed of the benchmark models here.
    Bench(BenchArgs),
    /// Validation accuracy and timings of kept weights (a file vov wrote), here.
    Evaluate(EvaluateArgs),
    /// Check that the custom CPU kernels train like candle's reference ops.
    CheckKernels(CheckKernelsArgs),
    /// Install, verify and list the data sets on this host (`vovd data fetch cifar10`).
    Data(DataArgs),
    /// Run one trial as a batch-system task (a Slurm array task) in its folder.
    Task(TaskArgs),
    /// Run one trial for the daemon (spec on stdin, events on stdout).
    #[command(hide = true)]
    Worker,
}

/// A command failed; the variant decides the exit code.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad flag or value, or input that can never work (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The work itself failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The daemon configuration is invalid (exit 64, EX_USAGE).
    #[error("configuration: {0}")]
    Config(String),
}

impl CliError {
    /// A run's error as a command's: the request's own fault (its spec, data
    /// set or model knobs) is usage, anything else a failure.
    pub fn from_run(e: crate::train::TrainError) -> CliError {
        if e.is_invalid_input() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Failed(e.to_string())
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::from(1),
            CliError::Config(_) => ExitCode::from(64),
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // `serve` follows its configuration's log format; the others log warnings
    // and errors unless `RUST_LOG` says otherwise.
    if !matches!(cli.command, Command::Serve(_)) {
        logging::init(config::LogFormat::Plain, "warn");
    }
    match cli.command {
        Command::Models(args) => models::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::CheckConfig(args) => serve::check(&args),
        Command::Devices(args) => devices::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::CheckKernels(args) => check_kernels::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Data(args) => data::run(&args),
        Command::Task(args) => task::run(&args),
        Command::Worker => worker::run(),
    }
}
