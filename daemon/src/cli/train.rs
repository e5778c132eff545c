//! `vovd train`: one trial from the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use vov_spec::TrialSpec;

use super::keys::KeyArgs;
use super::output::print_json;
use super::CliError;
use crate::runtime::gpu::{self, DeviceLabel};
use crate::runtime::threads;
use crate::train::TrainSpec;
use crate::train::{self, checkpoint, TrainEvent, TrainOptions, TrainRecord};

/// Arguments of `vovd train`: the trial's keys (from the key registry of
/// `vov-spec`, one flag each) and how and where this run goes.
#[derive(Debug, Args)]
#[command(
    args_override_self = true,
    allow_negative_numbers = true,
    after_help = "Defaults are the published protocol's, the same as a sweep trial's: 100 epochs, \
batch 128, Adam 1e-3, standard augmentation (shift + flip), BN momentum 0.99, both timings. Runs of \
a few hundred steps need a lower --bn-momentum (about 1 - 10/steps) or validation accuracy sits \
near chance (vovd warns). With --resume, keys not given come from the checkpoint."
)]
pub struct TrainArgs {
    /// The trial's keys.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Skip the batch-1 latency measurement (as --measure without batch1).
    #[arg(long)]
    pub no_batch1: bool,
    /// Skip the batch-32 throughput measurement (as --measure without batch32).
    #[arg(long)]
    pub no_batch32: bool,
    /// Compute threads [default: the CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Device: cpu, or cuda:N on a build with the cuda feature.
    #[arg(long, default_value = "cpu", value_parser = parse::<DeviceLabel>)]
    pub device: DeviceLabel,
    /// Data root: cifar10/ (or cifar-10-batches-bin/) and fashion-mnist/ below it.
    #[arg(long, default_value = vov_spec::LOCAL_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Write checkpoints to DIR/checkpoint.safetensors.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Checkpoint every N epochs (and after the last).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub checkpoint_every: usize,
    /// Resume from a checkpoint (file or directory); only --epochs may grow.
    #[arg(long, value_name = "PATH")]
    pub resume: Option<PathBuf>,
    /// Print the result record as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

impl TrainArgs {
    /// The trial the flags describe: the checkpoint's when resuming, else the
    /// published protocol, with every key given on the command line applied.
    fn trial(&self) -> Result<TrialSpec, CliError> {
        let resumed = self.resume.as_deref().and_then(|path| {
            checkpoint::load(&checkpoint::resolve(path), &candle_core::Device::Cpu).ok()
        });
        let mut trial = match (resumed, self.keys.model()) {
            (Some(ck), _) => ck.meta.spec.trial,
            (None, Some(model)) => TrialSpec::new(model),
            (None, None) => {
                return Err(CliError::Usage(
                    "--model is required (a preset, see `vovd models`) unless --resume names a checkpoint".into(),
                ))
            }
        };
        self.keys.apply(&mut trial)?;
        trial.measure.batch1 &= !self.no_batch1;
        trial.measure.batch32 &= !self.no_batch32;
        Ok(trial)
    }

    /// The validated spec these flags describe; errors name the flag.
    pub fn spec(&self) -> Result<TrainSpec, CliError> {
        TrainSpec::resolve(self.trial()?).map_err(|e| {
            CliError::Usage(format!(
                "invalid value for --{}: {e}",
                e.key.replace('_', "-")
            ))
        })
    }
}

pub(super) fn run(args: &TrainArgs) -> Result<ExitCode, CliError> {
    let spec = args.spec()?;
    let threads = args.threads.unwrap_or_else(threads::available);
    threads::configure(threads)
        .map_err(|e| CliError::Usage(format!("invalid value for --threads: {e}")))?;
    let device = gpu::open(args.device).map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = TrainOptions {
        device,
        device_label: args.device.to_string(),
        data_dir: Some(args.data_dir.clone()),
        checkpoint_dir: args.checkpoint_dir.clone(),
        checkpoint_every: args.checkpoint_every,
        resume: args.resume.clone(),
        stop_after: None,
        ..TrainOptions::cpu(threads)
    };
    let mut progress = Progress::new(args.json);
    let result = train::run(&spec, &opts, &mut |ev| progress.on_event(ev));
    progress.finish();
    let record = result.map_err(CliError::from_run)?;
    if args.json {
        print_json(&record)?;
    } else {
        let (header, rows) = summary_table(&[&record]);
        super::output::print_table(&header, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The published columns for some records.
pub(super) fn summary_table(records: &[&TrainRecord]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "model",
        "MaxValAcc %",
        "epoch",
        "train s/ep",
        "train s/ep (pipeline)",
        "real-time inf. s",
        "p50 ms",
        "p99 ms",
        "batch inf. s",
        "Params (M)",
    ];
    let opt = |v: Option<f64>, prec: usize| {
        v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.prec$}"))
    };
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                format!("{:.2}", r.max_val_acc * 100.0),
                r.max_val_acc_epoch.to_string(),
                opt(r.train_s_per_epoch, 2),
                opt(r.pipeline_s_per_epoch, 2),
                opt(r.batch1.as_ref().map(|b| b.total_s), 2),
                opt(r.batch1.as_ref().map(|b| b.p50_ms), 3),
                opt(r.batch1.as_ref().map(|b| b.p99_ms), 3),
                opt(r.batch32.as_ref().map(|b| b.total_s), 3),
                format!("{:.3}", r.params.total as f64 / 1e6),
            ]
        })
        .collect();
    (header, rows)
}

/// Epoch lines (stdout, or stderr in JSON mode) and a progress bar on a terminal.
struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Progress {
    fn new(json: bool) -> Self {
        Progress {
            json,
            bar: None,
            epochs: 0,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.print(text)),
            None => self.print(text),
        }
    }

    fn print(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn on_event(&mut self, ev: &TrainEvent) {
        match ev {
            TrainEvent::Started {
                epochs,
                start_epoch,
                steps_per_epoch,
                params,
                train_images,
                val_images,
            } => {
                self.epochs = *epochs;
                self.line(&format!(
                    "training {epochs} epochs from epoch {} ({steps_per_epoch} steps each, {train_images} train / {val_images} val images, {} params)",
                    start_epoch + 1,
                    params.total
                ));
            }
            TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
            } => self.step(*epoch, *step, *steps, *loss),
            TrainEvent::Epoch(m) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.line(&format!(
                    "epoch {}/{}  train loss {:.4} acc {:.2}%  val loss {:.4} acc {:.2}%  {:.1}s (data wait {:.2}s, val {:.1}s)",
                    m.epoch,
                    self.epochs,
                    m.train_loss,
                    m.train_acc * 100.0,
                    m.val_loss,
                    m.val_acc * 100.0,
                    m.epoch_s,
                    m.data_wait_s,
                    m.val_s
                ));
            }
            TrainEvent::Checkpoint { .. } => {}
            TrainEvent::Timing { phase } => {
                self.line(&format!("timing {phase} inference over the validation set"))
            }
            TrainEvent::Warning { message } => {
                if let Some(bar) = &self.bar {
                    bar.suspend(|| eprintln!("warning: {message}"));
                } else {
                    eprintln!("warning: {message}");
                }
            }
        }
    }

    fn step(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        bar.set_prefix(epoch.to_string());
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.4}"));
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
