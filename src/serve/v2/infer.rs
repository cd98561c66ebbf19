//! `POST /v2/models/{name}[/versions/{v}]/infer`: tensors (JSON or binary) into validated
//! rows, the one predict path, and the requested outputs back (JSON or binary, with the
//! classification extension).

use super::answer::{AnsweredOutput, answer};
use super::decode::decode_inputs;
use super::outputs::ResponseOutput;
use super::tensor::{self, Elements, InferRequest, Tensor};
use super::{ModelPath, find};
use crate::model::{LoadedModel, RawValue, UnknownFields, ValidRow};
use crate::serve::predict::Asked;
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
    let valid = model
        .validator
        .validate(fields, UnknownFields::Reject, "", &mut row_errors);
    keep_row(row, valid, row_errors, rows, errors);
}

/// Keeps a validated row, or its problems as "row N: field: message".
fn keep_row(
    row: usize,
    valid: Option<ValidRow>,
    row_errors: Vec<crate::model::FieldError>,
    rows: &mut Vec<ValidRow>,
    errors: &mut Vec<String>,
) {
    match valid {
        Some(valid) => rows.push(valid),
        None => errors.extend(
            row_errors
                .into_iter()
                .map(|e| format!("row {row}: {}: {}", e.field, e.message)),
        ),
    }
}

/// Turns the input tensors into validated rows.
pub(in crate::serve) fn rows_from_tensors(
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
        rows.reserve(tensor.shape[0]);
        for row in 0..tensor.shape[0] {
            // The columns are the features in schema order: no name to look up.
            let values = (0..width).map(|column| cell(tensor, row * width + column));
            let mut row_errors = Vec::new();
            let valid = model
                .validator
                .validate_in_order(values, "", &mut row_errors);
            keep_row(row, valid, row_errors, &mut rows, &mut errors);
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
    let answered = answer(app, model, asked, &request, &tensors).await?;
    let manifest = &model.artifact.manifest;
    let default_binary = flag(request.parameters.as_ref(), "binary_data_output");
    let mut outputs = Vec::with_capacity(answered.len());
    let mut binary_out = Vec::new();
    for AnsweredOutput {
        name,
        parameters,
        data,
        shape,
    } in answered
    {
        let binary = parameters
            .and_then(|p| p.get("binary_data"))
            .and_then(Value::as_bool)
            .unwrap_or(default_binary);
        let mut entry = ResponseOutput {
            name,
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

#[cfg(test)]
mod tests {
    use super::super::tensor::DataType;

    #[test]
    fn datatypes_round_trip_their_names() {
        for name in ["BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES", "UINT8"] {
            assert_eq!(DataType::parse(name).map(DataType::name), Some(name));
        }
    }
}
