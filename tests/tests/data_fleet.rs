//! Black-box tests of the fleet's view of data sets: two real daemons, one with
//! a tiny CIFAR-10 in its data directory and one without; `vovctl data` shows
//! which has what and the command that fixes the other, a dry run marks trials
//! no host can run, and `HostInfo` sees files added while the daemon runs.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{run, sweep_file, vovctl};
use vov_tests::{Daemon, DaemonOptions};

/// Writes a CIFAR-10 of `records` records per file in its binary layout into
/// `<data dir>/cifar10`.
fn write_cifar10(data_dir: &Path, records: usize) -> PathBuf {
    let dir = data_dir.join("cifar10");
    vov_tests::datasets::write_cifar10(&dir, records);
    dir
}

fn data_dir(d: &Daemon) -> PathBuf {
    d.state_dir.join("data")
}

/// Daemon A with 4 records per CIFAR-10 file, daemon B with none.
fn two_daemons(tmp: &Path) -> (Daemon, Daemon) {
    let a = Daemon::start_in(&tmp.join("a"), DaemonOptions::default());
    let b = Daemon::start_in(&tmp.join("b"), DaemonOptions::default());
    write_cifar10(&data_dir(&a), 4);
    (a, b)
}

/// A cifar10 sweep of four tiny trials.
fn cifar_sweep(dir: &Path) -> PathBuf {
    let file = sweep_file(dir, "cif", 1, 4, &[1e-3, 2e-3]);
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .replace("dataset = \"synthetic\"", "dataset = \"cifar10\"")
        .replace("val_limit = 32", "val_limit = 4");
    std::fs::write(&file, text).unwrap();
    file
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vovctl_data_shows_who_has_what_and_the_fix() {
    let tmp = TempDir::new().unwrap();
    let (a, b) = two_daemons(tmp.path());
    let hosts = format!("{},{}", a.addr, b.addr);
    let out = run(vovctl(tmp.path()).args(["data", "--hosts", &hosts]));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let row = |d: &Daemon| {
        text.lines()
            .find(|l| l.contains(&d.addr.to_string()) && l.starts_with('|'))
            .unwrap_or_else(|| panic!("no row for {}: {text}", d.addr))
            .to_string()
    };
    assert!(row(&a).contains("present 20/4"), "{text}");
    assert!(row(&b).contains("absent"), "{text}");
    let fix = format!(
        "host http://{}: vovd data fetch cifar10 --data-dir {}",
        b.addr,
        data_dir(&b).display()
    );
    assert!(text.contains(&fix), "{text}");
    assert!(
        !text.contains(&format!("host http://{}: vovd data fetch cifar10", a.addr)),
        "{text}"
    );

    let out = run(vovctl(tmp.path()).args(["data", "--json", "--hosts", &hosts]));
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cifar = |i: usize| {
        json[i]["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "cifar10")
            .cloned()
            .unwrap()
    };
    assert_eq!(cifar(0)["state"], "present", "{json}");
    assert_eq!(cifar(0)["train_images"], 20);
    assert_eq!(cifar(0)["val_images"], 4);
    assert_eq!(cifar(0)["fix"], "");
    assert_eq!(cifar(1)["state"], "absent", "{json}");
    assert!(cifar(1)["fix"]
        .as_str()
        .unwrap()
        .starts_with("vovd data fetch cifar10 --data-dir"));

    // An unreachable host shows its error in its row, and the exit code says so.
    let out = run(vovctl(tmp.path()).args(["data", "--hosts", &format!("{},127.0.0.1:9", a.addr)]));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("http://127.0.0.1:9 ") && l.contains("| unreachable")),
        "{text}"
    );
}

#[test]
fn without_hosts_the_local_data_directory_is_shown_and_checked() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("local-data");
    write_cifar10(&data, 3);
    let dir = data.to_str().unwrap();
    let out = run(vovctl(tmp.path()).args(["data", "--data-dir", dir]));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("| local"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("present 15/3"), "{text}");

    let empty = tmp.path().join("empty");
    let file = cifar_sweep(tmp.path());
    let out = run(vovctl(tmp.path())
        .args(["sweep"])
        .arg(&file)
        .args([
            "--dry-run",
            "--data-dir",
            empty.to_str().unwrap(),
            "--store",
        ])
        .arg(tmp.path().join("store.db")));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no data"), "{text}");
    assert!(
        text.contains("vovd data fetch cifar10 --data-dir"),
        "{text}"
    );
    assert!(text.contains("on host local"), "{text}");
}

#[test]
fn a_dry_run_marks_trials_no_host_has_data_for() {
    let tmp = TempDir::new().unwrap();
    let (a, b) = two_daemons(tmp.path());
    let file = cifar_sweep(tmp.path());
    let out = run(vovctl(tmp.path())
        .args(["sweep", "--dry-run", "--hosts", &b.addr.to_string()])
        .arg(&file));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text.matches("| no data").count(), 4, "{text}");
    assert!(
        text.contains(&format!(
            "cifar10: no host has it; run `vovd data fetch cifar10 --data-dir {}` on host http://{}",
            data_dir(&b).display(),
            b.addr
        )),
        "{text}"
    );
    assert!(
        text.contains("4 trials, 0 finished, 0 to run, 4 no data"),
        "{text}"
    );

    let out = run(vovctl(tmp.path())
        .args([
            "sweep",
            "--dry-run",
            "--hosts",
            &format!("{},{}", a.addr, b.addr),
        ])
        .arg(&file));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let on_a = format!("http://{} slot 0", a.addr);
    assert_eq!(text.matches(&on_a).count(), 4, "{text}");
    assert!(!text.contains(&b.addr.to_string()), "{text}");
    assert!(
        text.contains("4 trials, 0 finished, 4 to run, 0 no data"),
        "{text}"
    );
}

#[tokio::test]
async fn host_info_sees_data_added_while_the_daemon_runs() {
    let tmp = TempDir::new().unwrap();
    let b = Daemon::start_in(&tmp.path().join("b"), DaemonOptions::default());
    let mut client = b.client().await;
    let cifar = |info: &pb::HostInfoResponse| {
        info.datasets
            .iter()
            .find(|d| d.name == "cifar10")
            .cloned()
            .unwrap()
    };
    let info = client
        .host_info(pb::HostInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let before = cifar(&info);
    assert_eq!(before.state, pb::DatasetState::Absent as i32, "{before:?}");
    assert!(!before.available);
    assert!(
        before.fix.starts_with("vovd data fetch cifar10"),
        "{before:?}"
    );

    let cifar_trial = |id: &str| {
        vov_tests::submit(
            id,
            "",
            pb::TrialSpec {
                dataset: "cifar10".into(),
                ..vov_tests::tiny_spec(1, 4, 2)
            },
        )
    };
    let err = client.submit(cifar_trial("t0")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let fix = format!(
        "install it with `vovd data fetch cifar10 --data-dir {}`",
        data_dir(&b).display()
    );
    assert!(
        err.message()
            .contains("data set cifar10 is not present on this host")
            && err.message().contains(&fix),
        "{}",
        err.message()
    );

    let dir = write_cifar10(&data_dir(&b), 3);
    let info = client
        .host_info(pb::HostInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let after = cifar(&info);
    assert_eq!(after.state, pb::DatasetState::Present as i32, "{after:?}");
    assert!(after.available && after.fix.is_empty());
    assert_eq!((after.train_images, after.val_images), (15, 3));

    // A truncated file makes it broken, with the reason and a forced re-fetch.
    std::fs::write(
        dir.join("test_batch.bin"),
        vec![0u8; vov_tests::datasets::CIFAR10_RECORD + 1],
    )
    .unwrap();
    let info = client
        .host_info(pb::HostInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let broken = cifar(&info);
    assert_eq!(broken.state, pb::DatasetState::Broken as i32, "{broken:?}");
    assert!(broken.detail.contains("test_batch.bin"), "{broken:?}");
    assert!(broken.fix.ends_with("--force"), "{broken:?}");
    let err = client.submit(cifar_trial("t1")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("data set cifar10 is broken on this host")
            && err.message().contains("--force"),
        "{}",
        err.message()
    );
}
