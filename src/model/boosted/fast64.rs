//! LightGBM trees compiled for speed, as `fast.rs` compiles XGBoost's: 24-byte nodes with the
//! f64 threshold LightGBM compares against (`x <= t` goes left), the node's missing type and
//! default direction in the feature's flag bits, and leaves that point to themselves, so a walk
//! is the tree's depth in steps with no branch on the way down. Evaluates exactly like
//! [`Tree::leaf_value`] with LightGBM's routing; a tree with categorical splits keeps the
//! general path.

use super::tree::{LEAF, MissingType, Tree, ZERO};

/// Flag bits of [`Node64::feature`].
const DEFAULT_LEFT: u32 = 1 << 30;
/// `missing_type` Zero: |x| ≤ 1e-35 and NaN take the default direction.
const MISSING_ZERO: u32 = 1 << 29;
/// `missing_type` NaN: NaN takes the default direction (None: NaN is read as 0.0).
const MISSING_NAN: u32 = 1 << 28;
const FEATURE: u32 = MISSING_NAN - 1;

/// One node, 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node64 {
    /// The threshold (`x <= threshold` goes left), or the leaf value.
    threshold: f64,
    /// The feature tested, with the flags.
    feature: u32,
    left: u32,
    right: u32,
}

/// One compiled LightGBM tree: its nodes, the root first.
#[derive(Debug, Clone, PartialEq)]
pub struct FastTree64 {
    nodes: Vec<Node64>,
    depth: usize,
}

impl FastTree64 {
    /// The tree compiled, or `None` when it has a categorical split (or a feature index too
    /// large for the flags).
    pub fn compile(tree: &Tree) -> Option<FastTree64> {
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for (index, node) in tree.nodes.iter().enumerate() {
            if node.left == LEAF {
                let itself = u32::try_from(index).ok()?;
                nodes.push(Node64 {
                    threshold: node.value,
                    feature: 0,
                    left: itself,
                    right: itself,
                });
                continue;
            }
            if node.categories.is_some() || node.feature > FEATURE {
                return None;
            }
            let missing = match node.missing {
                MissingType::None => 0,
                MissingType::Zero => MISSING_ZERO,
                MissingType::NaN => MISSING_NAN,
            };
            let default = if node.default_left { DEFAULT_LEFT } else { 0 };
            nodes.push(Node64 {
                threshold: node.value,
                feature: node.feature | missing | default,
                left: node.left,
                right: node.right,
            });
        }
        let depth = super::fast::depth_of(tree)?;
        Some(FastTree64 { nodes, depth })
    }

    /// The node one step below node `index` for `row` (NaN for missing); a leaf's step is
    /// itself.
    #[inline]
    fn step(&self, index: usize, row: &[f64]) -> usize {
        let node = self.nodes[index];
        let flags = node.feature;
        let raw = row
            .get((flags & FEATURE) as usize)
            .copied()
            .unwrap_or(f64::NAN);
        let nan = raw.is_nan();
        // LightGBM reads |x| <= 1e-35 as 0, and NaN as 0 outside missing type NaN.
        let x = if (nan & (flags & MISSING_NAN == 0)) | (raw.abs() <= ZERO) {
            0.0
        } else {
            raw
        };
        let missing =
            ((flags & MISSING_ZERO != 0) & (x == 0.0)) | ((flags & MISSING_NAN != 0) & nan);
        let left = if missing {
            flags & DEFAULT_LEFT != 0
        } else {
            x <= node.threshold
        };
        [node.right, node.left][usize::from(left)] as usize
    }

    /// The leaf value `row` reaches.
    #[inline]
    pub fn leaf_value(&self, row: &[f64]) -> f64 {
        let mut index = 0usize;
        for _ in 0..self.depth {
            index = self.step(index, row);
        }
        self.nodes[index].threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boosted::{Node, Routing};

    fn split(feature: u32, value: f64, missing: MissingType, default_left: bool) -> Node {
        Node {
            feature,
            value,
            left: 1,
            right: 2,
            default_left,
            missing,
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

    #[test]
    fn a_value_within_1e_35_of_zero_is_zero_as_lightgbm_reads_it() {
        // LightGBM puts thresholds at ±kZeroThreshold; its predictor reads -1e-35 as 0, which
        // is above the threshold -1e-35 (checked against lightgbm 4.7.0's predict).
        let tree = Tree {
            nodes: vec![
                split(0, -ZERO, MissingType::NaN, true),
                leaf(1.0),
                leaf(2.0),
            ],
            categories: Vec::new(),
            covers: Vec::new(),
        };
        let fast = FastTree64::compile(&tree).unwrap();
        assert_eq!(tree.leaf_value(&[-ZERO], Routing::LightGbm), 2.0);
        assert_eq!(fast.leaf_value(&[-ZERO]), 2.0);
        assert_eq!(fast.leaf_value(&[-2e-35]), 1.0);
    }

    #[test]
    fn every_missing_type_routes_as_the_general_path() {
        let cases = [
            -1.0,
            -1e-36,
            0.0,
            1e-36,
            0.25,
            0.5,
            0.5000000000000001,
            2.0,
            f64::NAN,
        ];
        for missing in [MissingType::None, MissingType::Zero, MissingType::NaN] {
            for default_left in [false, true] {
                for threshold in [0.5, -0.5, 1.0000000180025095e-35, -1.0000000180025095e-35] {
                    let tree = Tree {
                        nodes: vec![
                            split(0, threshold, missing, default_left),
                            leaf(1.0),
                            leaf(2.0),
                        ],
                        categories: Vec::new(),
                        covers: Vec::new(),
                    };
                    let fast = FastTree64::compile(&tree).unwrap();
                    for x in cases {
                        assert_eq!(
                            fast.leaf_value(&[x]),
                            tree.leaf_value(&[x], Routing::LightGbm),
                            "{missing:?} default_left {default_left} threshold {threshold} x {x}"
                        );
                    }
                }
            }
        }
    }
}
