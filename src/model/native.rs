//! Our own compact form of a fitted model and the inference code that runs it.
//!
//! Training libraries are used to fit, never to predict: the artifact holds plain arrays
//! (scaler, coefficients, flat trees, class statistics, reference points), so serving does not
//! depend on any library's internal format and every algorithm yields class probabilities.

use serde::{Deserialize, Serialize};

/// A feature value as the model takes it, after schema validation.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    /// Number, integer or boolean (as 0 or 1).
    Number(f64),
    /// A categorical value.
    Category(String),
    /// Free text, a date or a date-time, as validated text.
    Text(String),
    /// Null, for a nullable feature.
    Missing,
}

/// How one input feature becomes model columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InputEncoding {
    /// One column, the value itself.
    Numeric,
    /// One column per known category, 1 for the value's category; an unknown category is all zeros.
    OneHot(Vec<String>),
}

impl InputEncoding {
    /// Number of model columns this input takes.
    pub fn width(&self) -> usize {
        match self {
            InputEncoding::Numeric => 1,
            InputEncoding::OneHot(categories) => categories.len(),
        }
    }
}

/// Encoding and standardization, fitted on the training split only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// One encoding per input feature, in schema order.
    pub inputs: Vec<InputEncoding>,
    /// Per model column: training mean.
    pub mean: Vec<f64>,
    /// Per model column: training standard deviation (1 where it was 0).
    pub scale: Vec<f64>,
}

impl Preprocessor {
    /// Number of model columns.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Appends the encoded, standardized columns of `row` to `out`.
    /// `row` must hold one value per input, of the input's kind (the schema validator's job).
    pub fn encode_into(&self, row: &[FeatureValue], out: &mut Vec<f64>) -> Result<(), ModelError> {
        if row.len() != self.inputs.len() {
            return Err(ModelError::WrongArity {
                expected: self.inputs.len(),
                got: row.len(),
            });
        }
        let start = out.len();
        for (position, (encoding, value)) in self.inputs.iter().zip(row).enumerate() {
            match (encoding, value) {
                (InputEncoding::Numeric, FeatureValue::Number(number)) => out.push(*number),
                (InputEncoding::OneHot(categories), FeatureValue::Category(category)) => {
                    out.extend(
                        categories
                            .iter()
                            .map(|known| f64::from(u8::from(known == category))),
                    );
                }
                _ => return Err(ModelError::WrongKind { position }),
            }
        }
        for (column, value) in out[start..].iter_mut().enumerate() {
            *value = (*value - self.mean[column]) / self.scale[column];
        }
        Ok(())
    }
}

/// Errors from running a model on a row that does not fit it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// The row has the wrong number of values.
    #[error("the model takes {expected} features, got {got}")]
    WrongArity {
        /// Number of inputs of the model.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// A value is of the wrong kind for its input.
    #[error("feature {position} has the wrong kind of value (number vs category)")]
    WrongKind {
        /// 0-based feature position.
        position: usize,
    },
}

/// A fitted decision tree as flat arrays; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Split column of each internal node.
    pub feature: Vec<u32>,
    /// Split threshold: `x <= threshold` goes left.
    pub threshold: Vec<f64>,
    /// Left child, or [`Tree::LEAF`] for a leaf.
    pub left: Vec<u32>,
    /// Right child, or [`Tree::LEAF`] for a leaf.
    pub right: Vec<u32>,
    /// Class probabilities of each node (`n_nodes × n_classes`): the class shares of the
    /// training rows that reached it; in a regression tree, one value a node: their mean
    /// target ([`Tree::leaf_value`]).
    pub value: Vec<f64>,
    /// Training rows that reached each node (a forest's bootstrap draws counted as often as
    /// drawn, as scikit-learn's `weighted_n_node_samples`): the covers path-dependent TreeSHAP
    /// weighs with. Stored in model.bin after the model (`stored.rs`); empty for models
    /// trained before they were kept, which then cannot be explained.
    #[serde(skip)]
    pub covers: Vec<f64>,
}

impl Tree {
    /// Marks a node without children.
    pub const LEAF: u32 = u32::MAX;

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.left.len()
    }

    /// The class probabilities of the leaf that `x` reaches.
    pub fn leaf_probabilities(&self, x: &[f64], n_classes: usize) -> &[f64] {
        let mut node = 0;
        while self.left[node] != Self::LEAF {
            let column = self.feature[node] as usize;
            node = if x[column] <= self.threshold[node] {
                self.left[node]
            } else {
                self.right[node]
            } as usize;
        }
        &self.value[node * n_classes..(node + 1) * n_classes]
    }
}

/// How k-nearest neighbours weighs its neighbours' votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KnnWeights {
    /// Every neighbour counts the same.
    Uniform,
    /// Closer neighbours count more (1 / distance).
    Distance,
}

/// One binary RBF support vector machine of a one-vs-rest ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvmMachine {
    /// Rows of the shared support vector matrix that this machine uses.
    pub support: Vec<u32>,
    /// `alpha × y` of each of those support vectors.
    pub dual_coef: Vec<f64>,
    /// Decision offset: `f(x) = Σ coef·K(sv, x) − rho`.
    pub rho: f64,
    /// Platt scaling: `P(positive) = 1 / (1 + exp(a·f + b))`.
    pub platt_a: f64,
    /// Platt scaling offset.
    pub platt_b: f64,
}

/// The fitted parameters of each algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Estimator {
    /// Binary: one row of coefficients for the second class (sigmoid). Multiclass: one row per class (softmax).
    LogisticRegression {
        /// `rows × n_columns` coefficients.
        coefficients: Vec<f64>,
        /// One intercept per row.
        intercepts: Vec<f64>,
    },
    /// A single tree.
    DecisionTree(Tree),
    /// Trees whose leaf probabilities are averaged.
    RandomForest(Vec<Tree>),
    /// The training rows themselves.
    KNearestNeighbors {
        /// Number of neighbours.
        k: usize,
        /// Vote weighting.
        weights: KnnWeights,
        /// `n_points × n_columns` standardized training rows.
        points: Vec<f64>,
        /// Class of each point.
        classes: Vec<u32>,
    },
    /// RBF-kernel SVMs, one per class (one for binary problems), with Platt-scaled probabilities.
    SupportVectorMachine {
        /// Kernel width: `K(a, b) = exp(−gamma·|a − b|²)`.
        gamma: f64,
        /// `n_support × n_columns` support vectors shared by the machines.
        support_vectors: Vec<f64>,
        /// One machine per class, or a single machine for the second class of a binary problem.
        machines: Vec<SvmMachine>,
    },
    /// Gaussian naive Bayes.
    GaussianNaiveBayes {
        /// `n_classes × n_columns` per-class means.
        theta: Vec<f64>,
        /// `n_classes × n_columns` per-class variances (smoothed).
        variance: Vec<f64>,
        /// Log prior of each class.
        log_prior: Vec<f64>,
    },
}

/// A complete native model: preprocessing, estimator, and the number of classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeModel {
    /// Encoding and scaling of the raw features.
    pub preprocessor: Preprocessor,
    /// The fitted estimator, working on preprocessed columns.
    pub estimator: Estimator,
    /// Number of classes.
    pub n_classes: usize,
}

impl NativeModel {
    /// Class probabilities of one raw row (validated against the schema).
    pub fn predict_proba(&self, row: &[FeatureValue]) -> Result<Vec<f64>, ModelError> {
        let mut encoded = Vec::with_capacity(self.preprocessor.width());
        self.preprocessor.encode_into(row, &mut encoded)?;
        Ok(self.predict_proba_encoded(&encoded))
    }

    /// Class probabilities of one row already encoded and standardized.
    pub fn predict_proba_encoded(&self, x: &[f64]) -> Vec<f64> {
        self.estimator.predict_proba(x, self.n_classes)
    }
}

impl Estimator {
    /// Class probabilities of one preprocessed row.
    pub fn predict_proba(&self, x: &[f64], n_classes: usize) -> Vec<f64> {
        match self {
            Estimator::LogisticRegression {
                coefficients,
                intercepts,
            } => logistic_probabilities(coefficients, intercepts, x, n_classes),
            Estimator::DecisionTree(tree) => tree.leaf_probabilities(x, n_classes).to_vec(),
            Estimator::RandomForest(trees) => forest_probabilities(trees, x, n_classes),
            Estimator::KNearestNeighbors {
                k,
                weights,
                points,
                classes,
            } => knn_probabilities(*k, *weights, points, classes, x, n_classes),
            Estimator::SupportVectorMachine {
                gamma,
                support_vectors,
                machines,
            } => svm_probabilities(*gamma, support_vectors, machines, x, n_classes),
            Estimator::GaussianNaiveBayes {
                theta,
                variance,
                log_prior,
            } => naive_bayes_probabilities(theta, variance, log_prior, x),
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// 1 / (1 + e^−z), written so that neither branch overflows.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Turns log-scores into probabilities, shifting by the maximum so that exp never overflows.
pub fn softmax_in_place(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for score in scores.iter_mut() {
        *score = (*score - max).exp();
        total += *score;
    }
    for score in scores.iter_mut() {
        *score /= total;
    }
}

fn logistic_probabilities(
    coefficients: &[f64],
    intercepts: &[f64],
    x: &[f64],
    n_classes: usize,
) -> Vec<f64> {
    let width = x.len();
    let mut scores: Vec<f64> = intercepts
        .iter()
        .enumerate()
        .map(|(row, intercept)| dot(&coefficients[row * width..(row + 1) * width], x) + intercept)
        .collect();
    if n_classes == 2 && scores.len() == 1 {
        let positive = sigmoid(scores[0]);
        return vec![1.0 - positive, positive];
    }
    softmax_in_place(&mut scores);
    scores
}

fn forest_probabilities(trees: &[Tree], x: &[f64], n_classes: usize) -> Vec<f64> {
    let mut sum = vec![0.0; n_classes];
    for tree in trees {
        for (total, p) in sum.iter_mut().zip(tree.leaf_probabilities(x, n_classes)) {
            *total += p;
        }
    }
    let n_trees = trees.len().max(1) as f64;
    sum.iter_mut().for_each(|p| *p /= n_trees);
    sum
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum()
}

fn knn_probabilities(
    k: usize,
    weights: KnnWeights,
    points: &[f64],
    classes: &[u32],
    x: &[f64],
    n_classes: usize,
) -> Vec<f64> {
    let mut votes = vec![0.0; n_classes];
    nearest_neighbours(k, weights, points, x, |index, weight| {
        votes[classes[index] as usize] += weight;
    });
    let total: f64 = votes.iter().sum();
    if total > 0.0 {
        votes.iter_mut().for_each(|v| *v /= total);
    }
    votes
}

/// Calls `each(row, weight)` for each of the `k` points nearest to `x` (rows of `points`,
/// `x.len()` wide), weighed as `weights` says. Ties on distance go to the earlier training row,
/// so a prediction never depends on sort stability; with `Distance` weights, points at distance
/// zero take the whole weight, as in scikit-learn.
fn nearest_neighbours(
    k: usize,
    weights: KnnWeights,
    points: &[f64],
    x: &[f64],
    mut each: impl FnMut(usize, f64),
) {
    let width = x.len().max(1);
    let mut distances: Vec<(f64, usize)> = points
        .chunks_exact(width)
        .enumerate()
        .map(|(index, point)| (squared_distance(point, x), index))
        .collect();
    let k = k.min(distances.len());
    if k == 0 {
        return;
    }
    distances.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let nearest = &distances[..k];
    let exact_matches = nearest.iter().filter(|(d, _)| *d == 0.0).count();
    for &(squared, index) in nearest {
        let weight = match weights {
            KnnWeights::Uniform => 1.0,
            KnnWeights::Distance if exact_matches > 0 => f64::from(u8::from(squared == 0.0)),
            KnnWeights::Distance => 1.0 / squared.sqrt(),
        };
        each(index, weight);
    }
}

fn svm_probabilities(
    gamma: f64,
    support_vectors: &[f64],
    machines: &[SvmMachine],
    x: &[f64],
    n_classes: usize,
) -> Vec<f64> {
    let width = x.len().max(1);
    let kernel: Vec<f64> = support_vectors
        .chunks_exact(width)
        .map(|sv| (-gamma * squared_distance(sv, x)).exp())
        .collect();
    let positive: Vec<f64> = machines
        .iter()
        .map(|machine| {
            let decision = machine
                .support
                .iter()
                .zip(&machine.dual_coef)
                .map(|(&sv, coef)| coef * kernel[sv as usize])
                .sum::<f64>()
                - machine.rho;
            sigmoid(-(machine.platt_a * decision + machine.platt_b))
        })
        .collect();
    if n_classes == 2 && positive.len() == 1 {
        return vec![1.0 - positive[0], positive[0]];
    }
    let total: f64 = positive.iter().sum();
    if total > 0.0 {
        positive.iter().map(|p| p / total).collect()
    } else {
        vec![1.0 / n_classes as f64; n_classes]
    }
}

fn naive_bayes_probabilities(
    theta: &[f64],
    variance: &[f64],
    log_prior: &[f64],
    x: &[f64],
) -> Vec<f64> {
    let width = x.len();
    let mut scores: Vec<f64> = log_prior
        .iter()
        .enumerate()
        .map(|(class, prior)| {
            let means = &theta[class * width..(class + 1) * width];
            let variances = &variance[class * width..(class + 1) * width];
            let log_likelihood: f64 = x
                .iter()
                .zip(means.iter().zip(variances))
                .map(|(value, (mean, var))| {
                    -0.5 * (2.0 * std::f64::consts::PI * var).ln()
                        - 0.5 * (value - mean).powi(2) / var
                })
                .sum();
            prior + log_likelihood
        })
        .collect();
    softmax_in_place(&mut scores);
    scores
}

mod checks;
mod regressor;
pub mod stored;

pub use checks::is_distribution;
pub use regressor::{NativeRegressor, Regressor};

#[cfg(test)]
mod tests;
