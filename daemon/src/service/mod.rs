//! The `vov.v1.Trainer` gRPC service: decode and check each request, hand it to
//! the job manager, encode the answer. Errors map to status codes in `error.rs`.

pub mod auth;
pub mod convert;
pub mod error;
mod evaluation;
pub mod host;
pub mod upload;
pub mod weights;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use vov_proto::pb;
use vov_proto::pb::trainer_server::Trainer;

use crate::data::{availability, DatasetName};
use crate::jobs::{JobManager, NewJob};
use crate::store::{ListQuery, Store};
use error::ServiceError;
use host::HostStatic;
use vov_spec::DatasetState;

/// Default and largest page of `List`.
const PAGE: (usize, usize) = (100, 1000);

/// The service state shared by all calls.
#[derive(Clone)]
pub struct TrainerService {
    jobs: JobManager,
    host: Arc<HostStatic>,
    data_dir: PathBuf,
    threads_per_slot: usize,
    max_queued: usize,
}

impl TrainerService {
    /// A service over `jobs` for a host described by `host`.
    pub fn new(
        jobs: JobManager,
        host: HostStatic,
        data_dir: PathBuf,
        threads_per_slot: usize,
        max_queued: usize,
    ) -> Self {
        TrainerService {
            jobs,
            host: Arc::new(host),
            data_dir,
            threads_per_slot,
            max_queued,
        }
    }

    fn store(&self) -> Store {
        self.jobs.store().clone()
    }

    /// Refuses a trial this host can never run: the wrong device, or its data
    /// set absent or broken (the message names the command that fixes it). The
    /// data check reads files, so it runs on the blocking pool.
    async fn check_runnable(
        &self,
        spec: &pb::TrialSpec,
        dataset: DatasetName,
    ) -> Result<(), ServiceError> {
        let gpu_host = self.host.devices.iter().any(|d| d.kind == "cuda");
        match pb::DeviceRequirement::try_from(spec.device) {
            Ok(pb::DeviceRequirement::Gpu) if !gpu_host => {
                return Err(ServiceError::FailedPrecondition(
                    "the trial needs a GPU and this host has none".into(),
                ))
            }
            Ok(pb::DeviceRequirement::Cpu) if gpu_host => {
                return Err(ServiceError::FailedPrecondition(
                    "the trial needs a CPU slot and this host offers GPU slots only".into(),
                ))
            }
            _ => {}
        }
        let data_dir = self.data_dir.clone();
        let a = tokio::task::spawn_blocking(move || availability::check(dataset, &data_dir))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let fix = a.fix.unwrap_or_default();
        match a.state {
            DatasetState::Present => Ok(()),
            DatasetState::Absent => Err(ServiceError::FailedPrecondition(format!(
                "data set {dataset} is not present on this host ({}); install it with `{fix}`",
                a.detail
            ))),
            DatasetState::Broken => Err(ServiceError::FailedPrecondition(format!(
                "data set {dataset} is broken on this host: {}; fetch it again with `{fix}`",
                a.detail
            ))),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(e.to_string()))
}

fn peer<T>(req: &Request<T>) -> String {
    req.remote_addr()
        .map_or_else(|| "unknown".into(), |a: SocketAddr| a.to_string())
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Trainer for TrainerService {
    async fn host_info(
        &self,
        _req: Request<pb::HostInfoRequest>,
    ) -> Result<Response<pb::HostInfoResponse>, Status> {
        let snap = self.jobs.snapshot().await?;
        let data_dir = self.data_dir.clone();
        let datasets = tokio::task::spawn_blocking(move || host::datasets(&data_dir))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let h = &self.host;
        Ok(Response::new(pb::HostInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: h.hostname.clone(),
            fingerprint: Some(h.fingerprint.clone()),
            devices: h.devices.clone(),
            slots_total: snap.slots_total as u32,
            slots_free: snap.slots_free as u32,
            queued: snap.queued as u32,
            threads_per_slot: self.threads_per_slot as u32,
            datasets,
            models: h.models.clone(),
            max_queued: self.max_queued as u32,
        }))
    }

    async fn submit(
        &self,
        req: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let peer = peer(&req);
        let mut r = req.into_inner();
        convert::check_id("trial_id", &r.trial_id, false)?;
        convert::check_id("sweep_id", &r.sweep_id, true)?;
        let (job, spec_pb) = match r.evaluation.take() {
            Some(e) => evaluation::new_job(self, r, e).await?,
            None => {
                let spec_pb = r
                    .spec
                    .take()
                    .ok_or_else(|| ServiceError::InvalidArgument("spec: required".into()))?;
                let spec = convert::train_spec(&spec_pb)?;
                let job = NewJob {
                    trial_id: r.trial_id,
                    sweep_id: r.sweep_id,
                    spec_proto: spec_pb.encode_to_vec(),
                    spec,
                    retry: r.retry,
                    stop_after: r.stop_after_epochs,
                    evaluation: None,
                };
                (job, spec_pb)
            }
        };
        self.check_runnable(&spec_pb, job.spec.dataset).await?;
        let kind = if job.evaluation.is_some() {
            "evaluate"
        } else {
            "train"
        };
        tracing::info!(peer.addr = %peer, trial.id = %job.trial_id, sweep.id = %job.sweep_id, model = %job.spec.model.name, kind, "submit");
        let (row, created) = self.jobs.submit(job).await?;
        Ok(Response::new(pb::SubmitResponse {
            job: Some(convert::job(&row, &self.host.hostname)),
            created,
        }))
    }

    type WatchStream = EventStream;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = req.into_inner();
        convert::check_id("trial_id", &r.trial_id, false)?;
        let sub = self.jobs.subscribe(&r.trial_id).await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(forward(
            self.store(),
            r.trial_id,
            r.from_seq.max(1),
            sub,
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WeightsStream = weights::ChunkStream;

    async fn weights(
        &self,
        req: Request<pb::WeightsRequest>,
    ) -> Result<Response<Self::WeightsStream>, Status> {
        let r = req.into_inner();
        convert::check_id("trial_id", &r.trial_id, false)?;
        let path = self.jobs.weights_file(&r.trial_id);
        let stream = weights::stream(self.store(), path, &r.trial_id, r.offset).await?;
        Ok(Response::new(stream))
    }

    async fn put_weights(
        &self,
        req: Request<tonic::Streaming<pb::WeightsChunk>>,
    ) -> Result<Response<pb::PutWeightsResponse>, Status> {
        let peer = peer(&req);
        let kept = upload::receive(req.into_inner(), self.jobs.received_dir()).await?;
        tracing::info!(peer.addr = %peer, sha256 = %kept.sha256, bytes = kept.bytes, "weights uploaded");
        Ok(Response::new(kept))
    }

    async fn drop_weights(
        &self,
        req: Request<pb::DropWeightsRequest>,
    ) -> Result<Response<pb::DropWeightsResponse>, Status> {
        let peer = peer(&req);
        let id = req.into_inner().trial_id;
        convert::check_id("trial_id", &id, false)?;
        let bytes_freed = self.jobs.drop_weights(&id).await?;
        tracing::info!(peer.addr = %peer, trial.id = %id, bytes_freed, "kept weights removed");
        Ok(Response::new(pb::DropWeightsResponse { bytes_freed }))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::Job>, Status> {
        let id = req.into_inner().trial_id;
        convert::check_id("trial_id", &id, false)?;
        let store = self.store();
        let key = id.clone();
        let row = blocking(move || store.get(&key)).await?;
        let row = row.ok_or_else(|| Status::not_found(format!("no job with trial id '{id}'")))?;
        Ok(Response::new(convert::job(&row, &self.host.hostname)))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let r = req.into_inner();
        let after = if r.page_token.is_empty() {
            0
        } else {
            r.page_token.parse::<i64>().map_err(|_| {
                ServiceError::InvalidArgument(format!(
                    "page_token '{}' is not one this server issued",
                    r.page_token
                ))
            })?
        };
        let limit = match r.page_size as usize {
            0 => PAGE.0,
            n => n.min(PAGE.1),
        };
        let states = r
            .states()
            .filter_map(|s| vov_proto::convert::job_state(s as i32))
            .collect();
        let query = ListQuery {
            sweep_id: (!r.sweep_id.is_empty()).then_some(r.sweep_id),
            states,
            after,
            limit: limit + 1,
        };
        let store = self.store();
        let mut rows = blocking(move || store.list(&query)).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_page_token = if more {
            rows.last().map(|r| r.order.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListResponse {
            jobs: rows
                .iter()
                .map(|r| convert::job(r, &self.host.hostname))
                .collect(),
            next_page_token,
        }))
    }

    async fn cancel(
        &self,
        req: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelResponse>, Status> {
        let peer = peer(&req);
        let id = req.into_inner().trial_id;
        convert::check_id("trial_id", &id, false)?;
        tracing::info!(peer.addr = %peer, trial.id = %id, "cancel");
        let row = self.jobs.cancel(&id).await?;
        Ok(Response::new(pb::CancelResponse {
            job: Some(convert::job(&row, &self.host.hostname)),
        }))
    }
}

/// Sends stored events from `next` on, then live ones, de-duplicated by sequence
/// number; re-reads the store when the live channel lags or closes. Stops when the
/// watcher leaves (a departing watcher is not a cancel).
async fn forward(
    store: Store,
    trial_id: String,
    mut next: u64,
    mut sub: crate::jobs::Subscription,
    tx: mpsc::Sender<Result<pb::JobEvent, Status>>,
) {
    if !replay(&store, &trial_id, &mut next, &tx).await {
        return;
    }
    if sub.finished {
        return;
    }
    loop {
        match sub.receiver.recv().await {
            Ok(event) => {
                if event.seq < next {
                    continue;
                }
                next = event.seq + 1;
                if tx.send(Ok((*event).clone())).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !replay(&store, &trial_id, &mut next, &tx).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => {
                replay(&store, &trial_id, &mut next, &tx).await;
                return;
            }
        }
    }
}

/// Sends stored events with seq >= `next`; false when the watcher left or the store
/// failed (the error is sent).
async fn replay(
    store: &Store,
    trial_id: &str,
    next: &mut u64,
    tx: &mpsc::Sender<Result<pb::JobEvent, Status>>,
) -> bool {
    let (s, id, from) = (store.clone(), trial_id.to_string(), *next);
    let events = match blocking(move || s.events(&id, from)).await {
        Ok(e) => e,
        Err(status) => {
            let _ = tx.send(Err(status)).await;
            return false;
        }
    };
    for (seq, body) in events {
        let Ok(event) = pb::JobEvent::decode(body.as_slice()) else {
            continue;
        };
        *next = seq + 1;
        if tx.send(Ok(event)).await.is_err() {
            return false;
        }
    }
    true
}
