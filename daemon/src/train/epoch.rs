//! One epoch: the training pass (stoppable between batches, with a checkpoint at
//! the exact position on an interrupt) and the validation pass.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::checkpoint::EpochPosition;
use super::metrics::{EpochMetrics, Running};
use super::optimizer::l2_penalty;
use super::trainer::Run;
use super::{StopRequest, TrainError, TrainEvent};
use crate::data::loader::{batch_count, BatchStream, PassSpec};
use crate::data::{Batch, Split};
use crate::model::{InputShape, Model};
use vov_spec::WdMode;

impl Run<'_, '_> {
    /// Trains epoch `epoch` (0-based; from `at` when resuming inside it) and
    /// validates.
    pub(super) fn epoch(
        &mut self,
        train: &Arc<Split>,
        val: &Arc<Split>,
        epoch: usize,
        at: Option<EpochPosition>,
    ) -> Result<EpochMetrics, TrainError> {
        let steps = batch_count(train.len(), self.spec.batch_size);
        let (skip, prior_s, prior_wait, mut running) = at
            .map_or((0, 0.0, 0.0, Running::default()), |p| {
                (p.batches_done, p.elapsed_s, p.waited_s, p.running)
            });
        let pass = PassSpec {
            batch_size: self.spec.batch_size,
            shuffle: true,
            augmentation: self.spec.augmentation,
            seed: self.spec.seed,
            epoch,
            prefetch: 3,
            skip,
        };
        let start = Instant::now();
        let mut stream = BatchStream::spawn(train.clone(), self.shape, pass);
        while let Some(batch) = stream.next_batch() {
            match self.opts.stop.get() {
                StopRequest::None => {}
                StopRequest::Cancel => return Err(TrainError::Cancelled { epochs_done: epoch }),
                StopRequest::Interrupt => {
                    let position = EpochPosition {
                        epoch,
                        batches_done: batch.index,
                        running,
                        elapsed_s: prior_s + start.elapsed().as_secs_f64(),
                        waited_s: prior_wait + stream.waited().as_secs_f64(),
                    };
                    self.save_checkpoint(epoch, Some(position))?;
                    return Err(TrainError::Interrupted { epochs_done: epoch });
                }
            }
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
        let epoch_s = prior_s + start.elapsed().as_secs_f64();
        let data_wait_s = prior_wait + stream.waited().as_secs_f64();
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
        let (x, y) = batch_tensors(batch, self.shape, &self.opts.device)?;
        let logits = self.model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let objective = match self.spec.wd_mode() {
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

    /// The validation pass. Only a cancel stops it: an interrupt waits for this
    /// short pass and the epoch's checkpoint.
    fn evaluate(&self, val: &Arc<Split>, epoch: usize) -> Result<Running, TrainError> {
        let pass = Validation {
            model: &self.model,
            shape: self.shape,
            batch_size: self.spec.batch_size,
            device: &self.opts.device,
        };
        pass.run(val, &|| self.opts.stop.get() == StopRequest::Cancel)?
            .ok_or(TrainError::Cancelled { epochs_done: epoch })
    }
}

/// A validation pass of a model over a split: what every epoch ends with, and
/// what an evaluation of kept weights repeats (same batches, same kernels, so the
/// same accuracy).
pub struct Validation<'m> {
    /// The model, run in inference mode.
    pub model: &'m Model,
    /// The split's image shape.
    pub shape: InputShape,
    /// Images per batch (the trial's batch size).
    pub batch_size: usize,
    /// Where the model's parameters live.
    pub device: &'m Device,
}

impl Validation<'_> {
    /// Loss and accuracy over `val`, checking `cancelled` before each batch
    /// (`None` when it said so).
    pub fn run(
        &self,
        val: &Arc<Split>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Running>, TrainError> {
        let mut stream =
            BatchStream::spawn(val.clone(), self.shape, PassSpec::eval(self.batch_size));
        let mut running = Running::default();
        while let Some(batch) = stream.next_batch() {
            if cancelled() {
                return Ok(None);
            }
            let n = batch.len();
            let (x, y) = batch_tensors(batch, self.shape, self.device)?;
            let logits = self.model.forward_t(&x, false)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            running.add(
                f64::from(loss.to_scalar::<f32>()?),
                correct(&logits, &y)?,
                n,
            );
        }
        Ok(Some(running))
    }
}

/// A batch as image and label tensors on `device`.
fn batch_tensors(
    batch: Batch,
    s: InputShape,
    device: &Device,
) -> Result<(Tensor, Tensor), TrainError> {
    let n = batch.len();
    let x = Tensor::from_vec(batch.images, (n, s.channels, s.height, s.width), device)?;
    let y = Tensor::from_vec(batch.labels, n, device)?;
    Ok((x, y))
}

/// Number of rows of `logits` whose argmax equals the label in `y`.
fn correct(logits: &Tensor, y: &Tensor) -> Result<usize, TrainError> {
    let hits = logits.argmax(1)?.eq(y)?.to_dtype(DType::U32)?.sum_all()?;
    Ok(hits.to_scalar::<u32>()? as usize)
}
