//! What a task learns from its environment, which Slurm sets: its job and array
//! task ids, its CPUs and GPUs; and asking Slurm to requeue it.

use std::process::Command;

use crate::runtime::gpu::{DeviceError, DeviceLabel};

/// The device a task is asked to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first visible GPU when the scheduler gave this task one and this
    /// build has CUDA, else the CPU.
    Auto,
    /// This device (`cuda:N` counts the GPUs this process sees).
    Label(DeviceLabel),
}

impl std::str::FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(DeviceChoice::Auto),
            other => other.parse().map(DeviceChoice::Label),
        }
    }
}

/// The Slurm variables of this process (unset and empty alike read as `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TaskEnv {
    /// `SLURM_JOB_ID`.
    pub(super) job_id: Option<String>,
    /// `SLURM_ARRAY_JOB_ID`.
    pub(super) array_job_id: Option<String>,
    /// `SLURM_ARRAY_TASK_ID`.
    pub(super) array_task_id: Option<String>,
    /// `SLURM_CPUS_PER_TASK`.
    pub(super) cpus_per_task: Option<String>,
    /// `CUDA_VISIBLE_DEVICES`.
    pub(super) cuda_visible: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl TaskEnv {
    /// This process's variables.
    pub(super) fn from_process() -> Self {
        TaskEnv {
            job_id: var("SLURM_JOB_ID"),
            array_job_id: var("SLURM_ARRAY_JOB_ID"),
            array_task_id: var("SLURM_ARRAY_TASK_ID"),
            cpus_per_task: var("SLURM_CPUS_PER_TASK"),
            cuda_visible: var("CUDA_VISIBLE_DEVICES"),
        }
    }

    /// The device `choice` names here, given whether this build has CUDA.
    pub(super) fn device(&self, choice: DeviceChoice, cuda_compiled: bool) -> DeviceLabel {
        match choice {
            DeviceChoice::Label(label) => label,
            DeviceChoice::Auto if cuda_compiled && self.cuda_visible.is_some() => {
                DeviceLabel::Cuda(0)
            }
            DeviceChoice::Auto => DeviceLabel::Cpu,
        }
    }

    /// Compute threads when none are given: Slurm's CPUs per task, else `available`.
    pub(super) fn threads(&self, available: usize) -> usize {
        self.cpus_per_task
            .as_deref()
            .and_then(|n| n.trim().parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(available)
    }

    /// What `scontrol requeue` takes for this task: `ARRAYJOB_TASK` for an array
    /// task, else the job id; `None` outside Slurm.
    pub(super) fn requeue_target(&self) -> Option<String> {
        let job = self.job_id.as_deref()?;
        match (&self.array_job_id, &self.array_task_id) {
            (Some(array), Some(task)) => Some(format!("{array}_{task}")),
            _ => Some(job.to_string()),
        }
    }

    /// The Slurm job, as the running event names it (`None` outside Slurm).
    pub(super) fn describe(&self) -> Option<String> {
        let job = self.job_id.as_deref()?;
        Some(match self.requeue_target() {
            Some(task) if task != job => format!("Slurm job {job} (array task {task})"),
            _ => format!("Slurm job {job}"),
        })
    }
}

/// Asks Slurm to requeue `target`; the error says why it did not.
pub(super) fn requeue(target: &str) -> Result<(), String> {
    let out = Command::new("scontrol")
        .args(["requeue", target])
        .output()
        .map_err(|e| format!("running scontrol requeue {target}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "scontrol requeue {target} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(job: Option<&str>, array: Option<&str>, task: Option<&str>) -> TaskEnv {
        TaskEnv {
            job_id: job.map(Into::into),
            array_job_id: array.map(Into::into),
            array_task_id: task.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn auto_picks_the_first_visible_gpu_only_with_cuda_and_a_gpu() {
        let gpu = TaskEnv {
            cuda_visible: Some("3".into()),
            ..Default::default()
        };
        let none = TaskEnv::default();
        assert_eq!(gpu.device(DeviceChoice::Auto, true), DeviceLabel::Cuda(0));
        assert_eq!(gpu.device(DeviceChoice::Auto, false), DeviceLabel::Cpu);
        assert_eq!(none.device(DeviceChoice::Auto, true), DeviceLabel::Cpu);
        let cpu = DeviceChoice::Label(DeviceLabel::Cpu);
        assert_eq!(gpu.device(cpu, true), DeviceLabel::Cpu);
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Label(DeviceLabel::Cuda(1))
        );
        assert!("gpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn threads_follow_slurm_cpus_per_task() {
        let slurm = |v: &str| TaskEnv {
            cpus_per_task: Some(v.into()),
            ..Default::default()
        };
        assert_eq!(slurm("4").threads(16), 4);
        assert_eq!(slurm("0").threads(16), 16);
        assert_eq!(slurm("x").threads(16), 16);
        assert_eq!(TaskEnv::default().threads(16), 16);
    }

    #[test]
    fn the_requeue_target_is_the_array_task_else_the_job() {
        let array = env(Some("125"), Some("123"), Some("2"));
        assert_eq!(array.requeue_target().as_deref(), Some("123_2"));
        assert_eq!(
            array.describe().as_deref(),
            Some("Slurm job 125 (array task 123_2)")
        );
        let job = env(Some("77"), None, None);
        assert_eq!(job.requeue_target().as_deref(), Some("77"));
        assert_eq!(job.describe().as_deref(), Some("Slurm job 77"));
        assert_eq!(env(None, Some("123"), Some("2")).requeue_target(), None);
        assert_eq!(env(None, None, None).describe(), None);
    }
}
