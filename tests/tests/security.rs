//! Security defaults: bearer tokens, loopback-only without one, TLS with and
//! without client certificates.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use vov_proto::pb;
use vov_proto::pb::trainer_client::TrainerClient;
use vov_tests::{bin, Daemon, DaemonOptions};

const TOKEN: &str = "test-token-0123456789abcdef";

fn with_env(extra: &[(&str, String)]) -> DaemonOptions {
    let mut opts = DaemonOptions::default();
    opts.env
        .extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    opts
}

async fn host_info(
    channel: Channel,
    token: Option<&str>,
) -> Result<pb::HostInfoResponse, tonic::Status> {
    let token = token.map(|t| MetadataValue::try_from(format!("Bearer {t}")).unwrap());
    let mut client = TrainerClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        if let Some(t) = &token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    });
    client
        .host_info(pb::HostInfoRequest {})
        .await
        .map(|r| r.into_inner())
}

async fn health(channel: Channel) -> i32 {
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel);
    h.check(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    })
    .await
    .expect("health needs no token")
    .into_inner()
    .status
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_but_health_needs_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let daemon = Daemon::start_in(
        &tmp.path().join("state"),
        with_env(&[("VOVD__TOKEN_FILE", token_file.display().to_string())]),
    );
    let channel = Channel::from_shared(daemon.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        health(channel.clone()).await,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let missing = host_info(channel.clone(), None).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    let wrong = host_info(channel.clone(), Some("not-the-token-at-all"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let info = host_info(channel, Some(TOKEN)).await.expect("right token");
    assert_eq!(info.slots_total, 1);
    assert!(
        daemon.log_text().contains("wrong token"),
        "rejections are logged"
    );
}

#[test]
fn without_a_token_only_loopback_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DaemonOptions {
        listen: "0.0.0.0:0".into(),
        ..DaemonOptions::default()
    };
    let err = Daemon::try_start_in(tmp.path(), opts)
        .err()
        .expect("refused");
    assert!(err.contains("exit status: 64"), "{err}");
    assert!(
        err.contains("refusing to listen on a non-loopback address without authentication"),
        "{err}"
    );
    let out = std::process::Command::new(bin("vovd"))
        .args(["check-config", "--listen", "0.0.0.0:7070"])
        .env("VOVD__STATE_DIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>, usage| {
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca.pem(),
        server: leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(vec!["vovctl".into()], ExtendedKeyUsagePurpose::ClientAuth),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

async fn tls_channel(
    daemon: &Daemon,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://localhost:{}", daemon.addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_rejects_plaintext_and_can_require_client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki();
    let d = tmp.path();
    let env = [
        ("VOVD__TLS_CERT", write(d, "server.pem", &pki.server.0)),
        ("VOVD__TLS_KEY", write(d, "server.key", &pki.server.1)),
    ];
    let daemon = Daemon::start_in(&d.join("a"), with_env(&env));
    let plain = Channel::from_shared(daemon.url()).unwrap().connect().await;
    let plain_call = match plain {
        Ok(ch) => host_info(ch, None).await.map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(plain_call.is_err(), "plaintext to a TLS port fails");
    let ch = tls_channel(&daemon, &pki.ca_pem, None)
        .await
        .expect("TLS connects");
    host_info(ch, None).await.expect("call over TLS");
    drop(daemon);

    let mut env = env.to_vec();
    env.push(("VOVD__CLIENT_CA", write(d, "ca.pem", &pki.ca_pem)));
    let daemon = Daemon::start_in(&d.join("b"), with_env(&env));
    let anonymous = match tls_channel(&daemon, &pki.ca_pem, None).await {
        Ok(ch) => host_info(ch, None).await.map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        anonymous.is_err(),
        "a client without a certificate is refused"
    );
    let ch = tls_channel(&daemon, &pki.ca_pem, Some(&pki.client))
        .await
        .expect("client cert connects");
    host_info(ch, None)
        .await
        .expect("call with a client certificate");
}
