//! Models that predict a number: their fitted parameters and the inference code that runs
//! them on a preprocessed row (the columns [`super::Preprocessor`] makes).

use super::{
    FeatureValue, KnnWeights, ModelError, Preprocessor, Tree, dot, nearest_neighbours,
    squared_distance,
};
use serde::{Deserialize, Serialize};

/// A complete native model that predicts a number: preprocessing and the fitted regressor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeRegressor {
    /// Encoding and scaling of the raw features.
    pub preprocessor: Preprocessor,
    /// The fitted regressor, working on preprocessed columns.
    pub regressor: Regressor,
}

impl NativeRegressor {
    /// The predicted value of one raw row (validated against the schema).
    pub fn predict(&self, row: &[FeatureValue]) -> Result<f64, ModelError> {
        let mut encoded = Vec::with_capacity(self.preprocessor.width());
        self.preprocessor.encode_into(row, &mut encoded)?;
        Ok(self.regressor.predict(&encoded))
    }
}

/// The fitted parameters of each regression algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Regressor {
    /// `ŷ = intercept + coefficients · x`: least squares, with an L2 penalty when fitted with
    /// one (scikit-learn's `LinearRegression` and `Ridge`).
    LinearRegression {
        /// One coefficient per column.
        coefficients: Vec<f64>,
        /// The constant term.
        intercept: f64,
    },
    /// A single tree whose leaves hold the mean target of their training rows
    /// (`DecisionTreeRegressor`).
    DecisionTree(Tree),
    /// Trees whose leaf values are averaged (`RandomForestRegressor`).
    RandomForest(Vec<Tree>),
    /// The mean target of the nearest training rows (`KNeighborsRegressor`).
    KNearestNeighbors {
        /// Number of neighbours.
        k: usize,
        /// How the neighbours' targets are weighed.
        weights: KnnWeights,
        /// `n_points × n_columns` standardized training rows.
        points: Vec<f64>,
        /// Target of each point.
        targets: Vec<f64>,
    },
    /// ε-support vector regression with an RBF kernel (`SVR`):
    /// `ŷ = Σ dual_coefᵢ·exp(−gamma·|svᵢ − x|²) + intercept`.
    SupportVectorMachine {
        /// Kernel width.
        gamma: f64,
        /// `n_support × n_columns` support vectors.
        support_vectors: Vec<f64>,
        /// `α − α*` of each support vector (scikit-learn's `dual_coef_`).
        dual_coef: Vec<f64>,
        /// The constant term (scikit-learn's `intercept_`, libsvm's −ρ).
        intercept: f64,
    },
}

impl Regressor {
    /// The predicted value of one preprocessed row (`x.len()` columns, as at training).
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Regressor::LinearRegression {
                coefficients,
                intercept,
            } => intercept + dot(coefficients, x),
            Regressor::DecisionTree(tree) => tree.leaf_value(x),
            Regressor::RandomForest(trees) => {
                let sum: f64 = trees.iter().map(|tree| tree.leaf_value(x)).sum();
                sum / trees.len().max(1) as f64
            }
            Regressor::KNearestNeighbors {
                k,
                weights,
                points,
                targets,
            } => knn_value(*k, *weights, points, targets, x),
            Regressor::SupportVectorMachine {
                gamma,
                support_vectors,
                dual_coef,
                intercept,
            } => {
                let width = x.len().max(1);
                let kernel_sum: f64 = support_vectors
                    .chunks_exact(width)
                    .zip(dual_coef)
                    .map(|(sv, coef)| coef * (-gamma * squared_distance(sv, x)).exp())
                    .sum();
                kernel_sum + intercept
            }
        }
    }
}

impl Tree {
    /// The value of the leaf that `x` reaches in a regression tree (one value a node).
    pub fn leaf_value(&self, x: &[f64]) -> f64 {
        self.leaf_probabilities(x, 1)[0]
    }
}

/// The (weighted) mean target of the `k` nearest points (NaN without points: the load-time
/// checks refuse such a model).
fn knn_value(k: usize, weights: KnnWeights, points: &[f64], targets: &[f64], x: &[f64]) -> f64 {
    let (mut weighted, mut total) = (0.0, 0.0);
    nearest_neighbours(k, weights, points, x, |index, weight| {
        weighted += weight * targets[index];
        total += weight;
    });
    weighted / total
}
