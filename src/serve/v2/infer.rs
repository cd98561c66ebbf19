//! `POST /v2/models/{name}[/versions/{v}]/infer`: tensors (JSON or binary) into validated
//! rows, the one predict path, and the requested outputs back (JSON or binary, with the
//! classification extension).

use super::decode::decode_inputs;
use super::outputs::{OutputData, ResponseOutput};
use super::tensor::{self, Elements, InferRequest, Tensor};
use super::{ModelPath, find};
use crate::model::{LoadedModel, Outcome, Prediction, RawValue, Task, UnknownFields, ValidRow};
use crate::serve::predict::{Asked, predict};
use crate::serve::protocol_error::{LISTED_PROBLEMS, ProtocolError};
use crate::serve::state::App;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The value of row `row`, column `column` of a tensor, for the validator.
pub(super) fn cell(tensor: &Tensor, index: usize) -> RawValue<'_> {
    match &tensor.elements {
        Elements::Numbers(v) => RawValue::Number(v[index]),
        Elements::Bools(v) => RawValue::Bool(v[index]),
        Elements::Texts(v) => RawValue::Text(&v[index]),
    }
}

/// Validates one row, collecting its problems as "row N: field: message".
pub(super) fn validate_row<'a>(
    model: &LoadedModel,
    row: usize,
    fields: impl IntoIterator<Item = (&'a str, RawValue<'a>)>,
    rows: &mut Vec<ValidRow>,
    errors: &mut Vec<String>,
) {
    let mut row_errors = Vec::new();
    match model
        .validator
        .validate(fields, UnknownFields::Reject, "", &mut row_errors)
    {
        Some(valid) => rows.push(valid),
        None => errors.extend(
            row_errors
                .into_iter()
                .map(|e| format!("row {row}: {}: {}", e.field, e.message)),
        ),
    }
}

/// Turns the input tensors into validated rows.
pub(super) fn rows_from_tensors(
    model: &LoadedModel,
    tensors: &[Tensor],
    max_rows: usize,
) -> Result<Vec<ValidRow>, String> {
    let too_many = |rows: usize| {
        (rows > max_rows).then(|| {
            format!(
                "inference request batch-size must be <= {max_rows} for '{}' (setting max_batch_rows), got {rows}",
                model.name()
            )
        })
    };
    let name = model.name();
    let features = &model.artifact.manifest.features;
    let feature_list = || {
        features
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let is_feature = |n: &str| features.iter().any(|f| f.name == n);
    // One [N, F] matrix, or one [N] / [N, 1] tensor per feature.
    let matrix = match tensors {
        [only] if !is_feature(&only.name) => Some(only),
        _ => None,
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    if let Some(tensor) = matrix {
        if tensor.name != "input" {
            return Err(format!(
                "unexpected inference input '{}' for model '{name}': send 'input' of shape [N, {}] (the features in this order: {}) or one tensor per feature",
                tensor.name,
                features.len(),
                feature_list()
            ));
        }
        if tensor.shape.len() != 2 || tensor.shape[1] != features.len() {
            return Err(format!(
                "unexpected shape for input 'input' for model '{name}'. Expected [-1,{}], got {:?}",
                features.len(),
                tensor.shape
            ));
        }
        if let Some(message) = too_many(tensor.shape[0]) {
            return Err(message);
        }
        let width = features.len();
        for row in 0..tensor.shape[0] {
            let fields = features
                .iter()
                .enumerate()
                .map(|(column, f)| (f.name.as_str(), cell(tensor, row * width + column)));
            validate_row(model, row, fields, &mut rows, &mut errors);
        }
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut batch = None;
        for tensor in tensors {
            if !is_feature(&tensor.name) {
                return Err(format!(
                    "unexpected inference input '{}' for model '{name}': the inputs are 'input' ([N, {}]) or one per feature: {}",
                    tensor.name,
                    features.len(),
                    feature_list()
                ));
            }
            if !seen.insert(tensor.name.as_str()) {
                return Err(format!("input '{}' is given twice", tensor.name));
            }
            let rows_here = match tensor.shape.as_slice() {
                [n] | [n, 1] => *n,
                other => {
                    return Err(format!(
                        "unexpected shape for input '{}' for model '{name}'. Expected [-1] or [-1,1], got {other:?}",
                        tensor.name
                    ));
                }
            };
            if *batch.get_or_insert(rows_here) != rows_here {
                return Err(format!(
                    "inputs disagree on the batch size: '{}' has {rows_here} rows, others {}",
                    tensor.name,
                    batch.unwrap_or(0)
                ));
            }
        }
        let missing: Vec<&str> = features
            .iter()
            .map(|f| f.name.as_str())
            .filter(|f| !seen.contains(f))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "expected {} inputs but got {} inputs for model '{name}': missing required input(s) {}",
                features.len(),
                tensors.len(),
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(message) = too_many(batch.unwrap_or(0)) {
            return Err(message);
        }
        for row in 0..batch.unwrap_or(0) {
            let fields = tensors.iter().map(|t| (t.name.as_str(), cell(t, row)));
            validate_row(model, row, fields, &mut rows, &mut errors);
        }
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(LISTED_PROBLEMS);
        let mut message = errors
            .into_iter()
            .take(LISTED_PROBLEMS)
            .collect::<Vec<_>>()
            .join("; ");
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        return Err(message);
    }
    if rows.is_empty() {
        return Err("the batch is empty: send at least one row".to_string());
    }
    Ok(rows)
}

/// Whether a parameter is `true`.
pub(super) fn flag(parameters: Option<&Map<String, Value>>, name: &str) -> bool {
    parameters
        .and_then(|p| p.get(name))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The `[N, k]` classification of the probabilities: "value:index:label", best first.
pub(super) fn classification(labels: &[String], probabilities: &[&[f64]], k: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(probabilities.len() * k);
    for row in probabilities {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &class in order.iter().take(k) {
            out.push(format!("{:.6}:{class}:{}", row[class], labels[class]));
        }
    }
    out
}

/// The JSON part of an inference request. Bare `NaN`, `Infinity` and `-Infinity`, which
/// Python's json module writes for float tensors (tritonclient and the kserve SDK send them),
/// are not JSON: the request is read again with them quoted, and FP tensors take them as those
/// numbers (a NaN is a missing value for a nullable feature).
fn parse_request(json_part: &[u8]) -> Result<InferRequest, ProtocolError> {
    crate::serve::body::from_slice_lenient(json_part).map_err(|error| {
        ProtocolError::from(format!(
            "the inference request is not valid JSON for the protocol: {error}"
        ))
    })
}

/// POST /v2/models/{name}[/versions/{version}]/infer
pub async fn infer(
    State(app): State<App>,
    path: ModelPath,
    asked: Asked,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProtocolError> {
    let model = find(&app, &path.name, path.version.as_deref())?;
    let body =
        body.map_err(|rejection| ProtocolError::new(rejection.status(), rejection.body_text()))?;
    infer_with(&app, &model, &asked, &headers, &body).await
}

pub(super) async fn infer_with(
    app: &App,
    model: &Arc<LoadedModel>,
    asked: &Asked,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ProtocolError> {
    let header_length = headers
        .get(tensor::HEADER_LENGTH)
        .map(|v| v.to_str().unwrap_or("not text"));
    let (json_part, binary) = tensor::split_body(body, header_length)?;
    // tritonclient sends no Content-Type: the body is read as JSON whatever it says.
    let request: InferRequest = parse_request(json_part)?;
    let tensors = decode_inputs(&request, binary)?;
    let rows = rows_from_tensors(model, &tensors, app.settings.max_batch_rows)?;
    // The outputs are checked before anything is predicted: a refused request is neither
    // counted nor logged.
    let requested = requested_outputs(model, &request)?;
    let explain = requested.iter().any(|r| r.name == CONTRIBUTIONS);
    let predictions = predict(app, model, rows, asked, true, explain).await?;
    let manifest = &model.artifact.manifest;
    let default_binary = flag(request.parameters.as_ref(), "binary_data_output");
    let mut outputs = Vec::with_capacity(requested.len());
    let mut binary_out = Vec::new();
    for Requested {
        name: output,
        parameters,
        top,
    } in requested
    {
        let (data, shape) = output_tensor(model, &predictions, &output, top);
        let binary = parameters
            .and_then(|p| p.get("binary_data"))
            .and_then(Value::as_bool)
            .unwrap_or(default_binary);
        let mut entry = ResponseOutput {
            name: output,
            datatype: data.datatype(),
            shape,
            parameters: None,
            data: None,
        };
        if binary {
            let before = binary_out.len();
            data.write_binary(&mut binary_out);
            let mut parameters = Map::new();
            parameters.insert("binary_data_size".into(), json!(binary_out.len() - before));
            entry.parameters = Some(parameters);
        } else {
            entry.data = Some(data.to_json());
        }
        outputs.push(entry);
    }
    let mut answer = json!({
        "model_name": manifest.name,
        "model_version": model.version_label,
        "outputs": outputs,
    });
    if let Some(id) = request.id.as_ref().filter(|id| !id.is_empty()) {
        answer["id"] = json!(id);
    }
    let json_bytes = serde_json::to_vec(&answer)
        .map_err(|e| ProtocolError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if binary_out.is_empty() && !outputs.iter().any(|o| o.parameters.is_some()) {
        return Ok(([(header::CONTENT_TYPE, "application/json")], json_bytes).into_response());
    }
    let header_length = json_bytes.len();
    let mut body = json_bytes;
    body.extend_from_slice(&binary_out);
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&header_length.to_string()) {
        response.headers_mut().insert(tensor::HEADER_LENGTH, value);
    }
    Ok(response)
}

/// One output a request asks for.
struct Requested<'a> {
    name: String,
    parameters: Option<&'a Map<String, Value>>,
    /// The `classification` parameter: the best k classes.
    top: Option<usize>,
}

/// The output of explanations: FP64 `[N, F + 1]` (`[N, C, F + 1]` for a multiclass model),
/// laid out as XGBoost's `pred_contribs`, the base value last.
pub(super) const CONTRIBUTIONS: &str = "contributions";

/// The request parameter `explain`, when given: true adds the [`CONTRIBUTIONS`] output to the
/// default outputs.
fn explain_parameter(request: &InferRequest) -> Result<Option<bool>, ProtocolError> {
    match request.parameters.as_ref().and_then(|p| p.get("explain")) {
        None => Ok(None),
        Some(Value::Bool(explain)) => Ok(Some(*explain)),
        Some(other) => Err(format!("parameter explain must be true or false, got {other}").into()),
    }
}

/// The outputs a request asks for (all of the model's when it names none, and
/// [`CONTRIBUTIONS`] when it asks to explain or names it), each checked: known to the model,
/// asked once, `classification` a positive count and only on `probabilities`.
fn requested_outputs<'a>(
    model: &LoadedModel,
    request: &'a InferRequest,
) -> Result<Vec<Requested<'a>>, ProtocolError> {
    let mut checked = checked_outputs(model, request)?;
    let named = checked.iter().any(|r| r.name == CONTRIBUTIONS);
    match (
        explain_parameter(request)?,
        request.outputs.is_some(),
        named,
    ) {
        // Outputs named: those are the answer, and they must agree with the parameter.
        (Some(true), true, false) => {
            return Err(format!(
                "parameter explain asks for the output '{CONTRIBUTIONS}', which the request's \
                 outputs leave out: name it among them"
            )
            .into());
        }
        (Some(false), _, true) => {
            return Err(format!(
                "the output '{CONTRIBUTIONS}' is asked for with parameter explain false"
            )
            .into());
        }
        (Some(true), false, _) => checked.push(Requested {
            name: CONTRIBUTIONS.to_string(),
            parameters: None,
            top: None,
        }),
        _ => {}
    }
    Ok(checked)
}

fn checked_outputs<'a>(
    model: &LoadedModel,
    request: &'a InferRequest,
) -> Result<Vec<Requested<'a>>, ProtocolError> {
    let names = output_names(model);
    let Some(outputs) = &request.outputs else {
        return Ok(names
            .iter()
            .map(|name| Requested {
                name: name.to_string(),
                parameters: None,
                top: None,
            })
            .collect());
    };
    let mut seen = std::collections::HashSet::new();
    let mut checked = Vec::with_capacity(outputs.len());
    for output in outputs {
        let name = output.name.as_str();
        if !seen.insert(name) {
            return Err(format!("output '{name}' is requested twice").into());
        }
        if !names.contains(&name) && name != CONTRIBUTIONS {
            return Err(format!(
                "unexpected inference output '{name}' for model '{}': the outputs are {} \
                 (and {CONTRIBUTIONS}, with parameter explain)",
                model.name(),
                names.join(", ")
            )
            .into());
        }
        let parameters = output.parameters.as_ref();
        let top = match parameters.and_then(|p| p.get("classification")) {
            None => None,
            Some(value) => Some(value.as_u64().filter(|&k| k > 0).ok_or_else(|| {
                format!(
                    "output '{name}': classification must be a positive class count, got {value}"
                )
            })? as usize),
        };
        if top.is_some() && model.task() == Task::Regression {
            return Err(format!(
                "output '{name}': classification does not apply: model '{}' predicts a number \
                 and has no classes",
                model.name()
            )
            .into());
        }
        if top.is_some() && name != "probabilities" {
            return Err(
                format!("output '{name}': classification applies to 'probabilities' only").into(),
            );
        }
        checked.push(Requested {
            name: name.to_string(),
            parameters,
            top,
        });
    }
    Ok(checked)
}

/// The outputs a model answers, in the order they come when a request names none (as its
/// metadata lists them): a classifier's `label`, `label_index` and `probabilities`; a
/// regressor's `prediction`.
pub(super) fn output_names(model: &LoadedModel) -> &'static [&'static str] {
    match model.task() {
        Task::Classification => &["label", "label_index", "probabilities"],
        Task::Regression => &["prediction"],
    }
}

/// One output's data and shape: `name` is one of [`output_names`], `k` the `classification`
/// parameter (only on `probabilities`).
fn output_tensor(
    model: &LoadedModel,
    predictions: &[Prediction],
    name: &str,
    k: Option<usize>,
) -> (OutputData, Vec<usize>) {
    let labels = &model.artifact.manifest.labels;
    let count = predictions.len();
    let classes = labels.len();
    let probabilities: Vec<&[f64]> = predictions
        .iter()
        .map(|p| match &p.outcome {
            Outcome::Class { probabilities, .. } => probabilities.as_slice(),
            Outcome::Value(_) => &[],
        })
        .collect();
    let class_of = |p: &Prediction| match p.outcome {
        Outcome::Class { class, .. } => class,
        Outcome::Value(_) => 0,
    };
    match (name, k) {
        (CONTRIBUTIONS, _) => contributions_tensor(model, predictions),
        (_, Some(k)) => {
            let k = k.min(classes);
            (
                OutputData::Texts(classification(labels, &probabilities, k)),
                vec![count, k],
            )
        }
        ("label", None) => (
            OutputData::Texts(
                predictions
                    .iter()
                    .map(|p| p.label(model).unwrap_or_default().to_string())
                    .collect(),
            ),
            vec![count],
        ),
        ("label_index", None) => (
            OutputData::Int64(predictions.iter().map(|p| class_of(p) as i64).collect()),
            vec![count],
        ),
        ("probabilities", None) => (
            OutputData::Fp64(
                probabilities
                    .iter()
                    .flat_map(|p| p.iter().copied())
                    .collect(),
            ),
            vec![count, classes],
        ),
        // "prediction", the one output of a regressor.
        _ => (
            OutputData::Fp64(
                predictions
                    .iter()
                    .map(|p| p.outcome.value().unwrap_or(f64::NAN))
                    .collect(),
            ),
            vec![count],
        ),
    }
}

/// Each row's contributions, per output, features then the base value last.
fn contributions_tensor(
    model: &LoadedModel,
    predictions: &[Prediction],
) -> (OutputData, Vec<usize>) {
    let features = model.artifact.manifest.features.len();
    let outputs = predictions
        .first()
        .and_then(|p| p.explanation.as_ref())
        .map_or(1, |e| e.outputs.len());
    let mut data = Vec::with_capacity(predictions.len() * outputs * (features + 1));
    for explanation in predictions.iter().filter_map(|p| p.explanation.as_ref()) {
        for output in &explanation.outputs {
            data.extend_from_slice(&output.features);
            data.push(output.base_value);
        }
    }
    let shape = if outputs == 1 {
        vec![predictions.len(), features + 1]
    } else {
        vec![predictions.len(), outputs, features + 1]
    };
    (OutputData::Fp64(data), shape)
}

#[cfg(test)]
mod tests {
    use super::super::tensor::DataType;
    use super::*;

    #[test]
    fn classification_lists_the_best_classes_first() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let out = classification(&labels, &[&[0.2, 0.7, 0.1]], 2);
        assert_eq!(out, ["0.700000:1:b", "0.200000:0:a"]);
    }

    #[test]
    fn datatypes_round_trip_their_names() {
        for name in ["BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES", "UINT8"] {
            assert_eq!(DataType::parse(name).map(DataType::name), Some(name));
        }
    }
}
