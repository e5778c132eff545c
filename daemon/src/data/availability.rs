//! Which data sets a host can serve, their sizes, and how to fix one that is not
//! there, from a quick structural check of the files: file sizes and IDX headers,
//! no record decoded (`vovd data verify` decodes every record and its label).
//!
//! A gzip-compressed IDX file is streamed through the decoder once to learn its
//! length; that length is remembered per (path, size, modification time), so a
//! `HostInfo` call (every few seconds while a sweep runs) does not take CPU from
//! the trials being timed on the same host.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use vov_spec::{DatasetReport, DatasetState};

use super::{cifar10, fashion_mnist, DatasetName};

/// A data set as a host offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// The data set.
    pub name: DatasetName,
    /// Present, absent or broken.
    pub state: DatasetState,
    /// Training images, counted from the files (0 when unbounded or not present).
    pub train_images: u64,
    /// Validation images, counted from the files (0 when unbounded or not present).
    pub val_images: u64,
    /// Where it is read from; where it was looked for when absent; what is wrong
    /// when broken.
    pub detail: String,
    /// The command that installs or repairs it ([`fix`]); `None` when present.
    pub fix: Option<String>,
}

impl Availability {
    /// The report `vovd data list --json` prints.
    pub fn report(&self) -> DatasetReport {
        DatasetReport {
            name: self.name.to_string(),
            state: self.state,
            train_images: self.train_images,
            val_images: self.val_images,
            detail: self.detail.clone(),
            fix: self.fix.clone().unwrap_or_default(),
        }
    }

    /// Whether trials on it can run.
    pub fn available(&self) -> bool {
        self.state == DatasetState::Present
    }
}

/// The command an operator runs on the host to install (`absent`) or repair
/// (`broken`) `name` under the data root `root`; `None` when nothing is needed.
/// The one place the daemon writes the `vovd data fetch` command line.
pub fn fix(name: DatasetName, root: &Path, state: DatasetState) -> Option<String> {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let fetch = format!("vovd data fetch {name} --data-dir {}", root.display());
    match (name, state) {
        (_, DatasetState::Present) | (DatasetName::Synthetic, _) => None,
        (_, DatasetState::Broken) => Some(format!("{fetch} --force")),
        (_, DatasetState::Absent) => Some(fetch),
    }
}

/// What a structural check found: counts and location, or the state and why.
type Found = Result<(u64, u64, String), (DatasetState, String)>;

fn broken(reason: impl Into<String>) -> (DatasetState, String) {
    (DatasetState::Broken, reason.into())
}

/// The availability of `name` under the data root `root` (blocking: it reads
/// file headers, and streams a gzip file it has not seen before).
pub fn check(name: DatasetName, root: &Path) -> Availability {
    let found = match name {
        DatasetName::Synthetic => Ok((0, 0, "generated on demand (any size)".to_string())),
        DatasetName::Cifar10 => check_cifar10(root),
        DatasetName::FashionMnist => check_fashion_mnist(root),
    };
    let (state, train_images, val_images, detail) = match found {
        Ok((train, val, detail)) => (DatasetState::Present, train, val, detail),
        Err((state, detail)) => (state, 0, 0, detail),
    };
    Availability {
        name,
        state,
        train_images,
        val_images,
        detail,
        fix: fix(name, root, state),
    }
}

/// Every data set vov knows, in [`DatasetName::ALL`]'s order.
pub fn check_all(root: &Path) -> Vec<Availability> {
    DatasetName::ALL.iter().map(|&n| check(n, root)).collect()
}

fn check_cifar10(root: &Path) -> Found {
    let dir = cifar10::directory(root);
    let files = cifar10::FILES;
    let missing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.len() == files.len() {
        let detail = format!("not found under {}", dir.display());
        return Err((DatasetState::Absent, detail));
    }
    if !missing.is_empty() {
        return Err(broken(format!(
            "{} missing under {}",
            missing.join(", "),
            dir.display()
        )));
    }
    let mut counts = Vec::with_capacity(files.len());
    for f in &files {
        let len = std::fs::metadata(dir.join(f))
            .map_err(|e| broken(format!("{f}: {e}")))?
            .len();
        counts.push(cifar10::record_count(len).map_err(|r| broken(format!("{f}: {r}")))? as u64);
    }
    let val = counts.pop().unwrap_or_default();
    Ok((counts.iter().sum(), val, dir.display().to_string()))
}

fn check_fashion_mnist(root: &Path) -> Found {
    let found: Vec<(&str, usize, Option<PathBuf>)> = fashion_mnist::FILES
        .iter()
        .map(|&(base, ndims)| (base, ndims, fashion_mnist::locate(Some(root), base)))
        .collect();
    let looked = || {
        let dirs: Vec<String> = fashion_mnist::search_dirs(Some(root))
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        dirs.join(", ")
    };
    if found.iter().all(|(_, _, p)| p.is_none()) {
        let detail = format!(
            "not found in {} (Debian's package also provides it: {})",
            looked(),
            fashion_mnist::APT_INSTALL
        );
        return Err((DatasetState::Absent, detail));
    }
    let mut dims = Vec::with_capacity(found.len());
    for (base, ndims, path) in &found {
        let path = path
            .as_ref()
            .ok_or_else(|| broken(format!("{base}[.gz] missing (looked in {})", looked())))?;
        dims.push(idx_dims(path, *ndims).map_err(|r| broken(format!("{}: {r}", path.display())))?);
    }
    // FILES: train images, train labels, t10k images, t10k labels.
    for (images, labels) in [(0, 1), (2, 3)] {
        fashion_mnist::check_image_dims(&dims[images])
            .map_err(|r| broken(format!("{}: {r}", found[images].0)))?;
        if dims[labels][0] != dims[images][0] {
            return Err(broken(format!(
                "{}: {} labels for {} images",
                found[labels].0, dims[labels][0], dims[images][0]
            )));
        }
    }
    let source = found[3]
        .2
        .as_ref()
        .and_then(|p| p.parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok((dims[0][0] as u64, dims[2][0] as u64, source))
}

/// The dimensions of an IDX file (raw or gzip), checked against its data length.
fn idx_dims(path: &Path, ndims: usize) -> Result<Vec<usize>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut magic = Vec::with_capacity(2);
    (&mut file)
        .take(2)
        .read_to_end(&mut magic)
        .map_err(|e| e.to_string())?;
    let gz = magic == fashion_mnist::GZIP_MAGIC;
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    let hlen = fashion_mnist::header_len(ndims);
    let mut header = Vec::with_capacity(hlen);
    reader
        .by_ref()
        .take(hlen as u64)
        .read_to_end(&mut header)
        .map_err(|e| format!("not a valid gzip file: {e}"))?;
    let dims = fashion_mnist::parse_header(&header, ndims)?;
    let payload = if gz {
        gz_payload(path, &meta, reader)?
    } else {
        meta.len() - hlen as u64
    };
    fashion_mnist::check_payload(&dims, payload)?;
    Ok(dims)
}

/// Decompressed lengths seen, by path, with the size and modification time they
/// were measured at.
type LenMemo = HashMap<PathBuf, (u64, Option<SystemTime>, u64)>;

fn memo() -> &'static Mutex<LenMemo> {
    static MEMO: OnceLock<Mutex<LenMemo>> = OnceLock::new();
    MEMO.get_or_init(Mutex::default)
}

/// Data bytes after the header of a gzip file: streamed to the end once, then
/// remembered while the file keeps its size and modification time.
fn gz_payload(
    path: &Path,
    meta: &std::fs::Metadata,
    mut rest: Box<dyn Read>,
) -> Result<u64, String> {
    let stamp = (meta.len(), meta.modified().ok());
    let known = memo().lock().ok().and_then(|m| {
        m.get(path)
            .filter(|(len, modified, _)| (*len, *modified) == stamp)
            .map(|&(_, _, payload)| payload)
    });
    if let Some(payload) = known {
        return Ok(payload);
    }
    let payload =
        io::copy(&mut rest, &mut io::sink()).map_err(|e| format!("not a valid gzip file: {e}"))?;
    if let Ok(mut m) = memo().lock() {
        m.insert(path.to_path_buf(), (stamp.0, stamp.1, payload));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testdata::{cifar, gz, idx_filled};

    fn idx(dims: &[u32]) -> Vec<u8> {
        idx_filled(dims, 3)
    }

    /// Three training images (gzip) and two validation images (raw).
    fn fashion(root: &Path) -> PathBuf {
        let dir = root.join("fashion-mnist");
        std::fs::create_dir_all(&dir).unwrap();
        let w = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
        w("train-images-idx3-ubyte.gz", gz(&idx(&[3, 28, 28])));
        w("train-labels-idx1-ubyte.gz", gz(&idx(&[3])));
        w("t10k-images-idx3-ubyte", idx(&[2, 28, 28]));
        w("t10k-labels-idx1-ubyte", idx(&[2]));
        dir
    }

    fn state(a: &Availability) -> (DatasetState, u64, u64) {
        (a.state, a.train_images, a.val_images)
    }

    #[test]
    fn synthetic_is_always_present() {
        let tmp = tempfile::tempdir().unwrap();
        let a = check(DatasetName::Synthetic, tmp.path());
        assert_eq!(state(&a), (DatasetState::Present, 0, 0));
        assert!(a.available() && a.fix.is_none());
    }

    #[test]
    fn cifar_present_counts_records_from_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cifar(tmp.path(), 3);
        let a = check(DatasetName::Cifar10, tmp.path());
        assert_eq!(state(&a), (DatasetState::Present, 15, 3));
        assert_eq!(a.detail, dir.display().to_string());
        assert_eq!(a.fix, None);
    }

    #[test]
    fn cifar_absent_names_the_fetch_command() {
        let tmp = tempfile::tempdir().unwrap();
        let a = check(DatasetName::Cifar10, tmp.path());
        assert_eq!(state(&a), (DatasetState::Absent, 0, 0));
        assert!(a.detail.contains("cifar10"), "{}", a.detail);
        let fix = a.fix.unwrap();
        assert_eq!(
            fix,
            format!(
                "vovd data fetch cifar10 --data-dir {}",
                tmp.path().display()
            )
        );
    }

    #[test]
    fn cifar_missing_or_truncated_file_is_broken() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cifar(tmp.path(), 2);
        std::fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
        let a = check(DatasetName::Cifar10, tmp.path());
        assert_eq!(a.state, DatasetState::Broken);
        assert!(
            a.detail.contains("data_batch_4.bin missing"),
            "{}",
            a.detail
        );
        assert!(a.fix.unwrap().ends_with("--force"));

        cifar(tmp.path(), 2);
        std::fs::write(dir.join("test_batch.bin"), vec![0u8; cifar10::RECORD + 5]).unwrap();
        let a = check(DatasetName::Cifar10, tmp.path());
        assert_eq!(a.state, DatasetState::Broken);
        assert!(
            a.detail.contains("test_batch.bin") && a.detail.contains("not a whole number"),
            "{}",
            a.detail
        );

        std::fs::write(dir.join("data_batch_1.bin"), []).unwrap();
        let a = check(DatasetName::Cifar10, tmp.path());
        assert!(
            a.detail.contains("data_batch_1.bin: file is empty"),
            "{}",
            a.detail
        );
    }

    #[test]
    fn fashion_present_reads_counts_from_raw_and_gzip_headers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fashion(tmp.path());
        let a = check(DatasetName::FashionMnist, tmp.path());
        assert_eq!(state(&a), (DatasetState::Present, 3, 2), "{}", a.detail);
        assert_eq!(a.detail, dir.display().to_string());
        // Again: the gzip lengths come from the memo, with the same answer.
        assert_eq!(check(DatasetName::FashionMnist, tmp.path()), a);
    }

    #[test]
    fn fashion_bad_header_truncated_gzip_or_missing_file_is_broken() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fashion(tmp.path());
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            [0u8, 0, 9, 1, 0, 0, 0, 2],
        )
        .unwrap();
        let a = check(DatasetName::FashionMnist, tmp.path());
        assert_eq!(a.state, DatasetState::Broken);
        assert!(a.detail.contains("bad IDX magic"), "{}", a.detail);
        assert!(a.fix.unwrap().ends_with("--force"));

        fashion(tmp.path());
        let mut short = idx(&[3, 28, 28]);
        short.truncate(short.len() - 100);
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&short)).unwrap();
        let a = check(DatasetName::FashionMnist, tmp.path());
        assert!(a.detail.contains("truncated"), "{}", a.detail);

        fashion(tmp.path());
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&idx(&[4]))).unwrap();
        let a = check(DatasetName::FashionMnist, tmp.path());
        assert!(a.detail.contains("4 labels for 3 images"), "{}", a.detail);

        if Path::new(fashion_mnist::SYSTEM_DIR).exists() {
            return; // the system copy would fill the gap
        }
        fashion(tmp.path());
        std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        let a = check(DatasetName::FashionMnist, tmp.path());
        assert_eq!(a.state, DatasetState::Broken);
        assert!(
            a.detail.contains("t10k-images-idx3-ubyte[.gz] missing"),
            "{}",
            a.detail
        );
    }

    #[test]
    fn fix_commands() {
        let root = Path::new("/srv/data");
        let f = |n, s| fix(n, root, s);
        assert_eq!(
            f(DatasetName::FashionMnist, DatasetState::Absent).unwrap(),
            "vovd data fetch fashion-mnist --data-dir /srv/data"
        );
        assert_eq!(
            f(DatasetName::Cifar10, DatasetState::Broken).unwrap(),
            "vovd data fetch cifar10 --data-dir /srv/data --force"
        );
        assert_eq!(f(DatasetName::Cifar10, DatasetState::Present), None);
        assert_eq!(f(DatasetName::Synthetic, DatasetState::Absent), None);
    }
}
