//! Kept weights, black-box: a tiny sweep with `keep_weights` on a real vovd, its
//! result listing the file, `vovctl weights` fetching it byte for byte (through a
//! relay that can cut the connection: a cut transfer resumes), a file damaged on
//! the host rejected, and `vovd evaluate` on the fetched file giving the accuracy
//! of the epoch the weights are from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{jobs, keep_weights, run, sweep_file_with, vovctl};
use vov_tests::relay::Relay;
use vov_tests::{bin, Daemon, DaemonOptions};

/// A sweep of two tiny trials (`weight_decay` 0 and 1e-4) keeping `kept` weights.
fn kept_sweep(dir: &Path, name: &str, kept: &str) -> PathBuf {
    let path = sweep_file_with(dir, name, 3, 96, &[3e-3], "");
    keep_weights(&path, kept);
    path
}

fn kept_file(d: &Daemon, trial: &str) -> PathBuf {
    d.state_dir
        .join("weights")
        .join(format!("{trial}.safetensors"))
}

/// Runs the sweep at `file` on `hosts`, into `store`; returns the daemon's jobs.
async fn sweep(home: &Path, file: &Path, hosts: &str, store: &Path, d: &Daemon) -> Vec<pb::Job> {
    let out = run(vovctl(home)
        .arg("sweep")
        .arg(file)
        .args(["--hosts", hosts, "--store"])
        .arg(store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let name = file.file_stem().unwrap().to_str().unwrap();
    let jobs = jobs(d, name).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    jobs
}

fn weights(home: &Path, trial: &str, out: &Path, hosts: &str, store: &Path) -> Output {
    run(vovctl(home)
        .args(["weights", trial, "--json", "--hosts", hosts, "--out"])
        .arg(out)
        .arg("--store")
        .arg(store))
}

fn listing(job: &pb::Job) -> (&pb::TrialResult, &pb::KeptWeights) {
    let r = job.result.as_ref().expect("a result");
    (
        r,
        r.weights.as_ref().expect("the result lists kept weights"),
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

#[tokio::test]
async fn best_weights_are_listed_fetched_whole_and_evaluate_to_their_epochs_accuracy() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let store = tmp.path().join("results.db");
    let file = kept_sweep(tmp.path(), "best", "best");
    let hosts = d.addr.to_string();
    for job in sweep(tmp.path(), &file, &hosts, &store, &d).await {
        let (r, w) = listing(&job);
        assert_eq!(w.kept, "best");
        assert_eq!((w.epoch, w.val_acc), (r.max_val_acc_epoch, r.max_val_acc));
        let out_file = tmp.path().join(format!("{}.safetensors", job.trial_id));
        let out = weights(tmp.path(), &job.trial_id, &out_file, &hosts, &store);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let fetched = json(&out);
        assert_eq!(fetched["sha256"], w.sha256.as_str());
        assert_eq!(fetched["bytes"], w.bytes);
        let on_host = d
            .state_dir
            .join("weights")
            .join(format!("{}.safetensors", job.trial_id));
        assert_eq!(
            std::fs::read(&out_file).unwrap(),
            std::fs::read(on_host).unwrap()
        );
        let eval = Command::new(bin("vovd"))
            .args([
                "evaluate",
                "--measure",
                "accuracy,batch1",
                "--threads",
                "1",
                "--json",
                "--weights",
            ])
            .arg(&out_file)
            .output()
            .unwrap();
        assert!(eval.status.success(), "{eval:?}");
        let record = json(&eval);
        // Same images, same batches, same kernels: the same accuracy, exactly.
        assert_eq!(record["val_acc"].as_f64(), Some(w.val_acc), "{record}");
        assert_eq!(record["weights"]["epoch"], w.epoch);
        assert_eq!(record["batch1"]["images"], 32);
        assert!(record["batch32"].is_null());
    }
}

// The relay's tasks run while the test blocks on vovctl: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_transfer_resumes_and_a_damaged_file_is_rejected() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let relay = Relay::start(d.addr).await;
    let store = tmp.path().join("results.db");
    let file = kept_sweep(tmp.path(), "final", "final");
    let hosts = relay.addr.to_string();
    let jobs = sweep(tmp.path(), &file, &hosts, &store, &d).await;
    let (r, w) = listing(&jobs[0]);
    assert_eq!((w.kept.as_str(), w.epoch), ("final", 3));
    assert_eq!(w.val_acc, r.final_val_acc);
    let trial = &jobs[0].trial_id;
    let on_host = d
        .state_dir
        .join("weights")
        .join(format!("{trial}.safetensors"));

    relay.cut_next_after(w.bytes / 2);
    let out_file = tmp.path().join("cut.safetensors");
    let out = weights(tmp.path(), trial, &out_file, &hosts, &store);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(relay.cuts(), 1, "the relay cut the first connection");
    assert!(json(&out)["attempts"].as_u64().unwrap() >= 2, "{out:?}");
    assert_eq!(
        std::fs::read(&out_file).unwrap(),
        std::fs::read(&on_host).unwrap()
    );

    // One flipped byte on the host: same size, another digest.
    let mut bytes = std::fs::read(&on_host).unwrap();
    let mid = bytes.len() - 100;
    bytes[mid] ^= 0x55;
    std::fs::write(&on_host, bytes).unwrap();
    let bad = tmp.path().join("bad.safetensors");
    let out = weights(tmp.path(), trial, &bad, &hosts, &store);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rejected"), "{stderr}");
    assert!(!bad.exists() && !tmp.path().join("bad.safetensors.part").exists());

    // A trial the store does not know is named.
    let out = weights(tmp.path(), "t0000000000000000", &bad, &hosts, &store);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'t0000000000000000' is not a trial"));
}

/// A daemon whose kept weights may take 1 byte, sparing a sweep's for
/// `sweep_idle_secs` after its last trial ended.
fn tight(dir: &Path, sweep_idle_secs: &str) -> Daemon {
    let env = [
        ("VOVD__MAX_WEIGHTS_BYTES", "1"),
        ("VOVD__SWEEP_IDLE_SECS", sweep_idle_secs),
    ];
    let opts = DaemonOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..DaemonOptions::default()
    };
    Daemon::start_in(dir, opts)
}

#[tokio::test]
async fn weights_past_the_budget_go_oldest_first_once_their_sweep_has_ended() {
    let tmp = TempDir::new().unwrap();
    let store = tmp.path().join("results.db");
    // A sweep that ended a moment ago still counts as running: nothing goes.
    let spared = tight(&tmp.path().join("spared"), "600");
    let file = kept_sweep(tmp.path(), "spared", "final");
    let js = sweep(tmp.path(), &file, &spared.addr.to_string(), &store, &spared).await;
    assert!(js.iter().all(|j| kept_file(&spared, &j.trial_id).is_file()));

    // A sweep idle at once: when its second trial ends, the first one's weights
    // (the oldest) go; the ones just kept stay.
    let d = tight(&tmp.path().join("trim"), "0");
    let file = kept_sweep(tmp.path(), "trim", "final");
    let hosts = d.addr.to_string();
    // Its own store: the same trials are finished in the first one.
    let store = tmp.path().join("trim.db");
    let js = sweep(tmp.path(), &file, &hosts, &store, &d).await;
    let last = js.iter().max_by_key(|j| j.finished_unix_ms).unwrap();
    let first = js.iter().find(|j| j.trial_id != last.trial_id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while kept_file(&d, &first.trial_id).exists() {
        assert!(
            Instant::now() < deadline,
            "the older weights were not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        kept_file(&d, &last.trial_id).is_file(),
        "the last trial's weights stay"
    );
    let out = weights(
        tmp.path(),
        &first.trial_id,
        &tmp.path().join("x"),
        &hosts,
        &store,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gone from this host"), "{stderr}");
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("--json prints JSON lines"))
        .collect()
}

#[tokio::test]
async fn collect_pulls_each_configurations_best_and_prune_spares_it() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let store = tmp.path().join("results.db");
    // Two configurations of two repeats each.
    let file = sweep_file_with(tmp.path(), "pruned", 2, 96, &[3e-3], "repeats = 2");
    keep_weights(&file, "final");
    let hosts = d.addr.to_string();
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .args(["--hosts", &hosts, "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let all = jobs(&d, "pruned").await;
    assert_eq!(all.len(), 4);
    // The best of each configuration (same spec but the seed).
    let config = |j: &pb::Job| j.spec.as_ref().unwrap().weight_decay.to_bits();
    let acc = |j: &pb::Job| j.result.as_ref().unwrap().max_val_acc;
    let mut best: Vec<&pb::Job> = Vec::new();
    for j in &all {
        match best.iter_mut().find(|b| config(b) == config(j)) {
            Some(b) if acc(j) > acc(b) => *b = j,
            Some(_) => {}
            None => best.push(j),
        }
    }
    let mut best_ids: Vec<String> = best.iter().map(|j| j.trial_id.clone()).collect();
    best_ids.sort();

    let dir = tmp.path().join("w");
    let out = run(vovctl(tmp.path())
        .args([
            "results",
            "pruned",
            "--collect",
            "--weights",
            "--hosts",
            &hosts,
        ])
        .arg("--weights-dir")
        .arg(&dir)
        .arg("--store")
        .arg(&store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().replace(".safetensors", ""))
        .collect();
    got.sort();
    assert_eq!(got, best_ids);
    for id in &best_ids {
        let here = std::fs::read(dir.join(format!("{id}.safetensors"))).unwrap();
        assert_eq!(here, std::fs::read(kept_file(&d, id)).unwrap());
    }

    let prune = |extra: &[&str]| {
        run(vovctl(tmp.path())
            .args(["prune", "pruned", "--json", "--hosts", &hosts, "--store"])
            .arg(&store)
            .args(extra))
    };
    let out = prune(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_lines(&out).len(), 2);
    assert!(all.iter().all(|j| kept_file(&d, &j.trial_id).is_file()));

    let out = prune(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .all(|l| l["removed"] == true && l["bytes"].as_u64() > Some(0)));
    for j in &all {
        let spared = best_ids.contains(&j.trial_id);
        assert_eq!(
            kept_file(&d, &j.trial_id).is_file(),
            spared,
            "{}",
            j.trial_id
        );
    }
    let gone = all
        .iter()
        .find(|j| !best_ids.contains(&j.trial_id))
        .unwrap();
    let listed = d
        .client()
        .await
        .get(pb::GetRequest {
            trial_id: gone.trial_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.result.unwrap().weights.is_none(), "no longer listed");
    let out = weights(
        tmp.path(),
        &gone.trial_id,
        &tmp.path().join("x"),
        &hosts,
        &store,
    );
    assert_eq!(out.status.code(), Some(2));

    let out = prune(&["--all"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_lines(&out).len(), 2);
    assert!(all.iter().all(|j| !kept_file(&d, &j.trial_id).exists()));
}
