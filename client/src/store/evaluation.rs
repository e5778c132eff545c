//! Evaluation jobs in the results store: a trial's kept weights measured on a
//! host, by an id of its own, beside the trials (never one of a sweep's trials:
//! the scheduler does not see them; the report does).

use prost::Message;
use rusqlite::{params, OptionalExtension, Row};
use vov_proto::pb;

use super::{now_ms, state, ResultsStore, StoreError, TrialState};

/// An evaluation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRow {
    /// Its id.
    pub eval_id: String,
    /// The trial whose weights it measures.
    pub source_trial: String,
    /// The host URL it runs on.
    pub host: String,
    /// The request.
    pub request: pb::EvaluationSpec,
    /// State.
    pub state: TrialState,
    /// Failure class, when failed.
    pub failure: String,
    /// Last message.
    pub message: String,
    /// The result.
    pub result: Option<pb::EvaluationResult>,
}

const COLUMNS: &str = "eval_id, source_trial, host, request, state, failure, message, result";

type Raw = (EvaluationRow, Vec<u8>, String, Option<Vec<u8>>);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        EvaluationRow {
            eval_id: r.get(0)?,
            source_trial: r.get(1)?,
            host: r.get(2)?,
            request: pb::EvaluationSpec::default(),
            state: TrialState::Pending,
            failure: r.get(5)?,
            message: r.get(6)?,
            result: None,
        },
        r.get(3)?,
        r.get(4)?,
        r.get(7)?,
    ))
}

fn decode((mut row, request, state, result): Raw) -> Result<EvaluationRow, StoreError> {
    let bad = || StoreError::Corrupt(row.eval_id.clone());
    row.request = pb::EvaluationSpec::decode(request.as_slice()).map_err(|_| bad())?;
    row.state = state.parse().map_err(|_| bad())?;
    row.result = result
        .map(|r| pb::EvaluationResult::decode(r.as_slice()))
        .transpose()
        .map_err(|_| bad())?;
    Ok(row)
}

impl ResultsStore {
    /// Records an evaluation about to be submitted to `host` (an existing one
    /// keeps its result, or goes back to queued).
    pub fn put_evaluation(
        &self,
        eval_id: &str,
        host: &str,
        request: &pb::EvaluationSpec,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "INSERT INTO evaluations (eval_id, source_trial, host, request, state, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5) ON CONFLICT(eval_id) DO UPDATE SET \
                 state = 'queued', failure = '', message = '', updated_ms = ?5 WHERE {}",
                state::UNDECIDED
            ),
            params![
                eval_id,
                request.source_trial_id,
                host,
                request.encode_to_vec(),
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Records an evaluation's state (never overwriting its result).
    pub fn set_evaluation_state(
        &self,
        eval_id: &str,
        state: TrialState,
        failure: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "UPDATE evaluations SET state = ?2, failure = ?3, message = ?4, updated_ms = ?5 \
                 WHERE eval_id = ?1 AND {}",
                state::UNDECIDED
            ),
            params![eval_id, state.as_str(), failure, message, now_ms()],
        )?;
        Ok(())
    }

    /// Records an evaluation's result.
    pub fn record_evaluation(
        &self,
        eval_id: &str,
        result: &pb::EvaluationResult,
    ) -> Result<(), StoreError> {
        let fp = result.fingerprint.as_ref().map(|f| f.id.clone());
        self.conn.execute(
            "UPDATE evaluations SET state = 'succeeded', result = ?2, fingerprint = ?3, failure = '', \
             message = '', updated_ms = ?4 WHERE eval_id = ?1",
            params![eval_id, result.encode_to_vec(), fp.unwrap_or_default(), now_ms()],
        )?;
        Ok(())
    }

    /// One evaluation.
    pub fn evaluation(&self, eval_id: &str) -> Result<Option<EvaluationRow>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM evaluations WHERE eval_id = ?1"),
                [eval_id],
                raw,
            )
            .optional()?
            .map(decode)
            .transpose()
    }

    /// The evaluations of a sweep's trials, oldest first (none in a store from
    /// before evaluations).
    pub fn evaluations(&self, sweep: &str) -> Result<Vec<EvaluationRow>, StoreError> {
        if !self.has_table("evaluations")? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM evaluations WHERE source_trial IN \
             (SELECT trial_id FROM sweep_trials WHERE sweep = ?1) ORDER BY updated_ms, eval_id"
        ))?;
        let rows = stmt.query_map([sweep], raw)?;
        rows.map(|r| decode(r?)).collect()
    }

    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evaluation_keeps_its_result_and_belongs_to_its_trials_sweep() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ResultsStore::open(&tmp.path().join("r.db")).unwrap();
        s.conn
            .execute(
                "INSERT INTO sweep_trials (sweep, trial_id, ord) VALUES ('s', 't1', 0)",
                [],
            )
            .unwrap();
        let req = pb::EvaluationSpec {
            source_trial_id: "t1".into(),
            weights_sha256: "ab".into(),
            ..Default::default()
        };
        s.put_evaluation("e1", "http://b", &req).unwrap();
        s.set_evaluation_state("e1", TrialState::Running, "", "running")
            .unwrap();
        let result = pb::EvaluationResult {
            val_acc: Some(0.5),
            ..Default::default()
        };
        s.record_evaluation("e1", &result).unwrap();
        // Submitted again: the result stays.
        s.put_evaluation("e1", "http://b", &req).unwrap();
        s.set_evaluation_state("e1", TrialState::Failed, "crashed", "x")
            .unwrap();
        let rows = s.evaluations("s").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, TrialState::Succeeded);
        assert_eq!(rows[0].result.as_ref().unwrap().val_acc, Some(0.5));
        assert_eq!(rows[0].request, req);
        assert!(s.evaluations("other").unwrap().is_empty());
        assert_eq!(s.evaluation("e1").unwrap().unwrap().host, "http://b");
    }
}
