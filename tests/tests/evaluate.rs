//! Evaluation jobs, black-box, with two real daemons: a tiny trial trained on A
//! keeping its final weights, `vovctl weights` giving A's file, `vovctl
//! evaluate` on B measuring the same validation accuracy as the trial's last
//! epoch (same data, same kernels) with B's own timings, the report keeping A's
//! and B's batch-1 latencies apart by fingerprint, the upload let go on B once
//! measured, the same command again picking up the same job, and an upload that
//! does not match its digest rejected.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{jobs, keep_weights, run, sweep_file_with, vovctl};
use vov_tests::{Daemon, DaemonOptions};

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("--json prints JSON lines"))
        .collect()
}

fn evaluate(home: &Path, trial: &str, hosts: &str, store: &Path) -> Output {
    run(vovctl(home)
        .args([
            "evaluate",
            trial,
            "--measure",
            "accuracy,batch1",
            "--threads",
            "2",
        ])
        .args(["--json", "--hosts", hosts, "--store"])
        .arg(store))
}

fn uploads(d: &Daemon) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(d.state_dir.join("received-weights"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_trained_on_one_host_evaluate_on_another_and_report_apart() {
    let tmp = TempDir::new().unwrap();
    let a = Daemon::start_in(&tmp.path().join("a"), DaemonOptions::default());
    let b = Daemon::start_in(&tmp.path().join("b"), DaemonOptions::default());
    let store = tmp.path().join("results.db");
    let file = sweep_file_with(tmp.path(), "evals", 2, 96, &[3e-3], "");
    keep_weights(&file, "final");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(r#"["batch32"]"#, r#"["batch1"]"#)).unwrap();
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .args(["--hosts", &a.addr.to_string(), "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let job = jobs(&a, "evals").await.remove(0);
    let trained = job.result.clone().unwrap();
    let kept = trained.weights.clone().unwrap();

    // The file vovctl weights gives is A's.
    let fetched = tmp.path().join("w.safetensors");
    let out = run(vovctl(tmp.path())
        .args([
            "weights",
            &job.trial_id,
            "--hosts",
            &a.addr.to_string(),
            "--out",
        ])
        .arg(&fetched)
        .arg("--store")
        .arg(&store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let on_a = a
        .state_dir
        .join("weights")
        .join(format!("{}.safetensors", job.trial_id));
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(on_a).unwrap()
    );

    // Evaluated on B: the last epoch's accuracy exactly, B's own timings.
    let out = evaluate(tmp.path(), &job.trial_id, &b.addr.to_string(), &store);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let e = &lines[0];
    assert_eq!(e["state"], "succeeded", "{e}");
    assert_eq!(e["val_acc"].as_f64(), Some(trained.final_val_acc), "{e}");
    assert!(e["batch1_p50_ms"].as_f64().unwrap() > 0.0, "{e}");
    let trained_fp = trained.fingerprint.as_ref().unwrap().id.clone();
    assert_ne!(e["fingerprint"].as_str(), Some(trained_fp.as_str()), "{e}");
    let on_b = b
        .client()
        .await
        .list(pb::ListRequest::default())
        .await
        .unwrap();
    let on_b = on_b.into_inner().jobs;
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].kind, pb::JobKind::Evaluate as i32);
    let result = on_b[0].evaluation_result.as_ref().unwrap();
    assert_eq!(result.weights.as_ref().unwrap().sha256, kept.sha256);
    assert_eq!(result.source_trial_id, job.trial_id);

    // B lets the upload go once nothing needs it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !uploads(&b).is_empty() {
        assert!(
            Instant::now() < deadline,
            "upload still kept: {:?}",
            uploads(&b)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same command again: the same job, no new one.
    let out = evaluate(tmp.path(), &job.trial_id, &b.addr.to_string(), &store);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_lines(&out)[0]["eval_id"], e["eval_id"]);
    let again = b
        .client()
        .await
        .list(pb::ListRequest::default())
        .await
        .unwrap();
    assert_eq!(again.into_inner().jobs.len(), 1);

    // The report: A's batch-1 in the training section, B's in an evaluation
    // section of its own fingerprint.
    let out = run(vovctl(tmp.path())
        .args(["report", "evals", "--format", "json", "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (train, evals) = (&rep["sections"][0], &rep["evaluations"][0]);
    assert_eq!(train["fingerprint"], trained_fp.as_str());
    assert_eq!(evals["fingerprint"], e["fingerprint"]);
    assert!(
        train["rows"][0]["p50_ms"]["mean"].as_f64().unwrap() > 0.0,
        "{rep}"
    );
    assert!(
        evals["rows"][0]["p50_ms"]["mean"].as_f64().unwrap() > 0.0,
        "{rep}"
    );
    let md = run(vovctl(tmp.path())
        .args(["report", "evals", "--store"])
        .arg(&store));
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("### Evaluated on"), "{md}");
}

#[tokio::test]
async fn an_upload_that_does_not_match_its_digest_is_rejected_and_not_kept() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let chunk = pb::WeightsChunk {
        offset: 0,
        data: b"not the bytes announced".to_vec(),
        total_bytes: 23,
        sha256: "0".repeat(64),
    };
    let err = d
        .client()
        .await
        .put_weights(tokio_stream::iter(vec![chunk]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("rejected"), "{}", err.message());
    assert!(uploads(&d).is_empty(), "{:?}", uploads(&d));

    // An evaluation of weights never uploaded says what to do.
    let req = pb::SubmitRequest {
        trial_id: "e1".into(),
        evaluation: Some(pb::EvaluationSpec {
            weights_sha256: "0".repeat(64),
            accuracy: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = d.client().await.submit(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("PutWeights"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_files_evaluate_tables_time_each_configurations_best_elsewhere() {
    let tmp = TempDir::new().unwrap();
    let a = Daemon::start_in(&tmp.path().join("a"), DaemonOptions::default());
    let b = Daemon::start_in(&tmp.path().join("b"), DaemonOptions::default());
    let store = tmp.path().join("results.db");
    let file = sweep_file_with(tmp.path(), "tables", 2, 64, &[3e-3], "");
    keep_weights(&file, "best");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text += &format!(
        "\n[[evaluate]]\nhosts = [\"{}\"]\nmeasure = [\"accuracy\", \"batch1\"]\nthreads = 2\n",
        b.addr
    );
    std::fs::write(&file, text).unwrap();
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .args(["--hosts", &a.addr.to_string(), "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let trained = jobs(&a, "tables").await;
    let on_b = b
        .client()
        .await
        .list(pb::ListRequest::default())
        .await
        .unwrap();
    let on_b = on_b.into_inner().jobs;
    // Two configurations of one trial each: both are their configuration's best.
    assert_eq!(on_b.len(), 2, "{on_b:?}");
    for e in &on_b {
        let r = e.evaluation_result.as_ref().expect("evaluated");
        let t = trained
            .iter()
            .find(|t| t.trial_id == r.source_trial_id)
            .unwrap();
        assert_eq!(r.val_acc, Some(t.result.as_ref().unwrap().max_val_acc));
    }
    let out = run(vovctl(tmp.path())
        .args(["report", "tables", "--format", "json", "--store"])
        .arg(&store));
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rep["evaluations"][0]["rows"].as_array().unwrap().len(),
        2,
        "{rep}"
    );
}
