//! Growing one tree of a boosted ensemble leaf by leaf, best split first (LightGBM's
//! leaf-wise growth, as scikit-learn's `TreeGrower`): the open leaf whose split gains most is
//! split next, until `max_leaves` leaves or no split gains. The smaller child's histogram is
//! built from its rows and the larger one's is the parent's minus it.

use super::bins::{BinnedRows, FeatureBins};
use super::split::{Layout, Limits, Rule, Split, Sums, best_split};
use crate::model::boosted::{LEAF, MissingType, Node, Tree};
use std::ops::Range;

/// How a tree may grow.
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    /// Leaves at most.
    pub max_leaves: usize,
    /// Depth at most (edges from the root).
    pub max_depth: Option<usize>,
    /// Shrinkage of leaf values.
    pub learning_rate: f64,
    /// Split limits.
    pub limits: Limits,
}

/// The training data a tree grows on.
pub struct GrowData<'a> {
    /// Bins of every training row.
    pub binned: &'a BinnedRows,
    /// Each feature's bins.
    pub features: &'a [FeatureBins],
    /// Histogram layout of those features.
    pub layout: &'a Layout,
}

/// A grown tree and, for each of its leaves, the range of `rows` (as reordered) that reached
/// it and its value.
pub struct Grown {
    /// The tree, in the served form (XGBoost's routing rules).
    pub tree: Tree,
    /// Rows by leaf.
    pub leaves: Vec<(Range<usize>, f64)>,
}

struct Open {
    node: usize,
    rows: Range<usize>,
    depth: usize,
    histogram: Vec<Sums>,
    split: Option<Split>,
}

/// Grows a tree on `rows` (reordered in place so each leaf's rows are contiguous) with
/// gradients `g` and hessians `h` indexed by row.
pub fn grow(data: &GrowData, rows: &mut [u32], g: &[f64], h: &[f64], growth: Growth) -> Grown {
    let histogram = data.layout.histogram(data.binned, rows, g, h);
    // Each node's hessian sum is its cover, as XGBoost's `sum_hessian` (TreeSHAP's weights).
    let mut tree = Tree {
        nodes: vec![leaf_node()],
        categories: Vec::new(),
        covers: vec![data.layout.total(&histogram).h],
    };
    let mut open = vec![open_leaf(data, 0, 0..rows.len(), 0, histogram, growth)];
    let mut done: Vec<Open> = Vec::new();
    while open.len() + done.len() < growth.max_leaves {
        let Some(best) = best_open(&open) else { break };
        let parent = open.swap_remove(best);
        let Some(split) = parent.split.clone() else {
            done.push(parent);
            continue;
        };
        let children = split_leaf(data, &mut tree, rows, g, h, parent, &split, growth);
        open.extend(children);
    }
    done.extend(open);
    let leaves = done
        .into_iter()
        .map(|leaf| {
            let total = data.layout.total(&leaf.histogram);
            let value = leaf_value(total, growth);
            tree.nodes[leaf.node].value = value;
            (leaf.rows, value)
        })
        .collect();
    Grown { tree, leaves }
}

fn best_open(open: &[Open]) -> Option<usize> {
    open.iter()
        .enumerate()
        .filter_map(|(i, leaf)| leaf.split.as_ref().map(|s| (i, s.gain)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

/// `−learning_rate · G / (H + λ)`, rounded to f32 as the served trees keep it.
fn leaf_value(total: Sums, growth: Growth) -> f64 {
    let value = -growth.learning_rate * total.g / (total.h + growth.limits.l2);
    f64::from(value as f32)
}

fn leaf_node() -> Node {
    Node {
        feature: 0,
        value: 0.0,
        left: LEAF,
        right: LEAF,
        default_left: true,
        missing: MissingType::NaN,
        categories: None,
    }
}

fn open_leaf(
    data: &GrowData,
    node: usize,
    rows: Range<usize>,
    depth: usize,
    histogram: Vec<Sums>,
    growth: Growth,
) -> Open {
    let deep_enough = growth.max_depth.is_some_and(|max| depth >= max);
    let too_few = rows.len() < 2 * growth.limits.min_samples_leaf as usize;
    let split = if deep_enough || too_few {
        None
    } else {
        best_split(data.layout, &histogram, data.features, growth.limits)
    };
    Open {
        node,
        rows,
        depth,
        histogram,
        split,
    }
}

#[allow(clippy::too_many_arguments)]
fn split_leaf(
    data: &GrowData,
    tree: &mut Tree,
    rows: &mut [u32],
    g: &[f64],
    h: &[f64],
    parent: Open,
    split: &Split,
    growth: Growth,
) -> [Open; 2] {
    let column = data.binned.column(split.feature);
    let range = parent.rows.clone();
    let middle = range.start
        + partition(&mut rows[range.clone()], |row| {
            split.goes_left(column[row as usize])
        });
    let (left_rows, right_rows) = (range.start..middle, middle..range.end);
    let left_node = tree.nodes.len();
    tree.nodes.push(leaf_node());
    tree.nodes.push(leaf_node());
    tree.covers.extend([0.0, 0.0]);
    set_split(tree, parent.node, split, data.features, left_node);
    let left_smaller = left_rows.len() <= right_rows.len();
    let small_rows = if left_smaller {
        &left_rows
    } else {
        &right_rows
    };
    let small = data
        .layout
        .histogram(data.binned, &rows[small_rows.clone()], g, h);
    let large = Layout::subtract(&parent.histogram, &small);
    let (left_histogram, right_histogram) = if left_smaller {
        (small, large)
    } else {
        (large, small)
    };
    tree.covers[left_node] = data.layout.total(&left_histogram).h;
    tree.covers[left_node + 1] = data.layout.total(&right_histogram).h;
    let depth = parent.depth + 1;
    [
        open_leaf(data, left_node, left_rows, depth, left_histogram, growth),
        open_leaf(
            data,
            left_node + 1,
            right_rows,
            depth,
            right_histogram,
            growth,
        ),
    ]
}

/// Moves the rows that go left to the front; returns how many there are.
fn partition(rows: &mut [u32], goes_left: impl Fn(u32) -> bool) -> usize {
    let mut next = 0;
    for i in 0..rows.len() {
        if goes_left(rows[i]) {
            rows.swap(i, next);
            next += 1;
        }
    }
    next
}

fn set_split(tree: &mut Tree, node: usize, split: &Split, features: &[FeatureBins], left: usize) {
    let categories = match &split.rule {
        Rule::UpTo(_) | Rule::MissingOnly => None,
        Rule::CategoriesRight(codes) => {
            let start = tree.categories.len();
            let words = codes
                .iter()
                .map(|&c| c as usize / 32 + 1)
                .max()
                .unwrap_or(0);
            tree.categories.resize(start + words, 0);
            for &code in codes {
                tree.categories[start + code as usize / 32] |= 1 << (code % 32);
            }
            Some((start as u32, (start + words) as u32))
        }
    };
    let threshold = match (&split.rule, &features[split.feature]) {
        (Rule::UpTo(bin), FeatureBins::Numeric { thresholds }) => {
            f64::from(thresholds[*bin as usize])
        }
        // No number is below −∞: every present value (a category's code too) goes right,
        // and missing values their default way, left.
        (Rule::MissingOnly, _) => f64::NEG_INFINITY,
        _ => 0.0,
    };
    tree.nodes[node] = Node {
        feature: split.feature as u32,
        value: threshold,
        left: left as u32,
        right: left as u32 + 1,
        default_left: split.missing_left,
        missing: MissingType::NaN,
        categories,
    };
}
