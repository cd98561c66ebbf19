//! Algorithms and their hyper-parameters: the command-line flags, their validation, and the
//! form recorded in the manifest.

use super::TrainError;
use crate::data::Task;
use crate::model::native::KnnWeights;
pub use crate::model::{Algorithm, AlgorithmParams, EarlyStopping, Gamma, MaxFeatures};

/// Hyper-parameter flags of `mlserve train`; each applies to the algorithms its help names.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HyperParameterFlags {
    /// Inverse regularisation strength (logistic-regression, svm) [default: 1.0]
    #[arg(long = "c", value_name = "C", allow_negative_numbers = true)]
    pub c: Option<f64>,
    /// Number of trees (random-forest), or boosting iterations at most (gradient-boosting; a
    /// tree per class in each for several classes) [default: 100]
    #[arg(long, value_name = "N")]
    pub n_trees: Option<usize>,
    /// Maximum tree depth (random-forest, decision-tree, gradient-boosting) [default:
    /// unlimited]
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (random-forest, decision-tree) [default: 2]
    #[arg(long, value_name = "N")]
    pub min_samples_split: Option<usize>,
    /// Fewest rows in a leaf (random-forest, decision-tree [default: 1]; gradient-boosting
    /// [default: 20])
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
    /// L2 penalty on the coefficients (linear-regression; 0 is least squares, more is ridge)
    /// [default: 0]
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Half-width of the tube in which errors cost nothing, in the target's unit (svm, for
    /// regression) [default: 0.1]
    #[arg(long, value_name = "EPS", allow_negative_numbers = true)]
    pub epsilon: Option<f64>,
    /// Shrinkage of each tree's contribution (gradient-boosting) [default: 0.1]
    #[arg(long, value_name = "RATE", allow_negative_numbers = true)]
    pub learning_rate: Option<f64>,
    /// Leaves per tree at most (gradient-boosting) [default: 31]
    #[arg(long, value_name = "N")]
    pub max_leaves: Option<usize>,
    /// L2 penalty on leaf values (gradient-boosting) [default: 0]
    #[arg(long, value_name = "LAMBDA", allow_negative_numbers = true)]
    pub l2: Option<f64>,
    /// Bins per numeric feature, 2 to 255; missing values get one more (gradient-boosting)
    /// [default: 255]
    #[arg(long, value_name = "N")]
    pub max_bins: Option<usize>,
    /// Stop when the validation share stops improving: auto is on above 10,000 training rows
    /// (gradient-boosting) [default: auto]
    #[arg(long, value_enum, value_name = "WHEN")]
    pub early_stopping: Option<EarlyStopping>,
    /// Share of the training rows held out to decide early stopping (gradient-boosting)
    /// [default: 0.1]
    #[arg(long, value_name = "SHARE", allow_negative_numbers = true)]
    pub validation_fraction: Option<f64>,
    /// Iterations without improvement of the validation loss before stopping
    /// (gradient-boosting) [default: 10]
    #[arg(long, value_name = "N")]
    pub n_iter_no_change: Option<usize>,
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
            ("--alpha", self.alpha.is_some()),
            ("--epsilon", self.epsilon.is_some()),
            ("--learning-rate", self.learning_rate.is_some()),
            ("--max-leaves", self.max_leaves.is_some()),
            ("--l2", self.l2.is_some()),
            ("--max-bins", self.max_bins.is_some()),
            ("--early-stopping", self.early_stopping.is_some()),
            ("--validation-fraction", self.validation_fraction.is_some()),
            ("--n-iter-no-change", self.n_iter_no_change.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
    }
}

impl AlgorithmParams {
    /// Settles the hyper-parameters of a classifier from the flags: [`Self::from_flags_for`]
    /// classification.
    pub fn from_flags(
        algorithm: Algorithm,
        flags: &HyperParameterFlags,
    ) -> Result<Self, TrainError> {
        Self::from_flags_for(Task::Classification, algorithm, flags)
    }

    /// Settles the hyper-parameters of `algorithm` for `task` from the flags, refusing flags
    /// that do not apply to it and values out of range. Defaults are scikit-learn's for the
    /// task: a regression forest tries every column at each split (`RandomForestRegressor`'s
    /// `max_features=1.0`), a classification forest √columns.
    pub fn from_flags_for(
        task: Task,
        algorithm: Algorithm,
        flags: &HyperParameterFlags,
    ) -> Result<Self, TrainError> {
        let forest_features = match task {
            Task::Classification => MaxFeatures::Sqrt,
            Task::Regression => MaxFeatures::All,
        };
        let params = match algorithm {
            Algorithm::LogisticRegression => AlgorithmParams::LogisticRegression {
                c: flags.c.unwrap_or(1.0),
            },
            Algorithm::RandomForest => AlgorithmParams::RandomForest {
                n_trees: flags.n_trees.unwrap_or(100),
                max_depth: flags.max_depth,
                min_samples_split: flags.min_samples_split.unwrap_or(2),
                min_samples_leaf: flags.min_samples_leaf.unwrap_or(1),
                max_features: flags.max_features.unwrap_or(forest_features),
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
                // scikit-learn's SVR default.
                epsilon: (task == Task::Regression).then(|| flags.epsilon.unwrap_or(0.1)),
            },
            Algorithm::NaiveBayes => AlgorithmParams::NaiveBayes {
                var_smoothing: flags.var_smoothing.unwrap_or(1e-9),
            },
            Algorithm::LinearRegression => AlgorithmParams::LinearRegression {
                alpha: flags.alpha.unwrap_or(0.0),
            },
            // scikit-learn's HistGradientBoosting defaults.
            Algorithm::GradientBoosting => AlgorithmParams::GradientBoosting {
                n_trees: flags.n_trees.unwrap_or(100),
                learning_rate: flags.learning_rate.unwrap_or(0.1),
                max_leaves: flags.max_leaves.unwrap_or(31),
                max_depth: flags.max_depth,
                min_samples_leaf: flags.min_samples_leaf.unwrap_or(20),
                l2: flags.l2.unwrap_or(0.0),
                max_bins: flags.max_bins.unwrap_or(255),
                early_stopping: flags.early_stopping.unwrap_or(EarlyStopping::Auto),
                validation_fraction: flags.validation_fraction.unwrap_or(0.1),
                n_iter_no_change: flags.n_iter_no_change.unwrap_or(10),
            },
        };
        let applicable = params.flag_names();
        if let Some(flag) = flags
            .given()
            .into_iter()
            .find(|flag| !applicable.contains(flag))
        {
            // --epsilon is the ε-SVR's: an svm that classifies has no tube.
            let task_note = if flag == "--epsilon" && algorithm == Algorithm::Svm {
                " for classification (it is the regression svm's)"
            } else {
                ""
            };
            return Err(TrainError::Parameter(format!(
                "{flag} does not apply to {}{task_note}; its flags are: {}",
                algorithm.cli_name(),
                applicable.join(", ")
            )));
        }
        params.check_ranges()?;
        Ok(params)
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
            AlgorithmParams::Svm { epsilon: None, .. } => &["--c", "--gamma"],
            AlgorithmParams::Svm { .. } => &["--c", "--gamma", "--epsilon"],
            AlgorithmParams::NaiveBayes { .. } => &["--var-smoothing"],
            AlgorithmParams::LinearRegression { .. } => &["--alpha"],
            AlgorithmParams::GradientBoosting { .. } => &[
                "--n-trees",
                "--learning-rate",
                "--max-leaves",
                "--max-depth",
                "--min-samples-leaf",
                "--l2",
                "--max-bins",
                "--early-stopping",
                "--validation-fraction",
                "--n-iter-no-change",
            ],
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
            AlgorithmParams::LogisticRegression { c }
            | AlgorithmParams::Svm {
                c, epsilon: None, ..
            } => positive("--c", *c),
            AlgorithmParams::Svm {
                c,
                epsilon: Some(epsilon),
                ..
            } => {
                positive("--c", *c)?;
                if epsilon.is_finite() && *epsilon >= 0.0 {
                    Ok(())
                } else {
                    bad(format!(
                        "--epsilon must be zero or a positive number, got {epsilon}"
                    ))
                }
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
            AlgorithmParams::LinearRegression { alpha } if alpha.is_finite() && *alpha >= 0.0 => {
                Ok(())
            }
            AlgorithmParams::LinearRegression { alpha } => bad(format!(
                "--alpha must be zero or a positive number, got {alpha}"
            )),
            AlgorithmParams::GradientBoosting { .. } => self.check_boosting_ranges(),
        }
    }

    fn check_boosting_ranges(&self) -> Result<(), TrainError> {
        let AlgorithmParams::GradientBoosting {
            n_trees,
            learning_rate,
            max_leaves,
            max_depth,
            min_samples_leaf,
            l2,
            max_bins,
            validation_fraction,
            n_iter_no_change,
            ..
        } = self
        else {
            return Ok(());
        };
        let problem = if *n_trees == 0 {
            Some("--n-trees must be at least 1".to_string())
        } else if !(learning_rate.is_finite() && *learning_rate > 0.0) {
            Some(format!(
                "--learning-rate must be a positive number, got {learning_rate}"
            ))
        } else if *max_leaves < 2 {
            Some(format!("--max-leaves must be at least 2, got {max_leaves}"))
        } else if *max_depth == Some(0) {
            Some("--max-depth must be at least 1".to_string())
        } else if *min_samples_leaf == 0 {
            Some("--min-samples-leaf must be at least 1".to_string())
        } else if !(l2.is_finite() && *l2 >= 0.0) {
            Some(format!("--l2 must be zero or a positive number, got {l2}"))
        } else if !(2..=255).contains(max_bins) {
            Some(format!("--max-bins must be from 2 to 255, got {max_bins}"))
        } else if !(*validation_fraction > 0.0 && *validation_fraction < 1.0) {
            Some(format!(
                "--validation-fraction must be between 0 and 1, got {validation_fraction}"
            ))
        } else if *n_iter_no_change == 0 {
            Some("--n-iter-no-change must be at least 1".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |message| Err(TrainError::Parameter(message)))
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
