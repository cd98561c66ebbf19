//! Reading the prediction log: recent predictions, ground-truth feedback, live metrics per
//! model version, and drift of recent inputs from the training data.

use super::body::PathParams;
use super::predict::Asked;
use super::problem::Problem;
use super::state::App;
use crate::model::FieldError;
use crate::store::drift::{FeatureDrift, feature_drift};
use crate::store::record::now_ms;
use crate::store::{LoggedPrediction, PredictionQuery, Store};
use crate::train::metrics::class_metrics;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

/// PSI above this flags a feature, unless the request names another threshold.
pub const DEFAULT_DRIFT_THRESHOLD: f64 = 0.2;
/// The window of monitoring and drift, unless the request names another.
const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The window text the API takes: a whole number of 1 to 9 digits without a leading zero, and
/// a unit. The served OpenAPI document gives this pattern, so it says exactly what is accepted.
pub const WINDOW_PATTERN: &str = "^[1-9][0-9]{0,8}[smhd]$";

/// What a window that cannot be read is told, naming the pattern in words.
const WINDOW_EXPECTED: &str = "expected a duration: a whole number (1 to 999999999, no leading zero) and s, m, h or d, such as 90s, 15m, 1h or 7d";

/// Parses a window such as `90s`, `15m`, `1h` or `7d` (see [`WINDOW_PATTERN`]): the durations
/// the settings take too. A window longer than the log is old simply covers all of it.
pub fn parse_window(text: &str) -> Option<Duration> {
    crate::store::retention::parse_duration(text)
}

fn log_of(app: &App) -> Result<&crate::store::PredictionLog, Problem> {
    app.log.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "the prediction log is off (setting prediction_log), so there is nothing to read",
        )
    })
}

fn store_of(app: &App) -> Result<&Store, Problem> {
    log_of(app).map(|log| log.store())
}

fn database_problem(error: &crate::store::StoreError) -> Problem {
    tracing::error!(%error, "prediction database query failed");
    Problem::unavailable(
        "the prediction database did not answer; the server log has the cause",
        5,
    )
}

fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Problem> {
    super::body::parse_query(query.unwrap_or(""))
}

fn invalid_parameter(name: &str, message: impl Into<String>) -> Problem {
    Problem::invalid(vec![FieldError {
        field: name.to_string(),
        message: message.into(),
    }])
}

fn window_from(pairs: &[(String, String)]) -> Result<Duration, Problem> {
    match pairs.iter().find(|(k, _)| k == "window") {
        None => Ok(DEFAULT_WINDOW),
        Some((_, value)) => parse_window(value).ok_or_else(|| {
            invalid_parameter("window", format!("{WINDOW_EXPECTED}, got \"{value}\""))
        }),
    }
}

fn refuse_unknown(pairs: &[(String, String)], known: &[&str]) -> Result<(), Problem> {
    let unknown: Vec<FieldError> = pairs
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, _)| FieldError {
            field: k.clone(),
            message: format!("unknown parameter; the parameters are {}", known.join(", ")),
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(unknown))
    }
}

/// GET /api/predictions?model=&since=&limit=: the log, newest first (admin).
pub async fn list_predictions(
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let store = store_of(&app)?;
    let pairs = query_pairs(query.as_deref())?;
    refuse_unknown(&pairs, &["model", "since", "limit"])?;
    let mut request = PredictionQuery {
        limit: 100,
        ..PredictionQuery::default()
    };
    for (key, value) in &pairs {
        match key.as_str() {
            "model" => request.model = Some(value.clone()),
            "since" => {
                let at: jiff::Timestamp = value.parse().map_err(|_| {
                    invalid_parameter(
                        "since",
                        format!("expected an RFC 3339 date-time, got \"{value}\""),
                    )
                })?;
                request.since_ms = Some(at.as_millisecond());
            }
            _ => {
                request.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        invalid_parameter(
                            "limit",
                            format!("expected a whole number from 1 to 1000, got \"{value}\""),
                        )
                    })?;
            }
        }
    }
    let rows = store
        .predictions(&request)
        .await
        .map_err(|e| database_problem(&e))?;
    let predictions: Vec<Value> = rows.iter().map(LoggedPrediction::to_json).collect();
    Ok(Json(json!({ "predictions": predictions })).into_response())
}

/// The body of a feedback post: `{"label": "…", "row": 0}`.
struct Feedback {
    /// The true label.
    label: String,
    /// The row of a batch request (0 for a single row).
    row: u32,
}

impl Feedback {
    /// Reads the body, listing every problem with a field. `row` is any JSON number with a whole
    /// value (`3` or `3.0`, as JSON Schema's `integer` allows) from 0 to `u32::MAX`.
    fn parse(bytes: &[u8]) -> Result<Feedback, Problem> {
        super::body::refuse_duplicate_keys(bytes).map_err(Problem::bad_request)?;
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(Problem::bad_request(
                "expected a JSON object: {\"label\": \"…\", \"row\": 0}",
            ));
        };
        let mut errors = Vec::new();
        let mut problem = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_string(),
                message,
            })
        };
        let label = match fields.get("label") {
            Some(Value::String(label)) if label.is_empty() => {
                problem("label", "empty: expected one of the model's labels".into());
                None
            }
            Some(Value::String(label)) => Some(label.clone()),
            Some(other) => {
                problem("label", format!("expected text, got {}", kind_of(other)));
                None
            }
            None => {
                problem("label", "missing: the true label is required".into());
                None
            }
        };
        let row = match fields.get("row") {
            None => Some(0),
            Some(value) => {
                let row = value
                    .as_f64()
                    .filter(|v| v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(v))
                    .map(|v| v as u32);
                if row.is_none() {
                    problem(
                        "row",
                        format!(
                            "expected a whole number from 0 to {}, got {value}",
                            u32::MAX
                        ),
                    );
                }
                row
            }
        };
        for key in fields.keys().filter(|k| *k != "label" && *k != "row") {
            problem(key, "unknown field; the fields are label and row".into());
        }
        match (label, row) {
            (Some(label), Some(row)) if errors.is_empty() => Ok(Feedback { label, row }),
            _ => Err(Problem::invalid(errors)),
        }
    }
}

/// How a JSON value is named in a message.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// POST /api/predictions/{request_id}/feedback: the true label of a logged prediction.
pub async fn post_feedback(
    State(app): State<App>,
    PathParams(request_id): PathParams<String>,
    asked: Asked,
    content_type: super::body::ContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let store = store_of(&app)?;
    let bytes = super::body::json_bytes(&content_type, body)?;
    let feedback = Feedback::parse(&bytes)?;
    let found = store
        .find_prediction(&request_id, feedback.row)
        .await
        .map_err(|e| database_problem(&e))?;
    let Some(found) = found else {
        return Err(Problem::not_found(format!(
            "no logged prediction with request id '{request_id}' and row {}; predictions are written within a second of their answer",
            feedback.row
        )));
    };
    // The label must be one the model version knows, when that version is still served.
    if let Ok(model) = app
        .repository
        .catalog()
        .resolve(&found.model, Some(&found.version))
    {
        let labels = &model.artifact.manifest.labels;
        if !labels.contains(&feedback.label) {
            return Err(invalid_parameter(
                "label",
                format!(
                    "unknown label \"{}\": expected one of {}",
                    feedback.label,
                    labels
                        .iter()
                        .map(|l| format!("\"{l}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let found = log_of(&app)?
        .give_feedback(
            &request_id,
            feedback.row,
            &feedback.label,
            asked.caller.as_deref(),
        )
        .await
        .map_err(|e| database_problem(&e))?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "the prediction with request id '{request_id}' and row {} was erased meanwhile",
                feedback.row
            ))
        })?;
    metrics::counter!("mlserve_feedback_total", "model" => found.model.clone(), "version" => found.version.clone())
        .increment(1);
    Ok(Json(json!({
        "request_id": request_id,
        "row": feedback.row,
        "model": found.model,
        "version": found.version,
        "predicted": found.label,
        "label": feedback.label,
        "correct": found.label == feedback.label,
    }))
    .into_response())
}

/// DELETE /api/predictions/{request_id}: erases every logged row of a request with its
/// feedback (admin). Idempotent: a request with nothing logged answers zero rows deleted.
pub async fn erase_prediction(
    State(app): State<App>,
    PathParams(request_id): PathParams<String>,
) -> Result<Response, Problem> {
    let store = store_of(&app)?;
    let (predictions, feedback) = store
        .erase_request(&request_id)
        .await
        .map_err(|e| database_problem(&e))?;
    metrics::counter!("mlserve_prediction_log_deleted_total", "reason" => "erased")
        .increment(predictions);
    tracing::info!(
        request_id = request_id.as_str(),
        predictions,
        feedback,
        "prediction log: a request's rows were erased"
    );
    Ok(Json(json!({
        "request_id": request_id,
        "predictions_deleted": predictions,
        "feedback_deleted": feedback,
    }))
    .into_response())
}

/// Live metrics of one model version from its predictions with feedback.
#[derive(Debug, Clone, Serialize)]
pub struct VersionMonitoring {
    /// Model version.
    pub version: String,
    /// Predictions logged in the window.
    pub predictions: i64,
    /// Of those, the ones with a true label.
    pub with_feedback: usize,
    /// Share of correct predictions among those with feedback.
    pub accuracy: Option<f64>,
    /// Macro-averaged precision over the classes seen.
    pub precision_macro: Option<f64>,
    /// Macro-averaged recall over the classes seen.
    pub recall_macro: Option<f64>,
}

/// Accuracy and macro precision and recall of (predicted, true, count) triples of one
/// version.
pub fn live_metrics<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str, i64)>,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let pairs: Vec<(&str, &str, u64)> = pairs
        .into_iter()
        .filter_map(|(p, a, n)| Some((p, a, u64::try_from(n).ok().filter(|n| *n > 0)?)))
        .collect();
    let total: u64 = pairs.iter().map(|(_, _, n)| n).sum();
    if total == 0 {
        return (None, None, None);
    }
    let mut labels: Vec<&str> = pairs.iter().flat_map(|(p, a, _)| [*p, *a]).collect();
    labels.sort_unstable();
    labels.dedup();
    let index = |label: &str| labels.binary_search(&label).unwrap_or(0);
    let mut confusion = vec![vec![0u64; labels.len()]; labels.len()];
    let mut correct = 0;
    for (predicted, actual, n) in &pairs {
        confusion[index(actual)][index(predicted)] += n;
        if predicted == actual {
            correct += n;
        }
    }
    // Macro averages over the classes that occur as true labels, as scikit-learn's
    // classification report does for the classes present.
    let present: Vec<usize> = (0..labels.len())
        .filter(|&c| confusion[c].iter().sum::<u64>() > 0)
        .collect();
    let per_class: Vec<_> = present
        .iter()
        .map(|&c| class_metrics(&confusion, c))
        .collect();
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    (
        Some(correct as f64 / total as f64),
        Some(mean(per_class.iter().map(|m| m.precision).collect())),
        Some(mean(per_class.iter().map(|m| m.recall).collect())),
    )
}

fn since_of(window: Duration) -> (i64, i64) {
    let now = now_ms();
    let since = now.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
    (since, now)
}

/// Live metrics of every version of a model over a window, from the live counts (see
/// [`crate::store::live`]); sets the live-metric gauges.
pub async fn monitoring(
    store: &Store,
    model: &str,
    window: Duration,
) -> Result<Vec<VersionMonitoring>, crate::store::StoreError> {
    let (since, now) = since_of(window);
    let stats = store.live_stats(model, since, now).await?;
    Ok(stats
        .into_iter()
        .filter(|(_, stats)| stats.predictions > 0)
        .map(|(version, stats)| {
            let (accuracy, precision_macro, recall_macro) = live_metrics(stats.pairs());
            for (name, value) in [
                ("mlserve_live_accuracy", accuracy),
                ("mlserve_live_precision_macro", precision_macro),
                ("mlserve_live_recall_macro", recall_macro),
            ] {
                if let Some(value) = value {
                    metrics::gauge!(name, "model" => model.to_string(), "version" => version.clone())
                        .set(value);
                }
            }
            VersionMonitoring {
                with_feedback: stats.pairs().map(|(_, _, n)| usize::try_from(n).unwrap_or(0)).sum(),
                version,
                predictions: stats.predictions,
                accuracy,
                precision_macro,
                recall_macro,
            }
        })
        .collect())
}

/// GET /api/models/{name}/monitoring?window=24h
pub async fn model_monitoring(
    State(app): State<App>,
    PathParams(name): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let store = store_of(&app)?;
    let pairs = query_pairs(query.as_deref())?;
    refuse_unknown(&pairs, &["window"])?;
    let window = window_from(&pairs)?;
    crate::serve::predict::resolve(&app, &name, None)?;
    let versions = monitoring(store, &name, window)
        .await
        .map_err(|e| database_problem(&e))?;
    Ok(Json(json!({
        "model": name,
        "window_seconds": window.as_secs(),
        "versions": versions,
    }))
    .into_response())
}

/// The drift of a model's default version over a window.
pub async fn drift_report(
    app: &App,
    name: &str,
    window: Duration,
    threshold: f64,
) -> Result<(String, usize, Vec<FeatureDrift>), Problem> {
    let store = store_of(app)?;
    let model = crate::serve::predict::resolve(app, name, None)?;
    let (since, now) = since_of(window);
    let mut stats = store
        .live_stats(name, since, now)
        .await
        .map_err(|e| database_problem(&e))?;
    let counted = stats.remove(&model.version_label).unwrap_or_default();
    let features = &model.artifact.manifest.features;
    let drift = feature_drift(features, &counted.bins, threshold);
    for item in &drift {
        if let Some(psi) = item.psi {
            metrics::gauge!("mlserve_feature_psi", "model" => name.to_string(), "version" => model.version_label.clone(), "feature" => item.feature.clone())
                .set(psi);
        }
    }
    let rows = usize::try_from(counted.predictions).unwrap_or(0);
    Ok((model.version_label.clone(), rows, drift))
}

/// GET /api/models/{name}/drift?window=24h&threshold=0.2
pub async fn model_drift(
    State(app): State<App>,
    PathParams(name): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let pairs = query_pairs(query.as_deref())?;
    refuse_unknown(&pairs, &["window", "threshold"])?;
    let window = window_from(&pairs)?;
    let threshold = match pairs.iter().find(|(k, _)| k == "threshold") {
        None => DEFAULT_DRIFT_THRESHOLD,
        Some((_, value)) => value
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| {
                invalid_parameter(
                    "threshold",
                    format!("expected a positive number, got \"{value}\""),
                )
            })?,
    };
    let (version, rows, features) = drift_report(&app, &name, window, threshold).await?;
    Ok(
        Json(json!({
            "model": name,
            "version": version,
            "window_seconds": window.as_secs(),
            "rows": rows,
            "threshold": threshold,
            "min_values": crate::store::drift::MIN_VALUES,
            "drifted": features.iter().filter(|f| f.drifted).map(|f| f.feature.clone()).collect::<Vec<_>>(),
            "features": features,
        }))
        .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_like_durations() {
        assert_eq!(parse_window("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_window("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_window("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_window("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            parse_window("999999999d"),
            Some(Duration::from_secs(999_999_999 * 86_400))
        );
        for bad in [
            "",
            "h",
            "0h",
            "07d",
            "1w",
            "-1h",
            "1.5h",
            " 1h",
            "1h ",
            "1000000000s",
        ] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }

    #[test]
    fn live_metrics_count_what_came_back() {
        let pairs = [("a", "a", 1), ("a", "b", 1), ("b", "b", 2), ("b", "a", 0)];
        let (accuracy, precision, recall) = live_metrics(pairs);
        assert_eq!(accuracy, Some(0.75));
        // a: precision 1/2, recall 1/1; b: precision 2/2, recall 2/3.
        assert!((precision.unwrap() - 0.75).abs() < 1e-12);
        assert!((recall.unwrap() - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(live_metrics([]), (None, None, None));
    }
}
