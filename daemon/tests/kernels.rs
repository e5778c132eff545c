//! The custom CPU kernels change no result. For both model families, one training
//! step on the same weights gives the same loss and the same gradient for every
//! parameter as candle's reference ops (within 1e-3 relative). For DenseNet the
//! same seeded 12-step training run also gives the same loss at every step and the
//! same validation figures. VoVNet's run is not compared step by step: its max
//! pooling and stride-2 stem make the trajectory amplify rounding differences
//! (1e-7 at the first step, from summation order) about threefold per step whichever
//! single kernel is swapped for candle's, so after a dozen steps two runs differ by
//! more than 1e-3 with either kernel set being equally right. Small models keep it
//! fast; together they use every kernel (convolutions 3x3 and 1x1 with stride 1
//! and 2, max pooling, BatchNorm with and without ReLU, bias, channel sums).

use candle_core::{DType, Device, Tensor};
use vov_spec::{Preset, TrialSpec};
use vovd::data::synthetic::{generate, SyntheticOptions};
use vovd::data::Augmentation;
use vovd::model::layers::BnConfig;
use vovd::model::ops::kernels::with_reference;
use vovd::model::{BuildOptions, InputShape, Model, ModelKnobs, ModelSpec};
use vovd::train::{self, Measure, TrainEvent, TrainOptions, TrainRecord, TrainSpec};

const TRAIN: usize = 128;
const VAL: usize = 64;

fn spec(preset: Preset, knobs: &ModelKnobs) -> TrainSpec {
    let mut t = TrialSpec::new(preset);
    t.knobs = knobs.clone();
    t.epochs = 3;
    t.batch_size = 32;
    t.augmentation = Augmentation::Standard;
    t.seed = 7;
    t.bn_momentum = 0.9;
    t.train_limit = Some(TRAIN);
    t.val_limit = Some(VAL);
    t.measure = Measure {
        batch1: false,
        batch32: false,
    };
    TrainSpec::resolve(t).unwrap()
}

/// Every step's loss and the record of one run on this thread.
fn run(spec: &TrainSpec) -> (Vec<f64>, TrainRecord) {
    let data = generate(&SyntheticOptions::sized(Some(TRAIN), Some(VAL)));
    let mut losses = Vec::new();
    let record = train::run_with_data(spec, data, &TrainOptions::cpu(2), &mut |e| {
        if let TrainEvent::Step { loss, .. } = e {
            losses.push(*loss);
        }
    })
    .unwrap();
    (losses, record)
}

fn assert_same_run(spec: &TrainSpec) {
    let (ours, ours_record) = run(spec);
    let (theirs, theirs_record) = with_reference(|| run(spec));
    assert_eq!(ours.len(), 12, "3 epochs of 4 steps");
    assert_eq!(ours.len(), theirs.len());
    for (step, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let rel = (a - b).abs() / b.abs().max(1e-6);
        assert!(
            rel <= 1e-3,
            "step {}: loss {a} vs reference {b} ({rel:e} relative)",
            step + 1
        );
    }
    assert!(ours[11] < ours[0], "it learns: {ours:?}");
    for (a, b) in ours_record.history.iter().zip(&theirs_record.history) {
        assert!(
            (a.val_loss - b.val_loss).abs() / b.val_loss <= 1e-3,
            "{a:?} vs {b:?}"
        );
        assert!(
            (a.val_acc - b.val_acc).abs() <= 2.0 / VAL as f64,
            "{a:?} vs {b:?}"
        );
    }
}

/// The loss and every trainable parameter's gradient of one training-mode step.
fn step(model: &Model, x: &Tensor, y: &Tensor) -> (f32, Vec<(String, Tensor)>) {
    let loss = candle_nn::loss::cross_entropy(&model.forward_t(x, true).unwrap(), y).unwrap();
    let grads = loss.backward().unwrap();
    let per_param = model
        .params()
        .trainable()
        .into_iter()
        .map(|(name, var, _)| (name, grads.get(&var).unwrap().clone()))
        .collect();
    (loss.to_scalar().unwrap(), per_param)
}

fn build(preset: Preset, knobs: &ModelKnobs) -> Model {
    let opts = BuildOptions {
        input: InputShape {
            channels: 3,
            height: 32,
            width: 32,
        },
        classes: 10,
        bn: BnConfig::default(),
        device: Device::Cpu,
        seed: 3,
    };
    Model::build(&ModelSpec::resolve(preset, knobs).unwrap(), &opts).unwrap()
}

/// A fixed, irregular input of `n` images (candle's CPU random numbers cannot
/// be seeded).
fn images(n: usize) -> Tensor {
    (Tensor::arange(0u32, (n * 3 * 32 * 32) as u32, &Device::Cpu).unwrap())
        .to_dtype(DType::F32)
        .unwrap()
        .affine(0.731, 0.0)
        .unwrap()
        .sin()
        .unwrap()
        .reshape((n, 3, 32, 32))
        .unwrap()
}

fn assert_same_gradients(preset: Preset, knobs: &ModelKnobs) {
    let model = build(preset, knobs);
    let x = images(8);
    let y = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &Device::Cpu).unwrap();
    let (loss, ours) = step(&model, &x, &y);
    let (ref_loss, theirs) = with_reference(|| step(&model, &x, &y));
    assert!(
        (loss - ref_loss).abs() / ref_loss <= 1e-5,
        "{loss} vs {ref_loss}"
    );
    assert!(ours.len() > 10);
    for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        let scale = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let (diff, scale) = (
            diff.to_scalar::<f32>().unwrap(),
            scale.to_scalar::<f32>().unwrap(),
        );
        // Beside the 1e-3 relative bound, an absolute 5e-5 for rounding in sums
        // that cancel: a BatchNorm shift's gradient sums 8192 terms per channel
        // (candle's reference in f32, the kernels in f64), and a conv bias before
        // BatchNorm has a zero gradient in exact arithmetic, so both sides hold
        // rounding noise there. A wrong kernel is off by far more (a ReLU mask
        // that lets zeros through moves a shift's gradient by 0.03).
        assert!(
            diff <= 1e-3 * scale + 5e-5,
            "{preset} {name}: {diff} vs max {scale}"
        );
    }
}

fn tiny_vovnet() -> ModelKnobs {
    ModelKnobs {
        stem: Some(vec![8, 8, 16]),
        stage_widths: Some(vec![8, 8]),
        stage_outputs: Some(vec![16, 24]),
        osa_layers: Some(3),
        ..Default::default()
    }
}

fn tiny_densenet() -> ModelKnobs {
    ModelKnobs {
        growth_rate: Some(8),
        blocks: Some(vec![2, 2]),
        bottleneck: Some(16),
        stem_channels: Some(16),
        ..Default::default()
    }
}

/// Evaluation through the kernels (folded and fused BatchNorm, centre taps on
/// 1x1 maps, multiplies split by rows) gives candle's outputs, at batch 1 and
/// at a batch that shares out unevenly over the threads.
fn assert_same_evaluation(preset: Preset, knobs: &ModelKnobs) {
    let model = build(preset, knobs);
    // Training passes move the moving statistics away from their start.
    for _ in 0..2 {
        model.forward_t(&images(6), true).unwrap();
    }
    for n in [1, 5] {
        let x = images(n);
        let ours = model.forward_t(&x, false).unwrap();
        let theirs = with_reference(|| model.forward_t(&x, false)).unwrap();
        let diff = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap();
        let scale = theirs.abs().unwrap().max_all().unwrap();
        let (diff, scale) = (
            diff.to_scalar::<f32>().unwrap(),
            scale.to_scalar::<f32>().unwrap(),
        );
        assert!(
            diff <= 1e-4 * scale.max(1.0),
            "{preset} batch {n}: {diff} vs max {scale}"
        );
    }
}

/// Four stages, so that the last runs on 1x1 maps; 64 outputs, enough rows to
/// split a multiply over two threads.
fn deep_vovnet() -> ModelKnobs {
    ModelKnobs {
        stem: Some(vec![8, 8, 16]),
        stage_widths: Some(vec![16, 16, 16, 16]),
        stage_outputs: Some(vec![64, 64, 64, 64]),
        osa_layers: Some(2),
        ..Default::default()
    }
}

#[test]
fn vovnet_evaluation_gives_candles_outputs() {
    assert_same_evaluation(Preset::Vovnet27Slim, &deep_vovnet());
}

#[test]
fn densenet_evaluation_gives_candles_outputs() {
    let knobs = ModelKnobs {
        bottleneck: Some(64),
        ..tiny_densenet()
    };
    assert_same_evaluation(Preset::DensenetKoshian2, &knobs);
}

#[test]
fn vovnet_kernels_give_candles_gradients() {
    assert_same_gradients(Preset::Vovnet27Slim, &tiny_vovnet());
}

#[test]
fn densenet_kernels_give_candles_gradients() {
    assert_same_gradients(Preset::DensenetKoshian2, &tiny_densenet());
}

#[test]
fn densenet_kernels_train_like_candle_ops() {
    assert_same_run(&spec(Preset::DensenetKoshian2, &tiny_densenet()));
}
