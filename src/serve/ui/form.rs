//! A model's prediction form: the inputs made from its schema, and the answer to a post,
//! with the problems beside their fields and the typed values kept.

use super::csrf;
use super::model_ref::*;
use super::numbers::format_value;
use super::pages::{
    ClassView, ErrorItem, FieldView, Frame, MarkView, ModelPage, OptionView, PredictionView,
    ValueView,
};
use super::render::*;
use crate::data::ColumnKind;
use crate::model::{
    Catalog, FeatureSchema, FieldError, LoadedModel, Outcome, PredictFailure, Prediction, RawValue,
    sample,
};
use crate::serve::body::parse_query;
use crate::serve::middleware::RequestId;
use crate::serve::state::App;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use std::collections::HashMap;

pub(super) fn readable_number(value: f64) -> String {
    let rounded = format!("{value:.4}");
    rounded
        .parse::<f64>()
        .map_or(rounded, |number| number.to_string())
}

/// What a feature's input expects, in a line under it.
pub(super) fn hint(feature: &FeatureSchema) -> String {
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
pub(super) fn options(feature: &FeatureSchema, value: &str) -> Vec<OptionView> {
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

pub(super) fn field_id(index: usize) -> String {
    format!("feature-{index}")
}

/// One input per feature, holding `values` (by name) and showing `errors` (by name).
pub(super) fn field_views(
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
pub(super) const VERSION_FIELD: &str = "_version";

/// `?fill=random` asks for a random row instead of the example.
#[derive(serde::Deserialize)]
pub(super) struct FillQuery {
    fill: Option<String>,
}

pub(super) fn model_page(
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
pub(super) async fn model_form(
    State(app): State<App>,
    target: ModelRef,
    Query(fill): Query<FillQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (catalog, model) = find_model(&app, &target)?;
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
    Ok(render(StatusCode::OK, &page, token.set_cookie))
}

/// The page for a refused post: what went wrong, and a way back.
pub(super) fn refused_post(error: csrf::CsrfError, back: &str) -> Response {
    message(
        StatusCode::FORBIDDEN,
        "The form could not be accepted",
        &format!(
            "{error}. Open the page again and resubmit; if this keeps happening, allow cookies for this site."
        ),
        Some((back, "Open the form again")),
    )
}

pub(super) fn is_form_post(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

pub(super) fn prediction_view(model: &LoadedModel, prediction: &Prediction) -> PredictionView {
    let labels = &model.artifact.manifest.labels;
    let (classes, value) = match &prediction.outcome {
        Outcome::Class {
            class,
            probabilities,
        } => (
            labels
                .iter()
                .zip(probabilities)
                .enumerate()
                .map(|(index, (label, &value))| ClassView {
                    label: label.clone(),
                    value,
                    percent: format!("{:.1}%", value * 100.0),
                    top: index == *class,
                })
                .collect(),
            None,
        ),
        Outcome::Value(value) => (Vec::new(), Some(value_view(model, *value))),
    };
    PredictionView {
        label: match &value {
            Some(view) => view.text.clone(),
            None => prediction.label(model).unwrap_or_default().to_string(),
        },
        classes,
        value,
        warnings: prediction
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect(),
        explanation: super::explain::explanation_view(model, prediction),
        explanation_note: None,
    }
}

/// The most an explanation may weigh (in predictions) for the form to show it with every answer.
const CHEAP_EXPLANATION: usize = 10;

/// A predicted value on the bar of the training target's range.
fn value_view(model: &LoadedModel, value: f64) -> ValueView {
    let Some(target) = &model.artifact.manifest.target else {
        return ValueView {
            target: "prediction".to_string(),
            text: format_value(value),
            position: 50.0,
            marker_x: 49.2,
            marks: Vec::new(),
            placement: String::new(),
        };
    };
    let [q1, median, q3] = target.quartiles;
    let span = target.max - target.min;
    let place = |v: f64| {
        if span > 0.0 {
            ((v - target.min) / span * 100.0).clamp(0.0, 100.0)
        } else {
            50.0
        }
    };
    let points = [
        ("min", target.min),
        ("25%", q1),
        ("median", median),
        ("75%", q3),
        ("max", target.max),
    ];
    ValueView {
        target: target.name.clone(),
        text: format_value(value),
        position: place(value),
        marker_x: place(value).clamp(0.8, 99.2) - 0.8,
        marks: points
            .iter()
            .map(|&(name, v)| MarkView {
                name,
                text: format_value(v),
                position: place(v).min(99.6),
            })
            .collect(),
        placement: placement(value, &points),
    }
}

/// Where `value` lies among the training target's minimum, quartiles and maximum, in words.
fn placement(value: f64, points: &[(&str, f64); 5]) -> String {
    let describe = |(name, v): (&str, f64)| match name {
        "min" => format!("the training minimum ({})", format_value(v)),
        "max" => format!("the training maximum ({})", format_value(v)),
        "median" => format!("the median ({})", format_value(v)),
        "25%" => format!("the 25th percentile ({})", format_value(v)),
        _ => format!("the 75th percentile ({})", format_value(v)),
    };
    if value < points[0].1 {
        return format!("below {}", describe(points[0]));
    }
    if value > points[4].1 {
        return format!("above {}", describe(points[4]));
    }
    let upper = points
        .iter()
        .position(|&(_, v)| value <= v)
        .unwrap_or(points.len() - 1)
        .max(1);
    format!(
        "between {} and {}",
        describe(points[upper - 1]),
        describe(points[upper])
    )
}

/// Field problems by feature name, and the summary list with links to the inputs.
pub(super) fn error_views(
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
pub(super) async fn model_predict(
    State(app): State<App>,
    target: ModelRef,
    rid: RequestId,
    asked: crate::serve::predict::Asked,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let base = target.base();
    if !is_form_post(&headers) {
        return Ok(message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "this page takes a form post (application/x-www-form-urlencoded); programs should use the REST API",
            Some((&base, "Open the form")),
        ));
    }
    let text = String::from_utf8_lossy(&body);
    let pairs = parse_query(&text)?;
    let hidden = |field: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
    };
    if let Err(error) = csrf::verify(&headers, hidden(csrf::FIELD)) {
        tracing::warn!(request_id = rid.0.as_str(), %error, "form post refused");
        return Ok(refused_post(error, &base));
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
    let (catalog, model) = find_model(&app, &shown).or_else(|_| find_model(&app, &target))?;
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
    // Answers are explained when the model explains exactly (as cheaply as about ten
    // predictions); KernelSHAP's thousands of predictions are for who asks the API.
    let (explain, note) = match model.explanation_plan() {
        Ok(plan) if plan.row_weight <= CHEAP_EXPLANATION.min(app.settings.max_batch_rows) => {
            (crate::serve::predict::explainer(&model).await.is_ok(), None)
        }
        Ok(_) => (
            false,
            Some(format!(
                "This model's explanations (KernelSHAP) cost thousands of predictions each, so \
                 the form does not ask for them: POST /api/models/{}/predict?explain=true does.",
                model.name()
            )),
        ),
        Err(reason) => (false, Some(format!("No explanation: {reason}."))),
    };
    let outcome = match row {
        Some(row) => {
            crate::serve::predict::predict(&app, &model, vec![row], &asked, false, explain).await
        }
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
            page.prediction = predictions.first().map(|p| PredictionView {
                explanation_note: note,
                ..prediction_view(&model, p)
            });
            StatusCode::OK
        }
        Err(PredictFailure::Invalid(errors)) => {
            let features = &model.artifact.manifest.features;
            let (by_field, summary) = error_views(features, &errors);
            page.fields = field_views(features, &values, &by_field);
            page.errors = summary;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(failure) => return Err(failure.into()),
    };
    Ok(render(status, &page, token.set_cookie))
}
