//! `/` for browsers: the models, with their status and headline metrics.

use super::pages;
use super::pages::{Frame, ModelRow};
use super::render::*;
use crate::serve::state::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

/// GET / for browsers: the models.
pub async fn index(State(app): State<App>) -> Response {
    let catalog = app.repository.catalog();
    let models = catalog
        .models
        .iter()
        .map(|(name, entry)| {
            let default = entry.default_model();
            let failed: Vec<String> = entry
                .versions
                .iter()
                .filter(|(_, slot)| slot.loaded.is_none())
                .map(|(version, _)| version.to_string())
                .collect();
            let status = match (default.is_some(), failed.is_empty()) {
                (true, true) => "ready",
                (true, false) => "degraded",
                (false, _) => "failed",
            };
            let problem = if failed.is_empty() {
                String::new()
            } else {
                format!("version {} failed to load", failed.join(", "))
            };
            let manifest = default.map(|m| &m.artifact.manifest);
            ModelRow {
                name: name.clone(),
                version: default.map_or("–".into(), |m| m.version_label.clone()),
                algorithm: manifest.map_or("–".into(), |m| m.algorithm_name().to_string()),
                task: manifest.map_or("–", |m| m.task.name()),
                quality: manifest
                    .and_then(super::numbers::held_out_quality)
                    .unwrap_or_else(|| "–".into()),
                status,
                ready: default.is_some(),
                problem,
            }
        })
        .collect();
    let page = pages::IndexPage {
        frame: Frame::new("Models", "models"),
        models,
    };
    render(StatusCode::OK, &page, None)
}
