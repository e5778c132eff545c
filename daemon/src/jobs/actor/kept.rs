//! The disk budget of kept checkpoints: paused jobs hold theirs until they are
//! continued or cancelled, and together they may take at most
//! `max_checkpoint_bytes`.

use std::path::{Path, PathBuf};

/// Bytes of the files under each of `dirs` (missing ones count 0).
pub(super) fn bytes(dirs: impl IntoIterator<Item = PathBuf>) -> u64 {
    dirs.into_iter().map(|d| dir_bytes(&d)).sum()
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Why a job cannot pause: its checkpoint would bring the kept ones to `total`
/// bytes, above `budget`.
pub(super) fn over_budget(total: u64, budget: u64) -> String {
    format!(
        "cannot keep this trial's checkpoint: paused trials' checkpoints would take \
         {total} bytes, above max_checkpoint_bytes = {budget}; raise max_checkpoint_bytes \
         in the daemon's config, or let fewer trials pause at once"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_across_directories_and_missing_ones_count_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("x"), [0u8; 100]).unwrap();
        std::fs::write(a.join("sub/y"), [0u8; 20]).unwrap();
        assert_eq!(bytes([a.clone()]), 120);
        assert_eq!(bytes([a, b]), 120);
        assert!(over_budget(120, 100).contains("max_checkpoint_bytes = 100"));
    }
}
