//! Running one trial in this process, the parts `vovd worker` (for the daemon)
//! and `vovd task` (for a batch system) share: the checkpoint lock, signal
//! watching, the training options, resuming with a corrupt checkpoint set aside,
//! step-event throttling and the failure report of a training error.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;
use nix::fcntl::{Flock, FlockArg};

use super::CliError;
use crate::jobs::protocol::WorkerFailure;
use crate::train::{
    self, checkpoint, StopFlag, TrainError, TrainEvent, TrainOptions, TrainRecord, TrainSpec,
};

/// Least time between two step events passed on.
const STEP_EVERY: Duration = Duration::from_secs(1);

/// Locks the checkpoint directory `dir` (creating it) for as long as the returned
/// lock lives, waiting for another holder to let go.
pub(super) fn lock_checkpoints(dir: &Path) -> Result<Flock<File>, CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    let file = File::create(dir.join("lock"))
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| CliError::Failed(format!("locking {}: {e}", dir.display())))
}

/// Calls `on_signal` on a thread of its own for each of `signals` this process
/// receives.
pub(super) fn watch_signals(
    signals: &[i32],
    on_signal: impl Fn(i32) + Send + 'static,
) -> Result<(), CliError> {
    let mut signals = signal_hook::iterator::Signals::new(signals)
        .map_err(|e| CliError::Failed(format!("installing signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("vov-signals".into())
        .spawn(move || signals.forever().for_each(on_signal))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(())
}

/// Training options of a trial: checkpoints after every epoch into
/// `checkpoint_dir`, resumed from there when it holds one.
pub(super) fn options(
    device: Device,
    device_label: String,
    threads: usize,
    data_dir: PathBuf,
    checkpoint_dir: PathBuf,
    stop: StopFlag,
) -> TrainOptions {
    let resume = checkpoint_dir.join(checkpoint::FILE_NAME);
    TrainOptions {
        device,
        device_label,
        device_name: None,
        threads,
        data_dir: Some(data_dir),
        checkpoint_dir: Some(checkpoint_dir),
        checkpoint_every: 1,
        weights_file: None,
        resume: resume.is_file().then_some(resume),
        stop_after: None,
        stop,
    }
}

/// Trains `spec`; when the checkpoint to resume from is unusable, moves it to
/// `corrupt_dir` (beside itself with a `.corrupt` suffix when `None`), says so as
/// a warning event and restarts from epoch 1.
pub(super) fn train_resuming(
    spec: &TrainSpec,
    opts: &TrainOptions,
    corrupt_dir: Option<&Path>,
    observe: &mut dyn FnMut(&TrainEvent),
) -> Result<TrainRecord, TrainError> {
    let outcome = train::run(spec, opts, observe);
    let (Err(TrainError::Unusable { path, .. }), Some(_)) = (&outcome, &opts.resume) else {
        return outcome;
    };
    let why = outcome
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    match set_aside(path, opts, corrupt_dir) {
        Ok(dest) => {
            let message = format!(
                "{why}: moved to {}; restarting from epoch 1",
                dest.display()
            );
            tracing::warn!("{message}");
            observe(&TrainEvent::Warning { message });
            let fresh = TrainOptions {
                resume: None,
                ..opts.clone()
            };
            train::run(spec, &fresh, observe)
        }
        Err(e) => Err(TrainError::Checkpoint {
            path: path.clone(),
            reason: format!("{why}; moving it aside failed: {e}"),
        }),
    }
}

/// Moves the unusable checkpoint `path` out of the way; returns where it went.
fn set_aside(
    path: &Path,
    opts: &TrainOptions,
    corrupt_dir: Option<&Path>,
) -> std::io::Result<PathBuf> {
    match corrupt_dir {
        Some(dir) => {
            let name = opts
                .checkpoint_dir
                .as_deref()
                .and_then(Path::file_name)
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

/// What a training error reports as its failure.
pub(super) fn failure(err: &TrainError) -> WorkerFailure {
    let text = err.to_string().to_lowercase();
    match err {
        e if e.is_invalid_input() => WorkerFailure::InvalidSpec,
        TrainError::Diverged { .. } => WorkerFailure::Diverged,
        TrainError::DiskFull { .. } => WorkerFailure::DiskFull,
        TrainError::Interrupted { .. }
        | TrainError::Cancelled { .. }
        | TrainError::Paused { .. } => WorkerFailure::Interrupted,
        _ if text.contains("out of memory") || text.contains("cuda_error_out_of_memory") => {
            WorkerFailure::Oom
        }
        _ => WorkerFailure::Error,
    }
}

/// Lets through at most one step event a second (and every epoch's last step);
/// other events always pass.
#[derive(Debug)]
pub(super) struct StepThrottle {
    last: Instant,
}

impl Default for StepThrottle {
    fn default() -> Self {
        StepThrottle {
            last: Instant::now() - STEP_EVERY,
        }
    }
}

impl StepThrottle {
    /// Whether `event` is passed on.
    pub(super) fn admits(&mut self, event: &TrainEvent) -> bool {
        if let TrainEvent::Step { step, steps, .. } = event {
            if step != steps && self.last.elapsed() < STEP_EVERY {
                return false;
            }
            self.last = Instant::now();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: usize) -> TrainEvent {
        TrainEvent::Step {
            epoch: 1,
            step,
            steps: 10,
            loss: 1.0,
        }
    }

    #[test]
    fn steps_pass_once_a_second_and_at_the_end_of_an_epoch() {
        let mut t = StepThrottle::default();
        assert!(t.admits(&step(1)));
        assert!(!t.admits(&step(2)));
        assert!(t.admits(&TrainEvent::Timing {
            phase: "batch1".into()
        }));
        assert!(t.admits(&step(10)));
    }

    #[test]
    fn failures_are_classified() {
        let diverged = TrainError::Diverged {
            epoch: 1,
            step: 2,
            loss: f64::NAN,
        };
        assert_eq!(failure(&diverged), WorkerFailure::Diverged);
        let stopped = TrainError::Interrupted { epochs_done: 1 };
        assert_eq!(failure(&stopped), WorkerFailure::Interrupted);
        let oom = TrainError::Checkpoint {
            path: "x".into(),
            reason: "CUDA_ERROR_OUT_OF_MEMORY".into(),
        };
        assert_eq!(failure(&oom), WorkerFailure::Oom);
    }
}
