//! The deployment kit in deploy/: install.sh into a temporary root (twice, then
//! uninstall), the units under `systemd-analyze verify`, the installed binary
//! serving with the installed example config, and the TLS script's certificates
//! accepted by vovd and vovctl.
//!
//! The runbook's upgrade path (SIGTERM mid-trial, start again, the trial
//! completes) is `lifecycle::sigterm_mid_trial_then_restart_completes_it`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use vov_tests::bin;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn install(root: &Path, extra: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(deploy("install.sh"))
        .arg("--prefix")
        .arg(root)
        .arg("--binary")
        .arg(bin("vovd"))
        .args(extra)
        .env_remove("DESTDIR")
        .output()
        .expect("install.sh runs");
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `systemd-analyze verify` on a unit file (a template through an instance link).
fn verify(unit: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let name = unit
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .replace("@.", "@0.");
    std::os::unix::fs::symlink(unit, dir.path().join(&name)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join(&name))
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {text}");
    assert!(!text.contains(&name), "{name}: {text}");
}

#[test]
fn install_is_idempotent_keeps_config_and_uninstalls() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    install(root, &["--per-gpu", "2"]);
    let config = root.join("etc/vovd/vovd.toml");
    let token = root.join("etc/vovd/token");
    let units = root.join("etc/systemd/system");
    assert_eq!(mode(&root.join("bin/vovd")), 0o755);
    assert_eq!(mode(&token), 0o600);
    assert_eq!(mode(&config), 0o644);
    assert_eq!(mode(&root.join("var/lib/vovd")), 0o750);
    let secret = std::fs::read_to_string(&token).unwrap();
    assert_eq!(secret.len(), 64, "32 random bytes in hex");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    let env1 = std::fs::read_to_string(root.join("etc/vovd/gpu1.env")).unwrap();
    assert_eq!(env1.trim(), "VOVD__LISTEN=0.0.0.0:7071");
    let unit = std::fs::read_to_string(units.join("vovd.service")).unwrap();
    let exec = format!(
        "ExecStart={}/bin/vovd serve --config {}/etc/vovd/vovd.toml",
        root.display(),
        root.display()
    );
    assert!(unit.contains(&exec), "{unit}");
    verify(&units.join("vovd.service"));
    verify(&units.join("vovd@.service"));

    // A site's edits survive a second run (the upgrade path), and so does the token.
    let edited = std::fs::read_to_string(&config).unwrap() + "\n# site edit\n";
    std::fs::write(&config, &edited).unwrap();
    let second = install(root, &[]);
    let log = String::from_utf8_lossy(&second.stdout);
    assert!(log.contains("kept existing"), "{log}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert_eq!(std::fs::read_to_string(&token).unwrap(), secret);
    assert_eq!(mode(&token), 0o600);

    install(root, &["--uninstall"]);
    assert!(!root.join("bin/vovd").exists());
    assert!(!units.join("vovd.service").exists());
    assert!(!units.join("vovd@.service").exists());
    assert!(config.exists(), "uninstall keeps the config");
    install(root, &["--uninstall", "--purge"]);
    assert!(!root.join("etc/vovd").exists());
    assert!(!root.join("var/lib/vovd").exists());
}

/// Starts the installed vovd; returns it and its address, or its stderr.
fn serve(
    root: &Path,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(Child, String), String> {
    let log = root.join("serve.log");
    let mut child = Command::new(root.join("bin/vovd"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .env("VOVD__LAME_DUCK_MS", "0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("vovd listening on ") {
        Some(addr) => Ok((child, addr.to_string())),
        None => {
            let status = child.wait().unwrap();
            Err(format!(
                "{status}: {}",
                std::fs::read_to_string(&log).unwrap()
            ))
        }
    }
}

fn stop(mut child: Child, root: &Path) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(root.join("serve.log")).unwrap_or_default();
    assert!(status.success(), "{status}: {log}");
}

#[tokio::test]
async fn installed_binary_serves_with_the_example_config() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    install(root, &[]);
    let config = root.join("etc/vovd/vovd.toml");
    let check = Command::new(root.join("bin/vovd"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let (child, addr) = serve(root, &config, &["--listen", "127.0.0.1:0"], &[]).unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    drop(health);
    stop(child, root);

    // The example listens on 0.0.0.0: without its token file vovd refuses.
    let text = std::fs::read_to_string(&config).unwrap();
    let no_token: String = text
        .lines()
        .filter(|l| !l.starts_with("token_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let bare = root.join("no-token.toml");
    std::fs::write(&bare, no_token).unwrap();
    let err = serve(root, &bare, &[], &[]).expect_err("must refuse");
    assert!(err.contains("exit status: 64"), "{err}");
    assert!(err.contains("token_file"), "{err}");
}

#[test]
fn tls_script_certificates_work_with_vovd_and_vovctl() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    install(root, &[]);
    let pki = root.join("pki");
    for args in [vec!["ca"], vec!["host", "localhost", "127.0.0.1"]] {
        let out = Command::new("bash")
            .arg(deploy("tls.sh"))
            .arg(args[0])
            .arg(&pki)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(mode(&pki.join("localhost-key.pem")), 0o600);
    let cert = pki.join("localhost.pem").display().to_string();
    let key = pki.join("localhost-key.pem").display().to_string();
    let (child, addr) = serve(
        root,
        &root.join("etc/vovd/vovd.toml"),
        &["--listen", "127.0.0.1:0"],
        &[("VOVD__TLS_CERT", &cert), ("VOVD__TLS_KEY", &key)],
    )
    .unwrap();
    let port = addr.rsplit(':').next().unwrap();
    let home = root.join("home");
    let out = Command::new(bin("vovctl"))
        .args(["hosts", "--hosts", &format!("https://localhost:{port}")])
        .arg("--tls-ca")
        .arg(pki.join("ca.pem"))
        .arg("--token-file")
        .arg(root.join("etc/vovd/token"))
        .env("HOME", &home)
        .env_remove("VOVCTL_HOSTS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    stop(child, root);
}

#[test]
fn fetch_data_installs_into_the_configured_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tempfile::tempdir().unwrap();
    let archive = vov_tests::datasets::cifar10_archive(site.path(), 4);
    let server = vov_tests::http::FileServer::start(site.path());
    let sum = format!("sha256:{}", vov_tests::datasets::sha256_file(&archive));
    let url = server.url();
    let out = install(
        tmp.path(),
        &[
            "--no-start",
            "--fetch-data",
            "--data-url",
            &url,
            "--data-checksum",
            &sum,
        ],
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("cifar10  installed  train=20 val=4"), "{log}");
    let data = tmp.path().join("var/lib/vovd/data/cifar10");
    assert!(data.join("test_batch.bin").is_file(), "{}", data.display());
    assert_eq!(server.log().len(), 1);
}
