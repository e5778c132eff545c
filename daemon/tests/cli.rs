//! Black-box tests of the `vovd` binary: `models` and `train`, their output and
//! every bad-input case (exit code 2 and a message naming the flag, value or file).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn vovd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vovd"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("vovd runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A VoVNet small enough to train in a second: the knobs shrink vovnet-27-slim.
const TINY: &[&str] = &[
    "--model",
    "vovnet-27-slim",
    "--stem",
    "8",
    "--stage-widths",
    "8,8,8,8",
    "--stage-outputs",
    "16,16,16,16",
    "--osa-layers",
    "2",
];

fn train(extra: &[&str]) -> Output {
    let mut args = vec!["train"];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    vovd(&args)
}

#[test]
fn models_json_has_the_sixteen_published_numbers() {
    let o = vovd(&["models", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["params"].as_u64().unwrap(),
                r["trainable"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("densenet-koshian-2", 255_046, 251_614),
        ("densenet-koshian-3", 505_200, 501_004),
        ("densenet-koshian-4", 599_536, 591_412),
        ("densenet-koshian-5", 1_104_186, 1_089_114),
        ("densenet-koshian-6", 3_316_848, 3_271_120),
        ("vovnet-27-slim", 2_683_690, 2_677_098),
        ("vovnet-39", 18_634_282, 18_613_866),
        ("vovnet-57", 30_462_858, 30_431_242),
    ];
    let want: Vec<(String, u64, u64)> = want
        .iter()
        .map(|&(n, p, t)| (n.to_string(), p, t))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn models_table_is_readable() {
    let o = vovd(&["models"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.lines().next().unwrap().contains("params"));
    assert!(out.contains("| vovnet-39 "));
}

#[test]
fn train_json_record_has_every_field() {
    let o = train(&[
        "--dataset",
        "synthetic",
        "--epochs",
        "3",
        "--train-limit",
        "768",
        "--val-limit",
        "128",
        "--batch-size",
        "32",
        "--bn-momentum",
        "0.9",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON record");
    for key in [
        "spec",
        "model",
        "params",
        "history",
        "max_val_acc",
        "max_val_acc_epoch",
        "final_val_acc",
        "final_train_acc",
        "first_epoch_s",
        "train_s_per_epoch",
        "pipeline_s_per_epoch",
        "data_wait_s_per_epoch",
        "train_images_per_s",
        "batch1",
        "batch32",
        "peak_rss_bytes",
        "fingerprint",
        "started_at",
        "finished_at",
        "warnings",
        "version",
    ] {
        assert!(!r[key].is_null(), "record lacks {key}: {r}");
    }
    let history = r["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    for key in [
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "epoch_s",
        "data_wait_s",
    ] {
        assert!(history[2][key].is_number(), "epoch lacks {key}");
    }
    for key in ["total_s", "p50_ms", "p95_ms", "p99_ms"] {
        assert!(r["batch1"][key].as_f64().unwrap() > 0.0, "batch1.{key}");
    }
    assert_eq!(r["batch1"]["images"], 128);
    assert!(r["batch32"]["images_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["fingerprint"]["threads"], 2);
    assert!(r["fingerprint"]["cpu_model"].as_str().unwrap().len() > 1);
    assert!(r["params"]["total"].as_u64().unwrap() > r["params"]["trainable"].as_u64().unwrap());
    let acc = r["final_val_acc"].as_f64().unwrap();
    assert!(
        acc > 0.25,
        "validation accuracy {acc} is not well above chance (0.10)"
    );
}

#[test]
fn train_table_shows_the_published_columns() {
    let o = train(&[
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        "--train-limit",
        "64",
        "--val-limit",
        "16",
        "--no-batch1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("epoch 1/2"), "{out}");
    assert!(
        out.contains("MaxValAcc %")
            && out.contains("real-time inf. s")
            && out.contains("Params (M)"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("warning: bn_momentum 0.99 over 2 training steps"),
        "a run too short for the default momentum is warned about: {}",
        stderr(&o)
    );
}

fn assert_usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    assert!(
        stderr(o).contains(needle),
        "expected {needle:?} in: {}",
        stderr(o)
    );
}

#[test]
fn bad_flags_and_values_exit_2_naming_them() {
    let base = [
        "--dataset",
        "synthetic",
        "--train-limit",
        "8",
        "--val-limit",
        "8",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--model", "resnet-50"], "unknown model 'resnet-50'"),
        (&["--dataset", "imagenet"], "unknown data set 'imagenet'"),
        (&["--augmentation", "mixup"], "unknown augmentation 'mixup'"),
        (&["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        (&["--wd-mode", "l3"], "unknown weight decay mode 'l3'"),
        (&["--epochs", "0"], "--epochs"),
        (&["--epochs", "1000000000"], "--epochs"),
        (&["--epochs", "-3"], "--epochs"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--lr", "-0.1"], "--lr"),
        (&["--lr", "abc"], "--lr"),
        (&["--bn-momentum", "1.5"], "--bn-momentum"),
        (&["--weight-decay", "-1"], "--weight-decay"),
        (&["--train-limit", "0"], "--train-limit"),
        (&["--threads", "0"], "--threads"),
        (
            &["--growth-rate", "8"],
            "--growth-rate: growth_rate: does not apply to vovnet",
        ),
        (&["--stage-widths", "8,8,8,8,8"], "stage_outputs"),
        (
            &[
                "--optimizer",
                "adamw",
                "--wd-mode",
                "l2",
                "--weight-decay",
                "0.1",
            ],
            "--wd-mode",
        ),
        (&["--frobnicate"], "--frobnicate"),
    ];
    for (extra, needle) in cases {
        let mut args: Vec<&str> = vec!["train"];
        args.extend_from_slice(TINY);
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        assert_usage_error(&vovd(&args), needle);
    }
}

#[test]
fn vovnet_refuses_unpadded_small_inputs_by_design() {
    // Fashion-MNIST is padded to 32x32, so it trains; a 28x28 input never reaches the
    // model. What a user can get wrong is a VoVNet with too many stages for 32x32.
    let o = train(&[
        "--dataset",
        "synthetic",
        "--stage-widths",
        "8,8,8,8,8",
        "--stage-outputs",
        "8,8,8,8,8",
        "--repetitions",
        "1,1,1,1,1",
    ]);
    assert_usage_error(&o, "too small");
}

fn write_cifar(dir: &Path, records: usize, corrupt: Option<&str>) {
    let cifar = dir.join("cifar10");
    std::fs::create_dir_all(&cifar).unwrap();
    let mut files: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    files.push("test_batch.bin".into());
    for f in files {
        let mut bytes = Vec::new();
        for i in 0..records {
            bytes.push((i % 10) as u8);
            bytes.extend((0..3072).map(|p| ((p * 7 + i * 13) % 256) as u8));
        }
        if corrupt == Some(f.as_str()) {
            bytes.truncate(bytes.len() - 100);
        }
        std::fs::write(cifar.join(&f), bytes).unwrap();
    }
}

#[test]
fn cifar10_in_the_binary_format_trains() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(tmp.path(), 20, None);
    let dir = tmp.path().to_str().unwrap();
    let o = train(&[
        "--dataset",
        "cifar10",
        "--data-dir",
        dir,
        "--epochs",
        "1",
        "--no-batch1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["train_images"], 100);
    assert_eq!(r["val_images"], 20);
}

#[test]
fn data_errors_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap().to_string();
    let o = train(&["--dataset", "cifar10", "--data-dir", &dir, "--epochs", "1"]);
    assert_usage_error(&o, "data_batch_1.bin: file not found");
    assert!(
        stderr(&o).contains("vovd data fetch cifar10"),
        "hint: {}",
        stderr(&o)
    );
    write_cifar(tmp.path(), 5, Some("test_batch.bin"));
    let o = train(&["--dataset", "cifar10", "--data-dir", &dir, "--epochs", "1"]);
    assert_usage_error(
        &o,
        "test_batch.bin: 15265 bytes is not a whole number of 3073-byte records",
    );
}

#[test]
fn help_teaches() {
    let o = vovd(&["train", "--help"]);
    let out = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "--bn-momentum",
        "--checkpoint-dir",
        "--resume",
        "standard-crop",
        "Model knobs",
    ] {
        assert!(out.contains(needle), "help lacks {needle}");
    }
}
