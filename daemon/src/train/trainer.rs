//! A training run from start to record: build, resume, epochs, checkpoints,
//! timings. The per-epoch work is in `epoch.rs`.

use std::sync::Arc;
use std::time::SystemTime;

use super::checkpoint::{self, CheckpointMeta, EpochPosition};
use super::metrics::{best_val, median, EpochMetrics};
use super::optimizer::Optimizer;
use super::record::TrainRecord;
use super::spec::TrainSpec;
use super::timing;
use super::weights::{self, WeightsInfo, WeightsMeta};
use super::{StopRequest, TrainError, TrainEvent, TrainOptions};
use crate::data::loader::batch_count;
use crate::data::{self, Dataset, LoadOptions, Split};
use crate::model::{InputShape, Model};
use crate::runtime::{fingerprint::Fingerprint, memory};
use vov_spec::KeepWeights;

/// Observer of a run's progress.
pub type Observer<'a> = &'a mut dyn FnMut(&TrainEvent);

/// Loads the spec's data set under `opts.data_dir` and trains.
pub fn run(
    spec: &TrainSpec,
    opts: &TrainOptions,
    observer: Observer<'_>,
) -> Result<TrainRecord, TrainError> {
    spec.validate()?;
    let data = data::load(
        spec.dataset,
        &LoadOptions {
            root: opts.data_dir.clone(),
            train_limit: spec.train_limit,
            val_limit: spec.val_limit,
        },
    )?;
    run_with_data(spec, data, opts, observer)
}

/// Trains on an already loaded data set.
pub fn run_with_data(
    spec: &TrainSpec,
    data: Dataset,
    opts: &TrainOptions,
    observer: Observer<'_>,
) -> Result<TrainRecord, TrainError> {
    spec.validate()?;
    let started = SystemTime::now();
    let model = spec.build_model(data.shape, data.classes, &opts.device)?;
    let mut run = Run {
        spec,
        opts,
        shape: data.shape,
        classes: data.classes,
        optimizer: Optimizer::new(model.params(), spec)?,
        model,
        history: Vec::new(),
        observer,
    };
    let (resumed_from_epoch, mut position) = run.resume()?;
    let pause_at = opts.stop_after.filter(|&n| n < spec.epochs);
    if pause_at.is_some_and(|n| resumed_from_epoch >= n) {
        return Err(TrainError::Paused {
            epochs_done: resumed_from_epoch,
        });
    }
    let warnings = run.warnings(&data);
    let (train, val) = (Arc::new(data.train), Arc::new(data.val));
    (run.observer)(&TrainEvent::Started {
        epochs: spec.epochs,
        start_epoch: resumed_from_epoch,
        steps_per_epoch: batch_count(train.len(), spec.batch_size),
        params: run.model.params().count(),
        train_images: train.len(),
        val_images: val.len(),
    });
    for epoch in resumed_from_epoch..spec.epochs {
        let at = position.take().filter(|p| p.epoch == epoch);
        let metrics = run.epoch(&train, &val, epoch, at)?;
        tracing::info!(
            epoch = metrics.epoch,
            train.loss = metrics.train_loss,
            train.acc = metrics.train_acc,
            val.loss = metrics.val_loss,
            val.acc = metrics.val_acc,
            epoch.s = metrics.epoch_s,
            data_wait.s = metrics.data_wait_s,
            "epoch done"
        );
        run.history.push(metrics.clone());
        run.keep_weights()?;
        (run.observer)(&TrainEvent::Epoch(metrics));
        let pause = pause_at == Some(epoch + 1);
        if pause || run.checkpoint_due(epoch + 1) {
            run.save_checkpoint(epoch + 1, None)?;
        }
        if pause {
            return Err(TrainError::Paused {
                epochs_done: epoch + 1,
            });
        }
    }
    let (batch1, batch32) = run.timings(&val)?;
    let weights = run.kept_weights()?;
    Ok(run.record(RecordInputs {
        weights,
        train_images: train.len(),
        val_images: val.len(),
        resumed_from_epoch,
        started,
        warnings,
        batch1,
        batch32,
    }))
}

/// The state of one run.
pub(super) struct Run<'a, 'o> {
    pub(super) spec: &'a TrainSpec,
    pub(super) opts: &'a TrainOptions,
    pub(super) shape: InputShape,
    pub(super) classes: usize,
    pub(super) model: Model,
    pub(super) optimizer: Optimizer,
    pub(super) history: Vec<EpochMetrics>,
    pub(super) observer: Observer<'o>,
}

struct RecordInputs {
    train_images: usize,
    val_images: usize,
    resumed_from_epoch: usize,
    started: SystemTime,
    warnings: Vec<String>,
    batch1: Option<timing::Batch1Timing>,
    batch32: Option<timing::BatchTiming>,
    weights: Option<WeightsInfo>,
}

impl Run<'_, '_> {
    /// Restores a checkpoint when asked; returns the epochs already done and the
    /// position inside the next one when the checkpoint was written mid-epoch.
    fn resume(&mut self) -> Result<(usize, Option<EpochPosition>), TrainError> {
        let Some(path) = &self.opts.resume else {
            return Ok((0, None));
        };
        let path = checkpoint::resolve(path);
        let ck = checkpoint::load(&path, &self.opts.device)?;
        let bad = |reason: String| checkpoint::unusable(&path, reason);
        if !ck.meta.spec.resumable_as(self.spec) {
            return Err(bad(
                "it was written by a different spec (only epochs may grow on resume)".into(),
            ));
        }
        self.model
            .params()
            .load(&ck.params)
            .map_err(|e| bad(e.to_string()))?;
        self.optimizer
            .load_state(&ck.optimizer, ck.meta.step)
            .map_err(|e| bad(e.to_string()))?;
        self.history = ck.meta.history;
        tracing::info!(checkpoint = %path.display(), epochs_done = ck.meta.epochs_done, "resumed");
        Ok((ck.meta.epochs_done, ck.meta.position))
    }

    fn warnings(&mut self, data: &Dataset) -> Vec<String> {
        let steps = self.spec.epochs * batch_count(data.train.len(), self.spec.batch_size);
        let mut out = Vec::new();
        if let Some(w) = self.spec.bn_warning(steps) {
            out.push(w);
        }
        if let Some(n) = self.spec.train_limit.filter(|&n| n > data.train.len()) {
            out.push(format!(
                "train_limit {n} is more than the {} training images available; using all",
                data.train.len()
            ));
        }
        if let Some(n) = self.spec.val_limit.filter(|&n| n > data.val.len()) {
            out.push(format!(
                "val_limit {n} is more than the {} validation images available; using all",
                data.val.len()
            ));
        }
        for message in &out {
            tracing::warn!("{message}");
            (self.observer)(&TrainEvent::Warning {
                message: message.clone(),
            });
        }
        out
    }

    fn checkpoint_due(&self, epochs_done: usize) -> bool {
        let every = self.opts.checkpoint_every;
        epochs_done == self.spec.epochs || (every > 0 && epochs_done.is_multiple_of(every))
    }

    /// Writes a checkpoint after `epochs_done` epochs (and `position` inside the
    /// next one), when checkpoints are on.
    pub(super) fn save_checkpoint(
        &mut self,
        epochs_done: usize,
        position: Option<EpochPosition>,
    ) -> Result<(), TrainError> {
        let Some(dir) = &self.opts.checkpoint_dir else {
            return Ok(());
        };
        let path = dir.join(checkpoint::FILE_NAME);
        let meta = CheckpointMeta {
            format: 1,
            spec: self.spec.clone(),
            epochs_done,
            step: self.optimizer.steps(),
            history: self.history.clone(),
            position,
        };
        checkpoint::save(
            &path,
            &meta,
            &self.model.params().tensors()?,
            &self.optimizer.state()?,
        )?;
        (self.observer)(&TrainEvent::Checkpoint {
            epoch: epochs_done,
            path,
        });
        Ok(())
    }

    /// Writes the weights the spec keeps when the epoch just finished calls for it.
    fn keep_weights(&self) -> Result<(), TrainError> {
        let (Some(path), Some(last)) = (&self.opts.weights_file, self.history.last()) else {
            return Ok(());
        };
        let kept = self.spec.trial.keep_weights;
        if !weights::due(kept, &self.history, self.spec.epochs) {
            return Ok(());
        }
        let meta = WeightsMeta {
            format: weights::FORMAT,
            kept,
            epoch: last.epoch,
            val_acc: last.val_acc,
            spec: self.spec.clone(),
            params: self.model.params().count(),
            input: self.shape,
            classes: self.classes,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        weights::save(path, &meta, &self.model.params().tensors()?)
    }

    /// The listing of the weights this run kept, if it keeps any.
    fn kept_weights(&self) -> Result<Option<WeightsInfo>, TrainError> {
        match &self.opts.weights_file {
            Some(path) if self.spec.trial.keep_weights != KeepWeights::None => weights::info(path),
            _ => Ok(None),
        }
    }

    /// Stops before an inference timing when asked; the checkpoint after the last
    /// epoch lets a resumed run go straight to the timings.
    fn timing_gate(&self, phase: &str) -> Result<(), TrainError> {
        let epochs_done = self.spec.epochs;
        match self.opts.stop.get() {
            StopRequest::None => {
                tracing::debug!(phase, "timing");
                Ok(())
            }
            StopRequest::Cancel => Err(TrainError::Cancelled { epochs_done }),
            StopRequest::Interrupt => Err(TrainError::Interrupted { epochs_done }),
        }
    }

    fn timings(
        &mut self,
        val: &Split,
    ) -> Result<(Option<timing::Batch1Timing>, Option<timing::BatchTiming>), TrainError> {
        let measure = self.spec.measure;
        if !(measure.batch1 || measure.batch32) || val.is_empty() {
            return Ok((None, None));
        }
        let images = timing::prepare(val, self.shape);
        let device = &self.opts.device;
        let mut batch1 = None;
        if measure.batch1 {
            self.timing_gate("batch1")?;
            (self.observer)(&TrainEvent::Timing {
                phase: "batch1".into(),
            });
            batch1 = Some(timing::batch1(&self.model, &images, self.shape, device)?);
        }
        let mut batch32 = None;
        if measure.batch32 {
            self.timing_gate("batch32")?;
            (self.observer)(&TrainEvent::Timing {
                phase: "batch32".into(),
            });
            batch32 = Some(timing::batched(
                &self.model,
                &images,
                self.shape,
                32,
                device,
            )?);
        }
        Ok((batch1, batch32))
    }

    fn record(self, inputs: RecordInputs) -> TrainRecord {
        let later: Vec<&EpochMetrics> = self.history.iter().skip(1).collect();
        let med =
            |f: fn(&EpochMetrics) -> f64| median(&later.iter().map(|m| f(m)).collect::<Vec<_>>());
        let train_s_per_epoch = med(EpochMetrics::compute_s);
        let (max_val_acc, max_val_acc_epoch) = best_val(&self.history).unwrap_or((0.0, 0));
        let last = self.history.last();
        TrainRecord {
            spec: self.spec.clone(),
            model: self.spec.model.name.clone(),
            params: self.model.params().count(),
            train_images: inputs.train_images,
            val_images: inputs.val_images,
            max_val_acc,
            max_val_acc_epoch,
            final_val_acc: last.map_or(0.0, |m| m.val_acc),
            final_train_acc: last.map_or(0.0, |m| m.train_acc),
            first_epoch_s: self.history.first().map_or(0.0, |m| m.epoch_s),
            train_s_per_epoch,
            pipeline_s_per_epoch: med(|m| m.epoch_s),
            data_wait_s_per_epoch: med(|m| m.data_wait_s),
            train_images_per_s: train_s_per_epoch
                .filter(|&s| s > 0.0)
                .map(|s| inputs.train_images as f64 / s),
            batch1: inputs.batch1,
            batch32: inputs.batch32,
            peak_rss_bytes: memory::peak_rss_bytes(),
            fingerprint: Fingerprint::detect(
                &self.opts.device_label,
                self.opts.device_name.as_deref(),
                self.opts.threads,
            ),
            resumed_from_epoch: inputs.resumed_from_epoch,
            started_at: humantime::format_rfc3339_millis(inputs.started).to_string(),
            finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            warnings: inputs.warnings,
            version: env!("CARGO_PKG_VERSION").to_string(),
            history: self.history,
            weights: inputs.weights,
        }
    }
}
