//! The training loop.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use candle_core::{DType, Tensor};

use super::checkpoint::{self, CheckpointMeta};
use super::metrics::{best_val, median, EpochMetrics, Running};
use super::optimizer::{l2_penalty, Optimizer};
use super::record::TrainRecord;
use super::spec::{TrainSpec, WdMode};
use super::timing;
use super::{StopRequest, TrainError, TrainEvent, TrainOptions};
use crate::data::loader::{batch_count, BatchStream, PassSpec};
use crate::data::{self, Batch, Dataset, LoadOptions, Split};
use crate::model::{BnConfig, BuildOptions, InputShape, Model};
use crate::runtime::{fingerprint::Fingerprint, memory};

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
    let model = Model::build(
        &spec.model,
        &BuildOptions {
            input: data.shape,
            classes: data.classes,
            bn: BnConfig {
                momentum: spec.bn_momentum,
                ..BnConfig::default()
            },
            device: opts.device.clone(),
            seed: spec.seed,
        },
    )?;
    let mut run = Run {
        spec,
        opts,
        shape: data.shape,
        optimizer: Optimizer::new(model.params(), spec)?,
        model,
        history: Vec::new(),
        observer,
    };
    let resumed_from_epoch = run.resume()?;
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
        let metrics = run.epoch(&train, &val, epoch)?;
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
        (run.observer)(&TrainEvent::Epoch(metrics));
        run.maybe_checkpoint(epoch + 1)?;
    }
    let (batch1, batch32) = run.timings(&val)?;
    Ok(run.record(RecordInputs {
        train_images: train.len(),
        val_images: val.len(),
        resumed_from_epoch,
        started,
        warnings,
        batch1,
        batch32,
    }))
}

struct Run<'a, 'o> {
    spec: &'a TrainSpec,
    opts: &'a TrainOptions,
    shape: InputShape,
    model: Model,
    optimizer: Optimizer,
    history: Vec<EpochMetrics>,
    observer: Observer<'o>,
}

struct RecordInputs {
    train_images: usize,
    val_images: usize,
    resumed_from_epoch: usize,
    started: SystemTime,
    warnings: Vec<String>,
    batch1: Option<timing::Batch1Timing>,
    batch32: Option<timing::BatchTiming>,
}

impl Run<'_, '_> {
    fn stop_check(&self, epochs_done: usize) -> Result<(), TrainError> {
        match self.opts.stop.get() {
            StopRequest::None => Ok(()),
            StopRequest::Cancel => Err(TrainError::Cancelled { epochs_done }),
            StopRequest::Interrupt => Err(TrainError::Interrupted { epochs_done }),
        }
    }

    /// Restores a checkpoint when asked; returns the epochs already done.
    fn resume(&mut self) -> Result<usize, TrainError> {
        let Some(path) = &self.opts.resume else {
            return Ok(0);
        };
        let path = checkpoint::resolve(path);
        let ck = checkpoint::load(&path, &self.opts.device)?;
        let bad = |reason: String| TrainError::Checkpoint {
            path: path.clone(),
            reason,
        };
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
        Ok(ck.meta.epochs_done)
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

    fn batch_tensors(&self, batch: Batch) -> Result<(Tensor, Tensor), TrainError> {
        let n = batch.len();
        let s = self.shape;
        let x = Tensor::from_vec(
            batch.images,
            (n, s.channels, s.height, s.width),
            &self.opts.device,
        )?;
        let y = Tensor::from_vec(batch.labels, n, &self.opts.device)?;
        Ok((x, y))
    }

    fn epoch(
        &mut self,
        train: &Arc<Split>,
        val: &Arc<Split>,
        epoch: usize,
    ) -> Result<EpochMetrics, TrainError> {
        let steps = batch_count(train.len(), self.spec.batch_size);
        let pass = PassSpec {
            batch_size: self.spec.batch_size,
            shuffle: true,
            augmentation: self.spec.augmentation,
            seed: self.spec.seed,
            epoch,
            prefetch: 3,
        };
        let start = Instant::now();
        let mut stream = BatchStream::spawn(train.clone(), self.shape, pass);
        let mut running = Running::default();
        while let Some(batch) = stream.next_batch() {
            self.stop_check(epoch)?;
            let step = batch.index + 1;
            let n = batch.len();
            let (loss, correct) = self.train_step(batch)?;
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    step,
                    loss,
                });
            }
            running.add(loss, correct, n);
            tracing::debug!(epoch = epoch + 1, step, loss, "step");
            (self.observer)(&TrainEvent::Step {
                epoch: epoch + 1,
                step,
                steps,
                loss,
            });
        }
        self.opts.device.synchronize()?;
        let epoch_s = start.elapsed().as_secs_f64();
        let data_wait_s = stream.waited().as_secs_f64();
        drop(stream);
        let val_start = Instant::now();
        let val_metrics = self.evaluate(val, epoch)?;
        Ok(EpochMetrics {
            epoch: epoch + 1,
            train_loss: running.loss(),
            train_acc: running.acc(),
            val_loss: val_metrics.loss(),
            val_acc: val_metrics.acc(),
            epoch_s,
            data_wait_s,
            val_s: val_start.elapsed().as_secs_f64(),
            steps,
        })
    }

    /// One optimizer step; returns the batch's mean loss and correct predictions.
    fn train_step(&mut self, batch: Batch) -> Result<(f64, usize), TrainError> {
        let (x, y) = self.batch_tensors(batch)?;
        let logits = self.model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let objective = match self.spec.wd_mode {
            WdMode::L2 => match l2_penalty(self.model.params(), self.spec.weight_decay)? {
                Some(penalty) => (&loss + penalty)?,
                None => loss.clone(),
            },
            WdMode::Decoupled => loss.clone(),
        };
        let grads = objective.backward()?;
        self.optimizer.step(&grads)?;
        Ok((f64::from(loss.to_scalar::<f32>()?), correct(&logits, &y)?))
    }

    fn evaluate(&self, val: &Arc<Split>, epoch: usize) -> Result<Running, TrainError> {
        let mut stream = BatchStream::spawn(
            val.clone(),
            self.shape,
            PassSpec::eval(self.spec.batch_size),
        );
        let mut running = Running::default();
        while let Some(batch) = stream.next_batch() {
            self.stop_check(epoch)?;
            let n = batch.len();
            let (x, y) = self.batch_tensors(batch)?;
            let logits = self.model.forward_t(&x, false)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            running.add(
                f64::from(loss.to_scalar::<f32>()?),
                correct(&logits, &y)?,
                n,
            );
        }
        Ok(running)
    }

    fn checkpoint_path(&self) -> Option<std::path::PathBuf> {
        self.opts
            .checkpoint_dir
            .as_ref()
            .map(|d| d.join(checkpoint::FILE_NAME))
    }

    fn maybe_checkpoint(&mut self, epochs_done: usize) -> Result<(), TrainError> {
        let Some(path) = self.checkpoint_path() else {
            return Ok(());
        };
        let every = self.opts.checkpoint_every;
        let due = epochs_done == self.spec.epochs || (every > 0 && epochs_done % every == 0);
        if !due {
            return Ok(());
        }
        let meta = CheckpointMeta {
            format: 1,
            spec: self.spec.clone(),
            epochs_done,
            step: self.optimizer.steps(),
            history: self.history.clone(),
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
            self.stop_check(self.spec.epochs)?;
            (self.observer)(&TrainEvent::Timing {
                phase: "batch1".into(),
            });
            batch1 = Some(timing::batch1(&self.model, &images, self.shape, device)?);
        }
        let mut batch32 = None;
        if measure.batch32 {
            self.stop_check(self.spec.epochs)?;
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
        }
    }
}

/// Number of rows of `logits` whose argmax equals the label in `y`.
fn correct(logits: &Tensor, y: &Tensor) -> Result<usize, TrainError> {
    let hits = logits.argmax(1)?.eq(y)?.to_dtype(DType::U32)?.sum_all()?;
    Ok(hits.to_scalar::<u32>()? as usize)
}
