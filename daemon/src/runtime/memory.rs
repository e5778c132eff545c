//! Peak resident memory of this process, as the kernel accounts it.

/// Peak resident set size in bytes (`VmHWM`), if the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib_field(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// Current resident set size in bytes (`VmRSS`), if the platform reports it.
pub fn current_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib_field(&status, "VmRSS:").map(|kib| kib * 1024)
}

/// Out-of-memory kills counted by this process's cgroup (v2 `memory.events`), if
/// readable: a SIGKILL with this count increased was the OOM killer.
pub fn cgroup_oom_kills() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let events = std::fs::read_to_string(format!(
        "/sys/fs/cgroup{}/memory.events",
        path.trim_end_matches('/')
    ))
    .ok()?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

fn parse_kib_field(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t 99 kB\n";
        assert_eq!(parse_kib_field(s, "VmHWM:"), Some(1234));
        assert_eq!(parse_kib_field(s, "VmRSS:"), Some(99));
        assert_eq!(parse_kib_field(s, "VmSwap:"), None);
    }

    #[test]
    fn reads_own_peak() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 0);
        }
    }
}
