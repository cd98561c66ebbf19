//! The learning algorithms. Each fits on a preprocessed matrix and returns the compact
//! [`Estimator`] that the artifact keeps.

mod logistic;
mod naive_bayes;
pub mod svm;
pub mod tree;

use super::params::AlgorithmParams;
use super::{Progress, TrainError};
use crate::model::native::Estimator;
use crate::train::preprocess::Matrix;
use tree::{Targets, TreeLimits};

/// Fits the algorithm that `params` describe.
pub fn fit(
    params: &AlgorithmParams,
    x: &Matrix,
    y: &[usize],
    n_classes: usize,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Estimator, TrainError> {
    let targets = Targets::Classes { y, n_classes };
    let estimator = match params {
        AlgorithmParams::LogisticRegression { c } => logistic::fit(x, y, n_classes, *c)?,
        AlgorithmParams::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
        } => {
            let limits = TreeLimits::new(*max_depth, *min_samples_split, *min_samples_leaf, x.cols);
            Estimator::DecisionTree(tree::fit_decision_tree(x, targets, limits, seed))
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
            Estimator::RandomForest(tree::fit_forest(
                x, targets, *n_trees, limits, seed, progress,
            ))
        }
        AlgorithmParams::Knn { k, weights } => Estimator::KNearestNeighbors {
            k: *k,
            weights: *weights,
            points: x.data.clone(),
            classes: y.iter().map(|&class| class as u32).collect(),
        },
        AlgorithmParams::Svm {
            epsilon: Some(_), ..
        } => {
            return Err(TrainError::Parameter(
                "epsilon is the regression SVM's tube width; a classifier has none".to_string(),
            ));
        }
        AlgorithmParams::Svm { c, gamma, .. } => {
            let gamma = svm::resolve_gamma(*gamma, x);
            svm::fit(x, y, n_classes, *c, gamma, seed, progress)
        }
        AlgorithmParams::NaiveBayes { var_smoothing } => {
            naive_bayes::fit(x, y, n_classes, *var_smoothing)
        }
        AlgorithmParams::GradientBoosting { .. } => {
            return Err(TrainError::Parameter(
                "gradient-boosting reads the raw features: train it with train::boosting".into(),
            ));
        }
        AlgorithmParams::LinearRegression { .. } => {
            return Err(TrainError::Parameter(
                "linear-regression predicts a number; for classes use logistic-regression"
                    .to_string(),
            ));
        }
    };
    Ok(estimator)
}

/// How many progress steps fitting takes (trees, or SVM machines), for the progress bar.
pub fn progress_steps(params: &AlgorithmParams, n_classes: usize) -> u64 {
    match params {
        AlgorithmParams::RandomForest { n_trees, .. } => *n_trees as u64,
        AlgorithmParams::Svm { .. } if n_classes > 2 => n_classes as u64,
        AlgorithmParams::Svm { .. } => 1,
        _ => 0,
    }
}
