//! `vovctl sweep FILE` and `vovctl attach SWEEP`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::common::{print, stored_target, HostArgs, LocalDataArgs, StoreArgs};
use super::dry_run;
use super::target::{self, SweepTarget, Target};
use super::{outcome, CliError};
use crate::backend::grpc::GrpcBackend;
use crate::backend::slurm::SlurmBackend;
use crate::backend::{Backend, BackendKind};
use crate::hosts::{self, HostsConfig, Source};
use crate::local::LocalDaemon;
use crate::progress::{JsonUi, PlainUi, TtyUi, Ui};
use crate::report::table;
use crate::schedule::{self, Options, Summary};
use crate::search::SearchDef;
use crate::store::{ResultsStore, SweepSettings, TrialRow};
use crate::sweep;
use std::sync::Arc;

/// How a run follows its trials.
#[derive(Debug, Args, Clone)]
pub struct FollowArgs {
    /// Print one JSON event per line on stdout instead of progress.
    #[arg(long)]
    pub json: bool,
    /// Seconds a host may stay silent before its trials are placed elsewhere. Its
    /// health check (answered without waiting on its trials, every second) and its
    /// trials' events keep it alive.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub lease: u64,
    /// The local vovd's data.
    #[command(flatten)]
    pub local_data: LocalDataArgs,
    /// Slots of a local vovd.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub local_slots: u32,
    /// Also write the report and its plots to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Serve the live web dashboard while following, at ADDR [default: 127.0.0.1:8040]
    /// (after the sweep file, or as --ui=ADDR). See `vovctl ui --help`.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = super::DEFAULT_LISTEN)]
    pub ui: Option<std::net::SocketAddr>,
    /// Dashboard access.
    #[command(flatten)]
    pub ui_access: super::DashboardAccess,
}

/// Arguments of `vovctl sweep`.
#[derive(Debug, Args)]
#[command(
    after_help = "Trials already finished in the store are skipped (--rerun runs them again). \
Killing vovctl loses nothing the hosts finish: run the same command again, or `vovctl attach NAME`. \
A [search] table with kind = \"asha\" or \"median\" stops losing trials early (ASHA pauses them at rungs of \
min_epochs * reduction_factor^k epochs and continues the best from their checkpoints); its decisions are kept \
in the store, so a search killed and run again goes on where it was. See the README's Adaptive search."
)]
pub struct SweepArgs {
    /// The sweep file (TOML).
    pub file: PathBuf,
    /// Override a key for every trial (or repeats, seed, name, ...): --set epochs=3.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print the trials, what is left to run, the placement and an ETA; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Place every trial on the hosts' queues and return.
    #[arg(long)]
    pub detach: bool,
    /// Run trials that already finished again (their new results replace the old).
    #[arg(long)]
    pub rerun: bool,
    /// Hosts.
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Following.
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// Arguments of `vovctl attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The sweep name.
    pub sweep: String,
    /// Hosts.
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Following.
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// The backends to run on: the configured hosts, a local vovd started for the
/// run, or a Slurm cluster.
struct Fleet {
    backends: Vec<Arc<dyn Backend>>,
    local: Option<LocalDaemon>,
}

/// Where the local vovd keeps its state: beside the results store.
pub(super) fn local_state_dir(store: &std::path::Path) -> PathBuf {
    let mut name = store
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".vovd");
    store.with_file_name(name)
}

fn fleet(target: &Target, store: &std::path::Path, follow: &FollowArgs) -> Result<Fleet, CliError> {
    let (cfg, source) = match target {
        Target::Slurm(cfg) => {
            return Ok(Fleet {
                backends: vec![Arc::new(SlurmBackend::new(cfg.clone()))],
                local: None,
            })
        }
        Target::Fleet(cfg, source) => (cfg, source),
    };
    if *source != Source::None {
        let hosts = hosts::connect(cfg).map_err(|e| CliError::Usage(e.to_string()))?;
        return Ok(Fleet {
            backends: GrpcBackend::fleet(hosts),
            local: None,
        });
    }
    let local = LocalDaemon::start(
        &local_state_dir(store),
        &follow.local_data.data_dir,
        follow.local_slots,
    )
    .map_err(|e| CliError::Connection(e.to_string()))?;
    let local_cfg = HostsConfig {
        urls: vec![local.url.clone()],
        ..HostsConfig::default()
    };
    let hosts = hosts::connect(&local_cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Fleet {
        backends: GrpcBackend::fleet(hosts),
        local: Some(local),
    })
}

fn ui(json: bool) -> Box<dyn Ui> {
    if json {
        Box::new(JsonUi)
    } else if std::io::stderr().is_terminal() {
        Box::new(TtyUi::new())
    } else {
        Box::new(PlainUi)
    }
}

/// The dashboard of `--ui`, serving `store` while the sweep is followed.
async fn dashboard(
    store: &std::path::Path,
    hosts: &HostArgs,
    opts: &Options,
    args: &FollowArgs,
) -> Result<Option<crate::ui::Dashboard>, CliError> {
    let Some(listen) = args.ui else {
        return Ok(None);
    };
    if opts.detach {
        return Err(CliError::Usage(
            "--ui serves the dashboard while vovctl follows the sweep; with --detach, \
             serve it with `vovctl ui` instead"
                .into(),
        ));
    }
    let d = super::ui::start(store, listen, &args.ui_access, hosts).await?;
    super::ui::announce(&d, args.json, &opts.sweep);
    Ok(Some(d))
}

async fn follow(
    store: &mut ResultsStore,
    fleet: Fleet,
    opts: Options,
    args: &FollowArgs,
    dashboard: Option<crate::ui::Dashboard>,
) -> Result<ExitCode, CliError> {
    let sweep = opts.sweep.clone();
    let detach = opts.detach;
    let mut ui = ui(args.json);
    let result = schedule::run(store, fleet.backends, opts, ui.as_mut()).await;
    if let Some(d) = dashboard {
        d.close().await;
    }
    if let Some(local) = fleet.local {
        // Remember the local machine's fingerprint for dry-run ETAs.
        if let Ok(Some(fp)) = store.host_fingerprint(&local.url) {
            let _ = store.note_host("local", &fp);
        }
        local.stop();
    }
    let summary = result.map_err(|e| CliError::Connection(e.to_string()))?;
    if detach {
        let text = format!("placed the trials of {sweep} on the hosts' queues; follow with `vovctl attach {sweep}` or collect with `vovctl results {sweep} --collect`\n");
        if args.json {
            print(
                &(serde_json::json!({"event": "detached", "sweep": sweep, "placed": summary.placed})
                    .to_string() + "\n"),
            );
        } else {
            eprint!("{text}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows = store
        .trials(&sweep)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    finish(store, &sweep, &rows, summary, args)
}

fn finish(
    store: &ResultsStore,
    sweep: &str,
    rows: &[TrialRow],
    summary: Summary,
    args: &FollowArgs,
) -> Result<ExitCode, CliError> {
    let (rep, recorded) = super::results::sweep_report(store, sweep, rows)?;
    if args.json {
        let line = serde_json::json!({
            "event": "finished",
            "sweep": sweep,
            "succeeded": summary.succeeded,
            "failed": summary.failed,
            "cancelled": summary.cancelled,
            "stopped_early": summary.stopped_early,
        });
        print(&(line.to_string() + "\n"));
    } else {
        print(&table::markdown(&rep));
    }
    if let Some(dir) = &args.out {
        super::results::write_report_files(dir, &rep, rows, &recorded)?;
    }
    Ok(outcome(
        summary.failed == 0 && summary.cancelled == 0 && summary.placed == 0,
    ))
}

/// An adaptive search decides as results arrive: it needs vovctl to follow the
/// sweep, and vovd hosts that can pause trials at a rung.
fn check_search(opts: &Options, backend: BackendKind) -> Result<(), CliError> {
    let kind = opts.search.kind;
    if !kind.is_adaptive() {
        return Ok(());
    }
    if opts.detach {
        return Err(CliError::Usage(format!(
            "search.kind = \"{}\" decides as results arrive: it cannot --detach (follow the sweep, or use kind = \"grid\")",
            kind.as_str()
        )));
    }
    if backend == BackendKind::Slurm {
        return Err(CliError::Usage(format!(
            "search.kind = \"{}\" runs on vovd hosts only: the slurm backend cannot pause or stop trials at a rung (use kind = \"grid\" there)",
            kind.as_str()
        )));
    }
    Ok(())
}

fn lease(args: &FollowArgs) -> Duration {
    Duration::from_secs(args.lease.max(1))
}

/// `vovctl sweep FILE`.
pub(super) async fn sweep(args: SweepArgs) -> Result<ExitCode, CliError> {
    let sw = sweep::load(&args.file, &args.sets).map_err(|e| CliError::Usage(e.to_string()))?;
    // A dry run writes nothing: no store is created, registered or migrated.
    let read_only = args.store.open_read_only()?;
    // The backend the sweep ran on before; a store of an older layout (not
    // migrated by a read-only open) remembers none.
    let before = read_only
        .as_ref()
        .and_then(|s| s.settings(&sw.def.name).ok().flatten())
        .and_then(|s| s.backend);
    let target = target::resolve(
        &args.hosts,
        SweepTarget {
            hosts: sw.def.hosts.as_ref(),
            slurm: sw.def.slurm.as_ref(),
            backend: before,
        },
    )?;
    if args.dry_run {
        let plan = dry_run::DryRun {
            store: read_only.as_ref(),
            sweep: &sw,
            target: &target,
            rerun: args.rerun,
            local_data: &args.follow.local_data,
        };
        return dry_run::run(plan).await;
    }
    drop(read_only);
    let mut store = args.store.open()?;
    let settings = SweepSettings {
        backend: Some(target.kind()),
        ..SweepSettings::of(&sw.def)
    };
    store
        .register(&sw.def.name, &args.file.display().to_string(), &sw.trials)
        .and_then(|()| store.remember(&sw.def.name, &settings))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if args.rerun {
        store
            .reset(&sw.def.name)
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    let opts = Options {
        sweep: sw.def.name.clone(),
        lease: lease(&args.follow),
        max_attempts: sw.def.max_attempts,
        retry_failed: sw.def.retry_failed,
        detach: args.detach,
        rerun: args.rerun,
        search: sw.def.search,
    };
    check_search(&opts, target.kind())?;
    let dashboard = dashboard(&args.store.store, &args.hosts, &opts, &args.follow).await?;
    let fleet = fleet(&target, &args.store.store, &args.follow)?;
    let code = follow(&mut store, fleet, opts, &args.follow, dashboard).await?;
    if sw.def.evaluate.is_empty() || args.detach {
        return Ok(code);
    }
    let json = args.follow.json;
    let all_ok =
        super::evaluate::sweep_tables(&store, &args.store, &args.hosts, &sw.def, json).await?;
    Ok(if all_ok { code } else { outcome(false) })
}

/// `vovctl attach SWEEP`.
pub(super) async fn attach(args: AttachArgs) -> Result<ExitCode, CliError> {
    let mut store = args.store.open_existing()?;
    if !store
        .has_sweep(&args.sweep)
        .map_err(|e| CliError::Usage(e.to_string()))?
    {
        return Err(CliError::Usage(format!(
            "no sweep named '{}' in {}",
            args.sweep,
            args.store.store.display()
        )));
    }
    let (target, settings) = stored_target(&args.hosts, &store, Some(&args.sweep))?;
    // A sweep registered before settings were remembered runs with the file defaults.
    let (max_attempts, retry_failed, search) = settings.map_or(
        (
            sweep::params::MAX_ATTEMPTS.default_int() as u32,
            sweep::params::RETRY_FAILED.default_bool(),
            SearchDef::default(),
        ),
        |s| (s.max_attempts, s.retry_failed, s.search),
    );
    let opts = Options {
        sweep: args.sweep.clone(),
        lease: lease(&args.follow),
        max_attempts,
        retry_failed,
        detach: false,
        rerun: false,
        search,
    };
    check_search(&opts, target.kind())?;
    let dashboard = dashboard(&args.store.store, &args.hosts, &opts, &args.follow).await?;
    let fleet = fleet(&target, &args.store.store, &args.follow)?;
    follow(&mut store, fleet, opts, &args.follow, dashboard).await
}
