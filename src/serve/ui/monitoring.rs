//! The monitoring tab: live quality from feedback, and drift of recent inputs.

use super::model_ref::*;
use super::numbers::*;
use super::pages;
use super::pages::{DriftRow, Frame, LiveRow, WindowLink};
use super::render::*;
use crate::serve::middleware::RequestId;
use crate::serve::state::App;
use axum::extract::{Extension, Query, State};
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
    Extension(rid): Extension<RequestId>,
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
        versions: Vec::new(),
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
        (Ok(versions), Ok((_, rows, features))) => {
            let entry = catalog.models.get(model.name());
            page.versions = versions
                .into_iter()
                .map(|v| {
                    let trained = entry
                        .and_then(|e| {
                            v.version
                                .parse::<u32>()
                                .ok()
                                .and_then(|n| e.versions.get(&n))
                        })
                        .and_then(|slot| slot.loaded.as_ref())
                        .and_then(|m| m.artifact.manifest.accuracy());
                    LiveRow {
                        predictions: v.predictions,
                        with_feedback: v.with_feedback,
                        accuracy: metric_text(v.accuracy),
                        precision: metric_text(v.precision_macro),
                        recall: metric_text(v.recall_macro),
                        trained_accuracy: metric_text(trained),
                        version: v.version,
                    }
                })
                .collect();
            page.drift_rows = rows;
            page.features = features.into_iter().map(drift_row).collect();
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
