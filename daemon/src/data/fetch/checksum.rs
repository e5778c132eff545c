//! Checksums of downloaded files: `md5:HEX` (as CIFAR's and Fashion-MNIST's pages
//! publish them) or `sha256:HEX` (for a site's own repackaged archive).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::FetchError;

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5, the published checksums' algorithm.
    Md5,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// The prefix in `ALGO:HEX`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha256 => "sha256",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

/// An expected digest, `ALGO:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Lower-case hex digits.
    pub hex: String,
}

impl Checksum {
    /// An MD5 checksum from its hex digits (a constant of a data set's source).
    pub fn md5(hex: &str) -> Self {
        Checksum {
            algorithm: Algorithm::Md5,
            hex: hex.to_ascii_lowercase(),
        }
    }

    /// Digests the file at `path` with this checksum's algorithm.
    pub fn digest_file(&self, path: &Path) -> Result<String, FetchError> {
        let mut file = std::fs::File::open(path).map_err(|e| FetchError::io(path, e))?;
        let mut hasher = Hasher::new(self.algorithm);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(|e| FetchError::io(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finish())
    }

    /// Checks the file at `path`, naming `file` and both digests on a mismatch.
    pub fn check_file(&self, path: &Path, file: &str) -> Result<(), FetchError> {
        let actual = self.digest_file(path)?;
        if actual == self.hex {
            Ok(())
        } else {
            Err(FetchError::Checksum {
                file: file.to_string(),
                expected: self.to_string(),
                actual: format!("{}:{actual}", self.algorithm.name()),
            })
        }
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Checksum {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not ALGO:HEX (md5:... or sha256:...)"))?;
        let algorithm = match algo.to_ascii_lowercase().as_str() {
            "md5" => Algorithm::Md5,
            "sha256" => Algorithm::Sha256,
            other => {
                return Err(format!(
                    "unknown checksum algorithm '{other}' (md5 or sha256)"
                ))
            }
        };
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "'{hex}' is not {} hex digits of {}",
                algorithm.hex_len(),
                algorithm.name()
            ));
        }
        Ok(Checksum {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }
}

enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Sha256(h) => hex(&h.finalize()),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_digests_both_algorithms() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let md5: Checksum = "MD5:900150983CD24FB0D6963F7D28E17F72".parse().unwrap();
        md5.check_file(&p, "f").unwrap();
        let sha: Checksum =
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                .parse()
                .unwrap();
        sha.check_file(&p, "f").unwrap();
        assert_eq!(md5.to_string(), "md5:900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn mismatch_names_the_file_and_both_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        std::fs::write(&p, b"abd").unwrap();
        let err = Checksum::md5("900150983cd24fb0d6963f7d28e17f72")
            .check_file(&p, "cifar-10-binary.tar.gz")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");
        assert!(
            err.contains("md5:900150983cd24fb0d6963f7d28e17f72"),
            "{err}"
        );
    }

    #[test]
    fn bad_forms_are_refused() {
        for bad in ["c32a1d4a", "crc:00", "md5:xyz", "sha256:abcd"] {
            assert!(bad.parse::<Checksum>().is_err(), "{bad}");
        }
    }
}
