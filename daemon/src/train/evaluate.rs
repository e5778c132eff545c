//! Evaluating kept weights: the model rebuilt from the weights file's own spec,
//! its parameters loaded, then the validation pass every epoch ends with (same
//! batches, same kernels: the same accuracy as the epoch the weights are from)
//! and the published timings, on this host's hardware.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use serde::{Deserialize, Serialize};
use vov_spec::{DatasetName, Measure};

use super::epoch::Validation;
use super::error::TrainError;
use super::timing::{self, Batch1Timing, BatchTiming};
use super::weights::{self, WeightsInfo, WeightsMeta};
use crate::data::{self, LoadOptions};
use crate::model::ParamCount;
use crate::runtime::fingerprint::Fingerprint;
use crate::runtime::memory;

fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// What to evaluate kept weights on, and how.
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    /// The data set; the one they were trained on when `None`.
    pub dataset: Option<DatasetName>,
    /// Data root.
    pub data_dir: Option<PathBuf>,
    /// First N validation images; the trial's own limit when `None`.
    pub val_limit: Option<usize>,
    /// Take the validation accuracy.
    pub accuracy: bool,
    /// Timings to take.
    pub measure: Measure,
    /// Compute device.
    pub device: Device,
    /// Device label for the fingerprint (`cpu`, `cuda:0`).
    pub device_label: String,
    /// Compute threads (already configured in this process).
    pub threads: usize,
}

/// What an evaluation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// Model display name.
    pub model: String,
    /// Parameter counts.
    pub params: ParamCount,
    /// The data set evaluated on.
    pub dataset: DatasetName,
    /// Validation images.
    pub val_images: usize,
    /// Validation accuracy, if taken.
    pub val_acc: Option<f64>,
    /// Validation loss, if taken.
    pub val_loss: Option<f64>,
    /// Batch-1 inference over the validation set, if measured.
    pub batch1: Option<Batch1Timing>,
    /// Batch-32 inference over the validation set, if measured.
    pub batch32: Option<BatchTiming>,
    /// Where it ran.
    pub fingerprint: Fingerprint,
    /// The weights' own record: which, from which epoch, trained where.
    pub weights: WeightsMeta,
    /// The weights file as a result lists it: which, size and SHA-256.
    pub file: WeightsInfo,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// End time (RFC 3339, UTC).
    pub finished_at: String,
    /// vovd version.
    pub version: String,
}

fn mismatch(path: &Path, theirs: String, data: String) -> TrainError {
    TrainError::Weights {
        path: path.to_path_buf(),
        reason: format!("the weights are for {theirs}, the data set has {data}"),
    }
}

/// Evaluates the weights at `path`.
pub fn run(path: &Path, opts: &EvaluateOptions) -> Result<EvaluationRecord, TrainError> {
    let started = std::time::SystemTime::now();
    let (w, file) = weights::load(path, &opts.device)?;
    let spec = &w.meta.spec;
    let dataset = opts.dataset.unwrap_or(spec.dataset);
    let data = data::load(
        dataset,
        &LoadOptions {
            root: opts.data_dir.clone(),
            train_limit: spec.train_limit,
            val_limit: opts.val_limit.or(spec.val_limit),
        },
    )?;
    if data.shape != w.meta.input {
        let show =
            |s: crate::model::InputShape| format!("{}x{}x{} images", s.channels, s.height, s.width);
        return Err(mismatch(path, show(w.meta.input), show(data.shape)));
    }
    if data.classes != w.meta.classes {
        let n = |c: usize| format!("{c} classes");
        return Err(mismatch(path, n(w.meta.classes), n(data.classes)));
    }
    let model = spec.build_model(data.shape, data.classes, &opts.device)?;
    model
        .params()
        .load(&w.params)
        .map_err(|e| TrainError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let val = Arc::new(data.val);
    let running = if opts.accuracy {
        let pass = Validation {
            model: &model,
            shape: data.shape,
            batch_size: spec.batch_size,
            device: &opts.device,
        };
        // Nothing cancels it.
        pass.run(&val, &|| false)?
    } else {
        None
    };
    let images = timing::prepare(&val, data.shape);
    let batch1 = opts
        .measure
        .batch1
        .then(|| timing::batch1(&model, &images, data.shape, &opts.device))
        .transpose()?;
    let batch32 = opts
        .measure
        .batch32
        .then(|| timing::batched(&model, &images, data.shape, 32, &opts.device))
        .transpose()?;
    Ok(EvaluationRecord {
        model: spec.model.name.clone(),
        params: model.params().count(),
        dataset,
        val_images: val.len(),
        val_acc: running.map(|r| r.acc()),
        val_loss: running.map(|r| r.loss()),
        batch1,
        batch32,
        fingerprint: Fingerprint::detect(&opts.device_label, None, opts.threads),
        weights: w.meta,
        file,
        peak_rss_bytes: memory::peak_rss_bytes(),
        started_at: rfc3339(started),
        finished_at: rfc3339(std::time::SystemTime::now()),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}
