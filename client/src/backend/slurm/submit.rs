//! Submitting: the scheduler submits trial by trial, and the backend gathers the
//! submits that arrive together into one job array per sweep (split only where
//! the cluster's `MaxArraySize` demands), so a sweep of a hundred trials is one
//! `sbatch` call.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use vov_proto::pb;
use vov_proto::taskdir::{write_atomically, TrialDir};

use super::command::SlurmError;
use super::parse::array::{chunks, format_indices, parse_sbatch};
use super::trial::{self, BatchJob};
use super::{io_error, manifest, script, Inner};
use crate::backend::{BackendError, Submitted};

/// How long the gatherer waits for one more submit before it submits.
const QUIET: Duration = Duration::from_millis(150);

/// The longest a submit waits for others to join it.
const GATHER_AT_MOST: Duration = Duration::from_secs(2);

/// One submit waiting for its array.
#[derive(Debug)]
pub struct Pending {
    /// The request as the trial's folder keeps it.
    pub request: pb::SubmitRequest,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Submitted, BackendError>>,
}

/// Gathers submits and submits them, until every sender is gone.
pub async fn gather(inner: std::sync::Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let started = Instant::now();
        let mut batch = vec![first];
        while started.elapsed() < GATHER_AT_MOST {
            match tokio::time::timeout(QUIET, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                _ => break,
            }
        }
        let mut by_sweep: Vec<(String, Vec<Pending>)> = Vec::new();
        for p in batch {
            let sweep = p.request.sweep_id.clone();
            match by_sweep.iter_mut().find(|(s, _)| *s == sweep) {
                Some((_, v)) => v.push(p),
                None => by_sweep.push((sweep, vec![p])),
            }
        }
        for (sweep, pending) in by_sweep {
            inner.submit_sweep(&sweep, pending).await;
        }
    }
}

/// A trial made ready to submit: its attempt and the seq of its QUEUED event.
struct Ready {
    pending: Pending,
    attempt: u32,
    seq: u64,
}

/// What a failed `sbatch` means: the cluster refusing the job can never work on
/// it (a bad partition, account or limit); anything else may pass later.
fn sbatch_error(e: SlurmError) -> BackendError {
    match &e {
        SlurmError::Failed { stderr, .. }
            if !["contact", "timed out", "Socket", "try again", "temporarily"]
                .iter()
                .any(|w| stderr.contains(w)) =>
        {
            BackendError::Unrunnable(e.to_string())
        }
        _ => BackendError::Unavailable(e.to_string()),
    }
}

impl Inner {
    /// Submits one sweep's gathered trials: the ones already submitted and not
    /// ended (or ended, without `retry`) are answered with their job unchanged.
    async fn submit_sweep(&self, sweep: &str, pending: Vec<Pending>) {
        let mut ready = Vec::new();
        for p in pending {
            match self.prepare(&p.request) {
                Ok(Ok(job)) => {
                    let batch_job =
                        BatchJob::read(&TrialDir::new(&self.cfg.work_dir, &p.request.trial_id))
                            .ok()
                            .flatten()
                            .map(|b| b.id());
                    let _ = p.reply.send(Ok(Submitted {
                        job,
                        created: false,
                        batch_job,
                    }));
                }
                Ok(Err((attempt, seq))) => ready.push(Ready {
                    pending: p,
                    attempt,
                    seq,
                }),
                Err(e) => {
                    let _ = p.reply.send(Err(e));
                }
            }
        }
        if ready.is_empty() {
            return;
        }
        if let Err((e, left)) = self.submit_ready(sweep, ready).await {
            for r in left {
                let _ = r.pending.reply.send(Err(e.clone()));
            }
        }
    }

    /// The existing job (`Ok(Ok)`), or the trial prepared for a new submission
    /// with its attempt and the seq of its QUEUED event (`Ok(Err)`).
    fn prepare(
        &self,
        request: &pb::SubmitRequest,
    ) -> Result<Result<pb::Job, (u32, u64)>, BackendError> {
        let dir = TrialDir::new(&self.cfg.work_dir, &request.trial_id);
        let last = dir.read_attempt().map_err(io_error)?;
        let mut attempt = last + 1;
        if last > 0 {
            let job = self.observe(&dir).map_err(io_error)?;
            let submitted = BatchJob::read(&dir)
                .map_err(io_error)?
                .is_some_and(|b| b.attempt == last);
            match job {
                Some(job) if !trial::is_final(job.state) && submitted => return Ok(Ok(job)),
                // Prepared before, never submitted: the same attempt goes now.
                Some(job) if !trial::is_final(job.state) => attempt = last,
                Some(job) if !request.retry => return Ok(Ok(job)),
                _ => {}
            }
        }
        dir.prepare(request, attempt).map_err(io_error)?;
        let change = pb::StateChange {
            state: pb::JobState::Queued as i32,
            attempt,
            message: format!("submitted to Slurm (attempt {attempt})"),
            ..Default::default()
        };
        let event = dir
            .append_event(pb::job_event::Kind::State(change), trial::now_ms(), |_| {
                false
            })
            .map_err(io_error)?;
        Ok(Err((attempt, event.map_or(0, |e| e.seq))))
    }

    async fn submit_ready(
        &self,
        sweep: &str,
        ready: Vec<Ready>,
    ) -> Result<(), (BackendError, Vec<Ready>)> {
        let work = &self.cfg.work_dir;
        let setup = || -> Result<Vec<u32>, BackendError> {
            std::fs::create_dir_all(script::log_dir(work, sweep)).map_err(io_error)?;
            write_atomically(
                &script::script_path(work, sweep),
                script::script(&self.cfg, sweep).as_bytes(),
            )
            .map_err(io_error)?;
            let ids: Vec<&str> = ready
                .iter()
                .map(|r| r.pending.request.trial_id.as_str())
                .collect();
            manifest::indices(&script::manifest(work, sweep), &ids).map_err(io_error)
        };
        let indices = match setup() {
            Ok(i) => i,
            Err(e) => return Err((e, ready)),
        };
        self.poller.follow(&script::job_name(sweep));
        let max = self.cluster().await.max_array_size.max(1);
        let mut waiting: Vec<(u32, Ready)> = indices.into_iter().zip(ready).collect();
        for (offset, tasks) in chunks(&waiting.iter().map(|(i, _)| *i).collect::<Vec<_>>(), max) {
            let (mine, rest): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|(i, _)| *i >= offset && *i - offset < max);
            waiting = rest;
            let args = script::sbatch_args(&self.cfg, sweep, &format_indices(&tasks), offset);
            let submitted = match self.commands.run("sbatch", &args).await {
                Ok(out) => parse_sbatch(&out).map_err(|e| BackendError::Unavailable(e.to_string())),
                Err(e) => Err(sbatch_error(e)),
            };
            let job = match submitted {
                Ok(job) => job,
                Err(e) => {
                    let left = mine.into_iter().chain(waiting).map(|(_, r)| r).collect();
                    return Err((e, left));
                }
            };
            let now = Instant::now();
            for (index, r) in mine {
                let batch = BatchJob {
                    job,
                    task: index - offset,
                    attempt: r.attempt,
                };
                let answer = self.answer(&r, batch, now);
                let _ = r.pending.reply.send(answer);
            }
        }
        Ok(())
    }

    /// Records a trial's array task and makes its answer.
    fn answer(&self, r: &Ready, batch: BatchJob, now: Instant) -> Result<Submitted, BackendError> {
        let request = &r.pending.request;
        let dir = TrialDir::new(&self.cfg.work_dir, &request.trial_id);
        batch.write(&dir).map_err(io_error)?;
        self.submitted_now(&request.trial_id, now);
        let mut job = trial::base(request, r.attempt, &self.name);
        job.state = pb::JobState::Queued as i32;
        job.last_seq = r.seq;
        job.message = format!("Slurm task {}", batch.id());
        Ok(Submitted {
            job,
            created: true,
            batch_job: Some(batch.id()),
        })
    }
}
