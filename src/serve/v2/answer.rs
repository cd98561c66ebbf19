//! The protocol's inference on decoded tensors, whatever carries them (REST's JSON and binary
//! tensors, gRPC's typed and raw contents): validated rows, the one predict path, and the
//! outputs the request asks for, before their encoding.

use super::outputs::OutputData;
use super::rows::rows_from_tensors;
use super::tensor::{InferRequest, Tensor};
use crate::model::{LoadedModel, Outcome, Prediction, Task};
use crate::serve::predict::{Asked, predict};
use crate::serve::protocol_error::ProtocolError;
use crate::serve::state::App;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One output of an answered request, before its encoding.
pub struct AnsweredOutput<'a> {
    /// The output's name.
    pub name: String,
    /// The parameters the request gave this output (`binary_data`, `classification`).
    pub parameters: Option<&'a Map<String, Value>>,
    /// The elements.
    pub data: OutputData,
    /// The dimensions.
    pub shape: Vec<usize>,
}

/// Predicts the rows of `tensors` with `model` and returns the outputs `request` asks for
/// (its `outputs` and `parameters`; its `inputs` are the decoded `tensors`). Everything a
/// request can get wrong is refused before anything is predicted, so a refused request is
/// neither counted nor logged.
pub async fn answer<'a>(
    app: &App,
    model: &Arc<LoadedModel>,
    asked: &Asked,
    request: &'a InferRequest,
    tensors: &[Tensor],
) -> Result<Vec<AnsweredOutput<'a>>, ProtocolError> {
    let rows = rows_from_tensors(model, tensors, app.settings.max_batch_rows)?;
    let requested = requested_outputs(model, request)?;
    let explain = requested.iter().any(|r| r.name == CONTRIBUTIONS);
    let predictions = predict(app, model, rows, asked, true, explain).await?;
    Ok(requested
        .into_iter()
        .map(
            |Requested {
                 name,
                 parameters,
                 top,
             }| {
                let (data, shape) = output_tensor(model, &predictions, &name, top);
                AnsweredOutput {
                    name,
                    parameters,
                    data,
                    shape,
                }
            },
        )
        .collect())
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

/// One output a request asks for.
struct Requested<'a> {
    name: String,
    parameters: Option<&'a Map<String, Value>>,
    /// The `classification` parameter: the best k classes.
    top: Option<usize>,
}

/// The output of explanations: FP64 `[N, F + 1]` (`[N, C, F + 1]` for a multiclass model),
/// laid out as XGBoost's `pred_contribs`, the base value last.
pub const CONTRIBUTIONS: &str = "contributions";

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
pub fn output_names(model: &LoadedModel) -> &'static [&'static str] {
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
    use super::*;

    #[test]
    fn classification_lists_the_best_classes_first() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let out = classification(&labels, &[&[0.2, 0.7, 0.1]], 2);
        assert_eq!(out, ["0.700000:1:b", "0.200000:0:a"]);
    }
}
