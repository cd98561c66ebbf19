//! The Open Inference Protocol (KServe V2 / Triton) over REST, for every model: health,
//! server and model metadata, inference with JSON or binary tensors (the binary tensor data
//! extension), the classification extension, and the model repository extension.
//!
//! A model takes either one `input` tensor of shape `[N, F]` (the features in schema order;
//! numbers, or BYTES for models with text features, each cell parsed by its feature's type) or
//! one tensor per feature named after it, of shape `[N]` or `[N, 1]`. A classifier answers
//! `label` (BYTES `[N]`), `label_index` (INT64 `[N]`) and `probabilities` (FP64 `[N, C]`,
//! classes in the order of the model's labels); a model that predicts a number answers
//! `prediction` (FP64 `[N]`, in the training target's unit). Errors are `{"error": "…"}`: 400 for a bad request, 404
//! for an unknown model, 503 for one that is not loaded.

mod decode;
mod infer;
pub mod outputs;
mod repository;
pub mod tensor;

pub use infer::infer;
pub use repository::{repository_index, repository_load, repository_unload};

use super::protocol_error::{ProtocolError, error};
use super::state::App;
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
    Ok(crate::serve::predict::resolve(app, name, version)?)
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
fn metadata_of(app: &App, model: &LoadedModel) -> Value {
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
            crate::model::Backend::Boosted => "mlserve_boosted_trees",
        },
        "inputs": inputs,
        "outputs": outputs_metadata(model),
    })
}

fn outputs_metadata(model: &LoadedModel) -> Value {
    match model.task() {
        crate::model::Task::Classification => json!([
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "label_index", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64",
             "shape": [-1, model.artifact.manifest.labels.len()]},
        ]),
        crate::model::Task::Regression => json!([
            {"name": "prediction", "datatype": "FP64", "shape": [-1]},
        ]),
    }
}

/// The model a V2 path names: `{name}`, with `{version}` when the route pins one. An
/// undecodable path is the protocol's 400.
pub struct ModelPath {
    /// The model's name.
    pub name: String,
    /// The version the path pins, if any.
    pub version: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ModelPath {
    type Rejection = ProtocolError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Path(mut params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    ProtocolError::new(
                        StatusCode::BAD_REQUEST,
                        format!("the path cannot be decoded: {}", rejection.body_text()),
                    )
                })?;
        Ok(ModelPath {
            name: params.remove("name").unwrap_or_default(),
            version: params.remove("version"),
        })
    }
}

/// GET /v2/models/{name}[/versions/{version}]: inputs and outputs with datatypes and shapes.
pub async fn model_metadata(
    State(app): State<App>,
    path: ModelPath,
) -> Result<Json<Value>, ProtocolError> {
    let model = find(&app, &path.name, path.version.as_deref())?;
    Ok(Json(metadata_of(&app, &model)))
}

/// GET /v2/models/{name}[/versions/{version}]/ready: 200 with `{"name", "ready": true}`; a
/// model that is not loaded is the protocol's "false", a 4xx (400).
pub async fn model_ready(State(app): State<App>, path: ModelPath) -> Response {
    let name = &path.name;
    match find(&app, name, path.version.as_deref()) {
        Ok(_) => Json(json!({"name": name, "ready": true})).into_response(),
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => (
            StatusCode::BAD_REQUEST,
            Json(json!({"name": name, "ready": false, "error": e.message})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Unknown paths under /v2 answer in the protocol's error shape.
pub async fn not_found(request: axum::extract::Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}
