//! The Open Inference Protocol (KServe V2 / Triton) over REST, for every model: health,
//! server and model metadata, inference with JSON or binary tensors (the binary tensor data
//! extension), the classification extension, and the model repository extension.
//!
//! A model takes either one `input` tensor of shape `[N, F]` (the features in schema order;
//! numbers, or BYTES for models with text features, each cell parsed by its feature's type) or
//! one tensor per feature named after it, of shape `[N]` or `[N, 1]`. It answers `label`
//! (BYTES `[N]`), `label_index` (INT64 `[N]`) and `probabilities` (FP64 `[N, C]`, classes in
//! the order of the model's labels). Errors are `{"error": "…"}`: 400 for a bad request, 404
//! for an unknown model, 503 for one that is not loaded.

mod decode;
mod infer;
pub mod outputs;
mod repository;
pub mod tensor;

pub use infer::{infer_default, infer_version};
pub use repository::{repository_index, repository_load, repository_unload};

use super::App;
use super::middleware::tag;
use super::protocol_error::{ProtocolError, error};
use crate::data::ColumnKind;
use crate::model::{FeatureSchema, LoadedModel};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// GET /v2: the server's name, version and extensions.
pub async fn server_metadata() -> Response {
    Json(json!({
        "name": "mlserve",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "classification", "model_repository"],
    }))
    .into_response()
}

/// GET /v2/health/live: 200 with `{"live": true}` (the protocol asks only for the status code;
/// KServe's own client and server use that body).
pub async fn live() -> Response {
    Json(json!({"live": true})).into_response()
}

/// GET /v2/health/ready: 200 with `{"ready": true}` when every model has a version that serves
/// (the judgement of `/health/ready`), otherwise 400 (the protocol's "false" is a 4xx, and
/// Triton answers 400) with `{"ready": false, "error": why}` (KServe's client shows `error`).
pub async fn ready(State(app): State<App>) -> Response {
    let readiness = app.repository.readiness(app.settings.strict_readiness);
    match readiness.detail {
        None => Json(json!({"ready": true})).into_response(),
        Some(detail) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ready": false, "error": detail})),
        )
            .into_response(),
    }
}

pub(super) fn find(
    app: &App,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<LoadedModel>, ProtocolError> {
    Ok(app.repository.catalog().resolve(name, version)?)
}

/// Whether every feature is a number, an integer or a boolean (then `input` is FP64).
fn all_numeric(features: &[FeatureSchema]) -> bool {
    features.iter().all(|f| {
        matches!(
            f.kind,
            ColumnKind::Number | ColumnKind::Integer | ColumnKind::Boolean
        )
    })
}

fn feature_datatype(feature: &FeatureSchema) -> &'static str {
    match feature.kind {
        ColumnKind::Number => "FP64",
        ColumnKind::Integer => "INT64",
        ColumnKind::Boolean => "BOOL",
        _ => "BYTES",
    }
}

/// The model's metadata: inputs and outputs with types and shapes (-1: any batch size).
fn model_metadata(app: &App, model: &LoadedModel) -> Value {
    let manifest = &model.artifact.manifest;
    let features = &manifest.features;
    let inputs: Vec<Value> = if all_numeric(features) {
        vec![json!({"name": "input", "datatype": "FP64", "shape": [-1, features.len()]})]
    } else {
        features
            .iter()
            .map(|f| json!({"name": f.name, "datatype": feature_datatype(f), "shape": [-1]}))
            .collect()
    };
    let versions: Vec<String> = app
        .repository
        .catalog()
        .models
        .get(model.name())
        .map(|entry| {
            entry
                .versions
                .iter()
                .filter(|(_, slot)| slot.loaded.is_some())
                .map(|(v, _)| v.to_string())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": manifest.name,
        "versions": versions,
        // Triton's platform names: ONNX graphs run on ONNX Runtime whoever serves them.
        "platform": match manifest.backend {
            crate::model::Backend::Native => "mlserve_native",
            crate::model::Backend::Onnx => "onnxruntime_onnx",
        },
        "inputs": inputs,
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "label_index", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, manifest.labels.len()]},
        ],
    })
}

/// GET /v2/models/{name}
pub async fn model_metadata_default(State(app): State<App>, Path(name): Path<String>) -> Response {
    match find(&app, &name, None) {
        Ok(model) => tag(Json(model_metadata(&app, &model)).into_response(), &model),
        Err(e) => e.into_response(),
    }
}

/// GET /v2/models/{name}/versions/{version}
pub async fn model_metadata_version(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    match find(&app, &name, Some(&version)) {
        Ok(model) => tag(Json(model_metadata(&app, &model)).into_response(), &model),
        Err(e) => e.into_response(),
    }
}

fn model_ready(app: &App, name: &str, version: Option<&str>) -> Response {
    match find(app, name, version) {
        Ok(model) => tag(
            Json(json!({"name": name, "ready": true})).into_response(),
            &model,
        ),
        // Not loaded: the protocol's "false" is a 4xx.
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => (
            StatusCode::BAD_REQUEST,
            Json(json!({"name": name, "ready": false, "error": e.message})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// GET /v2/models/{name}/ready
pub async fn model_ready_default(State(app): State<App>, Path(name): Path<String>) -> Response {
    model_ready(&app, &name, None)
}

/// GET /v2/models/{name}/versions/{version}/ready
pub async fn model_ready_version(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    model_ready(&app, &name, Some(&version))
}

/// Unknown paths under /v2 answer in the protocol's error shape.
pub async fn not_found(request: axum::extract::Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}
