//! Prometheus metrics: the `metrics` facade records them, and `GET /metrics` renders them in
//! the Prometheus text format.
//!
//! The recorder is process-wide (the `metrics` macros have one global recorder), installed the
//! first time a server starts. Names, all prefixed `mlserve_`:
//! - `http_requests_total{route, method, status, model, version}` (model and version empty
//!   for routes that are not about one model) and `http_request_duration_seconds{route}`
//!   (histogram); `http_requests_in_flight`; `requests_shed_total`, `rate_limited_total`;
//! - `predictions_total{model, version, label}`, `rows_predicted_total{model, version}`,
//!   `validation_failures_total{model, version}`, `explained_rows_total{model, method}`;
//! - `model_loads_total{model}`, `model_load_failures_total{model}`, `reloads_total`,
//!   `models_loaded`;
//! - `prediction_log_queue_depth`, `prediction_log_dropped_total`, `prediction_log_written_total`,
//!   `prediction_log_write_errors_total`, `prediction_log_duplicates_total`,
//!   `prediction_log_reopened_total`, `prediction_log_sampled_out_total`,
//!   `prediction_log_deleted_total{reason}`, `prediction_log_retention_errors_total`,
//!   `prediction_log_bytes`;
//! - `connections_open`, `connections_at_limit_total`, `connections_evicted_total`,
//!   `connections_timed_out_total`;
//! - `feedback_total{model, version}`, `live_accuracy`, `live_precision_macro`,
//!   `live_recall_macro` `{model, version}`, `feature_psi{model, version, feature}`;
//! - `auth_failures_total{reason}`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: from 100 µs (a single-row prediction) to 30 s (the timeout).
const LATENCY_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Whether this process's recorder is installed (handles made before record nowhere).
pub fn is_installed() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// Installs the recorder once per process and keeps its histograms trimmed.
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".to_string()),
                &LATENCY_BUCKETS,
            )
            .map(PrometheusBuilder::build_recorder);
        let recorder = match recorder {
            Ok(recorder) => recorder,
            Err(error) => {
                tracing::error!(%error, "cannot build the metrics recorder; /metrics is off");
                return None;
            }
        };
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::error!(%error, "another metrics recorder is installed; /metrics is off");
            return None;
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .ok();
        describe();
        // Rare events exist from the start at 0, so rate() sees their first occurrence.
        for name in [
            "mlserve_requests_shed_total",
            "mlserve_rate_limited_total",
            "mlserve_reloads_total",
            "mlserve_prediction_log_dropped_total",
            "mlserve_prediction_log_written_total",
            "mlserve_prediction_log_write_errors_total",
            "mlserve_prediction_log_duplicates_total",
        ] {
            metrics::counter!(name).absolute(0);
        }
        Some(handle)
    });
}

/// The HELP line of each metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "mlserve_http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        "mlserve_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request, by route and method"
    );
    describe_gauge!("mlserve_http_requests_in_flight", "Requests being answered");
    describe_gauge!("mlserve_connections_open", "Client connections open");
    describe_counter!(
        "mlserve_connections_at_limit_total",
        "Connections accepted at max_connections, which closed a waiting one or waited"
    );
    describe_counter!(
        "mlserve_connections_evicted_total",
        "Connections closed while waiting for a request's headers, to make room for a new one"
    );
    describe_counter!(
        "mlserve_connections_timed_out_total",
        "Connections closed at the header read or keep-alive timeout"
    );
    describe_counter!(
        "mlserve_requests_shed_total",
        "Requests refused with 503 because too many were in flight"
    );
    describe_counter!(
        "mlserve_rate_limited_total",
        "Requests refused with 429 by the per-key rate limit"
    );
    describe_counter!(
        "mlserve_explained_rows_total",
        "Rows answered with their explanation, by model and method (linear, tree_path_dependent, kernel)"
    );
    describe_counter!(
        "mlserve_predictions_total",
        "Predictions answered, by model, version and predicted label"
    );
    describe_counter!(
        "mlserve_prediction_value_bin_total",
        "Predicted values of models that predict a number, by model, version and bin of the \
         training target's deciles (1 the lowest)"
    );
    describe_counter!(
        "mlserve_rows_predicted_total",
        "Rows predicted, by model and version"
    );
    describe_counter!(
        "mlserve_validation_failures_total",
        "Prediction requests refused with 422, by model and version"
    );
    describe_counter!(
        "mlserve_model_loads_total",
        "Model versions loaded, by model"
    );
    describe_counter!(
        "mlserve_model_load_failures_total",
        "Model versions that failed to load, by model"
    );
    describe_counter!("mlserve_reloads_total", "Repository rescans");
    describe_gauge!("mlserve_models_loaded", "Model versions loaded and served");
    describe_gauge!(
        "mlserve_prediction_log_queue_depth",
        "Predictions waiting to be written to the log"
    );
    describe_counter!(
        "mlserve_prediction_log_dropped_total",
        "Predictions not logged because the queue was full or the database failed at shutdown"
    );
    describe_counter!(
        "mlserve_prediction_log_written_total",
        "Predictions written to the log"
    );
    describe_counter!(
        "mlserve_prediction_log_write_errors_total",
        "Failed writes to the log (retried)"
    );
    describe_counter!(
        "mlserve_prediction_log_duplicates_total",
        "Predictions not logged because their request id and row were logged already"
    );
    describe_counter!(
        "mlserve_prediction_log_reopened_total",
        "Times the writer reopened a log file that was deleted or replaced"
    );
    describe_counter!(
        "mlserve_prediction_log_sampled_out_total",
        "Predictions left out of the log by prediction_log_sample_rate"
    );
    describe_counter!(
        "mlserve_prediction_log_deleted_total",
        "Predictions deleted from the log, by reason: age (retention) or size (byte limit)"
    );
    describe_counter!(
        "mlserve_prediction_log_retention_errors_total",
        "Retention passes that failed (retried at the next)"
    );
    describe_gauge!(
        "mlserve_prediction_log_bytes",
        Unit::Bytes,
        "Bytes the log's rows and indexes take (PostgreSQL: estimated from its rows)"
    );
    describe_counter!(
        "mlserve_feedback_total",
        "Feedback received (true labels, or true values of models that predict a number), by model and version"
    );
    describe_gauge!(
        "mlserve_live_accuracy",
        "Accuracy on predictions with feedback over the monitoring window"
    );
    describe_gauge!(
        "mlserve_live_precision_macro",
        "Macro precision on predictions with feedback over the monitoring window"
    );
    describe_gauge!(
        "mlserve_live_recall_macro",
        "Macro recall on predictions with feedback over the monitoring window"
    );
    describe_gauge!(
        "mlserve_live_rmse",
        "RMSE of predicted values with feedback over the monitoring window, in the target's unit"
    );
    describe_gauge!(
        "mlserve_live_mae",
        "Mean absolute error of predicted values with feedback over the monitoring window"
    );
    describe_gauge!(
        "mlserve_live_mean_error",
        "Mean of predicted minus true values with feedback over the monitoring window"
    );
    describe_gauge!(
        "mlserve_live_r2",
        "R² of predicted values with feedback over the monitoring window"
    );
    describe_gauge!(
        "mlserve_prediction_psi",
        "Population stability index of a regressor's predicted values against its training target"
    );
    describe_gauge!(
        "mlserve_feature_psi",
        "Population stability index of a feature against its training data"
    );
    describe_counter!(
        "mlserve_auth_failures_total",
        "Requests refused by authentication, by reason"
    );
}

/// GET /metrics: every metric in the Prometheus text format. The prediction log's queue depth
/// is read at the scrape, so it is true even while the writer waits on a failing database.
pub async fn render(
    axum::extract::State(app): axum::extract::State<super::state::App>,
) -> Response {
    if let Some(log) = &app.log {
        metrics::gauge!("mlserve_prediction_log_queue_depth").set(log.queue_depth() as f64);
    }
    match HANDLE.get().and_then(Option::as_ref) {
        Some(handle) => {
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => {
            super::problem::Problem::unavailable("metrics are not available", 60).into_response()
        }
    }
}
