//! `vovd evaluate --weights FILE`: validation accuracy and the published timings
//! of kept weights, on this host.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use vov_spec::measures::{self, Measures};
use vov_spec::DatasetName;

use super::output::{print_json, print_table};
use super::CliError;
use crate::runtime::gpu::{self, DeviceLabel};
use crate::runtime::threads;
use crate::train::evaluate::{self, EvaluateOptions, EvaluationRecord};
use crate::train::TrainError;

/// Arguments of `vovd evaluate`.
#[derive(Debug, Args)]
#[command(
    after_help = "The weights file is one vov wrote (keep_weights in a sweep, fetched with \
`vovctl weights`): its metadata holds the model's resolved spec, so nothing else is needed. On the \
data set and validation images the trial used, the accuracy equals that of the epoch the weights \
are from.\n\nExample:\n  vovd evaluate --weights t3f2a9c1d0b4e5f60.safetensors --measure batch1 --threads 2"
)]
pub struct EvaluateArgs {
    /// The weights file (safetensors written by vov).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Data set [default: the one the weights were trained on].
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<DatasetName>,
    /// First N validation images [default: the trial's own val_limit].
    #[arg(long, value_name = "N")]
    pub val_limit: Option<usize>,
    /// What to measure, comma-separated: accuracy, batch1, batch32.
    #[arg(long, value_name = "LIST", default_value = measures::ALL)]
    pub measure: String,
    /// Compute threads [default: the CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Device: cpu, or cuda:N on a CUDA build.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceLabel,
    /// Data root.
    #[arg(long, default_value = vov_spec::LOCAL_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Print the record as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The measurements of a `--measure` list.
fn measures(list: &str) -> Result<Measures, CliError> {
    Measures::parse(list).map_err(|e| CliError::Usage(format!("invalid value for --measure: {e}")))
}

fn rows(r: &EvaluationRecord) -> Vec<Vec<String>> {
    let mut rows = vec![
        vec!["model".into(), r.model.clone()],
        vec!["params".into(), r.params.total.to_string()],
        vec![
            "weights".into(),
            format!(
                "{} (epoch {}, val acc {:.4} when trained)",
                r.weights.kept, r.weights.epoch, r.weights.val_acc
            ),
        ],
        vec![
            "data set".into(),
            format!("{} ({} validation images)", r.dataset, r.val_images),
        ],
        vec!["device".into(), r.fingerprint.device.clone()],
    ];
    if let Some(acc) = r.val_acc {
        rows.push(vec!["val acc".into(), format!("{acc:.4}")]);
    }
    if let Some(b) = &r.batch1 {
        rows.push(vec!["batch-1 p50 ms".into(), format!("{:.3}", b.p50_ms)]);
        rows.push(vec!["batch-1 total s".into(), format!("{:.3}", b.total_s)]);
    }
    if let Some(b) = &r.batch32 {
        rows.push(vec![
            "batch-32 images/s".into(),
            format!("{:.1}", b.images_per_s),
        ]);
    }
    rows
}

pub(super) fn run(args: &EvaluateArgs) -> Result<ExitCode, CliError> {
    let Measures { accuracy, timings } = measures(&args.measure)?;
    let threads = args.threads.unwrap_or_else(threads::available);
    threads::configure(threads)
        .map_err(|e| CliError::Usage(format!("invalid value for --threads: {e}")))?;
    let device = gpu::open(args.device).map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = EvaluateOptions {
        dataset: args.dataset,
        data_dir: Some(args.data_dir.clone()),
        val_limit: args.val_limit,
        accuracy,
        measure: timings,
        device,
        device_label: args.device.to_string(),
        threads,
    };
    // A weights file that cannot be used is the caller's to fix, like a bad spec.
    let record = evaluate::run(&args.weights, &opts).map_err(|e| match e {
        TrainError::Weights { .. } => CliError::Usage(e.to_string()),
        e => CliError::from_run(e),
    })?;
    if args.json {
        print_json(&record)?;
    } else {
        print_table(&["", ""], &rows(&record))?;
    }
    Ok(ExitCode::SUCCESS)
}
