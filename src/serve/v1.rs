//! KServe's V1 protocol: `GET /v1/models`, `GET /v1/models/{name}` and
//! `POST /v1/models/{name}:predict` with `{"instances": […]}` answered by
//! `{"predictions": […]}` (the labels). An instance is an object of features by name, or an
//! array of the feature values in schema order. Errors are `{"error": "…"}`.

use super::predict::{Asked, predict as predict_rows};
use super::protocol_error::{ProtocolError, error};
use super::state::App;
use crate::model::{FieldError, LoadedModel, PredictFailure, RawValue, ValidRow};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

fn find(app: &App, name: &str) -> Result<Arc<LoadedModel>, ProtocolError> {
    // KServe's own words for these two, which its clients show.
    super::predict::resolve(app, name, None).map_err(|failure| match failure {
        PredictFailure::UnknownModel { .. } => ProtocolError::new(
            StatusCode::NOT_FOUND,
            format!("Model with name {name} does not exist."),
        ),
        _ => ProtocolError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Model with name {name} is not ready."),
        ),
    })
}

/// GET /v1/models
pub async fn list(State(app): State<App>) -> Response {
    let names: Vec<String> = app.repository.catalog().models.keys().cloned().collect();
    Json(json!({ "models": names })).into_response()
}

/// The methods a `/v1/models/…` path takes: the model's status, or its `:verb`. One axum route
/// serves both (the verb shares the path segment with the name), so `Allow` is chosen here.
pub fn allowed_methods(path: &str) -> &'static str {
    let segment = path.rsplit('/').next().unwrap_or_default();
    if segment.contains(':') {
        "POST"
    } else {
        "GET,HEAD"
    }
}

/// 405 with the `Allow` of the path.
fn method_not_allowed(method: &str, path: &str, hint: &str) -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {path}{hint}"),
    );
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static(allowed_methods(path)),
    );
    response
}

/// GET /v1/models/{name}
pub async fn status(State(app): State<App>, Path(name): Path<String>) -> Response {
    if name.contains(':') {
        let path = format!("/v1/models/{name}");
        return method_not_allowed("GET", &path, ": send POST");
    }
    match find(&app, &name) {
        Ok(_) => Json(json!({"name": name, "ready": true})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// POST /v1/models/{name}:predict (the verb shares the path segment with the name).
pub async fn action(
    State(app): State<App>,
    Path(segment): Path<String>,
    asked: Asked,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let Some((name, verb)) = segment.rsplit_once(':') else {
        let path = format!("/v1/models/{segment}");
        return method_not_allowed("POST", &path, &format!(": use {path}:predict"));
    };
    match verb {
        "predict" => predict(app, name, asked, &body, false)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        "explain" => predict(app, name, asked, &body, true)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        other => error(
            StatusCode::NOT_FOUND,
            format!("unknown verb ':{other}': use :predict or :explain"),
        ),
    }
}

fn instance_row(
    model: &LoadedModel,
    unknown: crate::model::UnknownFields,
    index: usize,
    instance: &Value,
    errors: &mut Vec<FieldError>,
) -> Option<ValidRow> {
    let features = &model.artifact.manifest.features;
    let prefix = format!("instances[{index}].");
    match instance {
        Value::Object(fields) => model.validator.validate(
            fields.iter().map(|(k, v)| (k.as_str(), RawValue::Json(v))),
            unknown,
            &prefix,
            errors,
        ),
        Value::Array(values) if values.len() == features.len() => model.validator.validate(
            features
                .iter()
                .zip(values)
                .map(|(f, v)| (f.name.as_str(), RawValue::Json(v))),
            unknown,
            &prefix,
            errors,
        ),
        Value::Array(values) => {
            errors.push(FieldError {
                field: format!("instances[{index}]"),
                message: format!(
                    "expected {} values in schema order, got {}",
                    features.len(),
                    values.len()
                ),
            });
            None
        }
        _ => {
            errors.push(FieldError {
                field: format!("instances[{index}]"),
                message: "expected an object of features or an array of values".to_string(),
            });
            None
        }
    }
}

/// `:predict`, or with `explain` `:explain`: `{"explanations": [...]}`, one native
/// contributions object per instance (see `serve::explanations`).
async fn predict(
    app: App,
    name: &str,
    asked: Asked,
    body: &[u8],
    explain: bool,
) -> Result<Response, ProtocolError> {
    let model = find(&app, name)?;
    if explain {
        super::predict::explainer(&model).await?;
    }
    let bad_request = |message: String| ProtocolError::new(StatusCode::BAD_REQUEST, message);
    super::body::refuse_duplicate_keys(body).map_err(bad_request)?;
    // Bare NaN (Python's json.dumps of a missing value) is read as the string "NaN", which a
    // nullable feature takes as missing, as the native API does.
    let parsed: Value = super::body::from_slice_lenient(body)
        .map_err(|e| bad_request(format!("the body is not valid JSON: {e}")))?;
    let instances = match parsed.get("instances").or_else(|| parsed.get("inputs")) {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(bad_request(
                "Expected \"instances\" to be a non-empty list".to_string(),
            ));
        }
    };
    if instances.len() > app.settings.max_batch_rows {
        return Err(PredictFailure::TooManyRows {
            rows: instances.len(),
            limit: app.settings.max_batch_rows,
        }
        .into());
    }
    let mut errors = Vec::new();
    let rows: Vec<ValidRow> = instances
        .iter()
        .enumerate()
        .filter_map(|(index, instance)| {
            instance_row(
                &model,
                app.settings.unknown_fields,
                index,
                instance,
                &mut errors,
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(PredictFailure::Invalid(errors).into());
    }
    let predictions = predict_rows(&app, &model, rows, &asked, true, explain).await?;
    if explain {
        let explanations: Vec<_> = predictions
            .iter()
            .filter_map(|p| p.explanation.as_ref())
            .map(|explanation| super::explanations::ExplanationJson {
                model: &model,
                explanation,
            })
            .collect();
        return Ok(Json(json!({ "explanations": explanations })).into_response());
    }
    // KServe's V1 answers the model's `predict`: a label for a classifier, the value for a
    // regressor.
    let answer: Vec<Value> = predictions
        .iter()
        .map(|p| match p.label(&model) {
            Some(label) => Value::from(label),
            None => Value::from(p.outcome.value().unwrap_or(f64::NAN)),
        })
        .collect();
    Ok(Json(json!({ "predictions": answer })).into_response())
}
