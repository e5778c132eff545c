//! Where each data set is published: its files, their published checksums, and
//! how they become the directory that the loader reads.

use super::checksum::Checksum;
use crate::data::{cifar10, fashion_mnist, DatasetName};

/// How downloaded files become the installed directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One gzip-compressed tar archive; the listed members are taken from it by
    /// file name, wherever they sit in the archive.
    TarGz {
        /// Members that must be there.
        required: &'static [&'static str],
        /// Members taken when there.
        optional: &'static [&'static str],
    },
    /// The files are installed as they are (the loader reads `.gz` itself).
    AsIs,
}

/// One published file.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// File name, appended to the base URL.
    pub name: &'static str,
    /// Its published MD5.
    pub md5: &'static str,
}

impl RemoteFile {
    /// The published checksum.
    pub fn checksum(&self) -> Checksum {
        Checksum::md5(self.md5)
    }
}

/// A data set's publication.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// The data set.
    pub name: DatasetName,
    /// Where the files are published (ends with `/`).
    pub base_url: &'static str,
    /// The files.
    pub files: &'static [RemoteFile],
    /// How they are installed.
    pub layout: Layout,
    /// The directory below the data root that the loader reads.
    pub dir: &'static str,
    /// Training and validation records of the published set.
    pub records: (usize, usize),
    /// SHA-256 of the decoded published records (see `data::verify`), when known.
    pub records_sha256: Option<&'static str>,
}

const CIFAR10: Source = Source {
    name: DatasetName::Cifar10,
    base_url: "https://www.cs.toronto.edu/~kriz/",
    files: &[RemoteFile {
        name: "cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
    }],
    layout: Layout::TarGz {
        required: &cifar10::FILES,
        optional: &["batches.meta.txt", "readme.html"],
    },
    dir: cifar10::DIR,
    records: (50_000, 10_000),
    records_sha256: None,
};

const FASHION_MNIST: Source = Source {
    name: DatasetName::FashionMnist,
    base_url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files: &[
        RemoteFile {
            name: "train-images-idx3-ubyte.gz",
            md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        },
        RemoteFile {
            name: "train-labels-idx1-ubyte.gz",
            md5: "25c81989df183df01b3e8a0aad5dffbe",
        },
        RemoteFile {
            name: "t10k-images-idx3-ubyte.gz",
            md5: "bef4ecab320f06d8554ea6380940ec79",
        },
        RemoteFile {
            name: "t10k-labels-idx1-ubyte.gz",
            md5: "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ],
    layout: Layout::AsIs,
    dir: fashion_mnist::DIR,
    records: (60_000, 10_000),
    records_sha256: Some(FASHION_MNIST_RECORDS),
};

/// SHA-256 of the decoded Fashion-MNIST records, as Debian's re-packed
/// `dataset-fashion-mnist` files decode (re-compressed, the same records).
const FASHION_MNIST_RECORDS: &str =
    "f66952c63b0c8a3aae8f999f2a19eb079f9b4277ce1c82cfd1bee2d986ff8f8a";

/// The publication of `name`; `None` for the generated `synthetic` set.
pub fn source(name: DatasetName) -> Option<&'static Source> {
    match name {
        DatasetName::Cifar10 => Some(&CIFAR10),
        DatasetName::FashionMnist => Some(&FASHION_MNIST),
        DatasetName::Synthetic => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_valid_md5_and_every_real_set_a_source() {
        for &name in DatasetName::ALL {
            let Some(s) = source(name) else {
                assert_eq!(name, DatasetName::Synthetic);
                continue;
            };
            assert!(s.base_url.ends_with('/'));
            for f in s.files {
                format!("md5:{}", f.md5).parse::<Checksum>().unwrap();
            }
        }
    }
}
