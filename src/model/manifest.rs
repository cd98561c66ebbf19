//! `model.toml`: what a model is, what it takes, what it answers, and where it came from.

use super::algorithm::AlgorithmParams;
use crate::data::ColumnKind;
pub use crate::data::Task;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version, for later migrations.
    pub format: u32,
    /// Model name (the folder name and the URL segment).
    pub name: String,
    /// Version number (the folder name).
    pub version: u32,
    /// What the model predicts.
    pub task: Task,
    /// Which backend runs it.
    pub backend: Backend,
    /// When it was written, RFC 3339.
    pub created_at: String,
    /// Class labels, in the order of the model's probabilities.
    pub labels: Vec<String>,
    /// The model file and its checksum.
    pub artifact: ArtifactInfo,
    /// How it was trained (models trained by mlserve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Provenance>,
    /// Where it came from (models imported with `mlserve import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportProvenance>,
    /// The headline metrics on the held-out split (all of them are in metrics.json); imported
    /// models have none until they are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<HeldOutMetrics>,
    /// What a regression model predicts: the target's name and training distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSchema>,
    /// How the features feed an ONNX graph's inputs (the `onnx` backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<OnnxBinding>,
    /// `false` keeps this model's predictions out of the prediction log whatever the server's
    /// settings (for a model whose inputs must not be stored); absent or `true` logs them as
    /// the settings say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_log: Option<bool>,
    /// Input features, in order.
    pub features: Vec<FeatureSchema>,
}

impl Manifest {
    /// What the model is, in a word or two: the algorithm of a trained model, `onnx` for an
    /// imported one.
    pub fn algorithm_name(&self) -> &str {
        match (&self.training, self.backend) {
            (Some(training), _) => training.estimator.algorithm().cli_name(),
            (None, Backend::Onnx) => "onnx",
            (None, Backend::Boosted) => "boosted-trees",
            (None, Backend::Native) => "native",
        }
    }

    /// Held-out accuracy, when the model is a classifier and was evaluated.
    pub fn accuracy(&self) -> Option<f64> {
        self.classification_metrics().map(|m| m.accuracy)
    }

    /// Held-out ROC AUC, when the model is a classifier, was evaluated and it is defined.
    pub fn roc_auc(&self) -> Option<f64> {
        self.classification_metrics().and_then(|m| m.roc_auc)
    }

    fn classification_metrics(&self) -> Option<&MetricsSummary> {
        match &self.metrics {
            Some(HeldOutMetrics::Classification(metrics)) => Some(metrics),
            _ => None,
        }
    }

    /// The example row: every feature's example value, by name, in schema order.
    pub fn example_row(&self) -> serde_json::Map<String, serde_json::Value> {
        self.features
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    serde_json::to_value(&f.example).unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Which runtime executes the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// mlserve's own inference code on `model.bin`.
    Native,
    /// ONNX Runtime on `model.onnx` (models exported from scikit-learn with skl2onnx).
    Onnx,
    /// mlserve's tree engine on `model.bin`: gradient-boosted trees read from an XGBoost or
    /// LightGBM file (kept beside it as `source.*`).
    Boosted,
}

/// How the schema's features feed an ONNX graph: each graph input takes one or more features
/// as its columns (`[N, F]` for a matrix input, `[N, 1]` for a column input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxBinding {
    /// The graph's inputs, each with the features it takes.
    pub inputs: Vec<OnnxInput>,
}

/// One graph input and the features that fill it, in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxInput {
    /// The input's name in the graph.
    pub name: String,
    /// The features that are its columns.
    pub features: Vec<String>,
}

/// Where an imported model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProvenance {
    /// The file it was imported from.
    pub source: String,
    /// SHA-256 of that file.
    pub source_sha256: String,
    /// The tool that wrote the graph, as the graph says (`skl2onnx 1.20.0`).
    pub producer: String,
    /// The graph's ONNX IR version and operator sets (`ir 8; ai.onnx 17, ai.onnx.ml 3`).
    pub opsets: String,
    /// mlserve version that imported it.
    pub mlserve_version: String,
}

/// The model file of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInfo {
    /// File name inside the version folder.
    pub file: String,
    /// SHA-256 of the file, checked on load.
    pub sha256: String,
    /// SHA-256 of `background.json`, KernelSHAP's background set, when the version has one
    /// (checked when the first explanation is asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_sha256: Option<String>,
}

/// Training provenance: enough to reproduce the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Dataset name or file path.
    pub dataset: String,
    /// SHA-256 of the dataset.
    pub dataset_sha256: String,
    /// Rows in the dataset.
    pub rows: usize,
    /// Rows the model was fitted on.
    pub train_rows: usize,
    /// Held-out rows it was evaluated on.
    pub test_rows: usize,
    /// Share of rows held out.
    pub test_size: f64,
    /// Random seed of the split and the algorithm.
    pub seed: u64,
    /// Cross-validation folds, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv_folds: Option<usize>,
    /// mlserve version that trained it.
    pub mlserve_version: String,
    /// The algorithm and its hyper-parameters.
    pub estimator: AlgorithmParams,
    /// Gradient boosting: the iterations the model kept (fewer than `n_trees` after early
    /// stopping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations_kept: Option<usize>,
    /// Held-out rows left out of the evaluation because the served model refuses them (a
    /// category no training row has; gradient boosting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_test_rows: Option<usize>,
}

/// Headline metrics on the held-out split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSummary {
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Macro-averaged precision.
    pub precision_macro: f64,
    /// Macro-averaged recall.
    pub recall_macro: f64,
    /// Macro-averaged F1.
    pub f1_macro: f64,
    /// ROC AUC (one-vs-rest macro for several classes), when defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Mean log loss.
    pub log_loss: f64,
}

/// Headline metrics on the held-out split, as the model's task has them. Read from a
/// manifest by their keys: `accuracy` makes a classifier's, `r2` a regression model's; a
/// damaged table is named with what is wrong in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HeldOutMetrics {
    /// A classifier's.
    Classification(MetricsSummary),
    /// A regression model's.
    Regression(RegressionMetrics),
}

impl<'de> Deserialize<'de> for HeldOutMetrics {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = toml::Table::deserialize(deserializer)?;
        let read = |what: &'static str| {
            move |error: toml::de::Error| {
                D::Error::custom(format!("[metrics] of {what}: {}", error.message()))
            }
        };
        if table.contains_key("accuracy") {
            MetricsSummary::deserialize(toml::Value::Table(table))
                .map(HeldOutMetrics::Classification)
                .map_err(read("a classifier"))
        } else if table.contains_key("r2") {
            RegressionMetrics::deserialize(toml::Value::Table(table))
                .map(HeldOutMetrics::Regression)
                .map_err(read("a regression model"))
        } else {
            Err(D::Error::custom(
                "[metrics] has neither accuracy (a classifier's) nor r2 (a regression model's)",
            ))
        }
    }
}

/// How well predicted numbers match true ones, as scikit-learn's `sklearn.metrics` computes
/// them (`r2_score`, `root_mean_squared_error`, `mean_absolute_error`,
/// `mean_absolute_percentage_error`, `median_absolute_error`); computed in
/// `train::regression::metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionMetrics {
    /// Coefficient of determination, `1 − SS_res / SS_tot`; when the true values are all equal,
    /// 1 for exact predictions and 0 otherwise (scikit-learn's `force_finite`).
    pub r2: f64,
    /// Root mean squared error, in the target's unit.
    pub rmse: f64,
    /// Mean absolute error, in the target's unit.
    pub mae: f64,
    /// Mean absolute percentage error, as a fraction (0.1 is 10%); `None` when a true value
    /// is 0, where it is undefined (scikit-learn divides by machine epsilon instead, which
    /// gives a meaningless, huge number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mape: Option<f64>,
    /// Median of the absolute errors, in the target's unit.
    pub median_absolute_error: f64,
}

/// What a regression model predicts: the training target's name and distribution (for
/// placing an answer in its range, and for the drift of predicted values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSchema {
    /// The target column's name.
    pub name: String,
    /// Training minimum.
    pub min: f64,
    /// Training maximum.
    pub max: f64,
    /// Training mean.
    pub mean: f64,
    /// Training standard deviation (population).
    pub std: f64,
    /// The training target's quartiles: 25th, 50th and 75th percentiles (numpy's linear
    /// interpolation).
    pub quartiles: [f64; 3],
    /// The training target in bins at its deciles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Histogram>,
    /// The model's own predictions on data it was not fitted on (the held-out split; for an
    /// import, the rows of its features' CSV), in bins at their deciles: the baseline of the
    /// drift of its outputs. Predictions are narrower than the target (they pull towards the
    /// mean), so the target's own bins would flag every model as drifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<Histogram>,
}

/// One input feature: its type, its training statistics and an example value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchema {
    /// Name, as clients send it.
    pub name: String,
    /// Declared type.
    #[serde(rename = "type")]
    pub kind: ColumnKind,
    /// Whether null is accepted.
    pub nullable: bool,
    /// A typical value, from a real training row.
    pub example: ExampleValue,
    /// Training minimum (numeric types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Training maximum (numeric types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Training mean (numeric types; for booleans, the share of `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Training standard deviation (numeric types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Known categories (categorical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Share of training rows per category (categorical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequencies: Option<BTreeMap<String, f64>>,
    /// The training distribution in bins (numeric types): the baseline for drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Histogram>,
}

impl FeatureSchema {
    /// A feature with its type and example, and no training statistics yet.
    pub fn new(name: impl Into<String>, kind: ColumnKind, example: ExampleValue) -> Self {
        FeatureSchema {
            name: name.into(),
            kind,
            nullable: false,
            example,
            min: None,
            max: None,
            mean: None,
            std: None,
            categories: None,
            frequencies: None,
            baseline: None,
        }
    }
}

/// A distribution in bins: `shares[i]` of the rows fall in bin `i`, where bin 0 holds values up
/// to `edges[0]`, bin `i` values above `edges[i - 1]` up to `edges[i]`, and the last bin values
/// above the last edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Histogram {
    /// Upper bounds of every bin but the last, ascending.
    pub edges: Vec<f64>,
    /// Share of rows in each bin (one more than the edges); they sum to 1.
    pub shares: Vec<f64>,
}

impl Histogram {
    /// Bins at the deciles of the values (fewer when values repeat), with their shares.
    pub fn deciles(values: &[f64]) -> Option<Histogram> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = (1..10)
            .map(|decile| sorted[(sorted.len() * decile / 10).min(sorted.len() - 1)])
            .collect();
        edges.dedup();
        // An edge at the maximum would leave the last bin empty by construction.
        if edges.last() == sorted.last() {
            edges.pop();
        }
        let mut histogram = Histogram {
            shares: vec![0.0; edges.len() + 1],
            edges,
        };
        let n = sorted.len() as f64;
        for value in &sorted {
            let bin = histogram.bin(*value);
            histogram.shares[bin] += 1.0 / n;
        }
        Some(histogram)
    }

    /// The bin a value falls in.
    pub fn bin(&self, value: f64) -> usize {
        self.edges.partition_point(|edge| *edge < value)
    }
}

/// An example value of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExampleValue {
    /// Boolean features.
    Bool(bool),
    /// Integer features.
    Integer(i64),
    /// Number features.
    Number(f64),
    /// Categorical features.
    Text(String),
}
