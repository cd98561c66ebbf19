//! Global importance for the model card: each feature's mean absolute contribution over the
//! held-out rows (shap's bar summary, `mean(|SHAP value|)`; summed over the classes of a
//! multiclass model, as shap stacks them), from the same explanations the server answers.

use crate::data::Dataset;
use crate::model::explain::KernelInputs;
use crate::model::native::FeatureValue;
use crate::model::{Explainer, Model};
use serde::{Deserialize, Serialize};

/// Most training rows k-means summarises into a background set (a seeded sample of them).
const KMEANS_ROWS: usize = 10_000;

/// At most this many held-out rows are explained: enough for stable means, bounded in time.
pub const MAX_ROWS: usize = 1_000;

/// One feature's importance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// The feature.
    pub feature: String,
    /// Mean absolute contribution, in the explanation's unit.
    pub mean_abs_contribution: f64,
}

/// Every feature's importance, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalImportance {
    /// The explanation method (`linear`, `tree_path_dependent`).
    pub method: String,
    /// The contributions' unit (`log_odds`, `probability`, …).
    pub unit: String,
    /// How many held-out rows were explained.
    pub rows: usize,
    /// Per feature, largest first.
    pub features: Vec<FeatureImportance>,
}

/// The importance of `model`'s features over `rows` (validated rows of the held-out split,
/// the first [`MAX_ROWS`]); `None` when the model cannot explain or there are no rows.
pub fn global_importance(
    model: &Model,
    names: &[String],
    rows: &[Vec<FeatureValue>],
) -> Option<GlobalImportance> {
    // KernelSHAP (a background set) is left out: over a thousand rows it would cost minutes.
    let kernel = KernelInputs {
        background: None,
        classes: 0,
    };
    let explainer = Explainer::of(model, "", kernel).ok()?;
    let rows: Vec<&[FeatureValue]> = rows.iter().take(MAX_ROWS).map(Vec::as_slice).collect();
    if rows.is_empty() {
        return None;
    }
    let no_scoring = |_: &[&[FeatureValue]]| Err("not needed by exact methods".to_string());
    let explanations = explainer
        .explain_rows(model, &rows, &no_scoring, &Default::default())
        .ok()?;
    let mut sums = vec![0.0; names.len()];
    for explanation in &explanations {
        for output in &explanation.outputs {
            for (sum, value) in sums.iter_mut().zip(&output.features) {
                *sum += value.abs();
            }
        }
    }
    let count = explanations.len() as f64;
    let mut features: Vec<FeatureImportance> = names
        .iter()
        .zip(sums)
        .map(|(feature, sum)| FeatureImportance {
            feature: feature.clone(),
            mean_abs_contribution: sum / count,
        })
        .collect();
    features.sort_by(|a, b| b.mean_abs_contribution.total_cmp(&a.mean_abs_contribution));
    Some(GlobalImportance {
        method: explainer.method().name().to_string(),
        unit: explainer.unit().name().to_string(),
        rows: explanations.len(),
        features,
    })
}

/// The held-out rows of `data` as the model takes them.
pub fn held_out_rows(data: &Dataset, rows: &[usize]) -> Vec<Vec<FeatureValue>> {
    rows.iter()
        .take(MAX_ROWS)
        .map(|&row| super::preprocess::raw_row(data, row))
        .collect()
}

/// The names of `data`'s features, in schema order.
pub fn feature_names(data: &Dataset) -> Vec<String> {
    data.columns.iter().map(|c| c.name.clone()).collect()
}

/// KernelSHAP's background set for a model without an exact explanation (k-NN, SVM, naive
/// Bayes): up to 100 training rows summarised by k-means over the model's standardized
/// encoding (see `model::explain::background`); `None` for models that explain exactly.
pub fn kernel_background(
    model: &Model,
    preprocessor: &crate::model::native::Preprocessor,
    data: &Dataset,
    train_rows: &[usize],
    seed: u64,
) -> Option<crate::model::explain::background::Background> {
    let kernel = KernelInputs {
        background: None,
        classes: 0,
    };
    if Explainer::of(model, "", kernel).is_ok() {
        return None;
    }
    // k-means on a seeded sample at most: a background of 100 centroids needs no more.
    let mut sample = train_rows.to_vec();
    if sample.len() > KMEANS_ROWS {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        sample.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        sample.truncate(KMEANS_ROWS);
        sample.sort_unstable();
    }
    let rows: Vec<Vec<FeatureValue>> = sample
        .iter()
        .map(|&row| super::preprocess::raw_row(data, row))
        .collect();
    let encode = |row: &[FeatureValue]| {
        let mut encoded = Vec::with_capacity(preprocessor.width());
        preprocessor.encode_into(row, &mut encoded).ok()?;
        Some(encoded)
    };
    crate::model::explain::background::summarize(&rows, encode, seed)
}
