//! Training a model that predicts a number, end to end: split the rows at random (scikit-learn's
//! `train_test_split`), optionally cross-validate on the training split (`KFold(shuffle=True)`),
//! fit, evaluate on the held-out rows, and write the versioned artifact.

use super::RegressionMetrics;
use crate::data::{Dataset, Target, kfold, shuffled_split};
use crate::model::native::NativeRegressor;
use crate::model::{
    ArtifactFiles, FeatureSchema, HeldOutMetrics, Histogram, Manifest, ModelFile, Provenance,
    TargetSchema, Task, write_new_version,
};
use crate::train::preprocess::{fit_preprocessor, transform};
use crate::train::{FoldScores, NoProgress, Progress, SplitInfo, TrainError, TrainOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The held-out evaluation of a regression model, with its predictions (for the card's plots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionEvaluation {
    /// The metrics.
    #[serde(flatten)]
    pub metrics: RegressionMetrics,
    /// The true value of each evaluated held-out row: `split.test_rows`, in order, without
    /// `split.refused_rows`.
    pub test_actual: Vec<f64>,
    /// The predicted value of each held-out row, in the same order.
    pub test_predicted: Vec<f64>,
}

/// k-fold cross-validation of a regression model on the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionCrossValidation {
    /// Number of folds.
    pub folds: usize,
    /// R² over the folds.
    pub r2: FoldScores,
    /// RMSE over the folds.
    pub rmse: FoldScores,
    /// MAE over the folds.
    pub mae: FoldScores,
}

/// The contents of a regression model's metrics.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetricsFile {
    /// Always "regression".
    pub task: Task,
    /// Evaluation on the held-out split.
    #[serde(flatten)]
    pub evaluation: RegressionEvaluation,
    /// Cross-validation, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<RegressionCrossValidation>,
    /// The split.
    pub split: SplitInfo,
    /// Each feature's mean absolute contribution over the held-out rows, when the model explains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<crate::train::importance::GlobalImportance>,
}

/// A fitted and evaluated regression model, not yet written.
#[derive(Debug, Clone)]
pub struct TrainedRegressor {
    /// The model.
    pub model: NativeRegressor,
    /// Its evaluation.
    pub metrics: RegressionMetricsFile,
    /// Feature schemas with training statistics.
    pub features: Vec<FeatureSchema>,
    /// The target's name and training distribution.
    pub target: TargetSchema,
    /// Provenance for the manifest.
    pub provenance: Provenance,
    /// KernelSHAP's background set, for a model without an exact explanation.
    pub background: Option<crate::model::explain::background::Background>,
}

/// The target values of a regression dataset.
pub(crate) fn values_of(data: &Dataset) -> Result<&[f64], TrainError> {
    match &data.target {
        Target::Values(values) => Ok(values),
        Target::Classes { .. } => Err(TrainError::Parameter(format!(
            "the target '{}' holds classes: regression needs a number per row",
            data.target_name
        ))),
    }
}

fn fit_on_rows(
    data: &Dataset,
    rows: &[usize],
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<NativeRegressor, TrainError> {
    let values = values_of(data)?;
    let preprocessor = fit_preprocessor(data, rows);
    let x = transform(&preprocessor, data, rows);
    let y: Vec<f64> = rows.iter().map(|&row| values[row]).collect();
    let regressor = super::fit(&options.params, &x, &y, options.seed, progress)?;
    Ok(NativeRegressor {
        preprocessor,
        regressor,
    })
}

/// The (true, predicted) values of `rows`, and their metrics.
fn evaluate_on_rows(
    model: &NativeRegressor,
    data: &Dataset,
    rows: &[usize],
) -> Result<RegressionEvaluation, TrainError> {
    let x = transform(&model.preprocessor, data, rows);
    let predicted: Vec<f64> = (0..x.rows)
        .map(|i| model.regressor.predict(x.row(i)))
        .collect();
    evaluate_predictions(data, rows, predicted)
}

/// The metrics of `predicted` against the true values of `rows`.
///
/// Errors: fewer than 2 rows (R² needs variance), a prediction that is not finite.
pub(crate) fn evaluate_predictions(
    data: &Dataset,
    rows: &[usize],
    predicted: Vec<f64>,
) -> Result<RegressionEvaluation, TrainError> {
    let values = values_of(data)?;
    if rows.len() < 2 {
        // scikit-learn's R² is NaN for one row: there is no variance to explain.
        return Err(TrainError::Parameter(format!(
            "{} held-out row{}: R² needs at least 2; hold out more rows (--test-size) or use fewer folds",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        )));
    }
    if predicted.iter().any(|p| !p.is_finite()) {
        return Err(TrainError::Fit(
            "the model predicts a value that is not a finite number on a held-out row".into(),
        ));
    }
    let actual: Vec<f64> = rows.iter().map(|&row| values[row]).collect();
    let metrics = RegressionMetrics::of(&actual, &predicted)
        .ok_or_else(|| TrainError::Fit("no held-out rows to evaluate on".into()))?;
    Ok(RegressionEvaluation {
        metrics,
        test_actual: actual,
        test_predicted: predicted,
    })
}

/// k-fold cross-validation of a regressor on the training split (scikit-learn's
/// `KFold(shuffle=True)`): `fit_and_evaluate(fold_train, fold_validation)` fits on one and
/// evaluates on the other.
pub(crate) fn cross_validate(
    train_rows: &[usize],
    folds: usize,
    seed: u64,
    progress: &dyn Progress,
    fit_and_evaluate: impl Fn(&[usize], &[usize]) -> Result<RegressionEvaluation, TrainError>,
) -> Result<RegressionCrossValidation, TrainError> {
    let partition = kfold(train_rows, folds, seed)?;
    progress.start("cross-validating", folds as u64);
    let mut scores = Vec::with_capacity(folds);
    for (fold_train, fold_validation) in &partition {
        scores.push(fit_and_evaluate(fold_train, fold_validation)?.metrics);
        progress.advance(1);
    }
    progress.finish();
    let of =
        |metric: fn(&RegressionMetrics) -> f64| FoldScores::of(scores.iter().map(metric).collect());
    Ok(RegressionCrossValidation {
        folds,
        r2: of(|m| m.r2),
        rmse: of(|m| m.rmse),
        mae: of(|m| m.mae),
    })
}

/// Splits, optionally cross-validates, fits on the training split and evaluates on the test
/// split: [`crate::train::train`] for a target that is a number.
///
/// Errors: a target of classes, a split or fold that leaves no rows, hyper-parameters the
/// data cannot take (more neighbours than rows), an algorithm with no regression form.
pub fn train_regressor(
    data: &Dataset,
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<TrainedRegressor, TrainError> {
    let values = values_of(data)?;
    let (train_rows, test_rows) = shuffled_split(values.len(), options.test_size, options.seed)?;
    options.params.check_against_rows(train_rows.len())?;
    let cv = match options.cv {
        Some(folds) => Some(cross_validate(
            &train_rows,
            folds,
            options.seed,
            progress,
            |fit_rows, validation_rows| {
                let model = fit_on_rows(data, fit_rows, options, &NoProgress)?;
                evaluate_on_rows(&model, data, validation_rows)
            },
        )?),
        None => None,
    };
    let steps = super::progress_steps(&options.params);
    if steps > 0 {
        progress.start("fitting", steps);
    }
    let model = fit_on_rows(data, &train_rows, options, progress)?;
    if steps > 0 {
        progress.finish();
    }
    let evaluation = evaluate_on_rows(&model, data, &test_rows)?;
    let features = crate::train::schema::feature_schemas(data, &train_rows, &model.preprocessor);
    let training_values: Vec<f64> = train_rows.iter().map(|&row| values[row]).collect();
    let target = TargetSchema {
        predictions: Histogram::deciles(&evaluation.test_predicted),
        ..target_schema(&data.target_name, &training_values)
    };
    let served = crate::model::Model::NativeRegressor(model.clone());
    let (importance, background) = {
        use crate::train::importance::{
            feature_names, global_importance, held_out_rows, kernel_background,
        };
        (
            global_importance(
                &served,
                &feature_names(data),
                &held_out_rows(data, &test_rows),
            ),
            kernel_background(
                &served,
                &model.preprocessor,
                data,
                &train_rows,
                options.seed,
            ),
        )
    };
    Ok(TrainedRegressor {
        background,
        target,
        provenance: crate::train::provenance(data, options, train_rows.len(), test_rows.len()),
        model,
        metrics: RegressionMetricsFile {
            task: Task::Regression,
            evaluation,
            cv,
            importance,
            split: SplitInfo {
                seed: options.seed,
                test_size: options.test_size,
                train_rows: train_rows.len(),
                test_rows,
                refused_rows: Vec::new(),
            },
        },
        features,
    })
}

/// The name and training distribution of a target.
pub fn target_schema(name: &str, values: &[f64]) -> TargetSchema {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    TargetSchema {
        name: name.to_string(),
        min: sorted.first().copied().unwrap_or(0.0),
        max: sorted.last().copied().unwrap_or(0.0),
        mean,
        std: (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt(),
        quartiles: [0.25, 0.5, 0.75].map(|q| percentile(&sorted, q)),
        baseline: Histogram::deciles(&sorted),
        predictions: None,
    }
}

/// The `q` quantile of sorted values with linear interpolation (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (position - below as f64) * (sorted[above] - sorted[below])
}

impl TrainedRegressor {
    fn manifest(&self, name: &str, version: u32, created_at: &str) -> Manifest {
        Manifest {
            task: Task::Regression,
            metrics: Some(HeldOutMetrics::Regression(
                self.metrics.evaluation.metrics.clone(),
            )),
            target: Some(self.target.clone()),
            ..crate::train::trained_manifest(
                name,
                version,
                created_at,
                &self.provenance,
                &self.features,
            )
        }
    }

    /// Writes the model as the next version of `name` under `models_dir`, with its manifest,
    /// metrics.json and model card; returns the version and its folder.
    pub fn save(&self, models_dir: &Path, name: &str) -> Result<(u32, PathBuf), TrainError> {
        let created_at = crate::train::now_rfc3339();
        let metrics_json = serde_json::to_vec_pretty(&self.metrics)
            .map_err(|error| TrainError::Fit(format!("cannot encode metrics: {error}")))?;
        Ok(write_new_version(models_dir, name, |version| {
            let manifest = self.manifest(name, version, &created_at);
            let card = super::card::model_card(&manifest, &self.metrics);
            ArtifactFiles {
                manifest,
                model: ModelFile::NativeRegressor(self.model.clone()),
                extra: crate::train::with_background(
                    vec![
                        ("metrics.json", metrics_json.clone()),
                        ("report.html", card.into_bytes()),
                    ],
                    self.background.as_ref(),
                    &self.features,
                ),
            }
        })?)
    }
}
