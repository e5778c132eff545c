//! The result record of one trial: the resolved spec and every published column,
//! with the hardware it was measured on.

use serde::{Deserialize, Serialize};

use super::metrics::EpochMetrics;
use super::spec::TrainSpec;
use super::timing::{Batch1Timing, BatchTiming};
use super::weights::WeightsInfo;
use crate::model::ParamCount;
use crate::runtime::fingerprint::Fingerprint;

/// Everything a finished training run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// The resolved spec.
    pub spec: TrainSpec,
    /// Model display name.
    pub model: String,
    /// Parameter counts (Keras convention and trainable only).
    pub params: ParamCount,
    /// Training and validation images used.
    pub train_images: usize,
    /// Validation images used.
    pub val_images: usize,
    /// Per-epoch history, from epoch 1 (a resumed run keeps the epochs before it).
    pub history: Vec<EpochMetrics>,
    /// Highest validation accuracy over all epochs, in [0, 1].
    pub max_val_acc: f64,
    /// Epoch (from 1) of the highest validation accuracy.
    pub max_val_acc_epoch: usize,
    /// Validation accuracy of the last epoch.
    pub final_val_acc: f64,
    /// Training accuracy of the last epoch.
    pub final_train_acc: f64,
    /// Wall seconds of the first epoch's training pass (slower: warm-up).
    pub first_epoch_s: f64,
    /// Train s/epoch with data in memory: median from epoch 2 of the training pass
    /// minus data waits; `None` for a one-epoch run.
    pub train_s_per_epoch: Option<f64>,
    /// Train s/epoch with the augmentation pipeline on the fly: median from epoch 2
    /// of the whole training pass.
    pub pipeline_s_per_epoch: Option<f64>,
    /// Median seconds per epoch spent waiting for data, from epoch 2.
    pub data_wait_s_per_epoch: Option<f64>,
    /// Training throughput from `train_s_per_epoch`.
    pub train_images_per_s: Option<f64>,
    /// Batch-1 inference over the validation set, if measured.
    pub batch1: Option<Batch1Timing>,
    /// Batch-32 inference over the validation set, if measured.
    pub batch32: Option<BatchTiming>,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Where it ran.
    pub fingerprint: Fingerprint,
    /// Epochs completed before this process started (0 unless resumed).
    pub resumed_from_epoch: usize,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// End time (RFC 3339, UTC).
    pub finished_at: String,
    /// Things the user should know (short run for its BN momentum, clamped limits).
    pub warnings: Vec<String>,
    /// vovd version.
    pub version: String,
    /// The weights kept on the host (the spec's `keep_weights`), if any.
    #[serde(default)]
    pub weights: Option<WeightsInfo>,
}
