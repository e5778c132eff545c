//! Test fixtures: data sets written in their published formats (test builds only).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{cifar10, fashion_mnist};

/// An IDX file of unsigned bytes: the header for `dims`, then `payload`.
pub(crate) fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

/// An IDX file for `dims` filled with `value`.
pub(crate) fn idx_filled(dims: &[u32], value: u8) -> Vec<u8> {
    let n: u32 = dims.iter().product();
    idx(dims, &vec![value; n as usize])
}

/// `bytes`, gzip-compressed.
pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One CIFAR-10 file of `n` records (file `k` of six): labels `(i + k) % 10`,
/// each image one byte value.
pub(crate) fn cifar_file(n: usize, k: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(n * cifar10::RECORD);
    for i in 0..n {
        bytes.push(((i + k) % 10) as u8);
        bytes.extend(std::iter::repeat_n((i * 7 + k) as u8, cifar10::IMAGE));
    }
    bytes
}

/// Writes the six CIFAR-10 files with `n` records each under `root/cifar10`.
pub(crate) fn cifar(root: &Path, n: usize) -> PathBuf {
    let dir = root.join(cifar10::DIR);
    std::fs::create_dir_all(&dir).unwrap();
    for (k, f) in cifar10::FILES.into_iter().enumerate() {
        std::fs::write(dir.join(f), cifar_file(n, k)).unwrap();
    }
    dir
}

/// Writes a 3 + 2 image Fashion-MNIST under `root/fashion-mnist`, gzipped or raw.
pub(crate) fn fashion(root: &Path, compressed: bool) -> PathBuf {
    let dir = root.join(fashion_mnist::DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        idx(&[3, 28, 28], &[17u8; 3 * 784]),
        idx(&[3], &[0, 4, 9]),
        idx(&[2, 28, 28], &[99u8; 2 * 784]),
        idx(&[2], &[3, 1]),
    ];
    for ((name, _), bytes) in fashion_mnist::FILES.iter().zip(files) {
        if compressed {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    dir
}
