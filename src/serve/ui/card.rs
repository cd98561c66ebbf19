//! The model card in the UI's frame.

use super::model_ref::*;
use super::pages;
use super::pages::Frame;
use super::render::*;
use crate::model::Task;
use crate::serve::state::App;
use crate::train::regression::RegressionMetricsFile;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

/// GET /ui/models/{name}/card: the model card in the UI's frame.
pub(super) async fn card(State(app): State<App>, target: ModelRef) -> Result<Response, PageError> {
    let (catalog, model) = find_model(&app, &target)?;
    let path = model.artifact.dir.join("metrics.json");
    let manifest = &model.artifact.manifest;
    let sections = match tokio::fs::read(&path).await {
        Ok(bytes) => card_sections(manifest, &bytes),
        // An imported model has no evaluation: its card shows the import instead.
        Err(_) if manifest.metrics.is_none() => {
            Ok(crate::train::report::model_card_sections(manifest, None))
        }
        Err(error) => Err(error.to_string()),
    };
    let sections = match sections {
        Ok(sections) => sections,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read the model's metrics");
            return Ok(message(
                StatusCode::NOT_FOUND,
                "No model card",
                &format!(
                    "model '{}' version {} has no readable metrics.json, so its card cannot be shown",
                    target.name, model.version_label
                ),
                Some((&target.base(), "Back to the model")),
            ));
        }
    };
    let page = pages::CardPage {
        frame: Frame::new(
            format!("Model card: {} v{}", manifest.name, model.version_label),
            "",
        ),
        head: model_head(&catalog, &model, &target, "card"),
        sections,
    };
    Ok(render(StatusCode::OK, &page, None))
}

/// The card's sections from a version's metrics.json, read as its task writes it.
fn card_sections(manifest: &crate::model::Manifest, bytes: &[u8]) -> Result<String, String> {
    match manifest.task {
        Task::Classification => serde_json::from_slice::<crate::train::MetricsFile>(bytes)
            .map(|metrics| crate::train::report::model_card_sections(manifest, Some(&metrics))),
        Task::Regression => serde_json::from_slice::<RegressionMetricsFile>(bytes)
            .map(|metrics| crate::train::regression::model_card_sections(manifest, &metrics)),
    }
    .map_err(|error| error.to_string())
}
