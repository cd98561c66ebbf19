//! Fitting models that predict a number. The same algorithm names as for classes where the
//! method has a regression form: least squares (`linear`), CART trees and forests split on
//! squared error, k-nearest neighbours averaging their neighbours' targets and ε-SVR; each returns
//! the compact [`Regressor`] the artifact keeps.

mod card;
pub mod linear;
pub mod metrics;
mod pipeline;
pub mod svr;

pub use card::{model_card, model_card_sections};
pub use pipeline::{
    RegressionCrossValidation, RegressionEvaluation, RegressionMetricsFile, TrainedRegressor,
    target_schema, train_regressor,
};
pub(crate) use pipeline::{cross_validate, evaluate_predictions, values_of};

use super::algorithms::svm::resolve_gamma;
use super::algorithms::tree::{self, Targets, TreeLimits};
use super::{AlgorithmParams, Progress, TrainError};
use crate::model::native::Regressor;
use crate::train::preprocess::Matrix;
pub use metrics::RegressionMetrics;

/// Fits the regression form of the algorithm `params` describe, on standardized columns `x`
/// and one finite target per row.
///
/// Errors: an algorithm without a regression form (logistic regression and naive Bayes are
/// classifiers by construction), or targets that are not one finite number per row.
pub fn fit(
    params: &AlgorithmParams,
    x: &Matrix,
    y: &[f64],
    seed: u64,
    progress: &dyn Progress,
) -> Result<Regressor, TrainError> {
    if y.len() != x.rows || x.rows == 0 {
        return Err(TrainError::Fit(format!(
            "regression needs one target per row; got {} rows and {} targets",
            x.rows,
            y.len()
        )));
    }
    if let Some(row) = y.iter().position(|v| !v.is_finite()) {
        return Err(TrainError::Fit(format!(
            "row {row}'s target is not a finite number"
        )));
    }
    let regressor = match params {
        AlgorithmParams::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
        } => {
            let limits = TreeLimits::new(*max_depth, *min_samples_split, *min_samples_leaf, x.cols);
            Regressor::DecisionTree(tree::fit_decision_tree(x, Targets::Values(y), limits, seed))
        }
        AlgorithmParams::RandomForest {
            n_trees,
            max_depth,
            min_samples_split,
            min_samples_leaf,
            max_features,
        } => {
            let columns = max_features.resolve(x.cols);
            let limits =
                TreeLimits::new(*max_depth, *min_samples_split, *min_samples_leaf, columns);
            Regressor::RandomForest(tree::fit_forest(
                x,
                Targets::Values(y),
                *n_trees,
                limits,
                seed,
                progress,
            ))
        }
        AlgorithmParams::Knn { k, weights } => Regressor::KNearestNeighbors {
            k: *k,
            weights: *weights,
            points: x.data.clone(),
            targets: y.to_vec(),
        },
        AlgorithmParams::Svm { c, gamma, epsilon } => {
            let epsilon = epsilon.unwrap_or(svr::DEFAULT_EPSILON);
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                return Err(TrainError::Parameter(format!(
                    "epsilon must be zero or a positive number, got {epsilon}"
                )));
            }
            svr::fit(x, y, *c, resolve_gamma(*gamma, x), epsilon)
        }
        AlgorithmParams::LinearRegression { alpha } => linear::fit(x, y, *alpha)?,
        AlgorithmParams::GradientBoosting { .. } => {
            return Err(TrainError::Parameter(
                "gradient-boosting reads the raw features: train it with train::boosting".into(),
            ));
        }
        AlgorithmParams::LogisticRegression { .. } | AlgorithmParams::NaiveBayes { .. } => {
            return Err(TrainError::Parameter(format!(
                "{} has no regression form; for a number use one of: {}",
                params.algorithm().cli_name(),
                REGRESSION_ALGORITHMS.join(", ")
            )));
        }
    };
    Ok(regressor)
}

/// How many progress steps fitting takes (a forest's trees), for the progress bar.
pub fn progress_steps(params: &AlgorithmParams) -> u64 {
    match params {
        AlgorithmParams::RandomForest { n_trees, .. } => *n_trees as u64,
        _ => 0,
    }
}

/// The algorithms that can predict a number.
pub const REGRESSION_ALGORITHMS: [&str; 6] = [
    "linear-regression",
    "decision-tree",
    "random-forest",
    "knn",
    "svm",
    "gradient-boosting",
];

#[cfg(test)]
mod tests;
