//! The gRPC status of a refused call: the REST status a failure has on the Open Inference
//! Protocol's REST side, mapped to the gRPC code of the same meaning, with the same message.

use crate::serve::protocol_error::ProtocolError;
use axum::http::StatusCode;
use tonic::{Code, Status};

/// The gRPC code of a protocol error's HTTP status: 400 and 413 are INVALID_ARGUMENT (a
/// request the server will never take as it is), 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
/// 404 NOT_FOUND, 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE (a retry may succeed: a model
/// loading, the server at its in-flight limit), 504 DEADLINE_EXCEEDED, anything else INTERNAL.
pub fn code_of(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::GATEWAY_TIMEOUT => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

impl From<ProtocolError> for Status {
    /// The same message as REST's `{"error"}`; an internal error's message names no internals
    /// (the protocol error already holds only the request id's pointer to the log).
    fn from(error: ProtocolError) -> Self {
        Status::new(code_of(error.status), error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_the_code_of_its_meaning() {
        for (status, code) in [
            (StatusCode::BAD_REQUEST, Code::InvalidArgument),
            (StatusCode::PAYLOAD_TOO_LARGE, Code::InvalidArgument),
            (StatusCode::NOT_FOUND, Code::NotFound),
            (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
            (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
            (StatusCode::FORBIDDEN, Code::PermissionDenied),
            (StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
            (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
        ] {
            assert_eq!(code_of(status), code, "{status}");
        }
    }
}
