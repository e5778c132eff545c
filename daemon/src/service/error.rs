//! The service's errors and their one mapping to gRPC status codes.

use thiserror::Error;
use tonic::{Code, Status};

use crate::jobs::JobError;

/// Why a request failed.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// A field of the request is invalid; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is valid but this host can never run it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A check this call made could not finish (its blocking task panicked).
    #[error("{0}")]
    Internal(String),
    /// The job layer refused or failed.
    #[error(transparent)]
    Jobs(#[from] JobError),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let code = match &e {
            ServiceError::InvalidArgument(_) => Code::InvalidArgument,
            ServiceError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServiceError::Internal(_) => Code::Internal,
            ServiceError::Jobs(j) => match j {
                JobError::NotFound(_) => Code::NotFound,
                JobError::Conflict(_) => Code::AlreadyExists,
                JobError::QueueFull(_) => Code::ResourceExhausted,
                JobError::Draining | JobError::Stopped => Code::Unavailable,
                JobError::NotEnded(..) => Code::FailedPrecondition,
                JobError::Store(_) | JobError::Internal(_) => Code::Internal,
            },
        };
        Status::new(code, e.to_string())
    }
}

impl From<JobError> for Status {
    fn from(e: JobError) -> Status {
        ServiceError::Jobs(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let s: Status = JobError::Conflict("t".into()).into();
        assert_eq!(s.code(), Code::AlreadyExists);
        assert!(s.message().contains("different spec"));
        let s: Status = ServiceError::FailedPrecondition("no GPU".into()).into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        let s: Status = JobError::Draining.into();
        assert_eq!(s.code(), Code::Unavailable);
    }
}
