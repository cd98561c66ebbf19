//! `POST /api/predictions/{request_id}/feedback`: what was true for a logged prediction, the
//! ground truth that live metrics stand on. A classifier's feedback is its true label
//! (`{"label": "…"}`, counted in live accuracy, precision and recall); a model that predicts a
//! number takes its true value (`{"value": 151.0}`, counted in live RMSE, MAE and R²). A second
//! post for the same row corrects the first.

use super::body::PathParams;
use super::monitoring::{database_problem, invalid_parameter, log_of, store_of};
use super::predict::Asked;
use super::problem::Problem;
use super::state::App;
use crate::model::FieldError;
use crate::store::{FoundPrediction, Truth};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The body of a feedback post: `{"label": "…", "row": 0}` or `{"value": 151.0, "row": 0}`.
struct Feedback {
    /// The true label or value.
    truth: Truth,
    /// The row of a batch request (0 for a single row).
    row: u32,
}

impl Feedback {
    /// Reads the body, listing every problem with a field. `row` is any JSON number with a whole
    /// value (`3` or `3.0`, as JSON Schema's `integer` allows) from 0 to `u32::MAX`.
    fn parse(bytes: &[u8]) -> Result<Feedback, Problem> {
        super::body::refuse_duplicate_keys(bytes).map_err(Problem::bad_request)?;
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(Problem::bad_request(
                "expected a JSON object: {\"label\": \"…\", \"row\": 0} for a classifier, \
                 {\"value\": 151.0, \"row\": 0} for a model that predicts a number",
            ));
        };
        let mut errors = Vec::new();
        let truth = truth_of(&fields, &mut errors);
        let row = row_of(&fields, &mut errors);
        for key in fields
            .keys()
            .filter(|k| !["label", "value", "row"].contains(&k.as_str()))
        {
            errors.push(FieldError {
                field: key.clone(),
                message: "unknown field; the fields are label (or value) and row".into(),
            });
        }
        match (truth, row) {
            (Some(truth), Some(row)) if errors.is_empty() => Ok(Feedback { truth, row }),
            _ => Err(Problem::invalid(errors)),
        }
    }
}

/// The true label or value of a body; one of the two, of its type.
fn truth_of(fields: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Truth> {
    let mut problem = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.to_string(),
            message,
        });
        None
    };
    match (fields.get("label"), fields.get("value")) {
        (Some(_), Some(_)) => problem(
            "value",
            "send either label (a classifier) or value (a model that predicts a number), not both"
                .into(),
        ),
        (None, None) => problem(
            "label",
            "missing: the true label is required (or, for a model that predicts a number, the \
             true value as \"value\")"
                .into(),
        ),
        (Some(Value::String(label)), None) if label.is_empty() => {
            problem("label", "empty: expected one of the model's labels".into())
        }
        (Some(Value::String(label)), None) => Some(Truth::Label(label.clone())),
        (Some(Value::Number(_)), None) => problem(
            "label",
            "expected text, got a number; for a model that predicts a number, send the true \
             value as \"value\""
                .into(),
        ),
        (Some(other), None) => problem("label", format!("expected text, got {}", kind_of(other))),
        (None, Some(Value::Number(number))) => match number.as_f64() {
            Some(value) if value.is_finite() => Some(Truth::Value(value)),
            _ => problem("value", format!("expected a finite number, got {number}")),
        },
        (None, Some(other)) => problem(
            "value",
            format!("expected a number, got {}", kind_of(other)),
        ),
    }
}

/// The row a body names (0 when it names none).
fn row_of(fields: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<u32> {
    let Some(value) = fields.get("row") else {
        return Some(0);
    };
    let row = value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(v))
        .map(|v| v as u32);
    if row.is_none() {
        errors.push(FieldError {
            field: "row".into(),
            message: format!(
                "expected a whole number from 0 to {}, got {value}",
                u32::MAX
            ),
        });
    }
    row
}

/// How a JSON value is named in a message.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses feedback of the other kind than the prediction (a label for a number, or a value
/// for a class), and a label the version does not know (when the version is still served).
fn check_fits(app: &App, found: &FoundPrediction, truth: &Truth) -> Result<(), Problem> {
    match (&found.predicted, truth) {
        (Truth::Value(_), Truth::Label(_)) => {
            return Err(invalid_parameter(
                "label",
                format!(
                    "model '{}' predicts a number: send the true value as \"value\", such as \
                     {{\"value\": 151.0}}",
                    found.model
                ),
            ));
        }
        (Truth::Label(_), Truth::Value(_)) => {
            return Err(invalid_parameter(
                "value",
                format!(
                    "model '{}' is a classifier: send the true label as \"label\"",
                    found.model
                ),
            ));
        }
        _ => {}
    }
    let Truth::Label(label) = truth else {
        return Ok(());
    };
    if let Ok(model) = app
        .repository
        .catalog()
        .resolve(&found.model, Some(&found.version))
    {
        let labels = &model.artifact.manifest.labels;
        if !labels.contains(label) {
            let known: Vec<String> = labels.iter().map(|l| format!("\"{l}\"")).collect();
            return Err(invalid_parameter(
                "label",
                format!(
                    "unknown label \"{label}\": expected one of {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// POST /api/predictions/{request_id}/feedback: the true label or value of a logged prediction.
pub async fn post_feedback(
    State(app): State<App>,
    PathParams(request_id): PathParams<String>,
    asked: Asked,
    content_type: super::body::ContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let store = store_of(&app)?;
    let bytes = super::body::json_bytes(&content_type, body)?;
    let feedback = Feedback::parse(&bytes)?;
    let found = store
        .find_prediction(&request_id, feedback.row)
        .await
        .map_err(|e| database_problem(&e))?;
    let Some(found) = found else {
        return Err(Problem::not_found(format!(
            "no logged prediction with request id '{request_id}' and row {}; predictions are written within a second of their answer",
            feedback.row
        )));
    };
    check_fits(&app, &found, &feedback.truth)?;
    let found = log_of(&app)?
        .give_feedback(
            &request_id,
            feedback.row,
            feedback.truth.clone(),
            asked.caller.as_deref(),
        )
        .await
        .map_err(|e| database_problem(&e))?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "the prediction with request id '{request_id}' and row {} was erased meanwhile",
                feedback.row
            ))
        })?;
    metrics::counter!("mlserve_feedback_total", "model" => found.model.clone(), "version" => found.version.clone())
        .increment(1);
    let mut answer = json!({
        "request_id": request_id,
        "row": feedback.row,
        "model": found.model,
        "version": found.version,
        "predicted": found.predicted.to_json(),
    });
    match (&found.predicted, &feedback.truth) {
        (Truth::Value(predicted), Truth::Value(actual)) => {
            answer["value"] = json!(actual);
            answer["residual"] = json!(actual - predicted);
        }
        (predicted, truth) => {
            answer["label"] = truth.to_json();
            answer["correct"] = json!(predicted == truth);
        }
    }
    Ok(Json(answer).into_response())
}
