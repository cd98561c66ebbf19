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

pub(in crate::serve) mod answer;
pub(in crate::serve) mod decode;
mod infer;
pub mod outputs;
mod repository;
mod rows;
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
use serde_json::json;
use std::sync::Arc;

/// GET /v2: the server's name, version and extensions.
pub async fn server_metadata() -> Response {
    Json(json!({
        "name": SERVER_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": EXTENSIONS,
    }))
    .into_response()
}

/// The server's name in the protocol's server metadata.
pub const SERVER_NAME: &str = "mlserve";

/// The protocol extensions REST serves (gRPC serves `classification` of these).
pub const EXTENSIONS: [&str; 3] = ["binary_tensor_data", "classification", "model_repository"];

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

/// A tensor of a model's metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorMetadata {
    /// Name.
    pub name: String,
    /// The protocol's datatype.
    pub datatype: &'static str,
    /// Dimensions; -1 for any size (the batch).
    pub shape: Vec<i64>,
}

/// A model's metadata, as both transports give it (REST's JSON, gRPC's
/// `ModelMetadataResponse`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelMetadata {
    /// The model's name.
    pub name: String,
    /// Its versions that serve.
    pub versions: Vec<String>,
    /// Triton's platform name.
    pub platform: &'static str,
    /// One `input` `[-1, F]` when every feature is numeric, else one `[-1]` tensor per feature.
    pub inputs: Vec<TensorMetadata>,
    /// The outputs a request gets when it names none.
    pub outputs: Vec<TensorMetadata>,
}

fn tensor_metadata(name: &str, datatype: &'static str, shape: Vec<i64>) -> TensorMetadata {
    TensorMetadata {
        name: name.to_string(),
        datatype,
        shape,
    }
}

/// The model's metadata: inputs and outputs with types and shapes (-1: any batch size).
pub fn metadata_of(app: &App, model: &LoadedModel) -> ModelMetadata {
    let manifest = &model.artifact.manifest;
    let features = &manifest.features;
    let width = i64::try_from(features.len()).unwrap_or(i64::MAX);
    let inputs = if all_numeric(features) {
        vec![tensor_metadata("input", "FP64", vec![-1, width])]
    } else {
        features
            .iter()
            .map(|f| tensor_metadata(&f.name, feature_datatype(f), vec![-1]))
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
    ModelMetadata {
        name: manifest.name.clone(),
        versions,
        // Triton's platform names: ONNX graphs run on ONNX Runtime whoever serves them.
        platform: match manifest.backend {
            crate::model::Backend::Native => "mlserve_native",
            crate::model::Backend::Onnx => "onnxruntime_onnx",
            crate::model::Backend::Boosted => "mlserve_boosted_trees",
        },
        inputs,
        outputs: outputs_metadata(model),
    }
}

fn outputs_metadata(model: &LoadedModel) -> Vec<TensorMetadata> {
    match model.task() {
        crate::model::Task::Classification => {
            let classes = i64::try_from(model.artifact.manifest.labels.len()).unwrap_or(i64::MAX);
            vec![
                tensor_metadata("label", "BYTES", vec![-1]),
                tensor_metadata("label_index", "INT64", vec![-1]),
                tensor_metadata("probabilities", "FP64", vec![-1, classes]),
            ]
        }
        crate::model::Task::Regression => vec![tensor_metadata("prediction", "FP64", vec![-1])],
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
) -> Result<Json<ModelMetadata>, ProtocolError> {
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
