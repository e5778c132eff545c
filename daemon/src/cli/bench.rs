//! `vovd bench`: training and inference speed of the benchmark models on this
//! machine, each model in a fresh process so that peak memory is its own.

use std::process::{Command, ExitCode, Stdio};

use clap::Args;
use serde::{Deserialize, Serialize};

use vov_spec::Preset;

use super::CliError;
use crate::runtime::fingerprint::Fingerprint;
use crate::runtime::gpu::{self, DeviceLabel};
use crate::runtime::peak::CpuPeak;
use crate::runtime::threads;
use crate::train::bench::{self, BenchOptions, BenchResult};

/// Models measured when none are named.
const DEFAULT_MODELS: [Preset; 4] = [
    Preset::Vovnet27Slim,
    Preset::Vovnet39,
    Preset::DensenetKoshian2,
    Preset::DensenetKoshian5,
];

/// Arguments of `vovd bench`.
#[derive(Debug, Args)]
#[command(
    after_help = "Random inputs; training at batch 128 with Adam after warm-up steps; \
batch-1 latency and batch-32 throughput in inference mode. scripts/bench-compare.sh runs the \
same protocol in PyTorch and Keras and prints the ratios.\n\nExample:\n  vovd bench --models vovnet-27-slim --threads 2 --json"
)]
pub struct BenchArgs {
    /// Comma-separated presets (`--model` works too).
    #[arg(long, alias = "model", value_delimiter = ',', default_values_t = DEFAULT_MODELS, value_name = "LIST")]
    pub models: Vec<Preset>,
    /// Compute threads [default: the CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Device: cpu, or cuda:N on a CUDA build.
    #[arg(long, default_value = "cpu", value_parser = parse_label)]
    pub device: DeviceLabel,
    /// Timed training steps (batch 128).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub train_steps: usize,
    /// Untimed training steps before them.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub warmup: usize,
    /// Single-image passes timed.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub batch1_images: usize,
    /// Images timed in batches of 32.
    #[arg(long, default_value_t = 640, value_name = "N")]
    pub batch32_images: usize,
    /// Print one JSON object (the shape scripts/reference/bench.py prints).
    #[arg(long)]
    pub json: bool,
    /// Measure the one model in this process and print its result as JSON.
    #[arg(long, hide = true)]
    pub one: bool,
}

fn parse_label(s: &str) -> Result<DeviceLabel, String> {
    s.parse().map_err(|e: gpu::DeviceError| e.to_string())
}

/// The machine a report describes.
#[derive(Debug, Serialize, Deserialize)]
struct Machine {
    cpu_model: String,
    threads: usize,
    device: String,
    fingerprint: String,
    /// The CPU's f32 peak over the benchmark's threads, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peak: Option<CpuPeak>,
}

/// What `vovd bench --json` prints.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    framework: String,
    machine: Machine,
    results: Vec<BenchResult>,
}

impl BenchArgs {
    fn options(&self) -> BenchOptions {
        BenchOptions {
            train_steps: self.train_steps.max(1),
            warmup: self.warmup,
            batch1_images: self.batch1_images.max(1),
            batch32_images: self.batch32_images.max(1),
            batch_size: 128,
        }
    }
}

/// Measures one model in a child process.
fn child(args: &BenchArgs, model: Preset, threads: usize) -> Result<BenchResult, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!("bench: {model} ...");
    let out = Command::new(exe)
        .args(["bench", "--one", "--models", model.as_str()])
        .args(["--threads", &threads.to_string()])
        .args(["--device", &args.device.to_string()])
        .args(["--train-steps", &args.train_steps.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--batch1-images", &args.batch1_images.to_string()])
        .args(["--batch32-images", &args.batch32_images.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if !out.status.success() {
        return Err(CliError::Failed(format!(
            "benchmark of {model} failed ({})",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| CliError::Failed(format!("{model}: {e}")))
}

/// GFLOP/s of `flops` done in `ms` milliseconds.
fn gflops(flops: u64, ms: f64) -> f64 {
    if ms > 0.0 {
        flops as f64 / ms / 1e6
    } else {
        0.0
    }
}

fn print_table(report: &Report) -> Result<(), CliError> {
    let m = &report.machine;
    println!(
        "{} on {} ({}, {} threads, fingerprint {})",
        report.framework, m.cpu_model, m.device, m.threads, m.fingerprint
    );
    if let Some(peak) = &m.peak {
        println!("{peak}");
    }
    let rows: Vec<Vec<String>> = report
        .results
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                format!("{:.1}", r.train_images_per_s),
                format!("{:.0}", r.train_step_ms),
                format!("{:.2}", r.batch1_p50_ms),
                format!("{:.1}", r.batch32_images_per_s),
                format!("{:.0}", r.peak_rss_bytes as f64 / 1048576.0),
                format!("{:.3}", r.params as f64 / 1e6),
                format!("{:.1}", gflops(r.train_step_flops, r.train_step_ms)),
                format!("{:.1}", gflops(r.batch1_flops, r.batch1_p50_ms)),
            ]
        })
        .collect();
    super::output::print_table(
        &[
            "model",
            "train img/s",
            "step ms",
            "batch-1 p50 ms",
            "batch-32 img/s",
            "peak MiB",
            "params M",
            "train GFLOP/s",
            "batch-1 GFLOP/s",
        ],
        &rows,
    )
}

pub(super) fn run(args: &BenchArgs) -> Result<ExitCode, CliError> {
    let models = &args.models;
    let threads = args.threads.unwrap_or_else(threads::available);
    if args.one {
        let [model] = models.as_slice() else {
            return Err(CliError::Usage("--one measures exactly one model".into()));
        };
        threads::configure(threads).map_err(|e| CliError::Usage(e.to_string()))?;
        let device = gpu::open(args.device).map_err(|e| CliError::Usage(e.to_string()))?;
        let result = bench::run(*model, &args.options(), &device)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        return super::output::print_json(&result).map(|()| ExitCode::SUCCESS);
    }
    let fp = Fingerprint::detect(&args.device.to_string(), None, threads);
    let results = models
        .iter()
        .map(|m| child(args, *m, threads))
        .collect::<Result<Vec<_>, _>>()?;
    let report = Report {
        framework: format!("vov {}", env!("CARGO_PKG_VERSION")),
        machine: Machine {
            cpu_model: fp.cpu_model,
            threads,
            device: fp.device_name,
            fingerprint: fp.id,
            peak: matches!(args.device, DeviceLabel::Cpu)
                .then(|| CpuPeak::detect(threads))
                .flatten(),
        },
        results,
    };
    if args.json {
        super::output::print_json(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}
