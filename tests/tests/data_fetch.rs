//! `vovd data fetch` and `vovd data verify` against a real HTTP server on
//! loopback: archives in the published layouts, a transfer cut in the middle, a
//! resume across runs, wrong checksums, `--from`, and `vovd train` reading what
//! was installed.

use std::path::Path;
use std::process::{Command, Output};

use vov_tests::datasets::{self, CIFAR10_FILES, CIFAR10_RECORD, FASHION_MNIST_FILES};
use vov_tests::http::FileServer;

fn vovd(args: &[&str]) -> Output {
    Command::new(vov_tests::bin("vovd"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("vovd runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `vovd data fetch cifar10 --data-dir DATA` and `extra`.
fn fetch_cifar10<'a>(data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["data", "fetch", "cifar10", "--data-dir", s(data)];
    args.extend_from_slice(extra);
    args
}

/// A model small enough to train in a second.
const TINY: &[&str] = &[
    "--model",
    "vovnet-27-slim",
    "--stem",
    "8",
    "--stage-widths",
    "8,8,8,8",
    "--stage-outputs",
    "16,16,16,16",
    "--osa-layers",
    "2",
];

fn trains_on(dataset: &str, data: &Path) {
    let mut args = vec!["train"];
    args.extend_from_slice(TINY);
    args.extend_from_slice(&[
        "--dataset",
        dataset,
        "--data-dir",
        s(data),
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--val-limit",
        "32",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--no-batch1",
        "--no-batch32",
        "--json",
    ]);
    let o = vovd(&args);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["max_val_acc"].as_f64().is_some(), "{r}");
}

#[test]
fn cifar10_over_http_resumes_a_cut_transfer_verifies_and_trains() {
    let site = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let archive = datasets::cifar10_archive(site.path(), 40);
    let size = std::fs::metadata(&archive).unwrap().len() as usize;
    let server = FileServer::start(site.path());
    server.cut_next_after(size / 2);
    let sum = format!("sha256:{}", datasets::sha256_file(&archive));
    let url = server.url();
    let fetch = fetch_cifar10(data.path(), &["--url", &url, "--checksum", &sum]);
    let o = vovd(&fetch);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("cifar10  installed  train=200 val=40"),
        "{out}"
    );
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].range, None);
    // The second request asks for the rest, from what had arrived when the cut came.
    let from: usize = log[1]
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        from > 0 && from <= size / 2,
        "resumed from {from} of {size}"
    );
    assert!(out.contains(&format!("resuming at {from} bytes")), "{out}");
    assert_eq!(log[1].status, 206);
    assert_eq!(
        entries(data.path()),
        ["cifar10"],
        "nothing but the data set is left"
    );

    let o = vovd(&["data", "verify", "cifar10", "--data-dir", s(data.path())]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("(matches its install record)"),
        "{}",
        text(&o)
    );
    trains_on("cifar10", data.path());

    // Installed and valid: left alone, the server is not asked again.
    let o = vovd(&fetch);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already installed"), "{}", text(&o));
    assert_eq!(server.log().len(), 2);
}

#[test]
fn a_fetch_interrupted_in_an_earlier_run_resumes_where_it_stopped() {
    let site = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let archive = datasets::cifar10_archive(site.path(), 30);
    let bytes = std::fs::read(&archive).unwrap();
    let half = bytes.len() / 2;
    // What an earlier, killed run left behind.
    let waiting = data.path().join(".fetch").join("cifar10");
    std::fs::create_dir_all(&waiting).unwrap();
    std::fs::write(waiting.join("cifar-10-binary.tar.gz.part"), &bytes[..half]).unwrap();
    let server = FileServer::start(site.path());
    let sum = format!("sha256:{}", datasets::sha256_file(&archive));
    let o = vovd(&fetch_cifar10(
        data.path(),
        &["--url", &server.url(), "--checksum", &sum, "--json"],
    ));
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["state"], "installed");
    assert_eq!(r["files"][0]["resumed_from"], half as u64);
    assert_eq!(r["files"][0]["bytes"], bytes.len() as u64);
    let log = server.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        log[0].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    assert_eq!(entries(data.path()), ["cifar10"]);
}

/// Writes `bytes` as the part an earlier run left of the archive.
fn leave_part(data: &Path, bytes: &[u8]) {
    let waiting = data.join(".fetch").join("cifar10");
    std::fs::create_dir_all(&waiting).unwrap();
    std::fs::write(waiting.join("cifar-10-binary.tar.gz.part"), bytes).unwrap();
}

#[test]
fn a_server_that_ignores_ranges_or_a_complete_part_still_installs() {
    let site = tempfile::tempdir().unwrap();
    let archive = datasets::cifar10_archive(site.path(), 6);
    let bytes = std::fs::read(&archive).unwrap();
    let sum = format!("sha256:{}", datasets::sha256_file(&archive));
    let server = FileServer::start(site.path());
    let url = server.url();

    // A complete part: the server says 416 for its length, nothing is sent again.
    let data = tempfile::tempdir().unwrap();
    leave_part(data.path(), &bytes);
    let o = vovd(&fetch_cifar10(
        data.path(),
        &["--url", &url, "--checksum", &sum],
    ));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(server.log().last().map(|l| l.status), Some(416));

    // A server that answers a range with the whole file: started again from 0.
    server.ignore_ranges();
    let data = tempfile::tempdir().unwrap();
    leave_part(data.path(), &bytes[..bytes.len() / 3]);
    let o = vovd(&fetch_cifar10(
        data.path(),
        &["--url", &url, "--checksum", &sum],
    ));
    assert!(o.status.success(), "{}", text(&o));
    let last = server.log().last().cloned().unwrap();
    assert!(last.range.is_some() && last.status == 200, "{last:?}");
    assert_eq!(entries(data.path()), ["cifar10"]);
}

#[test]
fn a_wrong_checksum_exits_non_zero_and_leaves_nothing() {
    let site = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    datasets::cifar10_archive(site.path(), 5);
    let server = FileServer::start(site.path());
    let wrong = format!("md5:{}", "0".repeat(32));
    for extra in [vec!["--checksum", wrong.as_str()], vec![]] {
        // Without --checksum the published MD5 applies, which this archive is not.
        let url = server.url();
        let mut args = fetch_cifar10(data.path(), &["--url", &url]);
        args.extend(extra);
        let o = vovd(&args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("checksum mismatch"), "{}", text(&o));
        assert!(
            entries(data.path()).is_empty(),
            "{:?}",
            entries(data.path())
        );
    }
    let o = vovd(&fetch_cifar10(data.path(), &["--checksum", "md5:12"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--checksum"), "{}", text(&o));
}

#[test]
fn from_file_installs_an_archive_copied_in_by_hand() {
    let site = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let archive = datasets::cifar10_archive(site.path(), 8);
    let sum = format!("sha256:{}", datasets::sha256_file(&archive));
    let o = vovd(&fetch_cifar10(
        data.path(),
        &["--from", s(&archive), "--checksum", &sum],
    ));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("train=40 val=8"), "{}", text(&o));
    assert!(archive.is_file(), "the operator's file stays");
    let installed = entries(&data.path().join("cifar10"));
    for f in CIFAR10_FILES {
        assert!(installed.iter().any(|e| e == f), "{installed:?}");
    }
}

#[test]
fn verify_finds_a_truncated_file_and_a_label_of_12() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("cifar10");
    datasets::write_cifar10(&dir, 5);
    let o = vovd(&["data", "verify", "--data-dir", s(data.path())]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("cifar10  ok  train=25 val=5"), "{out}");
    assert!(out.contains("synthetic  ok"), "{out}");

    let test = dir.join("test_batch.bin");
    let bytes = std::fs::read(&test).unwrap();
    std::fs::write(&test, &bytes[..bytes.len() - 10]).unwrap();
    let o = vovd(&["data", "verify", "--data-dir", s(data.path())]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.lines().any(|l| l.starts_with("cifar10  broken")
            && l.contains("test_batch.bin")
            && l.contains("not a whole number")),
        "{out}"
    );

    std::fs::write(&test, &bytes).unwrap();
    let second = dir.join("data_batch_2.bin");
    let mut b = std::fs::read(&second).unwrap();
    b[3 * CIFAR10_RECORD] = 12;
    std::fs::write(&second, &b).unwrap();
    let o = vovd(&[
        "data",
        "verify",
        "cifar10",
        "--data-dir",
        s(data.path()),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["state"], "broken");
    let why = r[0]["detail"].as_str().unwrap();
    assert!(
        why.contains("data_batch_2.bin: record 3 has label 12"),
        "{why}"
    );
}

#[test]
fn fashion_mnist_cut_from_debians_package_fetches_verifies_and_trains() {
    let site = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    datasets::fashion_mnist_subset(site.path(), 600, 100);
    let server = FileServer::start(site.path());
    let sums: Vec<String> = FASHION_MNIST_FILES
        .iter()
        .map(|f| format!("{f}=sha256:{}", datasets::sha256_file(&site.path().join(f))))
        .collect();
    let url = server.url();
    let mut args = vec![
        "data",
        "fetch",
        "fashion-mnist",
        "--data-dir",
        s(data.path()),
        "--url",
        &url,
        "--force",
    ];
    for sum in &sums {
        args.extend(["--checksum", sum.as_str()]);
    }
    let o = vovd(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(server.log().len(), 4);
    let o = vovd(&[
        "data",
        "verify",
        "fashion-mnist",
        "--data-dir",
        s(data.path()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(line.contains("train=600 val=100"), "{line}");
    assert!(
        line.contains(s(&data.path().join("fashion-mnist"))),
        "{line}"
    );
    trains_on("fashion-mnist", data.path());

    // Debian's package itself: re-packed files, the published records.
    let empty = tempfile::tempdir().unwrap();
    let o = vovd(&[
        "data",
        "verify",
        "fashion-mnist",
        "--data-dir",
        s(empty.path()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        line.contains("train=60000 val=10000") && line.contains("(the published records)"),
        "{line}"
    );
}
