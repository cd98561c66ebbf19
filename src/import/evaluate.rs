//! Held-out metrics of an imported model, from `--test-data CSV`: rows the model was not
//! trained on, with its feature columns and the `--target` column. Each row is validated and
//! scored through the served path ([`LoadedModel::outcomes_of_rows`]), so the metrics are the
//! served model's; they are what a trained model's held-out split gives (metrics.json, the
//! card's sections, the manifest's `[metrics]` that live accuracy is compared with).

use super::ImportError;
use super::sample::read_csv;
use crate::model::{
    FeatureValue, HeldOutMetrics, LoadedModel, Manifest, Outcome, RawValue, Task, UnknownFields,
};
use crate::train::regression::{
    RegressionEvaluation, RegressionMetrics, RegressionMetricsFile, model_card,
};
use crate::train::{MetricsFile, SplitInfo, metrics, report};
use std::path::Path;

/// Most rows of a test CSV: a larger one is refused rather than cut short.
const MAX_TEST_ROWS: usize = 1_000_000;

/// An imported model's evaluation on test rows, as the task writes its metrics.json.
#[derive(Debug, Clone)]
pub enum Evaluated {
    /// A classifier's.
    Classification(MetricsFile),
    /// A regressor's.
    Regression(RegressionMetricsFile),
}

impl Evaluated {
    /// The headline metrics the manifest keeps.
    pub fn summary(&self) -> HeldOutMetrics {
        match self {
            Evaluated::Classification(file) => {
                HeldOutMetrics::Classification(file.evaluation.summary())
            }
            Evaluated::Regression(file) => {
                HeldOutMetrics::Regression(file.evaluation.metrics.clone())
            }
        }
    }

    /// metrics.json.
    pub fn json(&self) -> Vec<u8> {
        let encoded = match self {
            Evaluated::Classification(file) => serde_json::to_vec_pretty(file),
            Evaluated::Regression(file) => serde_json::to_vec_pretty(file),
        };
        // Plain numbers, strings and vectors always encode.
        encoded.unwrap_or_default()
    }

    /// The model card of `manifest` with these metrics.
    pub fn card(&self, manifest: &Manifest) -> String {
        match self {
            Evaluated::Classification(file) => report::model_card(manifest, Some(file)),
            Evaluated::Regression(file) => model_card(manifest, file),
        }
    }
}

/// Evaluates `model` on the rows of the CSV at `path`, whose `target` column holds each row's
/// class label (one of the model's labels) or true value.
///
/// Errors, naming the file and line: a missing feature or target column, a row the schema
/// refuses, a label the model does not have, a target that is not a finite number, fewer than
/// two rows for a regressor, a row the model cannot score.
pub fn evaluate(model: &LoadedModel, path: &Path, target: &str) -> Result<Evaluated, ImportError> {
    let manifest = &model.artifact.manifest;
    if manifest.features.iter().any(|f| f.name == target) {
        return Err(ImportError::Features(format!(
            "--target {target} is one of the model's features; name the column that holds \
             what it predicts"
        )));
    }
    let (csv, more) = read_csv(path, MAX_TEST_ROWS)?;
    if more {
        return Err(ImportError::Features(format!(
            "{}: more than {MAX_TEST_ROWS} rows; evaluate on a sample of them",
            path.display()
        )));
    }
    let (header, sample) = (&csv.header, &csv.sample);
    let line_of = |row: usize| csv.lines.get(row).copied().unwrap_or(0);
    let at = |row: usize, message: String| {
        ImportError::Features(format!("{}:{}: {message}", path.display(), line_of(row)))
    };
    let missing: Vec<&str> = manifest
        .features
        .iter()
        .map(|f| f.name.as_str())
        .chain([target])
        .filter(|name| !header.iter().any(|h| h == name))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Features(format!(
            "{}: --test-data needs the features' and the target's columns; it has no {}",
            path.display(),
            missing.join(", ")
        )));
    }
    let rows = sample.get(target).map_or(0, Vec::len);
    if rows == 0 {
        return Err(ImportError::Features(format!(
            "{}: no rows to evaluate on",
            path.display()
        )));
    }
    let mut valid: Vec<Vec<FeatureValue>> = Vec::with_capacity(rows);
    for row in 0..rows {
        let cells = manifest.features.iter().filter_map(|feature| {
            let cell = sample.get(&feature.name)?.get(row)?;
            Some((feature.name.as_str(), RawValue::Text(cell)))
        });
        let mut errors = Vec::new();
        match model
            .validator
            .validate(cells, UnknownFields::Ignore, "", &mut errors)
        {
            Some(valid_row) => valid.push(valid_row.values),
            None => {
                let first = errors.first();
                return Err(at(
                    row,
                    format!(
                        "column '{}': {}",
                        first.map_or("", |e| e.field.as_str()),
                        first.map_or("refused", |e| e.message.as_str())
                    ),
                ));
            }
        }
    }
    let mut outcomes = Vec::with_capacity(valid.len());
    for (chunk_index, chunk) in valid.chunks(256).enumerate() {
        let views: Vec<&[FeatureValue]> = chunk.iter().map(Vec::as_slice).collect();
        let scored = model
            .outcomes_of_rows(&views)
            .map_err(|error| ImportError::Features(format!("{}: {error}", path.display())))?;
        for (offset, outcome) in scored.into_iter().enumerate() {
            let row = chunk_index * 256 + offset;
            outcomes.push(outcome.map_err(|error| at(row, error.to_string()))?);
        }
    }
    let cells = sample.get(target).map(Vec::as_slice).unwrap_or_default();
    let split = SplitInfo {
        seed: 0,
        test_size: 1.0,
        train_rows: 0,
        test_rows: (0..rows).collect(),
        refused_rows: Vec::new(),
    };
    match manifest.task {
        Task::Classification => {
            let mut truth = Vec::with_capacity(rows);
            for (row, cell) in cells.iter().enumerate() {
                let class = manifest.labels.iter().position(|l| l == cell).ok_or_else(|| {
                    at(
                        row,
                        format!(
                            "column '{target}' (the target): '{cell}' is not one of the model's classes ({})",
                            manifest.labels.join(", ")
                        ),
                    )
                })?;
                truth.push(class);
            }
            let probabilities: Vec<Vec<f64>> = outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Outcome::Class { probabilities, .. } => probabilities,
                    Outcome::Value(_) => Vec::new(),
                })
                .collect();
            let evaluation = metrics::evaluate(&truth, &probabilities, &manifest.labels);
            Ok(Evaluated::Classification(MetricsFile {
                evaluation,
                cv: None,
                split,
                importance: importance(model, &valid),
            }))
        }
        Task::Regression => {
            let mut actual = Vec::with_capacity(rows);
            for (row, cell) in cells.iter().enumerate() {
                let value = cell.parse::<f64>().ok().filter(|v| v.is_finite());
                actual.push(value.ok_or_else(|| {
                    at(
                        row,
                        format!(
                            "column '{target}' (the target): expected a finite number, got '{cell}'"
                        ),
                    )
                })?);
            }
            let predicted: Vec<f64> = outcomes.iter().filter_map(Outcome::value).collect();
            let metrics = RegressionMetrics::of(&actual, &predicted)
                .filter(|_| actual.len() >= 2)
                .ok_or_else(|| {
                    ImportError::Features(format!(
                        "{}: {} rows: R² needs at least 2",
                        path.display(),
                        actual.len()
                    ))
                })?;
            Ok(Evaluated::Regression(RegressionMetricsFile {
                task: Task::Regression,
                evaluation: RegressionEvaluation {
                    metrics,
                    test_actual: actual,
                    test_predicted: predicted,
                },
                cv: None,
                split,
                importance: importance(model, &valid),
            }))
        }
    }
}

/// The model's global importance over the test rows, when it explains (see
/// `train::importance`).
fn importance(
    model: &LoadedModel,
    rows: &[Vec<FeatureValue>],
) -> Option<crate::train::importance::GlobalImportance> {
    let names: Vec<String> = model
        .artifact
        .manifest
        .features
        .iter()
        .map(|f| f.name.clone())
        .collect();
    crate::train::importance::global_importance(&model.artifact.model, &names, rows)
}
