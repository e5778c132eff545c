//! The batch script of a sweep and the `sbatch` arguments of one submission.
//!
//! Array task `T` of a submission with offset `O` runs the trial on line `O + T + 1`
//! of the sweep's manifest (`WORK/sweeps/NAME/manifest`, one trial id a line,
//! appended to and never reordered), so a retry resubmits the same indices
//! (`--array=3,7`) and an array longer than the cluster's `MaxArraySize` is split
//! into submissions with different offsets. The script `exec`s `vovd task`, so
//! `--signal=B:USR1@120` (and `scancel --signal=USR1 --batch`) reach vovd itself,
//! which checkpoints and requeues the task.

use std::path::{Path, PathBuf};

use super::config::SlurmConfig;

/// Seconds before the time limit at which a task is told to checkpoint.
pub const SIGNAL_LEAD_SECS: u32 = 120;

/// A sweep's folder under the work directory.
pub fn sweep_dir(work_dir: &Path, sweep: &str) -> PathBuf {
    work_dir.join("sweeps").join(sweep)
}

/// The manifest of a sweep: array index `i` is line `i + 1`.
pub fn manifest(work_dir: &Path, sweep: &str) -> PathBuf {
    sweep_dir(work_dir, sweep).join("manifest")
}

/// The batch script of a sweep.
pub fn script_path(work_dir: &Path, sweep: &str) -> PathBuf {
    sweep_dir(work_dir, sweep).join("task.sh")
}

/// The Slurm logs of a sweep's tasks (`%A_%a.out`).
pub fn log_dir(work_dir: &Path, sweep: &str) -> PathBuf {
    sweep_dir(work_dir, sweep).join("log")
}

/// The job name of a sweep's arrays.
pub fn job_name(sweep: &str) -> String {
    format!("vov-{sweep}")
}

/// `s` quoted for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_text(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// The batch script's text.
pub fn script(cfg: &SlurmConfig, sweep: &str) -> String {
    let manifest = manifest(&cfg.work_dir, sweep);
    let trials = cfg.work_dir.join(vov_proto::taskdir::TRIALS);
    format!(
        "#!/bin/bash\n\
         # vov: one trial of sweep {sweep} per array task (written by vovctl; it is\n\
         # rewritten at each submission, and Slurm keeps a copy per job).\n\
         # Usage: sbatch --array=INDICES task.sh OFFSET\n\
         set -euo pipefail\n\
         offset=\"${{1:?usage: task.sh OFFSET}}\"\n\
         line=$((offset + SLURM_ARRAY_TASK_ID + 1))\n\
         trial=$(sed -n \"${{line}}p\" {manifest})\n\
         if [ -z \"$trial\" ]; then\n\
         \x20 echo \"vov: no trial on line $line of {manifest_plain}\" >&2\n\
         \x20 exit 2\n\
         fi\n\
         dir={trials}/\"$trial\"\n\
         exec {vovd} task --spec \"$dir/request.pb\" --out \"$dir\" --data-dir {data} --threads {threads}\n",
        manifest = path_text(&manifest),
        manifest_plain = manifest.display(),
        trials = path_text(&trials),
        vovd = path_text(&cfg.vovd),
        data = path_text(&cfg.data_dir),
        threads = cfg.cpus_per_trial,
    )
}

/// The `sbatch` arguments of one submission: array task ids `array` (already
/// formatted, e.g. `0-9`) with `offset`.
pub fn sbatch_args(cfg: &SlurmConfig, sweep: &str, array: &str, offset: u32) -> Vec<String> {
    let throttle = match cfg.max_parallel {
        0 => String::new(),
        k => format!("%{k}"),
    };
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job_name(sweep)),
        format!("--array={array}{throttle}"),
        format!(
            "--output={}",
            log_dir(&cfg.work_dir, sweep).join("%A_%a.out").display()
        ),
        "--open-mode=append".into(),
        "--requeue".into(),
        format!("--signal=B:USR1@{SIGNAL_LEAD_SECS}"),
        format!("--cpus-per-task={}", cfg.cpus_per_trial),
    ];
    let mut opt = |flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            args.push(format!("--{flag}={v}"));
        }
    };
    opt("partition", &cfg.partition);
    opt("account", &cfg.account);
    opt("qos", &cfg.qos);
    opt("time", &cfg.time_limit);
    opt("mem", &cfg.mem);
    if cfg.gpus_per_trial > 0 {
        args.push(format!("--gres=gpu:{}", cfg.gpus_per_trial));
    }
    args.extend(cfg.sbatch_args.iter().cloned());
    args.push(script_path(&cfg.work_dir, sweep).display().to_string());
    args.push(offset.to_string());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SlurmConfig {
        let t: toml::Table = "work_dir = '/w'\nmax_parallel = 2\ngpus_per_trial = 1\npartition = 'gpu'\nsbatch_args = ['--exclusive']"
            .parse()
            .unwrap();
        super::super::config::SlurmSources {
            sweep: Some(t),
            ..Default::default()
        }
        .resolve(Path::new("/home/me"))
        .unwrap()
    }

    #[test]
    fn a_submission_asks_for_requeue_the_signal_the_throttle_and_the_gres() {
        let args = sbatch_args(&cfg(), "quick", "0-3,7", 1000);
        for want in [
            "--parsable",
            "--job-name=vov-quick",
            "--array=0-3,7%2",
            "--requeue",
            "--signal=B:USR1@120",
            "--gres=gpu:1",
            "--partition=gpu",
            "--exclusive",
            "--output=/w/sweeps/quick/log/%A_%a.out",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} not in {args:?}");
        }
        assert_eq!(args[args.len() - 2], "/w/sweeps/quick/task.sh");
        assert_eq!(args[args.len() - 1], "1000");
    }

    #[test]
    fn the_script_execs_vovd_on_the_manifest_line() {
        let s = script(&cfg(), "quick");
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(
            s.contains("sed -n \"${line}p\" '/w/sweeps/quick/manifest'"),
            "{s}"
        );
        assert!(s.contains("exec 'vovd' task --spec \"$dir/request.pb\" --out \"$dir\" --data-dir '/home/me/data' --threads 1"), "{s}");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
