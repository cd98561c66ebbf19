//! Load-time checks of a native model's parameters (see [`NativeModel::check_consistency`]).

use super::{
    Estimator, InputEncoding, NativeModel, NativeRegressor, Preprocessor, Regressor, Tree,
};

/// How far a tree node's class shares may sum from 1 (they are ratios of row counts, so only
/// rounding separates them from 1).
const SHARE_TOLERANCE: f64 = 1e-9;

fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// Whether `values` are probabilities in [0, 1] whose sum is within `tolerance` of 1 (each
/// may stray `tolerance` past either bound, for rounding).
pub fn is_distribution(values: &[f64], tolerance: f64) -> bool {
    values
        .iter()
        .all(|p| (-tolerance..=1.0 + tolerance).contains(p))
        && (values.iter().sum::<f64>() - 1.0).abs() <= tolerance
}

impl NativeModel {
    /// Checks that every array has the size the others imply, every index is in range and
    /// every parameter holds a value its method can produce (finite numbers; a tree's node
    /// class shares in [0, 1] summing to 1), so that a damaged, hand-made or hostile file is
    /// refused on load with the reason instead of failing, or answering nonsense, at predict
    /// time.
    pub fn check_consistency(&self) -> Result<(), String> {
        let width = self.preprocessor.check_consistency()?;
        ensure(self.n_classes >= 2, "fewer than two classes")?;
        self.estimator.check_consistency(width, self.n_classes)
    }
}

impl NativeRegressor {
    /// As [`NativeModel::check_consistency`], for a model that predicts a number: sizes agree,
    /// indexes are in range and every parameter is finite.
    pub fn check_consistency(&self) -> Result<(), String> {
        let width = self.preprocessor.check_consistency()?;
        match &self.regressor {
            Regressor::LinearRegression {
                coefficients,
                intercept,
            } => {
                ensure(
                    coefficients.len() == width,
                    "linear coefficients disagree with the model width",
                )?;
                ensure(
                    all_finite(coefficients) && intercept.is_finite(),
                    "linear coefficient is not finite",
                )
            }
            Regressor::DecisionTree(tree) => tree.check_values(width),
            Regressor::RandomForest(trees) => {
                ensure(!trees.is_empty(), "random forest without trees")?;
                trees.iter().try_for_each(|tree| tree.check_values(width))
            }
            Regressor::KNearestNeighbors {
                k, points, targets, ..
            } => {
                ensure(
                    *k > 0 && !targets.is_empty() && points.len() == targets.len() * width,
                    "nearest-neighbour points disagree with the model size",
                )?;
                ensure(
                    all_finite(points) && all_finite(targets),
                    "nearest-neighbour point or target is not finite",
                )
            }
            Regressor::SupportVectorMachine {
                gamma,
                support_vectors,
                dual_coef,
                intercept,
            } => {
                let n_support = check_rbf(*gamma, support_vectors, width)?;
                ensure(
                    n_support == dual_coef.len(),
                    "support vectors disagree with the model width",
                )?;
                ensure(
                    all_finite(dual_coef) && intercept.is_finite(),
                    "SVM coefficient is not finite",
                )
            }
        }
    }
}

impl Preprocessor {
    /// Checks the encodings and the scaler agree in size and hold usable values; returns the
    /// number of model columns.
    fn check_consistency(&self) -> Result<usize, String> {
        let width = self.width();
        let encoded: usize = self.inputs.iter().map(InputEncoding::width).sum();
        ensure(
            width > 0 && encoded == width && self.scale.len() == width,
            "preprocessor sizes disagree",
        )?;
        ensure(
            self.mean.iter().all(|m| m.is_finite())
                && self.scale.iter().all(|s| s.is_finite() && *s > 0.0),
            "scaler holds a non-finite or non-positive value",
        )?;
        Ok(width)
    }
}

/// An RBF kernel's width and support vectors (`width` columns each); returns their number.
fn check_rbf(gamma: f64, support_vectors: &[f64], width: usize) -> Result<usize, String> {
    ensure(
        gamma.is_finite() && gamma > 0.0,
        "SVM gamma must be positive",
    )?;
    ensure(
        support_vectors.len().is_multiple_of(width),
        "support vectors disagree with the model width",
    )?;
    ensure(all_finite(support_vectors), "support vector is not finite")?;
    Ok(support_vectors.len() / width)
}

fn ensure(condition: bool, message: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(message.to_string())
    }
}

impl Tree {
    fn check_consistency(&self, width: usize, n_classes: usize) -> Result<(), String> {
        self.check_structure(width, n_classes)?;
        for shares in self.value.chunks_exact(n_classes) {
            ensure(
                is_distribution(shares, SHARE_TOLERANCE),
                "tree node class shares are not probabilities summing to 1",
            )?;
        }
        Ok(())
    }

    /// A regression tree's checks: one finite value a node.
    fn check_values(&self, width: usize) -> Result<(), String> {
        self.check_structure(width, 1)?;
        ensure(all_finite(&self.value), "tree node value is not finite")
    }

    /// Sizes, thresholds and child indexes, with `per_node` values a node.
    fn check_structure(&self, width: usize, per_node: usize) -> Result<(), String> {
        let n = self.left.len();
        ensure(
            n > 0 && self.right.len() == n && self.feature.len() == n && self.threshold.len() == n,
            "tree arrays disagree in length",
        )?;
        ensure(
            self.value.len() == n * per_node,
            "tree values disagree with the node count",
        )?;
        ensure(
            self.threshold.iter().all(|t| !t.is_nan()),
            "tree threshold is not a number",
        )?;
        for node in 0..n {
            let (left, right) = (self.left[node], self.right[node]);
            if left == Self::LEAF || right == Self::LEAF {
                ensure(left == right, "tree node with a single child")?;
                continue;
            }
            // Children always come after their parent: no index out of range, no cycle.
            ensure(
                (left as usize) > node
                    && (left as usize) < n
                    && (right as usize) > node
                    && (right as usize) < n,
                "tree child index out of range",
            )?;
            ensure(
                (self.feature[node] as usize) < width,
                "tree splits on a column the model does not have",
            )?;
        }
        Ok(())
    }
}

impl Estimator {
    fn check_consistency(&self, width: usize, n_classes: usize) -> Result<(), String> {
        let rows_for = |rows: usize| rows == n_classes || (n_classes == 2 && rows == 1);
        match self {
            Estimator::LogisticRegression {
                coefficients,
                intercepts,
            } => {
                ensure(
                    rows_for(intercepts.len()) && coefficients.len() == intercepts.len() * width,
                    "logistic regression coefficients disagree with the model size",
                )?;
                ensure(
                    all_finite(coefficients) && all_finite(intercepts),
                    "logistic regression coefficient is not finite",
                )
            }
            Estimator::DecisionTree(tree) => tree.check_consistency(width, n_classes),
            Estimator::RandomForest(trees) => {
                ensure(!trees.is_empty(), "random forest without trees")?;
                trees
                    .iter()
                    .try_for_each(|tree| tree.check_consistency(width, n_classes))
            }
            Estimator::KNearestNeighbors {
                k, points, classes, ..
            } => {
                ensure(
                    *k > 0
                        && !classes.is_empty()
                        && points.len() == classes.len() * width
                        && classes.iter().all(|&c| (c as usize) < n_classes),
                    "nearest-neighbour points disagree with the model size",
                )?;
                ensure(all_finite(points), "nearest-neighbour point is not finite")
            }
            Estimator::SupportVectorMachine {
                gamma,
                support_vectors,
                machines,
            } => {
                let n_support = check_rbf(*gamma, support_vectors, width)?;
                ensure(
                    rows_for(machines.len()),
                    "SVM machine count disagrees with the classes",
                )?;
                machines.iter().try_for_each(|machine| {
                    ensure(
                        machine.support.len() == machine.dual_coef.len()
                            && machine.support.iter().all(|&sv| (sv as usize) < n_support),
                        "SVM support index out of range",
                    )?;
                    ensure(
                        all_finite(&machine.dual_coef)
                            && all_finite(&[machine.rho, machine.platt_a, machine.platt_b]),
                        "SVM coefficient is not finite",
                    )
                })
            }
            Estimator::GaussianNaiveBayes {
                theta,
                variance,
                log_prior,
            } => {
                ensure(
                    log_prior.len() == n_classes
                        && theta.len() == n_classes * width
                        && variance.len() == n_classes * width,
                    "naive Bayes statistics disagree with the model size",
                )?;
                ensure(
                    all_finite(theta)
                        && variance.iter().all(|v| v.is_finite() && *v > 0.0)
                        && log_prior.iter().all(|p| p.is_finite() && *p <= 0.0),
                    "naive Bayes statistic is not a finite mean, positive variance or log probability",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_distribution;

    #[test]
    fn distributions_are_probabilities_summing_to_one() {
        assert!(is_distribution(&[0.25, 0.75], 1e-6));
        assert!(is_distribution(&[1.0 + 1e-9, 0.0], 1e-6), "rounding past 1");
        assert!(!is_distribution(&[2.1e181, 0.0], 1e-6));
        assert!(!is_distribution(&[0.5, 0.4], 1e-6), "sums to 0.9");
        assert!(!is_distribution(&[f64::NAN, 1.0], 1e-6));
        assert!(
            !is_distribution(&[1.5, -0.5], 1e-6),
            "sums to 1 but out of range"
        );
    }
}
