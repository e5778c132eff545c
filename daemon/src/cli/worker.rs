//! `vovd worker` (hidden): runs one trial for the daemon. Reads a
//! [`WorkerInput`] from stdin, prints [`WorkerMessage`] lines on stdout.
//!
//! SIGTERM or SIGINT, a closed stdout, or the daemon going away (this process
//! being re-parented) all ask the trainer to checkpoint at the next batch and stop;
//! the daemon then decides whether the trial is cancelled or resumes later. The
//! checkpoint directory is locked for the worker's lifetime, so a worker orphaned by
//! a killed daemon and its successor never write the same checkpoint.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::runtime::gpu::{self, DeviceLabel};
use nix::fcntl::{Flock, FlockArg};

use super::CliError;
use crate::jobs::protocol::{WorkerFailure, WorkerInput, WorkerMessage};
use crate::runtime::threads;
use crate::train::{self, checkpoint, StopFlag, TrainError, TrainEvent, TrainOptions};

/// Least time between two step events sent to the daemon.
const STEP_EVERY: Duration = Duration::from_secs(1);

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

fn lock_checkpoints(dir: &std::path::Path) -> Result<Flock<std::fs::File>, CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    let file = std::fs::File::create(dir.join("lock"))
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| CliError::Failed(format!("locking {}: {e}", dir.display())))
}

fn watch_signals(stop: &StopFlag) -> Result<(), CliError> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| CliError::Failed(format!("installing signal handlers: {e}")))?;
    let stop = stop.clone();
    std::thread::Builder::new()
        .name("vov-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stop.interrupt();
            }
        })
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(())
}

fn failure(err: &TrainError) -> WorkerFailure {
    let text = err.to_string().to_lowercase();
    match err {
        e if e.is_invalid_input() => WorkerFailure::InvalidSpec,
        TrainError::Diverged { .. } => WorkerFailure::Diverged,
        TrainError::DiskFull { .. } => WorkerFailure::DiskFull,
        TrainError::Interrupted { .. } | TrainError::Cancelled { .. } => WorkerFailure::Interrupted,
        _ if text.contains("out of memory") || text.contains("cuda_error_out_of_memory") => {
            WorkerFailure::Oom
        }
        _ => WorkerFailure::Error,
    }
}

/// Moves the unusable checkpoint `path` of this trial out of the way; returns
/// where it went.
fn set_aside(path: &Path, input: &WorkerInput) -> std::io::Result<PathBuf> {
    match &input.corrupt_dir {
        Some(dir) => {
            let name = input
                .checkpoint_dir
                .file_name()
                .map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy());
            checkpoint::set_aside(path, dir, &name)
        }
        None => {
            let mut dest = path.as_os_str().to_owned();
            dest.push(".corrupt");
            let dest = PathBuf::from(dest);
            std::fs::rename(path, &dest)?;
            Ok(dest)
        }
    }
}

pub(super) fn run() -> Result<ExitCode, CliError> {
    let input = read_input()?;
    threads::configure(input.threads).map_err(|e| CliError::Usage(e.to_string()))?;
    let _lock = lock_checkpoints(&input.checkpoint_dir)?;
    let stop = StopFlag::default();
    watch_signals(&stop)?;
    let resume = input.checkpoint_dir.join(checkpoint::FILE_NAME);
    let label: DeviceLabel = input
        .device
        .parse()
        .map_err(|e: gpu::DeviceError| CliError::Usage(e.to_string()))?;
    let device = gpu::open(label).map_err(|e| CliError::Failed(e.to_string()))?;
    let opts = TrainOptions {
        device,
        device_label: input.device.clone(),
        device_name: None,
        threads: input.threads,
        data_dir: Some(input.data_dir.clone()),
        checkpoint_dir: Some(input.checkpoint_dir.clone()),
        checkpoint_every: 1,
        resume: resume.is_file().then_some(resume),
        stop: stop.clone(),
    };
    let parent = std::os::unix::process::parent_id();
    let mut last_step = Instant::now() - STEP_EVERY;
    let mut observe = |event: &TrainEvent| {
        if std::os::unix::process::parent_id() != parent {
            stop.interrupt();
        }
        if let TrainEvent::Step { step, steps, .. } = event {
            if step != steps && last_step.elapsed() < STEP_EVERY {
                return;
            }
            last_step = Instant::now();
        }
        if !send(&WorkerMessage::Event {
            event: event.clone(),
        }) {
            stop.interrupt();
        }
    };
    let mut outcome = train::run(&input.spec, &opts, &mut observe);
    if let (Err(TrainError::Unusable { path, .. }), Some(_)) = (&outcome, &opts.resume) {
        let path = path.clone();
        let why = outcome.as_ref().err().map(ToString::to_string);
        match set_aside(&path, &input) {
            Ok(dest) => {
                let message = format!(
                    "{}: moved to {}; restarting from epoch 1",
                    why.unwrap_or_default(),
                    dest.display()
                );
                tracing::warn!("{message}");
                observe(&TrainEvent::Warning { message });
                let fresh = TrainOptions {
                    resume: None,
                    ..opts.clone()
                };
                outcome = train::run(&input.spec, &fresh, &mut observe);
            }
            Err(e) => {
                outcome = Err(TrainError::Checkpoint {
                    path: path.clone(),
                    reason: format!("{}; moving it aside failed: {e}", why.unwrap_or_default()),
                });
            }
        }
    }
    let message = match outcome {
        Ok(record) => WorkerMessage::Result {
            record: Box::new(record),
        },
        Err(err) => WorkerMessage::Failed {
            class: failure(&err),
            message: err.to_string(),
        },
    };
    send(&message);
    Ok(ExitCode::SUCCESS)
}
