//! [`TrialSpec`]: everything that determines a trial's outcome (and nothing that
//! only decides where or how fast it runs, such as threads or paths).

use serde::{Deserialize, Serialize};

use crate::knobs::ModelKnobs;
use crate::names::{
    Augmentation, DatasetName, DeviceRequirement, KeepWeights, Optimizer, Preset, Timing, WdMode,
};

/// Which inference timings to take after training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Measure {
    /// Batch-1 latency over the whole validation set.
    pub batch1: bool,
    /// Batch-32 throughput over the whole validation set.
    pub batch32: bool,
}

impl Default for Measure {
    fn default() -> Self {
        Measure {
            batch1: true,
            batch32: true,
        }
    }
}

impl Measure {
    /// The timings taken, in [`Timing::ALL`] order.
    pub fn timings(self) -> Vec<Timing> {
        Timing::ALL
            .iter()
            .copied()
            .filter(|t| self.takes(*t))
            .collect()
    }

    /// Whether `t` is taken.
    pub fn takes(self, t: Timing) -> bool {
        match t {
            Timing::Batch1 => self.batch1,
            Timing::Batch32 => self.batch32,
        }
    }

    /// The set holding exactly `timings`.
    pub fn from_timings(timings: &[Timing]) -> Measure {
        Measure {
            batch1: timings.contains(&Timing::Batch1),
            batch32: timings.contains(&Timing::Batch32),
        }
    }
}

/// One trial, typed. Its defaults are the published protocol's, written once in
/// [`TrialSpec::new`]; serde fills every field an older record lacks from there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrialSpec {
    /// Model preset.
    pub model: Preset,
    /// Knob overrides on the preset.
    #[serde(skip_serializing_if = "ModelKnobs::is_empty")]
    pub knobs: ModelKnobs,
    /// Data set.
    pub dataset: DatasetName,
    /// Epochs to train.
    pub epochs: usize,
    /// Minibatch size (also used for validation passes).
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub lr: f64,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    pub nesterov: bool,
    /// Weight decay strength (0 = none).
    pub weight_decay: f64,
    /// How weight decay is applied; `None` is the optimizer's default
    /// ([`WdMode::default_for`]).
    pub wd_mode: Option<WdMode>,
    /// Augmentation policy.
    pub augmentation: Augmentation,
    /// Seed of weights, data order and augmentation.
    pub seed: u64,
    /// BatchNorm momentum (Keras convention).
    pub bn_momentum: f64,
    /// First N training images only.
    pub train_limit: Option<usize>,
    /// First N validation images only.
    pub val_limit: Option<usize>,
    /// Inference timings to take.
    pub measure: Measure,
    /// Where it may run.
    pub device: DeviceRequirement,
    /// Which trained weights its host keeps when it ends (not part of its identity).
    pub keep_weights: KeepWeights,
}

impl TrialSpec {
    /// The published protocol for `model`: CIFAR-10, 100 epochs, batch 128, Adam at
    /// 1e-3, standard augmentation (shift + flip), no weight decay, Keras'
    /// BatchNorm momentum 0.99, both timings, any device, seed 0.
    pub fn new(model: Preset) -> Self {
        TrialSpec {
            model,
            knobs: ModelKnobs::default(),
            dataset: DatasetName::Cifar10,
            epochs: 100,
            batch_size: 128,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            wd_mode: None,
            augmentation: Augmentation::Standard,
            seed: 0,
            bn_momentum: 0.99,
            train_limit: None,
            val_limit: None,
            measure: Measure::default(),
            device: DeviceRequirement::Any,
            keep_weights: KeepWeights::None,
        }
    }

    /// The weight decay mode in force.
    pub fn wd_mode(&self) -> WdMode {
        self.wd_mode.unwrap_or(WdMode::default_for(self.optimizer))
    }
}

/// Serde's fill-in for fields an older record lacks: the published protocol. Every
/// record has a model, so the preset here is never what a trial runs.
impl Default for TrialSpec {
    fn default() -> Self {
        TrialSpec::new(Preset::ALL[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_old_records_load() {
        let mut s = TrialSpec::new(Preset::Vovnet39);
        s.knobs.osa_layers = Some(3);
        let back: TrialSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(s, back);
        // A record without the fields added later loads with their defaults.
        let old: TrialSpec = serde_json::from_str(r#"{"model":"vovnet-57","epochs":3}"#).unwrap();
        assert_eq!(
            (old.model, old.epochs, old.batch_size),
            (Preset::Vovnet57, 3, 128)
        );
        assert!(serde_json::from_str::<TrialSpec>(r#"{"model":"alexnet"}"#).is_err());
    }

    #[test]
    fn measures() {
        let m = Measure::from_timings(&[Timing::Batch32]);
        assert_eq!(m.timings(), vec![Timing::Batch32]);
        assert_eq!(Measure::default().timings(), Timing::ALL.to_vec());
    }
}
