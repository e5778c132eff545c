//! Starting a sweep (adopting earlier placements) and placing pending trials on
//! free slots: submits run in their own tasks and report back by message.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use vov_spec::FailureClass;

use super::tasks::{self, Msg};
use super::{ScheduleError, Scheduler, Tracked};
use crate::backend::{BackendError, RunOptions, Submitted};
use crate::progress::UiEvent;
use crate::store::{TrialRow, TrialState};

impl Scheduler<'_> {
    /// Starts the pingers and info pollers, waits for the first capacity answers, adopts trials already
    /// placed on these backends and queues the rest.
    pub(super) async fn start(
        &mut self,
        rows: Vec<TrialRow>,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
    ) -> Result<(), ScheduleError> {
        for (i, h) in self.hosts.iter().enumerate() {
            self.tasks
                .push(tasks::spawn_pinger(i, h.backend.clone(), self.tx.clone()));
            self.tasks.push(tasks::spawn_info_poller(
                i,
                h.backend.clone(),
                self.tx.clone(),
            ));
        }
        let work = rows.iter().any(|r| !r.state.is_final());
        let deadline = Instant::now() + tasks::CALL_TIMEOUT + Duration::from_secs(1);
        let mut answered = 0;
        while work && answered < self.hosts.len() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Msg::Info { host, info })) => {
                    answered += 1;
                    self.on_info(host, info)?;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        for h in &mut self.hosts {
            h.last_ok = Instant::now();
        }
        if work && !self.hosts.iter().any(|h| h.alive) {
            let urls: Vec<&str> = self.hosts.iter().map(|h| h.url.as_str()).collect();
            return Err(ScheduleError::NoHost(urls.join(", ")));
        }
        let finished = rows.iter().filter(|r| r.state.is_final()).count();
        let epochs = rows
            .iter()
            .filter(|r| !r.state.is_final())
            .map(|r| u64::from(r.epochs.saturating_sub(r.epoch)))
            .sum();
        self.ui.show(&UiEvent::Plan {
            trials: rows.len(),
            finished,
            hosts: self.hosts.iter().map(|h| h.url.clone()).collect(),
            epochs,
        });
        for row in rows {
            self.adopt(row);
        }
        let counts = self.counts();
        self.ui.show(&counts);
        Ok(())
    }

    fn adopt(&mut self, row: TrialRow) {
        let id = row.trial_id.clone();
        let placed_on = row
            .host
            .as_ref()
            .and_then(|u| self.hosts.iter().position(|h| &h.url == u));
        let mut tracked = Tracked {
            row,
            host: None,
            submitting: None,
            rejected: HashMap::new(),
            failed_on: HashSet::new(),
            force: self.opts.rerun,
            paused_on: None,
            prefer: None,
        };
        self.order.push(id.clone());
        match (tracked.row.state, placed_on) {
            (s, _) if s.is_final() => {}
            (TrialState::StoppedEarly, Some(h)) => {
                // The cancel that followed the stop may not have landed.
                self.cancel_on(h, &id);
            }
            (TrialState::Paused, h) if !self.asha() => {
                // Paused by an ASHA search run earlier: this search runs it to
                // its end, from its checkpoint.
                tracked.force = true;
                tracked.prefer = h;
                self.pending.push_back(id.clone());
            }
            (TrialState::Paused, h) => tracked.paused_on = h,
            (TrialState::Pending, h) if self.searched(&tracked.row) => {
                // A decision written before vovctl stopped: a promotion (the
                // trial was placed before) continues where its checkpoint is.
                tracked.force = h.is_some();
                tracked.prefer = h;
                self.pending.push_back(id.clone());
            }
            (TrialState::Pending, _) if self.waits_for_search(&tracked.row) => {}
            (TrialState::Queued | TrialState::Running, Some(h)) => {
                tracked.host = Some(h);
                self.hosts[h].placed.insert(id.clone());
                let from = tracked.row.last_seq + 1;
                self.trials.insert(id.clone(), tracked);
                self.watch(h, &id, from, Duration::ZERO);
                return;
            }
            _ => self.pending.push_back(id.clone()),
        }
        self.trials.insert(id, tracked);
    }

    pub(super) fn capacity(&self, h: usize) -> usize {
        let host = &self.hosts[h];
        if host.busy {
            return 0;
        }
        let limit = if self.opts.detach {
            host.max_queued.saturating_add(host.slots)
        } else {
            host.slots
        };
        limit.saturating_sub(host.placed.len() + host.submitting.len())
    }

    /// The alive backend with the most free capacity that can run `id`, preferring
    /// those it has not failed on: one it failed on is used again only when no
    /// other alive backend that can run it is left.
    fn best_host(&self, id: &str) -> Option<usize> {
        let t = self.trials.get(id)?;
        let open = |h: usize| self.hosts[h].alive && !t.rejected.contains_key(&h);
        if let Some(h) = t.prefer.filter(|&h| open(h) && self.capacity(h) > 0) {
            return Some(h);
        }
        let untried_left = (0..self.hosts.len()).any(|h| open(h) && !t.failed_on.contains(&h));
        (0..self.hosts.len())
            .filter(|&h| open(h) && !(untried_left && t.failed_on.contains(&h)))
            .filter(|&h| self.capacity(h) > 0)
            .max_by_key(|&h| (self.capacity(h), std::cmp::Reverse(h)))
    }

    /// Sends pending trials to free slots, in sweep order, without waiting for the
    /// answers.
    pub(super) fn fill(&mut self) -> Result<(), ScheduleError> {
        self.search_fill()?;
        let mut waiting = VecDeque::new();
        while let Some(id) = self.pending.pop_front() {
            let Some(t) = self.trials.get(&id) else {
                continue;
            };
            if t.row.state.is_final() || t.submitting.is_some() || t.host.is_some() {
                continue;
            }
            if self.refused_everywhere(&id)? {
                continue;
            }
            match self.best_host(&id) {
                Some(h) => self.submit(h, &id),
                None => waiting.push_back(id),
            }
        }
        self.pending = waiting;
        Ok(())
    }

    /// Fails a trial every backend refused; returns whether it did.
    fn refused_everywhere(&mut self, id: &str) -> Result<bool, ScheduleError> {
        let Some(t) = self.trials.get(id) else {
            return Ok(false);
        };
        if t.rejected.len() < self.hosts.len() {
            return Ok(false);
        }
        let mut reasons: Vec<String> = t
            .rejected
            .iter()
            .map(|(h, why)| format!("{}: {why}", self.hosts[*h].url))
            .collect();
        reasons.sort();
        self.set_state(
            id,
            TrialState::Failed,
            Some(FailureClass::Unrunnable),
            &format!("no host can run it ({})", reasons.join("; ")),
        )?;
        Ok(true)
    }

    /// Starts a submit of `id` to backend `h`; its answer comes as a message.
    fn submit(&mut self, h: usize, id: &str) {
        let Some(t) = self.trials.get_mut(id) else {
            return;
        };
        t.submitting = Some(h);
        let run = RunOptions {
            retry: t.force,
            stop_after: t.row.stop_after.filter(|&e| e < t.row.epochs).unwrap_or(0),
        };
        let spec = t.row.spec.clone();
        self.hosts[h].submitting.insert(id.to_string());
        self.leave_checkpoint(h, id);
        let task = tasks::spawn_submit(
            h,
            self.hosts[h].backend.clone(),
            id.to_string(),
            self.opts.sweep.clone(),
            spec,
            run,
            self.tx.clone(),
        );
        self.tasks.push(task);
    }

    /// The answer to a submit of `id` to backend `h`.
    pub(super) fn on_submitted(
        &mut self,
        h: usize,
        id: &str,
        result: Result<Submitted, BackendError>,
    ) -> Result<(), ScheduleError> {
        self.hosts[h].submitting.remove(id);
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        let expected = t.submitting == Some(h);
        if expected {
            t.submitting = None;
        }
        if !expected || t.row.state.is_final() {
            // Done meanwhile (a lost backend's copy finished): drop this copy.
            if result.is_ok() && t.host != Some(h) {
                self.cancel_on(h, id);
            }
            return Ok(());
        }
        match result {
            Ok(sub) => self.placed(h, id, sub),
            Err(error) => self.refused(h, id, error),
        }
    }

    fn placed(&mut self, h: usize, id: &str, sub: Submitted) -> Result<(), ScheduleError> {
        // A re-queued job's old events (its old result among them) are skipped.
        let from = if sub.created {
            sub.job.last_seq.max(1)
        } else {
            1
        };
        let url = self.hosts[h].url.clone();
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        t.force = false;
        // The backend's word on where it went (a Slurm array task) stays in the
        // store's message until the trial's next state.
        let message = sub.job.message.clone();
        t.row.attempt += 1;
        t.row.last_seq = 0;
        t.host = Some(h);
        let (attempt, label) = (t.row.attempt, t.row.label.clone());
        self.store
            .place(id, &url, attempt, sub.batch_job.as_deref())?;
        self.hosts[h].placed.insert(id.to_string());
        self.ui.show(&UiEvent::Placed {
            trial: id.to_string(),
            label,
            host: url,
            attempt,
        });
        self.set_state(id, TrialState::Queued, None, &message)?;
        self.watch(h, id, from, Duration::ZERO);
        Ok(())
    }

    fn refused(&mut self, h: usize, id: &str, error: BackendError) -> Result<(), ScheduleError> {
        match error {
            BackendError::Invalid(why) => {
                return self.set_state(
                    id,
                    TrialState::Failed,
                    Some(FailureClass::InvalidSpec),
                    &why,
                )
            }
            BackendError::Unrunnable(why) => {
                if let Some(t) = self.trials.get_mut(id) {
                    t.rejected.insert(h, why);
                }
            }
            BackendError::Busy(_) => {
                // Its queue is full: nothing more goes there until its next answer.
                self.hosts[h].busy = true;
            }
            BackendError::NotFound(_) | BackendError::Unavailable(_) => {
                tracing::debug!(host = %self.hosts[h].url, %error, "submit failed; host marked unreachable");
                self.hosts[h].alive = false;
                if let Some(t) = self.trials.get_mut(id) {
                    t.failed_on.insert(h);
                }
            }
        }
        self.pending.push_front(id.to_string());
        Ok(())
    }
}
