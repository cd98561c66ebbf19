//! The input tensors of an inference request as validated rows: one `input` matrix `[N, F]`
//! (the features in schema order) or one `[N]` / `[N, 1]` tensor per feature, every value
//! through the model's validator.

use super::tensor::{Elements, Tensor};
use crate::model::{LoadedModel, RawValue, UnknownFields, ValidRow};
use crate::serve::protocol_error::LISTED_PROBLEMS;

/// The value of row `row`, column `column` of a tensor, for the validator.
fn cell(tensor: &Tensor, index: usize) -> RawValue<'_> {
    match &tensor.elements {
        Elements::Numbers(v) => RawValue::Number(v[index]),
        Elements::Bools(v) => RawValue::Bool(v[index]),
        Elements::Texts(v) => RawValue::Text(&v[index]),
    }
}

/// Validates one row, collecting its problems as "row N: field: message".
fn validate_row<'a>(
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
