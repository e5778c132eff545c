//! The scheduler's side of an adaptive search: ASHA's starts and promotions when
//! slots free, the stops of trials that paused at a rung nobody promotes them
//! from, and the median rule on each epoch. Every decision is written to the
//! store before it is acted on, so a restarted vovctl continues the same search.

use vov_proto::pb;

use super::{ScheduleError, Scheduler};
use crate::progress::UiEvent;
use crate::search::asha::{self, Candidate, Decision, Status};
use crate::search::{median, History, SearchKind};
use crate::store::{DecisionKind, TrialRow, TrialState};

impl Scheduler<'_> {
    /// Reads the search metric of every epoch the store holds for the sweep.
    pub(super) fn load_histories(&mut self) -> Result<(), ScheduleError> {
        let metric = self.opts.search.metric;
        for (id, epochs) in self.store.histories(&self.opts.sweep)? {
            let h: History = epochs.iter().map(|m| (m.epoch, metric.of(m))).collect();
            self.histories.insert(id, h);
        }
        Ok(())
    }

    /// Whether the sweep runs an ASHA search.
    pub(super) fn asha(&self) -> bool {
        self.opts.search.kind == SearchKind::Asha
    }

    /// Whether a search sent this trial to a rung (it runs there when pending).
    pub(super) fn searched(&self, row: &TrialRow) -> bool {
        self.asha() && row.stop_after.is_some()
    }

    /// Whether the trial waits for ASHA to start it.
    pub(super) fn waits_for_search(&self, row: &TrialRow) -> bool {
        self.asha() && row.stop_after.is_none()
    }

    fn status(&self, id: &str) -> Status {
        let Some(t) = self.trials.get(id) else {
            return Status::Ended;
        };
        match t.row.state {
            s if s.is_final() => Status::Ended,
            TrialState::Paused => Status::Paused,
            TrialState::Pending if t.row.stop_after.is_none() => Status::Unstarted,
            _ => Status::Active,
        }
    }

    fn free_slots(&self) -> usize {
        (0..self.hosts.len())
            .filter(|&h| self.hosts[h].alive)
            .map(|h| self.capacity(h))
            .sum()
    }

    /// ASHA: one decision per free slot not already claimed by a pending trial;
    /// when nothing is left to start or promote and nothing runs, the paused
    /// trials are stopped (their checkpoints removed) and the search ends.
    pub(super) fn search_fill(&mut self) -> Result<(), ScheduleError> {
        if self.opts.search.kind != SearchKind::Asha {
            return Ok(());
        }
        while self.free_slots() > self.pending.len() {
            let empty = History::new();
            let statuses: Vec<Status> = self.order.iter().map(|id| self.status(id)).collect();
            let cands: Vec<Candidate<'_>> = self
                .order
                .iter()
                .zip(&statuses)
                .map(|(id, status)| Candidate {
                    epochs: self.trials.get(id).map_or(0, |t| t.row.epochs),
                    history: self.histories.get(id).unwrap_or(&empty),
                    status: *status,
                })
                .collect();
            let decision = asha::next(&cands, &self.opts.search);
            match decision {
                Some(Decision::Start { trial, epochs }) => {
                    let id = self.order[trial].clone();
                    let note = self.rung_note(&id, 0, epochs, "started");
                    self.decide(&id, DecisionKind::Start, epochs, TrialState::Pending, &note)?;
                    self.pending.push_back(id);
                }
                Some(Decision::Promote {
                    trial,
                    rung,
                    epochs,
                }) => {
                    let id = self.order[trial].clone();
                    let note = self.rung_note(&id, rung, epochs, "promoted");
                    self.decide(
                        &id,
                        DecisionKind::Promote,
                        epochs,
                        TrialState::Pending,
                        &note,
                    )?;
                    if let Some(t) = self.trials.get_mut(&id) {
                        t.force = true;
                        t.prefer = t.paused_on.take();
                    }
                    self.pending.push_back(id);
                }
                None => {
                    if statuses
                        .iter()
                        .all(|s| matches!(s, Status::Paused | Status::Ended))
                    {
                        self.stop_paused()?;
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn rung_note(&self, id: &str, rung: usize, epochs: u32, what: &str) -> String {
        let all = self.trials.get(id).map_or(0, |t| t.row.epochs);
        let def = &self.opts.search;
        let n = asha::rungs(def.min_epochs, def.reduction_factor, all).len();
        format!("rung {}/{n}: {what}, to {epochs} of {all} epochs", rung + 1)
    }

    /// Writes a decision, then applies it to the tracked trial and the live view.
    fn decide(
        &mut self,
        id: &str,
        kind: DecisionKind,
        epochs: u32,
        state: TrialState,
        note: &str,
    ) -> Result<(), ScheduleError> {
        self.store
            .decide(&self.opts.sweep, id, kind, epochs, state, note)?;
        if let Some(t) = self.trials.get_mut(id) {
            if kind != DecisionKind::Stop {
                t.row.stop_after = Some(epochs);
            }
            if kind == DecisionKind::Promote {
                t.row.attempt = 0;
            }
        }
        self.show_state(id, state, "", note);
        Ok(())
    }

    /// The search is over: every paused trial stops where it is and its kept
    /// checkpoint is removed from its host.
    fn stop_paused(&mut self) -> Result<(), ScheduleError> {
        let paused: Vec<String> = self
            .order
            .iter()
            .filter(|id| self.status(id) == Status::Paused)
            .cloned()
            .collect();
        for id in paused {
            let epochs = self
                .histories
                .get(&id)
                .and_then(|h| h.keys().max().copied());
            let note = format!(
                "stopped early after {} epochs: not in the top 1/{} of its rung",
                epochs.unwrap_or(0),
                self.opts.search.reduction_factor
            );
            self.decide(
                &id,
                DecisionKind::Stop,
                epochs.unwrap_or(0),
                TrialState::StoppedEarly,
                &note,
            )?;
            if let Some(h) = self.trials.get_mut(&id).and_then(|t| t.paused_on.take()) {
                self.cancel_on(h, &id);
            }
        }
        Ok(())
    }

    /// A trial paused at its rung on `host`, its checkpoint kept there. A pause
    /// short of the rung it was sent to is an earlier rung's, replayed: ignored.
    pub(super) fn on_paused(&mut self, host: usize, id: &str) -> Result<(), ScheduleError> {
        let reached = self.histories.get(id).and_then(|h| h.keys().max().copied());
        let target = self.trials.get(id).and_then(|t| t.row.stop_after);
        if target.is_some_and(|t| reached.is_none_or(|r| r < t)) {
            return Ok(());
        }
        self.release(id);
        let def = &self.opts.search;
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        t.paused_on = Some(host);
        let history = self.histories.get(id).cloned().unwrap_or_default();
        let (reached, n) = asha::rung_of(def, t.row.epochs, &history);
        let done = history.keys().max().copied().unwrap_or(0);
        let message = format!(
            "paused at rung {}/{n} after {done} epochs",
            reached.map_or(0, |k| k + 1)
        );
        self.set_state(id, TrialState::Paused, None, &message)
    }

    /// An epoch of a trial placed on `host`: kept for the search; under the
    /// median rule, a trial worse than the others' median is stopped at once.
    pub(super) fn on_epoch(
        &mut self,
        host: usize,
        id: &str,
        m: &pb::EpochMetrics,
    ) -> Result<(), ScheduleError> {
        let def = self.opts.search;
        if !def.kind.is_adaptive() {
            return Ok(());
        }
        let value = def.metric.of(m);
        self.histories
            .entry(id.to_string())
            .or_default()
            .insert(m.epoch, value);
        if def.kind != SearchKind::Median || self.status(id) != Status::Active {
            return Ok(());
        }
        let mine = &self.histories[id];
        let others: Vec<&History> = self
            .order
            .iter()
            .filter(|o| o.as_str() != id)
            .filter_map(|o| self.histories.get(o))
            .collect();
        if !median::should_stop(mine, m.epoch, &others, &def) {
            return Ok(());
        }
        let note = format!(
            "stopped early after {} epochs: its best {} so far is worse than the median of the other trials at epoch {}",
            m.epoch,
            def.metric.as_str(),
            m.epoch
        );
        self.decide(
            id,
            DecisionKind::Stop,
            m.epoch,
            TrialState::StoppedEarly,
            &note,
        )?;
        self.release(id);
        self.cancel_on(host, id);
        Ok(())
    }

    /// A promoted trial goes to `h`: when its checkpoint is elsewhere (that host
    /// had no free slot), it starts from scratch here and the old checkpoint is
    /// removed; the live view and the trial's message say so.
    pub(super) fn leave_checkpoint(&mut self, h: usize, id: &str) {
        let Some(p) = self.trials.get_mut(id).and_then(|t| t.prefer.take()) else {
            return;
        };
        if p == h {
            return;
        }
        let (to, from) = (self.hosts[h].url.clone(), self.hosts[p].url.clone());
        self.ui.show(&UiEvent::State {
            trial: id.to_string(),
            label: self.trials.get(id).map(|t| t.row.label.clone()).unwrap_or_default(),
            state: "pending".into(),
            failure: String::new(),
            message: format!("continues from scratch on {to}: its checkpoint is on {from}, which has no free slot"),
        });
        self.cancel_on(p, id);
    }
}
