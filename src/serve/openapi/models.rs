//! Each loaded model's part of the document: its request and answer schemas (features with
//! types, ranges and an example row), and its own predict operations, one set for the default
//! version and one per loaded version, on the native API and on KServe V1. A schema per model
//! and version says exactly what that version's validator takes, so a generated valid request
//! is answered 200 and Swagger UI's example works as is.

use super::{PREDICT_ERRORS, json_ok, protocol_error, with_ok};
use crate::config::Settings;
use crate::data::ColumnKind;
use crate::model::{
    FeatureSchema, LoadedModel, Manifest, ModelEntry, Task, UnknownFields, accepted_range,
};
use serde_json::{Map, Value, json};

/// The schema of one feature's value.
pub fn feature_schema(feature: &FeatureSchema) -> Value {
    let mut schema = match feature.kind {
        ColumnKind::Number => json!({"type": "number"}),
        ColumnKind::Integer => json!({"type": "integer"}),
        ColumnKind::Boolean => json!({"type": "boolean"}),
        // The validator refuses empty text.
        ColumnKind::String => json!({"type": "string", "minLength": 1}),
        ColumnKind::Date => json!({"type": "string", "format": "date"}),
        ColumnKind::DateTime => json!({"type": "string", "format": "date-time"}),
        ColumnKind::Categorical => {
            json!({"type": "string", "enum": feature.categories.clone().unwrap_or_default()})
        }
    };
    if let Some((lowest, highest)) = accepted_range(feature) {
        schema["minimum"] = json!(lowest);
        schema["maximum"] = json!(highest);
    }
    if feature.nullable {
        let kind = schema["type"].clone();
        schema["type"] = json!([kind, "null"]);
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    if let (Some(min), Some(max)) = (feature.min, feature.max)
        && feature.kind != ColumnKind::Boolean
    {
        schema["description"] = json!(format!(
            "Training range {min} to {max}{}. Values outside it are accepted and flagged in `warnings`.",
            feature
                .mean
                .map(|m| format!(" (mean {m:.4})"))
                .unwrap_or_default()
        ));
        schema["x-training-range"] = json!([min, max]);
    }
    schema["examples"] = json!([feature.example]);
    schema
}

/// A feature's schema as a query parameter: a query has no null, so a missing value of a
/// nullable feature is an empty value or `NaN`, which the description says.
fn query_schema(feature: &FeatureSchema) -> Value {
    let mut schema = feature_schema(feature);
    if feature.nullable {
        if let Some(kinds) = schema["type"].as_array() {
            schema["type"] = kinds[0].clone();
        }
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.retain(|v| !v.is_null());
        }
        let range = schema["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        schema["description"] = json!(
            format!("{range} An empty value or NaN is a missing value.")
                .trim()
                .to_string()
        );
    }
    schema
}

fn example_row(model: &LoadedModel) -> Value {
    Value::Object(model.artifact.manifest.example_row())
}

/// One model version's entry in the document: the prefix of its schemas' names and of its
/// operation ids, the path its operations hang under, and how a summary names it.
struct Documented<'a> {
    model: &'a LoadedModel,
    /// `iris` for the default version, `iris.v2` for version 2.
    key: String,
    /// `iris` or `iris_v2`.
    id: String,
    /// `/api/models/iris` or `/api/models/iris/versions/2`.
    native: String,
    /// `iris (default version)` or `iris version 2`.
    title: String,
}

/// Adds the schemas and operations of every model with a loaded version.
pub fn add_models<'a>(
    models: impl Iterator<Item = (&'a String, &'a ModelEntry)>,
    settings: &Settings,
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
) {
    for (name, entry) in models {
        let Some(default) = entry.default_model() else {
            continue;
        };
        let mut documented = vec![Documented {
            model: default,
            key: name.clone(),
            id: name.clone(),
            native: format!("/api/models/{name}"),
            title: format!("{name} (default version)"),
        }];
        for (version, slot) in &entry.versions {
            if let Some(model) = &slot.loaded {
                documented.push(Documented {
                    model,
                    key: format!("{name}.v{version}"),
                    id: format!("{name}_v{version}"),
                    native: format!("/api/models/{name}/versions/{version}"),
                    title: format!("{name} version {version}"),
                });
            }
        }
        for version in &documented {
            add_schemas(version, settings, schemas);
            add_native_paths(version, paths);
        }
        add_v1_path(name, default, settings, paths);
    }
}

fn schema_ref(key: &str, suffix: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{key}.{suffix}")})
}

/// The object of one row's features; `strict` refuses fields the model does not know.
fn features_object(model: &LoadedModel, strict: bool) -> Value {
    let manifest = &model.artifact.manifest;
    let properties: Map<String, Value> = manifest
        .features
        .iter()
        .map(|f| (f.name.clone(), feature_schema(f)))
        .collect();
    let required: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
    let mut features = json!({
        "type": "object",
        "description": format!("The features of one row for model '{}'.", manifest.name),
        "properties": properties,
        "required": required,
        "examples": [example_row(model)],
    });
    if strict {
        features["additionalProperties"] = json!(false);
    }
    features
}

fn add_schemas(version: &Documented<'_>, settings: &Settings, schemas: &mut Map<String, Value>) {
    let manifest = &version.model.artifact.manifest;
    let key = &version.key;
    let strict = settings.unknown_fields == UnknownFields::Reject;
    schemas.insert(
        format!("{key}.Features"),
        features_object(version.model, strict),
    );
    schemas.insert(
        format!("{key}.Batch"),
        json!({
            "type": "object",
            "properties": {"instances": {"type": "array", "items": schema_ref(key, "Features"), "minItems": 1, "maxItems": settings.max_batch_rows}},
            "required": ["instances"],
            "additionalProperties": false,
        }),
    );
    let (outcome, required, task) = outcome_schema(manifest);
    let warnings = json!({"type": "array", "items": {"type": "string"}});
    let mut single = outcome.clone();
    single.insert("model".into(), json!({"type": "string"}));
    single.insert("version".into(), json!({"type": "string"}));
    single.insert("warnings".into(), warnings.clone());
    single.insert("request_id".into(), json!({"type": "string"}));
    let contributions = schema_ref(key, "Contributions");
    single.insert("contributions".into(), contributions.clone());
    let mut item = outcome;
    item.insert("warnings".into(), warnings);
    item.insert("contributions".into(), contributions);
    schemas.insert(
        format!("{key}.Contributions"),
        super::explain::contributions_schema(version.model),
    );
    let mut item_required = required.clone();
    item_required.push("warnings");
    let mut single_required = item_required.clone();
    single_required.extend(["model", "version", "request_id"]);
    schemas.insert(
        format!("{key}.Prediction"),
        json!({
            "type": "object",
            "description": task,
            "properties": single,
            "required": single_required,
        }),
    );
    schemas.insert(
        format!("{key}.BatchPrediction"),
        json!({
            "type": "object",
            "description": task,
            "properties": {
                "model": {"type": "string"}, "version": {"type": "string"}, "request_id": {"type": "string"},
                "predictions": {"type": "array", "items": {
                    "type": "object",
                    "properties": item,
                    "required": item_required,
                }},
            },
            "required": ["model", "version", "predictions", "request_id"],
        }),
    );
}

/// The fields a row's answer has for the model's task, those required, and the task in words:
/// `label` and `probabilities` for a classifier, `prediction` for a regressor.
fn outcome_schema(manifest: &Manifest) -> (Map<String, Value>, Vec<&'static str>, String) {
    match manifest.task {
        Task::Classification => {
            let probabilities: Map<String, Value> = manifest
                .labels
                .iter()
                .map(|label| {
                    (
                        label.clone(),
                        json!({"type": "number", "minimum": 0, "maximum": 1}),
                    )
                })
                .collect();
            let mut fields = Map::new();
            fields.insert(
                "label".into(),
                json!({"type": "string", "enum": manifest.labels}),
            );
            fields.insert(
                "probabilities".into(),
                json!({"type": "object", "properties": probabilities, "required": manifest.labels}),
            );
            let task = format!(
                "Task: classification. The predicted label and each class's probability ({}).",
                manifest.labels.join(", ")
            );
            (fields, vec!["label", "probabilities"], task)
        }
        Task::Regression => {
            let target = target_name(manifest);
            let mut fields = Map::new();
            fields.insert(
                "prediction".into(),
                json!({"type": "number", "description": format!("The predicted {target}, in its training unit.")}),
            );
            let task = format!("Task: regression. The predicted {target}, a number.");
            (fields, vec!["prediction"], task)
        }
    }
}

fn target_name(manifest: &Manifest) -> &str {
    manifest
        .target
        .as_ref()
        .map_or("value", |t| t.name.as_str())
}

fn add_native_paths(version: &Documented<'_>, paths: &mut Map<String, Value>) {
    let manifest = &version.model.artifact.manifest;
    let (key, id, title) = (&version.key, &version.id, &version.title);
    let answers =
        json!({"oneOf": [schema_ref(key, "Prediction"), schema_ref(key, "BatchPrediction")]});
    let query: Vec<Value> = manifest
        .features
        .iter()
        .map(
            |f| json!({"name": f.name, "in": "query", "required": true, "schema": query_schema(f)}),
        )
        .collect();
    let row = example_row(version.model);
    paths.insert(
        format!("{}/predict", version.native),
        json!({
            "post": {
                "tags": [manifest.name],
                "operationId": format!("predict_{id}"),
                "summary": format!("Predict with {title}"),
                "description": format!(
                    "Send one object of features, or `{{\"instances\": [...]}}` for a batch. {}",
                    outcome_schema(manifest).2
                ),
                "parameters": [super::explain::explain_parameter(version.model)],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"oneOf": [schema_ref(key, "Features"), schema_ref(key, "Batch")]},
                    "examples": {
                        "row": {"summary": "One typical training row", "value": row},
                        "batch": {"summary": "A batch of one row", "value": {"instances": [row]}},
                    }
                }}},
                "responses": with_ok(json_ok("The prediction, or one per row of a batch.", answers), &PREDICT_ERRORS),
            },
            "get": {
                "tags": [manifest.name],
                "operationId": format!("predict_{id}_query"),
                "summary": format!("Predict with {title} from query parameters"),
                "parameters": query,
                "responses": with_ok(json_ok("The prediction.", schema_ref(key, "Prediction")), &PREDICT_ERRORS),
            },
        }),
    );
}

/// `POST /v1/models/{name}:predict` for one model: instances are objects of its features (an
/// unknown field refused or ignored as the setting unknown_fields says) or arrays of its values
/// in schema order.
fn add_v1_path(
    name: &str,
    model: &LoadedModel,
    settings: &Settings,
    paths: &mut Map<String, Value>,
) {
    let features = &model.artifact.manifest.features;
    let positional = json!({
        "type": "array",
        "description": "The feature values in schema order.",
        "prefixItems": features.iter().map(feature_schema).collect::<Vec<_>>(),
        "items": false,
        "minItems": features.len(),
    });
    let strict = settings.unknown_fields == UnknownFields::Reject;
    let instance = json!({"oneOf": [features_object(model, strict), positional]});
    let list =
        |max: usize| json!({"type": "array", "items": instance, "minItems": 1, "maxItems": max});
    let errors = json!({
        "200": v1_answer(&model.artifact.manifest),
        "400": protocol_error("A malformed request, or an instance that is not valid (every problem is listed)."),
        "404": protocol_error("No such model."),
        "413": protocol_error("More instances than max_batch_rows."),
        "503": protocol_error("The model is not loaded."),
    });
    let request = |max: usize| {
        json!({"required": true, "content": {"application/json": {
            "schema": {
                "type": "object",
                "description": "`instances` (or `inputs`, its alias in KServe V1); other keys are ignored.",
                "properties": {"instances": list(max)},
                // `inputs` is read only when `instances` is absent.
                "anyOf": [
                    {"required": ["instances"]},
                    {"required": ["inputs"], "properties": {"inputs": list(max)}},
                ],
            },
            "example": {"instances": [example_row(model)]},
        }}})
    };
    // Only a model that explains has `:explain`, and only when one explained row fits in
    // max_batch_rows at the method's weight.
    let explained_rows = model
        .explanation_plan()
        .map_or(0, |plan| settings.max_batch_rows / plan.row_weight);
    if explained_rows > 0 {
        let max = explained_rows;
        paths.insert(
            format!("/v1/models/{name}:explain"),
            super::explain::v1_explain_path(name, model, request(max), name),
        );
    }
    let request = request(settings.max_batch_rows);
    paths.insert(
        format!("/v1/models/{name}:predict"),
        json!({"post": {"tags": ["v1"], "operationId": format!("v1_predict_{name}"),
            "summary": format!("Predict with {name} (KServe V1): instances as objects of features, or arrays of values in schema order"),
            "requestBody": request,
            "responses": errors}}),
    );
}

/// V1's answer: the predicted label of each instance, or the predicted value.
fn v1_answer(manifest: &Manifest) -> Value {
    let (what, item) = match manifest.task {
        Task::Classification => (
            "The labels, one per instance.".to_string(),
            json!({"type": "string", "enum": manifest.labels}),
        ),
        Task::Regression => (
            format!("The predicted {}, one per instance.", target_name(manifest)),
            json!({"type": "number"}),
        ),
    };
    json_ok(
        &what,
        json!({"type": "object", "required": ["predictions"], "properties": {"predictions": {"type": "array", "items": item}}}),
    )
}
