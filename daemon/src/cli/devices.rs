//! `vovd devices`: the devices this host offers, and with `--compare` a check
//! that a GPU computes what the CPU does (same weights, same batch, max abs
//! difference of the logits in evaluation and in training mode).

use std::process::ExitCode;

use candle_core::{Device, Tensor};
use clap::Args;
use serde::Serialize;

use super::CliError;
use vov_spec::Preset;

use crate::model::{BnConfig, BuildOptions, InputShape, Model, ModelKnobs, ModelSpec};
use crate::runtime::gpu::{self, DeviceLabel};

/// Arguments of `vovd devices`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vovd devices\n  vovd devices --compare cuda:0 --model vovnet-27-slim --json"
)]
pub struct DevicesArgs {
    /// Run one forward pass on this device and on the CPU and print the difference.
    #[arg(long, value_name = "DEVICE", value_parser = parse_label)]
    pub compare: Option<DeviceLabel>,
    /// Model preset for --compare.
    #[arg(long, default_value_t = Preset::Vovnet27Slim, value_name = "PRESET")]
    pub model: Preset,
    /// Images in the --compare batch.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_label(s: &str) -> Result<DeviceLabel, String> {
    s.parse().map_err(|e: gpu::DeviceError| e.to_string())
}

/// One device as listed.
#[derive(Debug, Serialize)]
struct DeviceRow {
    label: String,
    name: String,
    memory_bytes: u64,
    driver: String,
}

/// The devices, and whether this build can use GPUs.
#[derive(Debug, Serialize)]
struct Listing {
    cuda_compiled: bool,
    cuda_version: Option<String>,
    gpus: Vec<DeviceRow>,
}

/// The outcome of `--compare`.
#[derive(Debug, Serialize)]
pub(super) struct Comparison {
    /// The device compared with the CPU.
    pub device: String,
    /// The model.
    pub model: String,
    /// Images in the batch.
    pub batch: usize,
    /// Largest |logit| on the CPU (the scale of the differences).
    pub max_abs_logit: f32,
    /// Max abs difference of the logits, BatchNorm with moving statistics.
    pub max_abs_diff_eval: f32,
    /// Max abs difference of the logits, BatchNorm with batch statistics.
    pub max_abs_diff_train: f32,
}

fn build(model: Preset, device: &Device) -> Result<Model, CliError> {
    let spec = ModelSpec::resolve(model, &ModelKnobs::default())
        .map_err(|e| CliError::Usage(format!("--model: {e}")))?;
    let opts = BuildOptions {
        input: InputShape {
            channels: 3,
            height: 32,
            width: 32,
        },
        classes: 10,
        bn: BnConfig::default(),
        device: device.clone(),
        seed: 0,
    };
    Model::build(&spec, &opts).map_err(|e| CliError::Failed(e.to_string()))
}

/// Compares the logits of `model` on `label` with the CPU's for one seeded batch.
pub(super) fn compare(
    label: DeviceLabel,
    model: Preset,
    batch: usize,
) -> Result<Comparison, CliError> {
    let fail = |e: candle_core::Error| CliError::Failed(e.to_string());
    let device = gpu::open(label).map_err(|e| CliError::Usage(e.to_string()))?;
    let cpu = build(model, &Device::Cpu)?;
    let other = build(model, &device)?;
    let x = Tensor::randn(0f32, 1., (batch, 3, 32, 32), &Device::Cpu).map_err(fail)?;
    let x_dev = x.to_device(&device).map_err(fail)?;
    let diff = |train: bool| -> candle_core::Result<(f32, f32)> {
        let a = cpu.forward_t(&x, train)?;
        let b = other.forward_t(&x_dev, train)?.to_device(&Device::Cpu)?;
        let scale = a.abs()?.max_all()?.to_scalar::<f32>()?;
        Ok(((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?, scale))
    };
    let (eval, scale) = diff(false).map_err(fail)?;
    let (train, _) = diff(true).map_err(fail)?;
    Ok(Comparison {
        device: label.to_string(),
        model: model.to_string(),
        batch,
        max_abs_logit: scale,
        max_abs_diff_eval: eval,
        max_abs_diff_train: train,
    })
}

pub(super) fn run(args: &DevicesArgs) -> Result<ExitCode, CliError> {
    if let Some(label) = args.compare {
        let c = compare(label, args.model, args.batch)?;
        if args.json {
            super::output::print_json(&c)?;
        } else {
            println!(
                "{} vs cpu, {} on {} images: max |diff| {:.3e} (eval), {:.3e} (train), max |logit| {:.3}",
                c.device, c.model, c.batch, c.max_abs_diff_eval, c.max_abs_diff_train, c.max_abs_logit
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let listing = Listing {
        cuda_compiled: gpu::cuda_compiled(),
        cuda_version: gpu::driver_cuda_version(),
        gpus: gpu::discover()
            .into_iter()
            .map(|g| DeviceRow {
                label: DeviceLabel::Cuda(g.index).to_string(),
                name: g.name,
                memory_bytes: g.memory_bytes,
                driver: g.driver,
            })
            .collect(),
    };
    if args.json {
        return super::output::print_json(&listing).map(|()| ExitCode::SUCCESS);
    }
    let mut rows = vec![vec![
        "cpu".to_string(),
        crate::runtime::fingerprint::Fingerprint::detect("cpu", None, 0).cpu_model,
        String::new(),
        String::new(),
    ]];
    rows.extend(listing.gpus.iter().map(|g| {
        vec![
            g.label.clone(),
            g.name.clone(),
            format!("{:.1} GiB", g.memory_bytes as f64 / (1u64 << 30) as f64),
            g.driver.clone(),
        ]
    }));
    super::output::print_table(&["device", "name", "memory", "driver"], &rows)?;
    if !listing.cuda_compiled && !listing.gpus.is_empty() {
        eprintln!("this vovd is CPU-only: build with --features cuda to use the GPUs");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_against_itself_is_exact() {
        let c = compare(DeviceLabel::Cpu, Preset::DensenetKoshian2, 2).unwrap();
        assert_eq!(c.max_abs_diff_eval, 0.0);
        assert_eq!(c.max_abs_diff_train, 0.0);
        assert!(c.max_abs_logit > 0.0);
    }
}
