//! Running Slurm's commands (`sbatch`, `squeue`, `scancel`, `scontrol`, `sinfo`):
//! the one place they are started, each call counted and traced so a sweep's load
//! on the cluster's controller can be read off (`RUST_LOG=vovctl=debug`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use thiserror::Error;

/// A Slurm command failed.
#[derive(Debug, Clone, Error)]
pub enum SlurmError {
    /// It could not be started (Slurm is not installed, or not on `PATH`).
    #[error("{program}: cannot run it ({message}); is Slurm's client installed and on PATH?")]
    Missing {
        /// The command.
        program: String,
        /// Why.
        message: String,
    },
    /// It ran and failed.
    #[error("{command}: exit {code}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit code (-1 for a signal).
        code: i32,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// Its output made no sense.
    #[error("{command}: {message}")]
    Output {
        /// The command line.
        command: String,
        /// What was wrong.
        message: String,
    },
}

/// Runs Slurm's commands and counts them.
#[derive(Debug, Default)]
pub struct Commands {
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Commands {
    /// Runs `program args...` and returns its standard output.
    pub async fn run(&self, program: &str, args: &[String]) -> Result<String, SlurmError> {
        let command = format!("{program} {}", args.join(" "));
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(program.to_string())
            .or_default() += 1;
        let started = Instant::now();
        let out = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| SlurmError::Missing {
                program: program.to_string(),
                message: e.to_string(),
            })?;
        tracing::debug!(
            target: "vovctl::slurm",
            "{command}: {:?} in {:.0} ms",
            out.status.code(),
            started.elapsed().as_secs_f64() * 1e3
        );
        if !out.status.success() {
            return Err(SlurmError::Failed {
                command,
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// How often each command ran.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        let calls = self.calls();
        if !calls.is_empty() {
            tracing::debug!(target: "vovctl::slurm", "Slurm commands run: {calls:?}");
        }
    }
}
