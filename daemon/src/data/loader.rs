//! The input pipeline: a loader thread that shuffles, augments and converts the
//! next batches while the model trains on the current one.
//!
//! The order of an epoch and the augmentation of each batch come from their own
//! seeded streams (seed, epoch[, batch]), so an epoch is the same whether it runs
//! straight through or after a resume, and whatever the thread timing. The trainer
//! measures how long it waited for the loader: the input pipeline's cost.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::augment::{self, apply};
use super::Augmentation;
use super::Split;
use crate::model::InputShape;
use crate::runtime::seed;

/// One batch, ready for the model.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Position of the batch in its epoch.
    pub index: usize,
    /// Images as f32 in [0, 1], N x C x H x W.
    pub images: Vec<f32>,
    /// Labels.
    pub labels: Vec<u32>,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty (never produced by the loader).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// How one pass over a split is fed.
#[derive(Debug, Clone, Copy)]
pub struct PassSpec {
    /// Images per batch; the last batch holds the remainder.
    pub batch_size: usize,
    /// Shuffle the order (training) or keep it (evaluation).
    pub shuffle: bool,
    /// Augmentation policy.
    pub augmentation: Augmentation,
    /// Trial seed.
    pub seed: u64,
    /// Epoch number (0-based), for the random streams.
    pub epoch: usize,
    /// Batches prepared ahead of the trainer.
    pub prefetch: usize,
    /// Batches at the start of the pass to leave out (resuming mid-epoch).
    pub skip: usize,
}

impl PassSpec {
    /// An in-order, unaugmented pass (for evaluation).
    pub fn eval(batch_size: usize) -> Self {
        PassSpec {
            batch_size,
            shuffle: false,
            augmentation: Augmentation::None,
            seed: 0,
            epoch: 0,
            prefetch: 2,
            skip: 0,
        }
    }
}

/// Number of batches in a pass over `n` images.
pub fn batch_count(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size)
}

/// The image order of an epoch.
pub fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        order.shuffle(&mut seed::rng(seed, &[seed::tag("order"), epoch as u64]));
    }
    order
}

fn make_batch(
    split: &Split,
    shape: InputShape,
    spec: &PassSpec,
    index: usize,
    ids: &[usize],
) -> Batch {
    let len = shape.channels * shape.height * shape.width;
    let mut rng = seed::rng(
        spec.seed,
        &[seed::tag("augment"), spec.epoch as u64, index as u64],
    );
    let mut images = vec![0f32; ids.len() * len];
    for (&i, out) in ids.iter().zip(images.chunks_exact_mut(len)) {
        let t = augment::draw(spec.augmentation, &mut rng);
        apply(
            &split.images[i * len..(i + 1) * len],
            out,
            (shape.height, shape.width),
            t,
        );
    }
    let labels = ids.iter().map(|&i| u32::from(split.labels[i])).collect();
    Batch {
        index,
        images,
        labels,
    }
}

/// Batches of one pass, produced by a loader thread.
pub struct BatchStream {
    rx: Option<Receiver<Batch>>,
    handle: Option<JoinHandle<()>>,
    waited: Duration,
}

impl BatchStream {
    /// Starts a loader thread for one pass over `split`.
    pub fn spawn(split: Arc<Split>, shape: InputShape, spec: PassSpec) -> Self {
        let (tx, rx) = sync_channel(spec.prefetch.max(1));
        let handle = std::thread::Builder::new()
            .name("vov-loader".into())
            .spawn(move || {
                let order = epoch_order(split.len(), spec.shuffle, spec.seed, spec.epoch);
                let batches = order.chunks(spec.batch_size.max(1)).enumerate();
                for (index, ids) in batches.skip(spec.skip) {
                    // A closed channel means the trainer stopped early: just stop.
                    if tx
                        .send(make_batch(&split, shape, &spec, index, ids))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .ok();
        BatchStream {
            rx: Some(rx),
            handle,
            waited: Duration::ZERO,
        }
    }

    /// The next batch, or `None` at the end of the pass; the time spent blocked is
    /// added to [`BatchStream::waited`].
    pub fn next_batch(&mut self) -> Option<Batch> {
        let start = Instant::now();
        let batch = self.rx.as_ref()?.recv().ok();
        self.waited += start.elapsed();
        batch
    }

    /// Total time spent waiting for the loader.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Close the channel first so a loader blocked on a full queue wakes and exits.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: usize) -> Arc<Split> {
        Arc::new(Split {
            images: (0..n)
                .flat_map(|i| std::iter::repeat_n(i as u8, 4))
                .collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        })
    }

    const SHAPE: InputShape = InputShape {
        channels: 1,
        height: 2,
        width: 2,
    };

    fn collect(spec: PassSpec, n: usize) -> Vec<Batch> {
        let mut s = BatchStream::spawn(split(n), SHAPE, spec);
        std::iter::from_fn(|| s.next_batch()).collect()
    }

    #[test]
    fn eval_pass_keeps_order_and_remainder() {
        let batches = collect(PassSpec::eval(4), 10);
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        assert_eq!(batches[2].labels, vec![8, 9]);
        assert_eq!(batches[0].images[4], 1.0 / 255.0);
        assert_eq!(batch_count(10, 4), 3);
    }

    #[test]
    fn shuffled_epochs_are_seeded_permutations() {
        let spec = |epoch| PassSpec {
            batch_size: 3,
            shuffle: true,
            augmentation: Augmentation::Standard,
            seed: 5,
            epoch,
            prefetch: 1,
            skip: 0,
        };
        let labels = |e| -> Vec<u32> {
            collect(spec(e), 20)
                .into_iter()
                .flat_map(|b| b.labels)
                .collect()
        };
        let e0 = labels(0);
        assert_eq!(e0, labels(0));
        assert_ne!(e0, labels(1));
        let mut sorted = e0.clone();
        sorted.sort();
        let mut want: Vec<u32> = (0..20).map(|i| i % 10).collect();
        want.sort();
        assert_eq!(sorted, want);
        let images = |e| -> Vec<f32> {
            collect(spec(e), 20)
                .into_iter()
                .flat_map(|b| b.images)
                .collect()
        };
        assert_eq!(images(3), images(3));
    }

    #[test]
    fn skipping_resumes_the_same_pass() {
        let spec = PassSpec {
            batch_size: 4,
            shuffle: true,
            augmentation: Augmentation::Standard,
            seed: 9,
            epoch: 2,
            prefetch: 1,
            skip: 0,
        };
        let all = collect(spec, 18);
        let rest = collect(PassSpec { skip: 3, ..spec }, 18);
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].index, 3);
        assert_eq!(rest[0].labels, all[3].labels);
        assert_eq!(rest[1].images, all[4].images);
    }

    #[test]
    fn dropping_early_stops_the_loader() {
        let mut s = BatchStream::spawn(split(1000), SHAPE, PassSpec::eval(1));
        assert!(s.next_batch().is_some());
        drop(s);
    }
}
