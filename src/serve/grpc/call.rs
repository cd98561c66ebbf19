//! What every gRPC call gets that REST's middleware gives a request: a request id (the
//! caller's `x-request-id` metadata when plain, else a new UUID v7, answered in the response's
//! metadata either way), the in-flight limit shared with REST, credentials from metadata with
//! the same roles and rate limits, the request timeout, `mlserve_grpc_requests_total` and
//! `mlserve_grpc_request_duration_seconds`, and one access log line.

use super::status::code_of;
use crate::serve::auth::{self, Access, Denied};
use crate::serve::middleware::plain_request_id;
use crate::serve::predict::Asked;
use crate::serve::request_scope::{ModelTag, REQUEST, RequestScope};
use crate::serve::state::App;
use axum::http::StatusCode;
use std::future::Future;
use std::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};

/// The metadata key of the request id, both ways.
const REQUEST_ID: &str = "x-request-id";

/// Runs one call of `rpc` (the method's name, for the metrics and the log) that needs
/// `access`: `handler` gets who asked and the message, within the request timeout.
pub async fn call<T, R, F, Fut>(
    app: &App,
    rpc: &'static str,
    access: Access,
    request: Request<T>,
    handler: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Asked, T) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let started = Instant::now();
    let id = request
        .metadata()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .and_then(plain_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let scope = RequestScope {
        id: id.clone(),
        answered_by: std::sync::OnceLock::new(),
    };
    let answered = REQUEST.scope(scope, async {
        let outcome = admitted(app, access, &id, started, request, handler).await;
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

/// The call past the in-flight limit, its credentials and the timeout.
async fn admitted<T, R, F, Fut>(
    app: &App,
    access: Access,
    id: &str,
    started: Instant,
    request: Request<T>,
    handler: F,
) -> Result<R, Status>
where
    F: FnOnce(Asked, T) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    // Probes are never shed nor asked for credentials, as on REST.
    let _slot = match access {
        Access::Open => None,
        _ => Some(auth::take_slot(app).map_err(Status::unavailable)?),
    };
    let caller = match (&app.auth, access) {
        (Some(state), Access::Predict | Access::Admin) => {
            let headers = request.metadata().clone().into_headers();
            let principal = auth::admit(state, &headers, false, access, id, "grpc")
                .await
                .map_err(denied)?;
            Some(principal.name)
        }
        _ => None,
    };
    let asked = Asked {
        request_id: id.to_string(),
        started,
        caller,
    };
    let timeout = app.settings.request_timeout();
    tokio::time::timeout(timeout, handler(asked, request.into_inner()))
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "the request took longer than {:.1} s and was stopped (setting request_timeout_secs)",
                timeout.as_secs_f64()
            ))
        })?
}

fn denied(denied: Denied) -> Status {
    match denied {
        // The same metadata keys as REST's headers: `authorization`, `x-api-key`.
        Denied::Unauthenticated(detail) => Status::new(code_of(StatusCode::UNAUTHORIZED), detail),
        Denied::Forbidden(detail) => Status::permission_denied(detail),
        Denied::RateLimited(detail, _) => Status::resource_exhausted(detail),
    }
}

/// The call's metrics and access log line.
fn record(rpc: &'static str, code: Code, tag: Option<&ModelTag>, id: &str, started: Instant) {
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
fn code_name(code: Code) -> &'static str {
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
