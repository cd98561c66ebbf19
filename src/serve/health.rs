//! Liveness and readiness probes (Kubernetes-style).

use super::state::App;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The probes' paths: always answered, with no credentials and past the in-flight limit, so an
/// orchestrator can tell a busy or locked-down server from a dead one. (`GET /` from a program,
/// KServe V1's liveness, is one too: see `middleware::is_root_liveness`.)
pub const PROBE_PATHS: [&str; 6] = [
    "/health/live",
    "/health/ready",
    "/api/liveness",
    "/api/readiness",
    "/v2/health/live",
    "/v2/health/ready",
];

/// Whether `path` is a probe's.
pub fn is_probe(path: &str) -> bool {
    PROBE_PATHS.contains(&path)
}

/// GET /health/live: the process answers.
pub async fn live() -> Response {
    Json(json!({"status": "live"})).into_response()
}

/// GET / for programs: `{"status": "alive"}`, KServe V1's liveness answer.
pub async fn alive_v1() -> Response {
    Json(json!({"status": "alive"})).into_response()
}

/// GET /health/ready: 200 when every model has a version that serves (with each model's
/// status); 503 with `Retry-After` while loading, and when the repository is empty or a model
/// cannot serve, naming each model and why ([`crate::model::readiness`]).
pub async fn ready(State(app): State<App>) -> Response {
    let readiness = app.repository.readiness(app.settings.strict_readiness);
    if readiness.is_ready() {
        return Json(readiness).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(readiness),
    )
        .into_response()
}
