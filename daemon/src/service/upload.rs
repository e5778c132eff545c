//! The `PutWeights` call: a weights file for evaluation jobs, received in order,
//! checked against the size and SHA-256 its chunks carry and read as a vov
//! weights file before it is kept under its digest. Nothing half-written or
//! unchecked is ever under that name: the bytes go to a part file first.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tonic::{Status, Streaming};
use vov_proto::pb;
use vov_spec::digest::Sha256Hex;

use super::weights::CHUNK_BYTES;
use crate::train::weights;

/// The largest file taken: far above any benchmark model's weights.
pub const MAX_BYTES: u64 = 4 << 30;

fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

/// Whether `s` is a SHA-256 as vov writes one: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What the first chunk announces, checked.
fn announced(first: &pb::WeightsChunk) -> Result<(u64, String), Status> {
    if !is_sha256(&first.sha256) {
        return Err(invalid(format!(
            "sha256 '{}' is not 64 lowercase hex digits",
            first.sha256
        )));
    }
    if first.total_bytes > MAX_BYTES {
        return Err(invalid(format!(
            "total_bytes {} is above the {MAX_BYTES} this host takes",
            first.total_bytes
        )));
    }
    Ok((first.total_bytes, first.sha256.clone()))
}

/// A part file that is removed unless it was kept.
struct Part(PathBuf);

impl Drop for Part {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A unique part file for an upload of `sha256` in `dir`.
fn part_path(dir: &Path, sha256: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    dir.join(format!("{sha256}.{}-{nanos}.part", std::process::id()))
}

/// Receives an upload into `dir`; returns the digest and size it is kept under.
pub async fn receive(
    mut chunks: Streaming<pb::WeightsChunk>,
    dir: PathBuf,
) -> Result<pb::PutWeightsResponse, Status> {
    let first = chunks
        .message()
        .await?
        .ok_or_else(|| invalid("the upload has no chunks"))?;
    let (total, sha256) = announced(&first)?;
    let io = |e: std::io::Error| Status::internal(format!("{}: {e}", dir.display()));
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let part = Part(part_path(&dir, &sha256));
    let mut file = tokio::fs::File::create(&part.0).await.map_err(io)?;
    let mut hasher = Sha256Hex::default();
    let mut received = 0u64;
    let mut next = Some(first);
    while let Some(chunk) = next {
        if chunk.offset != received || chunk.total_bytes != total || chunk.sha256 != sha256 {
            return Err(invalid(format!(
                "chunk at offset {} of a {}-byte file {} does not follow {received} bytes \
                 of the {total}-byte file {sha256}",
                chunk.offset, chunk.total_bytes, chunk.sha256
            )));
        }
        if chunk.data.len() > CHUNK_BYTES || received + chunk.data.len() as u64 > total {
            return Err(invalid(format!(
                "a chunk of {} bytes at offset {received} overruns the {total}-byte file \
                 (chunks are at most {CHUNK_BYTES} bytes)",
                chunk.data.len()
            )));
        }
        hasher.update(&chunk.data);
        file.write_all(&chunk.data).await.map_err(io)?;
        received += chunk.data.len() as u64;
        next = chunks.message().await?;
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    let got = hasher.finish();
    if received != total || got != sha256 {
        return Err(invalid(format!(
            "the upload was rejected: {received} bytes with SHA-256 {got}, announced as \
             {total} bytes with SHA-256 {sha256}"
        )));
    }
    let path = part.0.clone();
    let checked = tokio::task::spawn_blocking(move || weights::read_meta(&path))
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    if let Err(e) = checked {
        return Err(invalid(format!("the upload is not vov weights: {e}")));
    }
    let kept = weights::file_in(&dir, &sha256);
    tokio::fs::rename(&part.0, &kept).await.map_err(io)?;
    Ok(pb::PutWeightsResponse {
        sha256,
        bytes: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_64_lowercase_hex_digits() {
        assert!(is_sha256(&"a1".repeat(32)));
        assert!(!is_sha256(&"A1".repeat(32)));
        assert!(!is_sha256("../../etc/passwd"));
        assert!(!is_sha256(&"a".repeat(63)));
    }
}
