//! Lifecycle: health and reflection as generic tools see them, and a graceful
//! shutdown that reports NOT_SERVING, stops workers at a checkpoint and resumes
//! them at the next start.

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use vov_proto::pb;
use vov_tests::{submit, tiny_spec, wait_for, wait_state, Daemon, DaemonOptions};

const LONG: Duration = Duration::from_secs(120);

async fn status(h: &mut HealthClient<Channel>, service: &str) -> Result<i32, tonic::Status> {
    h.check(HealthCheckRequest {
        service: service.into(),
    })
    .await
    .map(|r| r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_goes_not_serving_during_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = DaemonOptions::default();
    opts.env.push(("VOVD__LAME_DUCK_MS".into(), "3000".into()));
    let mut daemon = Daemon::start_in(tmp.path(), opts);
    let channel = Channel::from_shared(daemon.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = HealthClient::new(channel);
    assert_eq!(
        status(&mut h, "").await.unwrap(),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        status(&mut h, "vov.v1.Trainer").await.unwrap(),
        ServingStatus::Serving as i32
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let mut saw_not_serving = false;
    for _ in 0..100 {
        match status(&mut h, "vov.v1.Trainer").await {
            Ok(s) if s == ServingStatus::NotServing as i32 => {
                saw_not_serving = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => break,
        }
    }
    assert!(
        saw_not_serving,
        "health reported NOT_SERVING while draining"
    );
    assert!(daemon.wait().success(), "clean exit 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_the_services_in_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let channel = Channel::from_shared(daemon.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    use tonic_reflection::pb::v1 as r1;
    let mut client = r1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let req = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        stream.next().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["vov.v1.Trainer", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }

    use tonic_reflection::pb::v1alpha as ra;
    let mut client = ra::server_reflection_client::ServerReflectionClient::new(channel);
    let req = ra::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            ra::server_reflection_request::MessageRequest::FileContainingSymbol(
                "vov.v1.Trainer".into(),
            ),
        ),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.next().await.unwrap().unwrap().message_response;
    assert!(
        matches!(response, Some(ra::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "{response:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_trial_then_restart_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-drain", "d", tiny_spec(3, 1024, 32)))
        .await
        .unwrap();
    wait_for(&mut c, "t-drain", LONG, |j| {
        j.progress
            .as_ref()
            .is_some_and(|p| p.epoch >= 2 && p.step >= 1)
    })
    .await;
    let refused = {
        daemon.signal(nix::sys::signal::Signal::SIGTERM);
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.submit(submit("t-late", "d", tiny_spec(1, 64, 16))).await
    };
    let status = refused.expect_err("a draining daemon refuses new trials");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(daemon.wait().success());
    let daemon = daemon.restart();
    let mut c = daemon.client().await;
    let job = wait_state(&mut c, "t-drain", pb::JobState::Succeeded, LONG).await;
    let result = job.result.unwrap();
    assert!(result.resumed_from_epoch >= 1, "{result:?}");
    assert_eq!(result.history.len(), 3);
}

#[test]
fn readiness_is_notified_to_systemd() {
    let tmp = tempfile::tempdir().unwrap();
    let socket_path = tmp.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut opts = DaemonOptions::default();
    opts.env
        .push(("NOTIFY_SOCKET".into(), socket_path.display().to_string()));
    let _daemon = Daemon::start_in(&tmp.path().join("state"), opts);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let first = Daemon::start_in(&state, DaemonOptions::default());
    let err = Daemon::try_start_in(&state, DaemonOptions::default())
        .err()
        .expect("the second daemon must not start");
    assert!(err.contains("in use by another vovd"), "{err}");
    assert!(err.contains(&first.pid().to_string()), "{err}");
}
