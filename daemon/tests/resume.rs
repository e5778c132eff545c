//! Checkpoint and resume are exact: 3 epochs straight and 1 epoch + checkpoint +
//! resume for 2 more, with the same seed, end with identical weights and metrics.

use vov_spec::{ModelKnobs, Preset, TrialSpec};
use vovd::data::synthetic::{generate, SyntheticOptions};
use vovd::data::Augmentation;
use vovd::train::{self, checkpoint, Measure, TrainEvent, TrainOptions, TrainSpec};

fn spec(epochs: usize) -> TrainSpec {
    let knobs = ModelKnobs {
        stem: Some(vec![8]),
        stage_widths: Some(vec![8, 8]),
        stage_outputs: Some(vec![16, 16]),
        osa_layers: Some(2),
        ..Default::default()
    };
    let mut t = TrialSpec::new(Preset::Vovnet27Slim);
    t.knobs = knobs;
    t.epochs = epochs;
    t.batch_size = 32;
    t.augmentation = Augmentation::Standard;
    t.seed = 42;
    t.bn_momentum = 0.9;
    t.train_limit = Some(160);
    t.val_limit = Some(64);
    t.measure = Measure {
        batch1: false,
        batch32: false,
    };
    TrainSpec::resolve(t).unwrap()
}

fn data() -> vovd::data::Dataset {
    generate(&SyntheticOptions::sized(Some(160), Some(64)))
}

fn losses(r: &train::TrainRecord) -> Vec<(f64, f64, f64, f64)> {
    r.history
        .iter()
        .map(|m| (m.train_loss, m.train_acc, m.val_loss, m.val_acc))
        .collect()
}

#[test]
fn resume_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let straight_dir = tmp.path().join("straight");
    let opts = TrainOptions {
        checkpoint_dir: Some(straight_dir.clone()),
        ..TrainOptions::cpu(2)
    };
    let straight = train::run_with_data(&spec(3), data(), &opts, &mut |_| {}).unwrap();

    let split_dir = tmp.path().join("split");
    let first = TrainOptions {
        checkpoint_dir: Some(split_dir.clone()),
        ..TrainOptions::cpu(2)
    };
    train::run_with_data(&spec(1), data(), &first, &mut |_| {}).unwrap();
    let mut events = Vec::new();
    let second = TrainOptions {
        checkpoint_dir: Some(split_dir.clone()),
        resume: Some(split_dir.clone()),
        ..TrainOptions::cpu(2)
    };
    let resumed =
        train::run_with_data(&spec(3), data(), &second, &mut |e| events.push(e.clone())).unwrap();

    assert_eq!(resumed.resumed_from_epoch, 1);
    let started = events
        .iter()
        .find(|e| matches!(e, TrainEvent::Started { .. }));
    assert!(matches!(
        started,
        Some(TrainEvent::Started { start_epoch: 1, .. })
    ));
    assert_eq!(losses(&straight), losses(&resumed));
    let dev = candle_core::Device::Cpu;
    let a = checkpoint::load(&straight_dir.join(checkpoint::FILE_NAME), &dev).unwrap();
    let b = checkpoint::load(&split_dir.join(checkpoint::FILE_NAME), &dev).unwrap();
    assert_eq!(a.meta.step, b.meta.step);
    assert_eq!(a.params.len(), b.params.len());
    for (name, t) in &a.params {
        let u = &b.params[name];
        let diff = (t - u)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "parameter {name} differs");
    }
    for (name, t) in &a.optimizer {
        let diff = (t - &b.optimizer[name])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "optimizer state {name} differs");
    }
}

#[test]
fn resume_refuses_a_different_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        checkpoint_dir: Some(tmp.path().to_path_buf()),
        ..TrainOptions::cpu(2)
    };
    train::run_with_data(&spec(1), data(), &opts, &mut |_| {}).unwrap();
    let mut other = spec(2);
    other.lr = 0.01;
    let resume = TrainOptions {
        resume: Some(tmp.path().to_path_buf()),
        ..TrainOptions::cpu(2)
    };
    let err = train::run_with_data(&other, data(), &resume, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("different spec"), "{err}");
    let missing = TrainOptions {
        resume: Some(tmp.path().join("nope.safetensors")),
        ..TrainOptions::cpu(2)
    };
    let err = train::run_with_data(&spec(2), data(), &missing, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("nope.safetensors"), "{err}");
}

#[test]
fn stop_flag_cancels_between_batches() {
    let opts = TrainOptions::cpu(2);
    let stop = opts.stop.clone();
    let err = train::run_with_data(&spec(3), data(), &opts, &mut |e| {
        if let TrainEvent::Step { step: 2, .. } = e {
            stop.cancel();
        }
    })
    .unwrap_err();
    assert!(
        matches!(err, train::TrainError::Cancelled { epochs_done: 0 }),
        "{err}"
    );
}

#[test]
fn interrupt_mid_epoch_checkpoints_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let straight =
        train::run_with_data(&spec(3), data(), &TrainOptions::cpu(2), &mut |_| {}).unwrap();

    let dir = tmp.path().to_path_buf();
    let opts = TrainOptions {
        checkpoint_dir: Some(dir.clone()),
        ..TrainOptions::cpu(2)
    };
    let stop = opts.stop.clone();
    let err = train::run_with_data(&spec(3), data(), &opts, &mut |e| {
        if let TrainEvent::Step {
            epoch: 2, step: 3, ..
        } = e
        {
            stop.interrupt();
        }
    })
    .unwrap_err();
    assert!(
        matches!(err, train::TrainError::Interrupted { epochs_done: 1 }),
        "{err}"
    );
    let ck = checkpoint::load(&dir.join(checkpoint::FILE_NAME), &candle_core::Device::Cpu).unwrap();
    let position = ck.meta.position.expect("mid-epoch position");
    assert_eq!((position.epoch, position.batches_done), (1, 3));

    let resume = TrainOptions {
        checkpoint_dir: Some(dir.clone()),
        resume: Some(dir),
        ..TrainOptions::cpu(2)
    };
    let resumed = train::run_with_data(&spec(3), data(), &resume, &mut |_| {}).unwrap();
    assert_eq!(losses(&straight), losses(&resumed));
}
