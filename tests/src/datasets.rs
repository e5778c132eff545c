//! Data sets in their published formats, written by tests: CIFAR-10's binary
//! files (3073-byte records) and archive, and Fashion-MNIST IDX files cut from
//! Debian's `dataset-fashion-mnist` package.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// CIFAR-10's training files, then its validation file.
pub const CIFAR10_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];
/// Bytes per CIFAR-10 record: a label, then 3x32x32 image bytes.
pub const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;
/// Where Debian's package puts Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
/// Fashion-MNIST's four files, as published (gzip).
pub const FASHION_MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The bytes of one CIFAR-10 file of `n` learnable records (file `k` of six):
/// the label shows in the image's brightness, under seeded noise (which also
/// keeps an archive of them from compressing to almost nothing).
pub fn cifar10_file(n: usize, k: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(n * CIFAR10_RECORD);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ k as u64;
    for i in 0..n {
        let label = ((i + k) % 10) as u8;
        bytes.push(label);
        for _ in 0..CIFAR10_RECORD - 1 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (state >> 58) as u8; // 0..63
            bytes.push(label.wrapping_mul(20).wrapping_add(noise));
        }
    }
    bytes
}

/// Writes the six files, `n` records each, into `dir` (created).
pub fn write_cifar10(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("create the CIFAR-10 directory");
    for (k, f) in CIFAR10_FILES.iter().enumerate() {
        std::fs::write(dir.join(f), cifar10_file(n, k)).expect("write a CIFAR-10 file");
    }
}

/// Writes `cifar-10-binary.tar.gz` into `dir` as published (members below
/// `cifar-10-batches-bin/`), `n` records per file; returns its path.
pub fn cifar10_archive(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("cifar-10-binary.tar.gz");
    let file = std::fs::File::create(&path).expect("create the archive");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), bytes)
            .expect("append a member");
    };
    add(
        "batches.meta.txt",
        b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n",
    );
    for (k, f) in CIFAR10_FILES.iter().enumerate() {
        add(f, &cifar10_file(n, k));
    }
    tar.into_inner()
        .expect("finish the tar")
        .finish()
        .expect("finish the gzip");
    path
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// Writes into `dir` the four Fashion-MNIST files (gzip) holding the first
/// `train` and `val` records of Debian's package.
pub fn fashion_mnist_subset(dir: &Path, train: usize, val: usize) {
    std::fs::create_dir_all(dir).expect("create the Fashion-MNIST directory");
    let src = Path::new(DEBIAN_FASHION_MNIST);
    for (file, n) in FASHION_MNIST_FILES.iter().zip([train, train, val, val]) {
        let full = gunzip(&src.join(file));
        let images = file.contains("images");
        let header = if images { 16 } else { 8 };
        let item = if images { 28 * 28 } else { 1 };
        let mut out = full[..header].to_vec();
        out[4..8].copy_from_slice(&(n as u32).to_be_bytes());
        out.extend_from_slice(&full[header..header + n * item]);
        std::fs::write(dir.join(file), gzip(&out)).expect("write an IDX file");
    }
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("read");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
