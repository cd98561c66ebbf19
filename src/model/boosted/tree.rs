//! One decision tree of a boosted model, laid out flat: nodes in one array, each with its
//! split or its leaf value, children by index. Routing follows the library that wrote the
//! tree exactly (../shared/notes/boosted-trees.md, section 4): XGBoost compares the input
//! rounded to f32 with an f32 threshold (`x < t` goes left) and sends a missing value its
//! node's default way; LightGBM compares in f64 (`x <= t` goes left) and treats a missing value
//! by its node's missing type.

use serde::{Deserialize, Serialize};

/// Marks a leaf in [`Node::left`].
pub const LEAF: u32 = u32::MAX;

/// LightGBM's `kZeroThreshold` (`1e-35f`, as a double): a value this close to 0 is 0.
pub(super) const ZERO: f64 = 1.0000000180025095e-35;

/// How a LightGBM node treats a missing value (its `decision_type` bits 2–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingType {
    /// No missing values in training: NaN is taken as 0.0.
    None,
    /// Zero (|x| ≤ 1e-35) and NaN take the default direction (`zero_as_missing`).
    Zero,
    /// NaN takes the default direction.
    NaN,
}

/// One node: a split, or a leaf (`left == LEAF`, its value in `value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The feature (column) tested.
    pub feature: u32,
    /// The split threshold, or the leaf value.
    pub value: f64,
    /// Left child, or [`LEAF`].
    pub left: u32,
    /// Right child.
    pub right: u32,
    /// Whether a missing value goes left.
    pub default_left: bool,
    /// LightGBM's missing type (XGBoost nodes: `NaN`).
    pub missing: MissingType,
    /// A categorical split: the range of its category-code bitset in [`Tree::categories`].
    pub categories: Option<(u32, u32)>,
}

/// A tree: its nodes (the root first) and the bitsets of its categorical splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes; node 0 is the root.
    pub nodes: Vec<Node>,
    /// Bitset words of categorical splits: bit `c % 32` of word `c / 32` is category code `c`.
    pub categories: Vec<u32>,
    /// Each node's training cover, by node index, for TreeSHAP (`shap.rs`): XGBoost's
    /// `sum_hessian`, LightGBM's `internal_count` / `leaf_count`, the hessian sums of trees
    /// mlserve grows. Empty when the file has none. Kept after the trees in model.bin, so a
    /// file without them still loads (see `model::artifact`).
    #[serde(skip)]
    pub covers: Vec<f64>,
}

/// Which library's rules a tree follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Routing {
    /// XGBoost's: f32 comparisons, `x < t` left, listed categories right.
    Xgboost,
    /// LightGBM's: f64 comparisons, `x <= t` left, bitset categories left.
    LightGbm,
}

impl Tree {
    /// The leaf value the row reaches. `row` holds the features by column, NaN for missing.
    pub fn leaf_value(&self, row: &[f64], routing: Routing) -> f64 {
        let mut index = 0usize;
        // Trees are checked acyclic and in bounds at load; the step limit is a second guard.
        for _ in 0..self.nodes.len() {
            let node = &self.nodes[index];
            if node.left == LEAF {
                return node.value;
            }
            index = self.child(node, row, routing);
        }
        f64::NAN
    }

    /// The child of split `node` that `row` goes to, by the library's rules.
    pub fn child(&self, node: &Node, row: &[f64], routing: Routing) -> usize {
        let x = row.get(node.feature as usize).copied().unwrap_or(f64::NAN);
        let left = match routing {
            Routing::Xgboost => self.xgboost_goes_left(node, x),
            Routing::LightGbm => self.lightgbm_goes_left(node, x),
        };
        (if left { node.left } else { node.right }) as usize
    }

    fn in_set(&self, node: &Node, code: f64) -> Option<bool> {
        let (start, end) = node.categories?;
        let code = code.trunc();
        if code < 0.0 {
            return Some(false);
        }
        let code = code as u64;
        let word = usize::try_from(code / 32).ok()?;
        let words = &self.categories[start as usize..end as usize];
        Some(words.get(word).is_some_and(|w| w >> (code % 32) & 1 == 1))
    }

    fn xgboost_goes_left(&self, node: &Node, x: f64) -> bool {
        if x.is_nan() {
            return node.default_left;
        }
        if node.categories.is_some() {
            // XGBoost reads the code as f32: negative goes left (−0.5 too), 1.9999999999 is 2;
            // the listed codes go right, unlisted ones left.
            let code = f64::from(x as f32);
            if code < 0.0 {
                return true;
            }
            return !self.in_set(node, code).unwrap_or(false);
        }
        (x as f32) < (node.value as f32)
    }

    fn lightgbm_goes_left(&self, node: &Node, x: f64) -> bool {
        if node.categories.is_some() {
            // Bitset members go left; NaN, negative and unknown codes right.
            return !x.is_nan() && self.in_set(node, x).unwrap_or(false);
        }
        // LightGBM's predictor reads |x| <= kZeroThreshold (1e-35f) as 0, and NaN as 0 unless
        // the node's missing type is NaN.
        let x = if (x.is_nan() && node.missing != MissingType::NaN) || x.abs() <= ZERO {
            0.0
        } else {
            x
        };
        let zero = node.missing == MissingType::Zero && x == 0.0;
        if zero || (node.missing == MissingType::NaN && x.is_nan()) {
            return node.default_left;
        }
        x <= node.value
    }

    /// Whether the covers fit the tree: one finite, non-negative cover per node.
    pub fn covers_fit(&self) -> bool {
        self.covers.len() == self.nodes.len()
            && self.covers.iter().all(|c| c.is_finite() && *c >= 0.0)
    }

    /// Checks that every child index is in bounds, every node is reached from the root once
    /// at most (no cycles, no sharing), every split's feature is below `features` and every
    /// bitset range is in bounds. A file that fails is refused, never walked.
    pub fn check(&self, features: usize) -> Result<(), String> {
        let n = self.nodes.len();
        if n == 0 {
            return Err("a tree has no nodes".to_string());
        }
        let mut seen = vec![false; n];
        let mut stack = vec![0usize];
        while let Some(index) = stack.pop() {
            if std::mem::replace(&mut seen[index], true) {
                return Err(format!("node {index} is reached twice"));
            }
            let node = &self.nodes[index];
            if node.left == LEAF {
                continue;
            }
            if node.feature as usize >= features {
                return Err(format!(
                    "node {index} splits on feature {}, but the model has {features}",
                    node.feature
                ));
            }
            if let Some((start, end)) = node.categories
                && (start > end || end as usize > self.categories.len())
            {
                return Err(format!("node {index}'s categories are out of bounds"));
            }
            for child in [node.left, node.right] {
                if child as usize >= n {
                    return Err(format!("node {index} has a child {child} out of bounds"));
                }
                stack.push(child as usize);
            }
        }
        Ok(())
    }
}
