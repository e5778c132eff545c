use std::io::Write;
use std::path::Path;

use super::*;

/// Writes the six CIFAR-10 files with `n` records each under `root/cifar10`.
fn cifar(root: &Path, n: usize) -> PathBuf {
    let dir = root.join(cifar10::DIR);
    std::fs::create_dir_all(&dir).unwrap();
    for (k, f) in cifar10::TRAIN_FILES
        .iter()
        .chain([cifar10::TEST_FILE].iter())
        .enumerate()
    {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.push(((i + k) % 10) as u8);
            bytes.extend(std::iter::repeat_n((i * 7 + k) as u8, cifar10::IMAGE));
        }
        std::fs::write(dir.join(f), bytes).unwrap();
    }
    dir
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes a 3 + 2 image Fashion-MNIST under `root/fashion-mnist`, gzipped or raw.
fn fashion(root: &Path, compressed: bool) -> PathBuf {
    let dir = root.join(fashion_mnist::DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            fashion_mnist::FILES[0].0,
            idx(&[3, 28, 28], &[17u8; 3 * 784]),
        ),
        (fashion_mnist::FILES[1].0, idx(&[3], &[0, 4, 9])),
        (
            fashion_mnist::FILES[2].0,
            idx(&[2, 28, 28], &[99u8; 2 * 784]),
        ),
        (fashion_mnist::FILES[3].0, idx(&[2], &[3, 1])),
    ];
    for (name, bytes) in files {
        if compressed {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    dir
}

fn ok(v: Verdict) -> Verified {
    match v {
        Verdict::Ok(v) => v,
        other => panic!("not ok: {other:?}"),
    }
}

fn broken(v: Verdict) -> String {
    match v {
        Verdict::Broken(why) => why,
        other => panic!("not broken: {other:?}"),
    }
}

#[test]
fn a_complete_cifar_verifies_with_counts_and_a_stable_digest() {
    let tmp = tempfile::tempdir().unwrap();
    cifar(tmp.path(), 4);
    let v = ok(verify(DatasetName::Cifar10, tmp.path()));
    assert_eq!((v.train_records, v.val_records), (20, 4));
    assert_eq!(v.records_sha256.len(), 64);
    assert_eq!(v.official, None, "a small set is not compared");
    assert!(!v.recorded);
    let again = ok(verify(DatasetName::Cifar10, tmp.path()));
    assert_eq!(again.records_sha256, v.records_sha256);
}

#[test]
fn absent_and_generated_are_not_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let v = verify(DatasetName::Cifar10, tmp.path());
    assert!(
        matches!(&v, Verdict::Absent(why) if why.contains("cifar10")),
        "{v:?}"
    );
    assert!(!v.is_broken());
    assert_eq!(
        verify(DatasetName::Synthetic, tmp.path()),
        Verdict::Generated
    );
}

#[test]
fn a_truncated_file_and_a_label_of_12_are_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cifar(tmp.path(), 3);
    let p = dir.join(cifar10::TEST_FILE);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.truncate(bytes.len() - 100);
    std::fs::write(&p, &bytes).unwrap();
    let why = broken(verify(DatasetName::Cifar10, tmp.path()));
    assert!(
        why.contains("test_batch.bin") && why.contains("not a whole number"),
        "{why}"
    );

    let dir = cifar(tmp.path(), 3);
    let p = dir.join(cifar10::TRAIN_FILES[2]);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[cifar10::RECORD] = 12;
    std::fs::write(&p, &bytes).unwrap();
    let why = broken(verify(DatasetName::Cifar10, tmp.path()));
    assert!(
        why.contains("data_batch_3.bin: record 1 has label 12"),
        "{why}"
    );
}

#[test]
fn one_missing_file_is_broken_not_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cifar(tmp.path(), 2);
    std::fs::remove_file(dir.join(cifar10::TRAIN_FILES[4])).unwrap();
    let why = broken(verify(DatasetName::Cifar10, tmp.path()));
    assert!(why.contains("data_batch_5.bin: file not found"), "{why}");
}

#[test]
fn the_digest_does_not_depend_on_compression() {
    let raw = tempfile::tempdir().unwrap();
    let packed = tempfile::tempdir().unwrap();
    let a = verify_dir(DatasetName::FashionMnist, &fashion(raw.path(), false)).unwrap();
    let b = verify_dir(DatasetName::FashionMnist, &fashion(packed.path(), true)).unwrap();
    assert_eq!(a.records_sha256, b.records_sha256);
    assert_eq!((a.train_records, a.val_records), (3, 2));
}

#[test]
fn records_changed_since_install_are_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cifar(tmp.path(), 2);
    let v = ok(verify(DatasetName::Cifar10, tmp.path()));
    let record = Manifest {
        name: "cifar10".into(),
        source: vec!["test".into()],
        checksums: vec![],
        train_records: v.train_records,
        val_records: v.val_records,
        records_sha256: v.records_sha256.clone(),
        installed_unix: 0,
    };
    std::fs::write(dir.join(MANIFEST), serde_json::to_string(&record).unwrap()).unwrap();
    assert!(ok(verify(DatasetName::Cifar10, tmp.path())).recorded);
    // One pixel flipped: counts and labels still pass, the digest does not.
    let p = dir.join(cifar10::TEST_FILE);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let why = broken(verify(DatasetName::Cifar10, tmp.path()));
    assert!(why.contains("changed since they were installed"), "{why}");
}
