//! `vovd task`: runs one trial as a batch-system task (a Slurm array task),
//! reading its request from and writing its events, final job and checkpoint
//! into the trial's folder ([`TrialDir`]) on a filesystem the submitter shares.

mod log;
mod slurm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use vov_proto::pb;
use vov_proto::taskdir::{self, TrialDir};

use self::log::{summary, Ending, TaskLog};
pub use self::slurm::DeviceChoice;
use self::slurm::TaskEnv;
use super::trial::{self, StepThrottle};
use super::CliError;
use crate::jobs::{classify, convert, now_ms, FailureClass, JobState};
use crate::runtime::{gpu, threads};
use crate::service::host;
use crate::train::{StopFlag, TrainError, TrainEvent, TrainOptions, TrainRecord, TrainSpec};

/// Exit code of a run stopped by SIGTERM or SIGINT (128 + SIGTERM).
const TERMINATED: u8 = 143;

/// Arguments of `vovd task`.
#[derive(Debug, Args)]
#[command(after_help = "\
Writes into DIR (the trial's folder, shared with the submitting vovctl): events.pb (appended, \
numbered from 1), result-N.pb (attempt N's final job; N from DIR/attempt) and checkpoint/ \
(after every epoch; a later run resumes from it). A run finds a succeeded result of any \
attempt up to N, or attempt N's own, and exits at once without training.

Signals: SIGUSR1 (sbatch --signal=B:USR1@120, scancel --signal=USR1 --batch) stops at the \
next batch with a checkpoint and, under Slurm, requeues the task with scontrol requeue; \
SIGTERM or SIGINT stop the same way without a requeue.

Exit codes: 0 succeeded, already finished, or stopped by SIGUSR1; 1 the trial failed (see \
result-N.pb) or its folder cannot be written; 2 bad flags; 143 stopped by SIGTERM or SIGINT.

Example (a Slurm array task):
  vovd task --spec $WORK/trials/$ID/request.pb --out $WORK/trials/$ID \\
      --data-dir /shared/vov-data --threads $SLURM_CPUS_PER_TASK")]
pub struct TaskArgs {
    /// The trial's submit request (a vov.v1.SubmitRequest, as vovctl writes it).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// The trial's folder: events, results and checkpoint go here.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Data root.
    #[arg(long, value_name = "DIR", default_value = vov_spec::LOCAL_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Compute threads [default: $SLURM_CPUS_PER_TASK, else the CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// auto, cpu or cuda:N (N counts the GPUs this process sees); auto is cuda:0
    /// when CUDA_VISIBLE_DEVICES is set and this build has CUDA, else cpu.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
}

/// Why a stopped run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGUSR1: to be requeued.
    Requeue,
    /// SIGTERM or SIGINT.
    Terminate,
}

pub(super) fn run(args: &TaskArgs) -> Result<ExitCode, CliError> {
    let env = TaskEnv::from_process();
    let threads = args
        .threads
        .unwrap_or_else(|| env.threads(threads::available()));
    threads::configure(threads).map_err(|e| CliError::Usage(e.to_string()))?;
    let dir = TrialDir::at(args.out.clone());
    let attempt = dir.read_attempt().map_err(io_error)?.max(1);
    let label = env.device(args.device, gpu::cuda_compiled());
    let request = taskdir::read_request_at(&args.spec);
    let trial_id = dir_name(&dir);
    let host = host::hostname();
    eprintln!(
        "vov task: trial {trial_id} attempt {attempt} on {host} device {label} CUDA_VISIBLE_DEVICES={}",
        env.cuda_visible.as_deref().unwrap_or("")
    );
    let _lock = trial::lock_checkpoints(&dir.checkpoint())?;
    let checkpoint_dir = dir.checkpoint();
    let weights_file = dir.weights();
    let known = request.as_ref().ok().cloned().unwrap_or(pb::SubmitRequest {
        trial_id,
        ..Default::default()
    });
    let mut log = TaskLog::new(dir, known, attempt, host.clone(), created_ms(&args.spec));
    if let Some(job) = log.finished().map_err(io_error)? {
        println!("{}", summary(&job));
        return Ok(ExitCode::SUCCESS);
    }
    let stop = StopFlag::default();
    let stopped = watch(&stop)?;
    let whence = env.describe().map_or(String::new(), |j| format!(", {j}"));
    log.running(format!("running on {host}{whence}"))
        .map_err(io_error)?;
    let spec = match request.map_err(|e| e.to_string()).and_then(|r| spec_of(&r)) {
        Ok(spec) => spec,
        Err(message) => {
            let model = requested_model(log.request());
            return fail(&mut log, model, FailureClass::InvalidSpec, message);
        }
    };
    let device = match gpu::open_visible(label) {
        Ok(device) => device,
        Err(e) => {
            let model = spec.model.name.clone();
            return fail(&mut log, model, FailureClass::Crashed, e.to_string());
        }
    };
    let opts = TrainOptions {
        weights_file: Some(weights_file),
        ..trial::options(
            device,
            label.to_string(),
            threads,
            args.data_dir.clone(),
            checkpoint_dir,
            stop,
        )
    };
    let outcome = train(&spec, &opts, &mut log);
    let stop = *stopped.lock().unwrap_or_else(|e| e.into_inner());
    conclude(&mut log, &spec, outcome, stop, &env)
}

/// The trial folder's name, the trial id.
fn dir_name(dir: &TrialDir) -> String {
    dir.root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// When the request was written (its file's modification time), Unix ms.
fn created_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(now_ms, |d| d.as_millis() as i64)
}

fn io_error(e: std::io::Error) -> CliError {
    CliError::Failed(e.to_string())
}

/// The checked spec of a request.
fn spec_of(request: &pb::SubmitRequest) -> Result<TrainSpec, String> {
    let spec = request
        .spec
        .as_ref()
        .ok_or("invalid spec: spec: required")?;
    crate::service::convert::train_spec(spec).map_err(|e| format!("invalid spec: {e}"))
}

/// Asks the run to stop on SIGUSR1, SIGTERM or SIGINT; the returned cell holds
/// why (SIGTERM and SIGINT win over SIGUSR1).
fn watch(stop: &StopFlag) -> Result<Arc<Mutex<Option<Stop>>>, CliError> {
    let cell = Arc::new(Mutex::new(None));
    let (seen, stop) = (cell.clone(), stop.clone());
    trial::watch_signals(&[SIGUSR1, SIGTERM, SIGINT], move |signal| {
        let why = if signal == SIGUSR1 {
            Stop::Requeue
        } else {
            Stop::Terminate
        };
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen != Some(Stop::Terminate) {
            *seen = Some(why);
        }
        stop.interrupt();
    })?;
    Ok(cell)
}

/// Trains, logging every event (steps at most once a second).
fn train(
    spec: &TrainSpec,
    opts: &TrainOptions,
    log: &mut TaskLog,
) -> Result<TrainRecord, TrainError> {
    let mut throttle = StepThrottle::default();
    let mut observe = |event: &TrainEvent| {
        if !throttle.admits(event) {
            return;
        }
        if let Err(e) = log.append(convert::event_kind(event)) {
            eprintln!("vov task: cannot log an event: {e}");
        }
    };
    trial::train_resuming(spec, opts, None, &mut observe)
}

/// Records how the run ended and picks the exit code.
fn conclude(
    log: &mut TaskLog,
    spec: &TrainSpec,
    outcome: Result<TrainRecord, TrainError>,
    stop: Option<Stop>,
    env: &TaskEnv,
) -> Result<ExitCode, CliError> {
    match (outcome, stop) {
        (Ok(record), _) => succeed(log, spec, &record),
        (Err(TrainError::Interrupted { epochs_done }), Some(why)) => {
            stopped(log, why, epochs_done, env)
        }
        (Err(e), _) => {
            let class = classify::failure_class(trial::failure(&e));
            fail(log, spec.model.name.clone(), class, e.to_string())
        }
    }
}

fn succeed(
    log: &mut TaskLog,
    spec: &TrainSpec,
    record: &TrainRecord,
) -> Result<ExitCode, CliError> {
    let job = log
        .finish(Ending {
            state: JobState::Succeeded,
            failure: None,
            message: String::new(),
            model: spec.model.name.clone(),
            result: Some(convert::result(record)),
        })
        .map_err(io_error)?;
    println!("{}", summary(&job));
    Ok(ExitCode::SUCCESS)
}

/// The model a request names (for a spec that does not resolve).
fn requested_model(request: &pb::SubmitRequest) -> String {
    request
        .spec
        .as_ref()
        .map(|s| s.model.clone())
        .unwrap_or_default()
}

fn fail(
    log: &mut TaskLog,
    model: String,
    class: FailureClass,
    message: String,
) -> Result<ExitCode, CliError> {
    let job = log
        .finish(Ending {
            state: JobState::Failed,
            failure: Some(class),
            message,
            model,
            result: None,
        })
        .map_err(io_error)?;
    eprintln!("vov task: {}", summary(&job));
    Ok(ExitCode::FAILURE)
}

/// Logs a stop by signal after `epochs` checkpointed epochs; requeues on SIGUSR1.
fn stopped(
    log: &mut TaskLog,
    why: Stop,
    epochs: usize,
    env: &TaskEnv,
) -> Result<ExitCode, CliError> {
    let (signal, next) = match why {
        Stop::Requeue => ("SIGUSR1", "to be requeued"),
        Stop::Terminate => ("SIGTERM or SIGINT", "the checkpoint is kept"),
    };
    let message = format!("stopped at epoch {epochs} by {signal}, {next}");
    eprintln!("vov task: {message}");
    log.append(pb::job_event::Kind::Warning(message))
        .map_err(io_error)?;
    if why == Stop::Terminate {
        return Ok(ExitCode::from(TERMINATED));
    }
    match env.requeue_target() {
        Some(target) => match slurm::requeue(&target) {
            Ok(()) => eprintln!("vov task: requeued {target}"),
            Err(e) => eprintln!("vov task: {e}"),
        },
        None => eprintln!("vov task: not a Slurm job (SLURM_JOB_ID unset): not requeued"),
    }
    Ok(ExitCode::SUCCESS)
}
