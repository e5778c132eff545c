//! The `Weights` call: a trial's kept weights file, streamed in chunks from an
//! offset, each chunk carrying the whole file's size and SHA-256 as its result
//! lists them.

use std::io::SeekFrom;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tonic::Status;
use vov_proto::pb;

use crate::store::Store;
use crate::train::weights::WeightsInfo;
use crate::train::TrainRecord;

/// The largest chunk: well under the 16 MiB response limit.
pub const CHUNK_BYTES: usize = 1 << 20;

/// What a weights stream sends.
pub type ChunkStream = tokio_stream::wrappers::ReceiverStream<Result<pb::WeightsChunk, Status>>;

/// The listing of the weights `trial_id` kept, from its stored result.
async fn listed(store: Store, trial_id: &str) -> Result<WeightsInfo, Status> {
    let key = trial_id.to_string();
    let row = super::blocking(move || store.get(&key))
        .await?
        .ok_or_else(|| Status::not_found(format!("no job with trial id '{trial_id}'")))?;
    if row.evaluation.is_some() {
        return Err(Status::not_found(format!(
            "'{trial_id}' is an evaluation job: it keeps no weights of its own"
        )));
    }
    let record: Option<TrainRecord> = row
        .result
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| Status::internal(format!("stored result unreadable: {e}")))?;
    let asked = record
        .as_ref()
        .is_some_and(|r| r.spec.keep_weights != vov_spec::KeepWeights::None);
    match record.and_then(|r| r.weights) {
        Some(w) => Ok(w),
        None if asked => Err(Status::not_found(format!(
            "the weights of '{trial_id}' are gone from this host: removed by its \
             max_weights_bytes or by vovctl prune"
        ))),
        None => Err(Status::not_found(format!(
            "trial '{trial_id}' kept no weights (it has not succeeded, or its keep_weights is none)"
        ))),
    }
}

/// Starts streaming the weights of `trial_id` (kept at `path`) from `offset`.
pub async fn stream(
    store: Store,
    path: PathBuf,
    trial_id: &str,
    offset: u64,
) -> Result<ChunkStream, Status> {
    let info = listed(store, trial_id).await?;
    let on_disk = tokio::fs::metadata(&path).await.map(|m| m.len());
    match on_disk {
        Ok(len) if len == info.bytes => {}
        Ok(len) => {
            return Err(Status::data_loss(format!(
                "the weights of '{trial_id}' are {len} bytes on this host, {} when kept",
                info.bytes
            )))
        }
        Err(e) => {
            return Err(Status::data_loss(format!(
                "the weights of '{trial_id}' are gone from this host ({}: {e})",
                path.display()
            )))
        }
    }
    if offset > info.bytes {
        return Err(Status::out_of_range(format!(
            "offset {offset} is past the end of the {}-byte weights",
            info.bytes
        )));
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(send(path, offset, info, tx));
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Reads the file from `offset` and sends it chunk by chunk until its end or the
/// receiver hangs up; a read error ends the stream with that error.
async fn send(
    path: PathBuf,
    mut offset: u64,
    info: WeightsInfo,
    tx: mpsc::Sender<Result<pb::WeightsChunk, Status>>,
) {
    let read = |e: std::io::Error| Status::data_loss(format!("{}: {e}", path.display()));
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Err(read(e))).await;
            return;
        }
    };
    if let Err(e) = file.seek(SeekFrom::Start(offset)).await {
        let _ = tx.send(Err(read(e))).await;
        return;
    }
    while offset < info.bytes {
        let want = CHUNK_BYTES.min((info.bytes - offset) as usize);
        let mut data = vec![0u8; want];
        if let Err(e) = file.read_exact(&mut data).await {
            let _ = tx.send(Err(read(e))).await;
            return;
        }
        let chunk = pb::WeightsChunk {
            offset,
            data,
            total_bytes: info.bytes,
            sha256: info.sha256.clone(),
        };
        offset += want as u64;
        if tx.send(Ok(chunk)).await.is_err() {
            return;
        }
    }
}
