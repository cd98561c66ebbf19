//! The OpenAPI 3.1 document, built from the loaded models: every model gets its own request
//! and answer schemas (features with types, ranges and an example row) and its own paths.

mod complete;
mod explain;
mod models;

use super::state::App;
use crate::config::Settings;
use crate::model::Catalog;
use crate::serve::auth::{self, Access};
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// GET /openapi.json
pub async fn openapi_json(State(app): State<App>) -> Response {
    Json(document(&app.repository.catalog(), &app.settings)).into_response()
}

fn problem_responses(codes: &[(&str, &str)]) -> Map<String, Value> {
    codes
        .iter()
        .map(|(code, description)| {
            (
                code.to_string(),
                json!({
                    "description": description,
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                }),
            )
        })
        .collect()
}

const PREDICT_ERRORS: [(&str, &str); 10] = [
    ("400", "The body or query cannot be parsed."),
    (
        "401",
        "Credentials are missing or wrong (when auth is on); see WWW-Authenticate.",
    ),
    ("403", "The key's role does not allow this route."),
    ("429", "The key is over its rate limit; see Retry-After."),
    ("404", "No such model or version."),
    ("413", "The body or the batch is too large."),
    ("415", "The body is not application/json."),
    (
        "422",
        "Fields are missing, unknown, or not of their declared type (every problem is listed), or explain was asked of a model that cannot explain (the reason is given).",
    ),
    (
        "503",
        "The model or version is not loaded, the request timed out, or the server is at its limit of requests in flight; see Retry-After.",
    ),
    ("500", "An internal error; the body never shows internals."),
];

/// The errors of routes that read the prediction log.
const LOG_ERRORS: [(&str, &str); 6] = [
    ("401", "Credentials are missing or wrong (when auth is on)."),
    ("403", "The key's role does not allow this route."),
    ("404", "No such model, or no such logged prediction."),
    ("409", "The prediction log is off (setting prediction_log)."),
    (
        "422",
        "A parameter or the body is not valid; every problem is listed.",
    ),
    (
        "503",
        "The prediction database did not answer; see Retry-After.",
    ),
];

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn protocol_error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2Error"}}}})
}

/// The Open Inference Protocol (V2) and KServe V1.
fn protocol_paths(paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    schemas.insert("V2Error".into(), json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}));
    schemas.insert("V2Tensor".into(), json!({
        "type": "object", "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32", "FP64", "BYTES"]},
            "parameters": {"type": "object", "description": "binary_data_size: the tensor's bytes follow the JSON (binary tensor data extension)."},
            "data": {"description": "Elements in row-major order, flat or nested; absent when sent as binary data."},
        }}));
    schemas.insert("V2InferRequest".into(), json!({
        "type": "object", "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "description": "binary_data_output: all outputs as binary data. explain (bool): also answer the output `contributions`, each feature's SHAP contribution laid out as XGBoost's pred_contribs: FP64 [N, F+1] ([N, C, F+1] for a multiclass model), the base value last; a model that cannot explain answers 400 with the reason."},
            "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/V2Tensor"},
                "description": "One `input` of shape [N, F] (features in schema order), or one tensor per feature of shape [N] or [N, 1]."},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "enum": ["label", "label_index", "probabilities", "prediction", "contributions"],
                    "description": "A classifier's label, label_index and probabilities; a regressor's prediction (FP64 [N]); contributions (as with the parameter explain)."},
                "parameters": {"type": "object", "description": "binary_data (bool); classification (k): the best k classes as \"value:index:label\"."}}}},
        }}));
    schemas.insert("V2InferResponse".into(), json!({
        "type": "object", "required": ["model_name", "outputs"],
        "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}}}}));
    let name = path_param("name", "Model name.");
    let version = path_param("version", "Version number.");
    let errors = |ok: Value| json!({"200": ok, "400": protocol_error("A malformed request or tensor."), "404": protocol_error("No such model or version."), "503": protocol_error("The model is not loaded.")});
    let flag = |key: &str| json!({"type": "object", "required": [key], "properties": {key: {"type": "boolean"}}});
    let model_ready_body = json!({"type": "object", "required": ["name", "ready"], "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}});
    paths.insert("/v2".into(), json!({"get": {"tags": ["v2"], "operationId": "v2_server_metadata", "summary": "Server name, version and extensions",
        "responses": {"200": json_ok("The server metadata.", json!({"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array", "items": {"type": "string"}}}}))}}}));
    paths.insert("/v2/health/live".into(), json!({"get": {"tags": ["v2"], "operationId": "v2_live", "summary": "Server live: 200 with {\"live\": true}", "responses": {"200": json_ok("Live.", flag("live"))}}}));
    paths.insert("/v2/health/ready".into(), json!({"get": {"tags": ["v2"], "operationId": "v2_ready", "summary": "Server ready: 200 when every model has a version that serves, else 400 (loading, an empty repository, a model that cannot serve)",
        "responses": {"200": json_ok("Ready: {\"ready\": true}.", flag("ready")), "400": json_ok("Not ready: {\"ready\": false, \"error\": why}.", json!({"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}, "error": {"type": "string"}}}))}}}));
    let infer_body = json!({"required": true, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/V2InferRequest"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description": "The JSON request followed by binary tensor data; the Inference-Header-Content-Length header gives the JSON's length."}}}});
    let infer_ok = json!({"description": "The outputs; binary outputs follow the JSON, whose length is in the Inference-Header-Content-Length header.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2InferResponse"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
    for (prefix, params, id) in [
        ("/v2/models/{name}", vec![name.clone()], "v2"),
        (
            "/v2/models/{name}/versions/{version}",
            vec![name.clone(), version.clone()],
            "v2_version",
        ),
    ] {
        paths.insert(prefix.into(), json!({"get": {"tags": ["v2"], "operationId": format!("{id}_model_metadata"), "summary": "Model metadata: inputs and outputs with datatypes and shapes",
            "parameters": params, "responses": errors(json_ok("The model metadata.", json!({"type": "object"})))}}));
        let mut ready_responses = errors(json_ok("Ready.", model_ready_body.clone()));
        ready_responses["400"] = json_ok(
            "Not loaded: {\"name\", \"ready\": false, \"error\"}.",
            model_ready_body.clone(),
        );
        paths.insert(format!("{prefix}/ready"), json!({"get": {"tags": ["v2"], "operationId": format!("{id}_model_ready"), "summary": "Model ready: 200, or 400 when not loaded",
            "parameters": params, "responses": ready_responses}}));
        paths.insert(format!("{prefix}/infer"), json!({"post": {"tags": ["v2"], "operationId": format!("{id}_infer"), "summary": "Inference (JSON or binary tensors)",
            "parameters": params, "requestBody": infer_body, "responses": errors(infer_ok.clone())}}));
    }
    paths.insert("/v2/repository/index".into(), json!({"post": {"tags": ["v2"], "operationId": "v2_repository_index", "summary": "Every model version and its state (admin)",
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}},
        "responses": {"200": json_ok("The index.", json!({"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "state": {"type": "string"}, "reason": {"type": "string"}}}}))}}}));
    for (verb, summary) in [
        ("load", "Load (again) every version of a model (admin)"),
        ("unload", "Stop serving a model until it is loaded (admin)"),
    ] {
        paths.insert(format!("/v2/repository/models/{{name}}/{verb}"), json!({"post": {"tags": ["v2"], "operationId": format!("v2_repository_{verb}"), "summary": summary,
            "parameters": [name.clone()], "responses": {"200": {"description": "Done (empty body)."}, "400": protocol_error("The model does not load."), "404": protocol_error("No such model.")}}}));
    }
    paths.insert("/v1/models".into(), json!({"get": {"tags": ["v1"], "operationId": "v1_models", "summary": "The model names",
        "responses": {"200": json_ok("The models.", json!({"type": "object", "properties": {"models": {"type": "array", "items": {"type": "string"}}}}))}}}));
    paths.insert("/v1/models/{name}".into(), json!({"get": {"tags": ["v1"], "operationId": "v1_model", "summary": "Whether a model is ready",
        "parameters": [name.clone()], "responses": errors(json_ok("Ready.", json!({"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}})))}}));
}

/// The prediction log, feedback, live metrics, drift and /metrics.
fn operations_paths(paths: &mut Map<String, Value>) {
    let name = path_param("name", "Model name.");
    let window = query_param(
        "window",
        "How far back: a whole number and s, m, h or d (default 24h); a window longer than the log covers all of it. Counted in whole buckets of the finest resolution that covers it: minutes up to 2h, hours up to 48h, days beyond.",
        json!({"type": "string", "pattern": crate::serve::monitoring::WINDOW_PATTERN, "default": "24h"}),
    );
    paths.insert(
        "/api/predictions".into(),
        json!({"get": {"tags": ["operations"], "operationId": "list_predictions",
            "summary": "Logged predictions, newest first (admin role)",
            "parameters": [
                query_param("model", "Only this model.", json!({"type": "string"})),
                query_param("since", "Only predictions at or after this time (RFC 3339).", json!({"type": "string", "format": "date-time"})),
                query_param("limit", "At most this many (1 to 1000, default 100).", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})),
            ],
            "description": "Inputs are named and typed as the model version's schema says; a feature the server's settings leave out of the log is absent, and one they hash reads as its keyed hash (32 hex digits).",
            "responses": with_ok(json_ok("The predictions: request id, row, time, model, version, inputs, label and probabilities (a classifier) or prediction (a regressor), latency, key, feedback.",
                json!({"type": "object", "properties": {"predictions": {"type": "array", "items": {"type": "object"}}}})), &LOG_ERRORS)}}),
    );
    paths.insert(
        "/api/predictions/{request_id}".into(),
        json!({"delete": {"tags": ["operations"], "operationId": "erase_prediction",
            "summary": "Erase every logged row of a request, with its feedback (admin role)",
            "description": "For a person's request to have their data removed. Idempotent: a request with nothing logged answers 0 rows. Predictions are written within a second of their answer; erase after that.",
            "parameters": [path_param("request_id", "The request id of the prediction (the x-request-id header of its answer).")],
            "responses": with_ok(json_ok("What was deleted.", json!({"type": "object", "required": ["request_id", "predictions_deleted", "feedback_deleted"],
                "properties": {"request_id": {"type": "string"}, "predictions_deleted": {"type": "integer", "minimum": 0}, "feedback_deleted": {"type": "integer", "minimum": 0}}})), &LOG_ERRORS)}}),
    );
    paths.insert(
        "/api/predictions/{request_id}/feedback".into(),
        json!({"post": {"tags": ["operations"], "operationId": "post_feedback",
            "summary": "The true label (a classifier) or value (a model that predicts a number) of a logged prediction (send again to correct it)",
            "parameters": [path_param("request_id", "The request id of the prediction (the x-request-id header of its answer).")],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false,
                "oneOf": [{"required": ["label"]}, {"required": ["value"]}],
                "properties": {
                    "label": {"type": "string", "minLength": 1, "description": "A classifier's true label: one of the labels of the model version that made the prediction."},
                    "value": {"type": "number", "description": "The true value, for a model that predicts a number (422 on a classifier, as a label is on such a model)."},
                    "row": {"type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 0, "description": "The row of a batch request."}}}}}},
            "responses": with_ok(json_ok("Recorded: with the label, whether the prediction was correct; with a value, the residual (true − predicted).", json!({"type": "object"})), &LOG_ERRORS)}}),
    );
    paths.insert(
        "/api/models/{name}/monitoring".into(),
        json!({"get": {"tags": ["operations"], "operationId": "model_monitoring",
            "summary": "Live metrics per version, from predictions with feedback: accuracy, macro precision and recall of a classifier; RMSE, MAE, mean error and R² of a model that predicts a number",
            "parameters": [name.clone(), window.clone()],
            "responses": with_ok(json_ok("Per version: task, predictions, with_feedback, and accuracy, precision_macro, recall_macro (classification) or rmse, mae, mean_error, r2 (regression), and held_out: the metrics of training's held-out split.", json!({"type": "object"})), &LOG_ERRORS)}}),
    );
    paths.insert(
        "/api/models/{name}/drift".into(),
        json!({"get": {"tags": ["operations"], "operationId": "model_drift",
            "summary": "Per-feature population stability index of recent inputs against the training data",
            "parameters": [name, window, query_param("threshold", "PSI above which a feature is flagged (default 0.2).", json!({"type": "number", "exclusiveMinimum": 0, "default": 0.2}))],
            "responses": with_ok(json_ok("Per feature: psi, drifted, values; and the drifted features. A model that predicts a number also has prediction: the drift of its predicted values from its training target.", json!({"type": "object"})), &LOG_ERRORS)}}),
    );
    paths.insert(
        "/metrics".into(),
        json!({"get": {"tags": ["operations"], "operationId": "metrics",
            "summary": "Prometheus metrics (open unless metrics_auth is on)",
            "responses": {"200": {"description": "The Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}),
    );
}

fn with_ok(ok: Value, errors: &[(&str, &str)]) -> Value {
    let mut responses = problem_responses(errors);
    responses.insert("200".to_string(), ok);
    Value::Object(responses)
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn generic_paths(paths: &mut Map<String, Value>) {
    let name = path_param("name", "Model name.");
    let version = path_param("version", "Version number.");
    paths.insert(
        "/api/models".into(),
        json!({"get": {"tags": ["models"], "operationId": "list_models", "summary": "The models, their versions and status",
            "responses": {"200": json_ok("The models.", json!({"type": "object", "properties": {"models": {"type": "array", "items": {"type": "object"}}}}))}}}),
    );
    let info_errors = [
        ("404", "No such model or version."),
        ("503", "No version of the model loads."),
    ];
    paths.insert(
        "/api/models/{name}".into(),
        json!({"get": {"tags": ["models"], "operationId": "get_model", "summary": "Schema, task, labels or target, metrics and versions of a model",
            "parameters": [name], "responses": with_ok(json_ok("The model's default version.", json!({"type": "object"})), &info_errors)}}),
    );
    paths.insert(
        "/api/models/{name}/versions/{version}".into(),
        json!({"get": {"tags": ["models"], "operationId": "get_model_version", "summary": "Schema, task, labels or target, metrics of one version",
            "parameters": [name, version], "responses": with_ok(json_ok("The version.", json!({"type": "object"})), &info_errors)}}),
    );
    paths.insert(
        "/api/models/{name}/versions/{version}/report".into(),
        json!({"get": {"tags": ["models"], "operationId": "get_model_report", "summary": "The model card (HTML)",
            "parameters": [name, version], "responses": with_ok(
                json!({"description": "The model card.", "content": {"text/html": {"schema": {"type": "string"}}}}), &info_errors)}}),
    );
    paths.insert(
        "/api/models/{name}/reload".into(),
        json!({"post": {"tags": ["models"], "operationId": "reload_model", "summary": "Rescan the model's folder now",
            "parameters": [name], "responses": with_ok(json_ok("What was loaded, removed or failed.", json!({"type": "object"})), &[("404", "No such model folder.")])}}),
    );
    let probe = |id: &str, summary: &str, ready: bool| {
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json_ok(
                "OK",
                json!({"type": "object", "properties": {"status": {"type": "string"}}}),
            ),
        );
        if ready {
            responses.insert(
                "503".into(),
                json_ok(
                    "Not ready: still loading, an empty repository, or a model with no version that serves (strict_readiness: any failed version); detail names each model and why.",
                    json!({"type": "object", "properties": {"status": {"type": "string", "enum": ["loading", "not_ready"]}, "detail": {"type": "string"}, "models": {"type": "object"}}}),
                ),
            );
        }
        json!({"get": {"tags": ["health"], "operationId": id, "summary": summary, "responses": responses}})
    };
    paths.insert("/health/live".into(), probe("live", "Liveness", false));
    paths.insert(
        "/health/ready".into(),
        probe(
            "ready",
            "Readiness: 200 when every model has a version that serves, else 503",
            true,
        ),
    );
    paths.insert(
        "/".into(),
        json!({"get": {"tags": ["health"], "operationId": "root", "summary": "KServe V1 liveness for programs: {\"status\": \"alive\"}; the web UI for browsers (Accept: text/html)",
            "responses": {"200": {"description": "{\"status\": \"alive\"}, or the web UI's model list as HTML.",
                "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["alive"]}}}}, "text/html": {"schema": {"type": "string"}}}}}}}),
    );
    paths.insert(
        "/api/liveness".into(),
        probe("liveness_alias", "Liveness (alias)", false),
    );
    paths.insert(
        "/api/readiness".into(),
        probe("readiness_alias", "Readiness (alias)", true),
    );
}

/// The whole document for the current catalog.
pub fn document(catalog: &Catalog, settings: &Settings) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "request_id": {"type": "string"},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            },
            "required": ["type", "title", "status", "detail"],
        }),
    );
    schemas.insert(
        "FieldError".into(),
        json!({"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}, "required": ["field", "message"]}),
    );
    generic_paths(&mut paths);
    operations_paths(&mut paths);
    protocol_paths(&mut paths, &mut schemas);
    let mut tags = vec![json!({"name": "models", "description": "Any model, by name"})];
    models::add_models(catalog.models.iter(), settings, &mut paths, &mut schemas);
    for entry in catalog.models.values() {
        if let Some(model) = entry.default_model() {
            let m = &model.artifact.manifest;
            let quality = match &m.metrics {
                Some(crate::model::HeldOutMetrics::Classification(q)) => {
                    format!(", accuracy {:.4}", q.accuracy)
                }
                Some(crate::model::HeldOutMetrics::Regression(q)) => format!(", R² {:.4}", q.r2),
                None => String::new(),
            };
            tags.push(json!({"name": m.name, "description": format!(
                "{} (version {}, {} {}{quality})", m.name, model.version_label, m.algorithm_name(), m.task.name())}));
        }
    }
    complete::add_body_statuses(&mut paths);
    let names: Vec<String> = catalog.models.keys().cloned().collect();
    let versions: Vec<String> = catalog
        .models
        .values()
        .flat_map(|entry| entry.versions.keys().copied())
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    complete::list_path_values(&mut paths, &names, &versions);
    tags.push(json!({"name": "operations", "description": "Prediction log, feedback, live metrics, drift, Prometheus metrics"}));
    tags.push(json!({"name": "v2", "description": "Open Inference Protocol (KServe V2 / Triton): errors are {\"error\": \"…\"}"}));
    tags.push(json!({"name": "v1", "description": "KServe V1 protocol"}));
    tags.push(json!({"name": "health", "description": "Probes"}));
    let security_schemes = json!({
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key from `mlserve keys create`."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same API key, in its own header."},
        "basic": {"type": "http", "scheme": "basic", "description": "A user from `mlserve keys add-user`."},
    });
    // With auth on, every operation needs one of the schemes, except those the server leaves
    // open (probes, and /metrics unless metrics_auth), which say so themselves. The server's
    // own rule decides, so the document cannot disagree with it.
    if settings.auth {
        for (path, item) in paths.iter_mut() {
            let Some(operations) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in operations.iter_mut() {
                let method = method.to_uppercase().parse().unwrap_or(Method::GET);
                let open = match auth::required_access(&method, path) {
                    Access::Open => true,
                    Access::Metrics => !settings.metrics_auth,
                    // GET / answers programs (KServe V1 liveness) without credentials.
                    Access::Predict | Access::Admin => path == "/",
                };
                if open {
                    operation["security"] = json!([]);
                }
            }
        }
    }
    let security = if settings.auth {
        json!([{"bearer": []}, {"apiKey": []}, {"basic": []}])
    } else {
        json!([])
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mlserve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Predictions from the models of this server's repository. Errors are RFC 9457 problem details.",
        },
        "tags": tags,
        "paths": paths,
        "security": security,
        "components": {"schemas": schemas, "securitySchemes": security_schemes},
    })
}
