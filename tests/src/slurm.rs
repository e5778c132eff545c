//! A real one-node Slurm cluster for the tests (`scripts/slurm-up.sh`), and small
//! wrappers of its command-line tools.
//!
//! [`cluster`] uses the cluster that `SLURM_CONF` names when that is set (as
//! `scripts/test.sh` does), and otherwise starts one with `scripts/slurm-up.sh`
//! once per test process. When neither gives a cluster that answers, it panics:
//! a Slurm test must fail, never pass, where Slurm is missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running Slurm cluster, known by its `slurm.conf`.
#[derive(Debug, Clone)]
pub struct Cluster {
    conf: PathBuf,
}

/// The repository's root: the tests crate lives in `tests/`, one level below.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate has a parent directory")
        .to_path_buf()
}

/// The test cluster (see the module's documentation). Panics with the reason
/// when there is none.
pub fn cluster() -> Cluster {
    static CLUSTER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match CLUSTER.get_or_init(find_or_start) {
        Ok(conf) => Cluster { conf: conf.clone() },
        Err(why) => panic!("no Slurm cluster for the Slurm tests: {why}"),
    }
}

fn find_or_start() -> Result<PathBuf, String> {
    if let Some(conf) = std::env::var_os("SLURM_CONF") {
        let conf = PathBuf::from(conf);
        return sinfo_answers(&conf).map(|()| conf.clone()).map_err(|e| {
            format!(
                "SLURM_CONF={} is set but sinfo does not answer: {e} \
                 (start the cluster with scripts/slurm-up.sh, or unset SLURM_CONF)",
                conf.display()
            )
        });
    }
    let script = repo_root().join("scripts/slurm-up.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{stderr}",
            script.display(),
            out.status
        ));
    }
    let conf = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("export SLURM_CONF="))
        .map(PathBuf::from)
        .ok_or_else(|| {
            format!(
                "{} printed no `export SLURM_CONF=` line:\n{stdout}\n{stderr}",
                script.display()
            )
        })?;
    sinfo_answers(&conf)
        .map(|()| conf)
        .map_err(|e| format!("{} started a cluster but {e}", script.display()))
}

fn sinfo_answers(conf: &Path) -> Result<(), String> {
    let out = Command::new("sinfo")
        .arg("-h")
        .env("SLURM_CONF", conf)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run sinfo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sinfo failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Cluster {
    /// The cluster's `slurm.conf`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The environment a child process needs to reach the cluster.
    pub fn env(&self) -> Vec<(String, OsString)> {
        vec![("SLURM_CONF".into(), self.conf.clone().into_os_string())]
    }

    /// A command for one of Slurm's tools (or anything else) on this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env()).stdin(Stdio::null());
        cmd
    }

    /// Runs `program args` to the end; panics if it cannot start.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// `sbatch --parsable ARGS`: the job id; panics when sbatch fails.
    pub fn sbatch(&self, args: &[&str]) -> u64 {
        let out = self.run("sbatch", &[&["--parsable"], args].concat());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sbatch {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .trim()
            .split(';')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("sbatch printed no job id: {stdout:?}"))
    }

    /// `squeue -h -r -t all -j JOB -o %i|%T|%R`: one `(id, state, reason)` per
    /// task (`("12_3", "RUNNING", "localhost")`), finished ones included; empty
    /// when Slurm does not know the job (any more).
    pub fn squeue(&self, job: u64) -> Vec<(String, String, String)> {
        let out = self.run(
            "squeue",
            &[
                "-h",
                "-r",
                "-t",
                "all",
                "-j",
                &job.to_string(),
                "-o",
                "%i|%T|%R",
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.trim().splitn(3, '|');
                Some((
                    f.next()?.to_string(),
                    f.next()?.to_string(),
                    f.next().unwrap_or("").to_string(),
                ))
            })
            .collect()
    }

    /// Waits until every task of `job` has ended (none pending, running or
    /// completing); the final `squeue` rows. Panics after `timeout`.
    pub fn wait_job(&self, job: u64, timeout: Duration) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.squeue(job);
            if !rows.is_empty() && rows.iter().all(|(_, state, _)| is_final(state)) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} still not over after {timeout:?}: {rows:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until no job of this user is pending, running or completing on the
    /// cluster. Panics after `timeout`.
    pub fn wait_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.run("squeue", &["-h", "--me", "-o", "%i|%T"]);
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && text.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "jobs still queued after {timeout:?}: {text}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `scancel --signal=SIGNAL --batch JOB_TASK` (`"12_3"`, `"USR1"`): signals
    /// the batch shell of a running task. Slurm 22.05 keeps retrying while the
    /// task is still pending, so it is killed after `timeout`; `None` then.
    pub fn scancel_signal(
        &self,
        job_task: &str,
        signal: &str,
        timeout: Duration,
    ) -> Option<ExitStatus> {
        let mut child = self
            .command("scancel")
            .args([&format!("--signal={signal}"), "--batch", job_task])
            .spawn()
            .expect("scancel starts");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("scancel runs") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `scancel JOB`: cancels a job, all its tasks included.
    pub fn scancel(&self, job: u64) {
        let out = self.run("scancel", &[&job.to_string()]);
        assert!(
            out.status.success(),
            "scancel {job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether a Slurm state (`%T`) is one a job leaves no more.
fn is_final(state: &str) -> bool {
    !matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "SUSPENDED"
            | "COMPLETING"
            | "CONFIGURING"
            | "REQUEUED"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "STOPPED"
            | "RESV_DEL_HOLD"
    )
}
