//! The learning algorithms. Each fits on a preprocessed matrix and returns the compact
//! [`Estimator`] that the artifact keeps.

mod logistic;
mod naive_bayes;
pub mod svm;
pub mod tree;

use super::params::{AlgorithmParams, Gamma};
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
    let estimator = match params {
        AlgorithmParams::LogisticRegression { c } => logistic::fit(x, y, n_classes, *c)?,
        AlgorithmParams::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
        } => {
            let limits = TreeLimits {
                max_depth: *max_depth,
                min_samples_split: *min_samples_split,
                min_samples_leaf: *min_samples_leaf,
                max_features: x.cols,
            };
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            Estimator::DecisionTree(tree::fit_tree(
                x,
                Targets::Classes { y, n_classes },
                (0..x.rows).collect(),
                limits,
                &mut rng,
            ))
        }
        AlgorithmParams::RandomForest {
            n_trees,
            max_depth,
            min_samples_split,
            min_samples_leaf,
            max_features,
        } => {
            let limits = TreeLimits {
                max_depth: *max_depth,
                min_samples_split: *min_samples_split,
                min_samples_leaf: *min_samples_leaf,
                max_features: max_features.resolve(x.cols),
            };
            Estimator::RandomForest(tree::fit_forest(
                x,
                Targets::Classes { y, n_classes },
                *n_trees,
                limits,
                seed,
                progress,
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
            let gamma = match gamma {
                Gamma::Scale => svm::scale_gamma(x),
                Gamma::Auto => 1.0 / x.cols.max(1) as f64,
                Gamma::Value(value) => *value,
            };
            svm::fit(x, y, n_classes, *c, gamma, seed, progress)
        }
        AlgorithmParams::NaiveBayes { var_smoothing } => {
            naive_bayes::fit(x, y, n_classes, *var_smoothing)
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
