//! Reading specs written by older vovd versions (checkpoints, result records in the
//! job store). Version 0 stored the run flat, with the resolved model under
//! `model`; the current form holds the trial and the resolved model side by side.
//! Both load; only the current form is written.

use serde::Deserialize;
use vov_spec::{Augmentation, DatasetName, Measure, Optimizer, TrialSpec, WdMode};

use super::spec::TrainSpec;
use crate::model::ModelSpec;

/// A spec as stored by any version.
// A value that only lives while one record is read: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum StoredSpec {
    /// The current form.
    Current {
        /// The trial.
        trial: TrialSpec,
        /// The resolved model.
        model: ModelSpec,
    },
    /// Version 0 (vovd 0.1.0 before the spec crate).
    V0(V0Spec),
}

/// The flat form of version 0.
#[derive(Deserialize)]
pub(crate) struct V0Spec {
    model: ModelSpec,
    dataset: DatasetName,
    epochs: usize,
    batch_size: usize,
    optimizer: Optimizer,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    wd_mode: WdMode,
    augmentation: Augmentation,
    seed: u64,
    bn_momentum: f64,
    train_limit: Option<usize>,
    val_limit: Option<usize>,
    measure: Measure,
}

/// The preset a version-0 model name starts with (`vovnet-39`,
/// `densenet-koshian-2(growth_rate=24)`); its resolved architecture holds any knobs.
fn preset_of(model: &ModelSpec) -> vov_spec::Preset {
    let name = model.name.split('(').next().unwrap_or_default();
    name.parse().unwrap_or(vov_spec::Preset::ALL[0])
}

impl From<StoredSpec> for TrainSpec {
    fn from(s: StoredSpec) -> Self {
        match s {
            StoredSpec::Current { trial, model } => TrainSpec { trial, model },
            StoredSpec::V0(v) => {
                TrainSpec {
                    trial: TrialSpec {
                        model: preset_of(&v.model),
                        dataset: v.dataset,
                        epochs: v.epochs,
                        batch_size: v.batch_size,
                        optimizer: v.optimizer,
                        lr: v.lr,
                        momentum: v.momentum,
                        nesterov: v.nesterov,
                        weight_decay: v.weight_decay,
                        wd_mode: Some(v.wd_mode),
                        augmentation: v.augmentation,
                        seed: v.seed,
                        bn_momentum: v.bn_momentum,
                        train_limit: v.train_limit,
                        val_limit: v.val_limit,
                        measure: v.measure,
                        // Keys version 0 did not have (and knobs, which the
                        // resolved model holds) take their defaults.
                        ..TrialSpec::default()
                    },
                    model: v.model,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vov_spec::Preset;

    /// A result record's spec as vovd 0.1.0 wrote it loads, with the preset read
    /// from the model name and the architecture as stored.
    #[test]
    fn version_0_specs_load() {
        let current = TrainSpec::published(Preset::Vovnet27Slim).unwrap();
        let mut model = serde_json::to_value(&current.model).unwrap();
        model["name"] = "vovnet-27-slim(osa_layers=3)".into();
        let v0 = serde_json::json!({
            "model": model, "dataset": "synthetic", "epochs": 2, "batch_size": 32,
            "optimizer": "adam", "lr": 0.001, "momentum": 0.9, "nesterov": false,
            "weight_decay": 0.0, "wd_mode": "l2", "augmentation": "none", "seed": 7,
            "bn_momentum": 0.9, "train_limit": 64, "val_limit": null,
            "measure": {"batch1": false, "batch32": true}
        });
        let s: TrainSpec = serde_json::from_value(v0).unwrap();
        assert_eq!(
            (s.trial.model, s.epochs, s.seed, s.train_limit),
            (Preset::Vovnet27Slim, 2, 7, Some(64))
        );
        assert_eq!(s.model.name, "vovnet-27-slim(osa_layers=3)");
        assert!(!s.measure.batch1 && s.wd_mode == Some(WdMode::L2));
        let again: TrainSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
}
