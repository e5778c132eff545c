//! Installing from local archives (`--from`); the HTTP path is tested against a
//! real server in the black-box tests.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use super::*;
use crate::data::cifar10;
use crate::data::testdata::cifar_file;

fn hidden(_: &str) -> ProgressBar {
    ProgressBar::hidden()
}

/// A `cifar-10-binary.tar.gz` with `n` records per file, or without `skip`.
fn archive(dir: &Path, n: usize, skip: Option<&str>) -> PathBuf {
    let path = dir.join("cifar-10-binary.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for (k, f) in cifar10::FILES.into_iter().enumerate() {
        if Some(f) == skip {
            continue;
        }
        let bytes = cifar_file(n, k);
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{f}"), &bytes[..])
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

fn sha256_of(path: &Path) -> ChecksumOverride {
    let probe: Checksum = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
    let hex = probe.digest_file(path).unwrap();
    format!("sha256:{hex}").parse().unwrap()
}

fn request(root: &Path, from: &Path, sum: ChecksumOverride) -> FetchRequest {
    FetchRequest {
        name: DatasetName::Cifar10,
        root: root.to_path_buf(),
        url: None,
        from: Some(from.to_path_buf()),
        checksums: vec![sum],
        force: false,
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

#[test]
fn installs_from_an_archive_then_leaves_it_alone() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let a = archive(src.path(), 3, None);
    let req = request(data.path(), &a, sha256_of(&a));
    match fetch(&req, &hidden).unwrap() {
        FetchOutcome::Installed { verified, files } => {
            assert_eq!((verified.train_records, verified.val_records), (15, 3));
            assert_eq!(verified.dir, data.path().join("cifar10"));
            assert!(files[0].1.is_none(), "no transfer for --from");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(entries(data.path()), vec!["cifar10"], "no staging left");
    assert!(data
        .path()
        .join("cifar10")
        .join(crate::data::verify::MANIFEST)
        .is_file());
    assert!(matches!(
        fetch(&req, &hidden).unwrap(),
        FetchOutcome::AlreadyInstalled(_)
    ));
    let forced = FetchRequest { force: true, ..req };
    assert!(matches!(
        fetch(&forced, &hidden).unwrap(),
        FetchOutcome::Installed { .. }
    ));
}

#[test]
fn a_wrong_checksum_installs_nothing() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let a = archive(src.path(), 2, None);
    // The published MD5 is not this archive's.
    let req = FetchRequest {
        checksums: vec![],
        ..request(data.path(), &a, sha256_of(&a))
    };
    let err = fetch(&req, &hidden).unwrap_err().to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{err}"
    );
    assert!(
        entries(data.path()).is_empty(),
        "{:?}",
        entries(data.path())
    );
    assert!(a.is_file(), "a --from file is never removed");
}

#[test]
fn an_archive_without_a_member_installs_nothing() {
    let src = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let a = archive(src.path(), 2, Some("data_batch_4.bin"));
    let err = fetch(&request(data.path(), &a, sha256_of(&a)), &hidden)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lacks data_batch_4.bin"), "{err}");
    assert!(entries(data.path()).is_empty());
}

#[test]
fn bad_requests_are_usage_errors() {
    let data = tempfile::tempdir().unwrap();
    let mut req = request(
        data.path(),
        Path::new("/nonexistent.tgz"),
        "nofile=md5:c32a1d4ab5d03f1284b67883e8d87530"
            .parse()
            .unwrap(),
    );
    let e = fetch(&req, &hidden).unwrap_err();
    assert!(
        e.is_usage() && e.to_string().contains("has no file nofile"),
        "{e}"
    );
    req.checksums.clear();
    let e = fetch(&req, &hidden).unwrap_err();
    assert!(
        e.is_usage() && e.to_string().contains("/nonexistent.tgz"),
        "{e}"
    );
    req.name = DatasetName::Synthetic;
    assert!(fetch(&req, &hidden).unwrap_err().is_usage());
}
