//! Black-box tests of the real `vovctl` binary driving real `vovd` daemons on
//! loopback: fan-out, a daemon killed mid-sweep, vovctl killed mid-sweep,
//! detach and collect, the embedded local daemon, and the report files.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{
    finish, hosts_arg, jobs, read_until, run, spawn_sweep, store_rows, sweep_file, vovctl,
};
use vov_tests::{alive, Daemon, DaemonOptions};

fn succeeded(jobs: &[pb::Job]) -> BTreeSet<String> {
    jobs.iter()
        .filter(|j| j.state == pb::JobState::Succeeded as i32)
        .map(|j| j.trial_id.clone())
        .collect()
}

/// Checks every store row finished on the host it names, which also holds the
/// result; returns trial -> host.
async fn assert_agree(
    rows: &[serde_json::Value],
    daemons: &[&Daemon],
    sweep: &str,
) -> BTreeMap<String, String> {
    let mut done = BTreeMap::new();
    let mut on_host = BTreeMap::new();
    for d in daemons {
        on_host.insert(d.addr.to_string(), succeeded(&jobs(d, sweep).await));
    }
    for row in rows {
        let trial = row["trial"].as_str().unwrap().to_string();
        let host = row["host"].as_str().unwrap().to_string();
        assert_eq!(row["state"], "succeeded", "{row}");
        let key = on_host
            .keys()
            .find(|k| host.contains(k.as_str()))
            .unwrap_or_else(|| panic!("{trial} ran on unknown host {host}"));
        assert!(
            on_host[key].contains(&trial),
            "{trial}: the store says {host}, which has no result"
        );
        assert!(done.insert(trial, host).is_none(), "trial stored twice");
    }
    done
}

#[tokio::test]
async fn grid_of_six_over_three_daemons_and_report() {
    let tmp = TempDir::new().unwrap();
    let daemons: Vec<Daemon> = (0..3)
        .map(|i| Daemon::start_in(&tmp.path().join(format!("d{i}")), DaemonOptions::default()))
        .collect();
    let refs: Vec<&Daemon> = daemons.iter().collect();
    let file = sweep_file(tmp.path(), "fan", 1, 64, &[1e-3, 2e-3, 3e-3]);
    let store = tmp.path().join("r.db");
    let out = run(vovctl(tmp.path()).args([
        "sweep",
        file.to_str().unwrap(),
        "--hosts",
        &hosts_arg(&refs),
        "--store",
        store.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("MaxValAcc"), "{table}");

    let rows = store_rows(tmp.path(), &store, "fan");
    assert_eq!(rows.len(), 6);
    let placed = assert_agree(&rows, &refs, "fan").await;
    let hosts: BTreeSet<&String> = placed.values().collect();
    assert!(hosts.len() >= 2, "six trials on three hosts used {hosts:?}");
    let total: usize = {
        let mut n = 0;
        for d in &daemons {
            n += jobs(d, "fan").await.len();
        }
        n
    };
    assert_eq!(total, 6, "each trial submitted to exactly one daemon");

    let report = tmp.path().join("report");
    let out = run(vovctl(tmp.path()).args([
        "report",
        "fan",
        "--store",
        store.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]));
    assert!(out.status.success());
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("| model") && md.contains("MaxValAcc"), "{md}");
    for svg in ["curves.svg", "accuracy_vs_latency.svg"] {
        let text = std::fs::read_to_string(report.join(svg)).unwrap();
        let doc = roxmltree::Document::parse(&text).expect("valid SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(doc.descendants().count() > 20, "{svg} is nearly empty");
    }
}

#[tokio::test]
async fn daemon_killed_mid_sweep_every_trial_completes_once() {
    let tmp = TempDir::new().unwrap();
    let a = Daemon::start_in(&tmp.path().join("a"), DaemonOptions::default());
    let mut b = Daemon::start_in(&tmp.path().join("b"), DaemonOptions::default());
    let file = sweep_file(tmp.path(), "loss", 2, 128, &[1e-3, 2e-3, 3e-3]);
    let store = tmp.path().join("r.db");
    let hosts = hosts_arg(&[&a, &b]);
    let mut child = spawn_sweep(tmp.path(), &file, &store, &hosts, &["--lease", "3"]);
    let b_addr = b.addr.to_string();
    read_until(&mut child, |e| {
        e["event"] == "placed" && e["host"].as_str().unwrap_or("").contains(&b_addr)
    });
    b.kill9();
    assert_eq!(finish(child).1, Some(0), "the sweep completes without b");

    let rows = store_rows(tmp.path(), &store, "loss");
    assert_eq!(rows.len(), 6);
    let placed = assert_agree(&rows, &[&a], "loss").await;
    assert_eq!(placed.len(), 6, "every trial finished exactly once, on a");

    // b comes back with its interrupted trial: collecting keeps one result each.
    let b2 = b.restart();
    let all = format!("{},{}", a.addr, b2.addr);
    let out = run(vovctl(tmp.path()).args([
        "results",
        "loss",
        "--collect",
        "--hosts",
        &all,
        "--store",
        store.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: BTreeSet<&str> = rows.iter().map(|r| r["trial"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), ids.len()), (6, 6));
}

#[tokio::test]
async fn vovctl_killed_mid_sweep_rerun_skips_finished_trials() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let file = sweep_file(tmp.path(), "again", 1, 64, &[1e-3, 2e-3, 3e-3]);
    let store = tmp.path().join("r.db");
    let hosts = d.addr.to_string();
    let mut child = spawn_sweep(tmp.path(), &file, &store, &hosts, &[]);
    read_until(&mut child, |e| {
        e["event"] == "state" && e["state"] == "succeeded"
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let before: BTreeMap<String, i64> = jobs(&d, "again")
        .await
        .into_iter()
        .filter(|j| j.state == pb::JobState::Succeeded as i32)
        .map(|j| (j.trial_id, j.started_unix_ms))
        .collect();
    assert!(!before.is_empty());

    let out = run(vovctl(tmp.path()).args([
        "sweep",
        file.to_str().unwrap(),
        "--hosts",
        &hosts,
        "--store",
        store.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));
    let after = jobs(&d, "again").await;
    assert_eq!(after.len(), 6);
    for job in &after {
        assert_eq!(job.state, pb::JobState::Succeeded as i32, "{job:?}");
        if let Some(started) = before.get(&job.trial_id) {
            assert_eq!(job.started_unix_ms, *started, "{} re-ran", job.trial_id);
            assert_eq!(job.attempt, 1);
        }
    }
    assert_eq!(store_rows(tmp.path(), &store, "again").len(), 6);
}

#[tokio::test]
async fn detach_then_collect_gathers_everything() {
    let tmp = TempDir::new().unwrap();
    let a = Daemon::start_in(&tmp.path().join("a"), DaemonOptions::default());
    let b = Daemon::start_in(&tmp.path().join("b"), DaemonOptions::default());
    let file = sweep_file(tmp.path(), "later", 1, 64, &[1e-3, 2e-3, 3e-3]);
    let store = tmp.path().join("r.db");
    let hosts = hosts_arg(&[&a, &b]);
    let started = Instant::now();
    let out = run(vovctl(tmp.path()).args([
        "sweep",
        file.to_str().unwrap(),
        "--hosts",
        &hosts,
        "--store",
        store.to_str().unwrap(),
        "--detach",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let placed = jobs(&a, "later").await.len() + jobs(&b, "later").await.len();
    assert_eq!(placed, 6, "detach places every trial on the queues");

    let deadline = started + Duration::from_secs(120);
    while succeeded(&jobs(&a, "later").await).len() + succeeded(&jobs(&b, "later").await).len() < 6
    {
        assert!(Instant::now() < deadline, "detached trials never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = run(vovctl(tmp.path()).args([
        "results",
        "later",
        "--collect",
        "--hosts",
        &hosts,
        "--store",
        store.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 6);
    assert_agree(&rows, &[&a, &b], "later").await;
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(needle) && alive(*pid)
        })
        .collect()
}

#[test]
fn no_hosts_starts_and_stops_a_local_daemon() {
    let tmp = TempDir::new().unwrap();
    let file = sweep_file(tmp.path(), "laptop", 1, 64, &[1e-3]);
    let store = tmp.path().join("r.db");
    let out = run(vovctl(tmp.path())
        .current_dir(tmp.path())
        .args(["sweep", file.to_str().unwrap(), "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MaxValAcc"));
    let state = tmp.path().join("r.db.vovd");
    assert!(
        state.join("vovd.log").is_file(),
        "its state lives beside the store"
    );
    assert!(
        !state.join("vovd.json").exists(),
        "the local vovd shut down cleanly"
    );
    let left = processes_mentioning(state.to_str().unwrap());
    assert!(left.is_empty(), "local vovd still running: {left:?}");
    let rows = store_rows(tmp.path(), &store, "laptop");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["state"] == "succeeded"));
}
