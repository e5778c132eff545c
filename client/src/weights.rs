//! Fetching a trial's kept weights from its host: the `Weights` stream written to
//! a `.part` file beside the destination, resumed from the bytes received when
//! the stream is cut, checked against the SHA-256 the host lists, and renamed into
//! place only when it matches. A mismatch removes the part file.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tokio_stream::StreamExt;
use vov_proto::pb;
use vov_spec::digest::Sha256Hex;

use crate::hosts::Client;

/// Calls of `Weights` one fetch makes before it gives up on a cut stream.
pub const MAX_ATTEMPTS: u32 = 4;

/// A fetched weights file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex (the one the host listed).
    pub sha256: String,
    /// Calls it took (more than 1 when a stream was cut and resumed).
    pub attempts: u32,
}

/// Why a fetch failed.
#[derive(Debug, Error)]
pub enum FetchError {
    /// The host refused: no such trial, no weights kept, the file gone.
    #[error("{0}")]
    Refused(String),
    /// The stream kept breaking.
    #[error("the transfer broke {attempts} times; last: {last}")]
    Broken {
        /// Calls made.
        attempts: u32,
        /// The last reason.
        last: String,
    },
    /// The bytes received do not hash to the listed SHA-256 (the part file is
    /// removed).
    #[error("the weights received hash to {got}, the host lists {want}: rejected")]
    Corrupt {
        /// The listed digest.
        want: String,
        /// The received bytes' digest.
        got: String,
    },
    /// The stream's chunks do not line up (another file under the same trial).
    #[error("the host sent {0}")]
    Inconsistent(String),
    /// Writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The bytes received so far and what the host says the whole file is.
struct Progress {
    file: std::fs::File,
    part: PathBuf,
    offset: u64,
    hasher: Sha256Hex,
    total: Option<(u64, String)>,
}

impl Progress {
    /// An empty part file beside `dest`.
    fn create(dest: &Path) -> Result<Progress, FetchError> {
        let part = part_path(dest);
        let file = std::fs::File::create(&part).map_err(|source| FetchError::Io {
            path: part.clone(),
            source,
        })?;
        Ok(Progress {
            file,
            part,
            offset: 0,
            hasher: Sha256Hex::default(),
            total: None,
        })
    }

    fn io(&self, source: std::io::Error) -> FetchError {
        FetchError::Io {
            path: self.part.clone(),
            source,
        }
    }

    /// Appends one chunk after checking it continues the file the earlier
    /// chunks belong to.
    fn take(&mut self, c: pb::WeightsChunk) -> Result<(), FetchError> {
        let whole = (c.total_bytes, c.sha256);
        match &self.total {
            Some(t) if *t != whole => {
                return Err(FetchError::Inconsistent(format!(
                    "a chunk of a different file ({} bytes, {}) than before ({} bytes, {})",
                    whole.0, whole.1, t.0, t.1
                )))
            }
            Some(_) => {}
            None => self.total = Some(whole),
        }
        if c.offset != self.offset {
            return Err(FetchError::Inconsistent(format!(
                "a chunk at byte {} when byte {} was due",
                c.offset, self.offset
            )));
        }
        self.append(&c.data)
    }

    /// Writes and hashes `data` after the bytes so far.
    fn append(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.file.write_all(data).map_err(|e| self.io(e))?;
        self.hasher.update(data);
        self.offset += data.len() as u64;
        Ok(())
    }

    fn complete(&self) -> bool {
        self.total.as_ref().is_some_and(|(n, _)| self.offset == *n)
    }

    /// Checks the bytes against the listed size and SHA-256 and, when they
    /// match, moves the part file to `dest`.
    fn finish(&mut self, dest: &Path, attempts: u32) -> Result<Fetched, FetchError> {
        let (bytes, want) = self.total.clone().unwrap_or_default();
        let got = std::mem::take(&mut self.hasher).finish();
        if got != want || self.offset != bytes {
            return Err(FetchError::Corrupt { want, got });
        }
        self.file.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&self.part, dest).map_err(|e| self.io(e))?;
        Ok(Fetched {
            path: dest.to_path_buf(),
            bytes,
            sha256: want,
            attempts,
        })
    }

    /// Passes `result` on, removing the part file when it is an error.
    fn keep_if_ok(&self, result: Result<Fetched, FetchError>) -> Result<Fetched, FetchError> {
        if result.is_err() {
            let _ = std::fs::remove_file(&self.part);
        }
        result
    }
}

/// Whether a status ends the fetch (the host's answer will not change).
fn refusal(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::NotFound
            | Code::DataLoss
            | Code::OutOfRange
            | Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
    )
}

/// One `Weights` call from `p.offset`; `Ok(())` when the stream ended (whole or
/// cut), `Err(Ok(reason))` when it broke, `Err(Err(e))` when the fetch is over.
async fn attempt(
    client: &mut Client,
    trial_id: &str,
    p: &mut Progress,
) -> Result<(), Result<String, FetchError>> {
    let req = pb::WeightsRequest {
        trial_id: trial_id.to_string(),
        offset: p.offset,
    };
    let mut stream = match client.weights(req).await {
        Ok(s) => s.into_inner(),
        Err(s) if refusal(&s) => return Err(Err(FetchError::Refused(s.message().into()))),
        Err(s) => return Err(Ok(format!("{:?}: {}", s.code(), s.message()))),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => p.take(chunk).map_err(Err)?,
            Err(s) if refusal(&s) => return Err(Err(FetchError::Refused(s.message().into()))),
            Err(s) => return Err(Ok(format!("{:?}: {}", s.code(), s.message()))),
        }
    }
    Ok(())
}

/// Fetches the kept weights of `trial_id` to `dest` (through `dest.part`).
pub async fn fetch(
    client: &mut Client,
    trial_id: &str,
    dest: &Path,
) -> Result<Fetched, FetchError> {
    let mut p = Progress::create(dest)?;
    let result = match receive(client, trial_id, &mut p).await {
        Ok(attempts) => p.finish(dest, attempts),
        Err(e) => Err(e),
    };
    p.keep_if_ok(result)
}

/// Receives the whole file into `p`, resuming cut streams; returns the calls made.
async fn receive(client: &mut Client, trial_id: &str, p: &mut Progress) -> Result<u32, FetchError> {
    let mut attempts = 0;
    let mut last = String::new();
    while !p.complete() {
        if attempts == MAX_ATTEMPTS {
            return Err(FetchError::Broken { attempts, last });
        }
        attempts += 1;
        last = match attempt(client, trial_id, p).await {
            Ok(()) if p.complete() => break,
            Ok(()) => format!("the stream ended at byte {}", p.offset),
            Err(Ok(reason)) => reason,
            Err(Err(e)) => return Err(e),
        };
        tracing::warn!(
            trial.id = trial_id,
            offset = p.offset,
            "weights transfer cut ({last}); resuming"
        );
    }
    Ok(attempts)
}

/// Copies the weights file at `src` (a Slurm trial folder's, on the shared
/// filesystem) to `dest` through `dest.part`, checked against `listed` as a
/// fetch is.
pub fn copy(src: &Path, listed: &pb::KeptWeights, dest: &Path) -> Result<Fetched, FetchError> {
    let mut input = std::fs::File::open(src).map_err(|source| FetchError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    let mut p = Progress::create(dest)?;
    p.total = Some((listed.bytes, listed.sha256.clone()));
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = || loop {
        let n = std::io::Read::read(&mut input, &mut buf).map_err(|source| FetchError::Io {
            path: src.to_path_buf(),
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        p.append(&buf[..n])?;
    };
    let copied = copied();
    let result = copied.and_then(|()| p.finish(dest, 1));
    p.keep_if_ok(result)
}

/// The part file a fetch to `dest` writes first.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// The largest chunk an upload sends (the host takes at most this much at once).
pub const UPLOAD_CHUNK_BYTES: usize = 1 << 20;

/// Uploads a weights file's `bytes` (of SHA-256 `sha256`) to a host for
/// evaluation jobs, whole, retrying a broken call up to [`MAX_ATTEMPTS`] times;
/// returns what the host kept.
pub async fn upload(
    client: &mut Client,
    bytes: &[u8],
    sha256: &str,
) -> Result<pb::PutWeightsResponse, FetchError> {
    let total = bytes.len() as u64;
    let chunks: Vec<pb::WeightsChunk> = bytes
        .chunks(UPLOAD_CHUNK_BYTES)
        .scan(0u64, |offset, data| {
            let chunk = pb::WeightsChunk {
                offset: *offset,
                data: data.to_vec(),
                total_bytes: total,
                sha256: sha256.to_string(),
            };
            *offset += data.len() as u64;
            Some(chunk)
        })
        .collect();
    let mut last = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let stream = tokio_stream::iter(chunks.clone());
        match client.put_weights(tonic::Request::new(stream)).await {
            Ok(kept) => {
                let kept = kept.into_inner();
                if kept.sha256 != sha256 || kept.bytes != total {
                    return Err(FetchError::Inconsistent(format!(
                        "back {} bytes with SHA-256 {} for an upload of {total} bytes with {sha256}",
                        kept.bytes, kept.sha256
                    )));
                }
                return Ok(kept);
            }
            Err(s) if refusal(&s) => return Err(FetchError::Refused(s.message().into())),
            Err(s) => last = format!("{:?}: {}", s.code(), s.message()),
        }
        tracing::warn!(attempt, "weights upload broke ({last}); again");
    }
    Err(FetchError::Broken {
        attempts: MAX_ATTEMPTS,
        last,
    })
}
