//! Reading the prediction log: recent predictions, ground-truth feedback, live metrics per
//! model version, and drift of recent inputs from the training data.

use super::body::PathParams;
use super::problem::Problem;
use super::state::App;
use crate::model::FieldError;
use crate::model::{Catalog, HeldOutMetrics, Task};
use crate::store::drift::{FeatureDrift, feature_drift, prediction_drift};
use crate::store::live::BucketStats;
use crate::store::record::now_ms;
use crate::store::{LoggedPrediction, PredictionQuery, Store};
use crate::train::metrics::class_metrics;
use axum::Json;
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

pub(super) fn log_of(app: &App) -> Result<&crate::store::PredictionLog, Problem> {
    app.log.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "the prediction log is off (setting prediction_log), so there is nothing to read",
        )
    })
}

pub(super) fn store_of(app: &App) -> Result<&Store, Problem> {
    log_of(app).map(|log| log.store())
}

pub(super) fn database_problem(error: &crate::store::StoreError) -> Problem {
    tracing::error!(%error, "prediction database query failed");
    Problem::unavailable(
        "the prediction database did not answer; the server log has the cause",
        5,
    )
}

fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Problem> {
    super::body::parse_query(query.unwrap_or(""))
}

pub(super) fn invalid_parameter(name: &str, message: impl Into<String>) -> Problem {
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
    /// What the version does: classification or regression.
    pub task: Task,
    /// Predictions logged in the window.
    pub predictions: i64,
    /// Of those, the ones with a true label or value.
    pub with_feedback: usize,
    /// The metrics of its task.
    #[serde(flatten)]
    pub quality: LiveQuality,
    /// The same metrics on the held-out split at training time, to compare with (absent for
    /// an import, or a version no longer loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOutMetrics>,
}

/// The held-out metrics of a loaded version of `model`, from its manifest.
pub fn held_out_of(catalog: &Catalog, model: &str, version: &str) -> Option<HeldOutMetrics> {
    let slot = catalog
        .models
        .get(model)?
        .versions
        .get(&version.parse::<u32>().ok()?)?;
    slot.loaded.as_ref()?.artifact.manifest.metrics.clone()
}

/// Live metrics by task; each `null` until feedback makes it defined.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LiveQuality {
    /// A classifier's, from (predicted, true) label pairs.
    Classification {
        /// Share of correct predictions among those with feedback.
        accuracy: Option<f64>,
        /// Macro-averaged precision over the classes seen.
        precision_macro: Option<f64>,
        /// Macro-averaged recall over the classes seen.
        recall_macro: Option<f64>,
    },
    /// A regressor's, from (predicted, true) value pairs (scikit-learn's definitions).
    Regression {
        /// Root mean squared error, in the target's unit.
        rmse: Option<f64>,
        /// Mean absolute error, in the target's unit.
        mae: Option<f64>,
        /// Mean of predicted − true: above 0, the model predicts too high on average.
        mean_error: Option<f64>,
        /// Coefficient of determination (needs two pairs).
        r2: Option<f64>,
    },
}

impl LiveQuality {
    /// The metrics of `stats` for `task`.
    fn of(task: Task, stats: &BucketStats) -> LiveQuality {
        match task {
            Task::Classification => {
                let (accuracy, precision_macro, recall_macro) = live_metrics(stats.pairs());
                LiveQuality::Classification {
                    accuracy,
                    precision_macro,
                    recall_macro,
                }
            }
            Task::Regression => {
                let residuals = &stats.residuals;
                LiveQuality::Regression {
                    rmse: residuals.rmse(),
                    mae: residuals.mae(),
                    mean_error: residuals.mean_error(),
                    r2: residuals.r2(),
                }
            }
        }
    }

    /// Each metric with the name of its gauge in /metrics.
    fn gauges(&self) -> Vec<(&'static str, Option<f64>)> {
        match *self {
            LiveQuality::Classification {
                accuracy,
                precision_macro,
                recall_macro,
            } => vec![
                ("mlserve_live_accuracy", accuracy),
                ("mlserve_live_precision_macro", precision_macro),
                ("mlserve_live_recall_macro", recall_macro),
            ],
            LiveQuality::Regression {
                rmse,
                mae,
                mean_error,
                r2,
            } => vec![
                ("mlserve_live_rmse", rmse),
                ("mlserve_live_mae", mae),
                ("mlserve_live_mean_error", mean_error),
                ("mlserve_live_r2", r2),
            ],
        }
    }
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
/// [`crate::store::live`]); sets the live-metric gauges. Each version's task is its logged
/// schema's (no labels: it predicts a number), so versions whose folder is gone still read.
pub async fn monitoring(
    store: &Store,
    model: &str,
    window: Duration,
) -> Result<Vec<VersionMonitoring>, crate::store::StoreError> {
    let (since, now) = since_of(window);
    let stats = store.live_stats(model, since, now).await?;
    let regressors: std::collections::HashSet<String> = store
        .model_schemas(model)
        .await?
        .into_iter()
        .filter(|stored| stored.schema.labels.is_empty())
        .map(|stored| stored.version)
        .collect();
    Ok(stats
        .into_iter()
        .filter(|(_, stats)| stats.predictions > 0)
        .map(|(version, stats)| {
            let task = if regressors.contains(&version) {
                Task::Regression
            } else {
                Task::Classification
            };
            let quality = LiveQuality::of(task, &stats);
            for (name, value) in quality.gauges() {
                if let Some(value) = value {
                    metrics::gauge!(name, "model" => model.to_string(), "version" => version.clone())
                        .set(value);
                }
            }
            let labelled: i64 = stats.pairs().map(|(_, _, n)| n).sum();
            VersionMonitoring {
                with_feedback: usize::try_from(labelled + stats.residuals.n).unwrap_or(0),
                version,
                task,
                predictions: stats.predictions,
                quality,
                held_out: None,
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
    let mut versions = monitoring(store, &name, window)
        .await
        .map_err(|e| database_problem(&e))?;
    let catalog = app.repository.catalog();
    for version in &mut versions {
        version.held_out = held_out_of(&catalog, &name, &version.version);
    }
    Ok(Json(json!({
        "model": name,
        "window_seconds": window.as_secs(),
        "versions": versions,
    }))
    .into_response())
}

/// The drift of a model's default version over a window.
pub struct DriftReport {
    /// The version.
    pub version: String,
    /// Logged rows counted.
    pub rows: usize,
    /// Each feature's drift, in schema order.
    pub features: Vec<FeatureDrift>,
    /// The drift of the predicted values, for a model that predicts a number.
    pub prediction: Option<FeatureDrift>,
}

/// The drift of a model's default version over a window; sets the PSI gauges.
pub async fn drift_report(
    app: &App,
    name: &str,
    window: Duration,
    threshold: f64,
) -> Result<DriftReport, Problem> {
    let store = store_of(app)?;
    let model = crate::serve::predict::resolve(app, name, None)?;
    let (since, now) = since_of(window);
    let mut stats = store
        .live_stats(name, since, now)
        .await
        .map_err(|e| database_problem(&e))?;
    let counted = stats.remove(&model.version_label).unwrap_or_default();
    let manifest = &model.artifact.manifest;
    let features = feature_drift(&manifest.features, &counted.bins, threshold);
    let prediction = (manifest.task == Task::Regression)
        .then(|| prediction_drift(manifest.target.as_ref(), &counted.values, threshold));
    let version = &model.version_label;
    for item in &features {
        if let Some(psi) = item.psi {
            metrics::gauge!("mlserve_feature_psi", "model" => name.to_string(), "version" => version.clone(), "feature" => item.feature.clone())
                .set(psi);
        }
    }
    if let Some(psi) = prediction.as_ref().and_then(|p| p.psi) {
        metrics::gauge!("mlserve_prediction_psi", "model" => name.to_string(), "version" => version.clone())
            .set(psi);
    }
    Ok(DriftReport {
        version: version.clone(),
        rows: usize::try_from(counted.predictions).unwrap_or(0),
        features,
        prediction,
    })
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
    let report = drift_report(&app, &name, window, threshold).await?;
    let mut answer = json!({
        "model": name,
        "version": report.version,
        "window_seconds": window.as_secs(),
        "rows": report.rows,
        "threshold": threshold,
        "min_values": crate::store::drift::MIN_VALUES,
        "drifted": report.features.iter().filter(|f| f.drifted).map(|f| f.feature.clone()).collect::<Vec<_>>(),
        "features": report.features,
    });
    if let Some(prediction) = report.prediction {
        answer["prediction"] = json!(prediction);
    }
    Ok(Json(answer).into_response())
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
