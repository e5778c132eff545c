//! The daemon: job store, job manager, the Trainer service behind bearer-token
//! authentication, the standard health and reflection services, optional TLS, and
//! a graceful shutdown.
//!
//! Startup order: the job store opens and the job manager starts, then the
//! server accepts on the bound listener, and only then is the daemon announced
//! ready (the caller's `ready`, and systemd's READY=1), so that a daemon that
//! cannot open its store never looks started.
//!
//! Connections are limited (see [`incoming`]): at most `max_connections`, each
//! closed after `idle_timeout_secs` without a call in progress, dead peers found by
//! HTTP/2 pings.
//!
//! Shutdown order: health reports NOT_SERVING and new submissions are refused;
//! running workers are asked to checkpoint and stop (killed after the grace
//! period) and re-queued for the next start; after the lame-duck time the listener
//! closes and the store is released.

mod activity;
mod calls;
mod conn;
mod incoming;
mod nofile;
mod oversize;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use vov_proto::pb::trainer_server::TrainerServer;

use crate::config::{ConfigError, DaemonConfig};
use crate::jobs::{JobError, JobManager, ManagerConfig};
use crate::runtime::gpu::{self, DeviceError, DeviceLabel};
use crate::service::auth::BearerAuth;
use crate::service::{host, TrainerService};
use crate::store::{Store, StoreError};

/// Largest request accepted: a trial spec is a few hundred bytes. A larger one
/// is `RESOURCE_EXHAUSTED`.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest response sent (a long job history).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Calls in progress at once on one connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// How long a stopping daemon waits for clients to close their connections.
const CLOSE_CONNECTIONS: Duration = Duration::from_secs(3);

/// Why the daemon could not run.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The job store could not be opened.
    #[error("{}: {source}", path.display())]
    Store {
        /// The store file.
        path: PathBuf,
        /// Why.
        source: StoreError,
    },
    /// The job manager could not start.
    #[error(transparent)]
    Jobs(#[from] JobError),
    /// Announcing readiness failed.
    #[error("{0}")]
    Ready(String),
    /// The configured devices cannot be offered.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A TLS file could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server failed.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Something else the daemon needs failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn tls_config(cfg: &DaemonConfig) -> Result<Option<ServerTlsConfig>, ServeError> {
    let Some(tls) = &cfg.tls else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())))
    };
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(config))
}

fn manager_config(cfg: &DaemonConfig, slots: &[DeviceLabel]) -> Result<ManagerConfig, ServeError> {
    Ok(ManagerConfig {
        slots: slots.iter().map(DeviceLabel::to_string).collect(),
        threads_per_slot: cfg.threads_per_slot,
        state_dir: cfg.state_dir.clone(),
        data_dir: cfg.data_dir.clone(),
        grace: cfg.grace_period,
        max_attempts: cfg.max_attempts,
        max_queued: cfg.max_queued,
        max_checkpoint_bytes: cfg.max_checkpoint_bytes,
        max_weights_bytes: cfg.max_weights_bytes,
        sweep_idle: cfg.sweep_idle,
        worker_exe: std::env::current_exe()?,
    })
}

/// The Trainer service over a freshly opened store and a started job manager.
async fn open_service(cfg: &DaemonConfig) -> Result<(JobManager, TrainerService), ServeError> {
    let gpus = gpu::discover();
    let slots = gpu::plan_slots(cfg.slots, &cfg.devices, &gpus, gpu::cuda_compiled())?;
    let offered: Vec<gpu::Gpu> = gpus
        .into_iter()
        .filter(|g| slots.contains(&DeviceLabel::Cuda(g.index)))
        .collect();
    let path = cfg.store_path();
    let store = Store::open(&path).map_err(|source| ServeError::Store { path, source })?;
    let jobs = JobManager::start(manager_config(cfg, &slots)?, store).await?;
    let threads = cfg.threads_per_slot;
    let host = tokio::task::spawn_blocking(move || host::gather(threads, &offered))
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
    let service = TrainerService::new(
        jobs.clone(),
        host,
        cfg.data_dir.clone(),
        cfg.threads_per_slot,
        cfg.max_queued,
    );
    Ok((jobs, service))
}

/// The most connections this process can hold: `max_connections`, lowered to fit
/// the open-files limit (raised to its hard limit first).
fn connection_cap(cfg: &DaemonConfig) -> usize {
    let configured = cfg.connections.max;
    let Some(nofile) = nofile::raise() else {
        return configured;
    };
    let cap = nofile::connection_cap(configured, nofile, cfg.slots.max(cfg.devices.len()));
    if cap < configured {
        tracing::warn!(
            max_connections = cap,
            configured,
            nofile,
            "max_connections lowered to fit the open-files limit"
        );
    } else {
        tracing::info!(max_connections = cap, nofile, "connection limit");
    }
    cap
}

/// The server with its limits and TLS.
fn server_builder(cfg: &DaemonConfig) -> Result<Server, ServeError> {
    let limits = &cfg.connections;
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(limits.keepalive))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    if let Some(tls) = tls_config(cfg)? {
        builder = builder.tls_config(tls)?;
    }
    Ok(builder)
}

/// Runs the daemon on `listener` until `shutdown` resolves, then shuts down
/// gracefully (see the module docs). `ready` runs once the store is open and the
/// server accepts calls.
pub async fn serve(
    cfg: DaemonConfig,
    listener: TcpListener,
    ready: impl FnOnce() -> Result<(), String>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    cfg.check_security()?;
    let auth = BearerAuth::new(cfg.token()?);
    if cfg.tls.is_none() && !cfg.listen.ip().is_loopback() {
        tracing::warn!(listen = %cfg.listen, "listening beyond loopback without TLS: tokens travel in clear text");
    }
    let (jobs, service) = open_service(&cfg).await?;

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<TrainerServer<TrainerService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vov_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vov_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;

    let trainer = TrainerServer::new(service)
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let connections = activity::Connections::default();
    let router = server_builder(&cfg)?
        .add_service(calls::Tracked::new(health, connections.clone()))
        .add_service(calls::Tracked::new(
            InterceptedService::new(trainer, auth.clone()),
            connections.clone(),
        ))
        .add_service(calls::Tracked::new(
            InterceptedService::new(reflection_v1, auth.clone()),
            connections.clone(),
        ))
        .add_service(calls::Tracked::new(
            InterceptedService::new(reflection_v1alpha, auth),
            connections.clone(),
        ));
    let incoming = incoming::accept(
        listener,
        connections.clone(),
        connection_cap(&cfg),
        cfg.connections.idle_timeout,
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stop_rx.await;
    }));
    tracing::info!(listen = %cfg.listen, slots = cfg.slots, threads_per_slot = cfg.threads_per_slot, tls = cfg.tls.is_some(), "serving");
    ready().map_err(ServeError::Ready)?;
    // systemd Type=notify: ready once the store is open and the socket accepts (a
    // no-op outside systemd).
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }

    shutdown.await;
    let began = Instant::now();
    tracing::info!("shutting down: NOT_SERVING, draining workers");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    reporter
        .set_not_serving::<TrainerServer<TrainerService>>()
        .await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    jobs.drain().await;
    tokio::time::sleep(cfg.lame_duck.saturating_sub(began.elapsed())).await;
    let _ = stop_tx.send(());
    // Open connections get a moment to see GOAWAY and close; a client that never
    // reads must not keep the daemon (and systemd's stop) waiting.
    let mut server = server;
    match tokio::time::timeout(CLOSE_CONNECTIONS, &mut server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => return Err(ServeError::Io(std::io::Error::other(e))),
        Err(_) => {
            tracing::warn!(after = ?CLOSE_CONNECTIONS, "clients still connected: closing their connections");
            server.abort();
        }
    }
    tracing::info!("stopped");
    Ok(())
}
