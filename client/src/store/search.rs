//! What an adaptive search keeps in the store: each decision, in order, written
//! (with the trial's new rung and state) before it is acted on, and the metric
//! histories it decides from.

use std::collections::HashMap;

use rusqlite::params;
use vov_proto::pb;

use super::{now_ms, ResultsStore, StoreError};
use crate::store::TrialState;

/// What a search decided about a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// Started at the bottom rung.
    Start,
    /// Continued to the next rung.
    Promote,
    /// Stopped for good.
    Stop,
}

impl DecisionKind {
    const ALL: [DecisionKind; 3] = [
        DecisionKind::Start,
        DecisionKind::Promote,
        DecisionKind::Stop,
    ];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Start => "start",
            DecisionKind::Promote => "promote",
            DecisionKind::Stop => "stop",
        }
    }
}

/// One decision as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    /// Its place in the sweep's sequence, from 1.
    pub seq: u32,
    /// The trial.
    pub trial_id: String,
    /// What was decided.
    pub kind: DecisionKind,
    /// The epochs it was sent to (start, promote) or stopped at (stop).
    pub epochs: u32,
    /// Why, in words (the rung, the median).
    pub note: String,
}

impl ResultsStore {
    /// Writes a decision of `sweep`'s search with the trial's new `state` (and,
    /// for a start or promotion, the epochs it now runs to), in one transaction.
    /// A promotion starts the trial's count of placements again: `max_attempts`
    /// bounds the placements of one rung.
    pub fn decide(
        &self,
        sweep: &str,
        trial_id: &str,
        kind: DecisionKind,
        epochs: u32,
        state: TrialState,
        note: &str,
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO decisions (sweep, seq, trial_id, kind, epochs, note, at_ms) \
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6 FROM decisions WHERE sweep = ?1",
            params![sweep, trial_id, kind.as_str(), epochs, note, now_ms()],
        )?;
        let rung = (kind != DecisionKind::Stop).then_some(epochs);
        tx.execute(
            "UPDATE trials SET state = ?2, message = ?3, failure = '', stop_after = COALESCE(?4, stop_after), \
             attempt = CASE WHEN ?6 THEN 0 ELSE attempt END, updated_ms = ?5 \
             WHERE trial_id = ?1 AND state != 'succeeded'",
            params![trial_id, state.as_str(), note, rung, now_ms(), kind == DecisionKind::Promote],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The epochs each current trial of `sweep` was last sent to by its search.
    pub fn rungs(&self, sweep: &str) -> Result<HashMap<String, u32>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT t.trial_id, t.stop_after FROM trials t JOIN sweep_trials s ON s.trial_id = t.trial_id \
             WHERE s.sweep = ?1 AND s.current = 1 AND t.stop_after IS NOT NULL",
        )?;
        let rows = stmt.query_map([sweep], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The decisions of `sweep`'s search, in order.
    pub fn decisions(&self, sweep: &str) -> Result<Vec<DecisionRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, trial_id, kind, epochs, note FROM decisions WHERE sweep = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([sweep], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|r| {
            let (seq, trial_id, kind, epochs, note) = r?;
            let kind = DecisionKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .ok_or_else(|| StoreError::Corrupt(trial_id.clone()))?;
            Ok(DecisionRow {
                seq,
                trial_id,
                kind,
                epochs,
                note,
            })
        })
        .collect()
    }

    /// Every epoch recorded for the current trials of `sweep`, by trial, in
    /// epoch order.
    pub fn histories(
        &self,
        sweep: &str,
    ) -> Result<HashMap<String, Vec<pb::EpochMetrics>>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT e.trial_id, {} FROM epochs e JOIN sweep_trials s ON s.trial_id = e.trial_id \
             WHERE s.sweep = ?1 AND s.current = 1 ORDER BY e.trial_id, e.epoch",
            super::view::EPOCH_COLUMNS
        ))?;
        let rows = stmt.query_map([sweep], |r| {
            Ok((r.get::<_, String>(0)?, super::view::metrics(r, 1)?))
        })?;
        let mut out: HashMap<String, Vec<pb::EpochMetrics>> = HashMap::new();
        for r in rows {
            let (id, m) = r?;
            out.entry(id).or_default().push(m);
        }
        Ok(out)
    }

    /// Forgets `sweep`'s decisions and its current trials' epochs (a forced
    /// re-run starts its search again).
    pub(super) fn forget_search(&self, sweep: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM decisions WHERE sweep = ?1", [sweep])?;
        self.conn.execute(
            "DELETE FROM epochs WHERE trial_id IN \
             (SELECT trial_id FROM sweep_trials WHERE sweep = ?1 AND current = 1)",
            [sweep],
        )?;
        Ok(())
    }
}
