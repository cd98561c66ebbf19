//! The target of an imported model that predicts a number: its name, and its training
//! distribution (range, quartiles, decile bins) from the CSV that names the features, for the
//! web form's range bar, the predicted-value counters and the drift of the outputs.

use super::{ImportError, Sample};
use crate::model::imported::OnnxRunner;
use crate::model::{
    FeatureSchema, FeatureValue, Histogram, RawValue, TargetSchema, UnknownFields, Validator,
};
use std::path::Path;

/// The target column `name` of the CSV at `path` (whose rows are `sample`), as the manifest's
/// `[target]`. Every cell must be a finite number, and there must be at least two.
pub(super) fn target_from_csv(
    name: &str,
    path: &Path,
    sample: &Sample,
) -> Result<TargetSchema, ImportError> {
    let Some(cells) = sample.get(name) else {
        return Err(ImportError::Features(format!(
            "{}: --target names '{name}', which is not a column of its header",
            path.display()
        )));
    };
    let mut values = Vec::with_capacity(cells.len());
    for (row, cell) in cells.iter().enumerate() {
        match cell.parse::<f64>() {
            Ok(value) if value.is_finite() => values.push(value),
            _ => {
                // The header is line 1.
                return Err(ImportError::Features(format!(
                    "{}:{}: column '{name}' (the target): expected a finite number, got '{cell}'",
                    path.display(),
                    row + 2
                )));
            }
        }
    }
    if values.len() < 2 {
        return Err(ImportError::Features(format!(
            "{}: the target '{name}' needs at least two rows for its training range",
            path.display()
        )));
    }
    Ok(crate::train::regression::target_schema(name, &values))
}

/// A model's own predictions on the CSV's rows, in bins at their deciles: the baseline of the
/// drift of its outputs ([`TargetSchema::predictions`]). `score` gives the predicted value of
/// each of a chunk of validated rows (none for a chunk it cannot score); rows the validator
/// refuses are left out. `None` when no value is left.
pub(super) fn prediction_baseline(
    features: &[FeatureSchema],
    sample: &Sample,
    score: impl Fn(&[&[FeatureValue]]) -> Vec<f64>,
) -> Option<Histogram> {
    let validator = Validator::new(features);
    let rows = sample.values().next().map_or(0, Vec::len);
    let mut valid = Vec::with_capacity(rows);
    for row in 0..rows {
        let cells = features.iter().filter_map(|feature| {
            let cell = sample.get(&feature.name)?.get(row)?;
            Some((feature.name.as_str(), RawValue::Text(cell)))
        });
        let mut errors = Vec::new();
        if let Some(valid_row) = validator.validate(cells, UnknownFields::Ignore, "", &mut errors) {
            valid.push(valid_row.values);
        }
    }
    let mut predicted = Vec::with_capacity(valid.len());
    for chunk in valid.chunks(256) {
        let views: Vec<&[FeatureValue]> = chunk.iter().map(Vec::as_slice).collect();
        predicted.extend(score(&views));
    }
    Histogram::deciles(&predicted)
}

/// The values an ONNX graph predicts for rows, or none when the graph refuses them.
pub(super) fn graph_values(runner: &OnnxRunner, rows: &[&[FeatureValue]]) -> Vec<f64> {
    runner
        .scores(rows)
        .map(|scores| scores.iter().filter_map(|s| s.first().copied()).collect())
        .unwrap_or_default()
}
