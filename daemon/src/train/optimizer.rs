//! Optimizers with Keras' update rules, decoupled weight decay, and state that
//! checkpoints exactly.
//!
//! Adam follows `keras.optimizers.Adam`: epsilon is added to `sqrt(v)` *before* the
//! bias correction is folded into the step size (`alpha = lr * sqrt(1 - b2^t) /
//! (1 - b1^t)`), which differs slightly from PyTorch's placement. SGD follows
//! `keras.optimizers.SGD`: `m = momentum * m - lr * g`, then `w += m` (or `w +=
//! momentum * m - lr * g` with Nesterov). Decoupled weight decay is applied first,
//! as Keras does: `w -= lr * weight_decay * w`, on kernels only.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::spec::TrainSpec;
use crate::model::ops::adam::{adam_composed, adam_in_place, AdamStep};
use crate::model::ops::kernels;
use crate::model::{ParamStore, ParamVersion};
use vov_spec::{Optimizer as OptimizerKind, WdMode};

/// Keras' Adam defaults.
pub const BETA1: f64 = 0.9;
/// Keras' Adam defaults.
pub const BETA2: f64 = 0.999;
/// Keras' Adam epsilon (PyTorch uses 1e-8).
pub const EPSILON: f64 = 1e-7;

struct Slot {
    name: String,
    var: Var,
    decayed: bool,
    /// Adam's first moment, or SGD's velocity.
    m: Tensor,
    /// Adam's second moment (unused by SGD).
    v: Tensor,
}

/// An optimizer over a model's trainable parameters.
pub struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    decoupled: f64,
    slots: Vec<Slot>,
    step: u64,
    version: ParamVersion,
}

impl Optimizer {
    /// An optimizer for `params` configured by `spec`.
    pub fn new(params: &ParamStore, spec: &TrainSpec) -> Result<Self> {
        let slots = params
            .trainable()
            .into_iter()
            .map(|(name, var, kind)| {
                Ok(Slot {
                    name,
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    decayed: kind.decayed(),
                    var,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoupled = match spec.wd_mode() {
            WdMode::Decoupled => spec.weight_decay,
            WdMode::L2 => 0.0,
        };
        Ok(Optimizer {
            kind: spec.optimizer,
            lr: spec.lr,
            momentum: spec.momentum,
            nesterov: spec.nesterov,
            decoupled,
            slots,
            step: 0,
            version: params.version().clone(),
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update from `grads`; parameters without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let alpha = self.lr * (1.0 - BETA2.powi(t)).sqrt() / (1.0 - BETA1.powi(t));
        for slot in &mut self.slots {
            let Some(g) = grads.get(&slot.var) else {
                continue;
            };
            // Detached: optimizer arithmetic must not record a graph, or the moments
            // kept across steps would hold every step's forward graph alive.
            let g = &g.detach();
            let decay = (slot.decayed && self.decoupled > 0.0).then_some(self.lr * self.decoupled);
            let w = slot.var.as_tensor().detach();
            let next = match self.kind {
                OptimizerKind::Adam | OptimizerKind::Adamw => {
                    let step = AdamStep {
                        beta1: BETA1,
                        beta2: BETA2,
                        epsilon: EPSILON,
                        alpha,
                        decay,
                    };
                    if kernels::custom(g.device()) {
                        adam_in_place(slot.var.as_tensor(), g, &slot.m, &slot.v, step)?;
                        continue;
                    }
                    let [w, m, v] = adam_composed(&w, g, &slot.m, &slot.v, step)?;
                    (slot.m, slot.v) = (m, v);
                    w
                }
                OptimizerKind::Sgd => {
                    let w = match decay {
                        Some(d) => (&w - (&w * d)?)?,
                        None => w,
                    };
                    slot.m = ((&slot.m * self.momentum)? - (g * self.lr)?)?;
                    if self.nesterov {
                        ((w + (&slot.m * self.momentum)?)? - (g * self.lr)?)?
                    } else {
                        (w + &slot.m)?
                    }
                }
            };
            slot.var.set(&next)?;
        }
        self.version.bump();
        Ok(())
    }

    /// The optimizer's state tensors by name (`m/<param>`, `v/<param>`), for a
    /// checkpoint. The step count travels separately.
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for s in &self.slots {
            out.insert(format!("m/{}", s.name), s.m.copy()?);
            out.insert(format!("v/{}", s.name), s.v.copy()?);
        }
        Ok(out)
    }

    /// Restores state saved by [`Optimizer::state`] and the step count.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>, step: u64) -> Result<()> {
        for s in &mut self.slots {
            for (key, slot) in [
                (format!("m/{}", s.name), &mut s.m),
                (format!("v/{}", s.name), &mut s.v),
            ] {
                match state.get(&key) {
                    // A copy: the CPU update writes the moments in place.
                    Some(t) if t.dims() == slot.dims() => {
                        *slot = t.to_device(slot.device())?.copy()?
                    }
                    Some(t) => candle_core::bail!(
                        "optimizer state {key} has shape {:?}, expected {:?}",
                        t.dims(),
                        slot.dims()
                    ),
                    None => candle_core::bail!("checkpoint has no optimizer state {key}"),
                }
            }
        }
        self.step = step;
        Ok(())
    }
}

/// `weight_decay * sum(w^2)` over the decayed kernels: the L2 term Keras adds to
/// the loss.
pub fn l2_penalty(params: &ParamStore, weight_decay: f64) -> Result<Option<Tensor>> {
    if weight_decay <= 0.0 {
        return Ok(None);
    }
    let mut total: Option<Tensor> = None;
    for w in params.decayed() {
        let s = w.as_tensor().sqr()?.sum_all()?;
        total = Some(match total {
            Some(t) => (t + s)?,
            None => s,
        });
    }
    total.map(|t| t * weight_decay).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::ParamKind;
    use candle_core::Device;

    fn one_param(spec_mut: impl Fn(&mut TrainSpec)) -> (ParamStore, Var, Optimizer) {
        let store = ParamStore::new(Device::Cpu, 0);
        let w = store
            .root()
            .var(
                "w",
                &[1],
                ParamKind::Kernel {
                    fan_in: 1,
                    fan_out: 1,
                },
            )
            .unwrap();
        w.set(&Tensor::new(&[1.0f32], &Device::Cpu).unwrap())
            .unwrap();
        let mut spec = TrainSpec::published(vov_spec::Preset::DensenetKoshian2).unwrap();
        spec.lr = 0.1;
        spec_mut(&mut spec);
        let opt = Optimizer::new(&store, &spec).unwrap();
        (store, w, opt)
    }

    /// Step with a constant gradient of 2 on w (loss = 2w) and read w back.
    fn run(opt: &mut Optimizer, w: &Var, steps: usize) -> f32 {
        for _ in 0..steps {
            let loss = (w.as_tensor() * 2.0).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        w.as_tensor().to_vec1::<f32>().unwrap()[0]
    }

    /// Keras Adam, first step: m = 0.2, v = 0.004, alpha = 0.1 * sqrt(0.001) / 0.1,
    /// update = alpha * m / (sqrt(v) + 1e-7) = 0.1 * (1 - tiny).
    #[test]
    fn adam_first_step_matches_keras() {
        let (_, w, mut opt) = one_param(|_| {});
        let got = run(&mut opt, &w, 1);
        let alpha = 0.1 * (0.001f64).sqrt() / 0.1;
        let want = 1.0 - alpha * 0.2 / ((0.004f64).sqrt() + 1e-7);
        assert!((f64::from(got) - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn sgd_momentum_and_nesterov() {
        let (_, w, mut opt) = one_param(|s| {
            s.optimizer = OptimizerKind::Sgd;
            s.momentum = 0.9;
        });
        // m1 = -0.2, w = 0.8; m2 = -0.18 - 0.2 = -0.38, w = 0.42.
        assert!((run(&mut opt, &w, 2) - 0.42).abs() < 1e-6);
        let (_, w, mut opt) = one_param(|s| {
            s.optimizer = OptimizerKind::Sgd;
            s.momentum = 0.9;
            s.nesterov = true;
        });
        // m1 = -0.2; w = 1 + 0.9 * -0.2 - 0.2 = 0.62.
        assert!((run(&mut opt, &w, 1) - 0.62).abs() < 1e-6);
    }

    #[test]
    fn decoupled_decay_shrinks_kernels_first() {
        let (_, w, mut opt) = one_param(|s| {
            s.optimizer = OptimizerKind::Sgd;
            s.momentum = 0.0;
            s.weight_decay = 0.5;
            s.wd_mode = Some(WdMode::Decoupled);
        });
        // w = 1 - 0.1 * 0.5 * 1 = 0.95, then - 0.1 * 2 = 0.75.
        assert!((run(&mut opt, &w, 1) - 0.75).abs() < 1e-6);
    }

    #[test]
    fn l2_penalty_is_keras_l2() {
        let (store, _, _) = one_param(|_| {});
        let p = l2_penalty(&store, 0.01)
            .unwrap()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((p - 0.01).abs() < 1e-7);
        assert!(l2_penalty(&store, 0.0).unwrap().is_none());
    }

    #[test]
    fn state_round_trips() {
        let (store, w, mut opt) = one_param(|_| {});
        run(&mut opt, &w, 3);
        let state = opt.state().unwrap();
        let spec = TrainSpec::published(vov_spec::Preset::DensenetKoshian2).unwrap();
        let mut fresh = Optimizer::new(&store, &spec).unwrap();
        fresh.load_state(&state, opt.steps()).unwrap();
        assert_eq!(fresh.steps(), 3);
        assert_eq!(
            fresh.state().unwrap()["m/w"].to_vec1::<f32>().unwrap(),
            state["m/w"].to_vec1::<f32>().unwrap()
        );
        assert!(fresh.load_state(&BTreeMap::new(), 0).is_err());
    }
}
