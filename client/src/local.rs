//! The embedded default: with no hosts configured, `vovctl` starts a `vovd` on
//! loopback for the duration of the command, with its state beside the results
//! store, and stops it (gracefully) at the end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The local daemon could not run.
#[derive(Debug, Error)]
pub enum LocalError {
    /// No `vovd` binary was found.
    #[error(
        "no hosts are configured and no vovd binary was found next to vovctl or on PATH; \
             install vovd, or give hosts with --hosts / VOVCTL_HOSTS / [hosts]"
    )]
    NotFound,
    /// It did not start.
    #[error("the local vovd did not start: {0}")]
    Start(String),
}

/// A `vovd serve` child process.
pub struct LocalDaemon {
    child: Option<Child>,
    /// Its URL.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
}

/// The `vovd` binary: beside this executable, else on `PATH`.
pub fn find_vovd() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join("vovd");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("vovd"))
            .find(|p| p.is_file())
    })
}

impl LocalDaemon {
    /// Starts `vovd serve` on 127.0.0.1 with state in `state_dir` and data in
    /// `data_dir`, and waits for its address.
    pub fn start(state_dir: &Path, data_dir: &Path, slots: u32) -> Result<Self, LocalError> {
        let vovd = find_vovd().ok_or(LocalError::NotFound)?;
        std::fs::create_dir_all(state_dir)
            .map_err(|e| LocalError::Start(format!("{}: {e}", state_dir.display())))?;
        let log = state_dir.join("vovd.log");
        let stderr = std::fs::File::create(&log)
            .map_err(|e| LocalError::Start(format!("{}: {e}", log.display())))?;
        let mut child = Command::new(&vovd)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--slots",
                &slots.to_string(),
            ])
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--data-dir")
            .arg(data_dir)
            .env("VOVD__LAME_DUCK_MS", "0")
            .env_remove("VOVD__LISTEN")
            .env_remove("VOVD__TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| LocalError::Start(format!("{}: {e}", vovd.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LocalError::Start("no stdout".into()))?;
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        match line.trim().strip_prefix("vovd listening on ") {
            Some(addr) => Ok(LocalDaemon {
                url: format!("http://{addr}"),
                child: Some(child),
                log,
            }),
            None => {
                let _ = child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                Err(LocalError::Start(
                    text.lines().last().unwrap_or("no output").to_string(),
                ))
            }
        }
    }

    /// Stops it gracefully (running trials checkpoint and resume next time).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for LocalDaemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}
