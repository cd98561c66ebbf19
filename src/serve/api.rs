//! The native REST API: list models, describe them, predict, reload.

use super::body::{ContentType, ModelPath, PathParams, json_bytes, parse_lenient, parse_query};
use super::explanations::ExplanationJson;
use super::predict::{Asked, predict, resolve};
use super::problem::Problem;
use super::rows::{Fields, PredictBody, PredictBodySeed};
use super::state::App;
use crate::model::{
    FieldError, LoadedModel, ModelEntry, Outcome, PredictFailure, Prediction, RawValue, ValidRow,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};
use std::sync::Arc;

/// Class probabilities by label name, in the model's label order.
struct Probabilities<'a> {
    labels: &'a [String],
    values: &'a [f64],
}

impl Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.labels.len()))?;
        for (label, value) in self.labels.iter().zip(self.values) {
            map.serialize_entry(label, value)?;
        }
        map.end()
    }
}

/// What a row's answer says about its outcome: `label` and `probabilities` for a classifier,
/// `prediction` for a model that predicts a number.
#[derive(Serialize)]
#[serde(untagged)]
enum OutcomeFields<'a> {
    Class {
        label: &'a str,
        probabilities: Probabilities<'a>,
    },
    Value {
        prediction: f64,
    },
}

impl<'a> OutcomeFields<'a> {
    fn of(model: &'a LoadedModel, prediction: &'a Prediction) -> OutcomeFields<'a> {
        match &prediction.outcome {
            Outcome::Class { probabilities, .. } => OutcomeFields::Class {
                label: prediction.label(model).unwrap_or_default(),
                probabilities: Probabilities {
                    labels: &model.artifact.manifest.labels,
                    values: probabilities,
                },
            },
            Outcome::Value(value) => OutcomeFields::Value { prediction: *value },
        }
    }
}

#[derive(Serialize)]
struct SingleAnswer<'a> {
    model: &'a str,
    version: &'a str,
    #[serde(flatten)]
    outcome: OutcomeFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contributions: Option<ExplanationJson<'a>>,
    warnings: &'a [crate::model::validate::RangeWarning],
    request_id: &'a str,
}

#[derive(Serialize)]
struct BatchItem<'a> {
    #[serde(flatten)]
    outcome: OutcomeFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contributions: Option<ExplanationJson<'a>>,
    warnings: &'a [crate::model::validate::RangeWarning],
}

fn contributions_of<'a>(
    model: &'a LoadedModel,
    prediction: &'a Prediction,
) -> Option<ExplanationJson<'a>> {
    prediction
        .explanation
        .as_ref()
        .map(|explanation| ExplanationJson { model, explanation })
}

/// The native API's query parameters of POST predict: `explain` (true or false; 1 or 0; bare
/// `?explain` is true), given once; any other parameter is refused, as a misspelt `explain`
/// would otherwise be ignored.
fn wants_explanations(query: Option<&str>) -> Result<bool, Problem> {
    let mut explain = None;
    for (name, value) in parse_query(query.unwrap_or(""))? {
        if name != "explain" {
            return Err(Problem::bad_request(format!(
                "unknown query parameter '{name}': POST predict takes only explain (the \
                 features go in the body)"
            )));
        }
        if explain.is_some() {
            return Err(Problem::bad_request(
                "query parameter explain is given twice",
            ));
        }
        explain = Some(match value.as_str() {
            "true" | "1" | "" => true,
            "false" | "0" => false,
            other => {
                return Err(Problem::bad_request(format!(
                    "query parameter explain must be true or false (or 1 or 0), got '{other}'"
                )));
            }
        });
    }
    Ok(explain.unwrap_or(false))
}

#[derive(Serialize)]
struct BatchAnswer<'a> {
    model: &'a str,
    version: &'a str,
    predictions: Vec<BatchItem<'a>>,
    request_id: &'a str,
}

fn validate_fields(
    app: &App,
    model: &LoadedModel,
    fields: &Fields<'_>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<ValidRow> {
    model.validator.validate(
        fields.iter().map(|(k, v)| (k.as_ref(), RawValue::Json(v))),
        app.settings.unknown_fields,
        prefix,
        errors,
    )
}

fn json_response(body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(error) => Problem::internal(&error).into_response(),
    }
}

fn single_answer(model: &LoadedModel, prediction: &Prediction, request_id: &str) -> Response {
    json_response(&SingleAnswer {
        model: model.name(),
        version: &model.version_label,
        outcome: OutcomeFields::of(model, prediction),
        contributions: contributions_of(model, prediction),
        warnings: &prediction.warnings,
        request_id,
    })
}

fn shape_problem(field: &str, message: &str) -> Problem {
    Problem::invalid(vec![FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }])
}

async fn predict_body(
    app: &App,
    model: Arc<LoadedModel>,
    body: PredictBody<'_>,
    asked: &Asked,
    explain: bool,
) -> Result<Response, Problem> {
    let request_id = asked.request_id.as_str();
    match body {
        PredictBody::Misshapen(message) => Err(shape_problem("", &message)),
        PredictBody::Single(fields) => {
            predict_one(
                app,
                &model,
                fields.iter().map(|(k, v)| (k.as_ref(), RawValue::Json(v))),
                asked,
                explain,
            )
            .await
        }
        PredictBody::Batch(items) if items.is_empty() => {
            Err(shape_problem("instances", "empty: send at least one row"))
        }
        PredictBody::TooManyRows(rows) => Err(PredictFailure::TooManyRows {
            rows,
            limit: app.settings.max_batch_rows,
        }
        .into()),
        PredictBody::Batch(items) => {
            let mut errors = Vec::new();
            let mut rows = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                match item {
                    Ok(fields) => rows.extend(validate_fields(
                        app,
                        &model,
                        fields,
                        &format!("instances[{index}]."),
                        &mut errors,
                    )),
                    Err(kind) => errors.push(FieldError {
                        field: format!("instances[{index}]"),
                        message: format!("expected an object of features, got {kind}"),
                    }),
                }
            }
            if !errors.is_empty() {
                return Err(Problem::invalid(errors));
            }
            let predictions = predict(app, &model, rows, asked, true, explain).await?;
            Ok(json_response(&BatchAnswer {
                model: model.name(),
                version: &model.version_label,
                predictions: predictions
                    .iter()
                    .map(|p| BatchItem {
                        outcome: OutcomeFields::of(&model, p),
                        contributions: contributions_of(&model, p),
                        warnings: &p.warnings,
                    })
                    .collect(),
                request_id,
            }))
        }
    }
}

/// Validates and predicts one row, however it came (JSON body or query string).
async fn predict_one<'a>(
    app: &App,
    model: &Arc<LoadedModel>,
    fields: impl IntoIterator<Item = (&'a str, RawValue<'a>)>,
    asked: &Asked,
    explain: bool,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    let row = model
        .validator
        .validate(fields, app.settings.unknown_fields, "", &mut errors)
        .ok_or_else(|| Problem::invalid(errors))?;
    let predictions = predict(app, model, vec![row], asked, false, explain).await?;
    let prediction = predictions
        .first()
        .ok_or_else(|| Problem::internal(&"the model answered no prediction for the row"))?;
    Ok(single_answer(model, prediction, &asked.request_id))
}

/// POST /api/models/{name}[/versions/{version}]/predict[?explain=true]: one object of features,
/// or `{"instances": […]}`; with `explain`, each answer carries its `contributions`.
pub async fn predict_post(
    State(app): State<App>,
    path: ModelPath,
    asked: Asked,
    RawQuery(query): RawQuery,
    content_type: ContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let model = resolve(&app, &path.name, path.version.as_deref())?;
    let explain = wants_explanations(query.as_deref())?;
    if explain {
        // A model that cannot explain is refused before the body is read or anything scored.
        super::predict::explainer(&model).await?;
    }
    let bytes = json_bytes(&content_type, body)?;
    let mut quoted = None;
    let seed = PredictBodySeed {
        max_rows: app.settings.max_batch_rows,
    };
    let parsed = parse_lenient(&bytes, &mut quoted, seed)?;
    predict_body(&app, model, parsed, &asked, explain).await
}

/// GET /api/models/{name}[/versions/{version}]/predict?feature=value&…
pub async fn predict_get(
    State(app): State<App>,
    path: ModelPath,
    asked: Asked,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let model = resolve(&app, &path.name, path.version.as_deref())?;
    let pairs = parse_query(query.as_deref().unwrap_or(""))?;
    let fields = pairs.iter().map(|(k, v)| (k.as_str(), RawValue::Text(v)));
    predict_one(&app, &model, fields, &asked, false).await
}

fn version_list(entry: &ModelEntry) -> Vec<Value> {
    entry
        .versions
        .iter()
        .map(|(version, slot)| {
            let mut item = json!({"version": version.to_string(), "status": slot.status()});
            if let Some(error) = &slot.error {
                item["error"] = json!(error);
            }
            item
        })
        .collect()
}

/// GET /api/models
pub async fn list_models(State(app): State<App>) -> Response {
    let catalog = app.repository.catalog();
    let models: Vec<Value> = catalog
        .models
        .iter()
        .map(|(name, entry)| {
            let default = entry.default_model();
            json!({
                "name": name,
                "status": if default.is_some() { "ready" } else { "failed" },
                "default_version": default.map(|m| m.version_label.clone()),
                "algorithm": default.map(|m| m.artifact.manifest.algorithm_name()),
                "task": default.map(|m| m.artifact.manifest.task),
                "labels": default.map(|m| m.artifact.manifest.labels.clone()),
                "target": default.and_then(|m| m.artifact.manifest.target.as_ref().map(|t| t.name.clone())),
                "accuracy": default.and_then(|m| m.artifact.manifest.accuracy()),
                "metrics": default.and_then(|m| m.artifact.manifest.metrics.clone()),
                "versions": version_list(entry),
                "links": {"self": format!("/api/models/{name}"), "predict": format!("/api/models/{name}/predict")},
            })
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

fn describe(model: &LoadedModel, entry: &ModelEntry) -> Value {
    let manifest = &model.artifact.manifest;
    let name = &manifest.name;
    let version = &model.version_label;
    let example = manifest.example_row();
    json!({
        "name": name,
        "version": version,
        "versions": version_list(entry),
        "task": manifest.task,
        "backend": manifest.backend,
        "created_at": manifest.created_at,
        "labels": manifest.labels,
        "target": manifest.target,
        "features": manifest.features,
        "example": example,
        "metrics": manifest.metrics,
        "training": manifest.training,
        "imported": manifest.imported,
        "explanations": match model.explanation_plan() {
            Ok(plan) => json!({"method": plan.method.name(), "unit": plan.unit.name(), "row_weight": plan.row_weight}),
            Err(reason) => json!({"unavailable": reason}),
        },
        "links": {
            "predict": format!("/api/models/{name}/versions/{version}/predict"),
            "report": format!("/api/models/{name}/versions/{version}/report"),
        },
    })
}

/// GET /api/models/{name}[/versions/{version}]: the schema, examples, metrics and versions.
pub async fn model_info(State(app): State<App>, path: ModelPath) -> Result<Response, Problem> {
    let catalog = app.repository.catalog();
    let model = catalog.resolve(&path.name, path.version.as_deref())?;
    super::middleware::answered_by(&model);
    // resolve() found the entry, so it is there.
    let entry = catalog.models.get(&path.name).cloned().unwrap_or_default();
    Ok(Json(describe(&model, &entry)).into_response())
}

/// GET /api/models/{name}/versions/{version}/report: the model card.
pub async fn model_report(
    State(app): State<App>,
    PathParams((name, version)): PathParams<(String, String)>,
) -> Result<Response, Problem> {
    let model = resolve(&app, &name, Some(&version))?;
    let html = tokio::fs::read_to_string(model.artifact.dir.join("report.html"))
        .await
        .map_err(|_| {
            Problem::not_found(format!(
                "model '{name}' version {version} has no model card"
            ))
        })?;
    Ok(Html(html).into_response())
}

/// POST /api/models/{name}/reload: rescans the model's folder now.
pub async fn reload_model(
    State(app): State<App>,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    let repository = app.repository.clone();
    let target = name.clone();
    let report = tokio::task::spawn_blocking(move || repository.reload_model(&target))
        .await
        .map_err(|error| Problem::internal(&error))?
        .ok_or_else(|| {
            Problem::not_found(format!("no model folder named '{name}' in the repository"))
        })?;
    let catalog = app.repository.catalog();
    let versions = catalog
        .models
        .get(&name)
        .map(version_list)
        .unwrap_or_default();
    Ok(Json(json!({"model": name, "report": report, "versions": versions})).into_response())
}
