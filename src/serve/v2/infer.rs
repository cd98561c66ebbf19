//! `POST /v2/models/{name}[/versions/{v}]/infer`: tensors (JSON or binary) decoded, the
//! protocol's inference ([`super::answer`]), and the requested outputs back (JSON or binary,
//! with the classification extension).

use super::answer::{AnsweredOutput, answer};
use super::decode::decode_inputs;
use super::outputs::ResponseOutput;
use super::tensor::{self, InferRequest};
use super::{ModelPath, find};
use crate::model::LoadedModel;
use crate::serve::predict::Asked;
use crate::serve::protocol_error::ProtocolError;
use crate::serve::state::App;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;

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
