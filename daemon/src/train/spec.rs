//! The resolved description of one training run, checked once at the edge.
//!
//! A [`TrainSpec`] holds everything that determines a trial's outcome (and nothing
//! that only determines where or how fast it runs, such as threads or paths), so
//! that its hash can be the trial's identity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::{Augmentation, DatasetName, MAX_LIMIT};
use crate::model::{ModelError, ModelKnobs, ModelSpec};

/// A field of a spec is out of range or inconsistent with another.
#[derive(Debug, Error, PartialEq)]
#[error("{field} = {value}: {reason}")]
pub struct SpecError {
    /// The field at fault, as named in specs and sweep files.
    pub field: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

impl SpecError {
    fn new(field: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        SpecError {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Optimizers, with Keras' update rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (beta1 0.9, beta2 0.999, epsilon 1e-7, Keras' epsilon placement).
    #[default]
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
    /// SGD with momentum (optionally Nesterov).
    Sgd,
}

/// How `weight_decay` is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WdMode {
    /// `weight_decay * sum(w^2)` over conv and dense kernels added to the loss, like
    /// Keras' `kernel_regularizer=l2(weight_decay)`.
    #[default]
    L2,
    /// `w -= lr * weight_decay * w` on kernels at each step, outside the gradient.
    Decoupled,
}

macro_rules! named_enum {
    ($t:ty, $what:literal, [$($v:path => $s:literal),+]) => {
        impl $t {
            /// The name as written in specs and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($v),)+
                    _ => Err(format!(concat!("unknown ", $what, " '{}' (known: {})"), s, [$($s),+].join(", "))),
                }
            }
        }
    };
}

named_enum!(OptimizerKind, "optimizer", [OptimizerKind::Adam => "adam", OptimizerKind::Adamw => "adamw", OptimizerKind::Sgd => "sgd"]);
named_enum!(WdMode, "weight decay mode", [WdMode::L2 => "l2", WdMode::Decoupled => "decoupled"]);

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

/// Upper bounds that reject absurd input.
pub mod bounds {
    /// Most epochs a trial may ask for.
    pub const MAX_EPOCHS: usize = 10_000;
    /// Largest batch.
    pub const MAX_BATCH: usize = 65_536;
    /// Largest learning rate.
    pub const MAX_LR: f64 = 10.0;
    /// Largest weight decay.
    pub const MAX_WEIGHT_DECAY: f64 = 1.0;
}

/// Everything that determines a training run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The model, resolved.
    pub model: ModelSpec,
    /// The data set.
    pub dataset: DatasetName,
    /// Epochs to train.
    pub epochs: usize,
    /// Minibatch size (also used for validation passes).
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    pub nesterov: bool,
    /// Weight decay strength (0 = none).
    pub weight_decay: f64,
    /// How weight decay is applied.
    pub wd_mode: WdMode,
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
}

/// Keras' default BatchNorm momentum.
pub const KERAS_BN_MOMENTUM: f64 = 0.99;

/// Share of the initial moving statistics a run may leave in place unwarned.
const BN_RESIDUE: f64 = 0.05;

/// The momentum whose moving statistics average over about the last tenth of a run
/// of `steps` updates: 1 - 10/steps (an effective window of steps/10), at most
/// Keras' 0.99 and at least 0 (the last batch's statistics). A longer window lags
/// behind weights that still change fast, and evaluation uses it; the initial
/// values keep under e^-10 of the weight.
fn short_run_bn_momentum(steps: usize) -> f64 {
    (1.0 - 10.0 / steps.max(1) as f64).clamp(0.0, KERAS_BN_MOMENTUM)
}

impl TrainSpec {
    /// The published protocol for `model`: CIFAR-10, 100 epochs, batch 128, Adam at
    /// 1e-3, standard augmentation, no weight decay, Keras' BN momentum.
    pub fn published(model: &str) -> Result<Self, ModelError> {
        Ok(TrainSpec {
            model: ModelSpec::resolve(model, &ModelKnobs::default())?,
            dataset: DatasetName::Cifar10,
            epochs: 100,
            batch_size: 128,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            wd_mode: WdMode::L2,
            augmentation: Augmentation::Standard,
            seed: 0,
            bn_momentum: 0.99,
            train_limit: None,
            val_limit: None,
            measure: Measure::default(),
        })
    }

    /// Checks every field's range and the fields against each other.
    pub fn validate(&self) -> Result<(), SpecError> {
        use bounds::*;
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            return Err(SpecError::new(
                "epochs",
                self.epochs,
                format!("must be between 1 and {MAX_EPOCHS}"),
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            return Err(SpecError::new(
                "batch_size",
                self.batch_size,
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        if !(self.lr > 0.0 && self.lr <= MAX_LR) {
            return Err(SpecError::new(
                "lr",
                self.lr,
                format!("must be above 0 and at most {MAX_LR}"),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(SpecError::new(
                "momentum",
                self.momentum,
                "must be in [0, 1)",
            ));
        }
        if !(0.0..=MAX_WEIGHT_DECAY).contains(&self.weight_decay) {
            return Err(SpecError::new(
                "weight_decay",
                self.weight_decay,
                format!("must be in [0, {MAX_WEIGHT_DECAY}]"),
            ));
        }
        if self.optimizer == OptimizerKind::Adamw
            && self.wd_mode == WdMode::L2
            && self.weight_decay > 0.0
        {
            return Err(SpecError::new("wd_mode", "l2", "adamw decouples weight decay by definition; use wd_mode = decoupled or optimizer = adam"));
        }
        if !(0.0..1.0).contains(&self.bn_momentum) {
            return Err(SpecError::new(
                "bn_momentum",
                self.bn_momentum,
                "must be in [0, 1)",
            ));
        }
        for (field, v) in [
            ("train_limit", self.train_limit),
            ("val_limit", self.val_limit),
        ] {
            if let Some(n) = v {
                if n == 0 || n > MAX_LIMIT {
                    return Err(SpecError::new(
                        field,
                        n,
                        format!("must be between 1 and {MAX_LIMIT}"),
                    ));
                }
            }
        }
        self.model
            .arch
            .validate(32)
            .map_err(|e| SpecError::new("model", &self.model.name, e.to_string()))
    }

    /// A warning when the run is too short for its BatchNorm momentum: after `steps`
    /// updates the moving statistics still hold `momentum^steps` of their initial
    /// values (mean 0, variance 1), and evaluation uses them.
    pub fn bn_warning(&self, steps: usize) -> Option<String> {
        let residue = self.bn_momentum.powf(steps as f64);
        (residue > BN_RESIDUE).then(|| {
            let suggested = short_run_bn_momentum(steps);
            format!(
                "bn_momentum {} over {steps} training steps leaves {:.0}% of BatchNorm's initial \
                 moving statistics in place: validation accuracy may sit near chance while \
                 training accuracy climbs; for a run this short use bn_momentum <= {:.2}",
                self.bn_momentum,
                residue * 100.0,
                suggested.max(0.0)
            )
        })
    }

    /// Keras' BatchNorm momentum (0.99) for runs of at least 1,000 updates, below
    /// that 1 - 10/steps (the momentum [`Self::bn_warning`] suggests), so that the
    /// moving statistics average over the last tenth of the run.
    pub fn default_bn_momentum(steps: usize) -> f64 {
        short_run_bn_momentum(steps)
    }

    /// Whether `other` describes the same run except for a larger epoch count (what
    /// a resume may change).
    pub fn resumable_as(&self, other: &TrainSpec) -> bool {
        let mut a = self.clone();
        a.epochs = other.epochs;
        a.measure = other.measure;
        a == *other && other.epochs >= self.epochs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TrainSpec {
        TrainSpec::published("densenet-koshian-2").unwrap()
    }

    #[test]
    fn published_protocol_is_valid() {
        spec().validate().unwrap();
    }

    #[test]
    fn each_bound_names_its_field() {
        type Mutation = Box<dyn Fn(&mut TrainSpec)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("epochs", Box::new(|s| s.epochs = 0)),
            ("epochs", Box::new(|s| s.epochs = 1_000_000_000)),
            ("batch_size", Box::new(|s| s.batch_size = 0)),
            ("lr", Box::new(|s| s.lr = -0.1)),
            ("lr", Box::new(|s| s.lr = f64::NAN)),
            ("momentum", Box::new(|s| s.momentum = 1.0)),
            ("weight_decay", Box::new(|s| s.weight_decay = -1.0)),
            ("bn_momentum", Box::new(|s| s.bn_momentum = 1.5)),
            ("train_limit", Box::new(|s| s.train_limit = Some(0))),
            ("val_limit", Box::new(|s| s.val_limit = Some(usize::MAX))),
            (
                "wd_mode",
                Box::new(|s| {
                    s.optimizer = OptimizerKind::Adamw;
                    s.weight_decay = 1e-4;
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut s = spec();
            mutate(&mut s);
            let err = s.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn warns_when_momentum_outlasts_the_run() {
        let mut s = spec();
        assert!(s
            .bn_warning(237)
            .unwrap()
            .contains("bn_momentum 0.99 over 237"));
        assert!(s.bn_warning(39_100).is_none());
        s.bn_momentum = 0.9;
        assert!(s.bn_warning(237).is_none());
    }

    /// The default is Keras' 0.99 for runs long enough for it (the published 100
    /// epochs), else a momentum averaging over the last tenth of the run, which the
    /// warning does not fire for.
    #[test]
    fn default_momentum_fits_the_run() {
        assert_eq!(TrainSpec::default_bn_momentum(39_100), 0.99);
        assert_eq!(TrainSpec::default_bn_momentum(1_000), 0.99);
        assert_eq!(TrainSpec::default_bn_momentum(16), 0.375);
        assert_eq!(TrainSpec::default_bn_momentum(10), 0.0);
        assert!((TrainSpec::default_bn_momentum(200) - 0.95).abs() < 1e-12);
        for steps in [1, 2, 16, 100, 237, 298, 999] {
            let mut s = spec();
            s.bn_momentum = TrainSpec::default_bn_momentum(steps);
            assert!(s.bn_momentum < 0.99, "{steps}");
            assert!(
                s.bn_warning(steps.max(4)).is_none(),
                "{steps}: {}",
                s.bn_momentum
            );
        }
    }

    #[test]
    fn resume_may_only_add_epochs() {
        let a = spec();
        let mut b = a.clone();
        b.epochs = 150;
        assert!(a.resumable_as(&b));
        assert!(!b.resumable_as(&a));
        b.lr = 0.1;
        assert!(!a.resumable_as(&b));
    }

    #[test]
    fn names_parse_and_list_alternatives() {
        assert_eq!("sgd".parse::<OptimizerKind>().unwrap(), OptimizerKind::Sgd);
        assert_eq!("decoupled".parse::<WdMode>().unwrap(), WdMode::Decoupled);
        let err = "rmsprop".parse::<OptimizerKind>().unwrap_err();
        assert_eq!(err, "unknown optimizer 'rmsprop' (known: adam, adamw, sgd)");
    }

    #[test]
    fn json_round_trip() {
        let s = spec();
        let back: TrainSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(s, back);
    }
}
