//! Path-dependent TreeSHAP with per-leaf tables computed once per model (after "Fast TreeSHAP",
//! Yang 2021, algorithm v2): the same values as Algorithm 2 ([`super::shap`]) in a fraction of
//! the time, for trees shallow enough that the tables stay small.
//!
//! For a leaf with value v, the unique features U on its path (d of them), each feature's
//! zero fraction z_j (the share of the training cover that follows its splits) and the row's
//! pattern P (the features whose splits the row follows), the leaf's part of feature i's
//! Shapley value is
//!
//! - i ∈ P: v · (1 − z_i) / z_i · B(P \ {i}),
//! - i ∉ P: −v · B(P),
//!
//! where B(Q) = Σ_{S ⊆ Q} |S|! (d − |S| − 1)! / d! · Π_{j ∈ U \ S} z_j depends on the tree
//! alone: it is kept for every Q ⊆ U (2^d numbers a leaf). A row then costs one pass over
//! each leaf's path instead of Algorithm 2's O(d²) updates. Leaves with a zero fraction of 0
//! (a split whose child has no cover) sum the subsets directly.

use super::shap::Explained;
use super::tree::{LEAF, Tree};

/// Deepest leaf (unique features on its path) that gets a table.
const MAX_FEATURES_ON_PATH: usize = 12;

/// A tree's tables; `None` from [`TreeTables::build`] when its leaves are too deep.
#[derive(Debug, Clone)]
pub struct TreeTables {
    leaves: Vec<LeafTable>,
    /// Every leaf's B(Q), 2^d numbers each, leaf after leaf.
    sums: Vec<f64>,
    /// Every leaf's path splits: (node, child on the path, bit of the node's feature in U).
    steps: Vec<(u32, u32, u8)>,
    /// Every leaf's unique features and their (1 − z) / z, feature after feature.
    features: Vec<(u32, f64, f64)>,
}

#[derive(Debug, Clone)]
struct LeafTable {
    node: u32,
    /// Start of its sums; it has 2^d.
    sums: usize,
    /// Its steps in [`TreeTables::steps`].
    steps: (u32, u32),
    /// Its unique features in [`TreeTables::features`]: (feature, zero fraction, ratio).
    features: (u32, u32),
}

impl TreeTables {
    /// The tables of `tree` (covers as [`Explained`] reads them), or `None` when a leaf has
    /// more than [`MAX_FEATURES_ON_PATH`] unique features on its path.
    pub fn build(explained: &Explained<'_>) -> Option<TreeTables> {
        let mut tables = TreeTables {
            leaves: Vec::new(),
            sums: Vec::new(),
            steps: Vec::new(),
            features: Vec::new(),
        };
        let mut path = Vec::new();
        tables.visit(explained, 0, &mut path)?;
        Some(tables)
    }

    /// Depth-first over the tree, `path` holding (node, child taken) down to `index`.
    fn visit(
        &mut self,
        explained: &Explained<'_>,
        index: usize,
        path: &mut Vec<(u32, u32)>,
    ) -> Option<()> {
        let tree: &Tree = explained.tree;
        let node = tree.nodes.get(index)?;
        if node.left == LEAF {
            return self.add_leaf(explained, index, path);
        }
        for child in [node.left, node.right] {
            path.push((index as u32, child));
            self.visit(explained, child as usize, path)?;
            path.pop();
        }
        Some(())
    }

    fn add_leaf(
        &mut self,
        explained: &Explained<'_>,
        index: usize,
        path: &[(u32, u32)],
    ) -> Option<()> {
        let tree = explained.tree;
        let covers = explained.covers;
        let mut unique: Vec<(u32, f64)> = Vec::new();
        let steps_start = self.steps.len() as u32;
        for &(parent, child) in path {
            let feature = tree.nodes[parent as usize].feature;
            let parent_cover = covers[parent as usize];
            let share = if parent_cover > 0.0 {
                covers[child as usize] / parent_cover
            } else {
                0.0
            };
            let bit = match unique.iter().position(|(f, _)| *f == feature) {
                Some(at) => {
                    unique[at].1 *= share;
                    at
                }
                None => {
                    unique.push((feature, share));
                    unique.len() - 1
                }
            };
            self.steps.push((parent, child, bit as u8));
        }
        let d = unique.len();
        if d > MAX_FEATURES_ON_PATH {
            return None;
        }
        let features_start = self.features.len() as u32;
        self.features.extend(unique.iter().map(|&(feature, zero)| {
            let ratio = if zero > 0.0 {
                (1.0 - zero) / zero
            } else {
                f64::NAN
            };
            (feature, zero, ratio)
        }));
        let sums_start = self.sums.len();
        self.sums.extend(subset_sums(&unique));
        self.leaves.push(LeafTable {
            node: index as u32,
            sums: sums_start,
            steps: (steps_start, self.steps.len() as u32),
            features: (features_start, self.features.len() as u32),
        });
        Some(())
    }

    /// How many numbers the tables keep (their memory is about 8 bytes each).
    pub fn size(&self) -> usize {
        self.sums.len() + 2 * self.features.len() + self.steps.len()
    }

    /// What [`TreeTables::size`] will be for `tree`, from its paths alone; `None` when a leaf
    /// has too many features on its path for a table.
    pub fn size_of(tree: &Tree) -> Option<usize> {
        let mut size = 0usize;
        let mut stack: Vec<(usize, Vec<u32>, usize)> = vec![(0, Vec::new(), 0)];
        while let Some((index, features, depth)) = stack.pop() {
            let node = tree.nodes.get(index)?;
            if node.left == LEAF {
                if features.len() > MAX_FEATURES_ON_PATH {
                    return None;
                }
                size = size.checked_add((1usize << features.len()) + 2 * features.len() + depth)?;
                continue;
            }
            if depth >= tree.nodes.len() {
                return None;
            }
            let mut below = features;
            if !below.contains(&node.feature) {
                below.push(node.feature);
            }
            stack.push((node.left as usize, below.clone(), depth + 1));
            stack.push((node.right as usize, below, depth + 1));
        }
        Some(size)
    }

    /// Adds the row's contributions to `phi` (`[outputs][features]`), as
    /// [`Explained::add_contributions`] does. `hot` is scratch space, one slot per node.
    pub fn add_contributions(
        &self,
        explained: &Explained<'_>,
        row: &[f64],
        phi: &mut [f64],
        hot: &mut Vec<u32>,
    ) {
        let tree = explained.tree;
        hot.clear();
        hot.extend(tree.nodes.iter().map(|node| {
            if node.left == LEAF {
                LEAF
            } else {
                explained.hot_child(node, row) as u32
            }
        }));
        let outputs = explained.values.outputs();
        let width = phi.len() / outputs.max(1);
        for leaf in &self.leaves {
            let (first, last) = leaf.steps;
            let features = &self.features[leaf.features.0 as usize..leaf.features.1 as usize];
            let full = (1usize << features.len()) - 1;
            let mut pattern = full;
            for &(node, child, bit) in &self.steps[first as usize..last as usize] {
                if hot[node as usize] != child {
                    pattern &= !(1 << bit);
                }
            }
            let sums = &self.sums[leaf.sums..leaf.sums + full + 1];
            for (bit, &(feature, zero, ratio)) in features.iter().enumerate() {
                let share = if pattern >> bit & 1 == 0 {
                    -sums[pattern]
                } else if zero > 0.0 {
                    ratio * sums[pattern & !(1 << bit)]
                } else {
                    hot_share_without_ratio(features, pattern, bit)
                };
                let feature = feature as usize;
                if feature >= width || share == 0.0 {
                    continue;
                }
                for k in 0..outputs {
                    phi[k * width + feature] += share * explained.value(leaf.node as usize, k);
                }
            }
        }
    }
}

/// How many numbers a model's tables may keep in all (32 MiB): trees past it, and trees with
/// leaves too deep for tables, are explained by Algorithm 2.
const MAX_TABLE_NUMBERS: usize = 4 << 20;

/// The tables of a model's trees, where they fit.
#[derive(Debug, Clone, Default)]
pub struct EnsembleTables {
    tables: Vec<Option<TreeTables>>,
}

impl EnsembleTables {
    /// Tables for each tree, in order, within [`MAX_TABLE_NUMBERS`].
    pub fn build<'a>(trees: impl Iterator<Item = Explained<'a>>) -> EnsembleTables {
        let mut kept = 0;
        let tables = trees
            .map(|explained| {
                // Sized before anything is summed: a tree past the budget costs no work.
                let size = TreeTables::size_of(explained.tree)?;
                if kept + size > MAX_TABLE_NUMBERS {
                    return None;
                }
                let table = TreeTables::build(&explained)?;
                kept += table.size();
                Some(table)
            })
            .collect();
        EnsembleTables { tables }
    }

    /// Adds tree `index`'s contributions for `row` to `phi`, from its tables or else by
    /// Algorithm 2; `hot` is scratch space.
    pub fn add_contributions(
        &self,
        index: usize,
        explained: &Explained<'_>,
        row: &[f64],
        phi: &mut [f64],
        hot: &mut Vec<u32>,
    ) {
        match self.tables.get(index).and_then(Option::as_ref) {
            Some(tables) => tables.add_contributions(explained, row, phi, hot),
            None => explained.add_contributions(row, phi),
        }
    }

    /// How many numbers the tables keep (their memory is about 8 bytes each).
    pub fn size(&self) -> usize {
        self.tables.iter().flatten().map(TreeTables::size).sum()
    }
}

/// The Shapley weight |S|! (d − |S| − 1)! / d! of each subset size s < d.
fn weights(d: usize) -> Vec<f64> {
    let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
    (0..d)
        .map(|s| factorial(s) * factorial(d - s - 1) / factorial(d))
        .collect()
}

/// B(Q) for every Q ⊆ U, indexed by Q's bits: the sum over subsets (a zeta transform) of
/// t(S) = w(|S|) · Π_{j ∈ U \ S} z_j.
fn subset_sums(unique: &[(u32, f64)]) -> Vec<f64> {
    let d = unique.len();
    let w = weights(d);
    let mut sums: Vec<f64> = (0..1usize << d)
        .map(|subset| {
            let size = subset.count_ones() as usize;
            if size >= d {
                return 0.0;
            }
            let outside: f64 = unique
                .iter()
                .enumerate()
                .filter(|(bit, _)| subset >> bit & 1 == 0)
                .map(|(_, (_, zero))| zero)
                .product();
            w[size] * outside
        })
        .collect();
    for bit in 0..d {
        for subset in 0..1usize << d {
            if subset >> bit & 1 == 1 {
                sums[subset] += sums[subset & !(1 << bit)];
            }
        }
    }
    sums
}

/// (1 − z_i) · Σ_{S ⊆ P \ {i}} w(|S|) · Π_{j ∈ U \ S \ {i}} z_j, summed directly: the hot
/// feature's share on a path where its zero fraction is 0 (so B cannot be divided by it).
fn hot_share_without_ratio(features: &[(u32, f64, f64)], pattern: usize, bit: usize) -> f64 {
    let d = features.len();
    let w = weights(d);
    let others = pattern & !(1 << bit);
    let mut total = 0.0;
    let mut subset = others;
    loop {
        let size = subset.count_ones() as usize;
        let outside: f64 = features
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != bit && subset >> j & 1 == 0)
            .map(|(_, (_, zero, _))| zero)
            .product();
        total += w[size] * outside;
        if subset == 0 {
            break;
        }
        subset = (subset - 1) & others;
    }
    (1.0 - features[bit].1) * total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boosted::shap::{NodeValues, SplitRule};
    use crate::model::boosted::{MissingType, Node, Routing};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// A random tree of the given depth over 4 features (so features repeat on paths), with
    /// NaN going either way, some zero covers, and leaf covers that add up.
    fn random_tree(rng: &mut StdRng, depth: usize) -> (Tree, Vec<f64>) {
        let mut nodes = Vec::new();
        let mut covers = Vec::new();
        grow(rng, depth, &mut nodes, &mut covers);
        let tree = Tree {
            nodes,
            categories: Vec::new(),
            covers: Vec::new(),
        };
        (tree, covers)
    }

    fn grow(rng: &mut StdRng, depth: usize, nodes: &mut Vec<Node>, covers: &mut Vec<f64>) -> f64 {
        let index = nodes.len();
        let leaf = depth == 0 || rng.random_bool(0.15);
        nodes.push(Node {
            feature: rng.random_range(0..4),
            value: if leaf {
                rng.random_range(-2.0..2.0)
            } else {
                rng.random_range(-1.0..1.0)
            },
            left: LEAF,
            right: LEAF,
            default_left: rng.random_bool(0.5),
            missing: MissingType::NaN,
            categories: None,
        });
        covers.push(0.0);
        let cover = if leaf {
            if rng.random_bool(0.1) {
                0.0
            } else {
                rng.random_range(1.0..50.0)
            }
        } else {
            let left = nodes.len() as u32;
            let l = grow(rng, depth - 1, nodes, covers);
            let right = nodes.len() as u32;
            let r = grow(rng, depth - 1, nodes, covers);
            nodes[index].left = left;
            nodes[index].right = right;
            l + r
        };
        covers[index] = cover;
        cover
    }

    /// E[f_k | x_S] by the path-dependent rule: features in `fixed` follow the row, the others
    /// split by cover (a node without cover weighs its children 0).
    fn conditional(explained: &Explained, index: usize, row: &[f64], fixed: u32, k: usize) -> f64 {
        let node = &explained.tree.nodes[index];
        if node.left == LEAF {
            return explained.value(index, k);
        }
        if fixed >> node.feature & 1 == 1 {
            return conditional(explained, explained.hot_child(node, row), row, fixed, k);
        }
        let cover = explained.covers[index];
        if cover <= 0.0 {
            return 0.0;
        }
        let (l, r) = (node.left as usize, node.right as usize);
        (conditional(explained, l, row, fixed, k) * explained.covers[l]
            + conditional(explained, r, row, fixed, k) * explained.covers[r])
            / cover
    }

    /// Exact Shapley values of the 4 features, per output.
    fn brute_force(explained: &Explained, row: &[f64]) -> Vec<f64> {
        let factorial = |k: usize| (1..=k).product::<usize>() as f64;
        let mut out = Vec::new();
        for k in 0..explained.values.outputs() {
            for i in 0..4 {
                out.push(
                    (0..16u32)
                        .filter(|subset| subset >> i & 1 == 0)
                        .map(|subset| {
                            let size = subset.count_ones() as usize;
                            let weight = factorial(size) * factorial(3 - size) / factorial(4);
                            weight
                                * (conditional(explained, 0, row, subset | 1 << i, k)
                                    - conditional(explained, 0, row, subset, k))
                        })
                        .sum(),
                );
            }
        }
        out
    }

    #[test]
    fn tables_give_the_exact_shapley_values_as_algorithm_two_does() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut hot = Vec::new();
        for case in 0..300 {
            let (tree, covers) = random_tree(&mut rng, 1 + case % 8);
            let leaf_values: Vec<f64> = (0..tree.nodes.len() * 3)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            for values in [
                NodeValues::InNodes,
                NodeValues::Table {
                    values: &leaf_values,
                    width: 3,
                    first: 0,
                    outputs: 3,
                },
                NodeValues::Table {
                    values: &leaf_values,
                    width: 3,
                    first: 1,
                    outputs: 1,
                },
            ] {
                let explained = Explained {
                    tree: &tree,
                    covers: &covers,
                    rule: SplitRule::Library(Routing::Xgboost),
                    values,
                };
                let tables = TreeTables::build(&explained).unwrap();
                assert_eq!(TreeTables::size_of(&tree), Some(tables.size()));
                for _ in 0..5 {
                    let row: Vec<f64> = (0..4)
                        .map(|_| {
                            if rng.random_bool(0.15) {
                                f64::NAN
                            } else {
                                rng.random_range(-1.5..1.5)
                            }
                        })
                        .collect();
                    let width = 4 * values.outputs();
                    let (mut want, mut got) = (vec![0.0; width], vec![0.0; width]);
                    explained.add_contributions(&row, &mut want);
                    tables.add_contributions(&explained, &row, &mut got, &mut hot);
                    let exact = brute_force(&explained, &row);
                    for ((w, g), e) in want.iter().zip(&got).zip(&exact) {
                        assert!(
                            (e - g).abs() <= 1e-12 * e.abs().max(1.0),
                            "case {case}: {exact:?} vs {got:?}"
                        );
                        assert!(
                            (w - g).abs() <= 1e-12 * w.abs().max(1.0),
                            "case {case}: {want:?} vs {got:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn leaves_too_deep_for_tables_are_refused() {
        // A chain: split k (node 2k) on feature k, a leaf on its left, split k + 1 on its right.
        let leaf = Node {
            feature: 0,
            value: 1.0,
            left: LEAF,
            right: LEAF,
            default_left: true,
            missing: MissingType::NaN,
            categories: None,
        };
        let mut nodes = Vec::new();
        for k in 0..=MAX_FEATURES_ON_PATH as u32 {
            nodes.push(Node {
                feature: k,
                left: 2 * k + 1,
                right: 2 * k + 2,
                ..leaf.clone()
            });
            nodes.push(leaf.clone());
        }
        nodes.push(leaf);
        let covers = vec![1.0; nodes.len()];
        let tree = Tree {
            nodes,
            categories: Vec::new(),
            covers: Vec::new(),
        };
        let explained = Explained {
            tree: &tree,
            covers: &covers,
            rule: SplitRule::Library(Routing::Xgboost),
            values: NodeValues::InNodes,
        };
        assert!(TreeTables::build(&explained).is_none());
    }
}
