//! RFC 9457 problem details: the one error shape of the native API.

use crate::model::{FieldError, PredictFailure};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer: `application/problem+json` with every field problem listed. Kept small
/// (it travels in every handler's `Result`); the body is assembled in [`IntoResponse`].
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status code.
    pub status: StatusCode,
    /// What went wrong in this case, for a person.
    pub detail: String,
    /// Every field problem, for a program.
    pub errors: Vec<FieldError>,
    /// The request id, to find the request in the logs.
    pub request_id: Option<Box<str>>,
    retry_after: Option<u32>,
    /// What went wrong inside, for the log only (never the body).
    cause: Option<Box<str>>,
}

/// The wire form of a problem.
#[derive(Serialize)]
struct ProblemBody<'a> {
    /// `about:blank`: the status code says what kind of problem it is.
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Problem {
    /// A problem with a status and a detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
            retry_after: None,
            cause: None,
        }
    }

    /// 400: the body or query cannot be parsed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 422 with the field problems.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!(
                "1 problem with the input: {}: {}",
                errors[0].field, errors[0].message
            ),
            n => format!("{n} problems with the input; see errors"),
        };
        Problem {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
        }
    }

    /// 503 with a Retry-After header.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u32) -> Self {
        Problem {
            retry_after: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    /// 429 with a Retry-After header.
    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u32) -> Self {
        Problem {
            retry_after: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    /// 500: logs the cause and tells the client only that it happened.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let mut problem = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an internal error occurred; the request id finds it in the server log",
        );
        // Logged once, when answered, with the request id the client is shown.
        problem.cause = Some(cause.to_string().into());
        problem
    }

    /// Attaches the request id.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

/// The reason phrase of RFC 9110, which renamed 413 and 422.
fn reason_phrase(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Content Too Large",
        StatusCode::UNPROCESSABLE_ENTITY => "Unprocessable Content",
        other => other.canonical_reason().unwrap_or("Error"),
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        // A problem answered inside a request carries its id without the handler passing it.
        let request_id = self
            .request_id
            .map(String::from)
            .or_else(super::request_scope::current_request_id);
        if let Some(cause) = &self.cause {
            tracing::error!(request_id = request_id.as_deref().unwrap_or(""), %cause, "internal error");
        }
        let body = serde_json::to_vec(&ProblemBody {
            kind: "about:blank",
            title: reason_phrase(status),
            status: status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            request_id: request_id.as_deref(),
        })
        .unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl Problem {
    /// The answer in the error shape of the route asked: `{"error": detail}` under /v1 and /v2
    /// (what Triton's and KServe's clients read), problem details elsewhere; the status and
    /// `Retry-After` are the same either way. For refusals made before a route's handler runs
    /// (credentials, rate and load limits, the timeout).
    pub fn answer_for(self, path: &str) -> Response {
        if !super::protocol_error::is_protocol_path(path) {
            return self.into_response();
        }
        let retry_after = self.retry_after;
        let mut response =
            super::protocol_error::ProtocolError::new(self.status, self.detail).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<PredictFailure> for Problem {
    /// The native API's answer to a failed prediction request.
    fn from(failure: PredictFailure) -> Self {
        match failure {
            PredictFailure::UnknownModel { .. } | PredictFailure::UnknownVersion { .. } => {
                Problem::not_found(failure.to_string())
            }
            PredictFailure::NotLoaded { detail, .. } => Problem::unavailable(detail, 5),
            PredictFailure::Invalid(errors) => Problem::invalid(errors),
            PredictFailure::TooManyRows { .. } | PredictFailure::TooManyExplained { .. } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, failure.to_string())
            }
            PredictFailure::CannotExplain(reason) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, reason)
            }
            PredictFailure::Internal(cause) => Problem::internal(&cause),
        }
    }
}
