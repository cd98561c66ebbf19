//! Path-dependent TreeSHAP: each feature's exact Shapley contribution to one tree's output for
//! one row (Lundberg, Erion and Lee 2018, "Consistent individualized feature attribution for
//! tree ensembles", Algorithm 2), as XGBoost's `pred_contribs` and LightGBM's `pred_contrib`
//! compute it. The value of a coalition S is the tree's expected output when the features in S
//! take the row's values and the others follow the training data down each split, weighted by
//! the children's covers (XGBoost's hessian sums, LightGBM's row counts). The hot child of a
//! split is the one the row goes to by the library's own rules (missing values and categories
//! included), so a missing value is not "absent": it has a contribution of its own.
//! The same algorithm explains mlserve's own decision trees and forests ([`SplitRule::AtMost`],
//! class shares from a table: [`NodeValues::Table`]), every class in one walk.

use super::tree::{LEAF, Node, Routing, Tree};

/// One element of the path of unique features from the root to a node.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// The feature, or `None` for the root's element.
    feature: Option<usize>,
    /// Share of the training cover that takes this path without the feature fixed.
    zero: f64,
    /// 1 if the row itself takes this path (the feature fixed to the row's value), else 0.
    one: f64,
    /// Weight of the subsets of a given size, as Algorithm 2's EXTEND builds it.
    weight: f64,
}

/// Algorithm 2's EXTEND: adds a feature to the path of `len` elements, updating the subset
/// weights; the path then has `len + 1`.
fn extend(path: &mut [PathElement], len: usize, zero: f64, one: f64, feature: Option<usize>) {
    path[len] = PathElement {
        feature,
        zero,
        one,
        weight: if len == 0 { 1.0 } else { 0.0 },
    };
    for i in (0..len).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / (len + 1) as f64;
        path[i].weight = zero * path[i].weight * (len - i) as f64 / (len + 1) as f64;
    }
}

/// Algorithm 2's UNWIND: takes element `index` back out of the path of `len` elements (a
/// feature met again further down is counted once); the path then has `len − 1`.
fn unwind(path: &mut [PathElement], len: usize, index: usize) {
    let depth = len - 1;
    let PathElement { zero, one, .. } = path[index];
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let kept = path[i].weight;
            path[i].weight = next * (depth + 1) as f64 / ((i + 1) as f64 * one);
            next = kept - path[i].weight * zero * (depth - i) as f64 / (depth + 1) as f64;
        } else {
            path[i].weight = path[i].weight * (depth + 1) as f64 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// The total weight of the path with element `index` unwound, without changing it.
fn unwound_sum(path: &[PathElement], index: usize) -> f64 {
    let depth = path.len() - 1;
    let PathElement { zero, one, .. } = path[index];
    let mut next = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let share = next * (depth + 1) as f64 / ((i + 1) as f64 * one);
            total += share;
            next = path[i].weight - share * zero * ((depth - i) as f64 / (depth + 1) as f64);
        } else if zero != 0.0 {
            total += (path[i].weight / zero) / ((depth - i) as f64 / (depth + 1) as f64);
        }
    }
    total
}

/// The number of splits on the longest way from the root to a leaf.
fn depth_of(tree: &Tree) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((index, depth)) = stack.pop() {
        match tree.nodes.get(index) {
            Some(node) if node.left != LEAF && depth < tree.nodes.len() => {
                stack.push((node.left as usize, depth + 1));
                stack.push((node.right as usize, depth + 1));
            }
            _ => deepest = deepest.max(depth),
        }
    }
    deepest
}

/// How a split sends a row on: by a library's rules, or `x <= threshold` in f64 (mlserve's
/// own decision trees and forests, whose columns are never missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitRule {
    /// XGBoost's or LightGBM's rules (see [`Tree::child`]).
    Library(Routing),
    /// Left when the value is at most the node's threshold (scikit-learn's rule).
    AtMost,
}

/// Where each node's output values are: in the node itself (one output), or in a table of
/// `width` values a node (a native tree's class shares), of which `outputs` are explained,
/// from column `first` on (the second class alone for a binary classifier).
#[derive(Debug, Clone, Copy)]
pub enum NodeValues<'a> {
    /// [`Node::value`](super::Node::value), one output.
    InNodes,
    /// `values[node × width + first + k]` is output `k` of a node.
    Table {
        /// Every node's values, node after node.
        values: &'a [f64],
        /// Values a node.
        width: usize,
        /// The first explained column.
        first: usize,
        /// How many columns are explained.
        outputs: usize,
    },
}

impl NodeValues<'_> {
    /// How many outputs are explained.
    pub fn outputs(&self) -> usize {
        match self {
            NodeValues::InNodes => 1,
            NodeValues::Table { outputs, .. } => *outputs,
        }
    }
}

/// A tree with the cover of each node, ready to explain.
pub struct Explained<'a> {
    /// The tree.
    pub tree: &'a Tree,
    /// Each node's training cover, by node index.
    pub covers: &'a [f64],
    /// How splits send a row on.
    pub rule: SplitRule,
    /// Where the node values are.
    pub values: NodeValues<'a>,
}

impl Explained<'_> {
    /// Output `k`'s value at node `index`.
    pub fn value(&self, index: usize, k: usize) -> f64 {
        match self.values {
            NodeValues::InNodes => self.tree.nodes[index].value,
            NodeValues::Table {
                values,
                width,
                first,
                ..
            } => values
                .get(index * width + first + k)
                .copied()
                .unwrap_or(0.0),
        }
    }

    /// The child of split `node` the row goes to.
    pub fn hot_child(&self, node: &Node, row: &[f64]) -> usize {
        match self.rule {
            SplitRule::Library(routing) => self.tree.child(node, row, routing),
            SplitRule::AtMost => {
                let x = row.get(node.feature as usize).copied().unwrap_or(f64::NAN);
                (if x <= node.value {
                    node.left
                } else {
                    node.right
                }) as usize
            }
        }
    }

    /// Adds the tree's expected output over the training data to `base` (one slot per
    /// output): its leaves weighted by their covers, the bias each row's contributions start
    /// from. The same for every row: compute it once per model.
    pub fn add_expected_values(&self, base: &mut [f64]) {
        for (k, slot) in base.iter_mut().enumerate().take(self.values.outputs()) {
            *slot += self.expected_below(0, k);
        }
    }

    fn expected_below(&self, index: usize, k: usize) -> f64 {
        let node = &self.tree.nodes[index];
        if node.left == LEAF {
            return self.value(index, k);
        }
        let (left, right) = (node.left as usize, node.right as usize);
        let cover = self.covers[index];
        if cover <= 0.0 {
            return 0.0;
        }
        (self.expected_below(left, k) * self.covers[left]
            + self.expected_below(right, k) * self.covers[right])
            / cover
    }

    /// Adds each feature's contribution to this tree's outputs for `row` (features by column,
    /// NaN for missing) to `phi`, laid out `[outputs][features]`. The contributions and the
    /// expected values ([`Explained::add_expected_values`]) add up to the tree's output.
    pub fn add_contributions(&self, row: &[f64], phi: &mut [f64]) {
        // One buffer for every node's path, as XGBoost lays them out: the path at depth d has
        // at most d + 2 elements and follows its parent's in the buffer.
        let depth = depth_of(self.tree);
        let mut buffer = vec![PathElement::default(); (depth + 2) * (depth + 3) / 2];
        self.recurse(0, &mut buffer, 0, 1.0, 1.0, None, row, phi);
    }

    /// Visits node `index` with the parent's path (`parent_len` elements) at the start of
    /// `buffer`; this node's path goes right after it.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &self,
        index: usize,
        buffer: &mut [PathElement],
        parent_len: usize,
        zero: f64,
        one: f64,
        feature: Option<usize>,
        row: &[f64],
        phi: &mut [f64],
    ) {
        let (parent, rest) = buffer.split_at_mut(parent_len);
        rest[..parent_len].copy_from_slice(parent);
        extend(rest, parent_len, zero, one, feature);
        let mut len = parent_len + 1;
        let node = &self.tree.nodes[index];
        if node.left == LEAF {
            self.add_leaf(index, &rest[..len], phi);
            return;
        }
        let hot = self.hot_child(node, row);
        let cold = if hot == node.left as usize {
            node.right as usize
        } else {
            node.left as usize
        };
        let cover = self.covers[index];
        let share = |child: usize| {
            if cover > 0.0 {
                self.covers[child] / cover
            } else {
                0.0
            }
        };
        let split_feature = node.feature as usize;
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        if let Some(seen) = rest[..len]
            .iter()
            .position(|e| e.feature == Some(split_feature))
        {
            incoming_zero = rest[seen].zero;
            incoming_one = rest[seen].one;
            unwind(rest, len, seen);
            len -= 1;
        }
        let feature = Some(split_feature);
        let (hot_zero, cold_zero) = (share(hot) * incoming_zero, share(cold) * incoming_zero);
        self.recurse(hot, rest, len, hot_zero, incoming_one, feature, row, phi);
        self.recurse(cold, rest, len, cold_zero, 0.0, feature, row, phi);
    }

    /// A leaf's share of each feature on its path, for every output.
    fn add_leaf(&self, index: usize, path: &[PathElement], phi: &mut [f64]) {
        // A feature the row does not follow, on a branch without cover, makes every
        // coalition's value here 0: nothing to add (and unwinding it would divide by 0).
        if path.iter().any(|e| e.zero == 0.0 && e.one == 0.0) {
            return;
        }
        let outputs = self.values.outputs();
        let features = phi.len() / outputs.max(1);
        for i in 1..path.len() {
            let element = path[i];
            let Some(feature) = element.feature.filter(|&f| f < features) else {
                continue;
            };
            let weight = unwound_sum(path, i) * (element.one - element.zero);
            for k in 0..outputs {
                phi[k * features + feature] += weight * self.value(index, k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boosted::{MissingType, Node};

    fn split(feature: u32, value: f64, left: u32, right: u32, default_left: bool) -> Node {
        Node {
            feature,
            value,
            left,
            right,
            default_left,
            missing: MissingType::NaN,
            categories: None,
        }
    }

    fn leaf(value: f64) -> Node {
        Node {
            feature: 0,
            value,
            left: LEAF,
            right: LEAF,
            default_left: false,
            missing: MissingType::NaN,
            categories: None,
        }
    }

    /// A depth-4 tree over 4 features where features repeat on a path, with covers whose
    /// children add up to their parent.
    fn tree() -> (Tree, Vec<f64>) {
        let nodes = vec![
            split(0, 0.5, 1, 2, true),    // 0
            split(1, 0.0, 3, 4, false),   // 1
            split(2, 1.0, 5, 6, true),    // 2
            split(0, 0.2, 7, 8, false),   // 3: feature 0 again
            leaf(2.0),                    // 4
            split(3, -1.0, 9, 10, false), // 5
            leaf(-1.5),                   // 6
            leaf(0.75),                   // 7
            leaf(-0.25),                  // 8
            leaf(3.0),                    // 9
            split(2, 0.3, 11, 12, true),  // 10: feature 2 again
            leaf(1.25),                   // 11
            leaf(-2.0),                   // 12
        ];
        let mut covers = vec![0.0; nodes.len()];
        let leaves = [
            (4, 30.0),
            (6, 12.0),
            (7, 9.0),
            (8, 21.0),
            (9, 5.0),
            (11, 7.5),
            (12, 15.5),
        ];
        for (index, cover) in leaves {
            covers[index] = cover;
        }
        for index in (0..nodes.len()).rev() {
            if nodes[index].left != LEAF {
                covers[index] =
                    covers[nodes[index].left as usize] + covers[nodes[index].right as usize];
            }
        }
        (
            Tree {
                nodes,
                categories: Vec::new(),
                covers: Vec::new(),
            },
            covers,
        )
    }

    /// E[f | x_S]: features in `fixed` follow the row, the others split by cover.
    fn conditional(explained: &Explained, index: usize, row: &[f64], fixed: u32) -> f64 {
        let node = &explained.tree.nodes[index];
        if node.left == LEAF {
            return node.value;
        }
        if fixed >> node.feature & 1 == 1 {
            let next = explained.hot_child(node, row);
            return conditional(explained, next, row, fixed);
        }
        let (l, r) = (node.left as usize, node.right as usize);
        (conditional(explained, l, row, fixed) * explained.covers[l]
            + conditional(explained, r, row, fixed) * explained.covers[r])
            / explained.covers[index]
    }

    /// Exact Shapley values over every subset of the 4 features.
    fn brute_force(explained: &Explained, row: &[f64]) -> Vec<f64> {
        let n = 4;
        let factorial = |k: usize| (1..=k).product::<usize>() as f64;
        (0..n)
            .map(|i| {
                (0..1u32 << n)
                    .filter(|subset| subset >> i & 1 == 0)
                    .map(|subset| {
                        let size = subset.count_ones() as usize;
                        let weight = factorial(size) * factorial(n - size - 1) / factorial(n);
                        weight
                            * (conditional(explained, 0, row, subset | 1 << i)
                                - conditional(explained, 0, row, subset))
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn contributions_are_the_exact_shapley_values_and_add_up_to_the_output() {
        let (tree, covers) = tree();
        let rows = [
            [0.1, -1.0, 2.0, 0.0],
            [0.9, 1.0, 0.5, -3.0],
            [0.3, 0.5, 0.2, -2.0],
            [f64::NAN, 1.0, f64::NAN, 5.0],
            [0.6, f64::NAN, 0.25, f64::NAN],
        ];
        for routing in [Routing::Xgboost, Routing::LightGbm] {
            let explained = Explained {
                tree: &tree,
                covers: &covers,
                rule: SplitRule::Library(routing),
                values: NodeValues::InNodes,
            };
            for row in rows {
                let mut phi = vec![0.0; 4];
                explained.add_contributions(&row, &mut phi);
                let exact = brute_force(&explained, &row);
                for (ours, want) in phi.iter().zip(&exact) {
                    assert!((ours - want).abs() < 1e-12, "{row:?}: {phi:?} vs {exact:?}");
                }
                let mut base = [0.0];
                explained.add_expected_values(&mut base);
                let total = base[0] + phi.iter().sum::<f64>();
                let output = tree.leaf_value(&row, routing);
                assert!(
                    (total - output).abs() < 1e-12,
                    "{row:?}: {total} vs {output}"
                );
            }
        }
    }
}
