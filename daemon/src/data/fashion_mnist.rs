//! Fashion-MNIST in IDX format, raw or gzip-compressed (detected from the content).
//!
//! Debian's `dataset-fashion-mnist` package installs the four files under
//! `/usr/share/datasets/fashion-mnist`, a real data set that needs no internet. The
//! 28x28 grayscale images are zero-padded by 2 pixels on every side to 32x32, so
//! every model (VoVNet's pooling chain needs 32x32) accepts them unchanged.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{check_labels, DataError, Dataset, DatasetName, LoadOptions, Split};
use crate::model::InputShape;

/// Where Debian's package installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The directory below the data root searched first (and that `vovd data fetch` installs).
pub const DIR: &str = "fashion-mnist";
/// Side of the images in the files.
pub const SIDE: usize = 28;
/// Side after padding.
pub const PADDED: usize = 32;

/// The command that installs Debian's package (written once: the loader's hint
/// and the fix a host reports both use it).
macro_rules! apt_install {
    () => {
        "apt-get install dataset-fashion-mnist"
    };
}
/// The command that installs Debian's package into [`SYSTEM_DIR`].
pub const APT_INSTALL: &str = apt_install!();

const HINT: &str = concat!(
    "install it with `vovd data fetch fashion-mnist --data-dir <data dir>`, or Debian's package (",
    apt_install!(),
    ")"
);

/// Directories searched, in order.
pub fn search_dirs(root: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(root) = root {
        dirs.push(root.join(DIR));
    }
    dirs.push(PathBuf::from(SYSTEM_DIR));
    dirs
}

/// The first existing file named `base` or `base.gz` in `dirs`.
fn find(dirs: &[PathBuf], base: &str) -> Result<PathBuf, DataError> {
    for dir in dirs {
        for name in [base.to_string(), format!("{base}.gz")] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(DataError::Missing {
        path: dirs[0].join(base),
        hint: format!("looked for {base}[.gz] in {}; {HINT}", tried.join(", ")),
    })
}

/// Reads a file, decompressing it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = DataError::read(path, HINT)?;
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::malformed(path, format!("not a valid gzip file: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// The first bytes of a gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The four files (without `.gz`), each with its IDX dimension count: training
/// images and labels, then validation (`t10k`) images and labels.
pub const FILES: [(&str, usize); 4] = [
    ("train-images-idx3-ubyte", 3),
    ("train-labels-idx1-ubyte", 1),
    ("t10k-images-idx3-ubyte", 3),
    ("t10k-labels-idx1-ubyte", 1),
];

/// Bytes of an IDX header with `ndims` dimensions.
pub fn header_len(ndims: usize) -> usize {
    4 + 4 * ndims
}

/// The dimensions in the IDX header at the start of `bytes` (unsigned bytes in
/// `ndims` dimensions), or why it is not one.
pub fn parse_header(bytes: &[u8], ndims: usize) -> Result<Vec<usize>, String> {
    let header = header_len(ndims);
    if bytes.len() < header {
        return Err(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || usize::from(bytes[3]) != ndims {
        return Err(format!(
            "bad IDX magic {:02x}{:02x}{:02x}{:02x}: expected unsigned bytes in {ndims} dimensions",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    Ok(bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}

/// Checks that `payload` data bytes are what the header's `dims` promise.
pub fn check_payload(dims: &[usize], payload: u64) -> Result<(), String> {
    let want = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
    match want {
        Some(n) if n == payload => Ok(()),
        Some(n) if n > payload => Err(format!(
            "truncated: header promises {n} data bytes, file has {payload}"
        )),
        _ => Err(format!(
            "{payload} data bytes do not match the header's dimensions {dims:?}"
        )),
    }
}

/// Checks that images are Fashion-MNIST's size (IDX dims `[count, 28, 28]`).
pub fn check_image_dims(dims: &[usize]) -> Result<(), String> {
    if dims[1] != SIDE || dims[2] != SIDE {
        return Err(format!(
            "images are {}x{}; Fashion-MNIST images are {SIDE}x{SIDE}",
            dims[1], dims[2]
        ));
    }
    Ok(())
}

/// Where `base` (raw or `.gz`) is found under `root` or the system directory.
pub fn locate(root: Option<&Path>, base: &str) -> Option<PathBuf> {
    find(&search_dirs(root), base).ok()
}

/// Parses an IDX file of unsigned bytes with `ndims` dimensions: (dims, payload).
fn parse_idx<'a>(
    bytes: &'a [u8],
    ndims: usize,
    path: &Path,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let dims = parse_header(bytes, ndims).map_err(|r| DataError::malformed(path, r))?;
    let payload = &bytes[header_len(ndims)..];
    check_payload(&dims, payload.len() as u64).map_err(|r| DataError::malformed(path, r))?;
    Ok((dims, payload))
}

fn pad(images: &[u8], count: usize) -> Vec<u8> {
    let off = (PADDED - SIDE) / 2;
    let mut out = vec![0u8; count * PADDED * PADDED];
    for (src, dst) in images
        .chunks_exact(SIDE * SIDE)
        .zip(out.chunks_exact_mut(PADDED * PADDED))
    {
        for (y, row) in src.chunks_exact(SIDE).enumerate() {
            let start = (y + off) * PADDED + off;
            dst[start..start + SIDE].copy_from_slice(row);
        }
    }
    out
}

fn read_split(dirs: &[PathBuf], prefix: &str, limit: Option<usize>) -> Result<Split, DataError> {
    let img_path = find(dirs, &format!("{prefix}-images-idx3-ubyte"))?;
    let lbl_path = find(dirs, &format!("{prefix}-labels-idx1-ubyte"))?;
    let img_bytes = read_maybe_gz(&img_path)?;
    let (dims, images) = parse_idx(&img_bytes, 3, &img_path)?;
    check_image_dims(&dims).map_err(|r| DataError::malformed(&img_path, r))?;
    let lbl_bytes = read_maybe_gz(&lbl_path)?;
    let (ldims, labels) = parse_idx(&lbl_bytes, 1, &lbl_path)?;
    if ldims[0] != dims[0] {
        return Err(DataError::malformed(
            &lbl_path,
            format!(
                "{} labels for {} images in {}",
                ldims[0],
                dims[0],
                img_path.display()
            ),
        ));
    }
    check_labels(labels, 10, &lbl_path)?;
    let n = limit.map_or(dims[0], |l| l.min(dims[0]));
    Ok(Split {
        images: pad(&images[..n * SIDE * SIDE], n),
        labels: labels[..n].to_vec(),
    })
}

/// Loads Fashion-MNIST from `<root>/fashion-mnist` or the system directory.
pub fn load(opts: &LoadOptions) -> Result<Dataset, DataError> {
    load_from(&search_dirs(opts.root.as_deref()), opts)
}

/// Loads Fashion-MNIST from `dir` only (the limits of `opts`).
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    load_from(&[dir.to_path_buf()], opts)
}

fn load_from(dirs: &[PathBuf], opts: &LoadOptions) -> Result<Dataset, DataError> {
    let train = read_split(dirs, "train", opts.train_limit)?;
    let val = read_split(dirs, "t10k", opts.val_limit)?;
    let source = find(dirs, "t10k-labels-idx1-ubyte")?
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok(Dataset {
        name: DatasetName::FashionMnist,
        shape: InputShape {
            channels: 1,
            height: PADDED,
            width: PADDED,
        },
        classes: 10,
        train,
        val,
        source,
    })
}

/// Whether the four files can be found (a cheap check for host listings).
pub fn present(root: Option<&Path>) -> bool {
    FILES.iter().all(|(base, _)| locate(root, base).is_some())
}

/// The first directory searched that holds any of the four files: the one the
/// loader reads first.
pub fn holding_dir(root: Option<&Path>) -> Option<PathBuf> {
    search_dirs(root).into_iter().find(|d| {
        FILES
            .iter()
            .any(|(f, _)| d.join(f).is_file() || d.join(format!("{f}.gz")).is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testdata::{gz, idx};

    /// Writes a 3-image training split (gzip) and a 2-image test split (raw).
    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fashion-mnist");
        std::fs::create_dir(&dir).unwrap();
        let img = |n: usize| idx(&[n as u32, 28, 28], &vec![200u8; n * 784]);
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&img(3))).unwrap();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte.gz"),
            gz(&idx(&[3], &[0, 5, 9])),
        )
        .unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), img(2)).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[2], &[1, 2])).unwrap();
        (tmp, dir)
    }

    fn load_from(root: &Path) -> Result<Dataset, DataError> {
        load(&LoadOptions {
            root: Some(root.to_path_buf()),
            ..Default::default()
        })
    }

    #[test]
    fn loads_raw_and_gzip_and_pads() {
        let (tmp, _) = fixture();
        let ds = load_from(tmp.path()).unwrap();
        assert_eq!((ds.train.len(), ds.val.len()), (3, 2));
        assert_eq!(ds.shape.channels, 1);
        let first = &ds.train.images[..1024];
        assert_eq!(first[0], 0, "corner is padding");
        assert_eq!(first[2 * 32 + 2], 200, "image starts at (2, 2)");
        assert_eq!(first[29 * 32 + 29], 200, "image ends at (29, 29)");
        assert_eq!(first[30 * 32 + 30], 0);
        assert_eq!(first.iter().filter(|&&p| p == 200).count(), 784);
    }

    #[test]
    fn wrong_image_size_is_named() {
        let (tmp, dir) = fixture();
        std::fs::write(
            dir.join("t10k-images-idx3-ubyte"),
            idx(&[2, 32, 32], &[0; 2048]),
        )
        .unwrap();
        let err = load_from(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("t10k-images-idx3-ubyte: images are 32x32"),
            "{err}"
        );
    }

    #[test]
    fn truncated_file_is_named() {
        let (tmp, dir) = fixture();
        let p = dir.join("t10k-images-idx3-ubyte");
        let mut b = std::fs::read(&p).unwrap();
        b.truncate(b.len() - 10);
        std::fs::write(&p, b).unwrap();
        let err = load_from(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("t10k-images-idx3-ubyte: truncated"), "{err}");
    }

    #[test]
    fn bad_magic_and_bad_gzip_are_named() {
        let (tmp, dir) = fixture();
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            [0u8, 0, 9, 1, 0, 0, 0, 0],
        )
        .unwrap();
        let err = load_from(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("t10k-labels-idx1-ubyte: bad IDX magic"),
            "{err}"
        );
        std::fs::write(
            dir.join("train-labels-idx1-ubyte.gz"),
            [0x1f, 0x8b, 1, 2, 3],
        )
        .unwrap();
        let err = load_from(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not a valid gzip file"), "{err}");
    }

    #[test]
    fn label_count_and_range_are_checked() {
        let (tmp, dir) = fixture();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[2], &[1, 11])).unwrap();
        let err = load_from(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("record 1 has label 11"), "{err}");
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[1], &[1])).unwrap();
        let err = load_from(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("1 labels for 2 images"), "{err}");
    }

    #[test]
    fn missing_files_list_where_we_looked() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().join("fashion-mnist")];
        let err = find(&dirs, "train-images-idx3-ubyte")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train-images-idx3-ubyte: file not found"),
            "{err}"
        );
        assert!(err.contains("dataset-fashion-mnist"), "{err}");
    }
}
