//! A Slurm cluster as one [`Backend`]: trials become tasks of job arrays, run by
//! `vovd task` on the nodes, which keep their specs, progress, results and
//! checkpoints in a work directory every node shares (the layout is
//! [`vov_proto::taskdir`]'s).
//!
//! Submits arriving together become one array per sweep ([`submit`]); one
//! `squeue` call per `poll_secs` tells the state of every task ([`poll`]); the
//! files tell the rest, so vovctl can be killed and started again at any time,
//! and a trial that finished while it was away is found finished. A task told to
//! stop (`--signal=B:USR1@120`, preemption) checkpoints and is requeued by vovd;
//! one that ends without a result is failed with its class ([`trial::verdict`])
//! and the scheduler decides whether it is submitted again.

pub mod command;
pub mod config;
pub mod manifest;
pub mod parse;
pub mod poll;
pub mod script;
pub mod submit;
pub mod trial;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio::time::Instant;
use vov_proto::pb;
use vov_proto::taskdir::TrialDir;

use super::{Backend, BackendError, BackendInfo, EventStream, RunOptions, Submitted};
use command::Commands;
use config::SlurmConfig;
use parse::cluster::{parse_show_config, ClusterConfig, DEFAULT_MAX_ARRAY_SIZE};
use poll::Poller;

/// Trials the backend takes at once: all of them (the array throttle, not the
/// scheduler, limits how many run).
pub const SLOTS: u32 = 1_000_000;

/// How often a watcher reads its trial's event log.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// What the backend's tasks share.
#[derive(Debug)]
pub struct Inner {
    cfg: SlurmConfig,
    name: String,
    commands: Arc<Commands>,
    poller: Arc<Poller>,
    cluster: OnceCell<ClusterConfig>,
    /// When this process submitted each trial.
    submitted: Mutex<HashMap<String, Instant>>,
}

/// A Slurm cluster reached through its commands.
pub struct SlurmBackend {
    inner: Arc<Inner>,
    submits: mpsc::UnboundedSender<submit::Pending>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SlurmBackend {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl SlurmBackend {
    /// A backend for `cfg` (starts its poller and submit gatherer; needs a Tokio
    /// runtime).
    pub fn new(cfg: SlurmConfig) -> Self {
        let commands = Arc::new(Commands::default());
        let poller = Poller::new(commands.clone(), Duration::from_secs(cfg.poll_secs));
        let name = format!("slurm:{}", cfg.partition.as_deref().unwrap_or("default"));
        let inner = Arc::new(Inner {
            cfg,
            name,
            commands,
            poller: poller.clone(),
            cluster: OnceCell::new(),
            submitted: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(poller.run()),
            tokio::spawn(submit::gather(inner.clone(), rx)),
        ];
        SlurmBackend {
            inner,
            submits: tx,
            tasks,
        }
    }

    /// How often each Slurm command ran so far.
    pub fn calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.commands.calls()
    }

    /// The backend's configuration.
    pub fn config(&self) -> &SlurmConfig {
        &self.inner.cfg
    }

    /// Cancels trials with one `scancel` call for all their array tasks; returns
    /// their jobs (finished ones unchanged).
    pub async fn cancel_many(&self, trials: &[String]) -> Result<Vec<pb::Job>, BackendError> {
        let mut open = Vec::new();
        let mut tasks = Vec::new();
        for id in trials {
            let dir = self.inner.dir(id);
            let job = self
                .inner
                .observe(&dir)
                .map_err(io_error)?
                .ok_or_else(|| BackendError::NotFound(id.clone()))?;
            if trial::is_final(job.state) {
                continue;
            }
            if let Some(batch) = trial::BatchJob::read(&dir).map_err(io_error)? {
                tasks.push(batch.id());
            }
            open.push((dir, job));
        }
        if !tasks.is_empty() {
            self.inner
                .commands
                .run("scancel", &tasks)
                .await
                .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        }
        for (dir, mut job) in open {
            job.state = pb::JobState::Cancelled as i32;
            job.message = "cancelled by vovctl".into();
            job.finished_unix_ms = trial::now_ms();
            trial::record_final(&dir, &job).map_err(io_error)?;
        }
        let mut jobs = Vec::new();
        for id in trials {
            if let Some(job) = self.inner.observe(&self.inner.dir(id)).map_err(io_error)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// The cluster's nodes in the configured partition, from `sinfo`.
    pub async fn nodes(&self) -> Result<Vec<parse::sinfo::Node>, BackendError> {
        let mut args = vec![
            "--noheader".to_string(),
            "--Node".into(),
            format!("--format={}", parse::sinfo::SINFO_FORMAT),
        ];
        if let Some(p) = &self.inner.cfg.partition {
            args.push(format!("--partition={p}"));
        }
        let out = self
            .inner
            .commands
            .run("sinfo", &args)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        parse::sinfo::parse_sinfo(&out).map_err(|e| BackendError::Unavailable(e.to_string()))
    }
}

/// Locks `m`, also after a panic elsewhere held it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A failed read or write of the work directory.
fn io_error(e: std::io::Error) -> BackendError {
    BackendError::Unavailable(format!("the work directory: {e}"))
}

impl Inner {
    /// The cluster's settings, asked once (`scontrol show config`).
    async fn cluster(&self) -> &ClusterConfig {
        self.cluster
            .get_or_init(|| async {
                let args = ["show".to_string(), "config".into()];
                match self.commands.run("scontrol", &args).await {
                    Ok(out) => parse_show_config(&out),
                    Err(e) => {
                        tracing::warn!("{e}; assuming MaxArraySize={DEFAULT_MAX_ARRAY_SIZE}");
                        ClusterConfig {
                            max_array_size: DEFAULT_MAX_ARRAY_SIZE,
                            accounting: false,
                            version: String::new(),
                        }
                    }
                }
            })
            .await
    }

    fn submitted_now(&self, trial: &str, at: Instant) {
        lock(&self.submitted).insert(trial.to_string(), at);
    }

    fn dir(&self, trial: &str) -> TrialDir {
        TrialDir::new(&self.cfg.work_dir, trial)
    }

    /// A trial's job now (see [`trial::observe`]).
    fn observe(&self, dir: &TrialDir) -> std::io::Result<Option<pb::Job>> {
        let id = dir
            .root()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let submitted = lock(&self.submitted).get(&id).copied();
        let snapshot = self.poller.latest();
        trial::observe(
            dir,
            snapshot.as_deref(),
            submitted,
            &self.name,
            &self.cfg.work_dir,
        )
    }

    /// Sends `trial`'s events from `from` to `tx` until its current attempt's
    /// final state has been sent or the receiver is gone.
    async fn follow(
        self: Arc<Self>,
        trial: String,
        from: u64,
        tx: mpsc::Sender<Result<pb::JobEvent, BackendError>>,
    ) {
        let _interest = self.poller.interest();
        let dir = self.dir(&trial);
        let mut next = from;
        let mut offset = 0;
        let mut seen_answer = None;
        loop {
            let attempt = dir.read_attempt().unwrap_or(0).max(1);
            let events = match dir.read_events_at(offset) {
                Ok((events, end)) => {
                    offset = end;
                    events
                }
                Err(e) => {
                    let _ = tx.send(Err(io_error(e))).await;
                    return;
                }
            };
            let from = next;
            for e in events.into_iter().filter(|e| e.seq >= from) {
                next = e.seq + 1;
                let done = trial::is_final_of(&e, attempt);
                if tx.send(Ok(e)).await.is_err() || done {
                    return;
                }
            }
            let answer = self.poller.latest().map(|s| s.started);
            if answer != seen_answer {
                seen_answer = answer;
                match self.observe(&dir) {
                    Ok(Some(job)) if trial::is_final(job.state) => {
                        if self.resend_final(&dir, attempt, next, &tx).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{}: {e}", dir.root().display()),
                }
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    }

    /// The attempt ended and its final events lie before `next` (seen by an
    /// earlier watcher): sends them again so this watcher's reader sees the end.
    async fn resend_final(
        &self,
        dir: &TrialDir,
        attempt: u32,
        next: u64,
        tx: &mpsc::Sender<Result<pb::JobEvent, BackendError>>,
    ) -> bool {
        let Ok(events) = dir.read_events(1) else {
            return false;
        };
        let Some(end) = events.iter().rposition(|e| trial::is_final_of(e, attempt)) else {
            return false;
        };
        if events[end].seq >= next {
            // Not sent yet: the next read sends it.
            return false;
        }
        // The result (when there is one) comes just before the final state.
        let result = end
            .checked_sub(1)
            .filter(|&i| matches!(events[i].kind, Some(pb::job_event::Kind::Result(_))));
        for i in result.into_iter().chain([end]) {
            if tx.send(Ok(events[i].clone())).await.is_err() {
                return true;
            }
        }
        true
    }
}

#[async_trait]
impl Backend for SlurmBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn info(&self) -> Result<BackendInfo, BackendError> {
        let cluster = self.inner.cluster().await;
        Ok(BackendInfo {
            version: format!("Slurm {}", cluster.version),
            slots_total: SLOTS,
            slots_free: SLOTS,
            max_queued: 0,
            fingerprint: None,
        })
    }

    async fn alive(&self) -> Result<(), BackendError> {
        // Slurm holds the trials whether or not its controller answers now; the
        // work directory is what this client needs.
        std::fs::metadata(&self.inner.cfg.work_dir)
            .map(|_| ())
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => std::fs::create_dir_all(&self.inner.cfg.work_dir),
                _ => Err(e),
            })
            .map_err(|e| {
                BackendError::Unavailable(format!("{}: {e}", self.inner.cfg.work_dir.display()))
            })
    }

    async fn submit(
        &self,
        trial_id: &str,
        sweep: &str,
        spec: pb::TrialSpec,
        run: RunOptions,
    ) -> Result<Submitted, BackendError> {
        if run.stop_after > 0 {
            return Err(BackendError::Invalid(
                "the slurm backend cannot pause a trial at a rung (adaptive search runs on vovd hosts)".into(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        let request = pb::SubmitRequest {
            trial_id: trial_id.to_string(),
            sweep_id: sweep.to_string(),
            spec: Some(spec),
            retry: run.retry,
            stop_after_epochs: 0,
            evaluation: None,
        };
        self.submits
            .send(submit::Pending { request, reply })
            .map_err(|_| BackendError::Unavailable("the backend is shutting down".into()))?;
        answer
            .await
            .map_err(|_| BackendError::Unavailable("the submit was dropped".into()))?
    }

    async fn watch(&self, trial_id: &str, from_seq: u64) -> Result<EventStream, BackendError> {
        let job = self.get(trial_id).await?;
        self.inner.poller.follow(&script::job_name(&job.sweep_id));
        let (tx, rx) = mpsc::channel(64);
        let inner = self.inner.clone();
        tokio::spawn(inner.follow(trial_id.to_string(), from_seq.max(1), tx));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn get(&self, trial_id: &str) -> Result<pb::Job, BackendError> {
        let dir = self.inner.dir(trial_id);
        self.inner
            .observe(&dir)
            .map_err(io_error)?
            .ok_or_else(|| BackendError::NotFound(trial_id.to_string()))
    }

    async fn list(&self, sweep: &str) -> Result<Vec<pb::Job>, BackendError> {
        self.inner.poller.follow(&script::job_name(sweep));
        // One answer first, so that tasks gone without a result are seen as such.
        self.inner.poller.refresh().await;
        let path = script::manifest(&self.inner.cfg.work_dir, sweep);
        let mut jobs = Vec::new();
        for id in manifest::read(&path).map_err(io_error)? {
            if let Some(job) = self.inner.observe(&self.inner.dir(&id)).map_err(io_error)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    async fn cancel(&self, trial_id: &str) -> Result<pb::Job, BackendError> {
        let mut jobs = self.cancel_many(&[trial_id.to_string()]).await?;
        jobs.pop()
            .ok_or_else(|| BackendError::NotFound(trial_id.to_string()))
    }
}
