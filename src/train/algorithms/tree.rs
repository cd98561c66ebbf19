//! CART classification trees (Gini impurity) and random forests of them.
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

struct Split {
    feature: usize,
    threshold: f64,
}

struct TreeBuilder<'a> {
    x: &'a Matrix,
    y: &'a [usize],
    n_classes: usize,
    limits: TreeLimits,
    tree: Tree,
}

impl TreeBuilder<'_> {
    fn push_node(&mut self, samples: &[usize]) -> usize {
        let mut counts = vec![0.0; self.n_classes];
        for &sample in samples {
            counts[self.y[sample]] += 1.0;
        }
        let total = samples.len().max(1) as f64;
        self.tree.value.extend(counts.iter().map(|c| c / total));
        self.tree.feature.push(0);
        self.tree.threshold.push(0.0);
        self.tree.left.push(Tree::LEAF);
        self.tree.right.push(Tree::LEAF);
        self.tree.n_nodes() - 1
    }

    fn is_pure(&self, samples: &[usize]) -> bool {
        samples.iter().all(|&s| self.y[s] == self.y[samples[0]])
    }

    /// The split of `samples` with the lowest weighted Gini impurity, if any is allowed.
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
            let Some((score, threshold)) = self.best_threshold(samples, feature) else {
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
    fn best_threshold(&self, samples: &[usize], feature: usize) -> Option<(f64, f64)> {
        let mut sorted: Vec<(f64, usize)> = samples
            .iter()
            .map(|&s| (self.x.row(s)[feature], self.y[s]))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        if sorted[0].0 == sorted[sorted.len() - 1].0 {
            return None;
        }
        let n = sorted.len();
        let mut left = vec![0.0f64; self.n_classes];
        let mut right = vec![0.0f64; self.n_classes];
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
            let (value, next) = (sorted[i].0, sorted[i + 1].0);
            let (n_left, n_right) = (i + 1, n - i - 1);
            if value == next
                || n_left < self.limits.min_samples_leaf
                || n_right < self.limits.min_samples_leaf
            {
                continue;
            }
            let score = left_squares / n_left as f64 + right_squares / n_right as f64;
            if best.is_none_or(|(best_score, _)| score > best_score) {
                let midpoint = value / 2.0 + next / 2.0;
                // Guard against the midpoint rounding up onto the next value.
                let threshold = if midpoint < next { midpoint } else { value };
                best = Some((score, threshold));
            }
        }
        best
    }
}

/// Grows one tree on `samples` (indices into `x`, repeated for a bootstrap sample).
pub fn fit_tree(
    x: &Matrix,
    y: &[usize],
    n_classes: usize,
    samples: Vec<usize>,
    limits: TreeLimits,
    rng: &mut StdRng,
) -> Tree {
    let mut builder = TreeBuilder {
        x,
        y,
        n_classes,
        limits,
        tree: Tree {
            feature: Vec::new(),
            threshold: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            value: Vec::new(),
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

/// Grows `n_trees` trees, each on a bootstrap sample, spread over the machine's cores.
/// Each tree has its own seed drawn from `seed`, so the forest is the same whatever the core count.
pub fn fit_forest(
    x: &Matrix,
    y: &[usize],
    n_classes: usize,
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
        let tree = fit_tree(x, y, n_classes, bootstrap, limits, &mut rng);
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
            &y,
            2,
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
            &y,
            2,
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
            &y,
            2,
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
        let a = fit_forest(&x, &y, 2, 8, unlimited(), 3, &NoProgress);
        let b = fit_forest(&x, &y, 2, 8, unlimited(), 3, &NoProgress);
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        assert_ne!(a, fit_forest(&x, &y, 2, 8, unlimited(), 4, &NoProgress));
    }
}
