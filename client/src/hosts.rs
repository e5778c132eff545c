//! Which hosts to use and how to reach them.
//!
//! Addresses come from the first of: `--hosts`, `VOVCTL_HOSTS`, the sweep file's
//! `[hosts]`, `~/.config/vov/hosts.toml`; none means "start a local vovd".
//! Credentials (token file, TLS CA, client certificate) come from the first of the
//! flags, `VOVCTL_TOKEN_FILE` / `VOVCTL_TLS_CA`, the sweep file, the user file.
//! An address is `host:port` (plain HTTP/2, or TLS when a CA is configured) or a
//! full `http://` / `https://` URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_client::HealthClient;
use vov_proto::pb::trainer_client::TrainerClient;

use crate::sweep::HostsDef;

/// A problem with the host configuration.
#[derive(Debug, Error)]
pub enum HostsError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An address is malformed.
    #[error("host address '{0}': expected host:port or an http(s):// URL")]
    Address(String),
    /// TLS could not be set up.
    #[error("TLS for {host}: {message}")]
    Tls {
        /// The host.
        host: String,
        /// What went wrong.
        message: String,
    },
}

/// Where the addresses came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--hosts`.
    Flag,
    /// `VOVCTL_HOSTS`.
    Env,
    /// The sweep file's `[hosts]`.
    SweepFile,
    /// `~/.config/vov/hosts.toml`.
    UserFile,
    /// Nowhere: run a local daemon.
    None,
}

/// Resolved hosts and credentials.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostsConfig {
    /// Normalised URLs.
    pub urls: Vec<String>,
    /// Bearer token file.
    pub token_file: Option<PathBuf>,
    /// TLS CA bundle.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate.
    pub tls_cert: Option<PathBuf>,
    /// Client key.
    pub tls_key: Option<PathBuf>,
}

/// What the command line and environment say.
#[derive(Debug, Clone, Default)]
pub struct HostInputs {
    /// `--hosts`.
    pub flag: Option<String>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// `--tls-ca`.
    pub tls_ca: Option<PathBuf>,
    /// `VOVCTL_HOSTS`.
    pub env_hosts: Option<String>,
    /// `VOVCTL_TOKEN_FILE`.
    pub env_token_file: Option<PathBuf>,
    /// `VOVCTL_TLS_CA`.
    pub env_tls_ca: Option<PathBuf>,
    /// The user file (`~/.config/vov/hosts.toml`), when present.
    pub user_file: Option<PathBuf>,
}

impl HostInputs {
    /// From flags and the process environment.
    pub fn from_env(
        flag: Option<String>,
        token_file: Option<PathBuf>,
        tls_ca: Option<PathBuf>,
    ) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        HostInputs {
            flag,
            token_file,
            tls_ca,
            env_hosts: var("VOVCTL_HOSTS"),
            env_token_file: var("VOVCTL_TOKEN_FILE").map(PathBuf::from),
            env_tls_ca: var("VOVCTL_TLS_CA").map(PathBuf::from),
            user_file: user_file(),
        }
    }
}

/// The user file, `~/.config/vov/hosts.toml`, when it exists.
pub fn user_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".config/vov/hosts.toml"))
        .filter(|p| p.is_file())
}

/// Expands a leading `~/`.
pub fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// Splits a comma-separated address list.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// Normalises an address to a URL (https when `tls` and no scheme is given).
pub fn url(address: &str, tls: bool) -> Result<String, HostsError> {
    let bad = || HostsError::Address(address.to_string());
    let (scheme, rest) = match address.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        Some(_) => return Err(bad()),
        None => (if tls { "https" } else { "http" }, address),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || rest.contains('/') {
        return Err(bad());
    }
    Ok(format!("{scheme}://{rest}"))
}

fn read_user_file(path: &Path) -> Result<HostsDef, HostsError> {
    let err = |message: String| HostsError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    // Its `[slurm]` table is the Slurm backend's (see `backend::slurm::config`).
    table.remove("slurm");
    let doc = format!(
        "name = \"user\"\n[hosts]\n{}",
        toml::to_string(&table).map_err(|e| err(e.to_string()))?
    );
    crate::sweep::file::parse(&doc, &path.display().to_string())
        .map(|d| d.hosts.unwrap_or_default())
        .map_err(|e| err(e.to_string()))
}

/// Resolves hosts and credentials from every source.
pub fn resolve(
    inputs: &HostInputs,
    sweep: Option<&HostsDef>,
) -> Result<(HostsConfig, Source), HostsError> {
    let user = inputs
        .user_file
        .as_deref()
        .map(read_user_file)
        .transpose()?;
    let files = [sweep.cloned(), user];
    let from_files = |f: fn(&HostsDef) -> Option<PathBuf>| files.iter().flatten().find_map(f);
    let (addresses, source) = if let Some(f) = &inputs.flag {
        (split_list(f), Source::Flag)
    } else if let Some(e) = &inputs.env_hosts {
        (split_list(e), Source::Env)
    } else if let Some(h) = sweep.filter(|h| !h.addresses.is_empty()) {
        (h.addresses.clone(), Source::SweepFile)
    } else if let Some(h) = files[1].as_ref().filter(|h| !h.addresses.is_empty()) {
        (h.addresses.clone(), Source::UserFile)
    } else {
        (Vec::new(), Source::None)
    };
    let mut cfg = HostsConfig {
        urls: Vec::new(),
        token_file: inputs
            .token_file
            .clone()
            .or(inputs.env_token_file.clone())
            .or_else(|| from_files(|h| h.token_file.clone())),
        tls_ca: inputs
            .tls_ca
            .clone()
            .or(inputs.env_tls_ca.clone())
            .or_else(|| from_files(|h| h.tls_ca.clone())),
        tls_cert: from_files(|h| h.tls_cert.clone()),
        tls_key: from_files(|h| h.tls_key.clone()),
    };
    cfg.urls = addresses
        .iter()
        .map(|a| url(a, cfg.tls_ca.is_some()))
        .collect::<Result<_, _>>()?;
    Ok((cfg, source))
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    }
}

/// A client of one host.
pub type Client = TrainerClient<InterceptedService<Channel, Token>>;

/// A host to talk to.
#[derive(Clone)]
pub struct Host {
    /// Its URL (the name it is stored under).
    pub url: String,
    /// A client; the connection is made lazily and re-made after failures.
    pub client: Client,
    /// The standard health service on the same connection: answered without a
    /// token and without waiting on the host's jobs, so it is the cheap liveness
    /// check.
    pub health: HealthClient<Channel>,
}

fn read(path: &Path, what: &str) -> Result<String, HostsError> {
    let path = expand_home(path);
    std::fs::read_to_string(&path).map_err(|e| HostsError::File {
        path: path.display().to_string(),
        message: format!("reading the {what}: {e}"),
    })
}

/// A client for each configured host.
pub fn connect(cfg: &HostsConfig) -> Result<Vec<Host>, HostsError> {
    let token = match &cfg.token_file {
        Some(p) => {
            let t = read(p, "token")?.trim().to_string();
            let value =
                MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| HostsError::File {
                    path: p.display().to_string(),
                    message: "the token has characters a header cannot carry".into(),
                })?;
            Some(value)
        }
        None => None,
    };
    cfg.urls
        .iter()
        .map(|u| connect_one(cfg, u, Token(token.clone())))
        .collect()
}

fn connect_one(cfg: &HostsConfig, url: &str, token: Token) -> Result<Host, HostsError> {
    let tls_err = |message: String| HostsError::Tls {
        host: url.to_string(),
        message,
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|_| HostsError::Address(url.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &cfg.tls_ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca, "TLS CA")?));
        }
        if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
            tls = tls.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| tls_err(e.to_string()))?;
    }
    let channel = endpoint.connect_lazy();
    Ok(Host {
        url: url.to_string(),
        health: HealthClient::new(channel.clone()),
        client: TrainerClient::with_interceptor(channel, token)
            .max_decoding_message_size(64 * 1024 * 1024),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url("gpu1:7070", false).unwrap(), "http://gpu1:7070");
        assert_eq!(url("gpu1:7070", true).unwrap(), "https://gpu1:7070");
        assert_eq!(
            url("http://10.0.0.2:7070/", true).unwrap(),
            "http://10.0.0.2:7070"
        );
        assert!(url("gpu1", false).is_err());
        assert!(url("ftp://gpu1:21", false).is_err());
        assert!(url("gpu1:notaport", false).is_err());
        assert_eq!(split_list(" a:1, b:2 ,,"), vec!["a:1", "b:2"]);
    }

    #[test]
    fn precedence() {
        let sweep = HostsDef {
            addresses: vec!["s:1".into()],
            token_file: Some("/sweep/token".into()),
            ..Default::default()
        };
        let mut inputs = HostInputs {
            env_hosts: Some("e:1".into()),
            ..Default::default()
        };
        let (cfg, src) = resolve(&inputs, Some(&sweep)).unwrap();
        assert_eq!(
            (cfg.urls, src),
            (vec!["http://e:1".to_string()], Source::Env)
        );
        assert_eq!(cfg.token_file, Some(PathBuf::from("/sweep/token")));
        inputs.flag = Some("f:1,g:2".into());
        inputs.token_file = Some("/flag/token".into());
        let (cfg, src) = resolve(&inputs, Some(&sweep)).unwrap();
        assert_eq!((cfg.urls.len(), src), (2, Source::Flag));
        assert_eq!(cfg.token_file, Some(PathBuf::from("/flag/token")));
        let (cfg, src) = resolve(&HostInputs::default(), Some(&sweep)).unwrap();
        assert_eq!(
            (cfg.urls, src),
            (vec!["http://s:1".to_string()], Source::SweepFile)
        );
        let (cfg, src) = resolve(&HostInputs::default(), None).unwrap();
        assert!(cfg.urls.is_empty() && src == Source::None);
    }

    #[test]
    fn user_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("hosts.toml");
        std::fs::write(&p, "addresses = [\"u:7070\"]\ntls_ca = \"/ca.pem\"\n").unwrap();
        let inputs = HostInputs {
            user_file: Some(p),
            ..Default::default()
        };
        let (cfg, src) = resolve(&inputs, None).unwrap();
        assert_eq!(
            (cfg.urls, src),
            (vec!["https://u:7070".to_string()], Source::UserFile)
        );
    }
}
