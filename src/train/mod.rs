//! Training: split, preprocess, fit, evaluate, and write a versioned artifact.

mod algorithms;
pub mod boosting;
pub mod importance;
pub mod metrics;
mod params;
pub mod preprocess;
pub mod regression;
pub mod report;
mod schema;

pub use metrics::Evaluation;
pub use params::{Algorithm, AlgorithmParams, Gamma, HyperParameterFlags, MaxFeatures};

use crate::data::{DataError, Dataset, stratified_kfold, stratified_split};
use crate::model::{
    ArtifactError, ArtifactFiles, ArtifactInfo, Backend, HeldOutMetrics, Manifest, ModelFile,
    NativeModel, Provenance, Task, write_new_version,
};
use preprocess::{fit_preprocessor, transform};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data could not be read or split.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A hyper-parameter is out of range or does not apply.
    #[error("{0}")]
    Parameter(String),
    /// The algorithm failed on this data.
    #[error("training failed: {0}")]
    Fit(String),
    /// The artifact could not be written.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// Reports progress of long work (forests, cross-validation). Implementations must be
/// shareable across the threads that grow a forest.
pub trait Progress: Sync {
    /// A new phase of `total` steps begins.
    fn start(&self, message: &str, total: u64);
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
    /// The phase is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Algorithm and hyper-parameters.
    pub params: AlgorithmParams,
    /// Share of rows held out for evaluation.
    pub test_size: f64,
    /// Seed of the split, the folds and the algorithm.
    pub seed: u64,
    /// Cross-validation folds on the training split, if wanted.
    pub cv: Option<usize>,
}

/// Mean and standard deviation of a score over folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    /// Mean over folds.
    pub mean: f64,
    /// Population standard deviation over folds.
    pub std: f64,
    /// The score of each fold.
    pub folds: Vec<f64>,
}

impl FoldScores {
    pub(crate) fn of(values: Vec<f64>) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        FoldScores {
            mean,
            std,
            folds: values,
        }
    }
}

/// k-fold cross-validation on the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// Number of folds.
    pub folds: usize,
    /// Accuracy over the folds.
    pub accuracy: FoldScores,
    /// Macro F1 over the folds.
    pub f1_macro: FoldScores,
    /// ROC AUC over the folds.
    pub roc_auc: Option<FoldScores>,
}

/// How the rows were split; enough for anyone to evaluate on the same rows again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Seed of the split.
    pub seed: u64,
    /// Share held out.
    pub test_size: f64,
    /// Number of training rows.
    pub train_rows: usize,
    /// The held-out rows, as 0-based data row indices.
    pub test_rows: Vec<usize>,
    /// Held-out rows left out of the evaluation because the served model refuses them (a
    /// category no training row has; gradient boosting's), as 0-based data row indices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_rows: Vec<usize>,
}

/// The contents of metrics.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsFile {
    /// Evaluation on the held-out split.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Cross-validation, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<CrossValidation>,
    /// The split.
    pub split: SplitInfo,
    /// Each feature's mean absolute contribution over the held-out rows, when the model explains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<importance::GlobalImportance>,
}

/// A fitted and evaluated model, not yet written.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// The model.
    pub model: NativeModel,
    /// Its evaluation.
    pub metrics: MetricsFile,
    /// Feature schemas with training statistics.
    pub features: Vec<crate::model::FeatureSchema>,
    /// Provenance for the manifest.
    pub provenance: Provenance,
    /// Class labels.
    pub labels: Vec<String>,
    /// KernelSHAP's background set, for a model without an exact explanation.
    pub background: Option<crate::model::explain::background::Background>,
}

fn fit_on_rows(
    data: &Dataset,
    rows: &[usize],
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<NativeModel, TrainError> {
    let (classes, labels) = classes_of(data)?;
    let preprocessor = fit_preprocessor(data, rows);
    let x = transform(&preprocessor, data, rows);
    let y: Vec<usize> = rows.iter().map(|&row| classes[row]).collect();
    let estimator = algorithms::fit(
        &options.params,
        &x,
        &y,
        labels.len(),
        options.seed,
        progress,
    )?;
    Ok(NativeModel {
        preprocessor,
        estimator,
        n_classes: labels.len(),
    })
}

pub(crate) fn evaluate_probabilities(
    truth_rows: &[usize],
    data: &Dataset,
    probabilities: &[Vec<f64>],
) -> Result<Evaluation, TrainError> {
    let (classes, labels) = classes_of(data)?;
    let truth: Vec<usize> = truth_rows.iter().map(|&row| classes[row]).collect();
    Ok(metrics::evaluate(&truth, probabilities, labels))
}

fn evaluate_on_rows(
    model: &NativeModel,
    data: &Dataset,
    rows: &[usize],
) -> Result<Evaluation, TrainError> {
    let x = transform(&model.preprocessor, data, rows);
    let probabilities: Vec<Vec<f64>> = (0..x.rows)
        .map(|i| model.predict_proba_encoded(x.row(i)))
        .collect();
    evaluate_probabilities(rows, data, &probabilities)
}

/// The class of each row and the class names: classification's target.
pub(crate) fn classes_of(data: &Dataset) -> Result<(&[usize], &[String]), TrainError> {
    data.classes().ok_or_else(|| {
        TrainError::Parameter(format!(
            "the target '{}' is a number: a classifier needs classes",
            data.target_name
        ))
    })
}

/// k-fold cross-validation of a classifier on the training split (stratified, as
/// scikit-learn's `StratifiedKFold(shuffle=True)`): `fit_and_evaluate(fold_train,
/// fold_validation)` fits on one and evaluates on the other.
pub(crate) fn cross_validate(
    data: &Dataset,
    train_rows: &[usize],
    folds: usize,
    seed: u64,
    progress: &dyn Progress,
    fit_and_evaluate: impl Fn(&[usize], &[usize]) -> Result<Evaluation, TrainError>,
) -> Result<CrossValidation, TrainError> {
    let (classes, labels) = classes_of(data)?;
    for (class, count) in train_rows
        .iter()
        .fold(vec![0; labels.len()], |mut counts, &row| {
            counts[classes[row]] += 1;
            counts
        })
        .into_iter()
        .enumerate()
    {
        if count < folds {
            return Err(DataError::Split(format!(
                "--cv {folds}: class '{}' has only {count} training rows, fewer than the folds",
                labels[class]
            ))
            .into());
        }
    }
    let partition = stratified_kfold(train_rows, classes, labels.len(), folds, seed)?;
    progress.start("cross-validating", folds as u64);
    let mut scores = Vec::with_capacity(folds);
    for (fold_train, fold_validation) in &partition {
        scores.push(fit_and_evaluate(fold_train, fold_validation)?);
        progress.advance(1);
    }
    progress.finish();
    let roc_auc = scores
        .iter()
        .map(|e| e.roc_auc)
        .collect::<Option<Vec<f64>>>()
        .map(FoldScores::of);
    Ok(CrossValidation {
        folds,
        accuracy: FoldScores::of(scores.iter().map(|e| e.accuracy).collect()),
        f1_macro: FoldScores::of(scores.iter().map(|e| e.f1_macro).collect()),
        roc_auc,
    })
}

/// Splits, optionally cross-validates, fits on the training split and evaluates on the test split.
pub fn train(
    data: &Dataset,
    options: &TrainOptions,
    progress: &dyn Progress,
) -> Result<TrainedModel, TrainError> {
    let (classes, labels) = classes_of(data)?;
    let (train_rows, test_rows) =
        stratified_split(classes, labels.len(), options.test_size, options.seed)?;
    options.params.check_against_rows(train_rows.len())?;
    let cv = match options.cv {
        Some(folds) => Some(cross_validate(
            data,
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
    let steps = algorithms::progress_steps(&options.params, labels.len());
    if steps > 0 {
        progress.start("fitting", steps);
    }
    let model = fit_on_rows(data, &train_rows, options, progress)?;
    if steps > 0 {
        progress.finish();
    }
    let evaluation = evaluate_on_rows(&model, data, &test_rows)?;
    let features = schema::feature_schemas(data, &train_rows, &model.preprocessor);
    let provenance = provenance(data, options, train_rows.len(), test_rows.len());
    let served = crate::model::Model::Native(model.clone());
    let importance = importance::global_importance(
        &served,
        &importance::feature_names(data),
        &importance::held_out_rows(data, &test_rows),
    );
    let background = importance::kernel_background(
        &served,
        &model.preprocessor,
        data,
        &train_rows,
        options.seed,
    );
    Ok(TrainedModel {
        background,
        model,
        metrics: MetricsFile {
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
        provenance,
        labels: labels.to_vec(),
    })
}

/// How a model was trained, for its manifest.
pub(crate) fn provenance(
    data: &Dataset,
    options: &TrainOptions,
    train_rows: usize,
    test_rows: usize,
) -> Provenance {
    Provenance {
        dataset: data.source.clone(),
        dataset_sha256: data.sha256.clone(),
        rows: data.n_rows(),
        train_rows,
        test_rows,
        test_size: options.test_size,
        seed: options.seed,
        cv_folds: options.cv,
        mlserve_version: env!("CARGO_PKG_VERSION").to_string(),
        estimator: options.params.clone(),
        iterations_kept: None,
        refused_test_rows: None,
    }
}

/// Now, to the second, as RFC 3339: a version's `created_at`.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

/// The manifest of version `version` of a model trained as `provenance` says, with what every
/// trained model has: a native classifier's task and backend, no labels, metrics or target,
/// which the caller sets for its kind of model.
pub(crate) fn trained_manifest(
    name: &str,
    version: u32,
    created_at: &str,
    provenance: &Provenance,
    features: &[crate::model::FeatureSchema],
) -> Manifest {
    Manifest {
        format: 1,
        name: name.to_string(),
        version,
        task: Task::Classification,
        backend: Backend::Native,
        created_at: created_at.to_string(),
        labels: Vec::new(),
        artifact: ArtifactInfo {
            file: String::new(),
            sha256: String::new(),
            background_sha256: None,
        },
        training: Some(provenance.clone()),
        imported: None,
        onnx: None,
        metrics: None,
        target: None,
        prediction_log: None,
        features: features.to_vec(),
    }
}

impl TrainedModel {
    fn manifest(&self, name: &str, version: u32, created_at: &str) -> Manifest {
        Manifest {
            labels: self.labels.clone(),
            metrics: Some(HeldOutMetrics::Classification(
                self.metrics.evaluation.summary(),
            )),
            ..trained_manifest(name, version, created_at, &self.provenance, &self.features)
        }
    }

    /// Writes the model as the next version of `name` under `models_dir`, with its manifest,
    /// metrics.json and model card; returns the version and its folder.
    pub fn save(&self, models_dir: &Path, name: &str) -> Result<(u32, PathBuf), TrainError> {
        let created_at = now_rfc3339();
        let metrics_json = serde_json::to_vec_pretty(&self.metrics)
            .map_err(|error| TrainError::Fit(format!("cannot encode metrics: {error}")))?;
        Ok(write_new_version(models_dir, name, |version| {
            let manifest = self.manifest(name, version, &created_at);
            let card = report::model_card(&manifest, Some(&self.metrics));
            ArtifactFiles {
                manifest,
                model: ModelFile::Native(self.model.clone()),
                extra: with_background(
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

/// The extra files of a version, with `background.json` when the model has a background set.
pub(crate) fn with_background(
    mut extra: Vec<(&'static str, Vec<u8>)>,
    background: Option<&crate::model::explain::background::Background>,
    features: &[crate::model::FeatureSchema],
) -> Vec<(&'static str, Vec<u8>)> {
    if let Some(background) = background {
        extra.push((
            crate::model::explain::background::BACKGROUND_FILE,
            background.to_json(features),
        ));
    }
    extra
}

/// The demo models: breast cancer with logistic regression, iris with a random forest.
pub const DEMO_MODELS: [(crate::data::BundledDataset, Algorithm); 2] = [
    (
        crate::data::BundledDataset::BreastCancer,
        Algorithm::LogisticRegression,
    ),
    (crate::data::BundledDataset::Iris, Algorithm::RandomForest),
];

/// Trains the demo models into `models_dir` if it holds no model at all; returns the
/// `name/version` of each model written (none when the repository already has models).
pub fn train_demo_models_if_empty(models_dir: &Path) -> Result<Vec<String>, TrainError> {
    let has_models = std::fs::read_dir(models_dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .unwrap_or(false);
    if has_models {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for (dataset, algorithm) in DEMO_MODELS {
        let options = TrainOptions {
            params: AlgorithmParams::from_flags(algorithm, &HyperParameterFlags::default())?,
            test_size: 0.2,
            seed: 42,
            cv: None,
        };
        let trained = train(&crate::data::load_bundled(dataset), &options, &NoProgress)?;
        let (version, _) = trained.save(models_dir, dataset.model_name())?;
        written.push(format!("{}/{version}", dataset.model_name()));
    }
    Ok(written)
}
