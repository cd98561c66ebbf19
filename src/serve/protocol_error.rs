//! The error shape of the Open Inference Protocol (V2) and KServe V1: a status and
//! `{"error": message}`, and how a failed prediction request maps to it.

use crate::model::PredictFailure;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Row problems listed in one error message.
pub const LISTED_PROBLEMS: usize = 20;

/// A protocol error: a status and `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ProtocolError::new(status, message).into_response()
}

/// Whether `path` belongs to a protocol whose errors are `{"error": "…"}` (KServe V1 and the
/// Open Inference Protocol), rather than problem details.
pub fn is_protocol_path(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/v2/")
}

/// A protocol error before it becomes a response (small, for `Result`s).
#[derive(Debug, Clone)]
pub struct ProtocolError {
    /// The status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl From<String> for ProtocolError {
    /// A client error: 400.
    fn from(message: String) -> Self {
        ProtocolError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl ProtocolError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ProtocolError {
            status,
            message: message.into(),
        }
    }
}

impl From<PredictFailure> for ProtocolError {
    /// The protocol's answer to a failed prediction request: its client errors are 400 (a 422
    /// of the native API is one of them), with every row problem in the message.
    fn from(failure: PredictFailure) -> Self {
        let status = match &failure {
            PredictFailure::UnknownModel { .. } | PredictFailure::UnknownVersion { .. } => {
                StatusCode::NOT_FOUND
            }
            PredictFailure::NotLoaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PredictFailure::Invalid(_) | PredictFailure::CannotExplain(_) => {
                StatusCode::BAD_REQUEST
            }
            PredictFailure::TooManyRows { .. } | PredictFailure::TooManyExplained { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            PredictFailure::Internal(cause) => {
                let request_id = super::request_scope::current_request_id().unwrap_or_default();
                tracing::error!(%request_id, %cause, "internal error");
                return ProtocolError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an internal error occurred; the request id finds it in the server log",
                );
            }
        };
        let message = match &failure {
            PredictFailure::Invalid(errors) => errors
                .iter()
                .take(LISTED_PROBLEMS)
                .map(|e| {
                    if e.field.is_empty() {
                        e.message.clone()
                    } else {
                        format!("{}: {}", e.field, e.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        ProtocolError::new(status, message)
    }
}

impl IntoResponse for ProtocolError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
