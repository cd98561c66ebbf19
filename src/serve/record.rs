//! Hands answered predictions to the prediction log (see [`crate::store`]), off the request
//! path: building the records is all a request pays.

use super::App;
use super::api::Prediction;
use super::middleware::{Caller, RequestId, RequestStart};
use crate::data::ColumnKind;
use crate::model::{FeatureSchema, FeatureValue, LoadedModel};
use crate::store::PredictionRecord;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Who asked and when: what the log needs besides the prediction.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The request id.
    pub request_id: String,
    /// When the request arrived.
    pub started: Instant,
    /// The key or user that asked, when auth is on.
    pub caller: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Asked {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let extensions = &parts.extensions;
        Ok(Asked {
            request_id: extensions
                .get::<RequestId>()
                .map(|id| id.0.clone())
                .unwrap_or_default(),
            started: extensions
                .get::<RequestStart>()
                .map_or_else(Instant::now, |start| start.0),
            caller: extensions.get::<Caller>().map(|c| c.0.to_string()),
        })
    }
}

/// A validated value as JSON, typed by its feature.
fn value_json(feature: &FeatureSchema, value: &FeatureValue) -> Value {
    match value {
        FeatureValue::Number(n) => match feature.kind {
            ColumnKind::Boolean => Value::Bool(*n != 0.0),
            ColumnKind::Integer => Value::from(*n as i64),
            _ => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        },
        FeatureValue::Category(text) | FeatureValue::Text(text) => Value::String(text.clone()),
        FeatureValue::Missing => Value::Null,
    }
}

/// The inputs of a row as a JSON object, by feature name.
pub fn inputs_json(features: &[FeatureSchema], values: &[FeatureValue]) -> String {
    let object: Map<String, Value> = features
        .iter()
        .zip(values)
        .map(|(feature, value)| (feature.name.clone(), value_json(feature, value)))
        .collect();
    Value::Object(object).to_string()
}

fn probabilities_json(labels: &[String], probabilities: &[f64]) -> String {
    let object: Map<String, Value> = labels
        .iter()
        .zip(probabilities)
        .map(|(label, p)| {
            (
                label.clone(),
                serde_json::Number::from_f64(*p).map_or(Value::Null, Value::Number),
            )
        })
        .collect();
    Value::Object(object).to_string()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The log record of one answered row.
pub fn record_of(
    model: &LoadedModel,
    asked: &Asked,
    row_index: usize,
    class: usize,
    values: &[FeatureValue],
    probabilities: &[f64],
) -> PredictionRecord {
    let manifest = &model.artifact.manifest;
    PredictionRecord {
        request_id: asked.request_id.clone(),
        row_index: u32::try_from(row_index).unwrap_or(u32::MAX),
        created_at_ms: now_ms(),
        model: manifest.name.clone(),
        version: model.version_label.clone(),
        inputs: inputs_json(&manifest.features, values),
        label: manifest.labels.get(class).cloned().unwrap_or_default(),
        probabilities: probabilities_json(&manifest.labels, probabilities),
        latency_ms: asked.started.elapsed().as_secs_f64() * 1e3,
        key_name: asked.caller.clone(),
    }
}

/// The log records of answered predictions (one per row).
pub fn records(
    model: &LoadedModel,
    asked: &Asked,
    predictions: &[Prediction],
) -> Vec<PredictionRecord> {
    predictions
        .iter()
        .enumerate()
        .map(|(index, p)| record_of(model, asked, index, p.class, &p.values, &p.probabilities))
        .collect()
}

/// Counts predictions by class for the metrics.
pub fn count_predictions(model: &LoadedModel, per_class: &[u64]) {
    let manifest = &model.artifact.manifest;
    metrics::counter!(
        "mlserve_rows_predicted_total",
        "model" => manifest.name.clone(),
        "version" => model.version_label.clone(),
    )
    .increment(per_class.iter().sum());
    for (label, &count) in manifest.labels.iter().zip(per_class) {
        if count > 0 {
            metrics::counter!(
                "mlserve_predictions_total",
                "model" => manifest.name.clone(),
                "version" => model.version_label.clone(),
                "label" => label.clone(),
            )
            .increment(count);
        }
    }
}

/// Counts answered predictions, and queues them for the log when the log is on.
pub fn log_predictions(app: &App, model: &LoadedModel, asked: &Asked, predictions: &[Prediction]) {
    let mut per_class = vec![0u64; model.artifact.manifest.labels.len()];
    for prediction in predictions {
        if let Some(count) = per_class.get_mut(prediction.class) {
            *count += 1;
        }
    }
    count_predictions(model, &per_class);
    if let Some(log) = &app.log {
        log.record(records(model, asked, predictions));
    }
}
