//! `vovctl ui`: serves the dashboard of a results store until interrupted; and
//! the dashboard flags of `vovctl sweep --ui` and `vovctl attach --ui`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::common::{print, HostArgs, StoreArgs};
use super::CliError;
use crate::ui::{self, Dashboard, UiOptions};

/// Where the dashboard listens unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8040";

/// Who may use the dashboard, and what it may do.
#[derive(Debug, Args, Clone, Default)]
pub struct DashboardAccess {
    /// File holding a token (16+ characters) the dashboard's requests must carry, as
    /// `Authorization: Bearer TOKEN` or through the one-time login link printed at
    /// start. Needed to listen beyond loopback.
    #[arg(long, value_name = "FILE")]
    pub ui_token_file: Option<PathBuf>,
    /// Give the dashboard's pages cancel buttons, which do what `vovctl cancel` does
    /// (read-only without it).
    #[arg(long)]
    pub allow_cancel: bool,
}

/// Arguments of `vovctl ui`.
#[derive(Debug, Args)]
#[command(
    after_help = "Pages: / (the sweeps), /sweeps/NAME (trials, curves, the published table, \
failures, downloads), /trials/ID (spec, fingerprint, epochs, events), /compare?sweeps=A,B. \
They update live while any vovctl writes the store.\n\n\
Without --ui-token-file the dashboard listens on loopback only and needs no login; reach it from \
elsewhere with `ssh -L 8040:127.0.0.1:8040 HOST`. With a token file it may listen on any address \
and prints a one-time login link; it serves plain HTTP, so put it behind a TLS proxy beyond a \
trusted network.\n\n\
The address it serves (or the login link) is printed on stdout."
)]
pub struct UiArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Access.
    #[command(flatten)]
    pub access: DashboardAccess,
    /// Hosts (credentials for the cancels of --allow-cancel).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Starts the dashboard of the store at `store` (already opened, so migrated).
pub(super) async fn start(
    store: &Path,
    listen: SocketAddr,
    access: &DashboardAccess,
    hosts: &HostArgs,
) -> Result<Dashboard, CliError> {
    ui::start(UiOptions {
        listen,
        store: store.to_path_buf(),
        token_file: access.ui_token_file.clone(),
        allow_cancel: access.allow_cancel,
        hosts: hosts.clone(),
    })
    .await
    .map_err(|e| CliError::Usage(e.to_string()))
}

/// The address to open: `page` under the dashboard, or its login link.
pub(super) fn address(d: &Dashboard, page: &str) -> String {
    if d.login {
        d.url.clone()
    } else {
        format!("{}{page}", d.url)
    }
}

/// Tells where the dashboard of a sweep is: a line on stderr, and with `json`
/// an `{"event": "ui", "url": ...}` line on stdout.
pub(super) fn announce(d: &Dashboard, json: bool, sweep: &str) {
    let url = address(d, &format!("sweeps/{sweep}"));
    let once = if d.login {
        " (a one-time login link)"
    } else {
        ""
    };
    eprintln!("vovctl: dashboard at {url}{once}");
    if json {
        print(
            &(serde_json::json!({"event": "ui", "url": url, "login": d.login}).to_string() + "\n"),
        );
    }
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// `vovctl ui`.
pub(super) async fn run(args: UiArgs) -> Result<ExitCode, CliError> {
    // Opened (and migrated) once, so the dashboard's read-only connections find
    // this build's tables.
    drop(args.store.open_existing()?);
    let d = start(&args.store.store, args.listen, &args.access, &args.hosts).await?;
    print(&format!("{}\n", address(&d, "")));
    eprintln!(
        "vovctl: serving the dashboard of {} ({}){}; Ctrl-C stops it",
        args.store.store.display(),
        if args.access.allow_cancel {
            "cancel allowed"
        } else {
            "read-only"
        },
        if d.login {
            "; the link above logs in once"
        } else {
            ""
        },
    );
    interrupted().await;
    d.close().await;
    Ok(ExitCode::SUCCESS)
}
