use super::*;
use crate::data::testdata::{cifar, fashion};

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
