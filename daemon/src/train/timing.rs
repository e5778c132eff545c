//! Inference timings exactly as the published columns define them: the whole
//! validation set at batch size 1 (what a real-time user sees) and at batch size
//! 32, in evaluation mode, after a warm-up, with the device synchronised before
//! every clock read. Each timed call includes moving the input to the device and
//! reading the logits back, as a caller would.

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::metrics::percentile;
use crate::data::augment::{apply, Transform};
use crate::data::Split;
use crate::model::{InputShape, Model};

/// Untimed passes before timing starts.
pub const WARMUP: usize = 10;

/// Batch-1 latency over the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch1Timing {
    /// Images timed (the validation set).
    pub images: usize,
    /// Total seconds over all images.
    pub total_s: f64,
    /// Median milliseconds per image.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

/// Batched inference over the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchTiming {
    /// Images timed.
    pub images: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Total seconds.
    pub total_s: f64,
    /// Throughput.
    pub images_per_s: f64,
}

/// The validation images as f32 in [0, 1], ready to slice into inputs.
pub fn prepare(split: &Split, shape: InputShape) -> Vec<f32> {
    let len = shape.channels * shape.height * shape.width;
    let mut out = vec![0f32; split.len() * len];
    for (src, dst) in split
        .images
        .chunks_exact(len)
        .zip(out.chunks_exact_mut(len))
    {
        apply(src, dst, (shape.height, shape.width), Transform::IDENTITY);
    }
    out
}

/// Runs one timed forward pass on `n` images starting at `first`; returns seconds.
fn timed_pass(
    model: &Model,
    images: &[f32],
    shape: InputShape,
    first: usize,
    n: usize,
    device: &Device,
) -> Result<f64> {
    let len = shape.channels * shape.height * shape.width;
    let slice = &images[first * len..(first + n) * len];
    device.synchronize()?;
    let start = Instant::now();
    let x = Tensor::from_slice(
        slice,
        (n, shape.channels, shape.height, shape.width),
        device,
    )?;
    let logits = model.forward_t(&x, false)?;
    let _host: Vec<Vec<f32>> = logits.to_vec2()?;
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Batch-1 latency over every image in `images` (prepared by [`prepare`]).
pub fn batch1(
    model: &Model,
    images: &[f32],
    shape: InputShape,
    device: &Device,
) -> Result<Batch1Timing> {
    let count = images.len() / (shape.channels * shape.height * shape.width);
    for i in 0..WARMUP.min(count) {
        timed_pass(model, images, shape, i, 1, device)?;
    }
    let mut ms = Vec::with_capacity(count);
    for i in 0..count {
        ms.push(timed_pass(model, images, shape, i, 1, device)? * 1e3);
    }
    let total_s = ms.iter().sum::<f64>() / 1e3;
    ms.sort_by(f64::total_cmp);
    let p = |q| percentile(&ms, q).unwrap_or(0.0);
    Ok(Batch1Timing {
        images: count,
        total_s,
        p50_ms: p(50.0),
        p95_ms: p(95.0),
        p99_ms: p(99.0),
    })
}

/// Throughput at `batch_size` over every image in `images`.
pub fn batched(
    model: &Model,
    images: &[f32],
    shape: InputShape,
    batch_size: usize,
    device: &Device,
) -> Result<BatchTiming> {
    let count = images.len() / (shape.channels * shape.height * shape.width);
    if count > 0 {
        timed_pass(model, images, shape, 0, batch_size.min(count), device)?;
    }
    let mut total_s = 0.0;
    let mut first = 0;
    while first < count {
        let n = batch_size.min(count - first);
        total_s += timed_pass(model, images, shape, first, n, device)?;
        first += n;
    }
    Ok(BatchTiming {
        images: count,
        batch_size,
        total_s,
        images_per_s: if total_s > 0.0 {
            count as f64 / total_s
        } else {
            0.0
        },
    })
}
