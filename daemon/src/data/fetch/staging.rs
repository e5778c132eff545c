//! The fetch's working area `<data dir>/.fetch/`: downloads per data set, the
//! directory being unpacked, the one being replaced, and a lock so that two
//! fetches of one data set do not interleave. Nothing in it is ever read by the
//! loader, and it is removed when a fetch ends (but for downloads kept to resume).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::FetchError;
use crate::data::DatasetName;

/// The working area of one data set's fetch, locked while it lives.
#[derive(Debug)]
pub(super) struct Staging {
    root: PathBuf,
    area: PathBuf,
    name: DatasetName,
    created_root: bool,
    _lock: File,
}

impl Staging {
    /// Creates (and locks) the area for `name` below `root`.
    pub(super) fn open(root: &Path, name: DatasetName) -> Result<Self, FetchError> {
        let created_root = !root.exists();
        let area = root.join(".fetch");
        std::fs::create_dir_all(area.join(name.to_string()))
            .map_err(|e| FetchError::io(&area, e))?;
        let lock_path = area.join(format!("{name}.lock"));
        let lock = File::create(&lock_path).map_err(|e| FetchError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(FetchError::Busy {
                    name: name.to_string(),
                    lock: lock_path,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(FetchError::io(&lock_path, e)),
        }
        Ok(Staging {
            root: root.to_path_buf(),
            area,
            name,
            created_root,
            _lock: lock,
        })
    }

    /// Where downloads of this data set wait.
    pub(super) fn downloads(&self) -> PathBuf {
        self.area.join(self.name.to_string())
    }

    /// Whether some download has bytes to resume from.
    pub(super) fn holds_partial(&self) -> bool {
        std::fs::read_dir(self.downloads())
            .is_ok_and(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
    }

    /// A fresh, empty directory to unpack into.
    pub(super) fn fresh_unpack_dir(&self) -> Result<PathBuf, FetchError> {
        let dir = self.area.join(format!("{}.new", self.name));
        remove_dir(&dir)?;
        std::fs::create_dir(&dir).map_err(|e| FetchError::io(&dir, e))?;
        Ok(dir)
    }

    /// Renames `new` to `target`, moving an existing `target` aside first and
    /// removing it after (or moving it back when the rename fails).
    pub(super) fn swap_into_place(&self, new: &Path, target: &Path) -> Result<(), FetchError> {
        let old = self.area.join(format!("{}.old", self.name));
        remove_dir(&old)?;
        let had_old = target.exists();
        if had_old {
            std::fs::rename(target, &old).map_err(|e| FetchError::io(target, e))?;
        }
        if let Err(e) = std::fs::rename(new, target) {
            if had_old {
                // Put the previous data set back rather than lose it.
                let _ = std::fs::rename(&old, target);
            }
            return Err(FetchError::io(target, e));
        }
        if had_old {
            remove_dir(&old)?;
        }
        Ok(())
    }

    /// Removes the area of this data set; `keep_downloads` keeps what a later
    /// run can resume. The `.fetch` directory (and a data root this fetch
    /// created) goes too when nothing else is left in it.
    pub(super) fn finish(self, keep_downloads: bool) {
        let name = self.name.to_string();
        for dir in [format!("{name}.new"), format!("{name}.old")] {
            let _ = remove_dir(&self.area.join(dir));
        }
        if !keep_downloads {
            let _ = remove_dir(&self.downloads());
            let _ = std::fs::remove_file(self.area.join(format!("{name}.lock")));
        }
        if std::fs::remove_dir(&self.area).is_ok() && self.created_root {
            let _ = std::fs::remove_dir(&self.root);
        }
    }
}

fn remove_dir(dir: &Path) -> Result<(), FetchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FetchError::io(dir, e)),
    }
}
