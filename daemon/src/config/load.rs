//! Reading the layered sources with the `config` crate and turning the raw values
//! into a [`DaemonConfig`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use super::connections::{ConnectionLimits, RawConnections};
use super::{ConfigError, DaemonConfig, LogFormat, TlsFiles};
use crate::runtime::threads;

/// The file read when `--config` is not given (absent is fine).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vovd/vovd.toml";

/// Environment variables set keys as `VOVD__KEY` (upper case).
const ENV_PREFIX: &str = "VOVD";
const ENV_PREFIX_SEPARATOR: &str = "__";

/// The environment variable that sets `key` (`data_dir` -> `VOVD__DATA_DIR`).
pub fn env_var(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{ENV_PREFIX_SEPARATOR}{}",
        key.to_ascii_uppercase()
    )
}

/// Where configuration comes from, lowest priority first.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The configuration file (must exist when given); see [`Sources::default_file`].
    pub file: Option<PathBuf>,
    /// Environment variables (`VOVD__LISTEN=...`); tests pass a map, the binary
    /// passes the process environment.
    pub env: HashMap<String, String>,
    /// Command-line flags, by key.
    pub flags: Vec<(&'static str, String)>,
}

impl Sources {
    /// The file to read for an optional `--config` flag: the flag's file, else
    /// [`DEFAULT_CONFIG_PATH`] when it exists, else none.
    pub fn default_file(flag: Option<PathBuf>) -> Option<PathBuf> {
        flag.or_else(|| {
            let default = PathBuf::from(DEFAULT_CONFIG_PATH);
            default.exists().then_some(default)
        })
    }

    /// This process's sources: the `--config` file (or the default one), its
    /// environment, and `flags`.
    pub fn of_process(config: Option<PathBuf>, flags: Vec<(&'static str, String)>) -> Self {
        Sources {
            file: Sources::default_file(config),
            env: std::env::vars().collect(),
            flags,
        }
    }
}

/// Default budget of paused trials' checkpoints: 20 GiB.
const DEFAULT_MAX_CHECKPOINT_BYTES: u64 = 20 << 30;

/// Default budget of kept weights: 50 GiB.
const DEFAULT_MAX_WEIGHTS_BYTES: u64 = 50 << 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: String,
    state_dir: PathBuf,
    data_dir: PathBuf,
    slots: u32,
    threads_per_slot: u32,
    devices: Vec<u32>,
    token_file: String,
    tls_cert: String,
    tls_key: String,
    client_ca: String,
    max_queued: u32,
    max_checkpoint_bytes: u64,
    max_weights_bytes: u64,
    sweep_idle_secs: u64,
    log_format: String,
    grace_period_secs: u64,
    max_attempts: u32,
    lame_duck_ms: u64,
    max_connections: u32,
    idle_timeout_secs: u64,
    keepalive_secs: u64,
    keepalive_timeout_secs: u64,
}

fn builder(src: &Sources) -> Result<Config, config::ConfigError> {
    let mut b = Config::builder()
        .set_default("listen", "127.0.0.1:7070")?
        .set_default("state_dir", "/var/lib/vovd")?
        .set_default("data_dir", "/var/lib/vovd/data")?
        .set_default("slots", 1)?
        .set_default("threads_per_slot", 0)?
        .set_default("devices", Vec::<u32>::new())?
        .set_default("token_file", "")?
        .set_default("tls_cert", "")?
        .set_default("tls_key", "")?
        .set_default("client_ca", "")?
        .set_default("max_queued", 1000)?
        .set_default("max_checkpoint_bytes", DEFAULT_MAX_CHECKPOINT_BYTES)?
        .set_default("max_weights_bytes", DEFAULT_MAX_WEIGHTS_BYTES)?
        .set_default("sweep_idle_secs", 600)?
        .set_default("log_format", "plain")?
        .set_default("grace_period_secs", 30)?
        .set_default("max_attempts", 3)?
        .set_default("lame_duck_ms", 500)?
        .set_default("max_connections", 1024)?
        .set_default("idle_timeout_secs", 300)?
        .set_default("keepalive_secs", 60)?
        .set_default("keepalive_timeout_secs", 20)?;
    if let Some(path) = &src.file {
        b = b.add_source(
            File::from(path.as_path())
                .format(FileFormat::Toml)
                .required(true),
        );
    }
    let env: config::Map<String, String> = src
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    b = b.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator(ENV_PREFIX_SEPARATOR)
            .separator("___")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("devices")
            .source(Some(env)),
    );
    for (key, value) in &src.flags {
        b = b.set_override(*key, value.clone())?;
    }
    b.build()
}

fn optional_path(s: String) -> Option<PathBuf> {
    (!s.trim().is_empty()).then(|| PathBuf::from(s))
}

fn validate(raw: Raw) -> Result<DaemonConfig, ConfigError> {
    let listen: SocketAddr = raw.listen.parse().map_err(|e| {
        ConfigError::invalid("listen", &raw.listen, format!("not an address:port ({e})"))
    })?;
    if raw.slots == 0 || raw.slots > 256 {
        return Err(ConfigError::invalid(
            "slots",
            raw.slots,
            "must be between 1 and 256",
        ));
    }
    let slots = raw.slots as usize;
    let threads_per_slot = match raw.threads_per_slot {
        0 => (threads::available() / slots).max(1),
        t if t > 1024 => {
            return Err(ConfigError::invalid(
                "threads_per_slot",
                t,
                "must be at most 1024 (0 = share the CPUs)",
            ))
        }
        t => t as usize,
    };
    if raw.max_queued == 0 {
        return Err(ConfigError::invalid("max_queued", 0, "must be at least 1"));
    }
    if raw.max_attempts == 0 || raw.max_attempts > 100 {
        return Err(ConfigError::invalid(
            "max_attempts",
            raw.max_attempts,
            "must be between 1 and 100",
        ));
    }
    let log_format = match raw.log_format.as_str() {
        "plain" => LogFormat::Plain,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError::invalid(
                "log_format",
                other,
                "must be plain or json",
            ))
        }
    };
    let tls = match (optional_path(raw.tls_cert), optional_path(raw.tls_key)) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: optional_path(raw.client_ca),
        }),
        (None, None) if raw.client_ca.trim().is_empty() => None,
        (None, None) => {
            return Err(ConfigError::invalid(
                "client_ca",
                raw.client_ca,
                "needs tls_cert and tls_key",
            ))
        }
        (Some(c), None) => {
            return Err(ConfigError::invalid(
                "tls_key",
                "",
                format!("is required with tls_cert = {}", c.display()),
            ))
        }
        (None, Some(k)) => {
            return Err(ConfigError::invalid(
                "tls_cert",
                "",
                format!("is required with tls_key = {}", k.display()),
            ))
        }
    };
    for (key, dir) in [("state_dir", &raw.state_dir), ("data_dir", &raw.data_dir)] {
        if dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(key, "\"\"", "must not be empty"));
        }
    }
    let connections = ConnectionLimits::validate(RawConnections {
        max_connections: raw.max_connections,
        idle_timeout_secs: raw.idle_timeout_secs,
        keepalive_secs: raw.keepalive_secs,
        keepalive_timeout_secs: raw.keepalive_timeout_secs,
    })?;
    Ok(DaemonConfig {
        listen,
        state_dir: raw.state_dir,
        data_dir: raw.data_dir,
        slots,
        threads_per_slot,
        devices: raw.devices.into_iter().map(|d| d as usize).collect(),
        token_file: optional_path(raw.token_file),
        tls,
        max_queued: raw.max_queued as usize,
        max_checkpoint_bytes: raw.max_checkpoint_bytes,
        max_weights_bytes: raw.max_weights_bytes,
        sweep_idle: Duration::from_secs(raw.sweep_idle_secs),
        log_format,
        grace_period: Duration::from_secs(raw.grace_period_secs),
        max_attempts: raw.max_attempts,
        lame_duck: Duration::from_millis(raw.lame_duck_ms),
        connections,
    })
}

/// Reads and validates the configuration from `sources`.
pub fn load(sources: &Sources) -> Result<DaemonConfig, ConfigError> {
    let raw: Raw = builder(sources)
        .and_then(Config::try_deserialize)
        .map_err(|e| ConfigError::Source(e.to_string()))?;
    validate(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&'static str, &str)],
    ) -> (tempfile::TempDir, Sources) {
        let tmp = tempfile::tempdir().unwrap();
        let file = file.map(|text| {
            let p = tmp.path().join("vovd.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        let src = Sources {
            file,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        (tmp, src)
    }

    #[test]
    fn defaults_then_file_then_env_then_flags() {
        let (_t, src) = sources(
            Some("listen = \"127.0.0.1:9000\"\nslots = 2\nmax_queued = 5\n"),
            &[
                ("VOVD__SLOTS", "3"),
                ("VOVD__DEVICES", "0,1"),
                ("OTHER", "x"),
            ],
            &[("slots", "4")],
        );
        let c = load(&src).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.slots, 4);
        assert_eq!(c.devices, vec![0, 1]);
        assert_eq!(c.max_queued, 5);
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.log_format, LogFormat::Plain);
        assert!(c.threads_per_slot >= 1);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&str, &str)] = &[
            ("slots = 0", "slots = 0"),
            ("slots = \"many\"", "slots"),
            ("listen = \"nowhere\"", "listen = nowhere"),
            ("log_format = \"xml\"", "log_format = xml"),
            ("max_attempts = 0", "max_attempts"),
            ("max_connections = 0", "max_connections = 0"),
            ("idle_timeout_secs = -1", "idle_timeout_secs"),
            ("slotz = 3", "slotz"),
            ("tls_cert = \"/x.pem\"", "tls_key"),
            ("client_ca = \"/ca.pem\"", "client_ca"),
            ("this is not toml", "vovd.toml"),
        ];
        for (text, needle) in cases {
            let (_t, src) = sources(Some(text), &[], &[]);
            let err = load(&src).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn non_loopback_needs_a_token() {
        let (_t, src) = sources(None, &[("VOVD__LISTEN", "0.0.0.0:7070")], &[]);
        let c = load(&src).unwrap();
        let err = c.check_security().unwrap_err().to_string();
        assert!(err.contains("refusing to listen"), "{err}");
        let (t, mut src) = sources(None, &[("VOVD__LISTEN", "0.0.0.0:7070")], &[]);
        let token = t.path().join("token");
        std::fs::write(&token, "0123456789abcdef0123\n").unwrap();
        src.flags.push(("token_file", token.display().to_string()));
        let c = load(&src).unwrap();
        c.check_security().unwrap();
        assert_eq!(c.token().unwrap().as_deref(), Some("0123456789abcdef0123"));
    }

    #[test]
    fn missing_files_are_named() {
        let (_t, src) = sources(None, &[], &[("token_file", "/nonexistent/token")]);
        let err = load(&src)
            .unwrap()
            .check_security()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("token_file = /nonexistent/token"), "{err}");
        let missing = Sources {
            file: Some(PathBuf::from("/nonexistent/vovd.toml")),
            ..Default::default()
        };
        assert!(load(&missing)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/vovd.toml"));
    }

    #[test]
    fn check_config_prints_every_key() {
        let (_t, src) = sources(None, &[], &[]);
        let text = load(&src).unwrap().to_toml();
        for key in [
            "listen",
            "state_dir",
            "data_dir",
            "slots",
            "threads_per_slot",
            "devices",
            "token_file",
            "tls_cert",
            "tls_key",
            "client_ca",
            "max_queued",
            "max_checkpoint_bytes",
            "max_weights_bytes",
            "sweep_idle_secs",
            "log_format",
            "grace_period_secs",
            "max_attempts",
            "lame_duck_ms",
            "max_connections",
            "idle_timeout_secs",
            "keepalive_secs",
            "keepalive_timeout_secs",
        ] {
            assert!(
                text.contains(&format!("{key} = ")),
                "{key} missing in {text}"
            );
        }
    }
}
