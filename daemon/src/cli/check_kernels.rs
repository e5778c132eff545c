//! `vovd check-kernels`: shows on this machine that the custom CPU kernels train
//! like candle's reference ops (same seed, same data, loss by loss).

use std::process::ExitCode;

use clap::Args;

use vov_spec::Preset;

use super::CliError;
use crate::runtime::threads;
use crate::train::kernel_check::KernelCheck;

/// Arguments of `vovd check-kernels`.
#[derive(Debug, Args)]
#[command(
    after_help = "Trains the model twice on the synthetic set (one epoch of --steps \
batches, no augmentation, the same seed): with the custom CPU kernels, then with candle's \
reference ops (several times slower), then with the reference ops and the learning rate \
changed by one part in a million: training amplifies rounding differences, and that control \
run shows by how much. Prints the largest relative loss differences and exits 1 when a step of \
the kernels' run differs from the reference by more than --tolerance.\n\nExample:\n  vovd check-kernels \
--model densenet-koshian-2 --steps 200 --batch-size 32"
)]
pub struct CheckKernelsArgs {
    /// Preset to train.
    #[arg(long, default_value_t = Preset::DensenetKoshian2, value_name = "PRESET")]
    pub model: Preset,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,
    /// Seed of the weights and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest relative loss difference accepted at any step.
    #[arg(long, default_value_t = 1e-3, value_name = "X")]
    pub tolerance: f64,
    /// Compute threads [default: the CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print both loss curves and the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: &CheckKernelsArgs) -> Result<ExitCode, CliError> {
    if args.steps == 0 || args.batch_size == 0 {
        return Err(CliError::Usage(
            "--steps and --batch-size must be at least 1".into(),
        ));
    }
    let threads = args.threads.unwrap_or_else(threads::available);
    threads::configure(threads).map_err(|e| CliError::Usage(e.to_string()))?;
    let check = KernelCheck {
        model: args.model,
        steps: args.steps,
        batch_size: args.batch_size,
        seed: args.seed,
    };
    eprintln!(
        "check-kernels: {} for {} steps of {}, kernels then reference ops ...",
        args.model, args.steps, args.batch_size
    );
    let result = check
        .run(threads)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let above = result.first_step_above(args.tolerance);
    let control_above = result.control_first_step_above(args.tolerance);
    if args.json {
        super::output::print_json(&serde_json::json!({
            "comparison": result,
            "tolerance": args.tolerance,
            "first_step_above": above,
            "control_first_step_above": control_above,
        }))?;
    } else {
        println!(
            "{}: {} steps, max relative loss difference {:.2e} at step {} (final loss {:.6} vs {:.6})",
            result.model,
            result.kernels.len(),
            result.max_rel_diff,
            result.max_at_step,
            result.kernels.last().copied().unwrap_or(f64::NAN),
            result.reference.last().copied().unwrap_or(f64::NAN),
        );
        let describe = |step: Option<usize>| match step {
            Some(step) => format!("first step above {:e}: {step}", args.tolerance),
            None => format!("every step within {:e}", args.tolerance),
        };
        println!("kernels vs reference: {}", describe(above));
        println!(
            "control (reference, lr x (1 + 1e-6)): max {:.2e}, {}",
            result.control_max_rel_diff,
            describe(control_above)
        );
    }
    Ok(if above.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
