//! The speed benchmark behind `vovd bench`: training images/s at batch 128 with
//! Adam after a warm-up, batch-1 latency and batch-32 throughput, on random inputs,
//! with the protocol `scripts/reference/bench.py` follows for PyTorch and Keras so
//! that the figures compare one to one.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::optimizer::Optimizer;
use super::spec::TrainSpec;
use super::timing;
use vov_spec::Preset;

use crate::model::ops::flops;
use crate::model::{BnConfig, BuildOptions, InputShape, Model};
use crate::runtime::{memory, seed};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchOptions {
    /// Timed training steps.
    pub train_steps: usize,
    /// Untimed training steps first.
    pub warmup: usize,
    /// Single-image forward passes timed.
    pub batch1_images: usize,
    /// Images pushed through in batches of 32.
    pub batch32_images: usize,
    /// Training batch size.
    pub batch_size: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            train_steps: 3,
            warmup: 1,
            batch1_images: 200,
            batch32_images: 640,
            batch_size: 128,
        }
    }
}

/// One model's figures (the JSON shape every framework's benchmark prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Preset.
    pub model: String,
    /// Parameters, Keras' convention.
    pub params: usize,
    /// Trainable parameters.
    pub trainable: usize,
    /// Training throughput.
    pub train_images_per_s: f64,
    /// Milliseconds per training step.
    pub train_step_ms: f64,
    /// Median batch-1 latency.
    pub batch1_p50_ms: f64,
    /// 99th percentile batch-1 latency.
    pub batch1_p99_ms: f64,
    /// Inference throughput at batch 32.
    pub batch32_images_per_s: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Direct-convolution FLOPs of one training step (forward and both
    /// gradients), see [`crate::model::ops::flops`].
    #[serde(default)]
    pub train_step_flops: u64,
    /// Direct-convolution FLOPs of one batch-1 forward pass.
    #[serde(default)]
    pub batch1_flops: u64,
}

const SHAPE: InputShape = InputShape {
    channels: 3,
    height: 32,
    width: 32,
};
const CLASSES: usize = 10;

fn random_images(count: usize) -> Vec<f32> {
    let mut rng = seed::rng(1, &[]);
    let len = count * SHAPE.channels * SHAPE.height * SHAPE.width;
    (0..len).map(|_| rng.random_range(0.0f32..1.0)).collect()
}

/// Milliseconds per training step after the warm-up, and the convolution
/// FLOPs of one step.
fn train_step_ms(
    model: &Model,
    spec: &TrainSpec,
    opts: &BenchOptions,
    device: &Device,
) -> Result<(f64, u64), TrainError> {
    let mut optimizer = Optimizer::new(model.params(), spec)?;
    let n = opts.batch_size;
    let x = Tensor::from_vec(
        random_images(n),
        (n, SHAPE.channels, SHAPE.height, SHAPE.width),
        device,
    )?;
    let mut rng = seed::rng(2, &[]);
    let labels: Vec<u32> = (0..n)
        .map(|_| rng.random_range(0..CLASSES as u32))
        .collect();
    let y = Tensor::from_vec(labels, n, device)?;
    let mut step = || -> Result<(), TrainError> {
        let logits = model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        optimizer.step(&loss.backward()?)?;
        loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        Ok(())
    };
    for _ in 0..opts.warmup {
        step()?;
    }
    device.synchronize()?;
    let start = Instant::now();
    let (done, flops) = flops::counted(|| (0..opts.train_steps).try_for_each(|_| step()));
    done?;
    device.synchronize()?;
    let steps = opts.train_steps.max(1);
    Ok((
        start.elapsed().as_secs_f64() * 1e3 / steps as f64,
        flops / steps as u64,
    ))
}

/// The convolution FLOPs of one batch-1 forward pass in inference mode.
fn batch1_flops(model: &Model, device: &Device) -> Result<u64, TrainError> {
    let x = Tensor::from_vec(
        random_images(1),
        (1, SHAPE.channels, SHAPE.height, SHAPE.width),
        device,
    )?;
    let (y, flops) = flops::counted(|| model.forward_t(&x, false));
    y?;
    Ok(flops)
}

/// Measures `model` (a preset) on `device`.
pub fn run(model: Preset, opts: &BenchOptions, device: &Device) -> Result<BenchResult, TrainError> {
    let spec = TrainSpec::published(model)?;
    let built = Model::build(
        &spec.model,
        &BuildOptions {
            input: SHAPE,
            classes: CLASSES,
            bn: BnConfig::default(),
            device: device.clone(),
            seed: 0,
        },
    )?;
    let count = built.params().count();
    let (step_ms, train_step_flops) = train_step_ms(&built, &spec, opts, device)?;
    let b1 = timing::batch1(&built, &random_images(opts.batch1_images), SHAPE, device)?;
    let b32 = timing::batched(
        &built,
        &random_images(opts.batch32_images),
        SHAPE,
        32,
        device,
    )?;
    Ok(BenchResult {
        model: model.to_string(),
        params: count.total,
        trainable: count.trainable,
        train_images_per_s: opts.batch_size as f64 * 1e3 / step_ms,
        train_step_ms: step_ms,
        batch1_p50_ms: b1.p50_ms,
        batch1_p99_ms: b1.p99_ms,
        batch32_images_per_s: b32.images_per_s,
        peak_rss_bytes: memory::peak_rss_bytes().unwrap_or(0),
        train_step_flops,
        batch1_flops: batch1_flops(&built, device)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_small_model() {
        let opts = BenchOptions {
            train_steps: 1,
            warmup: 0,
            batch1_images: 2,
            batch32_images: 33,
            batch_size: 4,
        };
        let r = run(Preset::DensenetKoshian2, &opts, &Device::Cpu).unwrap();
        assert_eq!(r.params, 255_046);
        assert!(r.train_images_per_s > 0.0 && r.train_step_ms > 0.0);
        assert!(r.batch1_p50_ms > 0.0 && r.batch1_p99_ms >= r.batch1_p50_ms);
        assert!(r.batch32_images_per_s > 0.0);
        // A training step is a forward and two gradients of every
        // convolution but the first's input gradient: 2x-3x a forward's work
        // per image.
        let per_image = r.train_step_flops / 4;
        assert!(
            per_image > 2 * r.batch1_flops && per_image < 3 * r.batch1_flops,
            "{r:?}"
        );
    }
}
