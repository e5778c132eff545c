//! `vovd worker` (hidden): runs one trial for the daemon. Reads a
//! [`WorkerInput`] from stdin, prints [`WorkerMessage`] lines on stdout.
//!
//! SIGTERM or SIGINT, a closed stdout, or the daemon going away (this process
//! being re-parented) all ask the trainer to checkpoint at the next batch and stop;
//! the daemon then decides whether the trial is cancelled or resumes later. The
//! checkpoint directory is locked for the worker's lifetime, so a worker orphaned by
//! a killed daemon and its successor never write the same checkpoint.

use std::io::{Read, Write};
use std::process::ExitCode;

use super::trial::{self, StepThrottle};
use super::CliError;
use crate::jobs::protocol::{EvaluateTask, WorkerFailure, WorkerInput, WorkerMessage};
use crate::runtime::gpu::{self, DeviceLabel};
use crate::runtime::threads;
use crate::train::evaluate::{self, EvaluateOptions};
use crate::train::{StopFlag, TrainError, TrainEvent, TrainOptions};

fn read_input() -> Result<WorkerInput, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::Usage(format!("reading the worker input: {e}")))?;
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("bad worker input: {e}")))
}

/// Writes one message line; a failed write means the daemon is gone.
fn send(msg: &WorkerMessage) -> bool {
    let Ok(line) = serde_json::to_string(msg) else {
        return false;
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// Opens the device `label` names.
fn open(label: &str) -> Result<candle_core::Device, CliError> {
    let label: DeviceLabel = label
        .parse()
        .map_err(|e: gpu::DeviceError| CliError::Usage(e.to_string()))?;
    gpu::open(label).map_err(|e| CliError::Failed(e.to_string()))
}

/// An evaluation job: nothing to checkpoint, so a signal ends it at once (the
/// default action) and the daemon decides what that means.
fn evaluate(input: &WorkerInput, task: &EvaluateTask) -> Result<ExitCode, CliError> {
    let opts = EvaluateOptions {
        dataset: task.dataset,
        data_dir: Some(input.data_dir.clone()),
        val_limit: task.val_limit,
        accuracy: task.accuracy,
        measure: task.measure,
        device: open(&input.device)?,
        device_label: input.device.clone(),
        threads: input.threads,
    };
    let message = match evaluate::run(&task.weights, &opts) {
        Ok(record) => WorkerMessage::Evaluated {
            record: Box::new(record),
        },
        Err(err) => WorkerMessage::Failed {
            // Weights that do not fit the data set are the request's fault.
            class: match err {
                TrainError::Weights { .. } => WorkerFailure::InvalidSpec,
                ref e => trial::failure(e),
            },
            message: err.to_string(),
        },
    };
    send(&message);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run() -> Result<ExitCode, CliError> {
    let input = read_input()?;
    threads::configure(input.threads).map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(task) = &input.evaluate {
        return evaluate(&input, task);
    }
    let _lock = trial::lock_checkpoints(&input.checkpoint_dir)?;
    let stop = StopFlag::default();
    let on_signal = stop.clone();
    trial::watch_signals(
        &[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT],
        move |_| on_signal.interrupt(),
    )?;
    let device = open(&input.device)?;
    let opts = TrainOptions {
        stop_after: input.stop_after,
        weights_file: input.weights_file.clone(),
        ..trial::options(
            device,
            input.device.clone(),
            input.threads,
            input.data_dir.clone(),
            input.checkpoint_dir.clone(),
            stop.clone(),
        )
    };
    let parent = std::os::unix::process::parent_id();
    let mut throttle = StepThrottle::default();
    let mut observe = |event: &TrainEvent| {
        if std::os::unix::process::parent_id() != parent {
            stop.interrupt();
        }
        if throttle.admits(event)
            && !send(&WorkerMessage::Event {
                event: event.clone(),
            })
        {
            stop.interrupt();
        }
    };
    let outcome = trial::train_resuming(
        &input.spec,
        &opts,
        input.corrupt_dir.as_deref(),
        &mut observe,
    );
    let message = match outcome {
        Ok(record) => WorkerMessage::Result {
            record: Box::new(record),
        },
        Err(TrainError::Paused { epochs_done }) => WorkerMessage::Paused { epochs_done },
        Err(err) => WorkerMessage::Failed {
            class: trial::failure(&err),
            message: err.to_string(),
        },
    };
    send(&message);
    Ok(ExitCode::SUCCESS)
}
