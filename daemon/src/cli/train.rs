//! `vovd train`: one trial from the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::print_json;
use super::CliError;
use crate::data::{availability, Augmentation, DatasetName};
use crate::model::{ModelKnobs, ModelSpec};
use crate::runtime::gpu::{self, DeviceLabel};
use crate::runtime::threads;
use crate::train::spec::KERAS_BN_MOMENTUM;
use crate::train::{
    self, checkpoint, Measure, OptimizerKind, TrainEvent, TrainOptions, TrainRecord, TrainSpec,
    WdMode,
};

/// Arguments of `vovd train`.
#[derive(Debug, Args)]
#[command(
    args_override_self = true,
    allow_negative_numbers = true,
    after_help = "Defaults: 100 epochs, batch 128, Adam 1e-3, BN momentum 0.99 and no augmentation, as \
Keras' model.fit trains; the published benchmark adds --augmentation standard. Runs of a few hundred \
steps need --bn-momentum 0.9 or validation accuracy sits near chance (vovd warns)."
)]
pub struct TrainArgs {
    /// Model preset (see `vovd models`).
    #[arg(long, value_name = "PRESET")]
    pub model: String,
    /// Data set: cifar10, fashion-mnist or synthetic.
    #[arg(long, default_value = "cifar10", value_parser = parse::<DatasetName>)]
    pub dataset: DatasetName,
    /// Epochs to train.
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Optimizer: adam, adamw or sgd.
    #[arg(long, default_value = "adam", value_parser = parse::<OptimizerKind>)]
    pub optimizer: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay strength (0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Weight decay mode: l2 (added to the loss, like Keras) or decoupled
    /// [default: l2; decoupled for adamw].
    #[arg(long, value_parser = parse::<WdMode>)]
    pub wd_mode: Option<WdMode>,
    /// Augmentation: none (like Keras' fit), flip, shift, crop, standard (shift + flip,
    /// the published setting) or standard-crop.
    #[arg(long, default_value = "none", value_parser = parse::<Augmentation>)]
    pub augmentation: Augmentation,
    /// Seed of weights, data order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// BatchNorm momentum, Keras convention [default: Keras' 0.99 for runs of
    /// 1,000 steps or more, else 1 - 10/steps, at least 0].
    #[arg(long, value_name = "M")]
    pub bn_momentum: Option<f64>,
    /// Use only the first N training images.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Use only the first N validation images.
    #[arg(long, value_name = "N")]
    pub val_limit: Option<usize>,
    /// Skip the batch-1 latency measurement.
    #[arg(long)]
    pub no_batch1: bool,
    /// Skip the batch-32 throughput measurement.
    #[arg(long)]
    pub no_batch32: bool,
    /// Compute threads [default: the CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Device: cpu, or cuda:N on a build with the cuda feature.
    #[arg(long, default_value = "cpu", value_parser = parse::<DeviceLabel>)]
    pub device: DeviceLabel,
    /// Data root: cifar10/ (or cifar-10-batches-bin/) and fashion-mnist/ below it.
    #[arg(long, default_value = "data", value_name = "DIR")]
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
    /// Model knobs on top of the preset.
    #[command(flatten)]
    pub knobs: KnobArgs,
}

/// Model knobs as flags; lists are comma-separated.
#[derive(Debug, Args, Default)]
pub struct KnobArgs {
    /// VoVNet: stem output channels, e.g. 64,64,128.
    #[arg(long, help_heading = "Model knobs")]
    pub stem: Option<UsizeList>,
    /// VoVNet: CBR width per stage, e.g. 64,80,96,112.
    #[arg(long, help_heading = "Model knobs")]
    pub stage_widths: Option<UsizeList>,
    /// VoVNet: OSA output channels per stage.
    #[arg(long, help_heading = "Model knobs")]
    pub stage_outputs: Option<UsizeList>,
    /// VoVNet: OSA modules per stage.
    #[arg(long, help_heading = "Model knobs")]
    pub repetitions: Option<UsizeList>,
    /// VoVNet: CBR units per OSA module.
    #[arg(long, help_heading = "Model knobs")]
    pub osa_layers: Option<usize>,
    /// DenseNet: growth rate k.
    #[arg(long, help_heading = "Model knobs")]
    pub growth_rate: Option<usize>,
    /// DenseNet: dense layers per block, e.g. 1,2,4,3.
    #[arg(long, help_heading = "Model knobs")]
    pub blocks: Option<UsizeList>,
    /// DenseNet: bottleneck width.
    #[arg(long, help_heading = "Model knobs")]
    pub bottleneck: Option<usize>,
    /// DenseNet: transition compression in (0, 1].
    #[arg(long, help_heading = "Model knobs")]
    pub compression: Option<f64>,
    /// DenseNet: stem output channels.
    #[arg(long, help_heading = "Model knobs")]
    pub stem_channels: Option<usize>,
}

/// A comma-separated list of counts (`64,80,96,112`), given as one value so that a
/// repeated flag replaces rather than extends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsizeList(pub Vec<usize>);

impl std::str::FromStr for UsizeList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(|p| {
                p.trim()
                    .parse::<usize>()
                    .map_err(|e| format!("'{p}' in '{s}': {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(UsizeList)
    }
}

impl KnobArgs {
    fn knobs(&self) -> ModelKnobs {
        let list = |l: &Option<UsizeList>| l.as_ref().map(|l| l.0.clone());
        ModelKnobs {
            stem: list(&self.stem),
            stage_widths: list(&self.stage_widths),
            stage_outputs: list(&self.stage_outputs),
            repetitions: list(&self.repetitions),
            osa_layers: self.osa_layers,
            growth_rate: self.growth_rate,
            blocks: list(&self.blocks),
            bottleneck: self.bottleneck,
            compression: self.compression,
            stem_channels: self.stem_channels,
        }
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

impl TrainArgs {
    /// Training steps the run will take (the full set's size from the data
    /// directory when no limit is given; 50,000 when unknown).
    fn steps(&self) -> usize {
        let images = self.train_limit.unwrap_or_else(|| {
            match availability::check(self.dataset, &self.data_dir).train_images {
                0 => 50_000,
                n => n as usize,
            }
        });
        self.epochs * images.div_ceil(self.batch_size.max(1))
    }

    /// `--bn-momentum`; else the resumed checkpoint's; else the default for a run
    /// of this length.
    fn bn_momentum(&self) -> f64 {
        if let Some(m) = self.bn_momentum {
            return m;
        }
        let resumed = self.resume.as_deref().and_then(|path| {
            checkpoint::load(&checkpoint::resolve(path), &candle_core::Device::Cpu).ok()
        });
        match resumed {
            Some(ck) => ck.meta.spec.bn_momentum,
            None => TrainSpec::default_bn_momentum(self.steps()),
        }
    }

    /// The validated spec these flags describe; errors name the flag.
    pub fn spec(&self) -> Result<TrainSpec, CliError> {
        let model = ModelSpec::resolve(&self.model, &self.knobs.knobs())
            .map_err(|e| CliError::Usage(format!("--model {}: {e}", self.model)))?;
        let wd_mode = self.wd_mode.unwrap_or(match self.optimizer {
            OptimizerKind::Adamw => WdMode::Decoupled,
            _ => WdMode::L2,
        });
        let spec = TrainSpec {
            model,
            dataset: self.dataset,
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            wd_mode,
            augmentation: self.augmentation,
            seed: self.seed,
            bn_momentum: self.bn_momentum(),
            train_limit: self.train_limit,
            val_limit: self.val_limit,
            measure: Measure {
                batch1: !self.no_batch1,
                batch32: !self.no_batch32,
            },
        };
        spec.validate().map_err(|e| {
            let flag = if e.field == "model" {
                "model".to_string()
            } else {
                e.field.replace('_', "-")
            };
            CliError::Usage(format!("invalid value for --{flag}: {e}"))
        })?;
        Ok(spec)
    }
}

pub(super) fn run(args: &TrainArgs) -> Result<ExitCode, CliError> {
    let spec = args.spec()?;
    if args.bn_momentum.is_none() && args.resume.is_none() && spec.bn_momentum < KERAS_BN_MOMENTUM {
        eprintln!(
            "note: bn_momentum {:.3} for this {}-step run, so that BatchNorm's moving statistics \
             average over its last tenth (Keras' 0.99 would leave them near their initial \
             values); --bn-momentum sets it",
            spec.bn_momentum,
            args.steps()
        );
    }
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
        ..TrainOptions::cpu(threads)
    };
    let mut progress = Progress::new(args.json);
    let result = train::run(&spec, &opts, &mut |ev| progress.on_event(ev));
    progress.finish();
    let record = result.map_err(|e| {
        if e.is_invalid_input() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Failed(e.to_string())
        }
    })?;
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
