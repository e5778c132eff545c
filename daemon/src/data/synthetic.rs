//! A seeded, learnable synthetic data set: 32x32 RGB images in 10 classes.
//!
//! Class k is an oriented sine grating (angle k x 18 degrees, period 5, 7 or 9
//! pixels) with a random phase, a colour tint shared by classes 2j and 2j+1, a
//! random contrast and uniform pixel noise. The tint makes even a linear model beat
//! chance clearly (it separates the five pairs, about 50%); telling the two classes
//! of a pair apart needs the orientation, which a small convnet learns. Every image
//! comes from its own random stream (seed, split, index), so any prefix of a larger
//! set equals the smaller set: limits and sizes are the same knob here.

use std::f32::consts::PI;

use rand::Rng;
use rayon::prelude::*;

use super::{Dataset, DatasetName, Split};
use crate::model::InputShape;
use crate::runtime::seed;

/// Seed of the synthetic data set unless another is given; fixed, so that every
/// trial (whatever its own seed) sees the same images.
pub const DEFAULT_SEED: u64 = 2019;
/// Default sizes: those of CIFAR-10.
pub const DEFAULT_TRAIN: usize = 50_000;
/// Default validation size.
pub const DEFAULT_VAL: usize = 10_000;

const SIDE: usize = 32;
const TINTS: [[f32; 3]; 5] = [
    [40.0, 0.0, -40.0],
    [-40.0, 40.0, 0.0],
    [0.0, -40.0, 40.0],
    [30.0, 30.0, -60.0],
    [-30.0, -30.0, 60.0],
];

/// Sizes and seed of a generated set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticOptions {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
    /// Data seed.
    pub seed: u64,
}

impl SyntheticOptions {
    /// The default set, or the first `train` / `val` images of it.
    pub fn sized(train: Option<usize>, val: Option<usize>) -> Self {
        SyntheticOptions {
            train: train.unwrap_or(DEFAULT_TRAIN),
            val: val.unwrap_or(DEFAULT_VAL),
            seed: DEFAULT_SEED,
        }
    }
}

fn image(seed: u64, split: u64, index: usize, out: &mut [u8]) -> u8 {
    let mut rng = seed::rng(seed, &[split, index as u64]);
    let class = rng.random_range(0..10usize);
    let angle = class as f32 * PI / 10.0;
    let period = 5.0 + 2.0 * (class % 3) as f32;
    let phase = rng.random_range(0.0..2.0 * PI);
    let contrast = rng.random_range(0.6f32..1.0);
    let tint = TINTS[class / 2];
    let (dx, dy) = (
        angle.cos() * 2.0 * PI / period,
        angle.sin() * 2.0 * PI / period,
    );
    for (c, plane) in out.chunks_exact_mut(SIDE * SIDE).enumerate() {
        for (i, px) in plane.iter_mut().enumerate() {
            let (y, x) = ((i / SIDE) as f32, (i % SIDE) as f32);
            let wave = (x * dx + y * dy + phase).sin();
            let noise: f32 = rng.random_range(-40.0..40.0);
            let v = 128.0 + contrast * (tint[c] + 50.0 * wave) + noise;
            *px = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    class as u8
}

fn split(seed: u64, tag: u64, count: usize) -> Split {
    let len = 3 * SIDE * SIDE;
    let mut images = vec![0u8; count * len];
    let labels = images
        .par_chunks_exact_mut(len)
        .enumerate()
        .map(|(i, out)| image(seed, tag, i, out))
        .collect();
    Split { images, labels }
}

/// Generates the set.
pub fn generate(opts: &SyntheticOptions) -> Dataset {
    Dataset {
        name: DatasetName::Synthetic,
        shape: InputShape {
            channels: 3,
            height: SIDE,
            width: SIDE,
        },
        classes: 10,
        train: split(opts.seed, 1, opts.train),
        val: split(opts.seed, 2, opts.val),
        source: format!("generated (seed {})", opts.seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(train: usize, val: usize) -> SyntheticOptions {
        SyntheticOptions {
            train,
            val,
            seed: DEFAULT_SEED,
        }
    }

    #[test]
    fn prefixes_are_stable_and_classes_balanced() {
        let small = generate(&opts(50, 10));
        let large = generate(&opts(2000, 20));
        assert_eq!(
            small.train.images[..],
            large.train.images[..small.train.images.len()]
        );
        assert_eq!(small.val.labels[..], large.val.labels[..10]);
        let mut counts = [0usize; 10];
        for &l in &large.train.labels {
            counts[usize::from(l)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (140..=260).contains(&c)),
            "{counts:?}"
        );
    }

    /// A nearest-class-mean classifier (a linear model) must beat chance (10%) clearly.
    #[test]
    fn a_linear_model_beats_chance() {
        let ds = generate(&opts(3000, 1000));
        let len = ds.image_len();
        let mut means = vec![vec![0f64; len]; 10];
        let mut counts = [0f64; 10];
        for (img, &l) in ds.train.images.chunks_exact(len).zip(&ds.train.labels) {
            counts[usize::from(l)] += 1.0;
            for (m, &p) in means[usize::from(l)].iter_mut().zip(img) {
                *m += f64::from(p);
            }
        }
        for (m, c) in means.iter_mut().zip(counts) {
            m.iter_mut().for_each(|v| *v /= c);
        }
        let correct = ds
            .val
            .images
            .chunks_exact(len)
            .zip(&ds.val.labels)
            .filter(|(img, &l)| {
                let dist = |m: &Vec<f64>| -> f64 {
                    m.iter()
                        .zip(img.iter())
                        .map(|(a, &b)| (a - f64::from(b)).powi(2))
                        .sum()
                };
                let best = (0..10)
                    .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
                    .unwrap();
                best == usize::from(l)
            })
            .count();
        let acc = correct as f64 / 1000.0;
        assert!(acc > 0.3, "nearest-mean accuracy {acc}");
    }
}
