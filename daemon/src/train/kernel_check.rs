//! The check behind `vovd check-kernels`: one seeded training run on the synthetic
//! set twice, with the custom CPU kernels and with candle's reference ops, compared
//! loss by loss. Both runs see the same data, initial weights and batch order, so
//! every difference comes from the kernels' arithmetic (summation order, f64
//! accumulators in the BatchNorm sums). Training amplifies such rounding
//! differences step after step, so a third run gives the scale to judge them by:
//! the reference ops again with the learning rate changed by one part in a
//! million, a perturbation of the size of rounding.

use serde::Serialize;

use super::{run_with_data, Measure, TrainEvent, TrainOptions, TrainSpec};
use crate::data::synthetic::{generate, SyntheticOptions};
use crate::model::ops::kernels::with_reference;
use crate::train::TrainError;
use vov_spec::{Augmentation, DatasetName, Preset, TrialSpec};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelCheck {
    /// Preset to train.
    pub model: Preset,
    /// Optimizer steps (one epoch of this many batches).
    pub steps: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Seed of the weights and the batch order.
    pub seed: u64,
}

/// Both loss curves and how far apart they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelComparison {
    /// Preset trained.
    pub model: Preset,
    /// Images per step.
    pub batch_size: usize,
    /// Loss after each step with the custom kernels.
    pub kernels: Vec<f64>,
    /// Loss after each step with candle's reference ops.
    pub reference: Vec<f64>,
    /// Loss after each step with the reference ops and the learning rate times
    /// (1 + 1e-6).
    pub control: Vec<f64>,
    /// Largest relative difference of `control` from `reference`.
    pub control_max_rel_diff: f64,
    /// Largest `|a - b| / |b|` over the steps.
    pub max_rel_diff: f64,
    /// The step (from 1) where it occurs.
    pub max_at_step: usize,
}

impl KernelComparison {
    /// The first step (from 1) where the kernels' loss differs from the
    /// reference by more than `tolerance`, relative.
    pub fn first_step_above(&self, tolerance: f64) -> Option<usize> {
        first_above(&self.kernels, &self.reference, tolerance)
    }

    /// The same for the control run.
    pub fn control_first_step_above(&self, tolerance: f64) -> Option<usize> {
        first_above(&self.control, &self.reference, tolerance)
    }
}

fn first_above(a: &[f64], b: &[f64], tolerance: f64) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(a, b)| rel_diff(*a, *b) > tolerance)
        .map(|i| i + 1)
}

/// (index, value) of the largest relative difference.
fn max_diff(a: &[f64], b: &[f64]) -> (usize, f64) {
    a.iter()
        .zip(b)
        .map(|(a, b)| rel_diff(*a, *b))
        .enumerate()
        .fold(
            (0, 0.0),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        )
}

fn rel_diff(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

impl KernelCheck {
    fn spec(&self) -> Result<TrainSpec, TrainError> {
        let mut t = TrialSpec::new(self.model);
        t.dataset = DatasetName::Synthetic;
        t.epochs = 1;
        t.batch_size = self.batch_size;
        t.augmentation = Augmentation::None;
        t.seed = self.seed;
        // Averages BatchNorm's moving statistics over the last tenth of the run.
        t.bn_momentum = (1.0 - 10.0 / self.steps as f64).max(0.0);
        t.train_limit = Some(self.steps * self.batch_size);
        t.val_limit = Some(self.batch_size);
        t.measure = Measure {
            batch1: false,
            batch32: false,
        };
        Ok(TrainSpec::resolve(t)?)
    }

    fn losses(&self, spec: &TrainSpec, threads: usize) -> Result<Vec<f64>, TrainError> {
        let data = generate(&SyntheticOptions::sized(spec.train_limit, spec.val_limit));
        let mut losses = Vec::with_capacity(self.steps);
        run_with_data(spec, data, &TrainOptions::cpu(threads), &mut |e| {
            if let TrainEvent::Step { loss, .. } = e {
                losses.push(*loss);
            }
        })?;
        Ok(losses)
    }

    /// Trains with the kernels, then with the reference ops, on this thread with
    /// `threads` compute threads (already configured).
    pub fn run(&self, threads: usize) -> Result<KernelComparison, TrainError> {
        let spec = self.spec()?;
        let kernels = self.losses(&spec, threads)?;
        let reference = with_reference(|| self.losses(&spec, threads))?;
        let mut perturbed = spec.clone();
        perturbed.lr = spec.lr * (1.0 + 1e-6);
        let control = with_reference(|| self.losses(&perturbed, threads))?;
        let (max_at, max_rel_diff) = max_diff(&kernels, &reference);
        Ok(KernelComparison {
            model: self.model,
            batch_size: self.batch_size,
            max_rel_diff,
            max_at_step: max_at + 1,
            control_max_rel_diff: max_diff(&control, &reference).1,
            kernels,
            reference,
            control,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_densenet_run_matches_the_reference_ops() {
        let check = KernelCheck {
            model: Preset::DensenetKoshian2,
            steps: 3,
            batch_size: 8,
            seed: 1,
        };
        let c = check.run(2).unwrap();
        assert_eq!(
            (c.kernels.len(), c.reference.len(), c.control.len()),
            (3, 3, 3)
        );
        // The Winograd F(4x4, 3x3) convolutions round about 7x more than a plain
        // dot product, and training amplifies it about 10x a step: step 3 differs
        // by 8e-4, the control (a one-in-a-million learning rate change) by 8e-5.
        assert_eq!(c.first_step_above(1e-3), None, "{c:?}");
        assert!((1..=3).contains(&c.max_at_step));
    }

    #[test]
    fn reports_the_first_step_past_the_tolerance() {
        let c = KernelComparison {
            model: Preset::Vovnet27Slim,
            batch_size: 1,
            kernels: vec![1.0, 2.0, 3.3],
            reference: vec![1.0, 2.1, 3.0],
            control: vec![1.0, 2.1, 3.01],
            max_rel_diff: 0.1,
            max_at_step: 3,
            control_max_rel_diff: 0.0033,
        };
        assert_eq!(c.first_step_above(0.01), Some(2));
        assert_eq!(c.control_first_step_above(0.001), Some(3));
        assert_eq!(max_diff(&c.kernels, &c.reference).0, 2);
        assert_eq!(c.first_step_above(0.5), None);
    }
}
