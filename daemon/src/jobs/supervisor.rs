//! Starting a worker process and following it: its stdout lines become notes to
//! the job manager, its stderr tail is kept, and its exit is reported last, after
//! every line it printed.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc::UnboundedSender;

use super::classify::Exit;
use super::protocol::{WorkerInput, WorkerMessage};
use crate::runtime::gpu::DeviceLabel;
use crate::runtime::memory::cgroup_oom_kills;

/// Lines of a worker's stderr kept for its failure message.
const STDERR_LINES: usize = 20;

/// What a supervisor tells the job manager.
#[derive(Debug)]
pub enum Note {
    /// A line the worker printed.
    Message {
        /// The job.
        trial_id: String,
        /// The message.
        msg: WorkerMessage,
    },
    /// The worker process is gone.
    Exited {
        /// The job.
        trial_id: String,
        /// How it ended.
        exit: Exit,
    },
}

async fn tail<R: AsyncRead + Unpin>(stream: R) -> String {
    let mut lines = BufReader::new(stream).lines();
    let mut kept = VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if kept.len() == STDERR_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept.into_iter().collect::<Vec<_>>().join("\n")
}

/// Starts `exe worker` for `trial_id` in its own process group, feeds it `input`
/// and follows it; returns its process id.
pub async fn spawn(
    exe: &Path,
    input: &WorkerInput,
    trial_id: &str,
    notes: UnboundedSender<Note>,
) -> std::io::Result<u32> {
    let payload = serde_json::to_vec(input).map_err(std::io::Error::other)?;
    let oom_before = cgroup_oom_kills();
    let mut cmd = Command::new(exe);
    cmd.arg("worker").env(
        "RUST_LOG",
        std::env::var("VOVD_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
    );
    // A GPU worker sees only its own GPU.
    if let Ok(DeviceLabel::Cuda(index)) = input.device.parse() {
        cmd.env("CUDA_VISIBLE_DEVICES", index.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("worker stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("worker stdout"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| std::io::Error::other("worker stderr"))?;
    let trial_id = trial_id.to_string();
    tokio::spawn(async move {
        // A worker that dies before reading its input is reported by its exit.
        let _ = stdin.write_all(&payload).await;
        drop(stdin);
        let stderr_task = tokio::spawn(tail(stderr));
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<WorkerMessage>(&line) {
                Ok(msg) => {
                    let _ = notes.send(Note::Message {
                        trial_id: trial_id.clone(),
                        msg,
                    });
                }
                Err(e) => {
                    tracing::warn!(trial.id = %trial_id, error = %e, "unreadable worker line")
                }
            }
        }
        let stderr_tail = stderr_task.await.unwrap_or_default();
        let status = child.wait().await;
        let oom_killed = matches!((oom_before, cgroup_oom_kills()), (Some(a), Some(b)) if b > a);
        let exit = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                Exit {
                    code: s.code(),
                    signal: s.signal(),
                    stderr_tail,
                    oom_killed,
                }
            }
            Err(e) => Exit {
                stderr_tail: format!("waiting for the worker failed: {e}"),
                ..Exit::default()
            },
        };
        let _ = notes.send(Note::Exited { trial_id, exit });
    });
    Ok(pid)
}

/// Sends `signal` to the worker's process group; a group already gone is fine.
pub fn signal_group(pid: u32, signal: nix::sys::signal::Signal) {
    if pid == 0 {
        return;
    }
    let pgid = nix::unistd::Pid::from_raw(pid as i32);
    if let Err(e) = nix::sys::signal::killpg(pgid, signal) {
        if e != nix::errno::Errno::ESRCH {
            tracing::warn!(pid, error = %e, "signalling a worker failed");
        }
    }
}
