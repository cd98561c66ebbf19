//! What every gRPC call gets that REST's middleware gives a request: the request id, the
//! in-flight limit and the credentials (decided by admission, `admit.rs`, before the message
//! is read, and handed over here in [`Admitted`]), the request timeout,
//! `mlserve_grpc_requests_total` and `mlserve_grpc_request_duration_seconds`, and one access
//! log line; the request id is answered in the response's metadata either way.

use super::status::code_of;
use crate::serve::auth::Denied;
use crate::serve::predict::Asked;
use crate::serve::request_scope::{ModelTag, REQUEST, RequestScope};
use crate::serve::state::App;
use axum::http::StatusCode;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};

/// The metadata key of the request id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// What admission decided of a call, in its extensions.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The request id.
    pub id: String,
    /// When the call arrived.
    pub started: Instant,
    /// The key or user that asked, when auth is on.
    pub caller: Option<Arc<str>>,
}

/// Runs one admitted call of `rpc` (the method's name, for the metrics and the log): `handler`
/// gets who asked and the message, within the request timeout.
pub async fn call<T, R, F, Fut>(
    app: &App,
    rpc: &'static str,
    request: Request<T>,
    handler: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Asked, T) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let Some(admitted) = request.extensions().get::<Admitted>().cloned() else {
        // Every route passes admission (grpc::routes): a call without it is a server fault,
        // never let through unchecked.
        return Err(Status::internal("the call was not admitted"));
    };
    let Admitted {
        id,
        started,
        caller,
    } = admitted;
    let scope = RequestScope {
        id: id.clone(),
        started,
        answered_by: std::sync::OnceLock::new(),
    };
    let asked = Asked {
        request_id: id.clone(),
        started,
        caller,
    };
    let timeout = app.settings.request_timeout();
    let answered = REQUEST.scope(scope, async {
        let outcome = tokio::time::timeout(timeout, handler(asked, request.into_inner()))
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "the request took longer than {:.1} s and was stopped (setting request_timeout_secs)",
                    timeout.as_secs_f64()
                )))
            });
        let answered_by = REQUEST.with(|scope| scope.answered_by.get().cloned());
        (outcome, answered_by)
    });
    let (outcome, answered_by) = answered.await;
    let mut outcome = outcome.map(Response::new);
    let code = outcome.as_ref().map_or_else(Status::code, |_| Code::Ok);
    if let Ok(value) = MetadataValue::try_from(id.as_str()) {
        match &mut outcome {
            Ok(response) => response.metadata_mut().insert(REQUEST_ID, value),
            Err(status) => status.metadata_mut().insert(REQUEST_ID, value),
        };
    }
    record(rpc, code, answered_by.as_ref(), &id, started);
    outcome
}

/// The status of a refused credential: the same metadata keys as REST's headers
/// (`authorization`, `x-api-key`); a rate-limited call says in `retry-after` metadata when to
/// come back, as REST's Retry-After does.
pub fn denied(denied: Denied) -> Status {
    match denied {
        Denied::Unauthenticated(detail) => Status::new(code_of(StatusCode::UNAUTHORIZED), detail),
        Denied::Forbidden(detail) => Status::permission_denied(detail),
        Denied::RateLimited(detail, retry_after) => {
            let mut status = Status::resource_exhausted(detail);
            status
                .metadata_mut()
                .insert("retry-after", MetadataValue::from(retry_after));
            status
        }
    }
}

/// The call's metrics and access log line.
pub fn record(rpc: &'static str, code: Code, tag: Option<&ModelTag>, id: &str, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let (model, version) = tag.map_or(("", ""), |t| (t.model.as_str(), t.version.as_str()));
    metrics::counter!(
        "mlserve_grpc_requests_total",
        "method" => rpc,
        "code" => code_name(code),
        "model" => model.to_string(),
        "version" => version.to_string(),
    )
    .increment(1);
    metrics::histogram!("mlserve_grpc_request_duration_seconds", "method" => rpc).record(seconds);
    tracing::info!(
        target: "mlserve::access",
        request_id = id,
        protocol = "grpc",
        method = rpc,
        model,
        version,
        code = code_name(code),
        latency_ms = (seconds * 1e6).round() / 1e3,
        "request"
    );
}

/// The gRPC name of a code, as `grpc-status` documents them (OK, INVALID_ARGUMENT, …).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
