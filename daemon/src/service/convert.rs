//! Requests in, jobs out: decoding a `vov.v1.TrialSpec` into a checked
//! [`TrainSpec`] (every error names the field) and a stored job into a `vov.v1.Job`.

use prost::Message;
use vov_proto::pb;

use vov_spec::TrialSpec;

use super::error::ServiceError;
use crate::jobs::{convert, Progress};
use crate::store::JobRow;
use crate::train::evaluate::EvaluationRecord;
use crate::train::{TrainRecord, TrainSpec};

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(msg.into())
}

/// Checks a trial or sweep id: 1-128 characters of `[A-Za-z0-9._-]` (a sweep id
/// may be empty).
pub fn check_id(field: &str, id: &str, allow_empty: bool) -> Result<(), ServiceError> {
    if id.is_empty() && allow_empty {
        return Ok(());
    }
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} '{id}' must be 1-128 characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// Decodes and checks a submitted spec (the conversion of `vov-proto`, then the
/// model resolved); every error names the key.
pub fn train_spec(s: &pb::TrialSpec) -> Result<TrainSpec, ServiceError> {
    TrialSpec::try_from(s)
        .and_then(TrainSpec::resolve)
        .map_err(|e| invalid(e.to_string()))
}

/// A stored job as sent.
pub fn job(row: &JobRow, host: &str) -> pb::Job {
    let progress: Option<Progress> = serde_json::from_str(&row.progress).ok();
    let evaluation = row
        .evaluation
        .as_deref()
        .and_then(|b| pb::EvaluationSpec::decode(b).ok());
    let (result, evaluation_result) = match &evaluation {
        None => {
            let r = row.result.as_deref();
            let r = r.and_then(|r| serde_json::from_str::<TrainRecord>(r).ok());
            (r.map(|r| convert::result(&r)), None)
        }
        Some(e) => {
            let r = row.result.as_deref();
            let r = r.and_then(|r| serde_json::from_str::<EvaluationRecord>(r).ok());
            (None, r.map(|r| convert::evaluation(&r, &e.source_trial_id)))
        }
    };
    let kind = match evaluation {
        Some(_) => pb::JobKind::Evaluate,
        None => pb::JobKind::Train,
    };
    pb::Job {
        trial_id: row.trial_id.clone(),
        sweep_id: row.sweep_id.clone(),
        spec: pb::TrialSpec::decode(row.spec.as_slice()).ok(),
        model: row.model.clone(),
        state: pb::JobState::from(row.state) as i32,
        failure: vov_proto::convert::failure_to_pb(row.failure) as i32,
        message: row.message.clone(),
        attempt: row.attempt,
        created_unix_ms: row.created_ms,
        started_unix_ms: row.started_ms,
        finished_unix_ms: row.finished_ms,
        progress: progress.as_ref().map(convert::progress),
        result,
        last_seq: row.last_seq,
        host: host.to_string(),
        kind: kind as i32,
        evaluation,
        evaluation_result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> pb::TrialSpec {
        let mut t = TrialSpec::new(vov_spec::Preset::Vovnet27Slim);
        t.dataset = vov_spec::DatasetName::Synthetic;
        t.epochs = 2;
        t.batch_size = 32;
        pb::TrialSpec::from(&t)
    }

    #[test]
    fn decodes_a_valid_spec() {
        let s = train_spec(&spec()).unwrap();
        assert_eq!((s.epochs, s.batch_size), (2, 32));
        assert_eq!(s.model.name, vov_spec::Preset::Vovnet27Slim.as_str());
    }

    #[test]
    fn bad_fields_are_named() {
        let unknown = pb::TrialSpec {
            dataset: "imagenet".into(),
            ..spec()
        };
        let err = train_spec(&unknown).unwrap_err().to_string();
        assert!(
            err.contains("dataset: unknown data set 'imagenet'"),
            "{err}"
        );
        let knob = pb::TrialSpec {
            knobs: Some(pb::ModelKnobs {
                stage_widths: vec![8, 8, 8, 8, 8],
                ..Default::default()
            }),
            ..spec()
        };
        let err = train_spec(&knob).unwrap_err().to_string();
        assert!(
            err.contains("model: ") && err.contains("stage_outputs"),
            "{err}"
        );
    }

    #[test]
    fn ids() {
        assert!(check_id("trial_id", "abc-1.2_3", false).is_ok());
        assert!(check_id("sweep_id", "", true).is_ok());
        assert!(check_id("trial_id", "", false).is_err());
        assert!(check_id("trial_id", "../etc/passwd", false).is_err());
        assert!(check_id("trial_id", &"a".repeat(129), false).is_err());
    }
}
