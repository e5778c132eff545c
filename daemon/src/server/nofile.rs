//! The open-files limit: raised to the hard limit at start (as daemons do), and
//! the connection limit kept below it, so that accepting never runs the daemon
//! out of file descriptors for its store, logs and workers.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept for the daemon itself: store, logs, runtime, listener.
const RESERVED: u64 = 64;
/// Descriptors kept per slot: a worker's pipes and files.
const PER_SLOT: u64 = 16;
/// Highest soft limit asked for when the hard limit is unlimited.
const CEILING: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` to the hard one and returns the soft limit in
/// force afterwards (`None` if it cannot be read).
pub(super) fn raise() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let wanted = hard.min(CEILING);
    if wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return Some(wanted);
    }
    Some(soft)
}

/// The most client connections that fit in `soft` descriptors with `slots` slots,
/// and at most `configured`.
pub(super) fn connection_cap(configured: usize, soft: u64, slots: usize) -> usize {
    let spare = soft.saturating_sub(RESERVED + PER_SLOT * slots as u64);
    let fit = usize::try_from(spare).unwrap_or(usize::MAX).max(1);
    configured.min(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_daemon() {
        assert_eq!(connection_cap(1024, 256, 1), 256 - 64 - 16);
        assert_eq!(connection_cap(100, 65536, 4), 100);
        assert_eq!(connection_cap(1024, 10, 1), 1, "never zero");
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(raise().unwrap() >= soft);
    }
}
