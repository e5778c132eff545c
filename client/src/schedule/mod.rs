//! Placing a sweep's trials on the backends' slots and following them to the end.
//!
//! The scheduler speaks only [`Backend`](crate::backend::Backend): one per
//! execution target. One task owns every piece of state (trials, backends, the
//! results store); pingers, watchers and submits in flight only send it messages,
//! so a backend that hangs stalls nothing but its own calls. Each backend gets at
//! most as many trials as it has slots (so a lost one holds few), trials go to free
//! slots in sweep order, and `submit` is idempotent so a retried call never starts
//! a second copy. A backend that stops answering for the lease time loses its
//! trials, which are placed elsewhere (at most `max_attempts` placements); if it
//! comes back with a result for one of them, the first result recorded is kept and
//! the other copy cancelled. A trial that failed on a backend goes to one it has
//! not failed on when there is one, and back to the same one otherwise. Which
//! result is kept is the store's word: a trial whose result another client
//! recorded in the same store is done here too.

mod place;
mod search;
pub mod tasks;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vov_proto::pb;

use crate::backend::{Backend, BackendError, BackendInfo};
use crate::progress::{Ui, UiEvent};
use crate::store::{ResultsStore, StoreError, TrialRow, TrialState};
use tasks::Msg;
use vov_proto::convert::failure;
use vov_spec::FailureClass;

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sweep.
    pub sweep: String,
    /// Time without an answer after which a host is lost.
    pub lease: Duration,
    /// Most placements of a trial.
    pub max_attempts: u32,
    /// Retry crashed and out-of-memory trials.
    pub retry_failed: bool,
    /// Place everything on the hosts' queues and return.
    pub detach: bool,
    /// Re-run trials that already ended (their new result replaces the old).
    pub rerun: bool,
    /// How trials are started, continued and stopped.
    pub search: crate::search::SearchDef,
}

/// How a sweep ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Trials with a result.
    pub succeeded: usize,
    /// Trials that failed.
    pub failed: usize,
    /// Trials cancelled.
    pub cancelled: usize,
    /// Trials an adaptive search stopped before their full epochs.
    pub stopped_early: usize,
    /// Trials left placed but unfinished (detach).
    pub placed: usize,
}

/// A sweep could not run.
#[derive(Debug, Error)]
pub enum ScheduleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No host answered.
    #[error("no host is reachable: {0}")]
    NoHost(String),
}

struct HostState {
    backend: Arc<dyn Backend>,
    /// Its name, as trials are stored as placed on it.
    url: String,
    slots: usize,
    max_queued: usize,
    alive: bool,
    /// Its trials were taken away after the lease ran out.
    lost: bool,
    /// It answered a submit with "busy": nothing more is sent until its next answer.
    busy: bool,
    last_ok: Instant,
    placed: HashSet<String>,
    /// Trials with a submit in flight to it.
    submitting: HashSet<String>,
}

struct Tracked {
    row: TrialRow,
    host: Option<usize>,
    /// The backend a submit of it is in flight to.
    submitting: Option<usize>,
    /// Backends that can never run it, with why.
    rejected: HashMap<usize, String>,
    /// Backends it failed on (crashed, lost, no answer): used again only when no
    /// other alive backend that can run it is left.
    failed_on: HashSet<usize>,
    force: bool,
    /// The backend holding its checkpoint while it is paused at a rung.
    paused_on: Option<usize>,
    /// The backend to continue it on (where its checkpoint is), when promoted.
    prefer: Option<usize>,
}

/// The scheduler's state.
pub struct Scheduler<'a> {
    opts: Options,
    store: &'a mut ResultsStore,
    ui: &'a mut dyn Ui,
    hosts: Vec<HostState>,
    trials: HashMap<String, Tracked>,
    /// Trial ids in sweep order.
    order: Vec<String>,
    /// Each trial's search metric by epoch.
    histories: HashMap<String, crate::search::History>,
    pending: VecDeque<String>,
    tx: mpsc::UnboundedSender<Msg>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Cancels sent, awaited before the run returns.
    cancels: Vec<tokio::task::JoinHandle<()>>,
}

impl Scheduler<'_> {
    fn counts(&self) -> UiEvent {
        let (mut done, mut running, mut failed, mut queued) = (0, 0, 0, 0);
        for t in self.trials.values() {
            match t.row.state {
                TrialState::Succeeded | TrialState::StoppedEarly => done += 1,
                TrialState::Running => running += 1,
                TrialState::Failed | TrialState::Cancelled => failed += 1,
                TrialState::Pending | TrialState::Queued | TrialState::Paused => queued += 1,
            }
        }
        UiEvent::Counts {
            done,
            running,
            failed,
            queued,
        }
    }

    fn all_final(&self) -> bool {
        self.trials.values().all(|t| t.row.state.is_final())
    }

    fn submits_in_flight(&self) -> bool {
        self.trials.values().any(|t| t.submitting.is_some())
    }

    fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for t in self.trials.values() {
            match t.row.state {
                TrialState::Succeeded => s.succeeded += 1,
                TrialState::Failed => s.failed += 1,
                TrialState::Cancelled => s.cancelled += 1,
                TrialState::StoppedEarly => s.stopped_early += 1,
                _ => s.placed += 1,
            }
        }
        s
    }

    fn set_state(
        &mut self,
        id: &str,
        state: TrialState,
        failure: Option<FailureClass>,
        message: &str,
    ) -> Result<(), ScheduleError> {
        let failure = failure.map_or("", FailureClass::as_str);
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        if t.row.state.is_decided() {
            return Ok(());
        }
        self.store.set_state(id, state, failure, message)?;
        self.show_state(id, state, failure, message);
        Ok(())
    }

    /// Applies a state the store holds to the tracked trial and shows it, with
    /// the new counts, in the live view.
    fn show_state(&mut self, id: &str, state: TrialState, failure: &str, message: &str) {
        if let Some(t) = self.trials.get_mut(id) {
            t.row.state = state;
            t.row.failure = failure.to_string();
            t.row.message = message.to_string();
            let event = UiEvent::State {
                trial: id.to_string(),
                label: t.row.label.clone(),
                state: state.to_string(),
                failure: failure.to_string(),
                message: message.to_string(),
            };
            self.ui.show(&event);
        }
        let counts = self.counts();
        self.ui.show(&counts);
    }

    /// Takes a trial off its host (lost, or failed there) and queues it for another
    /// placement, or fails it with `class` when its placements are used up.
    fn unplace(&mut self, id: &str, class: FailureClass, why: &str) -> Result<(), ScheduleError> {
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        if let Some(h) = t.host.take() {
            self.hosts[h].placed.remove(id);
            t.failed_on.insert(h);
        }
        if t.row.attempt >= self.opts.max_attempts {
            let msg = format!("{why}; {} placements used (max_attempts)", t.row.attempt);
            return self.set_state(id, TrialState::Failed, Some(class), &msg);
        }
        self.pending.push_front(id.to_string());
        self.set_state(id, TrialState::Pending, None, why)
    }

    fn on_event(&mut self, host: usize, event: pb::JobEvent) -> Result<(), ScheduleError> {
        use pb::job_event::Kind;
        self.renew(host);
        let id = event.trial_id.clone();
        let Some(t) = self.trials.get(&id) else {
            return Ok(());
        };
        let current = t.host == Some(host);
        match (&event.kind, current) {
            (Some(Kind::Result(result)), _) => self.on_result(host, &id, result)?,
            (_, false) => {}
            (Some(Kind::Epoch(m)), true) => {
                self.store.progress(&id, event.seq, Some(m))?;
                let epochs = self
                    .trials
                    .get(&id)
                    .map_or(0, |t| t.row.stop_after.unwrap_or(t.row.epochs));
                self.ui.show(&UiEvent::Epoch {
                    trial: id.clone(),
                    epoch: m.epoch,
                    epochs,
                    val_acc: m.val_acc,
                });
                self.on_epoch(host, &id, m)?;
            }
            (Some(Kind::State(s)), true) => {
                self.store.progress(&id, event.seq, None)?;
                self.on_state(host, &id, s)?;
            }
            _ => self.store.progress(&id, event.seq, None)?,
        }
        if let Some(t) = self.trials.get_mut(&id) {
            if current {
                t.row.last_seq = t.row.last_seq.max(event.seq);
            }
        }
        Ok(())
    }

    /// A result from `host`. The store decides which result is kept (the first one
    /// recorded, by this process or by another on the same store); the trial is
    /// done either way, and a copy placed elsewhere is cancelled.
    fn on_result(
        &mut self,
        host: usize,
        id: &str,
        result: &pb::TrialResult,
    ) -> Result<(), ScheduleError> {
        // A search stopped it: a copy that finished before the cancel landed
        // does not change the decision.
        if self
            .trials
            .get(id)
            .is_some_and(|t| t.row.state == TrialState::StoppedEarly)
        {
            return Ok(());
        }
        let url = self.hosts[host].url.clone();
        let recorded = self.store.record_result(id, &url, result)?;
        let Some(t) = self.trials.get(id) else {
            return Ok(());
        };
        if t.row.state == TrialState::Succeeded {
            return Ok(());
        }
        let (result, message) = if recorded {
            (result.clone(), format!("on {url}"))
        } else {
            match self.store.trial(id)? {
                Some(TrialRow {
                    state: TrialState::Succeeded,
                    result: Some(kept),
                    host: kept_on,
                    ..
                }) => {
                    let on = kept_on.unwrap_or_default();
                    (kept, format!("on {on} (recorded by another client)"))
                }
                _ => return Ok(()),
            }
        };
        let elsewhere = self
            .trials
            .get(id)
            .and_then(|t| t.host)
            .filter(|&h| h != host);
        if let Some(other) = elsewhere {
            self.cancel_on(other, id);
        }
        self.set_done(id, result, message)
    }

    fn set_done(
        &mut self,
        id: &str,
        result: pb::TrialResult,
        message: String,
    ) -> Result<(), ScheduleError> {
        if let Some(t) = self.trials.get_mut(id) {
            t.row.result = Some(result);
            if let Some(h) = t.host.take() {
                self.hosts[h].placed.remove(id);
            }
        }
        self.show_state(id, TrialState::Succeeded, "", &message);
        Ok(())
    }

    fn on_state(
        &mut self,
        host: usize,
        id: &str,
        s: &pb::StateChange,
    ) -> Result<(), ScheduleError> {
        let state = crate::store::state::from_pb(s.state);
        match state {
            TrialState::Succeeded => Ok(()),
            TrialState::Failed => {
                // An unknown class (a newer daemon's) counts as a crash.
                let class = failure(s.failure).unwrap_or(FailureClass::Crashed);
                if class.retried(self.opts.retry_failed) {
                    if let Some(t) = self.trials.get_mut(id) {
                        t.force = true;
                    }
                    let why = format!("{class} on {}: {}", self.hosts[host].url, s.message);
                    self.unplace(id, class, &why)
                } else {
                    self.release(id);
                    self.set_state(id, TrialState::Failed, Some(class), &s.message)
                }
            }
            TrialState::Cancelled => {
                self.release(id);
                self.set_state(id, TrialState::Cancelled, None, &s.message)
            }
            TrialState::Paused => self.on_paused(host, id),
            TrialState::StoppedEarly => Ok(()),
            TrialState::Running | TrialState::Queued | TrialState::Pending => {
                let changed = self.trials.get(id).is_some_and(|t| t.row.state != state);
                if changed {
                    self.set_state(id, state, None, &s.message)?;
                }
                Ok(())
            }
        }
    }

    fn release(&mut self, id: &str) {
        if let Some(h) = self.trials.get_mut(id).and_then(|t| t.host.take()) {
            self.hosts[h].placed.remove(id);
        }
    }

    /// Cancels `id` on `host` in the background; the run waits for its answer
    /// (at most the call deadline) before it returns, so a stopped trial's
    /// checkpoint never outlives the sweep.
    fn cancel_on(&mut self, host: usize, id: &str) {
        let task = tasks::spawn_cancel(self.hosts[host].backend.clone(), id.to_string());
        self.cancels.retain(|c| !c.is_finished());
        self.cancels.push(task);
    }

    fn watch(&mut self, host: usize, id: &str, from: u64, delay: Duration) {
        let task = tasks::spawn_watcher(
            host,
            self.hosts[host].backend.clone(),
            id.to_string(),
            from,
            delay,
            self.tx.clone(),
        );
        self.tasks.push(task);
    }

    fn on_watch_ended(
        &mut self,
        host: usize,
        id: &str,
        error: Option<BackendError>,
    ) -> Result<(), ScheduleError> {
        let Some(t) = self.trials.get(id) else {
            return Ok(());
        };
        if t.row.state.is_final() || t.host != Some(host) {
            return Ok(());
        }
        if matches!(error, Some(BackendError::NotFound(_))) {
            let why = format!("{} no longer knows the trial", self.hosts[host].url);
            return self.unplace(id, FailureClass::HostLost, &why);
        }
        // The stream ended early (daemon draining, network): watch again shortly.
        let from = t.row.last_seq + 1;
        self.watch(host, id, from, Duration::from_secs(1));
        Ok(())
    }

    /// A backend's capacity (it answers, too, so its lease is renewed).
    fn on_info(&mut self, host: usize, info: Option<BackendInfo>) -> Result<(), ScheduleError> {
        let Some(info) = info else {
            return Ok(());
        };
        if let Some(fp) = &info.fingerprint {
            self.store.note_host(&self.hosts[host].url, fp)?;
        }
        let h = &mut self.hosts[host];
        h.slots = info.slots_total as usize;
        h.max_queued = info.max_queued as usize;
        h.alive = true;
        self.renew(host);
        Ok(())
    }

    /// The backend answered something: its lease starts again, and a backend that
    /// was lost is back (its jobs of this sweep are reconciled).
    fn renew(&mut self, host: usize) {
        let h = &mut self.hosts[host];
        h.last_ok = Instant::now();
        h.busy = false;
        if !h.lost {
            return;
        }
        h.lost = false;
        let url = h.url.clone();
        self.ui.show(&UiEvent::Host {
            host: url,
            status: "back".into(),
        });
        let task = tasks::spawn_reconcile(
            host,
            self.hosts[host].backend.clone(),
            self.opts.sweep.clone(),
            self.tx.clone(),
        );
        self.tasks.push(task);
    }

    /// A job of this sweep on a host that came back: keep its result if the trial
    /// has none yet (first one wins), adopt it if the trial waits for a placement,
    /// cancel it if the trial is placed elsewhere or already done.
    fn on_found(&mut self, host: usize, job: pb::Job) -> Result<(), ScheduleError> {
        let id = job.trial_id.clone();
        let Some(t) = self.trials.get(&id) else {
            return Ok(());
        };
        let final_trial = t.row.state.is_final();
        let placed_elsewhere = t.host.or(t.submitting).is_some_and(|h| h != host);
        let unplaced = t.host.is_none() && t.submitting.is_none();
        match crate::store::state::from_pb(job.state) {
            TrialState::Succeeded => {
                if let Some(result) = job.result {
                    self.on_result(host, &id, &result)?;
                }
            }
            TrialState::Queued | TrialState::Running | TrialState::Paused
                if final_trial || placed_elsewhere =>
            {
                self.cancel_on(host, &id)
            }
            TrialState::Paused => {
                // Its checkpoint is there: a promotion continues it there.
                if let Some(t) = self.trials.get_mut(&id) {
                    if t.row.state == TrialState::Paused {
                        t.paused_on = Some(host);
                    }
                }
            }
            TrialState::Queued | TrialState::Running if unplaced => {
                self.pending.retain(|p| p != &id);
                if let Some(t) = self.trials.get_mut(&id) {
                    t.host = Some(host);
                    t.row.attempt += 1;
                    t.row.last_seq = 0;
                    self.store
                        .place(&id, &self.hosts[host].url, t.row.attempt, None)?;
                }
                self.hosts[host].placed.insert(id.clone());
                self.watch(host, &id, 1, Duration::ZERO);
            }
            _ => {}
        }
        Ok(())
    }

    fn check_leases(&mut self) -> Result<(), ScheduleError> {
        for h in 0..self.hosts.len() {
            let state = &mut self.hosts[h];
            if state.lost || state.last_ok.elapsed() < self.opts.lease {
                continue;
            }
            state.alive = false;
            state.lost = true;
            let url = state.url.clone();
            let lost: Vec<String> = state.placed.iter().cloned().collect();
            self.ui.show(&UiEvent::Host {
                host: url.clone(),
                status: format!("lost ({} trials to re-place)", lost.len()),
            });
            for id in lost {
                self.unplace(
                    &id,
                    FailureClass::HostLost,
                    &format!("host {url} stopped answering"),
                )?;
            }
        }
        Ok(())
    }
}

impl Drop for Scheduler<'_> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs (or, with `detach`, places) the unfinished trials of `opts.sweep` on
/// `backends`.
pub async fn run(
    store: &mut ResultsStore,
    backends: Vec<Arc<dyn Backend>>,
    opts: Options,
    ui: &mut dyn Ui,
) -> Result<Summary, ScheduleError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut rows = store.trials(&opts.sweep)?;
    // Rungs count under ASHA only: another kind runs every trial to its end.
    if opts.search.kind == crate::search::SearchKind::Asha {
        let rungs = store.rungs(&opts.sweep)?;
        for r in &mut rows {
            r.stop_after = rungs.get(&r.trial_id).copied();
        }
    }
    let mut scheduler = Scheduler {
        hosts: backends
            .into_iter()
            .map(|backend| HostState {
                url: backend.name().to_string(),
                backend,
                slots: 0,
                max_queued: usize::MAX,
                alive: false,
                lost: false,
                busy: false,
                last_ok: Instant::now(),
                placed: HashSet::new(),
                submitting: HashSet::new(),
            })
            .collect(),
        trials: HashMap::new(),
        order: Vec::new(),
        histories: HashMap::new(),
        pending: VecDeque::new(),
        tx,
        tasks: Vec::new(),
        cancels: Vec::new(),
        opts,
        store,
        ui,
    };
    scheduler.load_histories()?;
    scheduler.start(rows, &mut rx).await?;
    loop {
        scheduler.fill()?;
        let placed_all = scheduler.pending.is_empty() && !scheduler.submits_in_flight();
        if scheduler.all_final() || (scheduler.opts.detach && placed_all) {
            break;
        }
        let msg = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        match msg {
            Ok(Some(Msg::Event { host, event })) => scheduler.on_event(host, *event)?,
            Ok(Some(Msg::WatchEnded { host, trial, error })) => {
                scheduler.on_watch_ended(host, &trial, error)?
            }
            Ok(Some(Msg::Alive { host, ok })) => {
                if ok {
                    scheduler.renew(host);
                }
            }
            Ok(Some(Msg::Info { host, info })) => scheduler.on_info(host, info)?,
            Ok(Some(Msg::Found { host, job })) => scheduler.on_found(host, *job)?,
            Ok(Some(Msg::Submitted {
                host,
                trial,
                result,
            })) => scheduler.on_submitted(host, &trial, result.map(|s| *s))?,
            Ok(None) | Err(_) => {}
        }
        scheduler.check_leases()?;
    }
    for cancel in std::mem::take(&mut scheduler.cancels) {
        // Each is bounded by the call deadline; a failed cancel is the host's.
        let _ = cancel.await;
    }
    scheduler.ui.finish();
    Ok(scheduler.summary())
}
