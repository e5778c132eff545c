//! The resolved description of one training run: the trial as `vov-spec` defines
//! it, with its model resolved into a full architecture.
//!
//! A [`TrainSpec`] dereferences to its [`TrialSpec`], so `spec.epochs` reads the
//! trial's key; `spec.model` is the resolved [`ModelSpec`].

use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Serialize};
use vov_spec::{Preset, SpecError, TrialSpec};

use crate::model::{BnConfig, BuildOptions, InputShape, Model, ModelError, ModelSpec};

/// Share of the initial moving statistics a run may leave in place unwarned.
const BN_RESIDUE: f64 = 0.05;

/// Everything that determines a training run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "super::legacy::StoredSpec")]
pub struct TrainSpec {
    /// The trial.
    pub trial: TrialSpec,
    /// Its model, resolved (preset plus knobs).
    pub model: ModelSpec,
}

impl Deref for TrainSpec {
    type Target = TrialSpec;

    fn deref(&self) -> &TrialSpec {
        &self.trial
    }
}

impl DerefMut for TrainSpec {
    fn deref_mut(&mut self) -> &mut TrialSpec {
        &mut self.trial
    }
}

/// The momentum whose moving statistics average over about the last tenth of a run
/// of `steps` updates: 1 - 10/steps (an effective window of steps/10), at most
/// the default (Keras' 0.99) and at least 0.
fn short_run_bn_momentum(steps: usize) -> f64 {
    (1.0 - 10.0 / steps.max(1) as f64).clamp(0.0, TrialSpec::default().bn_momentum)
}

fn model_error(e: ModelError) -> SpecError {
    SpecError::new("model", e.to_string())
}

impl TrainSpec {
    /// A checked trial with its model resolved; errors name the key.
    pub fn resolve(trial: TrialSpec) -> Result<Self, SpecError> {
        trial.validate()?;
        let model = ModelSpec::resolve(trial.model, &trial.knobs).map_err(model_error)?;
        let spec = TrainSpec { trial, model };
        spec.validate()?;
        Ok(spec)
    }

    /// Its model for `input` images of `classes` classes on `device`, initialised
    /// from its seed with its BatchNorm momentum.
    pub fn build_model(
        &self,
        input: InputShape,
        classes: usize,
        device: &candle_core::Device,
    ) -> Result<Model, ModelError> {
        Model::build(
            &self.model,
            &BuildOptions {
                input,
                classes,
                bn: BnConfig {
                    momentum: self.bn_momentum,
                    ..BnConfig::default()
                },
                device: device.clone(),
                seed: self.seed,
            },
        )
    }

    /// The published protocol for `model` (see [`TrialSpec::new`]).
    pub fn published(model: Preset) -> Result<Self, SpecError> {
        TrainSpec::resolve(TrialSpec::new(model))
    }

    /// Checks every key and the resolved architecture on a 32x32 input.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.trial.validate()?;
        self.model.arch.validate(32).map_err(model_error)
    }

    /// A warning when the run is too short for its BatchNorm momentum: after `steps`
    /// updates the moving statistics still hold `momentum^steps` of their initial
    /// values (mean 0, variance 1), and evaluation uses them.
    pub fn bn_warning(&self, steps: usize) -> Option<String> {
        let residue = self.bn_momentum.powf(steps as f64);
        (residue > BN_RESIDUE).then(|| {
            format!(
                "bn_momentum {} over {steps} training steps leaves {:.0}% of BatchNorm's initial \
                 moving statistics in place: validation accuracy may sit near chance while \
                 training accuracy climbs; for a run this short use bn_momentum <= {:.2}",
                self.bn_momentum,
                residue * 100.0,
                short_run_bn_momentum(steps)
            )
        })
    }

    /// What a resume compares: the trial without what a resume may change (its
    /// epochs, timings, device and kept weights) and with the weight decay mode
    /// resolved, and the model.
    fn resume_key(&self) -> (TrialSpec, &ModelSpec) {
        let defaults = TrialSpec::default();
        let mut t = self.trial.clone();
        t.epochs = 0;
        t.measure = defaults.measure;
        t.knobs = defaults.knobs;
        t.device = defaults.device;
        t.keep_weights = defaults.keep_weights;
        t.wd_mode = Some(self.trial.wd_mode());
        (t, &self.model)
    }

    /// Whether `other` describes the same run except for a larger epoch count (what
    /// a resume may change).
    pub fn resumable_as(&self, other: &TrainSpec) -> bool {
        self.resume_key() == other.resume_key() && other.epochs >= self.epochs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vov_spec::{Optimizer, WdMode};

    fn spec() -> TrainSpec {
        TrainSpec::published(Preset::DensenetKoshian2).unwrap()
    }

    #[test]
    fn published_protocol_is_valid() {
        spec().validate().unwrap();
    }

    #[test]
    fn architecture_errors_name_the_model() {
        let mut t = TrialSpec::new(Preset::Vovnet27Slim);
        t.knobs.stage_widths = Some(vec![8, 8, 8, 8, 8]);
        let err = TrainSpec::resolve(t).unwrap_err();
        assert_eq!(err.key, "model", "{err}");
        assert!(err.reason.contains("stage_outputs"), "{err}");
    }

    #[test]
    fn warns_when_momentum_outlasts_the_run() {
        let mut s = spec();
        let w = s.bn_warning(237).unwrap();
        assert!(
            w.contains("bn_momentum 0.99 over 237") && w.contains("<= 0.96"),
            "{w}"
        );
        assert!(s.bn_warning(39_100).is_none());
        s.bn_momentum = 0.9;
        assert!(s.bn_warning(237).is_none());
    }

    #[test]
    fn resume_may_only_add_epochs() {
        let a = spec();
        let mut b = a.clone();
        b.epochs = 150;
        assert!(a.resumable_as(&b));
        assert!(!b.resumable_as(&a));
        let mut c = b.clone();
        c.wd_mode = Some(WdMode::L2);
        assert!(
            a.resumable_as(&c),
            "an explicit default mode is the same run"
        );
        c.lr = 0.1;
        assert!(!a.resumable_as(&c));
        let mut d = b.clone();
        d.optimizer = Optimizer::Sgd;
        assert!(!a.resumable_as(&d));
    }

    #[test]
    fn json_round_trip() {
        let s = spec();
        let back: TrainSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(s, back);
    }
}
