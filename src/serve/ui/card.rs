//! The model card in the UI's frame.

use super::model_ref::*;
use super::pages;
use super::pages::Frame;
use super::render::*;
use crate::serve::state::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

/// GET /ui/models/{name}/card: the model card in the UI's frame.
pub(super) async fn card(State(app): State<App>, target: ModelRef) -> Result<Response, PageError> {
    let (catalog, model) = find_model(&app, &target)?;
    let path = model.artifact.dir.join("metrics.json");
    let metrics = match tokio::fs::read(&path).await {
        Ok(bytes) => serde_json::from_slice::<crate::train::MetricsFile>(&bytes)
            .map(Some)
            .map_err(|error| error.to_string()),
        // An imported model has no evaluation: its card shows the import instead.
        Err(_) if model.artifact.manifest.metrics.is_none() => Ok(None),
        Err(error) => Err(error.to_string()),
    };
    let metrics = match metrics {
        Ok(metrics) => metrics,
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
    let manifest = &model.artifact.manifest;
    let page = pages::CardPage {
        frame: Frame::new(
            format!("Model card: {} v{}", manifest.name, model.version_label),
            "",
        ),
        head: model_head(&catalog, &model, &target, "card"),
        sections: crate::train::report::model_card_sections(manifest, metrics.as_ref()),
    };
    Ok(render(StatusCode::OK, &page, None))
}
