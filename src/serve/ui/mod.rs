//! The web UI, for people: the models at `/`, and for each model a prediction form, a batch
//! CSV upload and the model card under `/ui/models/{name}`.
//!
//! Pages are rendered on the server and work with JavaScript off: the form is a plain post
//! answered by a page. With JavaScript, `static/mlserve.js` posts the same form in the
//! background and swaps in the answer from the returned page, so there is one renderer.
//! Every input goes through the same validator as the REST API.

pub mod assets;
mod batch;
pub mod csrf;
mod downloads;
pub mod pages;

pub use downloads::Downloads;

use super::App;
use super::body::parse_query;
use super::middleware::{RequestId, tag};
use super::problem::Problem;
use crate::data::ColumnKind;
use crate::model::{
    Catalog, FeatureSchema, FieldError, LoadedModel, Manifest, PredictFailure, Prediction,
    RawValue, sample,
};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pages::{
    ClassView, DriftRow, ErrorItem, FieldView, Frame, LiveRow, MessagePage, ModelHead, ModelPage,
    ModelRow, OptionView, PredictionView, VersionLink, WindowLink,
};
use std::collections::HashMap;
use std::sync::Arc;

tokio::task_local! {
    /// Who is signed in, for the page being rendered (set by the auth middleware on UI routes).
    pub static SIGNED_IN: Option<std::sync::Arc<str>>;
}

/// The UI's routes.
pub fn routes(upload_limit: usize) -> Router<App> {
    let model_routes = Router::new()
        .route("/", get(model_form).post(model_predict))
        .route(
            "/batch",
            get(batch::batch_form)
                .post(batch::batch_upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/batch/example.csv", get(batch::example_csv))
        .route("/card", get(card))
        .route("/monitoring", get(monitoring_page));
    Router::new()
        .nest("/ui/models/{name}", model_routes.clone())
        .nest("/ui/models/{name}/versions/{version}", model_routes)
        .route("/ui", get(to_index))
        .route("/ui/", get(to_index))
        .route("/ui/models", get(to_index))
        .route("/ui/models/", get(to_index))
        .route("/ui/login", get(sign_in_form).post(sign_in))
        .route("/ui/logout", get(sign_out))
        .route("/ui/{*rest}", get(no_such_page))
        .route("/ui/downloads/{id}", get(batch::download))
        .route("/static/{file}", get(assets::serve))
}

async fn to_index() -> axum::response::Redirect {
    axum::response::Redirect::to("/")
}

/// Unknown pages under /ui answer a page, not the API's problem document.
async fn no_such_page(Extension(rid): Extension<RequestId>) -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not Found",
        "there is no such page",
        Some(("/", "Back to the models")),
        &rid.0,
    )
}

/// Headers of every UI page: no caching (pages hold CSRF tokens and predictions), and a
/// content security policy that allows only our own scripts and styles.
fn secure(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Renders a page with its status, or a plain 500 when the template fails.
fn render(status: StatusCode, page: &impl Template, cookie: Option<HeaderValue>) -> Response {
    match page.render() {
        Ok(html) => secure(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            cookie,
        ),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page cannot be shown; the server log has the cause",
            )
                .into_response()
        }
    }
}

/// A page that only says something: an error, or a refused post.
fn message(
    status: StatusCode,
    heading: &str,
    text: &str,
    link: Option<(&str, &str)>,
    request_id: &str,
) -> Response {
    let (link_href, link_text) = link.unwrap_or(("", ""));
    let page = MessagePage {
        frame: Frame::new(heading, ""),
        heading: heading.to_string(),
        message: text.to_string(),
        link_href: link_href.to_string(),
        link_text: link_text.to_string(),
        request_id: request_id.to_string(),
    };
    let mut response = render(status, &page, None);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// An error as a page, with a way back to the models: for browsers that reach a route that
/// does not exist.
pub fn error_page(status: StatusCode, heading: &str, text: &str, request_id: &str) -> Response {
    message(
        status,
        heading,
        text,
        Some(("/", "Back to the models")),
        request_id,
    )
}

/// A problem from the shared API code, shown as a page.
fn problem_page(problem: &Problem, request_id: &str) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let heading = status.canonical_reason().unwrap_or("Error");
    message(
        status,
        heading,
        &problem.detail,
        Some(("/", "Back to the models")),
        request_id,
    )
}

/// Which model (and version) a UI page is about, from its path.
pub struct ModelRef {
    name: String,
    version: Option<String>,
}

impl ModelRef {
    /// Base URL of this model's pages.
    fn base(&self) -> String {
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
                        "",
                    )
                })?;
        let Some(name) = params.get("name") else {
            return Err(message(
                StatusCode::NOT_FOUND,
                "Not Found",
                "no model in the address",
                Some(("/", "Back to the models")),
                "",
            ));
        };
        Ok(ModelRef {
            name: name.clone(),
            version: params.get("version").cloned(),
        })
    }
}

/// Percent-encodes a path segment (model names are plain, but versions come from the URL).
fn encode_segment(text: &str) -> String {
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
fn find_model(app: &App, target: &ModelRef) -> Result<(Arc<Catalog>, Arc<LoadedModel>), Problem> {
    let catalog = app.repository.catalog();
    let model = catalog.resolve(&target.name, target.version.as_deref())?;
    Ok((catalog, model))
}

fn format_metric(value: f64) -> String {
    format!("{value:.3}")
}

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
                accuracy: manifest
                    .and_then(Manifest::accuracy)
                    .map_or("–".into(), format_metric),
                roc_auc: manifest
                    .and_then(Manifest::roc_auc)
                    .map_or("–".into(), format_metric),
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

/// The heading of a model's pages.
fn model_head(
    catalog: &Catalog,
    model: &LoadedModel,
    target: &ModelRef,
    tab: &'static str,
) -> ModelHead {
    let manifest = &model.artifact.manifest;
    let mut summary = format!("{} classes", manifest.labels.len());
    if let Some(accuracy) = manifest.accuracy() {
        summary.push_str(&format!(" · accuracy {}", format_metric(accuracy)));
    }
    if let Some(auc) = manifest.roc_auc() {
        summary.push_str(&format!(" · ROC AUC {}", format_metric(auc)));
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

fn readable_number(value: f64) -> String {
    let rounded = format!("{value:.4}");
    rounded
        .parse::<f64>()
        .map_or(rounded, |number| number.to_string())
}

/// What a feature's input expects, in a line under it.
fn hint(feature: &FeatureSchema) -> String {
    let mut text = match feature.kind {
        ColumnKind::Number | ColumnKind::Integer => {
            let kind = if feature.kind == ColumnKind::Integer {
                "whole number"
            } else {
                "number"
            };
            match (feature.min, feature.max) {
                (Some(min), Some(max)) => format!(
                    "{kind}; trained on {} to {}",
                    readable_number(min),
                    readable_number(max)
                ),
                _ => kind.to_string(),
            }
        }
        ColumnKind::Boolean => "true or false".to_string(),
        ColumnKind::Categorical => {
            let count = feature.categories.as_ref().map_or(0, Vec::len);
            format!("one of {count} categories")
        }
        ColumnKind::String => "text".to_string(),
        ColumnKind::Date => "date, YYYY-MM-DD".to_string(),
        ColumnKind::DateTime => "date and time, e.g. 2024-05-01T12:00:00Z".to_string(),
    };
    if feature.nullable {
        text.push_str("; may be left empty");
    }
    text
}

/// The choices of a select: the categories (or true/false), an empty choice when the
/// feature may be missing, and the current value kept even when it is not a choice.
fn options(feature: &FeatureSchema, value: &str) -> Vec<OptionView> {
    let mut choices: Vec<String> = match feature.kind {
        ColumnKind::Boolean => vec!["true".into(), "false".into()],
        _ => feature.categories.clone().unwrap_or_default(),
    };
    if feature.nullable {
        choices.insert(0, String::new());
    }
    if !choices.iter().any(|c| c == value) {
        choices.insert(0, value.to_string());
    }
    choices
        .into_iter()
        .map(|choice| OptionView {
            selected: choice == value,
            text: if choice.is_empty() {
                "(missing)".to_string()
            } else {
                choice.clone()
            },
            value: choice,
        })
        .collect()
}

fn field_id(index: usize) -> String {
    format!("feature-{index}")
}

/// One input per feature, holding `values` (by name) and showing `errors` (by name).
fn field_views(
    features: &[FeatureSchema],
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> Vec<FieldView> {
    features
        .iter()
        .enumerate()
        .map(|(index, feature)| {
            let value = values.get(&feature.name).cloned().unwrap_or_default();
            let (control, inputmode) = match feature.kind {
                ColumnKind::Number => ("text", "decimal"),
                ColumnKind::Integer => ("text", "numeric"),
                ColumnKind::Boolean | ColumnKind::Categorical => ("select", ""),
                ColumnKind::Date => ("date", ""),
                ColumnKind::String | ColumnKind::DateTime => ("text", ""),
            };
            FieldView {
                id: field_id(index),
                name: feature.name.clone(),
                control,
                inputmode,
                options: if control == "select" {
                    options(feature, &value)
                } else {
                    Vec::new()
                },
                value,
                hint: hint(feature),
                error: errors.get(&feature.name).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// The hidden form field naming the version the form was made for.
const VERSION_FIELD: &str = "_version";

/// `?fill=random` asks for a random row instead of the example.
#[derive(serde::Deserialize)]
struct FillQuery {
    fill: Option<String>,
}

fn model_page(
    catalog: &Catalog,
    model: &LoadedModel,
    target: &ModelRef,
    csrf: String,
    values: &HashMap<String, String>,
) -> ModelPage {
    let manifest = &model.artifact.manifest;
    ModelPage {
        frame: Frame::new(format!("{} v{}", manifest.name, model.version_label), ""),
        head: model_head(catalog, model, target, "predict"),
        csrf,
        fields: field_views(&manifest.features, values, &HashMap::new()),
        prediction: None,
        errors: Vec::new(),
        request_id: String::new(),
    }
}

/// GET /ui/models/{name}: the form, filled with the example row or a random one.
async fn model_form(
    State(app): State<App>,
    target: ModelRef,
    Query(fill): Query<FillQuery>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let (catalog, model) = match find_model(&app, &target) {
        Ok(found) => found,
        Err(problem) => return problem_page(&problem, &rid.0),
    };
    let features = &model.artifact.manifest.features;
    let values: HashMap<String, String> = if fill.fill.as_deref() == Some("random") {
        sample::random_row(features, &mut rand::rng())
    } else {
        sample::example_row(features)
    }
    .into_iter()
    .collect();
    let token = csrf::token_for(&headers);
    let page = model_page(&catalog, &model, &target, token.value, &values);
    tag(render(StatusCode::OK, &page, token.set_cookie), &model)
}

/// The page for a refused post: what went wrong, and a way back.
fn refused_post(error: csrf::CsrfError, back: &str, request_id: &str) -> Response {
    message(
        StatusCode::FORBIDDEN,
        "The form could not be accepted",
        &format!(
            "{error}. Open the page again and resubmit; if this keeps happening, allow cookies for this site."
        ),
        Some((back, "Open the form again")),
        request_id,
    )
}

fn is_form_post(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn prediction_view(model: &LoadedModel, prediction: &Prediction) -> PredictionView {
    let labels = &model.artifact.manifest.labels;
    PredictionView {
        label: prediction.label(model).to_string(),
        classes: labels
            .iter()
            .zip(&prediction.probabilities)
            .enumerate()
            .map(|(index, (label, &value))| ClassView {
                label: label.clone(),
                value,
                percent: format!("{:.1}%", value * 100.0),
                top: index == prediction.class,
            })
            .collect(),
        warnings: prediction.warnings.clone(),
    }
}

/// Field problems by feature name, and the summary list with links to the inputs.
fn error_views(
    features: &[FeatureSchema],
    errors: &[FieldError],
) -> (HashMap<String, String>, Vec<ErrorItem>) {
    let by_field: HashMap<String, String> = errors
        .iter()
        .map(|e| (e.field.clone(), e.message.clone()))
        .collect();
    let summary = errors
        .iter()
        .map(|e| ErrorItem {
            anchor: features
                .iter()
                .position(|f| f.name == e.field)
                .map(field_id)
                .unwrap_or_default(),
            field: e.field.clone(),
            message: e.message.clone(),
        })
        .collect();
    (by_field, summary)
}

/// POST /ui/models/{name}: validates and predicts the form's row, answered by the same page
/// with the prediction, or with the problems beside their fields and the typed values kept.
async fn model_predict(
    State(app): State<App>,
    target: ModelRef,
    Extension(rid): Extension<RequestId>,
    asked: super::predict::Asked,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = target.base();
    if !is_form_post(&headers) {
        return message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "this page takes a form post (application/x-www-form-urlencoded); programs should use the REST API",
            Some((&base, "Open the form")),
            &rid.0,
        );
    }
    let text = String::from_utf8_lossy(&body);
    let pairs = match parse_query(&text) {
        Ok(pairs) => pairs,
        Err(problem) => return problem_page(&problem, &rid.0),
    };
    let hidden = |field: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
    };
    if let Err(error) = csrf::verify(&headers, hidden(csrf::FIELD)) {
        tracing::warn!(request_id = rid.0.as_str(), %error, "form post refused");
        return refused_post(error, &base, &rid.0);
    }
    // The row is judged by the version whose form the user filled, even if a reload has
    // made another version the default since.
    let shown = ModelRef {
        name: target.name.clone(),
        version: target
            .version
            .clone()
            .or_else(|| hidden(VERSION_FIELD).map(str::to_string)),
    };
    let (catalog, model) = match find_model(&app, &shown).or_else(|_| find_model(&app, &target)) {
        Ok(found) => found,
        Err(problem) => return problem_page(&problem, &rid.0),
    };
    let fields: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(name, _)| name != csrf::FIELD && name != VERSION_FIELD)
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut errors = Vec::new();
    let row = model.validator.validate(
        fields
            .iter()
            .map(|(name, value)| (*name, RawValue::Text(value))),
        app.settings.unknown_fields,
        "",
        &mut errors,
    );
    let outcome = match row {
        Some(row) => super::predict::predict(&app, &model, vec![row], &asked, false).await,
        None => Err(PredictFailure::Invalid(errors)),
    };
    let values: HashMap<String, String> = fields
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let token = csrf::token_for(&headers);
    let mut page = model_page(&catalog, &model, &target, token.value, &values);
    page.request_id = rid.0.clone();
    let status = match outcome {
        Ok(predictions) => {
            page.prediction = predictions.first().map(|p| prediction_view(&model, p));
            StatusCode::OK
        }
        Err(PredictFailure::Invalid(errors)) => {
            let features = &model.artifact.manifest.features;
            let (by_field, summary) = error_views(features, &errors);
            page.fields = field_views(features, &values, &by_field);
            page.errors = summary;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(failure) => return problem_page(&Problem::from(failure), &rid.0),
    };
    tag(render(status, &page, token.set_cookie), &model)
}

/// GET /ui/models/{name}/card: the model card in the UI's frame.
async fn card(
    State(app): State<App>,
    target: ModelRef,
    Extension(rid): Extension<RequestId>,
) -> Response {
    let (catalog, model) = match find_model(&app, &target) {
        Ok(found) => found,
        Err(problem) => return problem_page(&problem, &rid.0),
    };
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
            return message(
                StatusCode::NOT_FOUND,
                "No model card",
                &format!(
                    "model '{}' version {} has no readable metrics.json, so its card cannot be shown",
                    target.name, model.version_label
                ),
                Some((&target.base(), "Back to the model")),
                &rid.0,
            );
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
    tag(render(StatusCode::OK, &page, None), &model)
}

#[derive(serde::Deserialize)]
struct WindowQuery {
    window: Option<String>,
}

fn metric_text(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), format_metric)
}

/// GET /ui/models/{name}/monitoring?window=24h: live metrics from feedback, and drift.
async fn monitoring_page(
    State(app): State<App>,
    target: ModelRef,
    Query(query): Query<WindowQuery>,
    Extension(rid): Extension<RequestId>,
) -> Response {
    let (catalog, model) = match find_model(&app, &target) {
        Ok(found) => found,
        Err(problem) => return problem_page(&problem, &rid.0),
    };
    let choice = query.window.unwrap_or_else(|| "24h".to_string());
    let window =
        super::monitoring::parse_window(&choice).unwrap_or(std::time::Duration::from_secs(86_400));
    let base = target.base();
    let windows = ["1h", "24h", "7d"]
        .into_iter()
        .map(|label| WindowLink {
            label,
            href: format!("{base}/monitoring?window={label}"),
            current: label == choice,
        })
        .collect();
    let threshold = super::monitoring::DEFAULT_DRIFT_THRESHOLD;
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
        return tag(render(StatusCode::OK, &page, None), &model);
    };
    let live = super::monitoring::monitoring(log.store(), model.name(), window).await;
    let drift = super::monitoring::drift_report(&app, model.name(), window, threshold).await;
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
    tag(render(StatusCode::OK, &page, None), &model)
}

fn drift_row(feature: crate::store::drift::FeatureDrift) -> DriftRow {
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

/// A local page to return to after signing in; anything else goes to `/`.
fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with("/ui/login");
    if local {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn sign_in_response(
    status: StatusCode,
    headers: Option<&HeaderMap>,
    next: &str,
    text: &str,
    request_id: &str,
) -> Response {
    let token = csrf::token_for(headers.unwrap_or(&HeaderMap::new()));
    let page = pages::SignInPage {
        frame: Frame::new("Sign in", ""),
        csrf: token.value,
        next: safe_next(next),
        message: text.to_string(),
        request_id: request_id.to_string(),
    };
    render(status, &page, token.set_cookie)
}

/// The 401 answer to a UI page without credentials: the sign-in form, returning to `path`.
pub fn sign_in_page(path: &str, detail: &str, request_id: &str) -> Response {
    sign_in_response(StatusCode::UNAUTHORIZED, None, path, detail, request_id)
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// GET /ui/login
async fn sign_in_form(headers: HeaderMap, Query(query): Query<NextQuery>) -> Response {
    let next = query.next.unwrap_or_else(|| "/".to_string());
    sign_in_response(StatusCode::OK, Some(&headers), &next, "", "")
}

/// POST /ui/login: checks the credentials and keeps them in an HttpOnly, SameSite=Strict
/// cookie, sent back only to UI pages.
async fn sign_in(
    State(app): State<App>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = parse_query(&String::from_utf8_lossy(&body)).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let next = safe_next(&field("next"));
    if let Err(error) = csrf::verify(&headers, Some(&field(csrf::FIELD))) {
        return refused_post(error, "/ui/login", &rid.0);
    }
    let Some(auth) = &app.auth else {
        return axum::response::Redirect::to(&next).into_response();
    };
    let credential = if !field("key").is_empty() {
        super::auth::Credential::Key(field("key"))
    } else {
        super::auth::Credential::Basic(field("user"), field("password"))
    };
    match auth.authenticator().authenticate(&credential).await {
        Ok(principal) => {
            tracing::info!(
                request_id = rid.0.as_str(),
                caller = &*principal.name,
                "signed in to the web UI"
            );
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200",
                super::auth::SESSION_COOKIE,
                credential.to_cookie_value()
            );
            let mut response = axum::response::Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(refusal) => {
            metrics::counter!("mlserve_auth_failures_total", "reason" => "ui_sign_in").increment(1);
            tracing::warn!(
                request_id = rid.0.as_str(),
                ?refusal,
                "web UI sign-in failed"
            );
            sign_in_response(
                StatusCode::UNAUTHORIZED,
                Some(&headers),
                &next,
                "Those credentials are not valid.",
                &rid.0,
            )
        }
    }
}

/// GET /ui/logout: forgets the sign-in.
async fn sign_out() -> Response {
    let mut response = axum::response::Redirect::to("/ui/login").into_response();
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        super::auth::SESSION_COOKIE
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_local_pages() {
        assert_eq!(safe_next("/ui/models/iris"), "/ui/models/iris");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/ui/login"), "/");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("iris"), "iris");
        assert_eq!(encode_segment("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn numbers_in_hints_are_short() {
        assert_eq!(readable_number(4.3), "4.3");
        assert_eq!(readable_number(0.052630001), "0.0526");
        assert_eq!(readable_number(2501.0), "2501");
    }
}
