//! Helpers for black-box tests: start real `vovd` processes on free loopback
//! ports with temporary state, connect the real gRPC client, build small specs and
//! wait for job states.
//!
//! The binaries are the ones `cargo test --workspace` builds next to the test
//! executables (`target/<profile>/vovd`).

pub mod browser;
pub mod cli;
pub mod datasets;
pub mod http;
pub mod relay;
pub mod slurm;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vov_proto::pb;
use vov_proto::pb::trainer_client::TrainerClient;

/// Path of a workspace binary built beside the test executables.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Trial slots.
    pub slots: u32,
    /// Extra `VOVD__KEY=value` settings.
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Address to listen on.
    pub listen: String,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            slots: 1,
            env: vec![
                ("VOVD__GRACE_PERIOD_SECS".into(), "5".into()),
                ("VOVD__LAME_DUCK_MS".into(), "0".into()),
                ("VOVD__THREADS_PER_SLOT".into(), "1".into()),
            ],
            args: Vec::new(),
            listen: "127.0.0.1:0".into(),
        }
    }
}

/// A running `vovd serve` process with its own state directory.
pub struct Daemon {
    child: Option<Child>,
    /// The bound address.
    pub addr: SocketAddr,
    /// State directory (job store, checkpoints).
    pub state_dir: PathBuf,
    /// Where its stderr goes.
    pub log: PathBuf,
    opts: DaemonOptions,
}

impl Daemon {
    /// Starts a daemon in `state_dir` and waits for its address.
    pub fn start_in(state_dir: &Path, opts: DaemonOptions) -> Daemon {
        Self::try_start_in(state_dir, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a daemon; returns its stderr when it exits instead of listening.
    pub fn try_start_in(state_dir: &Path, opts: DaemonOptions) -> Result<Daemon, String> {
        std::fs::create_dir_all(state_dir).expect("state dir");
        let log = state_dir.join("vovd.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut child = Command::new(bin("vovd"))
            .arg("serve")
            .args(["--listen", &opts.listen])
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--data-dir")
            .arg(state_dir.join("data"))
            .args(["--slots", &opts.slots.to_string()])
            .args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("vovd starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read vovd stdout");
        let Some(addr) = line.trim().strip_prefix("vovd listening on ") else {
            let status = child.wait().expect("wait");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("vovd did not start ({status}): {text}"));
        };
        Ok(Daemon {
            addr: addr.parse().expect("address"),
            child: Some(child),
            state_dir: state_dir.to_path_buf(),
            log,
            opts,
        })
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// An HTTP URL of the daemon.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> TrainerClient<Channel> {
        TrainerClient::connect(self.url())
            .await
            .expect("connect to vovd")
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal vovd");
    }

    /// Kills the daemon with SIGKILL (its workers live on until they notice).
    pub fn kill9(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait()
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child
            .take()
            .expect("running daemon")
            .wait()
            .expect("wait for vovd")
    }

    /// Starts a new daemon process on the same state directory and options (on a
    /// new port unless the options fix one).
    pub fn restart(&self) -> Daemon {
        Daemon::start_in(&self.state_dir, self.opts.clone())
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A trial of a VoVNet shrunk to a few thousand parameters on synthetic data:
/// `epochs` epochs of `train` images (batches of 32), fast on any CPU.
pub fn tiny_spec(epochs: u32, train: u64, val: u64) -> pb::TrialSpec {
    pb::TrialSpec {
        model: "vovnet-27-slim".into(),
        knobs: Some(pb::ModelKnobs {
            stem: vec![8],
            stage_widths: vec![8, 8, 8, 8],
            stage_outputs: vec![16, 16, 16, 16],
            osa_layers: Some(2),
            ..Default::default()
        }),
        dataset: "synthetic".into(),
        epochs,
        batch_size: 32,
        optimizer: pb::Optimizer::Adam as i32,
        lr: 1e-3,
        bn_momentum: 0.9,
        train_limit: Some(train),
        val_limit: Some(val),
        ..Default::default()
    }
}

/// A submit request.
pub fn submit(trial_id: &str, sweep_id: &str, spec: pb::TrialSpec) -> pb::SubmitRequest {
    pb::SubmitRequest {
        trial_id: trial_id.into(),
        sweep_id: sweep_id.into(),
        spec: Some(spec),
        retry: false,
        stop_after_epochs: 0,
        evaluation: None,
    }
}

/// Polls `Get` until the job satisfies `done` or `timeout` passes.
pub async fn wait_for(
    client: &mut TrainerClient<Channel>,
    trial_id: &str,
    timeout: Duration,
    done: impl Fn(&pb::Job) -> bool,
) -> pb::Job {
    let deadline = Instant::now() + timeout;
    loop {
        let job = client
            .get(pb::GetRequest {
                trial_id: trial_id.into(),
            })
            .await
            .expect("get")
            .into_inner();
        if done(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {trial_id}: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the job is in `state`.
pub async fn wait_state(
    client: &mut TrainerClient<Channel>,
    trial_id: &str,
    state: pb::JobState,
    timeout: Duration,
) -> pb::Job {
    wait_for(client, trial_id, timeout, |j| j.state == state as i32).await
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Process ids of `vovd worker` processes whose parent is `parent`.
pub fn workers_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            ppid == Some(parent) && cmd.split('\0').nth(1) == Some("worker")
        })
        .collect()
}

/// Every event of a job, from the first, until its stream ends.
pub async fn events(client: &mut TrainerClient<Channel>, trial_id: &str) -> Vec<pb::JobEvent> {
    use tokio_stream::StreamExt;
    let mut stream = client
        .watch(pb::WatchRequest {
            trial_id: trial_id.into(),
            from_seq: 1,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.next().await {
        out.push(e.expect("event"));
    }
    out
}
