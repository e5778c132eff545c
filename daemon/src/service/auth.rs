//! Bearer-token authentication for every call except health checks (which are a
//! separate service without this interceptor).

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` in constant time; lets everything
/// through when no token is configured (loopback-only daemons).
#[derive(Clone, Default)]
pub struct BearerAuth {
    token: Option<Arc<[u8]>>,
}

impl BearerAuth {
    /// Requires `token`, or nothing when `None`.
    pub fn new(token: Option<String>) -> Self {
        BearerAuth {
            token: token.map(|t| Arc::from(t.into_bytes().into_boxed_slice())),
        }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.token else {
            return Ok(req);
        };
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(t) if bool::from(t.as_bytes().ct_eq(expected)) => Ok(req),
            Some(_) => {
                tracing::warn!(peer.addr = ?req.remote_addr(), "rejected call with a wrong token");
                Err(Status::unauthenticated("wrong bearer token"))
            }
            None => Err(Status::unauthenticated(
                "missing 'authorization: Bearer <token>' metadata",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(auth: &mut BearerAuth, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        auth.call(req).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn checks_the_token() {
        let mut open = BearerAuth::new(None);
        assert!(call(&mut open, None).is_ok());
        let mut auth = BearerAuth::new(Some("s3cret-token-0123".into()));
        assert!(call(&mut auth, Some("Bearer s3cret-token-0123")).is_ok());
        assert_eq!(
            call(&mut auth, Some("Bearer nope")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            call(&mut auth, Some("Basic s3cret-token-0123")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(call(&mut auth, None), Err(tonic::Code::Unauthenticated));
    }
}
