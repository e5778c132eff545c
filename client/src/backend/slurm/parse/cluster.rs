//! What `scontrol show config` says about the cluster that the backend needs.

/// The settings of a Slurm cluster the backend depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `MaxArraySize`: array task ids must be below it (Slurm's default 1001).
    pub max_array_size: u32,
    /// Whether job accounting is on (`AccountingStorageType` is not
    /// `accounting_storage/none`), i.e. whether sacct can answer.
    pub accounting: bool,
    /// `SLURM_VERSION` (`22.05.8`); empty when not found.
    pub version: String,
}

/// Slurm's default `MaxArraySize`, used when the output lacks the key.
pub const DEFAULT_MAX_ARRAY_SIZE: u32 = 1001;

/// Reads `scontrol show config` (`Key = Value` lines; others are ignored). A
/// missing or unreadable `MaxArraySize` is Slurm's default (1001), a missing
/// `AccountingStorageType` means no accounting.
pub fn parse_show_config(out: &str) -> ClusterConfig {
    let mut cfg = ClusterConfig {
        max_array_size: DEFAULT_MAX_ARRAY_SIZE,
        accounting: false,
        version: String::new(),
    };
    for line in out.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "MaxArraySize" => {
                cfg.max_array_size = value.parse().unwrap_or(DEFAULT_MAX_ARRAY_SIZE);
            }
            "AccountingStorageType" => {
                cfg.accounting =
                    !value.is_empty() && value != "(null)" && value != "accounting_storage/none";
            }
            "SLURM_VERSION" => cfg.version = value.to_string(),
            _ => {}
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on the one-node test cluster.
    #[test]
    fn recorded() {
        assert_eq!(
            parse_show_config(include_str!("testdata/show_config.txt")),
            ClusterConfig {
                max_array_size: 1001,
                accounting: false,
                version: "22.05.8".into(),
            }
        );
    }

    #[test]
    fn accounting_and_defaults() {
        let out = "Configuration data as of 2026-01-01T00:00:00\n\
                   AccountingStorageType   = accounting_storage/slurmdbd  \n\
                   MaxArraySize            = 40001\n\
                   SLURM_VERSION           = 23.11.4\n\
                   \n\
                   Slurmctld(primary) at ctl is UP\n";
        assert_eq!(
            parse_show_config(out),
            ClusterConfig {
                max_array_size: 40001,
                accounting: true,
                version: "23.11.4".into(),
            }
        );
        let empty = parse_show_config("");
        assert_eq!(empty.max_array_size, 1001);
        assert!(!empty.accounting);
        assert_eq!(empty.version, "");
        assert_eq!(
            parse_show_config("MaxArraySize = lots\n").max_array_size,
            1001
        );
    }
}
