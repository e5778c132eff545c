//! Where trials run: the seam between the scheduler and an execution target.
//!
//! A [`Backend`] is one execution target: one `vovd` host ([`grpc::GrpcBackend`]),
//! or a whole Slurm cluster behind its queue ([`slurm::SlurmBackend`]). The scheduler speaks only this trait: trial specs, jobs
//! and events are the protocol's plain messages (`pb::*`), and every failure is a
//! [`BackendError`] whose variant says what the scheduler may do next. Transport
//! details (gRPC status codes, deadlines, paging, Slurm's commands) stay inside the
//! implementations.

pub mod grpc;
pub mod slurm;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;
use tokio_stream::Stream;
use vov_proto::pb;

/// The kinds of backend a sweep can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// `vovd` hosts over gRPC (or a local vovd started for the run).
    Fleet,
    /// A Slurm cluster: trials become job array tasks.
    Slurm,
}

impl BackendKind {
    /// Its name, as flags and the store spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Fleet => "fleet",
            BackendKind::Slurm => "slurm",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [BackendKind::Fleet, BackendKind::Slurm]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Deadline of one call to a backend.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a backend call failed, in the terms the scheduler acts on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackendError {
    /// The spec is invalid: no backend will ever run it, so it is never retried.
    #[error("invalid: {0}")]
    Invalid(String),
    /// This backend can never run it (a precondition it lacks, or it refuses us);
    /// another backend may.
    #[error("cannot run here: {0}")]
    Unrunnable(String),
    /// The backend is full for now: try again later; not a failure of the trial.
    #[error("busy: {0}")]
    Busy(String),
    /// The backend does not know the trial.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend did not answer (network, deadline, draining, anything else).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What a backend offers right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendInfo {
    /// Version of the software running trials.
    pub version: String,
    /// Trials it runs at once.
    pub slots_total: u32,
    /// Slots without a running trial.
    pub slots_free: u32,
    /// Most trials its queue accepts beyond the running ones.
    pub max_queued: u32,
    /// Hardware fingerprint id (equal ids mean comparable timings), when known.
    pub fingerprint: Option<String>,
}

impl From<&pb::HostInfoResponse> for BackendInfo {
    fn from(info: &pb::HostInfoResponse) -> Self {
        BackendInfo {
            version: info.version.clone(),
            slots_total: info.slots_total,
            slots_free: info.slots_free,
            max_queued: info.max_queued,
            fingerprint: info.fingerprint.as_ref().map(|f| f.id.clone()),
        }
    }
}

/// How a submit asks a trial to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Queue again a job that has ended or is paused (a paused one continues
    /// from its checkpoint).
    pub retry: bool,
    /// Pause after this many epochs with the checkpoint kept (an adaptive
    /// search's rung); 0 runs to the end.
    pub stop_after: u32,
}

/// The answer to a submit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Submitted {
    /// The job as the backend holds it after the call.
    pub job: pb::Job,
    /// True when this call queued it (new, or re-queued by `retry`); false when an
    /// existing job was returned unchanged.
    pub created: bool,
    /// The backend's own id of the placement, when it has one (a Slurm array
    /// task, `123_4`); the store keeps it beside the placement.
    pub batch_job: Option<String>,
}

/// A trial's events, in sequence order; it ends when the job reaches a final
/// state (or earlier, with an error or without, when the backend goes away).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::JobEvent, BackendError>> + Send>>;

/// One execution target.
///
/// Submits are idempotent by trial id: submitting a known trial again returns the
/// existing job unless `retry` is set and it has ended.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Its display name; also the name trials are stored as placed on (a URL for
    /// a host).
    fn name(&self) -> &str;

    /// Its capacity and identity. This may wait on the backend's job bookkeeping,
    /// so it says nothing about liveness: see [`alive`](Backend::alive).
    async fn info(&self) -> Result<BackendInfo, BackendError>;

    /// A cheap check that the backend answers at all (a draining one does too),
    /// served without competing with its trials: what renews its lease.
    async fn alive(&self) -> Result<(), BackendError>;

    /// Queues trial `trial_id` of `sweep`; `run.retry` re-queues a job that
    /// ended or is paused, `run.stop_after` pauses it at that epoch.
    async fn submit(
        &self,
        trial_id: &str,
        sweep: &str,
        spec: pb::TrialSpec,
        run: RunOptions,
    ) -> Result<Submitted, BackendError>;

    /// Follows a trial's events with sequence number >= `from_seq`: its history,
    /// then live events until it ends.
    async fn watch(&self, trial_id: &str, from_seq: u64) -> Result<EventStream, BackendError>;

    /// One trial's job, with its result when it has one.
    async fn get(&self, trial_id: &str) -> Result<pb::Job, BackendError>;

    /// Every job of `sweep` this backend holds, in submission order.
    async fn list(&self, sweep: &str) -> Result<Vec<pb::Job>, BackendError>;

    /// Cancels a trial (a finished one is returned unchanged).
    async fn cancel(&self, trial_id: &str) -> Result<pb::Job, BackendError>;
}
