//! Bad input never takes the daemon down: each case gets a clear error with the
//! right code, and the daemon keeps serving.

use std::process::Command;

use vov_proto::pb;
use vov_tests::{bin, submit, tiny_spec, Daemon, DaemonOptions};

#[tokio::test(flavor = "multi_thread")]
async fn bad_submissions_are_rejected_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    let base = tiny_spec(1, 64, 16);
    use tonic::Code::*;
    let cases: Vec<(pb::SubmitRequest, tonic::Code, &str)> = vec![
        (
            submit(
                "b1",
                "",
                pb::TrialSpec {
                    model: "alexnet".into(),
                    ..base.clone()
                },
            ),
            InvalidArgument,
            "unknown model 'alexnet'",
        ),
        (
            submit(
                "b2",
                "",
                pb::TrialSpec {
                    dataset: "cifar10".into(),
                    ..base.clone()
                },
            ),
            FailedPrecondition,
            "cifar10 is not present on this host (not found under",
        ),
        (
            submit(
                "b3",
                "",
                pb::TrialSpec {
                    dataset: "imagenet".into(),
                    ..base.clone()
                },
            ),
            InvalidArgument,
            "imagenet",
        ),
        (
            submit(
                "b4",
                "",
                pb::TrialSpec {
                    epochs: 0,
                    ..base.clone()
                },
            ),
            InvalidArgument,
            "epochs: 0 is out of range",
        ),
        (
            submit(
                "b5",
                "",
                pb::TrialSpec {
                    epochs: 1_000_000_000,
                    ..base.clone()
                },
            ),
            InvalidArgument,
            "epochs: 1000000000 is out of range",
        ),
        (
            submit(
                "b6",
                "",
                pb::TrialSpec {
                    batch_size: 0,
                    ..base.clone()
                },
            ),
            InvalidArgument,
            "batch_size: 0 is out of range",
        ),
        (
            submit(
                "b7",
                "",
                pb::TrialSpec {
                    lr: -0.5,
                    ..base.clone()
                },
            ),
            InvalidArgument,
            "lr: -0.5 is out of range",
        ),
        (
            submit(
                "b8",
                "",
                pb::TrialSpec {
                    device: pb::DeviceRequirement::Gpu as i32,
                    ..base.clone()
                },
            ),
            FailedPrecondition,
            "needs a GPU",
        ),
        (
            submit("../b9", "", base.clone()),
            InvalidArgument,
            "trial_id",
        ),
        (
            pb::SubmitRequest {
                trial_id: "b10".into(),
                sweep_id: String::new(),
                spec: None,
                retry: false,
                stop_after_epochs: 0,
                evaluation: None,
            },
            InvalidArgument,
            "spec: required",
        ),
    ];
    for (req, code, needle) in cases {
        let id = req.trial_id.clone();
        let err = c.submit(req).await.expect_err(&id);
        assert_eq!(err.code(), code, "{id}: {}", err.message());
        assert!(err.message().contains(needle), "{id}: {}", err.message());
    }
    let huge = pb::TrialSpec {
        knobs: Some(pb::ModelKnobs {
            stem: vec![1; 100_000],
            ..Default::default()
        }),
        ..base.clone()
    };
    let err = c.submit(submit("b-huge", "", huge)).await.unwrap_err();
    assert!(
        matches!(err.code(), OutOfRange | ResourceExhausted),
        "{err:?}"
    );
    let info = c
        .host_info(pb::HostInfoRequest {})
        .await
        .expect("still serving")
        .into_inner();
    assert!(info
        .models
        .iter()
        .any(|m| m.name == "vovnet-39" && m.params == 18_634_282));
    assert!(info
        .datasets
        .iter()
        .any(|d| d.name == "synthetic" && d.available));
    let list = c
        .list(pb::ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.jobs.is_empty(), "nothing rejected was queued");
    let err = c
        .list(pb::ListRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), InvalidArgument);
}

#[test]
fn malformed_config_exits_64_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("slots = \"many\"\n", "slots"),
        ("slots = 0\n", "slots = 0"),
        ("listen = \"here\"\n", "listen = here"),
        ("max_queued = -1\n", "max_queued"),
        ("shots = 3\n", "shots"),
        ("[[[\n", "vovd.toml"),
    ];
    for (text, needle) in cases {
        let file = tmp.path().join("vovd.toml");
        std::fs::write(&file, text).unwrap();
        for verb in ["check-config", "serve"] {
            let out = Command::new(bin("vovd"))
                .args([verb, "--config"])
                .arg(&file)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{verb} {text}: {err}");
            assert!(err.contains(needle), "{verb} {text}: {err}");
        }
    }
    let out = Command::new(bin("vovd"))
        .args(["check-config", "--slots", "3"])
        .env("VOVD__LISTEN", "127.0.0.1:9999")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("slots = 3") && text.contains("listen = \"127.0.0.1:9999\""),
        "{text}"
    );
}
