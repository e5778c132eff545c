//! Per-epoch metrics and the small statistics the published columns need.

use serde::{Deserialize, Serialize};

/// What one epoch produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch's batches (weighted by batch size;
    /// Keras' running figure, BatchNorm in training mode).
    pub train_loss: f64,
    /// Training accuracy over the epoch, in [0, 1].
    pub train_acc: f64,
    /// Validation cross-entropy (BatchNorm on moving statistics).
    pub val_loss: f64,
    /// Validation accuracy, in [0, 1].
    pub val_acc: f64,
    /// Wall seconds of the training pass, input pipeline included.
    pub epoch_s: f64,
    /// Seconds of `epoch_s` the trainer spent waiting for the loader.
    pub data_wait_s: f64,
    /// Wall seconds of the validation pass.
    pub val_s: f64,
    /// Optimizer steps in the epoch.
    pub steps: usize,
}

impl EpochMetrics {
    /// Training seconds with the data already in memory: the wall time minus the
    /// time spent waiting for the input pipeline.
    pub fn compute_s(&self) -> f64 {
        (self.epoch_s - self.data_wait_s).max(0.0)
    }
}

/// Running sums of loss and accuracy over batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Running {
    loss_sum: f64,
    correct: usize,
    seen: usize,
}

impl Running {
    /// Adds a batch of `n` images with mean loss `loss` and `correct` hits.
    pub fn add(&mut self, loss: f64, correct: usize, n: usize) {
        self.loss_sum += loss * n as f64;
        self.correct += correct;
        self.seen += n;
    }

    /// Mean loss so far.
    pub fn loss(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.loss_sum / self.seen as f64
        }
    }

    /// Accuracy so far.
    pub fn acc(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.correct as f64 / self.seen as f64
        }
    }
}

/// Median of `xs` (mean of the middle two for an even count); `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Nearest-rank percentile `p` (0-100) of sorted `xs`; `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Highest validation accuracy and its epoch (the first, on ties).
pub fn best_val(history: &[EpochMetrics]) -> Option<(f64, usize)> {
    history.iter().fold(None, |best, m| match best {
        Some((acc, _)) if acc >= m.val_acc => best,
        _ => Some((m.val_acc, m.epoch)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50.0));
        assert_eq!(percentile(&sorted, 99.0), Some(99.0));
        assert_eq!(percentile(&sorted, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
    }

    #[test]
    fn running_is_weighted_by_batch_size() {
        let mut r = Running::default();
        r.add(1.0, 2, 4);
        r.add(4.0, 1, 1);
        assert!((r.loss() - 1.6).abs() < 1e-12);
        assert!((r.acc() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn best_val_keeps_first_maximum() {
        let m = |epoch, val_acc| EpochMetrics {
            epoch,
            train_loss: 0.0,
            train_acc: 0.0,
            val_loss: 0.0,
            val_acc,
            epoch_s: 2.0,
            data_wait_s: 0.5,
            val_s: 0.0,
            steps: 1,
        };
        let h = [m(1, 0.5), m(2, 0.7), m(3, 0.7), m(4, 0.6)];
        assert_eq!(best_val(&h), Some((0.7, 2)));
        assert_eq!(h[0].compute_s(), 1.5);
        assert_eq!(best_val(&[]), None);
    }
}
