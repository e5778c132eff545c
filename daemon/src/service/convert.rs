//! Requests in, jobs out: decoding a `vov.v1.TrialSpec` into a checked
//! [`TrainSpec`] (every error names the field) and a stored job into a `vov.v1.Job`.

use prost::Message;
use vov_proto::pb;

use super::error::ServiceError;
use crate::data::{Augmentation, DatasetName};
use crate::jobs::{convert, Progress};
use crate::model::{ModelKnobs, ModelSpec};
use crate::store::JobRow;
use crate::train::{Measure, OptimizerKind, TrainRecord, TrainSpec, WdMode};

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

fn list(v: &[u32]) -> Option<Vec<usize>> {
    (!v.is_empty()).then(|| v.iter().map(|&x| x as usize).collect())
}

fn knobs(k: Option<&pb::ModelKnobs>) -> ModelKnobs {
    let Some(k) = k else {
        return ModelKnobs::default();
    };
    ModelKnobs {
        stem: list(&k.stem),
        stage_widths: list(&k.stage_widths),
        stage_outputs: list(&k.stage_outputs),
        repetitions: list(&k.repetitions),
        osa_layers: k.osa_layers.map(|v| v as usize),
        growth_rate: k.growth_rate.map(|v| v as usize),
        blocks: list(&k.blocks),
        bottleneck: k.bottleneck.map(|v| v as usize),
        compression: k.compression,
        stem_channels: k.stem_channels.map(|v| v as usize),
    }
}

fn optimizer(v: i32) -> Result<OptimizerKind, ServiceError> {
    match pb::Optimizer::try_from(v) {
        Ok(pb::Optimizer::Adam) => Ok(OptimizerKind::Adam),
        Ok(pb::Optimizer::Adamw) => Ok(OptimizerKind::Adamw),
        Ok(pb::Optimizer::Sgd) => Ok(OptimizerKind::Sgd),
        _ => Err(invalid(format!(
            "optimizer = {v}: must be OPTIMIZER_ADAM, OPTIMIZER_ADAMW or OPTIMIZER_SGD"
        ))),
    }
}

fn wd_mode(v: i32, opt: OptimizerKind) -> Result<WdMode, ServiceError> {
    match pb::WeightDecayMode::try_from(v) {
        Ok(pb::WeightDecayMode::Unspecified) if opt == OptimizerKind::Adamw => {
            Ok(WdMode::Decoupled)
        }
        Ok(pb::WeightDecayMode::Unspecified | pb::WeightDecayMode::L2) => Ok(WdMode::L2),
        Ok(pb::WeightDecayMode::Decoupled) => Ok(WdMode::Decoupled),
        Err(_) => Err(invalid(format!("wd_mode = {v}: unknown weight decay mode"))),
    }
}

fn augmentation(v: i32) -> Result<Augmentation, ServiceError> {
    Ok(match pb::Augmentation::try_from(v) {
        Ok(pb::Augmentation::Unspecified | pb::Augmentation::Standard) => Augmentation::Standard,
        Ok(pb::Augmentation::None) => Augmentation::None,
        Ok(pb::Augmentation::Flip) => Augmentation::Flip,
        Ok(pb::Augmentation::Shift) => Augmentation::Shift,
        Ok(pb::Augmentation::Crop) => Augmentation::Crop,
        Ok(pb::Augmentation::StandardCrop) => Augmentation::StandardCrop,
        Err(_) => return Err(invalid(format!("augmentation = {v}: unknown augmentation"))),
    })
}

fn limit(field: &str, v: Option<u64>) -> Result<Option<usize>, ServiceError> {
    v.map(|n| usize::try_from(n).map_err(|_| invalid(format!("{field} = {n}: too large"))))
        .transpose()
}

fn positive(field: &str, v: u32) -> Result<usize, ServiceError> {
    if v == 0 {
        Err(invalid(format!("{field} = 0: must be at least 1")))
    } else {
        Ok(v as usize)
    }
}

/// Decodes and checks a submitted spec.
pub fn train_spec(s: &pb::TrialSpec) -> Result<TrainSpec, ServiceError> {
    if s.model.is_empty() {
        return Err(invalid(
            "model: required (a preset name, see HostInfo.models)",
        ));
    }
    let model = ModelSpec::resolve(&s.model, &knobs(s.knobs.as_ref()))
        .map_err(|e| invalid(format!("model: {e}")))?;
    let dataset: DatasetName = s
        .dataset
        .parse()
        .map_err(|e| invalid(format!("dataset: {e}")))?;
    let optimizer = optimizer(s.optimizer)?;
    let spec = TrainSpec {
        model,
        dataset,
        epochs: positive("epochs", s.epochs)?,
        batch_size: positive("batch_size", s.batch_size)?,
        optimizer,
        lr: s.lr,
        momentum: s.momentum,
        nesterov: s.nesterov,
        weight_decay: s.weight_decay,
        wd_mode: wd_mode(s.wd_mode, optimizer)?,
        augmentation: augmentation(s.augmentation)?,
        seed: s.seed,
        bn_momentum: s.bn_momentum,
        train_limit: limit("train_limit", s.train_limit)?,
        val_limit: limit("val_limit", s.val_limit)?,
        measure: Measure {
            batch1: s.measure_batch1,
            batch32: s.measure_batch32,
        },
    };
    spec.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(spec)
}

/// A stored job as sent.
pub fn job(row: &JobRow, host: &str) -> pb::Job {
    let progress: Option<Progress> = serde_json::from_str(&row.progress).ok();
    let result = row
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<TrainRecord>(r).ok())
        .map(|r| convert::result(&r));
    pb::Job {
        trial_id: row.trial_id.clone(),
        sweep_id: row.sweep_id.clone(),
        spec: pb::TrialSpec::decode(row.spec.as_slice()).ok(),
        model: row.model.clone(),
        state: convert::state(row.state) as i32,
        failure: convert::failure(row.failure) as i32,
        message: row.message.clone(),
        attempt: row.attempt,
        created_unix_ms: row.created_ms,
        started_unix_ms: row.started_ms,
        finished_unix_ms: row.finished_ms,
        progress: progress.as_ref().map(convert::progress),
        result,
        last_seq: row.last_seq,
        host: host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> pb::TrialSpec {
        pb::TrialSpec {
            model: "vovnet-27-slim".into(),
            dataset: "synthetic".into(),
            epochs: 2,
            batch_size: 32,
            optimizer: pb::Optimizer::Adam as i32,
            lr: 1e-3,
            bn_momentum: 0.9,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_a_valid_spec() {
        let s = train_spec(&spec()).unwrap();
        assert_eq!(
            (s.epochs, s.batch_size, s.augmentation),
            (2, 32, Augmentation::Standard)
        );
        assert_eq!(s.model.name, "vovnet-27-slim");
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(pb::TrialSpec, &str)> = vec![
            (
                pb::TrialSpec {
                    model: "alexnet".into(),
                    ..spec()
                },
                "unknown model 'alexnet'",
            ),
            (
                pb::TrialSpec {
                    model: String::new(),
                    ..spec()
                },
                "model: required",
            ),
            (
                pb::TrialSpec {
                    dataset: "imagenet".into(),
                    ..spec()
                },
                "unknown data set 'imagenet'",
            ),
            (
                pb::TrialSpec {
                    epochs: 0,
                    ..spec()
                },
                "epochs = 0",
            ),
            (
                pb::TrialSpec {
                    epochs: 1_000_000_000,
                    ..spec()
                },
                "epochs = 1000000000",
            ),
            (
                pb::TrialSpec {
                    batch_size: 0,
                    ..spec()
                },
                "batch_size = 0",
            ),
            (pb::TrialSpec { lr: -1.0, ..spec() }, "lr = -1"),
            (
                pb::TrialSpec {
                    optimizer: 0,
                    ..spec()
                },
                "optimizer = 0",
            ),
            (
                pb::TrialSpec {
                    train_limit: Some(0),
                    ..spec()
                },
                "train_limit = 0",
            ),
        ];
        for (s, needle) in cases {
            let err = train_spec(&s).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
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
