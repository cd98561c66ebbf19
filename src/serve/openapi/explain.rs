//! The explanations in each model's part of the document: the `explain` query parameter of
//! native POST predict, the `contributions` of its answers (`{key}.Contributions`), and KServe
//! V1's `:explain`. Each model says whether it explains, by which method and in which unit, or
//! why not.

use super::{json_ok, protocol_error};
use crate::model::{LoadedModel, Task};
use serde_json::{Map, Value, json};

/// What the model's explanations are, in words, or why it has none.
pub fn explains(model: &LoadedModel) -> String {
    match model.explanation_plan() {
        Ok(plan) => format!(
            "This model explains by {} SHAP values in {} (README: explanations).",
            plan.method.name(),
            plan.unit.name()
        ),
        Err(reason) => format!("This model cannot explain: {reason}."),
    }
}

/// The `explain` query parameter of native POST predict.
pub fn explain_parameter(model: &LoadedModel) -> Value {
    json!({
        "name": "explain", "in": "query", "required": false,
        "schema": {"type": "boolean", "default": false},
        "description": format!(
            "Add each row's `contributions`: every feature's SHAP contribution and the base \
             value, adding up to the model's output in the answer's unit. Explained rows count \
             against max_batch_rows at their method's weight{}. A model that cannot explain \
             answers 422 before predicting. {}",
            model
                .explanation_plan()
                .map_or(String::new(), |plan| format!(" ({} a row for this model)", plan.row_weight)),
            explains(model)
        ),
    })
}

/// The contributions of one output.
fn output_schema(model: &LoadedModel) -> Value {
    let features: Map<String, Value> = model
        .artifact
        .manifest
        .features
        .iter()
        .map(|f| (f.name.clone(), json!({"type": "number"})))
        .collect();
    json!({
        "type": "object",
        "required": ["method", "unit", "exact", "base_value", "features"],
        "properties": {
            "method": {"type": "string", "enum": ["linear", "tree_path_dependent", "kernel"]},
            "exact": {"type": "boolean", "description": "Whether these are the exact Shapley values: always for linear and tree models; for KernelSHAP when its budget covered every coalition."},
            "unit": {"type": "string", "enum": ["log_odds", "raw_score", "log_value", "probability", "value"]},
            "base_value": {"type": "number", "description": "The expected output over the training data (KernelSHAP: over the background set)."},
            "features": {"type": "object", "properties": features, "required": features.keys().collect::<Vec<_>>(),
                "description": "Each feature's contribution; with base_value they add up to the output."},
        },
    })
}

/// `{key}.Contributions`: one output object, or for a multiclass model one per class label.
pub fn contributions_schema(model: &LoadedModel) -> Value {
    let manifest = &model.artifact.manifest;
    let multiclass = manifest.task == Task::Classification && manifest.labels.len() > 2;
    if !multiclass {
        let mut schema = output_schema(model);
        if manifest.task == Task::Classification {
            schema["description"] = json!(
                "Towards the second class (named in `class`), as XGBoost and LightGBM give it."
            );
            schema["properties"]["class"] =
                json!({"type": "string", "enum": manifest.labels.get(1..).unwrap_or_default()});
            schema["required"] =
                json!(["method", "unit", "exact", "class", "base_value", "features"]);
        } else {
            schema["description"] = json!("Of the predicted value.");
        }
        return schema;
    }
    let per_class: Map<String, Value> = manifest
        .labels
        .iter()
        .map(|label| (label.clone(), output_schema(model)))
        .collect();
    json!({"type": "object", "description": "Per class label.", "properties": per_class, "required": manifest.labels})
}

/// `POST /v1/models/{name}:explain`.
pub fn v1_explain_path(name: &str, model: &LoadedModel, request: Value, key: &str) -> Value {
    json!({"post": {"tags": ["v1"], "operationId": format!("v1_explain_{name}"),
    "summary": format!("Explain predictions of {name} (KServe V1): one contributions object per instance"),
    "description": explains(model),
    "requestBody": request,
    "responses": {
        "200": json_ok("One explanation per instance.", json!({"type": "object", "required": ["explanations"],
            "properties": {"explanations": {"type": "array", "items": {"$ref": format!("#/components/schemas/{key}.Contributions")}}}})),
        "400": protocol_error("A malformed request, or an instance that is not valid (every problem is listed)."),
        "404": protocol_error("No such model."),
        "413": protocol_error("More instances than max_batch_rows allows at the method's weight (the documented maxItems)."),
        "503": protocol_error("The model is not loaded."),
    }}})
}
