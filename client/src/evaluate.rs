//! Evaluation jobs from the client's side: a trial's kept weights uploaded to a
//! host, an evaluation job submitted there under an id of its own, followed to
//! its end. The same evaluation sent to the same host again is the same job
//! (its id hashes the request and the host), so a killed `vovctl` that runs it
//! again picks the job up where it is.

use std::time::Duration;

use prost::Message;
use thiserror::Error;
use tokio_stream::StreamExt;
use vov_proto::pb;
use vov_spec::digest::Sha256Hex;

use crate::backend::grpc::request;
use crate::hosts::Host;
use crate::weights::{upload, FetchError};

/// Time between two looks at a job whose event stream broke.
const REWATCH: Duration = Duration::from_millis(500);

/// Why an evaluation could not be run to its end.
#[derive(Debug, Error)]
pub enum EvaluateError {
    /// The upload failed.
    #[error("uploading the weights: {0}")]
    Upload(#[from] FetchError),
    /// The host refused the job or could not be asked.
    #[error("{0}")]
    Call(String),
}

/// The id of evaluation `req` on the host at `url`: `e` and 16 hex digits of
/// the SHA-256 of both.
pub fn eval_id(url: &str, req: &pb::EvaluationSpec) -> String {
    let mut h = Sha256Hex::default();
    h.update(url.as_bytes());
    h.update(&[0]);
    h.update(&req.encode_to_vec());
    format!("e{}", &h.finish()[..16])
}

fn call(s: &tonic::Status) -> EvaluateError {
    EvaluateError::Call(format!("{:?}: {}", s.code(), s.message()))
}

fn settled(job: &pb::Job) -> bool {
    use pb::JobState::*;
    matches!(
        pb::JobState::try_from(job.state),
        Ok(Succeeded | Failed | Cancelled | Paused)
    )
}

/// Submits evaluation `req` as job `id`; one that failed or was cancelled
/// before is queued again, one that succeeded is returned as it is.
async fn submit(
    host: &mut Host,
    id: &str,
    req: &pb::EvaluationSpec,
) -> Result<pb::Job, EvaluateError> {
    let mut retry = false;
    loop {
        let r = pb::SubmitRequest {
            trial_id: id.to_string(),
            evaluation: Some(req.clone()),
            retry,
            ..pb::SubmitRequest::default()
        };
        let resp = host.client.submit(request(r)).await.map_err(|s| call(&s))?;
        let resp = resp.into_inner();
        let job = resp.job.unwrap_or_default();
        let again = matches!(
            pb::JobState::try_from(job.state),
            Ok(pb::JobState::Failed | pb::JobState::Cancelled)
        );
        if resp.created || !again || retry {
            return Ok(job);
        }
        retry = true;
    }
}

/// What an event says, for the one following the job (`None`: nothing to say).
fn say(event: &pb::JobEvent) -> Option<String> {
    use pb::job_event::Kind;
    match event.kind.as_ref()? {
        Kind::State(s) => Some(format!(
            "{}{}",
            vov_proto::convert::trial_state(s.state),
            if s.message.is_empty() {
                String::new()
            } else {
                format!(": {}", s.message)
            }
        )),
        Kind::Timing(phase) => Some(format!("timing {phase}")),
        Kind::Warning(w) => Some(format!("warning: {w}")),
        _ => None,
    }
}

/// Follows job `id` on `host` to its end, telling `notify` what happens;
/// returns the ended job.
async fn follow(
    host: &mut Host,
    id: &str,
    notify: &(dyn Fn(&str) + Send + Sync),
) -> Result<pb::Job, EvaluateError> {
    let mut next = 1;
    loop {
        let watch = pb::WatchRequest {
            trial_id: id.to_string(),
            from_seq: next,
        };
        if let Ok(stream) = host.client.watch(watch).await {
            let mut stream = stream.into_inner();
            while let Some(Ok(event)) = stream.next().await {
                next = event.seq + 1;
                if let Some(text) = say(&event) {
                    notify(&text);
                }
            }
        }
        let get = pb::GetRequest {
            trial_id: id.to_string(),
        };
        let job = host.client.get(request(get)).await.map_err(|s| call(&s))?;
        let job = job.into_inner();
        if settled(&job) {
            return Ok(job);
        }
        tokio::time::sleep(REWATCH).await;
    }
}

/// Uploads the weights `bytes` (whose SHA-256 `req` names) to `host`, submits
/// evaluation `req` as job `id` and follows it to its end.
pub async fn run_on(
    mut host: Host,
    id: String,
    bytes: std::sync::Arc<Vec<u8>>,
    req: pb::EvaluationSpec,
    notify: &(dyn Fn(&str) + Send + Sync),
) -> Result<pb::Job, EvaluateError> {
    notify("uploading the weights");
    upload(&mut host.client, &bytes, &req.weights_sha256).await?;
    let job = submit(&mut host, &id, &req).await?;
    if settled(&job) {
        return Ok(job);
    }
    follow(&mut host, &id, notify).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_by_host_and_request_and_repeat_for_the_same() {
        let req = pb::EvaluationSpec {
            weights_sha256: "ab".into(),
            batch1: true,
            ..Default::default()
        };
        let a = eval_id("http://a:1", &req);
        assert_eq!(a, eval_id("http://a:1", &req));
        assert_eq!(a.len(), 17);
        assert!(a.starts_with('e'));
        assert_ne!(a, eval_id("http://b:1", &req));
        let other = pb::EvaluationSpec { threads: 1, ..req };
        assert_ne!(a, eval_id("http://a:1", &other));
    }
}
