//! A resolved configuration as the `vov.v1.TrialSpec` a daemon takes.

use vov_proto::pb;

use super::file::Config;
use super::keys::Value;

fn name<'a>(c: &'a Config, k: &str) -> &'a str {
    match c.get(k).map(|s| &s.value) {
        Some(Value::Name(s)) => s,
        _ => "",
    }
}

fn int(c: &Config, k: &str) -> Option<i64> {
    match c.get(k).map(|s| &s.value) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

fn float(c: &Config, k: &str) -> f64 {
    match c.get(k).map(|s| &s.value) {
        Some(Value::Float(x)) => *x,
        Some(Value::Int(i)) => *i as f64,
        _ => 0.0,
    }
}

fn list(c: &Config, k: &str) -> Vec<u32> {
    match c.get(k).map(|s| &s.value) {
        Some(Value::IntList(v)) => v.iter().map(|&x| x as u32).collect(),
        _ => Vec::new(),
    }
}

fn names(c: &Config, k: &str) -> Vec<String> {
    match c.get(k).map(|s| &s.value) {
        Some(Value::NameList(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// The spec for a configuration (with defaults filled in) and a seed.
pub fn trial_spec(c: &Config, seed: u64) -> pb::TrialSpec {
    let optimizer = match name(c, "optimizer") {
        "adamw" => pb::Optimizer::Adamw,
        "sgd" => pb::Optimizer::Sgd,
        _ => pb::Optimizer::Adam,
    };
    let wd_mode = match (name(c, "wd_mode"), optimizer) {
        ("decoupled", _) | ("", pb::Optimizer::Adamw) => pb::WeightDecayMode::Decoupled,
        _ => pb::WeightDecayMode::L2,
    };
    let augmentation = match name(c, "augmentation") {
        "none" => pb::Augmentation::None,
        "flip" => pb::Augmentation::Flip,
        "shift" => pb::Augmentation::Shift,
        "crop" => pb::Augmentation::Crop,
        "standard-crop" => pb::Augmentation::StandardCrop,
        _ => pb::Augmentation::Standard,
    };
    let device = match name(c, "device") {
        "cpu" => pb::DeviceRequirement::Cpu,
        "gpu" => pb::DeviceRequirement::Gpu,
        _ => pb::DeviceRequirement::Any,
    };
    let measure = names(c, "measure");
    pb::TrialSpec {
        model: name(c, "model").to_string(),
        knobs: Some(pb::ModelKnobs {
            stem: list(c, "stem"),
            stage_widths: list(c, "stage_widths"),
            stage_outputs: list(c, "stage_outputs"),
            repetitions: list(c, "repetitions"),
            osa_layers: int(c, "osa_layers").map(|v| v as u32),
            growth_rate: int(c, "growth_rate").map(|v| v as u32),
            blocks: list(c, "blocks"),
            bottleneck: int(c, "bottleneck").map(|v| v as u32),
            compression: c
                .contains_key("compression")
                .then(|| float(c, "compression")),
            stem_channels: int(c, "stem_channels").map(|v| v as u32),
        }),
        dataset: name(c, "dataset").to_string(),
        epochs: int(c, "epochs").unwrap_or(0) as u32,
        batch_size: int(c, "batch_size").unwrap_or(0) as u32,
        optimizer: optimizer as i32,
        lr: float(c, "lr"),
        momentum: float(c, "momentum"),
        nesterov: matches!(c.get("nesterov").map(|s| &s.value), Some(Value::Bool(true))),
        weight_decay: float(c, "weight_decay"),
        wd_mode: wd_mode as i32,
        augmentation: augmentation as i32,
        seed,
        bn_momentum: float(c, "bn_momentum"),
        train_limit: int(c, "train_limit").map(|v| v as u64),
        val_limit: int(c, "val_limit").map(|v| v as u64),
        measure_batch1: measure.iter().any(|m| m == "batch1"),
        measure_batch32: measure.iter().any(|m| m == "batch32"),
        device: device as i32,
    }
}
