//! The job actor: the only owner of the queue, the slots, the live workers and
//! the event sequence numbers, and the only writer of the store.

mod change;
mod durable;
mod kept;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use nix::sys::signal::Signal;
use prost::Message;
use tokio::sync::{broadcast, mpsc, oneshot};
use vov_proto::pb;

use super::classify::{classify, Outcome, StopReason};
use super::convert;
use super::evaluation;
use super::manager::{Command, JobError, ManagerConfig, NewJob, Snapshot, Subscription};
use super::now_ms;
use super::progress::Progress;
use super::protocol::{WorkerInput, WorkerMessage};
use super::state::{FailureClass, JobState};
use super::supervisor::{self, Note};
use crate::store::{JobRow, StateUpdate, Store};
use crate::train::{TrainEvent, TrainSpec};
use change::{ended, moved, state_kind, Change};
use durable::{After, Pending};

/// Folder of the state directory where unusable checkpoints are kept.
const CORRUPT_DIR: &str = "corrupt-checkpoints";

/// Events a slow watcher may fall behind before it re-reads the store.
const CHANNEL_CAPACITY: usize = 256;

struct Live {
    slot: usize,
    pid: u32,
    attempt: u32,
    stop: Option<StopReason>,
    report: Option<WorkerMessage>,
    progress: Progress,
    /// Whether the last progress write failed (logged once per failing stretch).
    store_failing: bool,
}

pub(super) struct Actor {
    cfg: ManagerConfig,
    store: Store,
    commands: mpsc::Sender<Command>,
    notes_tx: mpsc::UnboundedSender<Note>,
    notes_rx: Option<mpsc::UnboundedReceiver<Note>>,
    queue: VecDeque<String>,
    slots: Vec<Option<String>>,
    running: HashMap<String, Live>,
    /// Transitions not yet written, by job; their jobs keep their slots.
    pending: HashMap<String, Pending>,
    channels: HashMap<String, broadcast::Sender<Arc<pb::JobEvent>>>,
    seqs: HashMap<String, u64>,
    draining: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

/// Runs a store call off the async threads.
async fn db<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, JobError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|_| JobError::Stopped)?
        .map_err(JobError::from)
}

impl Actor {
    pub(super) fn new(cfg: ManagerConfig, store: Store, commands: mpsc::Sender<Command>) -> Self {
        let (notes_tx, notes_rx) = mpsc::unbounded_channel();
        Actor {
            slots: vec![None; cfg.slots.len()],
            cfg,
            store,
            commands,
            notes_tx,
            notes_rx: Some(notes_rx),
            queue: VecDeque::new(),
            running: HashMap::new(),
            pending: HashMap::new(),
            channels: HashMap::new(),
            seqs: HashMap::new(),
            draining: false,
            drain_waiters: Vec::new(),
        }
    }

    /// Rebuilds the queue after a start: queued jobs keep their order; jobs that
    /// were running when the daemon died resume from their checkpoints, unless
    /// they have used up their attempts.
    pub(super) async fn recover(&mut self) -> Result<(), JobError> {
        for row in db(&self.store, |s| s.unfinished()).await? {
            if row.state == JobState::Running {
                if row.attempt >= self.cfg.max_attempts {
                    let msg = format!("the daemon stopped during this trial {} times", row.attempt);
                    let end = ended(
                        JobState::Failed,
                        Some(FailureClass::HostLost),
                        msg,
                        row.attempt,
                    );
                    self.finish(&row.trial_id, end, None).await?;
                    continue;
                }
                let msg =
                    "the daemon restarted during the trial; it resumes from its last checkpoint"
                        .to_string();
                let update = moved(JobState::Queued, msg, row.attempt, None);
                self.set_state(&row.trial_id, update).await?;
            }
            tracing::info!(trial.id = %row.trial_id, "recovered queued trial");
            self.queue.push_back(row.trial_id);
        }
        Ok(())
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let Some(mut notes) = self.notes_rx.take() else {
            return;
        };
        self.dispatch().await;
        loop {
            let result = tokio::select! {
                Some(cmd) = commands.recv() => self.command(cmd).await,
                Some(note) = notes.recv() => self.note(note).await,
                else => break,
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "job manager");
            }
            self.dispatch().await;
        }
    }

    async fn command(&mut self, cmd: Command) -> Result<(), JobError> {
        match cmd {
            Command::Submit(job, reply) => {
                let _ = reply.send(self.submit(*job).await);
            }
            Command::Cancel(id, reply) => {
                let _ = reply.send(self.cancel(&id).await);
            }
            Command::DropWeights(id, reply) => {
                let _ = reply.send(self.drop_weights(&id).await);
            }
            Command::Subscribe(id, reply) => {
                let _ = reply.send(self.subscribe(&id).await);
            }
            Command::Snapshot(reply) => {
                let free = self.slots.iter().filter(|s| s.is_none()).count();
                let _ = reply.send(Snapshot {
                    slots_total: self.slots.len(),
                    slots_free: free,
                    queued: self.queue.len(),
                });
            }
            Command::Drain(reply) => self.drain(reply),
            Command::Commit(id) => self.write_pending(&id).await,
            Command::Escalate(id, pid) => {
                if self.running.get(&id).is_some_and(|l| l.pid == pid) {
                    tracing::warn!(trial.id = %id, pid, "worker did not stop within the grace period; killing it");
                    supervisor::signal_group(pid, Signal::SIGKILL);
                }
            }
        }
        Ok(())
    }

    async fn submit(&mut self, job: NewJob) -> Result<(JobRow, bool), JobError> {
        if self.draining {
            return Err(JobError::Draining);
        }
        let resolved =
            serde_json::to_string(&job.spec).map_err(|e| JobError::Internal(e.to_string()))?;
        let id = job.trial_id.clone();
        if let Some(existing) = db(&self.store, move |s| s.get(&id)).await? {
            // The submitted message first: a float read back from the resolved
            // JSON may differ from the submitted one in its last bit. Which
            // weights to keep is not part of a trial's identity: the job keeps its
            // own.
            let same_spec = existing.spec == job.spec_proto
                || serde_json::from_str::<TrainSpec>(&existing.resolved).is_ok_and(|mut s| {
                    s.trial.keep_weights = job.spec.trial.keep_weights;
                    s == job.spec
                });
            let same = same_spec && existing.evaluation == job.evaluation;
            if !same {
                return Err(JobError::Conflict(job.trial_id));
            }
            if !(job.retry && existing.state.is_settled()) {
                return Ok((existing, false));
            }
            return self.requeue(existing, job.stop_after).await;
        }
        if self.queue.len() >= self.cfg.max_queued {
            return Err(JobError::QueueFull(self.queue.len()));
        }
        let row = JobRow {
            order: 0,
            trial_id: job.trial_id.clone(),
            sweep_id: job.sweep_id,
            spec: job.spec_proto,
            resolved,
            model: job.spec.model.name.clone(),
            state: JobState::Queued,
            failure: None,
            message: String::new(),
            attempt: 0,
            created_ms: now_ms(),
            started_ms: 0,
            finished_ms: 0,
            progress: String::new(),
            result: None,
            last_seq: 0,
            stop_after: job.stop_after,
            evaluation: job.evaluation,
        };
        let row = db(&self.store, move |s| s.insert(&row)).await?;
        tracing::info!(trial.id = %row.trial_id, sweep.id = %row.sweep_id, model = %row.model, "trial queued");
        let queued = moved(JobState::Queued, "queued".into(), 0, None);
        self.emit(&row.trial_id, state_kind(&queued)).await?;
        self.queue.push_back(row.trial_id.clone());
        self.dispatch().await;
        let id = row.trial_id.clone();
        let row = db(&self.store, move |s| s.get(&id)).await?.unwrap_or(row);
        Ok((row, true))
    }

    /// Queues an ended or paused job again on a client's request, to pause next
    /// after `stop_after` epochs (0: run to the end). An ended job's old result
    /// stays until the new one replaces it; a paused one continues from its
    /// checkpoint.
    async fn requeue(&mut self, row: JobRow, stop_after: u32) -> Result<(JobRow, bool), JobError> {
        if self.queue.len() >= self.cfg.max_queued {
            return Err(JobError::QueueFull(self.queue.len()));
        }
        let id = row.trial_id.clone();
        tracing::info!(trial.id = %id, stop_after, "trial re-queued on request");
        let key = id.clone();
        db(&self.store, move |s| s.set_stop_after(&key, stop_after)).await?;
        // A paused job stopped at its `stop_after`.
        let paused = row.state == JobState::Paused;
        let behind = paused && stop_after > 0 && stop_after <= row.stop_after;
        if behind {
            // Sent to a rung it has passed (its search started again): from scratch.
            self.remove_checkpoints(&id);
        }
        let message = match (paused, behind) {
            (true, false) => format!(
                "continued from its checkpoint after {} epochs",
                row.stop_after
            ),
            (true, true) => "started again from scratch".into(),
            _ => "queued again on request".into(),
        };
        // Each run of a paused job (a search's rung) has attempts of its own.
        let attempt = if paused { 0 } else { row.attempt };
        let update = moved(JobState::Queued, message, attempt, None);
        self.set_state(&id, update).await?;
        self.queue.push_back(id.clone());
        self.dispatch().await;
        let row = db(&self.store, move |s| s.get(&id)).await?.unwrap_or(row);
        Ok((row, true))
    }

    async fn cancel(&mut self, id: &str) -> Result<JobRow, JobError> {
        let key = id.to_string();
        let row = db(&self.store, move |s| s.get(&key))
            .await?
            .ok_or_else(|| JobError::NotFound(id.to_string()))?;
        if row.state.is_final() {
            return Ok(row);
        }
        let queued = self.queue.iter().position(|q| q == id);
        if row.state == JobState::Paused || queued.is_some() {
            if let Some(pos) = queued {
                self.queue.remove(pos);
            }
            let end = ended(
                JobState::Cancelled,
                None,
                "cancelled on request".into(),
                row.attempt,
            );
            self.finish(id, end, None).await?;
        } else if let Some(live) = self.running.get_mut(id) {
            if live.stop.is_none() {
                live.stop = Some(StopReason::Cancel);
                let pid = live.pid;
                tracing::info!(trial.id = %id, pid, "cancelling running trial");
                supervisor::signal_group(pid, Signal::SIGTERM);
                self.escalate_later(id, pid);
            }
        }
        let key = id.to_string();
        Ok(db(&self.store, move |s| s.get(&key)).await?.unwrap_or(row))
    }

    async fn subscribe(&mut self, id: &str) -> Result<Subscription, JobError> {
        let key = id.to_string();
        let row = db(&self.store, move |s| s.get(&key))
            .await?
            .ok_or_else(|| JobError::NotFound(id.to_string()))?;
        let sender = self
            .channels
            .entry(id.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0);
        let receiver = sender.subscribe();
        if row.state.is_settled() {
            self.channels.remove(id);
        }
        Ok(Subscription {
            receiver,
            last_seq: self.seqs.get(id).copied().unwrap_or(row.last_seq),
            finished: row.state.is_settled(),
        })
    }

    fn drain(&mut self, reply: oneshot::Sender<()>) {
        self.draining = true;
        for (id, live) in &mut self.running {
            if live.stop.is_none() {
                live.stop = Some(StopReason::Shutdown);
            }
            tracing::info!(trial.id = %id, pid = live.pid, "asking worker to checkpoint and stop");
            supervisor::signal_group(live.pid, Signal::SIGTERM);
        }
        let pending: Vec<(String, u32)> = self
            .running
            .iter()
            .map(|(id, l)| (id.clone(), l.pid))
            .collect();
        for (id, pid) in pending {
            self.escalate_later(&id, pid);
        }
        self.drain_waiters.push(reply);
        self.maybe_drained();
    }

    fn maybe_drained(&mut self) {
        if self.draining && self.running.is_empty() {
            self.channels.clear();
            for w in self.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn escalate_later(&self, id: &str, pid: u32) {
        let (tx, grace, id) = (self.commands.clone(), self.cfg.grace, id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Command::Escalate(id, pid)).await;
        });
    }

    async fn dispatch(&mut self) {
        while !self.draining {
            let Some(slot) = self.slots.iter().position(Option::is_none) else {
                return;
            };
            let Some(id) = self.queue.pop_front() else {
                return;
            };
            if let Err(e) = self.start(&id, slot).await {
                tracing::error!(trial.id = %id, error = %e, "could not start trial");
            }
        }
    }

    async fn start(&mut self, id: &str, slot: usize) -> Result<(), JobError> {
        let key = id.to_string();
        let row = db(&self.store, move |s| s.get(&key))
            .await?
            .ok_or_else(|| JobError::NotFound(id.to_string()))?;
        let attempt = row.attempt + 1;
        let prepared = serde_json::from_str::<TrainSpec>(&row.resolved)
            .map_err(|e| format!("stored spec unreadable: {e}"))
            .and_then(|spec| match row.evaluation.as_deref() {
                None => Ok((spec, None, self.cfg.threads_per_slot)),
                Some(bytes) => {
                    let (task, threads) =
                        evaluation::prepare(bytes, self.cfg.threads_per_slot, |sha| {
                            self.cfg.received_file(sha)
                        })?;
                    Ok((spec, Some(task), threads))
                }
            });
        let (spec, evaluate, threads) = match prepared {
            Ok(p) => p,
            Err(msg) => {
                let end = ended(
                    JobState::Failed,
                    Some(FailureClass::InvalidSpec),
                    msg,
                    attempt,
                );
                return self.finish(id, end, None).await;
            }
        };
        let device = self.cfg.slots[slot].clone();
        let input = WorkerInput {
            spec,
            threads,
            evaluate,
            device: device.clone(),
            data_dir: self.cfg.data_dir.clone(),
            checkpoint_dir: self.cfg.checkpoint_dir(id),
            corrupt_dir: Some(self.cfg.state_dir.join(CORRUPT_DIR)),
            stop_after: (row.stop_after > 0).then_some(row.stop_after as usize),
            weights_file: Some(self.cfg.weights_file(id)),
        };
        let pid = match supervisor::spawn(&self.cfg.worker_exe, &input, id, self.notes_tx.clone())
            .await
        {
            Ok(pid) => pid,
            Err(e) => {
                let msg = format!("could not start a worker: {e}");
                let end = ended(JobState::Failed, Some(FailureClass::Crashed), msg, attempt);
                return self.finish(id, end, None).await;
            }
        };
        self.slots[slot] = Some(id.to_string());
        self.running.insert(
            id.to_string(),
            Live {
                slot,
                pid,
                attempt,
                stop: None,
                report: None,
                progress: Progress::default(),
                store_failing: false,
            },
        );
        tracing::info!(trial.id = %id, slot, device = %device, pid, attempt, "trial started");
        let msg = format!("running on slot {slot} ({device}), attempt {attempt}");
        let update = moved(JobState::Running, msg, attempt, Some(now_ms()));
        self.set_state(id, update).await
    }

    async fn note(&mut self, note: Note) -> Result<(), JobError> {
        match note {
            Note::Message { trial_id, msg } => {
                self.worker_message(&trial_id, msg).await;
                Ok(())
            }
            Note::Exited { trial_id, exit } => {
                let Some(live) = self.running.remove(&trial_id) else {
                    return Ok(());
                };
                let outcome = classify(live.report, &exit, live.stop);
                tracing::info!(trial.id = %trial_id, ?exit.code, ?exit.signal, "worker exited");
                let result = self
                    .conclude(&trial_id, live.slot, live.attempt, outcome)
                    .await;
                self.maybe_drained();
                result
            }
        }
    }

    /// Records a worker's report or event; a failing store is logged once per
    /// stretch of failures, not for every event.
    async fn worker_message(&mut self, id: &str, msg: WorkerMessage) {
        let Some(live) = self.running.get_mut(id) else {
            return;
        };
        let event = match msg {
            WorkerMessage::Event { event } => event,
            report => {
                live.report = Some(report);
                return;
            }
        };
        let progress = live
            .progress
            .apply(&event)
            .then(|| serde_json::to_string(&live.progress).unwrap_or_default());
        if let TrainEvent::Warning { message } = &event {
            tracing::warn!(trial.id = %id, %message, "worker warning");
        }
        let written = self.progress(id, progress, &event).await;
        let Some(live) = self.running.get_mut(id) else {
            return;
        };
        match (written, live.store_failing) {
            (Err(e), false) => {
                live.store_failing = true;
                tracing::warn!(trial.id = %id, error = %e, "could not record the job's progress; training goes on");
            }
            (Ok(()), true) => {
                live.store_failing = false;
                tracing::info!(trial.id = %id, "recording the job's progress again");
            }
            _ => {}
        }
    }

    async fn progress(
        &mut self,
        id: &str,
        progress: Option<String>,
        event: &TrainEvent,
    ) -> Result<(), JobError> {
        if let Some(json) = progress {
            let key = id.to_string();
            db(&self.store, move |s| s.set_progress(&key, &json)).await?;
        }
        self.emit(id, convert::event_kind(event)).await
    }

    /// Records how a worker ended; its `slot` is freed once that is written.
    async fn conclude(
        &mut self,
        id: &str,
        slot: usize,
        attempt: u32,
        outcome: Outcome,
    ) -> Result<(), JobError> {
        let slot = Some(slot);
        match outcome {
            Outcome::Succeeded(record) => {
                let json = serde_json::to_string(&record).unwrap_or_default();
                tracing::info!(trial.id = %id, max_val_acc = record.max_val_acc, "trial succeeded");
                let end = ended(JobState::Succeeded, None, "finished".into(), attempt);
                let result = pb::job_event::Kind::Result(convert::result(&record));
                let change = Change {
                    result: Some(json),
                    ..Change::state(end, vec![result])
                };
                self.settle(id, change, slot, After::Final).await
            }
            Outcome::Evaluated(record) => {
                let json = serde_json::to_string(&record).unwrap_or_default();
                let key = id.to_string();
                let row = db(&self.store, move |s| s.get(&key)).await?;
                let source = row
                    .and_then(|r| r.evaluation)
                    .and_then(|b| evaluation::decode(&b).ok())
                    .map(|e| e.source_trial_id)
                    .unwrap_or_default();
                tracing::info!(trial.id = %id, val_acc = ?record.val_acc, "evaluation succeeded");
                let end = ended(JobState::Succeeded, None, "evaluated".into(), attempt);
                let result = pb::job_event::Kind::Evaluated(convert::evaluation(&record, &source));
                let change = Change {
                    result: Some(json),
                    ..Change::state(end, vec![result])
                };
                self.settle(id, change, slot, After::Final).await
            }
            Outcome::Failed { class, message } => {
                tracing::warn!(trial.id = %id, failure = %class, %message, "trial failed");
                let end = ended(JobState::Failed, Some(class), message, attempt);
                self.finish(id, end, slot).await
            }
            Outcome::Cancelled => {
                let end = ended(
                    JobState::Cancelled,
                    None,
                    "cancelled on request".into(),
                    attempt,
                );
                self.finish(id, end, slot).await
            }
            Outcome::Requeue(message) => {
                let update = moved(JobState::Queued, message, attempt, None);
                let change = Change::state(update, Vec::new());
                self.settle(id, change, slot, After::Requeue).await
            }
            Outcome::Paused { epochs_done } => self.pause(id, slot, attempt, epochs_done).await,
        }
    }

    /// A job stopped where its submit asked: paused with its checkpoint kept,
    /// unless that would put the kept checkpoints above `max_checkpoint_bytes`
    /// (then it fails as a full disk and the checkpoint goes).
    async fn pause(
        &mut self,
        id: &str,
        slot: Option<usize>,
        attempt: u32,
        epochs_done: usize,
    ) -> Result<(), JobError> {
        if let Some(message) = self.over_budget(id).await? {
            tracing::warn!(trial.id = %id, %message, "trial failed");
            let end = ended(
                JobState::Failed,
                Some(FailureClass::DiskFull),
                message,
                attempt,
            );
            return self.finish(id, end, slot).await;
        }
        tracing::info!(trial.id = %id, epochs_done, "trial paused");
        let update = ended(
            JobState::Paused,
            None,
            format!("paused after {epochs_done} epochs, its checkpoint kept"),
            attempt,
        );
        let change = Change::state(update, Vec::new());
        self.settle(id, change, slot, After::Pause).await
    }

    /// Ends a job for good: its state and last event, written however long that
    /// takes; then its checkpoints are removed, its watchers released and `slot`
    /// freed.
    async fn finish(
        &mut self,
        id: &str,
        end: StateUpdate,
        slot: Option<usize>,
    ) -> Result<(), JobError> {
        self.settle(id, Change::state(end, Vec::new()), slot, After::Final)
            .await
    }

    /// Moves a job that goes on to another state, with its event.
    async fn set_state(&mut self, id: &str, update: StateUpdate) -> Result<(), JobError> {
        self.record(id, Change::state(update, Vec::new())).await
    }

    /// Stores the next event of a job and sends it to its watchers.
    async fn emit(&mut self, id: &str, kind: pb::job_event::Kind) -> Result<(), JobError> {
        let event = Arc::new(pb::JobEvent {
            trial_id: id.to_string(),
            seq: self.last_seq(id).await? + 1,
            unix_ms: now_ms(),
            kind: Some(kind),
        });
        let (key, body, seq) = (id.to_string(), event.encode_to_vec(), event.seq);
        db(&self.store, move |s| s.append_event(&key, seq, &body)).await?;
        self.announce(id, &[event]);
        Ok(())
    }
}
