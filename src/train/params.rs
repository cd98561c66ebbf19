//! Algorithms and their hyper-parameters: the command-line flags, their validation, and the
//! form recorded in the manifest.

use super::TrainError;
use crate::model::native::KnnWeights;
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

/// Hyper-parameter flags of `mlserve train`; each applies to the algorithms its help names.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HyperParameterFlags {
    /// Inverse regularisation strength (logistic-regression, svm) [default: 1.0]
    #[arg(long = "c", value_name = "C", allow_negative_numbers = true)]
    pub c: Option<f64>,
    /// Number of trees (random-forest) [default: 100]
    #[arg(long, value_name = "N")]
    pub n_trees: Option<usize>,
    /// Maximum tree depth (random-forest, decision-tree) [default: unlimited]
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (random-forest, decision-tree) [default: 2]
    #[arg(long, value_name = "N")]
    pub min_samples_split: Option<usize>,
    /// Fewest rows in a leaf (random-forest, decision-tree) [default: 1]
    #[arg(long, value_name = "N")]
    pub min_samples_leaf: Option<usize>,
    /// Columns tried per split: sqrt, log2, all or a number (random-forest) [default: sqrt]
    #[arg(long, value_name = "HOW")]
    pub max_features: Option<MaxFeatures>,
    /// Number of neighbours (knn) [default: 5]
    #[arg(long, value_name = "K")]
    pub k: Option<usize>,
    /// Neighbour vote weighting (knn) [default: uniform]
    #[arg(long, value_enum)]
    pub weights: Option<KnnWeights>,
    /// RBF kernel width: scale, auto or a number (svm) [default: scale]
    #[arg(long, value_name = "GAMMA", allow_negative_numbers = true)]
    pub gamma: Option<Gamma>,
    /// Share of the largest variance added to every variance (naive-bayes) [default: 1e-9]
    #[arg(long, value_name = "EPS", allow_negative_numbers = true)]
    pub var_smoothing: Option<f64>,
}

impl HyperParameterFlags {
    /// The flags that were given, by name, for telling which do not apply.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--c", self.c.is_some()),
            ("--n-trees", self.n_trees.is_some()),
            ("--max-depth", self.max_depth.is_some()),
            ("--min-samples-split", self.min_samples_split.is_some()),
            ("--min-samples-leaf", self.min_samples_leaf.is_some()),
            ("--max-features", self.max_features.is_some()),
            ("--k", self.k.is_some()),
            ("--weights", self.weights.is_some()),
            ("--gamma", self.gamma.is_some()),
            ("--var-smoothing", self.var_smoothing.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
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
    },
    /// Gaussian naive Bayes.
    NaiveBayes {
        /// Variance smoothing.
        var_smoothing: f64,
    },
}

impl AlgorithmParams {
    /// Settles the hyper-parameters of `algorithm` from the flags, refusing flags that do not
    /// apply to it and values out of range.
    pub fn from_flags(
        algorithm: Algorithm,
        flags: &HyperParameterFlags,
    ) -> Result<Self, TrainError> {
        let params = match algorithm {
            Algorithm::LogisticRegression => AlgorithmParams::LogisticRegression {
                c: flags.c.unwrap_or(1.0),
            },
            Algorithm::RandomForest => AlgorithmParams::RandomForest {
                n_trees: flags.n_trees.unwrap_or(100),
                max_depth: flags.max_depth,
                min_samples_split: flags.min_samples_split.unwrap_or(2),
                min_samples_leaf: flags.min_samples_leaf.unwrap_or(1),
                max_features: flags.max_features.unwrap_or(MaxFeatures::Sqrt),
            },
            Algorithm::DecisionTree => AlgorithmParams::DecisionTree {
                max_depth: flags.max_depth,
                min_samples_split: flags.min_samples_split.unwrap_or(2),
                min_samples_leaf: flags.min_samples_leaf.unwrap_or(1),
            },
            Algorithm::Knn => AlgorithmParams::Knn {
                k: flags.k.unwrap_or(5),
                weights: flags.weights.unwrap_or(KnnWeights::Uniform),
            },
            Algorithm::Svm => AlgorithmParams::Svm {
                c: flags.c.unwrap_or(1.0),
                gamma: flags.gamma.unwrap_or(Gamma::Scale),
            },
            Algorithm::NaiveBayes => AlgorithmParams::NaiveBayes {
                var_smoothing: flags.var_smoothing.unwrap_or(1e-9),
            },
        };
        let applicable = params.flag_names();
        if let Some(flag) = flags
            .given()
            .into_iter()
            .find(|flag| !applicable.contains(flag))
        {
            return Err(TrainError::Parameter(format!(
                "{flag} does not apply to {}; its flags are: {}",
                algorithm.cli_name(),
                applicable.join(", ")
            )));
        }
        params.check_ranges()?;
        Ok(params)
    }

    /// The algorithm these parameters are for.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            AlgorithmParams::LogisticRegression { .. } => Algorithm::LogisticRegression,
            AlgorithmParams::RandomForest { .. } => Algorithm::RandomForest,
            AlgorithmParams::DecisionTree { .. } => Algorithm::DecisionTree,
            AlgorithmParams::Knn { .. } => Algorithm::Knn,
            AlgorithmParams::Svm { .. } => Algorithm::Svm,
            AlgorithmParams::NaiveBayes { .. } => Algorithm::NaiveBayes,
        }
    }

    fn flag_names(&self) -> &'static [&'static str] {
        match self {
            AlgorithmParams::LogisticRegression { .. } => &["--c"],
            AlgorithmParams::RandomForest { .. } => &[
                "--n-trees",
                "--max-depth",
                "--min-samples-split",
                "--min-samples-leaf",
                "--max-features",
            ],
            AlgorithmParams::DecisionTree { .. } => {
                &["--max-depth", "--min-samples-split", "--min-samples-leaf"]
            }
            AlgorithmParams::Knn { .. } => &["--k", "--weights"],
            AlgorithmParams::Svm { .. } => &["--c", "--gamma"],
            AlgorithmParams::NaiveBayes { .. } => &["--var-smoothing"],
        }
    }

    fn check_ranges(&self) -> Result<(), TrainError> {
        let bad = |message: String| Err(TrainError::Parameter(message));
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                bad(format!("{name} must be a positive number, got {value}"))
            }
        };
        match self {
            AlgorithmParams::LogisticRegression { c } | AlgorithmParams::Svm { c, .. } => {
                positive("--c", *c)
            }
            AlgorithmParams::RandomForest {
                n_trees,
                max_depth,
                min_samples_split,
                min_samples_leaf,
                ..
            } => {
                if *n_trees == 0 {
                    return bad("--n-trees must be at least 1".into());
                }
                check_tree_limits(*max_depth, *min_samples_split, *min_samples_leaf)
            }
            AlgorithmParams::DecisionTree {
                max_depth,
                min_samples_split,
                min_samples_leaf,
            } => check_tree_limits(*max_depth, *min_samples_split, *min_samples_leaf),
            AlgorithmParams::Knn { k, .. } if *k == 0 => bad("--k must be at least 1".into()),
            AlgorithmParams::Knn { .. } => Ok(()),
            AlgorithmParams::NaiveBayes { var_smoothing } => {
                positive("--var-smoothing", *var_smoothing)
            }
        }
    }

    /// Checks what depends on the training data: k-nearest neighbours needs at least k rows.
    pub fn check_against_rows(&self, train_rows: usize) -> Result<(), TrainError> {
        match self {
            AlgorithmParams::Knn { k, .. } if *k > train_rows => Err(TrainError::Parameter(
                format!("--k {k} is more than the {train_rows} training rows"),
            )),
            _ => Ok(()),
        }
    }
}

fn check_tree_limits(
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
) -> Result<(), TrainError> {
    if max_depth == Some(0) {
        return Err(TrainError::Parameter(
            "--max-depth must be at least 1".into(),
        ));
    }
    if min_samples_split < 2 {
        return Err(TrainError::Parameter(format!(
            "--min-samples-split must be at least 2, got {min_samples_split}"
        )));
    }
    if min_samples_leaf == 0 {
        return Err(TrainError::Parameter(
            "--min-samples-leaf must be at least 1".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_scikit_learn() {
        let params =
            AlgorithmParams::from_flags(Algorithm::RandomForest, &HyperParameterFlags::default())
                .unwrap();
        assert_eq!(
            params,
            AlgorithmParams::RandomForest {
                n_trees: 100,
                max_depth: None,
                min_samples_split: 2,
                min_samples_leaf: 1,
                max_features: MaxFeatures::Sqrt
            }
        );
    }

    #[test]
    fn flags_of_another_algorithm_are_refused() {
        let flags = HyperParameterFlags {
            k: Some(3),
            ..Default::default()
        };
        let error = AlgorithmParams::from_flags(Algorithm::LogisticRegression, &flags).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--k does not apply to logistic-regression; its flags are: --c"
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for flags in [
            HyperParameterFlags {
                c: Some(0.0),
                ..Default::default()
            },
            HyperParameterFlags {
                c: Some(f64::NAN),
                ..Default::default()
            },
        ] {
            assert!(AlgorithmParams::from_flags(Algorithm::Svm, &flags).is_err());
        }
        let flags = HyperParameterFlags {
            min_samples_split: Some(1),
            ..Default::default()
        };
        assert!(AlgorithmParams::from_flags(Algorithm::DecisionTree, &flags).is_err());
        let flags = HyperParameterFlags {
            n_trees: Some(0),
            ..Default::default()
        };
        assert!(AlgorithmParams::from_flags(Algorithm::RandomForest, &flags).is_err());
    }

    #[test]
    fn textual_settings_round_trip() {
        assert_eq!("sqrt".parse::<MaxFeatures>().unwrap(), MaxFeatures::Sqrt);
        assert_eq!("7".parse::<MaxFeatures>().unwrap(), MaxFeatures::Count(7));
        assert!("0".parse::<MaxFeatures>().is_err());
        assert_eq!("0.25".parse::<Gamma>().unwrap(), Gamma::Value(0.25));
        assert!("-1".parse::<Gamma>().is_err());
        assert_eq!(MaxFeatures::Sqrt.resolve(30), 5);
        assert_eq!(MaxFeatures::Count(99).resolve(4), 4);
    }
}
