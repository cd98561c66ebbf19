//! Which model (and version) a page is about, from its path, and the heading of its pages.

use super::numbers::*;
use super::pages::{ModelHead, VersionLink};
use super::render::*;
use crate::model::{Catalog, LoadedModel};
use crate::serve::problem::Problem;
use crate::serve::state::App;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;

/// Which model (and version) a UI page is about, from its path.
pub struct ModelRef {
    /// The model's name.
    pub(super) name: String,
    /// The version the path pins, if any.
    pub(super) version: Option<String>,
}

impl ModelRef {
    /// Base URL of this model's pages.
    pub(super) fn base(&self) -> String {
        match &self.version {
            Some(version) => format!(
                "/ui/models/{}/versions/{}",
                encode_segment(&self.name),
                encode_segment(version)
            ),
            None => format!("/ui/models/{}", encode_segment(&self.name)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ModelRef {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params =
            axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    message(
                        StatusCode::BAD_REQUEST,
                        "Bad Request",
                        &format!("the address cannot be decoded: {}", rejection.body_text()),
                        Some(("/", "Back to the models")),
                    )
                })?;
        let Some(name) = params.get("name") else {
            return Err(message(
                StatusCode::NOT_FOUND,
                "Not Found",
                "no model in the address",
                Some(("/", "Back to the models")),
            ));
        };
        Ok(ModelRef {
            name: name.clone(),
            version: params.get("version").cloned(),
        })
    }
}

/// Percent-encodes a path segment (model names are plain, but versions come from the URL).
pub(super) fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The model a page is about, with the catalog it was found in.
pub(super) fn find_model(
    app: &App,
    target: &ModelRef,
) -> Result<(Arc<Catalog>, Arc<LoadedModel>), Problem> {
    let catalog = app.repository.catalog();
    let model = catalog.resolve(&target.name, target.version.as_deref())?;
    crate::serve::middleware::answered_by(&model);
    Ok((catalog, model))
}

/// The heading of a model's pages.
pub(super) fn model_head(
    catalog: &Catalog,
    model: &LoadedModel,
    target: &ModelRef,
    tab: &'static str,
) -> ModelHead {
    let manifest = &model.artifact.manifest;
    let mut summary = match &manifest.target {
        Some(target) if manifest.task == crate::model::Task::Regression => {
            format!("predicts {}", target.name)
        }
        _ if manifest.task == crate::model::Task::Regression => "predicts a number".to_string(),
        _ => format!("{} classes", manifest.labels.len()),
    };
    if let Some(quality) = held_out_quality(manifest) {
        summary.push_str(&format!(" · {quality}"));
    }
    match &manifest.imported {
        Some(imported) => summary.push_str(&format!(
            " · imported {} from {}",
            manifest.created_at, imported.producer
        )),
        None => summary.push_str(&format!(" · trained {}", manifest.created_at)),
    }
    let suffix = match tab {
        "predict" => "",
        "batch" => "/batch",
        "monitoring" => "/monitoring",
        _ => "/card",
    };
    let versions = catalog
        .models
        .get(&target.name)
        .map(|entry| {
            entry
                .versions
                .iter()
                .map(|(version, slot)| {
                    let label = version.to_string();
                    VersionLink {
                        current: label == model.version_label,
                        label: match slot.loaded {
                            Some(_) => label.clone(),
                            None => format!("{label} (failed)"),
                        },
                        href: format!(
                            "/ui/models/{}/versions/{label}{suffix}",
                            encode_segment(&target.name)
                        ),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    ModelHead {
        name: manifest.name.clone(),
        version: model.version_label.clone(),
        algorithm: manifest.algorithm_name().to_string(),
        summary,
        base: target.base(),
        tab,
        versions,
    }
}
