//! CIFAR-10, official binary version (`cifar-10-binary.tar.gz`).
//!
//! Each of `data_batch_1.bin` .. `data_batch_5.bin` (training) and `test_batch.bin`
//! (validation) holds 3073-byte records: one label byte, then 1024 red, 1024 green
//! and 1024 blue bytes of a 32x32 image in row-major order, which is already the
//! CHW layout the models take. The record count comes from the file size, so a
//! file with fewer records (as tests write) is fine; a size that is not a whole
//! number of records, or more records than an official file holds, is an error.

use std::path::{Path, PathBuf};

use super::{check_labels, DataError, Dataset, DatasetName, LoadOptions, Split};
use crate::model::InputShape;

/// Bytes per record: a label and a 3x32x32 image.
pub const RECORD: usize = 1 + IMAGE;
/// Bytes per image.
pub const IMAGE: usize = 3 * 32 * 32;
/// Records in each official file.
pub const RECORDS_PER_FILE: usize = 10_000;
/// Training files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// Validation file.
pub const TEST_FILE: &str = "test_batch.bin";
/// Every file of the data set: the training files, then the validation file.
pub const FILES: [&str; 6] = [
    TRAIN_FILES[0],
    TRAIN_FILES[1],
    TRAIN_FILES[2],
    TRAIN_FILES[3],
    TRAIN_FILES[4],
    TEST_FILE,
];
/// The directory below the data root that `vovd data fetch` installs.
pub const DIR: &str = "cifar10";

const HINT: &str = "install it with `vovd data fetch cifar10 --data-dir <data dir>` \
(the published archive, checksum verified)";

/// The directory holding the files: `<root>/cifar10` or `<root>/cifar-10-batches-bin`.
pub fn directory(root: &Path) -> PathBuf {
    let candidates = [root.join(DIR), root.join("cifar-10-batches-bin")];
    candidates
        .iter()
        .find(|d| d.is_dir())
        .unwrap_or(&candidates[0])
        .clone()
}

/// The records in a file of `len` bytes, or why that size cannot be one of the
/// official files: not a whole number of records, empty, or oversized.
pub fn record_count(len: u64) -> Result<usize, String> {
    let record = RECORD as u64;
    if !len.is_multiple_of(record) {
        return Err(format!(
            "{len} bytes is not a whole number of {RECORD}-byte records (truncated, or not the binary version)"
        ));
    }
    match usize::try_from(len / record) {
        Ok(0) => Err("file is empty".into()),
        Ok(n) if n <= RECORDS_PER_FILE => Ok(n),
        _ => Err(format!(
            "{} records is more than the {RECORDS_PER_FILE} an official file holds (oversized)",
            len / record
        )),
    }
}

/// Parses one file into `split`, keeping at most `limit` records in total.
fn read_file(path: &Path, split: &mut Split, limit: usize) -> Result<(), DataError> {
    let bytes = DataError::read(path, HINT)?;
    let records = record_count(bytes.len() as u64).map_err(|r| DataError::malformed(path, r))?;
    let labels: Vec<u8> = bytes.chunks_exact(RECORD).map(|r| r[0]).collect();
    check_labels(&labels, 10, path)?;
    let take = records.min(limit.saturating_sub(split.len()));
    for record in bytes.chunks_exact(RECORD).take(take) {
        split.labels.push(record[0]);
        split.images.extend_from_slice(&record[1..]);
    }
    Ok(())
}

fn read_split(dir: &Path, files: &[&str], limit: Option<usize>) -> Result<Split, DataError> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut split = Split::default();
    for file in files {
        if split.len() >= limit {
            break;
        }
        read_file(&dir.join(file), &mut split, limit)?;
    }
    Ok(split)
}

/// Loads CIFAR-10 from the data root in `opts`.
pub fn load(opts: &LoadOptions) -> Result<Dataset, DataError> {
    let root = opts
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(vov_spec::LOCAL_DATA_DIR));
    load_dir(&directory(&root), opts)
}

/// Loads CIFAR-10 from the directory holding its six files (the limits of `opts`).
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let dir = dir.to_path_buf();
    let train = read_split(&dir, &TRAIN_FILES, opts.train_limit)?;
    let val = read_split(&dir, &[TEST_FILE], opts.val_limit)?;
    Ok(Dataset {
        name: DatasetName::Cifar10,
        shape: InputShape {
            channels: 3,
            height: 32,
            width: 32,
        },
        classes: 10,
        train,
        val,
        source: dir.display().to_string(),
    })
}

/// Whether the files are present under `root` (a cheap check for host listings).
pub fn present(root: &Path) -> bool {
    let dir = directory(root);
    TRAIN_FILES
        .iter()
        .chain([TEST_FILE].iter())
        .all(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, labels: &[u8]) {
        let mut bytes = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            bytes.push(l);
            bytes.extend(std::iter::repeat_n(i as u8, IMAGE));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn fixture() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cifar10");
        std::fs::create_dir(&dir).unwrap();
        for f in TRAIN_FILES {
            write(&dir, f, &[1, 2, 3]);
        }
        write(&dir, TEST_FILE, &[9, 0]);
        tmp
    }

    fn opts(root: &Path) -> LoadOptions {
        LoadOptions {
            root: Some(root.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn loads_small_files_and_limits() {
        let tmp = fixture();
        let ds = load(&opts(tmp.path())).unwrap();
        assert_eq!((ds.train.len(), ds.val.len()), (15, 2));
        assert_eq!(ds.train.images.len(), 15 * IMAGE);
        assert_eq!(ds.val.labels, vec![9, 0]);
        assert!(present(tmp.path()));
        let limited = super::super::load(
            DatasetName::Cifar10,
            &LoadOptions {
                train_limit: Some(4),
                val_limit: Some(1),
                ..opts(tmp.path())
            },
        )
        .unwrap();
        assert_eq!((limited.train.len(), limited.val.len()), (4, 1));
        assert_eq!(limited.train.labels, vec![1, 2, 3, 1]);
    }

    #[test]
    fn accepts_the_official_directory_name() {
        let tmp = fixture();
        std::fs::rename(
            tmp.path().join("cifar10"),
            tmp.path().join("cifar-10-batches-bin"),
        )
        .unwrap();
        assert_eq!(load(&opts(tmp.path())).unwrap().val.len(), 2);
    }

    #[test]
    fn missing_file_names_it() {
        let tmp = fixture();
        std::fs::remove_file(tmp.path().join("cifar10").join("data_batch_3.bin")).unwrap();
        let err = load(&opts(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("data_batch_3.bin: file not found"), "{err}");
        assert!(!present(tmp.path()));
    }

    #[test]
    fn truncated_file_is_an_error() {
        let tmp = fixture();
        let path = tmp.path().join("cifar10").join(TEST_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, bytes).unwrap();
        let err = load(&opts(tmp.path())).unwrap_err().to_string();
        assert!(
            err.contains("test_batch.bin") && err.contains("not a whole number"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let tmp = fixture();
        std::fs::write(tmp.path().join("cifar10").join(TEST_FILE), []).unwrap();
        let err = load(&opts(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("test_batch.bin: file is empty"), "{err}");
    }

    #[test]
    fn oversized_file_is_an_error() {
        let tmp = fixture();
        let labels = vec![0u8; RECORDS_PER_FILE + 1];
        write(&tmp.path().join("cifar10"), TEST_FILE, &labels);
        let err = load(&opts(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("oversized"), "{err}");
    }

    #[test]
    fn label_out_of_range_is_an_error() {
        let tmp = fixture();
        write(&tmp.path().join("cifar10"), "data_batch_2.bin", &[1, 10]);
        let err = load(&opts(tmp.path())).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_2.bin: record 1 has label 10"),
            "{err}"
        );
    }
}
