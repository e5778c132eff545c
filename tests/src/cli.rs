//! Helpers for driving the real `vovctl` binary: a clean environment, sweep
//! files of tiny trials, JSON event streams and the daemon's view of a sweep.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vov_proto::pb;

use crate::{bin, Daemon};

/// A `vovctl` command with no host configuration leaking in from the caller.
pub fn vovctl(home: &Path) -> Command {
    let mut cmd = Command::new(bin("vovctl"));
    cmd.env_remove("VOVCTL_HOSTS")
        .env_remove("VOVCTL_TOKEN_FILE")
        .env_remove("VOVCTL_TLS_CA")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("NO_COLOR", "1");
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("VOVCTL_SLURM__")) {
        cmd.env_remove(key);
    }
    cmd
}

/// Runs `cmd` to the end, echoing its stderr into the test's output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("vovctl runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A sweep file of `lrs.len() * 2` tiny VoVNet trials on synthetic data, with
/// `extra` lines at its top level.
pub fn sweep_file_with(
    dir: &Path,
    name: &str,
    epochs: u32,
    train: u32,
    lrs: &[f64],
    extra: &str,
) -> PathBuf {
    let lrs: Vec<String> = lrs.iter().map(|l| format!("{l:e}")).collect();
    let text = format!(
        r#"name = "{name}"
seed = 7
{extra}

[base]
model = "vovnet-27-slim"
stem = [8]
stage_widths = [8, 8, 8, 8]
stage_outputs = [16, 16, 16, 16]
osa_layers = 2
dataset = "synthetic"
epochs = {epochs}
batch_size = 32
train_limit = {train}
val_limit = 32
bn_momentum = 0.9
augmentation = "none"
measure = ["batch32"]

[grid]
lr = [{}]
weight_decay = [0.0, 0.0001]
"#,
        lrs.join(", ")
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Makes the trials of the sweep file at `path` (one [`sweep_file_with`] wrote)
/// keep their `kept` weights.
pub fn keep_weights(path: &Path, kept: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replacen(
        "[base]\n",
        &format!("[base]\nkeep_weights = \"{kept}\"\n"),
        1,
    );
    std::fs::write(path, text).unwrap();
}

/// [`sweep_file_with`] without extra lines.
pub fn sweep_file(dir: &Path, name: &str, epochs: u32, train: u32, lrs: &[f64]) -> PathBuf {
    sweep_file_with(dir, name, epochs, train, lrs, "")
}

/// The daemons' addresses as a `--hosts` value.
pub fn hosts_arg(daemons: &[&Daemon]) -> String {
    daemons
        .iter()
        .map(|d| d.addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `vovctl results NAME --format json` as rows (it exits 1 when some failed).
pub fn store_rows(home: &Path, store: &Path, sweep: &str) -> Vec<serde_json::Value> {
    let out = run(vovctl(home)
        .args(["results", sweep, "--format", "json", "--store"])
        .arg(store));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("results --format json is JSON")
}

/// Every job of `sweep` on a daemon.
pub async fn jobs(daemon: &Daemon, sweep: &str) -> Vec<pb::Job> {
    let mut client = daemon.client().await;
    client
        .list(pb::ListRequest {
            sweep_id: sweep.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .jobs
}

/// Starts `vovctl sweep FILE --hosts HOSTS --store STORE --json EXTRA...`.
pub fn spawn_sweep(home: &Path, file: &Path, store: &Path, hosts: &str, extra: &[&str]) -> Child {
    vovctl(home)
        .arg("sweep")
        .arg(file)
        .args(["--hosts", hosts, "--store"])
        .arg(store)
        .arg("--json")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vovctl starts")
}

/// Reads JSON events from `child` until `stop` accepts one.
pub fn read_until(
    child: &mut Child,
    stop: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let stdout = child.stdout.as_mut().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("vovctl ended before the awaited event")
            .unwrap();
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if stop(&event) {
            return event;
        }
    }
}

/// Waits for `child` to exit; kills it and fails the test after `timeout`.
pub fn wait_within(child: &mut Child, what: &str, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the rest of `child`'s output while waiting (at most `timeout`) for it to
/// exit: its JSON events and exit code.
pub fn finish_within(
    mut child: Child,
    what: &str,
    timeout: Duration,
) -> (Vec<serde_json::Value>, Option<i32>) {
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = out.read_to_string(&mut text);
        }
        text
    });
    let code = wait_within(&mut child, what, timeout);
    let text = reader.join().expect("reader thread");
    let events = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (events, code)
}

/// [`finish_within`] five minutes.
pub fn finish(child: Child) -> (Vec<serde_json::Value>, Option<i32>) {
    finish_within(child, "vovctl", Duration::from_secs(300))
}
