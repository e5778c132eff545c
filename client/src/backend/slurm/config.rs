//! The `[slurm]` table: how trials are submitted to a Slurm cluster.
//!
//! It is read from, in rising precedence, `~/.config/vov/hosts.toml`, the sweep
//! file, and `VOVCTL_SLURM__KEY` in the environment (`VOVCTL_SLURM__PARTITION=gpu`;
//! `sbatch_args` there is split on spaces). [`KEYS`] is the one list of its keys
//! with their defaults and meanings (the README's table is made from it).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The environment prefix of the keys.
pub const ENV_PREFIX: &str = "VOVCTL_SLURM";

/// One key of the `[slurm]` table.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Its name.
    pub name: &'static str,
    /// Its default, as a TOML value ("" when unset): the one place defaults live.
    pub default: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

/// Every key of the `[slurm]` table.
pub const KEYS: &[Key] = &[
    Key { name: "work_dir", default: "", meaning: "**required**: a directory on a filesystem every node shares; specs, progress, results, checkpoints and logs live under it" },
    Key { name: "partition", default: "", meaning: "`--partition` (the cluster's default when unset)" },
    Key { name: "account", default: "", meaning: "`--account`" },
    Key { name: "qos", default: "", meaning: "`--qos`" },
    Key { name: "time_limit", default: "", meaning: "`--time` per trial, `HH:MM:SS` or `D-HH:MM:SS` (the partition's limit when unset)" },
    Key { name: "gpus_per_trial", default: "0", meaning: "`--gres=gpu:N`; 0 on CPU partitions" },
    Key { name: "cpus_per_trial", default: "1", meaning: "`--cpus-per-task`, also the trial's compute threads" },
    Key { name: "mem", default: "", meaning: "`--mem` per trial, e.g. `8G`" },
    Key { name: "max_parallel", default: "0", meaning: "the array throttle `%K`: most trials running at once (0: no throttle)" },
    Key { name: "data_dir", default: "\"data\"", meaning: "where the nodes find the data sets (relative paths are taken from the directory vovctl runs in)" },
    Key { name: "vovd", default: "\"vovd\"", meaning: "the `vovd` binary on the nodes (a path, or a name on their `PATH`)" },
    Key { name: "sbatch_args", default: "[]", meaning: "extra `sbatch` arguments, passed through" },
    Key { name: "poll_secs", default: "30", meaning: "seconds between two `squeue` calls of a sweep (one call each time, none while nothing is pending or running)" },
];

/// The `[slurm]` table, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// The shared work directory (absolute).
    pub work_dir: PathBuf,
    /// `--partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--account`.
    #[serde(default)]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default)]
    pub qos: Option<String>,
    /// `--time`.
    #[serde(default)]
    pub time_limit: Option<String>,
    /// `--gres=gpu:N`.
    pub gpus_per_trial: u32,
    /// `--cpus-per-task`.
    pub cpus_per_trial: u32,
    /// `--mem`.
    #[serde(default)]
    pub mem: Option<String>,
    /// The array throttle (0: none).
    pub max_parallel: u32,
    /// The data root on the nodes.
    pub data_dir: PathBuf,
    /// The vovd binary on the nodes.
    pub vovd: PathBuf,
    /// Extra sbatch arguments.
    pub sbatch_args: Vec<String>,
    /// Seconds between two squeue calls.
    pub poll_secs: u64,
}

/// The keys' defaults as a TOML document (the lowest source).
fn defaults() -> String {
    KEYS.iter()
        .filter(|k| !k.default.is_empty())
        .map(|k| format!("{} = {}\n", k.name, k.default))
        .collect()
}

/// A `[slurm]` table that cannot be used.
#[derive(Debug, Error)]
pub enum SlurmConfigError {
    /// A key is unknown, missing or of the wrong type (the message names it).
    #[error("[slurm] in {origin}: {message}")]
    Key {
        /// Which files and variables were read.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("[slurm] {key} = {value:?}: {why}")]
    Value {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot work.
        why: String,
    },
}

/// Where `[slurm]` tables come from, lowest precedence first.
#[derive(Debug, Clone, Default)]
pub struct SlurmSources {
    /// The user file's `[slurm]` table.
    pub user: Option<toml::Table>,
    /// The sweep file's `[slurm]` table.
    pub sweep: Option<toml::Table>,
    /// `VOVCTL_SLURM__*` variables (name, value).
    pub env: Vec<(String, String)>,
}

impl SlurmSources {
    /// The user file's table (when the file exists and has one) and the process
    /// environment; `sweep` is the sweep file's table.
    pub fn from_env(sweep: Option<toml::Table>) -> Result<Self, SlurmConfigError> {
        let user = match crate::hosts::user_file() {
            Some(path) => user_table(&path)?,
            None => None,
        };
        let prefix = format!("{ENV_PREFIX}__");
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with(&prefix))
            .collect();
        Ok(SlurmSources { user, sweep, env })
    }

    /// Whether any source has a `[slurm]` table or variable.
    pub fn any(&self) -> bool {
        self.user.is_some() || self.sweep.is_some() || !self.env.is_empty()
    }

    fn origin(&self) -> String {
        let mut parts = Vec::new();
        if self.user.is_some() {
            parts.push("~/.config/vov/hosts.toml".to_string());
        }
        if self.sweep.is_some() {
            parts.push("the sweep file".to_string());
        }
        if !self.env.is_empty() {
            parts.push(format!("{ENV_PREFIX}__*"));
        }
        if parts.is_empty() {
            parts.push("nowhere (no [slurm] table)".into());
        }
        parts.join(", ")
    }

    /// The merged, checked table; relative paths are made absolute from `cwd`.
    pub fn resolve(&self, cwd: &Path) -> Result<SlurmConfig, SlurmConfigError> {
        let key_error = |e: ::config::ConfigError| SlurmConfigError::Key {
            origin: self.origin(),
            message: e.to_string(),
        };
        let defaults = defaults();
        let mut b = ::config::Config::builder().add_source(::config::File::from_str(
            &defaults,
            ::config::FileFormat::Toml,
        ));
        for table in [&self.user, &self.sweep].into_iter().flatten() {
            let text = toml::to_string(table).unwrap_or_default();
            b = b.add_source(::config::File::from_str(&text, ::config::FileFormat::Toml));
        }
        let env: ::config::Map<String, String> = self.env.iter().cloned().collect();
        b = b.add_source(
            ::config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .try_parsing(true)
                .list_separator(" ")
                .with_list_parse_key("sbatch_args")
                .source(Some(env)),
        );
        let cfg: SlurmConfig = b
            .build()
            .and_then(::config::Config::try_deserialize)
            .map_err(key_error)?;
        cfg.checked(cwd)
    }
}

fn user_table(path: &Path) -> Result<Option<toml::Table>, SlurmConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| SlurmConfigError::Key {
        origin: path.display().to_string(),
        message: e.to_string(),
    })?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SlurmConfigError::Key {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
    match doc.get("slurm") {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t.clone())),
        Some(_) => Err(SlurmConfigError::Key {
            origin: path.display().to_string(),
            message: "slurm must be a table".into(),
        }),
    }
}

/// Whether `s` is a Slurm time limit we accept: `[D-]HH:MM:SS`.
fn valid_time(s: &str) -> bool {
    let (days, clock) = match s.split_once('-') {
        Some((d, c)) => (Some(d), c),
        None => (None, s),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    days.is_none_or(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        && parts.len() == 3
        && parts.iter().all(|p| number(p))
        && parts[1].parse::<u32>().is_ok_and(|m| m < 60)
        && parts[2].parse::<u32>().is_ok_and(|s| s < 60)
}

impl SlurmConfig {
    fn checked(mut self, cwd: &Path) -> Result<Self, SlurmConfigError> {
        let bad = |key, value: String, why: &str| SlurmConfigError::Value {
            key,
            value,
            why: why.into(),
        };
        if self.work_dir.as_os_str().is_empty() {
            return Err(bad("work_dir", String::new(), "must be set"));
        }
        if let Some(t) = self.time_limit.as_deref().filter(|t| !valid_time(t)) {
            return Err(bad(
                "time_limit",
                t.into(),
                "expected HH:MM:SS or D-HH:MM:SS",
            ));
        }
        if self.cpus_per_trial == 0 {
            return Err(bad("cpus_per_trial", "0".into(), "must be at least 1"));
        }
        if self.poll_secs == 0 {
            return Err(bad("poll_secs", "0".into(), "must be at least 1"));
        }
        let abs = |p: &Path| {
            let p = crate::hosts::expand_home(p);
            if p.is_absolute() {
                p
            } else {
                cwd.join(p)
            }
        };
        self.work_dir = abs(&self.work_dir);
        self.data_dir = abs(&self.data_dir);
        // A bare name is looked up on the nodes' PATH; a path is made absolute.
        if self.vovd.components().count() > 1 {
            self.vovd = abs(&self.vovd);
        }
        Ok(self)
    }
}

/// The key table in Markdown (the README's `[slurm]` table).
pub fn keys_markdown() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let default = if k.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", k.default)
        };
        out.push_str(&format!("| `{}` | {default} | {} |\n", k.name, k.meaning));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn the_sweep_file_overrides_the_user_file_and_the_environment_both() {
        let sources = SlurmSources {
            user: Some(table(
                "work_dir = '/shared/vov'\npartition = 'cpu'\npoll_secs = 5",
            )),
            sweep: Some(table("partition = 'gpu'\ngpus_per_trial = 1")),
            env: vec![
                ("VOVCTL_SLURM__QOS".into(), "high".into()),
                (
                    "VOVCTL_SLURM__SBATCH_ARGS".into(),
                    "--exclusive --nice=5".into(),
                ),
                ("VOVCTL_SLURM__POLL_SECS".into(), "7".into()),
            ],
        };
        let cfg = sources.resolve(Path::new("/home/me")).unwrap();
        assert_eq!(cfg.work_dir, PathBuf::from("/shared/vov"));
        assert_eq!(cfg.partition.as_deref(), Some("gpu"));
        assert_eq!(cfg.qos.as_deref(), Some("high"));
        assert_eq!(cfg.gpus_per_trial, 1);
        assert_eq!(cfg.poll_secs, 7);
        assert_eq!(cfg.sbatch_args, ["--exclusive", "--nice=5"]);
        assert_eq!(cfg.data_dir, PathBuf::from("/home/me/data"));
        assert_eq!(cfg.vovd, PathBuf::from("vovd"));
        assert_eq!(cfg.cpus_per_trial, 1);
    }

    #[test]
    fn a_bad_key_or_value_is_named() {
        let resolve = |text: &str| {
            SlurmSources {
                sweep: Some(table(text)),
                ..SlurmSources::default()
            }
            .resolve(Path::new("/"))
            .unwrap_err()
            .to_string()
        };
        let e = resolve("work_dir = '/w'\npartiton = 'gpu'");
        assert!(e.contains("partiton"), "{e}");
        let e = resolve("partition = 'gpu'");
        assert!(e.contains("work_dir"), "{e}");
        let e = resolve("work_dir = '/w'\ntime_limit = '90 minutes'");
        assert!(e.contains("time_limit") && e.contains("HH:MM:SS"), "{e}");
        let e = resolve("work_dir = '/w'\ngpus_per_trial = 'two'");
        assert!(e.contains("gpus_per_trial"), "{e}");
    }

    #[test]
    fn time_limits_are_checked() {
        for ok in ["00:10:00", "1-00:00:00", "48:00:00", "0:5:9"] {
            assert!(valid_time(ok), "{ok}");
        }
        for bad in [
            "10",
            "10:00",
            "00:60:00",
            "x-01:00:00",
            "-01:00:00",
            "01:00:00:00",
        ] {
            assert!(!valid_time(bad), "{bad}");
        }
    }

    #[test]
    fn every_key_is_one_the_table_accepts() {
        for k in KEYS {
            let value = match k.name {
                "sbatch_args" => "[]".to_string(),
                "gpus_per_trial" | "cpus_per_trial" | "max_parallel" | "poll_secs" => "1".into(),
                "time_limit" => "'00:10:00'".into(),
                _ => "'x'".into(),
            };
            let text = format!("work_dir = '/w'\n{} = {value}", k.name);
            let text = if k.name == "work_dir" {
                "work_dir = '/w'".into()
            } else {
                text
            };
            let sources = SlurmSources {
                sweep: Some(table(&text)),
                ..SlurmSources::default()
            };
            let r = sources.resolve(Path::new("/"));
            assert!(r.is_ok(), "{}: {:?}", k.name, r.err());
        }
    }
}

#[cfg(test)]
mod readme {
    const BEGIN: &str =
        "<!-- slurm keys: generated from client/src/backend/slurm/config.rs, do not edit -->\n";
    const END: &str = "<!-- end of slurm keys -->";

    /// The README's `[slurm]` key table is [`super::KEYS`]'s;
    /// `VOV_UPDATE_README=1 cargo test -p vovctl readme` rewrites it.
    #[test]
    fn readme_slurm_key_table_is_generated_from_the_keys() {
        crate::readme::check_section(BEGIN, END, &super::keys_markdown());
    }
}
