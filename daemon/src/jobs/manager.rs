//! The handle to the job actor: every change to the queue, the slots and the
//! store goes through it, so one task owns that state (no locks held across
//! awaits). Requests are messages with a oneshot reply.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};
use vov_proto::pb;

use super::actor::Actor;
use crate::store::{JobRow, Store, StoreError};
use crate::train::TrainSpec;

/// What the job layer needs to know about the host.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// One device label per slot (`cpu`, `cuda:0`, ...).
    pub slots: Vec<String>,
    /// Compute threads per worker.
    pub threads_per_slot: usize,
    /// Checkpoints go under `state_dir/checkpoints/<trial>`.
    pub state_dir: PathBuf,
    /// Data root for the workers.
    pub data_dir: PathBuf,
    /// Time a worker gets to stop after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// Worker starts a trial may have.
    pub max_attempts: u32,
    /// Most trials waiting at once.
    pub max_queued: usize,
    /// Most bytes paused trials' checkpoints may take together (0: no limit).
    pub max_checkpoint_bytes: u64,
    /// Most bytes kept weights may take together (0: no limit).
    pub max_weights_bytes: u64,
    /// How long after its last job here ended a sweep's weights stay spared.
    pub sweep_idle: Duration,
    /// The binary whose `worker` subcommand runs a trial (this one).
    pub worker_exe: PathBuf,
}

impl ManagerConfig {
    /// Where a trial's checkpoints live.
    pub fn checkpoint_dir(&self, trial_id: &str) -> PathBuf {
        crate::config::checkpoint_dir(&self.state_dir, trial_id)
    }

    /// Where a trial's kept weights live.
    pub fn weights_file(&self, trial_id: &str) -> PathBuf {
        crate::config::weights_file(&self.state_dir, trial_id)
    }

    /// Where uploaded weights of digest `sha256` live.
    pub fn received_file(&self, sha256: &str) -> PathBuf {
        crate::config::received_file(&self.state_dir, sha256)
    }
}

/// A validated submission.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The client's id.
    pub trial_id: String,
    /// Its sweep.
    pub sweep_id: String,
    /// The submitted spec, encoded (returned as is by Get).
    pub spec_proto: Vec<u8>,
    /// The resolved spec.
    pub spec: TrainSpec,
    /// Re-queue the job when it exists and has ended or is paused.
    pub retry: bool,
    /// Pause after this many epochs with the checkpoint kept (0: run to the end).
    pub stop_after: u32,
    /// The encoded `vov.v1.EvaluationSpec` of an evaluation job (`None`: it
    /// trains).
    pub evaluation: Option<Vec<u8>>,
}

/// Why a job request failed.
#[derive(Debug, Error)]
pub enum JobError {
    /// No such job.
    #[error("no job with trial id '{0}'")]
    NotFound(String),
    /// The id exists with another spec.
    #[error("trial id '{0}' already exists with a different spec")]
    Conflict(String),
    /// Too many trials waiting.
    #[error("the queue is full ({0} trials waiting); retry later or submit elsewhere")]
    QueueFull(usize),
    /// Shutting down.
    #[error("the daemon is shutting down; retry later or submit to another host")]
    Draining,
    /// The job has not ended: what was asked must wait until it has.
    #[error("trial '{0}' has not ended; {1}")]
    NotEnded(String, &'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor is gone (the daemon is stopping).
    #[error("the job manager has stopped")]
    Stopped,
    /// A value could not be encoded (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Slot and queue counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Slots in all.
    pub slots_total: usize,
    /// Slots without a running job.
    pub slots_free: usize,
    /// Jobs waiting.
    pub queued: usize,
}

/// A live view of one job's events.
#[derive(Debug)]
pub struct Subscription {
    /// Events after `last_seq`, until the job ends (then the channel closes).
    pub receiver: broadcast::Receiver<Arc<pb::JobEvent>>,
    /// Last stored event when the subscription began.
    pub last_seq: u64,
    /// Whether the job had already ended (nothing more will come).
    pub finished: bool,
}

type Reply<T> = oneshot::Sender<Result<T, JobError>>;

/// Requests to the actor.
#[derive(Debug)]
pub(super) enum Command {
    Submit(Box<NewJob>, Reply<(JobRow, bool)>),
    Cancel(String, Reply<JobRow>),
    DropWeights(String, Reply<u64>),
    Subscribe(String, Reply<Subscription>),
    Snapshot(oneshot::Sender<Snapshot>),
    Drain(oneshot::Sender<()>),
    /// SIGKILL the worker `pid` of a job if it is still running.
    Escalate(String, u32),
    /// Write a job's pending transition again (the last attempt failed).
    Commit(String),
}

/// The cloneable handle to the job actor.
#[derive(Clone)]
pub struct JobManager {
    tx: mpsc::Sender<Command>,
    store: Store,
    state_dir: PathBuf,
}

impl JobManager {
    /// Recovers unfinished jobs from `store` (running ones are re-queued to resume
    /// from their checkpoints, or failed after `max_attempts`) and starts the actor.
    pub async fn start(cfg: ManagerConfig, store: Store) -> Result<Self, JobError> {
        let (tx, rx) = mpsc::channel(256);
        let state_dir = cfg.state_dir.clone();
        let mut actor = Actor::new(cfg, store.clone(), tx.clone());
        actor.recover().await?;
        tokio::spawn(actor.run(rx));
        Ok(JobManager {
            tx,
            store,
            state_dir,
        })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, JobError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| JobError::Stopped)?;
        rx.await.map_err(|_| JobError::Stopped)?
    }

    /// Queues a job, or returns the existing one with the same id and spec
    /// (`false` = not created).
    pub async fn submit(&self, job: NewJob) -> Result<(JobRow, bool), JobError> {
        self.ask(|r| Command::Submit(Box::new(job), r)).await
    }

    /// Cancels a job; returns it as it stands (a running job ends shortly).
    pub async fn cancel(&self, trial_id: &str) -> Result<JobRow, JobError> {
        self.ask(|r| Command::Cancel(trial_id.to_string(), r)).await
    }

    /// Removes an ended job's kept weights and their listing in its result;
    /// returns the bytes freed.
    pub async fn drop_weights(&self, trial_id: &str) -> Result<u64, JobError> {
        self.ask(|r| Command::DropWeights(trial_id.to_string(), r))
            .await
    }

    /// Subscribes to a job's live events.
    pub async fn subscribe(&self, trial_id: &str) -> Result<Subscription, JobError> {
        self.ask(|r| Command::Subscribe(trial_id.to_string(), r))
            .await
    }

    /// Slot and queue counts.
    pub async fn snapshot(&self) -> Result<Snapshot, JobError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Snapshot(reply))
            .await
            .map_err(|_| JobError::Stopped)?;
        rx.await.map_err(|_| JobError::Stopped)
    }

    /// Refuses new jobs, asks running workers to checkpoint and stop (SIGKILL after
    /// the grace period), re-queues them for the next start, and returns when no
    /// worker is left; live event streams are closed.
    pub async fn drain(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Drain(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where a trial's kept weights live.
    pub fn weights_file(&self, trial_id: &str) -> PathBuf {
        crate::config::weights_file(&self.state_dir, trial_id)
    }

    /// Where uploaded weights go (named by their digest).
    pub fn received_dir(&self) -> PathBuf {
        crate::config::received_dir(&self.state_dir)
    }

    /// Where uploaded weights of digest `sha256` live.
    pub fn received_file(&self, sha256: &str) -> PathBuf {
        crate::config::received_file(&self.state_dir, sha256)
    }
}
