//! Training gradient-boosted trees end to end, for classes or a number: the same split,
//! cross-validation, held-out evaluation, card and metrics.json as every trained model, with
//! the model written as boosted trees (the `boosted` backend) rather than a native estimator.

use crate::data::{ColumnValues, Dataset, shuffled_split, stratified_split};
use crate::model::boosted::BoostedTrees;
use crate::model::{
    ArtifactFiles, Backend, FeatureSchema, HeldOutMetrics, Histogram, Manifest, ModelFile,
    Provenance, TargetSchema, Task, write_new_version,
};
use crate::train::preprocess::{fit_preprocessor, raw_row};
use crate::train::regression::{
    RegressionMetricsFile, cross_validate as cross_validate_values, evaluate_predictions,
    target_schema, values_of,
};
use crate::train::{
    MetricsFile, NoProgress, Progress, SplitInfo, TrainError, TrainOptions, classes_of,
    cross_validate, evaluate_probabilities, now_rfc3339, provenance, report, schema,
    trained_manifest,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The held-out evaluation, as the task writes it to metrics.json.
#[derive(Debug, Clone)]
pub enum BoostedMetrics {
    /// A classifier's.
    Classification(MetricsFile),
    /// A regressor's.
    Regression(RegressionMetricsFile),
}

/// Fitted and evaluated boosted trees, not yet written.
#[derive(Debug, Clone)]
pub struct TrainedBoosted {
    /// The trees.
    pub model: BoostedTrees,
    /// Their evaluation.
    pub metrics: BoostedMetrics,
    /// Feature schemas with training statistics; every feature is nullable.
    pub features: Vec<FeatureSchema>,
    /// A regressor's target distribution.
    pub target: Option<TargetSchema>,
    /// Provenance for the manifest.
    pub provenance: Provenance,
    /// Class labels (none for a regressor).
    pub labels: Vec<String>,
}

/// `rows` split into those the model trained on `train_rows` serves and those it refuses: a
/// category no training row has is refused with 422 when served (as for every model), so such
/// a row is left out of the evaluation rather than scored as missing.
fn servable_rows(data: &Dataset, train_rows: &[usize], rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let known: Vec<Option<BTreeSet<&str>>> = data
        .columns
        .iter()
        .map(|column| match &column.values {
            ColumnValues::Text(values) => {
                Some(train_rows.iter().map(|&r| values[r].as_str()).collect())
            }
            ColumnValues::Numeric(_) => None,
        })
        .collect();
    rows.iter().partition(|&&row| {
        data.columns
            .iter()
            .zip(&known)
            .all(|(column, known)| match (&column.values, known) {
                (ColumnValues::Text(values), Some(known)) => {
                    values[row].is_empty() || known.contains(values[row].as_str())
                }
                _ => true,
            })
    })
}

/// The answers of `model` for `rows` of `data`, through the path a served request takes.
fn answers(model: &BoostedTrees, data: &Dataset, rows: &[usize]) -> Vec<Vec<f64>> {
    let encoded: Vec<Vec<f64>> = rows
        .iter()
        .map(|&row| model.row(&raw_row(data, row)))
        .collect();
    model.predict_rows(&encoded)
}

fn fit_rows(
    data: &Dataset,
    rows: &[usize],
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<BoostedTrees, TrainError> {
    super::fit(&options.params, data, rows, options.seed, progress)
}

fn fit_with_progress(
    data: &Dataset,
    rows: &[usize],
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<BoostedTrees, TrainError> {
    if let crate::model::AlgorithmParams::GradientBoosting { n_trees, .. } = &options.params {
        progress.start("boosting", *n_trees as u64);
    }
    let model = fit_rows(data, rows, options, progress);
    progress.finish();
    model
}

fn evaluate_classes(
    model: &BoostedTrees,
    data: &Dataset,
    rows: &[usize],
) -> Result<crate::train::Evaluation, TrainError> {
    evaluate_probabilities(rows, data, &answers(model, data, rows))
}

fn evaluate_values(
    model: &BoostedTrees,
    data: &Dataset,
    rows: &[usize],
) -> Result<crate::train::regression::RegressionEvaluation, TrainError> {
    let predicted = answers(model, data, rows)
        .into_iter()
        .map(|answer| answer.first().copied().unwrap_or(f64::NAN))
        .collect();
    evaluate_predictions(data, rows, predicted)
}

/// Splits, optionally cross-validates, fits gradient-boosted trees on the training split and
/// evaluates them on the held-out split: [`crate::train::train`] and
/// [`crate::train::regression::train_regressor`] for `gradient-boosting`.
///
/// Errors: those of the split and folds, a categorical feature with more categories than
/// `--max-bins`, fewer than 2 held-out rows for a regressor.
pub fn train_boosted(
    data: &Dataset,
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<TrainedBoosted, TrainError> {
    let classes = data.classes();
    let (train_rows, test_rows) = match classes {
        Some((classes, labels)) => {
            stratified_split(classes, labels.len(), options.test_size, options.seed)?
        }
        None => shuffled_split(data.n_rows(), options.test_size, options.seed)?,
    };
    let (evaluated_rows, refused_rows) = servable_rows(data, &train_rows, &test_rows);
    let split = || SplitInfo {
        seed: options.seed,
        test_size: options.test_size,
        train_rows: train_rows.len(),
        test_rows: test_rows.clone(),
        refused_rows: refused_rows.clone(),
    };
    let fold = |fit: &[usize]| fit_rows(data, fit, options, &NoProgress);
    let (model, metrics, target) = if classes.is_some() {
        let cv = match options.cv {
            Some(folds) => Some(cross_validate(
                data,
                &train_rows,
                folds,
                options.seed,
                progress,
                |fit, validation| {
                    let (validation, _) = servable_rows(data, fit, validation);
                    evaluate_classes(&fold(fit)?, data, &validation)
                },
            )?),
            None => None,
        };
        let model = fit_with_progress(data, &train_rows, options, progress)?;
        let evaluation = evaluate_classes(&model, data, &evaluated_rows)?;
        let metrics = MetricsFile {
            evaluation,
            cv,
            importance: importance(&model, data, &evaluated_rows),
            split: split(),
        };
        (model, BoostedMetrics::Classification(metrics), None)
    } else {
        let cv = match options.cv {
            Some(folds) => Some(cross_validate_values(
                &train_rows,
                folds,
                options.seed,
                progress,
                |fit, validation| {
                    let (validation, _) = servable_rows(data, fit, validation);
                    evaluate_values(&fold(fit)?, data, &validation)
                },
            )?),
            None => None,
        };
        let model = fit_with_progress(data, &train_rows, options, progress)?;
        let evaluation = evaluate_values(&model, data, &evaluated_rows)?;
        let values = values_of(data)?;
        let training: Vec<f64> = train_rows.iter().map(|&row| values[row]).collect();
        let target = TargetSchema {
            predictions: Histogram::deciles(&evaluation.test_predicted),
            ..target_schema(&data.target_name, &training)
        };
        let metrics = RegressionMetricsFile {
            task: Task::Regression,
            evaluation,
            cv,
            importance: importance(&model, data, &evaluated_rows),
            split: split(),
        };
        (model, BoostedMetrics::Regression(metrics), Some(target))
    };
    let preprocessor = fit_preprocessor(data, &train_rows);
    let features = schema::feature_schemas(data, &train_rows, &preprocessor)
        .into_iter()
        .map(|feature| FeatureSchema {
            nullable: true,
            ..feature
        })
        .collect();
    let labels = match classes {
        Some(_) => classes_of(data)?.1.to_vec(),
        None => Vec::new(),
    };
    let iterations_kept = model.source.iterations.0;
    Ok(TrainedBoosted {
        model,
        metrics,
        features,
        target,
        provenance: Provenance {
            iterations_kept: Some(iterations_kept),
            refused_test_rows: Some(refused_rows.len()).filter(|&n| n > 0),
            ..provenance(data, options, train_rows.len(), test_rows.len())
        },
        labels,
    })
}

impl TrainedBoosted {
    fn manifest(&self, name: &str, version: u32, created_at: &str) -> Manifest {
        let (task, metrics) = match &self.metrics {
            BoostedMetrics::Classification(file) => (
                Task::Classification,
                HeldOutMetrics::Classification(file.evaluation.summary()),
            ),
            BoostedMetrics::Regression(file) => (
                Task::Regression,
                HeldOutMetrics::Regression(file.evaluation.metrics.clone()),
            ),
        };
        Manifest {
            task,
            backend: Backend::Boosted,
            labels: self.labels.clone(),
            metrics: Some(metrics),
            target: self.target.clone(),
            ..trained_manifest(name, version, created_at, &self.provenance, &self.features)
        }
    }

    /// Writes the model as the next version of `name` under `models_dir`, with its manifest,
    /// metrics.json and model card; returns the version and its folder.
    pub fn save(&self, models_dir: &Path, name: &str) -> Result<(u32, PathBuf), TrainError> {
        let created_at = now_rfc3339();
        let encode = |result: Result<Vec<u8>, serde_json::Error>| {
            result.map_err(|error| TrainError::Fit(format!("cannot encode metrics: {error}")))
        };
        let metrics_json = match &self.metrics {
            BoostedMetrics::Classification(file) => encode(serde_json::to_vec_pretty(file))?,
            BoostedMetrics::Regression(file) => encode(serde_json::to_vec_pretty(file))?,
        };
        Ok(write_new_version(models_dir, name, |version| {
            let manifest = self.manifest(name, version, &created_at);
            let card = match &self.metrics {
                BoostedMetrics::Classification(file) => report::model_card(&manifest, Some(file)),
                BoostedMetrics::Regression(file) => {
                    crate::train::regression::model_card(&manifest, file)
                }
            };
            ArtifactFiles {
                manifest,
                model: ModelFile::Boosted(self.model.clone()),
                extra: vec![
                    ("metrics.json", metrics_json.clone()),
                    ("report.html", card.into_bytes()),
                ],
            }
        })?)
    }
}

/// The trees' global importance over the evaluated rows (see `train::importance`).
fn importance(
    model: &BoostedTrees,
    data: &Dataset,
    rows: &[usize],
) -> Option<crate::train::importance::GlobalImportance> {
    use crate::train::importance::{feature_names, global_importance, held_out_rows};
    global_importance(
        &crate::model::Model::Boosted(model.clone()),
        &feature_names(data),
        &held_out_rows(data, rows),
    )
}
