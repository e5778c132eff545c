//! The gRPC fleet: each `vovd` host is one [`Backend`].

use std::sync::Arc;

use async_trait::async_trait;
use tokio_stream::StreamExt;
use vov_proto::pb;

use super::{Backend, BackendError, BackendInfo, EventStream, RunOptions, Submitted, CALL_TIMEOUT};
use crate::hosts::Host;

/// Jobs asked for per `List` page.
const PAGE_SIZE: u32 = 500;

/// A request with the call deadline ([`CALL_TIMEOUT`]).
pub fn request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(CALL_TIMEOUT);
    r
}

/// What a failed call means to the scheduler; the only place gRPC status codes
/// are read.
pub fn error(status: &tonic::Status) -> BackendError {
    use tonic::Code;
    let why = status.message().to_string();
    match status.code() {
        Code::InvalidArgument | Code::AlreadyExists => BackendError::Invalid(why),
        Code::FailedPrecondition | Code::Unauthenticated | Code::PermissionDenied => {
            BackendError::Unrunnable(format!("{:?}: {why}", status.code()))
        }
        Code::ResourceExhausted => BackendError::Busy(why),
        Code::NotFound => BackendError::NotFound(why),
        code => BackendError::Unavailable(format!("{code:?}: {why}")),
    }
}

/// One `vovd` host reached over gRPC.
pub struct GrpcBackend {
    host: Host,
}

impl GrpcBackend {
    /// A backend over `host`'s client.
    pub fn new(host: Host) -> Self {
        GrpcBackend { host }
    }

    /// One backend per host.
    pub fn fleet(hosts: Vec<Host>) -> Vec<Arc<dyn Backend>> {
        hosts
            .into_iter()
            .map(|h| Arc::new(GrpcBackend::new(h)) as Arc<dyn Backend>)
            .collect()
    }
}

#[async_trait]
impl Backend for GrpcBackend {
    fn name(&self) -> &str {
        &self.host.url
    }

    async fn info(&self) -> Result<BackendInfo, BackendError> {
        let mut client = self.host.client.clone();
        let info = client
            .host_info(request(pb::HostInfoRequest {}))
            .await
            .map_err(|s| error(&s))?;
        Ok(BackendInfo::from(info.get_ref()))
    }

    async fn alive(&self) -> Result<(), BackendError> {
        let mut health = self.host.health.clone();
        // Any answer, SERVING or not (a draining daemon), means the host is up.
        health
            .check(request(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            }))
            .await
            .map(|_| ())
            .map_err(|s| error(&s))
    }

    async fn submit(
        &self,
        trial_id: &str,
        sweep: &str,
        spec: pb::TrialSpec,
        run: RunOptions,
    ) -> Result<Submitted, BackendError> {
        let mut client = self.host.client.clone();
        let req = pb::SubmitRequest {
            trial_id: trial_id.to_string(),
            sweep_id: sweep.to_string(),
            spec: Some(spec),
            retry: run.retry,
            stop_after_epochs: run.stop_after,
            evaluation: None,
        };
        let resp = client
            .submit(request(req))
            .await
            .map_err(|s| error(&s))?
            .into_inner();
        Ok(Submitted {
            job: resp.job.unwrap_or_default(),
            created: resp.created,
            batch_job: None,
        })
    }

    async fn watch(&self, trial_id: &str, from_seq: u64) -> Result<EventStream, BackendError> {
        let mut client = self.host.client.clone();
        // No deadline: the stream lives as long as the job runs.
        let req = tonic::Request::new(pb::WatchRequest {
            trial_id: trial_id.to_string(),
            from_seq,
        });
        let stream = client.watch(req).await.map_err(|s| error(&s))?.into_inner();
        Ok(Box::pin(stream.map(|item| item.map_err(|s| error(&s)))))
    }

    async fn get(&self, trial_id: &str) -> Result<pb::Job, BackendError> {
        let mut client = self.host.client.clone();
        let req = request(pb::GetRequest {
            trial_id: trial_id.to_string(),
        });
        Ok(client.get(req).await.map_err(|s| error(&s))?.into_inner())
    }

    async fn list(&self, sweep: &str) -> Result<Vec<pb::Job>, BackendError> {
        let mut client = self.host.client.clone();
        let mut jobs = Vec::new();
        let mut page_token = String::new();
        loop {
            let req = request(pb::ListRequest {
                sweep_id: sweep.to_string(),
                states: Vec::new(),
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
            });
            let page = client.list(req).await.map_err(|s| error(&s))?.into_inner();
            jobs.extend(page.jobs);
            if page.next_page_token.is_empty() {
                return Ok(jobs);
            }
            page_token = page.next_page_token;
        }
    }

    async fn cancel(&self, trial_id: &str) -> Result<pb::Job, BackendError> {
        let mut client = self.host.client.clone();
        let req = request(pb::CancelRequest {
            trial_id: trial_id.to_string(),
        });
        let resp = client.cancel(req).await.map_err(|s| error(&s))?;
        Ok(resp.into_inner().job.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn status_codes_map_to_what_the_scheduler_does() {
        let kind = |code| match error(&Status::new(code, "why")) {
            BackendError::Invalid(_) => "invalid",
            BackendError::Unrunnable(_) => "unrunnable",
            BackendError::Busy(_) => "busy",
            BackendError::NotFound(_) => "not_found",
            BackendError::Unavailable(_) => "unavailable",
        };
        assert_eq!(kind(Code::InvalidArgument), "invalid");
        assert_eq!(kind(Code::AlreadyExists), "invalid");
        assert_eq!(kind(Code::FailedPrecondition), "unrunnable");
        assert_eq!(kind(Code::Unauthenticated), "unrunnable");
        assert_eq!(kind(Code::PermissionDenied), "unrunnable");
        assert_eq!(kind(Code::ResourceExhausted), "busy");
        assert_eq!(kind(Code::NotFound), "not_found");
        assert_eq!(kind(Code::Unavailable), "unavailable");
        assert_eq!(kind(Code::DeadlineExceeded), "unavailable");
        assert_eq!(kind(Code::Internal), "unavailable");
        assert_eq!(
            error(&Status::invalid_argument("epochs must be at least 1")),
            BackendError::Invalid("epochs must be at least 1".into())
        );
    }
}
