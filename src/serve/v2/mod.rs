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

pub mod tensor;

use super::App;
use super::middleware::{RequestId, tag};
use super::predict::{Asked, predict};
use super::protocol_error::{ProtocolError, error};
use crate::data::ColumnKind;
use crate::model::{FeatureSchema, LoadedModel, RawValue, UnknownFields, ValidRow};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tensor::{Elements, InferRequest, OutputData, ResponseOutput, Tensor};

/// Row problems listed in one error message.
const LISTED_PROBLEMS: usize = 20;

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

fn find(app: &App, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ProtocolError> {
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

/// The value of row `row`, column `column` of a tensor, for the validator.
fn cell(tensor: &Tensor, index: usize) -> RawValue<'_> {
    match &tensor.elements {
        Elements::Numbers(v) => RawValue::Number(v[index]),
        Elements::Bools(v) => RawValue::Bool(v[index]),
        Elements::Texts(v) => RawValue::Text(&v[index]),
    }
}

/// Validates one row, collecting its problems as "row N: field: message".
fn validate_row<'a>(
    model: &LoadedModel,
    row: usize,
    fields: impl IntoIterator<Item = (&'a str, RawValue<'a>)>,
    rows: &mut Vec<ValidRow>,
    errors: &mut Vec<String>,
) {
    let mut row_errors = Vec::new();
    match model
        .validator
        .validate(fields, UnknownFields::Reject, "", &mut row_errors)
    {
        Some(valid) => rows.push(valid),
        None => errors.extend(
            row_errors
                .into_iter()
                .map(|e| format!("row {row}: {}: {}", e.field, e.message)),
        ),
    }
}

/// Turns the input tensors into validated rows.
fn rows_from_tensors(
    model: &LoadedModel,
    tensors: &[Tensor],
    max_rows: usize,
) -> Result<Vec<ValidRow>, String> {
    let too_many = |rows: usize| {
        (rows > max_rows).then(|| {
            format!(
                "inference request batch-size must be <= {max_rows} for '{}' (setting max_batch_rows), got {rows}",
                model.name()
            )
        })
    };
    let name = model.name();
    let features = &model.artifact.manifest.features;
    let feature_list = || {
        features
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let is_feature = |n: &str| features.iter().any(|f| f.name == n);
    // One [N, F] matrix, or one [N] / [N, 1] tensor per feature.
    let matrix = match tensors {
        [only] if !is_feature(&only.name) => Some(only),
        _ => None,
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    if let Some(tensor) = matrix {
        if tensor.name != "input" {
            return Err(format!(
                "unexpected inference input '{}' for model '{name}': send 'input' of shape [N, {}] (the features in this order: {}) or one tensor per feature",
                tensor.name,
                features.len(),
                feature_list()
            ));
        }
        if tensor.shape.len() != 2 || tensor.shape[1] != features.len() {
            return Err(format!(
                "unexpected shape for input 'input' for model '{name}'. Expected [-1,{}], got {:?}",
                features.len(),
                tensor.shape
            ));
        }
        if let Some(message) = too_many(tensor.shape[0]) {
            return Err(message);
        }
        let width = features.len();
        for row in 0..tensor.shape[0] {
            let fields = features
                .iter()
                .enumerate()
                .map(|(column, f)| (f.name.as_str(), cell(tensor, row * width + column)));
            validate_row(model, row, fields, &mut rows, &mut errors);
        }
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut batch = None;
        for tensor in tensors {
            if !is_feature(&tensor.name) {
                return Err(format!(
                    "unexpected inference input '{}' for model '{name}': the inputs are 'input' ([N, {}]) or one per feature: {}",
                    tensor.name,
                    features.len(),
                    feature_list()
                ));
            }
            if !seen.insert(tensor.name.as_str()) {
                return Err(format!("input '{}' is given twice", tensor.name));
            }
            let rows_here = match tensor.shape.as_slice() {
                [n] | [n, 1] => *n,
                other => {
                    return Err(format!(
                        "unexpected shape for input '{}' for model '{name}'. Expected [-1] or [-1,1], got {other:?}",
                        tensor.name
                    ));
                }
            };
            if *batch.get_or_insert(rows_here) != rows_here {
                return Err(format!(
                    "inputs disagree on the batch size: '{}' has {rows_here} rows, others {}",
                    tensor.name,
                    batch.unwrap_or(0)
                ));
            }
        }
        let missing: Vec<&str> = features
            .iter()
            .map(|f| f.name.as_str())
            .filter(|f| !seen.contains(f))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "expected {} inputs but got {} inputs for model '{name}': missing required input(s) {}",
                features.len(),
                tensors.len(),
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(message) = too_many(batch.unwrap_or(0)) {
            return Err(message);
        }
        for row in 0..batch.unwrap_or(0) {
            let fields = tensors.iter().map(|t| (t.name.as_str(), cell(t, row)));
            validate_row(model, row, fields, &mut rows, &mut errors);
        }
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(LISTED_PROBLEMS);
        let mut message = errors
            .into_iter()
            .take(LISTED_PROBLEMS)
            .collect::<Vec<_>>()
            .join("; ");
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        return Err(message);
    }
    if rows.is_empty() {
        return Err("the batch is empty: send at least one row".to_string());
    }
    Ok(rows)
}

/// Whether a parameter is `true`.
fn flag(parameters: Option<&Map<String, Value>>, name: &str) -> bool {
    parameters
        .and_then(|p| p.get(name))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The `[N, k]` classification of the probabilities: "value:index:label", best first.
fn classification(labels: &[String], probabilities: &[Vec<f64>], k: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(probabilities.len() * k);
    for row in probabilities {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &class in order.iter().take(k) {
            out.push(format!("{:.6}:{class}:{}", row[class], labels[class]));
        }
    }
    out
}

/// POST /v2/models/{name}[/versions/{version}]/infer
async fn infer(
    app: App,
    name: String,
    version: Option<String>,
    asked: Asked,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let model = match find(&app, &name, version.as_deref()) {
        Ok(model) => model,
        Err(e) => return e.into_response(),
    };
    let response = match body {
        Ok(body) => match infer_with(&app, &model, &asked, &headers, &body).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        },
        Err(rejection) => error(rejection.status(), rejection.body_text()),
    };
    tag(response, &model)
}

async fn infer_with(
    app: &App,
    model: &Arc<LoadedModel>,
    asked: &Asked,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ProtocolError> {
    let header_length = headers
        .get(tensor::HEADER_LENGTH)
        .map(|v| v.to_str().unwrap_or("not text"));
    let (json_part, binary) = tensor::split_body(body, header_length)?;
    // tritonclient sends no Content-Type: the body is read as JSON whatever it says.
    let request: InferRequest = serde_json::from_slice(json_part)
        .map_err(|e| format!("the inference request is not valid JSON for the protocol: {e}"))?;
    let tensors = tensor::decode_inputs(&request, binary)?;
    let rows = rows_from_tensors(model, &tensors, app.settings.max_batch_rows)?;
    let count = rows.len();
    let predictions = predict(app, model, rows, asked, true).await?;
    let manifest = &model.artifact.manifest;
    let labels = &manifest.labels;
    let classes = labels.len();
    let probabilities: Vec<Vec<f64>> = predictions
        .iter()
        .map(|p| p.probabilities.clone())
        .collect();
    let default_binary = flag(request.parameters.as_ref(), "binary_data_output");
    let requested: Vec<(String, Option<&Map<String, Value>>)> = match &request.outputs {
        Some(outputs) => outputs
            .iter()
            .map(|o| (o.name.clone(), o.parameters.as_ref()))
            .collect(),
        None => ["label", "label_index", "probabilities"]
            .iter()
            .map(|n| (n.to_string(), None))
            .collect(),
    };
    let mut outputs = Vec::with_capacity(requested.len());
    let mut binary_out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (output, parameters) in requested {
        if !seen.insert(output.clone()) {
            return Err(format!("output '{output}' is requested twice").into());
        }
        if !matches!(output.as_str(), "label" | "label_index" | "probabilities") {
            return Err(format!(
                "unexpected inference output '{output}' for model '{}': the outputs are label, label_index, probabilities",
                manifest.name
            )
            .into());
        }
        let k = match parameters.and_then(|p| p.get("classification")) {
            None => None,
            Some(value) => Some(value.as_u64().filter(|&k| k > 0).ok_or_else(|| {
                format!(
                    "output '{output}': classification must be a positive class count, got {value}"
                )
            })? as usize),
        };
        if k.is_some() && output != "probabilities" {
            return Err(format!(
                "output '{output}': classification applies to 'probabilities' only"
            )
            .into());
        }
        let (data, shape) = match (output.as_str(), k) {
            (_, Some(k)) => {
                let k = k.min(classes);
                (
                    OutputData::Texts(classification(labels, &probabilities, k)),
                    vec![count, k],
                )
            }
            ("label", None) => (
                OutputData::Texts(
                    predictions
                        .iter()
                        .map(|p| labels[p.class].clone())
                        .collect(),
                ),
                vec![count],
            ),
            ("label_index", None) => (
                OutputData::Int64(predictions.iter().map(|p| p.class as i64).collect()),
                vec![count],
            ),
            ("probabilities", None) => (
                OutputData::Fp64(probabilities.iter().flatten().copied().collect()),
                vec![count, classes],
            ),
            (other, None) => {
                return Err(format!("unexpected inference output '{other}'").into());
            }
        };
        let binary = parameters
            .and_then(|p| p.get("binary_data"))
            .and_then(Value::as_bool)
            .unwrap_or(default_binary);
        let mut entry = ResponseOutput {
            name: output,
            datatype: data.datatype(),
            shape,
            parameters: None,
            data: None,
        };
        if binary {
            let before = binary_out.len();
            data.write_binary(&mut binary_out);
            let mut parameters = Map::new();
            parameters.insert("binary_data_size".into(), json!(binary_out.len() - before));
            entry.parameters = Some(parameters);
        } else {
            entry.data = Some(data.to_json());
        }
        outputs.push(entry);
    }
    let mut answer = json!({
        "model_name": manifest.name,
        "model_version": model.version_label,
        "outputs": outputs,
    });
    if let Some(id) = request.id.as_ref().filter(|id| !id.is_empty()) {
        answer["id"] = json!(id);
    }
    let json_bytes = serde_json::to_vec(&answer)
        .map_err(|e| ProtocolError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if binary_out.is_empty() && !outputs.iter().any(|o| o.parameters.is_some()) {
        return Ok(([(header::CONTENT_TYPE, "application/json")], json_bytes).into_response());
    }
    let header_length = json_bytes.len();
    let mut body = json_bytes;
    body.extend_from_slice(&binary_out);
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&header_length.to_string()) {
        response.headers_mut().insert(tensor::HEADER_LENGTH, value);
    }
    Ok(response)
}

/// POST /v2/models/{name}/infer
pub async fn infer_default(
    State(app): State<App>,
    Path(name): Path<String>,
    asked: Asked,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer(app, name, None, asked, headers, body).await
}

/// POST /v2/models/{name}/versions/{version}/infer
pub async fn infer_version(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
    asked: Asked,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer(app, name, Some(version), asked, headers, body).await
}

/// POST /v2/repository/index: every model version and its state.
pub async fn repository_index(State(app): State<App>, body: Bytes) -> Response {
    let ready_only = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value.get("ready").and_then(Value::as_bool).unwrap_or(false),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not JSON: {e}"),
                );
            }
        }
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

/// POST /v2/repository/models/{name}/load: loads (again) every version of a model.
pub async fn repository_load(
    State(app): State<App>,
    Path(name): Path<String>,
    Extension(rid): Extension<RequestId>,
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

/// Unknown paths under /v2 answer in the protocol's error shape.
pub async fn not_found(request: axum::extract::Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

#[cfg(test)]
mod tests {
    use super::tensor::DataType;
    use super::*;

    #[test]
    fn classification_lists_the_best_classes_first() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let out = classification(&labels, &[vec![0.2, 0.7, 0.1]], 2);
        assert_eq!(out, ["0.700000:1:b", "0.200000:0:a"]);
    }

    #[test]
    fn datatypes_round_trip_their_names() {
        for name in ["BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES", "UINT8"] {
            assert_eq!(DataType::parse(name).map(DataType::name), Some(name));
        }
    }
}
