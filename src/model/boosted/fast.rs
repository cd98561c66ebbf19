//! XGBoost trees compiled for speed: 16-byte nodes (feature and flags, f32 threshold or leaf
//! value, two children), the row rounded to f32 once instead of at every node, and leaves
//! summed in f32 as XGBoost sums them. A leaf points to itself, so a walk takes exactly the
//! tree's depth in steps with no test for "is this a leaf" and no branch on the way down (the
//! way is data, not a pattern a branch predictor learns). Built at load from the [`Tree`]s it
//! evaluates exactly like; a tree with categorical splits keeps the general path.

use super::tree::{LEAF, Tree};

/// Bit of [`FastNode::feature`]: a missing value goes left.
const DEFAULT_LEFT: u32 = 1 << 30;
const FEATURE: u32 = DEFAULT_LEFT - 1;

/// One node, 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FastNode {
    /// The feature tested, with [`DEFAULT_LEFT`].
    feature: u32,
    /// The f32 threshold (`x < threshold` goes left), or the leaf value.
    threshold: f32,
    left: u32,
    right: u32,
}

/// One compiled tree: its nodes, the root first.
#[derive(Debug, Clone, PartialEq)]
pub struct FastTree {
    nodes: Vec<FastNode>,
    /// Splits on the longest way from the root to a leaf.
    depth: usize,
}

impl FastTree {
    /// The tree compiled, or `None` when it has a categorical split (or a feature index too
    /// large for the flags), which the general path evaluates.
    pub fn compile(tree: &Tree) -> Option<FastTree> {
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for (index, node) in tree.nodes.iter().enumerate() {
            if node.left == LEAF {
                let itself = u32::try_from(index).ok()?;
                nodes.push(FastNode {
                    feature: 0,
                    threshold: node.value as f32,
                    left: itself,
                    right: itself,
                });
                continue;
            }
            if node.categories.is_some() || node.feature > FEATURE {
                return None;
            }
            nodes.push(FastNode {
                feature: node.feature | if node.default_left { DEFAULT_LEFT } else { 0 },
                threshold: node.value as f32,
                left: node.left,
                right: node.right,
            });
        }
        let depth = depth_of(tree)?;
        Some(FastTree { nodes, depth })
    }

    /// The node one step below node `index` for `row` (the features rounded to f32, NaN for
    /// missing); a leaf's step is itself. Without branches (the way down is data, not a
    /// pattern a predictor learns): NaN fails `x < t`, so only a missing value's default can
    /// send it left then.
    #[inline]
    fn step(&self, index: usize, row: &[f32]) -> usize {
        let node = self.nodes[index];
        let x = row
            .get((node.feature & FEATURE) as usize)
            .copied()
            .unwrap_or(f32::NAN);
        let left = (x < node.threshold) | (x.is_nan() & (node.feature & DEFAULT_LEFT != 0));
        [node.right, node.left][usize::from(left)] as usize
    }

    /// The leaf value `row` reaches.
    #[inline]
    pub fn leaf_value(&self, row: &[f32]) -> f32 {
        let mut index = 0usize;
        for _ in 0..self.depth {
            index = self.step(index, row);
        }
        self.nodes[index].threshold
    }

    /// The leaf values of `N` rows (`rows` holds them one after another, `features` each),
    /// walked side by side through this tree, as [`leaf_values`] walks trees side by side.
    #[inline]
    pub fn leaf_values_of_rows<const N: usize>(&self, rows: &[f32], features: usize) -> [f32; N] {
        let mut index = [0usize; N];
        for _ in 0..self.depth {
            for (r, at) in index.iter_mut().enumerate() {
                *at = self.step(*at, rows.get(r * features..).unwrap_or_default());
            }
        }
        index.map(|at| self.nodes[at].threshold)
    }
}

/// The leaf values `row` reaches in several trees, walked side by side: their loads are
/// independent, so the processor overlaps them where one walk would wait for each in turn. A
/// leaf points to itself, so the shallower trees just stay on their leaf.
#[inline]
pub fn leaf_values<const N: usize>(trees: [&FastTree; N], row: &[f32]) -> [f32; N] {
    let depth = trees.iter().map(|t| t.depth).max().unwrap_or(0);
    let mut index = [0usize; N];
    for _ in 0..depth {
        for (at, tree) in index.iter_mut().zip(&trees) {
            *at = tree.step(*at, row);
        }
    }
    let mut values = [0f32; N];
    for ((value, at), tree) in values.iter_mut().zip(index).zip(&trees) {
        *value = tree.nodes[at].threshold;
    }
    values
}

/// The number of splits on the longest way from the root to a leaf (the tree was checked
/// acyclic, every child in bounds); `None` past 64, which no boosted tree reaches.
pub(super) fn depth_of(tree: &Tree) -> Option<usize> {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((index, depth)) = stack.pop() {
        let node = tree.nodes.get(index)?;
        if node.left == LEAF {
            deepest = deepest.max(depth);
        } else if depth < 64 {
            stack.push((node.left as usize, depth + 1));
            stack.push((node.right as usize, depth + 1));
        } else {
            return None;
        }
    }
    Some(deepest)
}
