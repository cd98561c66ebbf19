//! The model repository extension: `POST /v2/repository/index`, and loading and unloading a
//! model by name (admin).

use crate::serve::middleware::RequestId;
use crate::serve::protocol_error::error;
use crate::serve::state::App;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// POST /v2/repository/index: every model version and its state.
pub async fn repository_index(State(app): State<App>, body: Bytes) -> Response {
    let ready_only = match index_request(&body) {
        Ok(ready_only) => ready_only,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let catalog = app.repository.catalog();
    let mut index = Vec::new();
    for (name, entry) in &catalog.models {
        for (version, slot) in &entry.versions {
            let ready = slot.loaded.is_some();
            if ready_only && !ready {
                continue;
            }
            index.push(json!({
                "name": name,
                "version": version.to_string(),
                "state": if ready { "READY" } else { "UNAVAILABLE" },
                "reason": slot.error.clone().unwrap_or_default(),
            }));
        }
    }
    if !ready_only {
        for name in app.repository.unloaded_models() {
            index.push(json!({"name": name, "state": "UNAVAILABLE", "reason": "unloaded"}));
        }
    }
    Json(Value::Array(index)).into_response()
}

/// Reads an index request: an empty body, or `{"ready": bool}` (other keys are left to
/// extensions of the request and ignored). The answer is whether only ready versions are listed.
fn index_request(body: &[u8]) -> Result<bool, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("expected a JSON object such as {\"ready\": true}".to_string());
    };
    match fields.get("ready") {
        None => Ok(false),
        Some(Value::Bool(ready)) => Ok(*ready),
        Some(other) => Err(format!("'ready' must be true or false, got {other}")),
    }
}

/// POST /v2/repository/models/{name}/load: loads (again) every version of a model.
pub async fn repository_load(
    State(app): State<App>,
    Path(name): Path<String>,
    rid: RequestId,
) -> Response {
    let repository = app.repository.clone();
    let target = name.clone();
    let report = tokio::task::spawn_blocking(move || repository.load_model(&target)).await;
    match report {
        Ok(Some(report)) => {
            let loaded = app
                .repository
                .catalog()
                .models
                .get(&name)
                .is_some_and(|e| e.default_model().is_some());
            if loaded {
                StatusCode::OK.into_response()
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "failed to load '{name}': {}",
                        if report.failed.is_empty() {
                            "no version loads".to_string()
                        } else {
                            report.failed.join("; ")
                        }
                    ),
                )
            }
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("failed to load '{name}', no such model in the repository"),
        ),
        Err(e) => {
            tracing::error!(request_id = rid.0.as_str(), error = %e, "load failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the load failed; the server log has the cause",
            )
        }
    }
}

/// POST /v2/repository/models/{name}/unload: stops serving a model until it is loaded again.
pub async fn repository_unload(State(app): State<App>, Path(name): Path<String>) -> Response {
    let repository = app.repository.clone();
    let target = name.clone();
    match tokio::task::spawn_blocking(move || repository.unload_model(&target)).await {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("failed to unload '{name}', no such model"),
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the unload failed; the server log has the cause",
        ),
    }
}
