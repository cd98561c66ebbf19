//! CART trees and random forests of them: classification trees split on Gini impurity and keep
//! class shares at their leaves; regression trees split on squared error and keep the mean
//! (scikit-learn's `DecisionTreeClassifier` and `DecisionTreeRegressor` with their default
//! criteria, Breiman et al. 1984).
//!
//! Our own trainer rather than smartcore's: smartcore's fitted trees keep only the majority
//! class of each leaf, not its class shares, and its forests do not keep the bootstrap samples,
//! so scikit-learn-like probabilities could not be recovered from them.

use crate::model::native::Tree;
use crate::train::Progress;
use crate::train::preprocess::Matrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

/// Growth limits of a tree.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    /// Deepest level a node may be split at; `None` grows until leaves are pure.
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split.
    pub min_samples_split: usize,
    /// Fewest rows each side of a split must keep.
    pub min_samples_leaf: usize,
    /// Columns considered at each split (all of them for a single tree).
    pub max_features: usize,
}

/// What a tree learns to predict, one entry per row of the matrix.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// Class indices below `n_classes`: leaves keep the class shares of their rows (`n_classes`
    /// values a node) and splits minimise the weighted Gini impurity.
    Classes {
        /// Each row's class.
        y: &'a [usize],
        /// Number of classes.
        n_classes: usize,
    },
    /// Numbers: leaves keep the mean of their rows (one value a node) and splits minimise the
    /// squared error (scikit-learn's `criterion="squared_error"`).
    Values(&'a [f64]),
}

impl TreeLimits {
    /// The limits a tree's or forest's parameters set, trying `max_features` columns a split.
    pub fn new(
        max_depth: Option<usize>,
        min_samples_split: usize,
        min_samples_leaf: usize,
        max_features: usize,
    ) -> Self {
        TreeLimits {
            max_depth,
            min_samples_split,
            min_samples_leaf,
            max_features,
        }
    }
}

struct Split {
    feature: usize,
    threshold: f64,
}

struct TreeBuilder<'a> {
    x: &'a Matrix,
    targets: Targets<'a>,
    limits: TreeLimits,
    tree: Tree,
}

impl TreeBuilder<'_> {
    fn push_node(&mut self, samples: &[usize]) -> usize {
        let total = samples.len().max(1) as f64;
        match self.targets {
            Targets::Classes { y, n_classes } => {
                let mut counts = vec![0.0; n_classes];
                for &sample in samples {
                    counts[y[sample]] += 1.0;
                }
                self.tree.value.extend(counts.iter().map(|c| c / total));
            }
            Targets::Values(y) => {
                let sum: f64 = samples.iter().map(|&sample| y[sample]).sum();
                self.tree.value.push(sum / total);
            }
        }
        self.tree.covers.push(samples.len() as f64);
        self.tree.feature.push(0);
        self.tree.threshold.push(0.0);
        self.tree.left.push(Tree::LEAF);
        self.tree.right.push(Tree::LEAF);
        self.tree.n_nodes() - 1
    }

    fn is_pure(&self, samples: &[usize]) -> bool {
        match self.targets {
            Targets::Classes { y, .. } => samples.iter().all(|&s| y[s] == y[samples[0]]),
            // As scikit-learn: a node whose squared error is within machine epsilon is a leaf.
            Targets::Values(y) => {
                let n = samples.len().max(1) as f64;
                let mean = samples.iter().map(|&s| y[s]).sum::<f64>() / n;
                let error = samples.iter().map(|&s| (y[s] - mean).powi(2)).sum::<f64>() / n;
                error <= f64::EPSILON
            }
        }
    }

    /// The split of `samples` with the lowest weighted impurity, if any is allowed.
    fn best_split(&self, samples: &[usize], depth: usize, rng: &mut StdRng) -> Option<Split> {
        let limits = &self.limits;
        if samples.len() < limits.min_samples_split
            || samples.len() < 2 * limits.min_samples_leaf
            || limits.max_depth.is_some_and(|max| depth >= max)
            || self.is_pure(samples)
        {
            return None;
        }
        let mut features: Vec<usize> = (0..self.x.cols).collect();
        features.shuffle(rng);
        let mut best: Option<(f64, Split)> = None;
        let mut informative_seen = 0;
        // As scikit-learn: constant columns do not count toward max_features, so a node keeps
        // looking until it has seen that many columns that could split it.
        for feature in features {
            if informative_seen >= limits.max_features {
                break;
            }
            let best_on_column = match self.targets {
                Targets::Classes { y, n_classes } => {
                    self.best_gini_threshold(samples, feature, y, n_classes)
                }
                Targets::Values(y) => self.best_squared_error_threshold(samples, feature, y),
            };
            let Some((score, threshold)) = best_on_column else {
                continue;
            };
            informative_seen += 1;
            if best
                .as_ref()
                .is_none_or(|(best_score, _)| score > *best_score)
            {
                best = Some((score, Split { feature, threshold }));
            }
        }
        best.map(|(_, split)| split)
    }

    /// Best threshold on one column: maximises Σ count² / n over both sides, which is the
    /// same as minimising the weighted Gini impurity. `None` if the column is constant here
    /// or no threshold leaves enough rows on each side.
    fn best_gini_threshold(
        &self,
        samples: &[usize],
        feature: usize,
        y: &[usize],
        n_classes: usize,
    ) -> Option<(f64, f64)> {
        let sorted = self.sorted_by_column(samples, feature, y)?;
        let n = sorted.len();
        let mut left = vec![0.0f64; n_classes];
        let mut right = vec![0.0f64; n_classes];
        for &(_, class) in &sorted {
            right[class] += 1.0;
        }
        let mut left_squares = 0.0;
        let mut right_squares: f64 = right.iter().map(|c| c * c).sum();
        let mut best: Option<(f64, f64)> = None;
        for i in 0..n - 1 {
            let class = sorted[i].1;
            left_squares += 2.0 * left[class] + 1.0;
            right_squares -= 2.0 * right[class] - 1.0;
            left[class] += 1.0;
            right[class] -= 1.0;
            let score = |n_left: f64, n_right: f64| left_squares / n_left + right_squares / n_right;
            self.consider(&sorted, i, score, &mut best);
        }
        best
    }

    /// Best threshold on one column for a regression tree: maximises Σleft² / n_left +
    /// Σright² / n_right (sums of the targets), which is the same as minimising the summed
    /// squared error of both sides around their means (scikit-learn's proxy improvement).
    fn best_squared_error_threshold(
        &self,
        samples: &[usize],
        feature: usize,
        y: &[f64],
    ) -> Option<(f64, f64)> {
        let sorted = self.sorted_by_column(samples, feature, y)?;
        let total: f64 = sorted.iter().map(|(_, value)| value).sum();
        let mut left = 0.0;
        let mut best: Option<(f64, f64)> = None;
        for i in 0..sorted.len() - 1 {
            left += sorted[i].1;
            let right = total - left;
            let score = |n_left: f64, n_right: f64| left * left / n_left + right * right / n_right;
            self.consider(&sorted, i, score, &mut best);
        }
        best
    }

    /// The rows' (column value, target) pairs in column order; `None` when the column is
    /// constant on these rows.
    fn sorted_by_column<T: Copy>(
        &self,
        samples: &[usize],
        feature: usize,
        y: &[T],
    ) -> Option<Vec<(f64, T)>> {
        let mut sorted: Vec<(f64, T)> = samples
            .iter()
            .map(|&s| (self.x.row(s)[feature], y[s]))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        (sorted[0].0 != sorted[sorted.len() - 1].0).then_some(sorted)
    }

    /// Keeps the split between sorted rows `i` and `i + 1` in `best` when it is allowed (two
    /// distinct values, enough rows each side) and scores higher: the threshold is the midpoint.
    fn consider<T>(
        &self,
        sorted: &[(f64, T)],
        i: usize,
        score: impl Fn(f64, f64) -> f64,
        best: &mut Option<(f64, f64)>,
    ) {
        let (value, next) = (sorted[i].0, sorted[i + 1].0);
        let (n_left, n_right) = (i + 1, sorted.len() - i - 1);
        if value == next
            || n_left < self.limits.min_samples_leaf
            || n_right < self.limits.min_samples_leaf
        {
            return;
        }
        let score = score(n_left as f64, n_right as f64);
        if best.is_none_or(|(best_score, _)| score > best_score) {
            let midpoint = value / 2.0 + next / 2.0;
            // Guard against the midpoint rounding up onto the next value.
            let threshold = if midpoint < next { midpoint } else { value };
            *best = Some((score, threshold));
        }
    }
}

/// Grows one tree on `samples` (indices into `x`, repeated for a bootstrap sample).
pub fn fit_tree(
    x: &Matrix,
    targets: Targets<'_>,
    samples: Vec<usize>,
    limits: TreeLimits,
    rng: &mut StdRng,
) -> Tree {
    let mut builder = TreeBuilder {
        x,
        targets,
        limits,
        tree: Tree {
            feature: Vec::new(),
            threshold: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            value: Vec::new(),
            covers: Vec::new(),
        },
    };
    let root = builder.push_node(&samples);
    let mut pending = vec![(root, samples, 0usize)];
    while let Some((node, samples, depth)) = pending.pop() {
        let Some(split) = builder.best_split(&samples, depth, rng) else {
            continue;
        };
        let (left, right): (Vec<usize>, Vec<usize>) = samples
            .into_iter()
            .partition(|&s| x.row(s)[split.feature] <= split.threshold);
        let left_node = builder.push_node(&left);
        let right_node = builder.push_node(&right);
        let tree = &mut builder.tree;
        tree.feature[node] = split.feature as u32;
        tree.threshold[node] = split.threshold;
        tree.left[node] = left_node as u32;
        tree.right[node] = right_node as u32;
        pending.push((right_node, right, depth + 1));
        pending.push((left_node, left, depth + 1));
    }
    builder.tree
}

/// Grows one tree on every row of `x`, its random choices (the order columns are tried in)
/// seeded by `seed`.
pub fn fit_decision_tree(x: &Matrix, targets: Targets<'_>, limits: TreeLimits, seed: u64) -> Tree {
    let all_rows = (0..x.rows).collect();
    fit_tree(
        x,
        targets,
        all_rows,
        limits,
        &mut StdRng::seed_from_u64(seed),
    )
}

/// Grows `n_trees` trees, each on a bootstrap sample, spread over the machine's cores.
/// Each tree has its own seed drawn from `seed`, so the forest is the same whatever the core count.
pub fn fit_forest(
    x: &Matrix,
    targets: Targets<'_>,
    n_trees: usize,
    limits: TreeLimits,
    seed: u64,
    progress: &dyn Progress,
) -> Vec<Tree> {
    let mut seeder = StdRng::seed_from_u64(seed);
    let seeds: Vec<u64> = (0..n_trees).map(|_| seeder.random()).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n_trees.max(1));
    let grow = |tree_seed: u64| {
        let mut rng = StdRng::seed_from_u64(tree_seed);
        let bootstrap: Vec<usize> = (0..x.rows).map(|_| rng.random_range(0..x.rows)).collect();
        let tree = fit_tree(x, targets, bootstrap, limits, &mut rng);
        progress.advance(1);
        tree
    };
    let mut trees: Vec<(usize, Tree)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let seeds = &seeds;
                let grow = &grow;
                scope.spawn(move || {
                    (worker..seeds.len())
                        .step_by(threads)
                        .map(|index| (index, grow(seeds[index])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    trees.sort_by_key(|(index, _)| *index);
    trees.into_iter().map(|(_, tree)| tree).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::NoProgress;

    fn matrix(values: &[f64]) -> Matrix {
        Matrix {
            rows: values.len(),
            cols: 1,
            data: values.to_vec(),
        }
    }

    fn classes(y: &[usize]) -> Targets<'_> {
        Targets::Classes { y, n_classes: 2 }
    }

    fn unlimited() -> TreeLimits {
        TreeLimits {
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: 1,
        }
    }

    #[test]
    fn splits_at_the_midpoint_between_classes() {
        let x = matrix(&[1.0, 2.0, 3.0, 10.0, 11.0]);
        let y = [0, 0, 0, 1, 1];
        let tree = fit_tree(
            &x,
            Targets::Classes {
                y: &y,
                n_classes: 2,
            },
            (0..5).collect(),
            unlimited(),
            &mut StdRng::seed_from_u64(0),
        );
        assert_eq!(tree.n_nodes(), 3);
        assert_eq!(tree.threshold[0], 6.5);
        assert_eq!(tree.leaf_probabilities(&[6.5], 2), [1.0, 0.0]);
        assert_eq!(tree.leaf_probabilities(&[6.6], 2), [0.0, 1.0]);
    }

    #[test]
    fn limits_keep_leaves_impure_with_class_shares() {
        let x = matrix(&[1.0, 2.0, 3.0, 4.0]);
        let y = [0, 1, 0, 1];
        let limits = TreeLimits {
            max_depth: Some(0),
            ..unlimited()
        };
        let tree = fit_tree(
            &x,
            Targets::Classes {
                y: &y,
                n_classes: 2,
            },
            (0..4).collect(),
            limits,
            &mut StdRng::seed_from_u64(0),
        );
        assert_eq!(tree.n_nodes(), 1);
        assert_eq!(tree.leaf_probabilities(&[0.0], 2), [0.5, 0.5]);
    }

    #[test]
    fn min_samples_leaf_is_respected() {
        let x = matrix(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let y = [1, 0, 0, 0, 0];
        let limits = TreeLimits {
            min_samples_leaf: 2,
            ..unlimited()
        };
        let tree = fit_tree(
            &x,
            Targets::Classes {
                y: &y,
                n_classes: 2,
            },
            (0..5).collect(),
            limits,
            &mut StdRng::seed_from_u64(0),
        );
        assert_eq!(tree.threshold[0], 2.5);
        assert_eq!(tree.leaf_probabilities(&[1.0], 2), [0.5, 0.5]);
    }

    #[test]
    fn forest_is_reproducible_for_a_seed() {
        let x = matrix(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let y = [0, 0, 1, 0, 1, 1, 0, 1];
        let a = fit_forest(&x, classes(&y), 8, unlimited(), 3, &NoProgress);
        let b = fit_forest(&x, classes(&y), 8, unlimited(), 3, &NoProgress);
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        assert_ne!(
            a,
            fit_forest(&x, classes(&y), 8, unlimited(), 4, &NoProgress)
        );
    }
}
