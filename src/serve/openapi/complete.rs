//! What every operation of the document says the same way, added after the paths are built:
//! the statuses any operation that takes a body can answer, and the names of the loaded models
//! and their versions as the path parameters' values (so Swagger UI offers them in a list and a
//! generated request reaches an operation instead of a 404).

use serde_json::{Map, Value, json};

/// Statuses of reading a request body, which every operation that takes one can answer.
const BODY_STATUSES: [(&str, &str); 3] = [
    (
        "400",
        "The body cannot be read: not valid JSON (or not the protocol's shape), or a content coding that does not decode.",
    ),
    (
        "413",
        "The body, after decompression, is larger than max_body_bytes (or the batch than max_batch_rows).",
    ),
    (
        "415",
        "The Content-Type is missing or not the one the operation takes, or the Content-Encoding is not gzip, deflate, br or zstd.",
    ),
];

/// Adds the body statuses an operation with a `requestBody` does not list yet, in its
/// protocol's error shape: `{"error"}` under /v1 and /v2, problem details elsewhere.
pub fn add_body_statuses(paths: &mut Map<String, Value>) {
    for (path, item) in paths.iter_mut() {
        let protocol = crate::serve::protocol_error::is_protocol_path(path);
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            if operation.get("requestBody").is_none() {
                continue;
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, description) in BODY_STATUSES {
                if responses.contains_key(status) {
                    continue;
                }
                let schema = if protocol {
                    json!({"application/json": {"schema": {"$ref": "#/components/schemas/V2Error"}}})
                } else {
                    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
                };
                responses.insert(
                    status.to_string(),
                    json!({"description": description, "content": schema}),
                );
            }
        }
    }
}

/// Gives every `{name}` path parameter the loaded models' names, and every `{version}` one the
/// versions there are, as an `enum`.
pub fn list_path_values(paths: &mut Map<String, Value>, names: &[String], versions: &[String]) {
    for item in paths.values_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                let values = match (parameter["in"].as_str(), parameter["name"].as_str()) {
                    (Some("path"), Some("name")) => names,
                    (Some("path"), Some("version")) => versions,
                    _ => continue,
                };
                if !values.is_empty() {
                    parameter["schema"]["enum"] = json!(values);
                }
            }
        }
    }
}
