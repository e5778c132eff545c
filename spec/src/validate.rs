//! Checking a whole spec: each key against its kind, knobs against the model's
//! family, and the keys against each other. Every error names the key and value.

use thiserror::Error;

use crate::keys::KEYS;
use crate::names::{Optimizer, WdMode};
use crate::trial::TrialSpec;

/// A key of a spec is out of range or inconsistent with another.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{key}: {reason}")]
pub struct SpecError {
    /// The key at fault, as named in specs and sweep files.
    pub key: String,
    /// What is wrong, with the value.
    pub reason: String,
}

impl SpecError {
    /// An error of `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl TrialSpec {
    /// Checks every key's range, the knobs against the model's family and the
    /// keys against each other.
    pub fn validate(&self) -> Result<(), SpecError> {
        for k in KEYS {
            let Some(v) = (k.get)(self) else { continue };
            if let Some(reason) = k.kind.check(&v) {
                return Err(SpecError::new(k.name, reason));
            }
        }
        let family = self.model.family();
        if let Some(knob) = self.knobs.foreign(family) {
            return Err(SpecError::new(
                knob,
                format!("does not apply to {family} models (model = {})", self.model),
            ));
        }
        if self.optimizer == Optimizer::Adamw
            && self.wd_mode() == WdMode::L2
            && self.weight_decay > 0.0
        {
            return Err(SpecError::new(
                "wd_mode",
                "l2: adamw decouples weight decay by definition; use decoupled or optimizer = adam",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Preset;

    #[test]
    fn each_bound_names_its_key() {
        type Mutation = Box<dyn Fn(&mut TrialSpec)>;
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
            (
                "val_limit",
                Box::new(|s| s.val_limit = Some(usize::MAX / 2)),
            ),
            ("growth_rate", Box::new(|s| s.knobs.growth_rate = Some(12))),
            (
                "wd_mode",
                Box::new(|s| {
                    s.optimizer = Optimizer::Adamw;
                    s.wd_mode = Some(WdMode::L2);
                    s.weight_decay = 1e-4;
                }),
            ),
        ];
        for (key, mutate) in cases {
            let mut s = TrialSpec::new(Preset::Vovnet27Slim);
            mutate(&mut s);
            let err = s.validate().unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
        let mut ok = TrialSpec::new(Preset::Vovnet27Slim);
        ok.optimizer = Optimizer::Adamw;
        ok.weight_decay = 1e-4;
        ok.validate().unwrap();
    }
}
