//! `scontrol show config`: the settings vov depends on.

/// The cluster's settings that matter to submissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `MaxArraySize`: array task ids must be below it.
    pub max_array_size: u32,
    /// Whether an accounting storage is configured (`sacct` works).
    pub accounting: bool,
    /// `SLURM_VERSION`.
    pub version: String,
}

/// The settings, with Slurm's defaults for those missing.
pub fn parse_show_config(out: &str) -> ClusterConfig {
    let mut c = ClusterConfig {
        max_array_size: 1001,
        accounting: false,
        version: String::new(),
    };
    for line in out.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "MaxArraySize" => c.max_array_size = value.parse().unwrap_or(c.max_array_size),
            "AccountingStorageType" => {
                c.accounting = value != "accounting_storage/none" && !value.is_empty()
            }
            "SLURM_VERSION" => c.version = value.to_string(),
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_are_read() {
        let out = "Configuration data as of 2026-12-02T11:00:00\nAccountingStorageType   = accounting_storage/none\nMaxArraySize            = 1001\nSLURM_VERSION           = 22.05.8\n";
        let c = parse_show_config(out);
        assert_eq!(c.max_array_size, 1001);
        assert!(!c.accounting);
        assert_eq!(c.version, "22.05.8");
    }
}
