//! Oversized requests are `RESOURCE_EXHAUSTED`, as gRPC specifies for a message
//! above the receiver's limit. tonic's decoder reports them as `OUT_OF_RANGE`,
//! before any handler runs, in a trailers-only response; this rewrites that
//! status (and only that one) in the response headers.

use tonic::codegen::http::{HeaderMap, HeaderValue};
use tonic::Code;

/// The start of tonic's message for a request above the decoding limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// Turns tonic's `OUT_OF_RANGE` for a request over the size limit into
/// `RESOURCE_EXHAUSTED`; leaves every other response alone.
pub(super) fn remap(headers: &mut HeaderMap) {
    let code = |c: Code| HeaderValue::from(c as i32);
    let oversized = headers.get("grpc-status") == Some(&code(Code::OutOfRange))
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.replace("%20", " ").starts_with(TOO_LARGE));
    if oversized {
        headers.insert("grpc-status", code(Code::ResourceExhausted));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers tonic sends for `status`.
    fn headers(code: Code, message: &str) -> HeaderMap {
        let response: tonic::codegen::http::Response<()> =
            tonic::Status::new(code, message).into_http();
        response.headers().clone()
    }

    #[test]
    fn only_the_decoding_limit_is_remapped() {
        let too_large = format!("{TOO_LARGE}: found 10485765 bytes, the limit is: 65536 bytes");
        let mut h = headers(Code::OutOfRange, &too_large);
        remap(&mut h);
        assert_eq!(h["grpc-status"], "8");
        let mut other = headers(Code::OutOfRange, "epoch 5 is beyond the run");
        remap(&mut other);
        assert_eq!(other["grpc-status"], "11");
        let mut ok = HeaderMap::new();
        remap(&mut ok);
        assert!(ok.get("grpc-status").is_none());
    }
}
