//! A Submit with `evaluation`: the job's spec is the uploaded weights' own (read
//! from the file's metadata), with the evaluation's data set, validation images,
//! timings and device, checked like any submitted spec.

use prost::Message;
use tonic::Status;
use vov_proto::pb;

use super::convert::{check_id, train_spec};
use super::error::ServiceError;
use super::upload::is_sha256;
use super::TrainerService;
use crate::jobs::{evaluation, NewJob};
use crate::train::weights::{self, WeightsMeta};
use crate::train::TrainError;

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(msg.into())
}

/// The metadata of the uploaded weights `sha256` names on this host.
async fn uploaded(svc: &TrainerService, sha256: &str) -> Result<WeightsMeta, ServiceError> {
    let path = svc.jobs.received_file(sha256);
    let read = tokio::task::spawn_blocking(move || {
        path.is_file()
            .then(|| weights::read_meta(&path))
            .transpose()
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    match read {
        Ok(Some(meta)) => Ok(meta),
        Ok(None) => Err(ServiceError::FailedPrecondition(format!(
            "evaluation.weights_sha256: no uploaded weights {sha256} on this host; \
             upload them with PutWeights first"
        ))),
        Err(e @ TrainError::Weights { .. }) => Err(ServiceError::FailedPrecondition(format!(
            "evaluation.weights_sha256: {e}"
        ))),
        Err(e) => Err(ServiceError::Internal(e.to_string())),
    }
}

/// The spec of an evaluation of weights trained as `meta` says.
fn spec_of(meta: &WeightsMeta, e: &pb::EvaluationSpec) -> Result<pb::TrialSpec, ServiceError> {
    let mut spec = pb::TrialSpec::from(&meta.spec.trial);
    if let Some(d) = evaluation::dataset(e).map_err(invalid)? {
        spec.dataset = d.as_str().to_string();
    }
    if e.val_limit.is_some() {
        spec.val_limit = e.val_limit;
    }
    spec.measure_batch1 = e.batch1;
    spec.measure_batch32 = e.batch32;
    spec.device = e.device;
    spec.keep_weights = String::new();
    Ok(spec)
}

/// Checks a Submit of evaluation `e` and makes its job.
pub(super) async fn new_job(
    svc: &TrainerService,
    r: pb::SubmitRequest,
    e: pb::EvaluationSpec,
) -> Result<(NewJob, pb::TrialSpec), Status> {
    if r.spec.is_some() {
        return Err(invalid("set spec or evaluation, not both").into());
    }
    if !is_sha256(&e.weights_sha256) {
        return Err(invalid(format!(
            "evaluation.weights_sha256 '{}' is not 64 lowercase hex digits",
            e.weights_sha256
        ))
        .into());
    }
    check_id("evaluation.source_trial_id", &e.source_trial_id, true)?;
    let cpus = svc.host.fingerprint.cpu_threads;
    if e.threads > cpus {
        return Err(invalid(format!(
            "evaluation.threads {} is more than the {cpus} CPUs of this host",
            e.threads
        ))
        .into());
    }
    let meta = uploaded(svc, &e.weights_sha256).await?;
    let spec_pb = spec_of(&meta, &e)?;
    let spec = train_spec(&spec_pb)?;
    let job = NewJob {
        trial_id: r.trial_id,
        sweep_id: r.sweep_id,
        spec_proto: spec_pb.encode_to_vec(),
        spec,
        retry: r.retry,
        stop_after: 0,
        evaluation: Some(e.encode_to_vec()),
    };
    Ok((job, spec_pb))
}
