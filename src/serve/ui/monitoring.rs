//! The monitoring tab: live quality from feedback, and drift of recent inputs.

use super::model_ref::*;
use super::numbers::*;
use super::pages;
use super::pages::{DriftRow, Frame, LiveRow, WindowLink};
use super::render::*;
use crate::model::{HeldOutMetrics, Task};
use crate::serve::middleware::RequestId;
use crate::serve::monitoring::{LiveQuality, held_out_of};
use crate::serve::state::App;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

#[derive(serde::Deserialize)]
pub(super) struct WindowQuery {
    window: Option<String>,
}

pub(super) fn metric_text(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), format_metric)
}

/// GET /ui/models/{name}/monitoring?window=24h: live metrics from feedback, and drift.
pub(super) async fn monitoring_page(
    State(app): State<App>,
    target: ModelRef,
    Query(query): Query<WindowQuery>,
    rid: RequestId,
) -> Result<Response, PageError> {
    let (catalog, model) = find_model(&app, &target)?;
    let choice = query.window.unwrap_or_else(|| "24h".to_string());
    let window = crate::serve::monitoring::parse_window(&choice)
        .unwrap_or(std::time::Duration::from_secs(86_400));
    let base = target.base();
    let windows = ["1h", "24h", "7d"]
        .into_iter()
        .map(|label| WindowLink {
            label,
            href: format!("{base}/monitoring?window={label}"),
            current: label == choice,
        })
        .collect();
    let threshold = crate::serve::monitoring::DEFAULT_DRIFT_THRESHOLD;
    let mut page = pages::MonitoringPage {
        frame: Frame::new(format!("Monitoring: {}", model.name()), ""),
        head: model_head(&catalog, &model, &target, "monitoring"),
        windows,
        unavailable: String::new(),
        live_columns: live_columns(model.task()),
        versions: Vec::new(),
        predicts_number: model.task() == Task::Regression,
        features: Vec::new(),
        drift_rows: 0,
        threshold,
        min_values: crate::store::drift::MIN_VALUES,
    };
    let Some(log) = &app.log else {
        page.unavailable =
            "The prediction log is off (setting prediction_log), so there is nothing to monitor."
                .to_string();
        return Ok(render(StatusCode::OK, &page, None));
    };
    let live = crate::serve::monitoring::monitoring(log.store(), model.name(), window).await;
    let drift = crate::serve::monitoring::drift_report(&app, model.name(), window, threshold).await;
    match (live, drift) {
        (Ok(versions), Ok(report)) => {
            let columns = page.live_columns.len();
            page.versions = versions
                .into_iter()
                .map(|v| {
                    let held_out = held_out_of(&catalog, model.name(), &v.version);
                    // A version of another task than the one shown (only ever copied in by
                    // hand: new versions keep the model's task) shows dashes, not shifted cells.
                    let mut cells = live_cells(&v.quality, held_out.as_ref());
                    if v.task != model.task() {
                        cells = vec!["–".to_string(); columns];
                    }
                    LiveRow {
                        predictions: v.predictions,
                        with_feedback: v.with_feedback,
                        cells,
                        version: v.version,
                    }
                })
                .collect();
            page.drift_rows = report.rows;
            page.features = report
                .prediction
                .into_iter()
                .chain(report.features)
                .map(drift_row)
                .collect();
        }
        (Err(error), _) => {
            tracing::error!(request_id = rid.0.as_str(), %error, "monitoring query failed");
            page.unavailable =
                "The prediction database did not answer; the server log has the cause.".to_string();
        }
        (_, Err(problem)) => page.unavailable = problem.detail,
    }
    Ok(render(StatusCode::OK, &page, None))
}

/// The live metrics' column headings for a task, then the held-out one's.
fn live_columns(task: Task) -> Vec<&'static str> {
    match task {
        Task::Classification => vec![
            "Accuracy",
            "Precision (macro)",
            "Recall (macro)",
            "Held-out accuracy",
        ],
        Task::Regression => vec!["RMSE", "MAE", "Mean error", "R²", "Held-out R²"],
    }
}

/// A version's live metrics and its held-out headline (accuracy, or R²), formatted.
fn live_cells(quality: &LiveQuality, held_out: Option<&HeldOutMetrics>) -> Vec<String> {
    match *quality {
        LiveQuality::Classification {
            accuracy,
            precision_macro,
            recall_macro,
        } => {
            let trained = match held_out {
                Some(HeldOutMetrics::Classification(m)) => Some(m.accuracy),
                _ => None,
            };
            [accuracy, precision_macro, recall_macro, trained]
                .map(metric_text)
                .to_vec()
        }
        LiveQuality::Regression {
            rmse,
            mae,
            mean_error,
            r2,
        } => {
            let trained = match held_out {
                Some(HeldOutMetrics::Regression(m)) => Some(m.r2),
                _ => None,
            };
            let value = |v: Option<f64>| v.map_or_else(|| "–".to_string(), format_value);
            vec![
                value(rmse),
                value(mae),
                value(mean_error),
                metric_text(r2),
                metric_text(trained),
            ]
        }
    }
}

pub(super) fn drift_row(feature: crate::store::drift::FeatureDrift) -> DriftRow {
    let (status, class) = match feature.psi {
        None => ("no baseline", "ready"),
        Some(_) if feature.drifted => ("drifted", "failed"),
        Some(_) if feature.values < crate::store::drift::MIN_VALUES => {
            ("too few values", "degraded")
        }
        Some(psi) if psi > 0.1 => ("moderate", "degraded"),
        Some(_) => ("stable", "ready"),
    };
    DriftRow {
        name: feature.feature,
        psi: feature
            .psi
            .map_or_else(|| "–".to_string(), |p| format!("{p:.3}")),
        status,
        class,
        values: feature.values,
    }
}
