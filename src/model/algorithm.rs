//! The learning algorithms and their settled hyper-parameters, as a trained model's manifest
//! records them (the training side, flags and checks, is in `train::params`).

use super::native::KnnWeights;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The learning algorithms `mlserve train` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// L2-regularised logistic regression (binary and multinomial).
    LogisticRegression,
    /// Random forest of CART trees on bootstrap samples.
    RandomForest,
    /// A single CART tree.
    DecisionTree,
    /// k-nearest neighbours.
    Knn,
    /// RBF-kernel support vector machine with Platt-scaled probabilities.
    Svm,
    /// Gaussian naive Bayes.
    NaiveBayes,
    /// Least squares, with an optional L2 penalty (ridge): regression only.
    LinearRegression,
    /// Histogram-based gradient-boosted trees (scikit-learn's `HistGradientBoosting*`).
    GradientBoosting,
}

impl Algorithm {
    /// The name on the command line.
    pub fn cli_name(self) -> &'static str {
        match self {
            Algorithm::LogisticRegression => "logistic-regression",
            Algorithm::RandomForest => "random-forest",
            Algorithm::DecisionTree => "decision-tree",
            Algorithm::Knn => "knn",
            Algorithm::Svm => "svm",
            Algorithm::NaiveBayes => "naive-bayes",
            Algorithm::LinearRegression => "linear-regression",
            Algorithm::GradientBoosting => "gradient-boosting",
        }
    }
}

/// Columns each random-forest split considers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MaxFeatures {
    /// √columns (scikit-learn's default for forests).
    Sqrt,
    /// log₂ columns.
    Log2,
    /// Every column.
    All,
    /// A fixed number.
    Count(usize),
}

impl MaxFeatures {
    /// The number of columns for a matrix `cols` wide (at least 1, at most `cols`).
    pub fn resolve(self, cols: usize) -> usize {
        let count = match self {
            MaxFeatures::Sqrt => (cols as f64).sqrt() as usize,
            MaxFeatures::Log2 => (cols as f64).log2() as usize,
            MaxFeatures::All => cols,
            MaxFeatures::Count(count) => count,
        };
        count.clamp(1, cols.max(1))
    }
}

impl FromStr for MaxFeatures {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "sqrt" => Ok(MaxFeatures::Sqrt),
            "log2" => Ok(MaxFeatures::Log2),
            "all" => Ok(MaxFeatures::All),
            other => match other.parse::<usize>() {
                Ok(count) if count > 0 => Ok(MaxFeatures::Count(count)),
                _ => Err(format!(
                    "expected sqrt, log2, all or a positive whole number, got '{other}'"
                )),
            },
        }
    }
}

impl fmt::Display for MaxFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxFeatures::Sqrt => f.write_str("sqrt"),
            MaxFeatures::Log2 => f.write_str("log2"),
            MaxFeatures::All => f.write_str("all"),
            MaxFeatures::Count(count) => write!(f, "{count}"),
        }
    }
}

impl From<MaxFeatures> for String {
    fn from(value: MaxFeatures) -> String {
        value.to_string()
    }
}

impl TryFrom<String> for MaxFeatures {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

/// Width of the SVM's RBF kernel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Gamma {
    /// 1 / (columns × variance of the data), scikit-learn's default.
    Scale,
    /// 1 / columns.
    Auto,
    /// A fixed positive value.
    Value(f64),
}

impl FromStr for Gamma {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "scale" => Ok(Gamma::Scale),
            "auto" => Ok(Gamma::Auto),
            other => match other.parse::<f64>() {
                Ok(value) if value.is_finite() && value > 0.0 => Ok(Gamma::Value(value)),
                _ => Err(format!(
                    "expected scale, auto or a positive number, got '{other}'"
                )),
            },
        }
    }
}

impl fmt::Display for Gamma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gamma::Scale => f.write_str("scale"),
            Gamma::Auto => f.write_str("auto"),
            Gamma::Value(value) => write!(f, "{value}"),
        }
    }
}

impl From<Gamma> for String {
    fn from(value: Gamma) -> String {
        value.to_string()
    }
}

impl TryFrom<String> for Gamma {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

/// An algorithm with every hyper-parameter settled; recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AlgorithmParams {
    /// Logistic regression.
    LogisticRegression {
        /// Inverse regularisation strength.
        c: f64,
    },
    /// Random forest.
    RandomForest {
        /// Number of trees.
        n_trees: usize,
        /// Maximum depth.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<usize>,
        /// Fewest rows to split a node.
        min_samples_split: usize,
        /// Fewest rows in a leaf.
        min_samples_leaf: usize,
        /// Columns per split.
        max_features: MaxFeatures,
    },
    /// Decision tree.
    DecisionTree {
        /// Maximum depth.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<usize>,
        /// Fewest rows to split a node.
        min_samples_split: usize,
        /// Fewest rows in a leaf.
        min_samples_leaf: usize,
    },
    /// k-nearest neighbours.
    Knn {
        /// Number of neighbours.
        k: usize,
        /// Vote weighting.
        weights: KnnWeights,
    },
    /// Support vector machine.
    Svm {
        /// Inverse regularisation strength.
        c: f64,
        /// RBF kernel width.
        gamma: Gamma,
        /// Regression only (ε-SVR): the half-width of the tube in which errors cost nothing,
        /// in the target's unit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epsilon: Option<f64>,
    },
    /// Gaussian naive Bayes.
    NaiveBayes {
        /// Variance smoothing.
        var_smoothing: f64,
    },
    /// Least squares with an L2 penalty `alpha` (0: scikit-learn's `LinearRegression`;
    /// positive: `Ridge`).
    LinearRegression {
        /// L2 penalty on the coefficients.
        alpha: f64,
    },
    /// Histogram-based gradient boosting: scikit-learn's `HistGradientBoostingClassifier` /
    /// `HistGradientBoostingRegressor`, whose parameter names are given beside each.
    GradientBoosting {
        /// Boosting iterations at most (`max_iter`); a multiclass model grows one tree per
        /// class in each.
        n_trees: usize,
        /// Shrinkage of each tree's leaves (`learning_rate`).
        learning_rate: f64,
        /// Leaves per tree at most (`max_leaf_nodes`).
        max_leaves: usize,
        /// Depth at most, in edges from the root (`max_depth`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<usize>,
        /// Fewest training rows in a leaf (`min_samples_leaf`).
        min_samples_leaf: usize,
        /// L2 penalty on leaf values (`l2_regularization`).
        l2: f64,
        /// Bins per numeric feature, at most 255 (`max_bins`); missing values get their own.
        max_bins: usize,
        /// Whether to stop when a held-out validation share stops improving
        /// (`early_stopping`).
        early_stopping: EarlyStopping,
        /// Share of training rows held out to decide early stopping (`validation_fraction`).
        validation_fraction: f64,
        /// Iterations without improvement before stopping (`n_iter_no_change`).
        n_iter_no_change: usize,
    },
}

/// When gradient boosting stops early (scikit-learn's `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EarlyStopping {
    /// On when there are more than 10,000 training rows, as scikit-learn's `'auto'`.
    Auto,
    /// Always.
    On,
    /// Never: every iteration is grown.
    Off,
}

impl EarlyStopping {
    /// Whether it applies to `rows` training rows.
    pub fn applies(self, rows: usize) -> bool {
        match self {
            EarlyStopping::Auto => rows > 10_000,
            EarlyStopping::On => true,
            EarlyStopping::Off => false,
        }
    }
}

impl AlgorithmParams {
    /// The algorithm these parameters are for.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            AlgorithmParams::LogisticRegression { .. } => Algorithm::LogisticRegression,
            AlgorithmParams::RandomForest { .. } => Algorithm::RandomForest,
            AlgorithmParams::DecisionTree { .. } => Algorithm::DecisionTree,
            AlgorithmParams::Knn { .. } => Algorithm::Knn,
            AlgorithmParams::Svm { .. } => Algorithm::Svm,
            AlgorithmParams::NaiveBayes { .. } => Algorithm::NaiveBayes,
            AlgorithmParams::LinearRegression { .. } => Algorithm::LinearRegression,
            AlgorithmParams::GradientBoosting { .. } => Algorithm::GradientBoosting,
        }
    }
}
