//! `vovd serve` and `vovd check-config`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::config::{self, DaemonConfig, Sources};

/// Where the configuration comes from; flags override the file and `VOVD__*`
/// environment variables.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file [default: /etc/vovd/vovd.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (key `listen`, default 127.0.0.1:7070; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Job store and checkpoints (key `state_dir`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Data root (key `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Trial slots on a CPU host (key `slots`).
    #[arg(long, value_name = "N")]
    pub slots: Option<u32>,
}

impl ConfigArgs {
    /// Loads and checks the configuration; errors exit 64.
    pub fn load(&self) -> Result<DaemonConfig, CliError> {
        let mut flags: Vec<(&'static str, String)> = Vec::new();
        let mut flag = |k, v: Option<String>| {
            if let Some(v) = v {
                flags.push((k, v));
            }
        };
        flag("listen", self.listen.clone());
        flag(
            "state_dir",
            self.state_dir.as_ref().map(|p| p.display().to_string()),
        );
        flag(
            "data_dir",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        flag("slots", self.slots.map(|s| s.to_string()));
        let sources = Sources::of_process(self.config.clone(), flags);
        let cfg = config::load(&sources).map_err(|e| CliError::Config(e.to_string()))?;
        cfg.check_security()
            .map_err(|e| CliError::Config(e.to_string()))?;
        cfg.token().map_err(|e| CliError::Config(e.to_string()))?;
        if !cfg.devices.is_empty() && !crate::runtime::gpu::cuda_compiled() {
            return Err(CliError::Config(format!(
                "devices: {:?} needs a vovd built with --features cuda (this build is CPU-only)",
                cfg.devices
            )));
        }
        Ok(cfg)
    }
}

/// Arguments of `vovd serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without a token_file the daemon only listens on loopback. With one, every call \
but health checks needs 'authorization: Bearer <token>'. Configure TLS with tls_cert/tls_key (and \
client_ca to require client certificates). SIGTERM or SIGINT drain running trials, which resume at the \
next start."
)]
pub struct ServeArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Installs the SIGTERM and SIGINT handlers now (before anything listens, so an
/// early signal is never fatal) and returns the future that resolves on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    let handler = |kind| signal(kind).map_err(|e| CliError::Failed(format!("signal handler: {e}")));
    let mut term = handler(SignalKind::terminate())?;
    let mut int = handler(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    })
}

pub(super) fn run(args: &ServeArgs) -> Result<ExitCode, CliError> {
    let cfg = args.config.load()?;
    super::logging::init(cfg.log_format, "info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vovd")
        .build()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let lock = crate::instance::InstanceLock::acquire(&cfg.state_dir).map_err(CliError::Failed)?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", cfg.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Failed(e.to_string()))?;
        // Once the store is open and calls are accepted: the first stdout line
        // tells scripts (and tests) the bound address.
        let ready = || {
            lock.publish(addr)?;
            let mut out = std::io::stdout().lock();
            // A closed stdout is no reason not to serve.
            let _ = writeln!(out, "vovd listening on {addr}").and_then(|()| out.flush());
            Ok(())
        };
        crate::server::serve(cfg, listener, ready, shutdown)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `vovd check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub(super) fn check(args: &CheckConfigArgs) -> Result<ExitCode, CliError> {
    let cfg = args.config.load()?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(cfg.to_toml().as_bytes());
    Ok(ExitCode::SUCCESS)
}
