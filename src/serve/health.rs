//! Liveness and readiness probes (Kubernetes-style).

use super::App;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// GET /health/live: the process answers.
pub async fn live() -> Response {
    Json(json!({"status": "live"})).into_response()
}

/// GET /health/ready: 200 once the repository has been loaded, with each model's status;
/// 503 (with Retry-After) before.
pub async fn ready(State(app): State<App>) -> Response {
    if !app.repository.is_loaded() {
        let body = Json(json!({"status": "loading", "detail": "models are still loading"}));
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            body,
        )
            .into_response();
    }
    let catalog = app.repository.catalog();
    let models: serde_json::Map<String, serde_json::Value> = catalog
        .models
        .iter()
        .map(|(name, entry)| {
            let status = match entry.default_model() {
                Some(model) => json!({"status": "ready", "version": model.version_label}),
                None => json!({"status": "failed"}),
            };
            (name.clone(), status)
        })
        .collect();
    Json(json!({"status": "ready", "models": models})).into_response()
}
