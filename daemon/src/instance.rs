//! One daemon per state directory: `vovd serve` holds an exclusive lock on
//! `<state_dir>/vovd.lock` for its lifetime and writes `<state_dir>/vovd.json`
//! (address and pid) once it listens, so that a second daemon on the same store
//! refuses to start and local tools can find the running one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// The file describing the running daemon.
pub const INFO_FILE: &str = "vovd.json";

/// What `vovd.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// Bound address.
    pub addr: SocketAddr,
    /// Process id.
    pub pid: u32,
}

/// The held lock; releasing it (drop) removes the info file.
pub struct InstanceLock {
    _lock: Flock<std::fs::File>,
    info: PathBuf,
}

impl InstanceLock {
    /// Takes the lock of `state_dir` (creating it), or explains who holds it.
    pub fn acquire(state_dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
        let path = state_dir.join("vovd.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            let holder = read(state_dir).map_or_else(String::new, |i| {
                format!(" (pid {}, listening on {})", i.pid, i.addr)
            });
            format!(
                "state directory {} is in use by another vovd{holder}",
                state_dir.display()
            )
        })?;
        Ok(InstanceLock {
            _lock: lock,
            info: state_dir.join(INFO_FILE),
        })
    }

    /// Records the bound address.
    pub fn publish(&self, addr: SocketAddr) -> Result<(), String> {
        let info = InstanceInfo {
            addr,
            pid: std::process::id(),
        };
        let text = serde_json::to_string(&info).map_err(|e| e.to_string())?;
        std::fs::write(&self.info, text).map_err(|e| format!("{}: {e}", self.info.display()))
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.info);
    }
}

/// The running daemon of `state_dir`, if its info file is there.
pub fn read(state_dir: &Path) -> Option<InstanceInfo> {
    serde_json::from_str(&std::fs::read_to_string(state_dir.join(INFO_FILE)).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_info_published() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = InstanceLock::acquire(tmp.path()).unwrap();
        lock.publish("127.0.0.1:7070".parse().unwrap()).unwrap();
        let err = InstanceLock::acquire(tmp.path()).err().unwrap();
        assert!(err.contains("in use by another vovd (pid"), "{err}");
        assert_eq!(read(tmp.path()).unwrap().addr.port(), 7070);
        drop(lock);
        assert!(read(tmp.path()).is_none());
        assert!(InstanceLock::acquire(tmp.path()).is_ok());
    }
}
