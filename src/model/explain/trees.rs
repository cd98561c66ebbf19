//! Path-dependent TreeSHAP for every tree model: mlserve's decision trees and random forests
//! (their class shares, or values, from each node's table) and gradient-boosted trees (their
//! raw margin), on the one algorithm of `model::boosted::shap`.

use super::super::artifact::Model;
use super::super::boosted::shap::{Explained, NodeValues, SplitRule};
use super::super::boosted::shap_tables::EnsembleTables;
use super::super::boosted::{self, BoostedTrees, Link, MissingType, Node};
use super::super::native::stored::WithTrees;
use super::super::native::{FeatureValue, NativeModel, NativeRegressor, Preprocessor, Tree};
use super::ExplainError;
use super::Unit;

/// mlserve's own trees laid out for TreeSHAP: each tree's splits as nodes (the threshold in
/// [`Node::value`], `x <= threshold` left), its covers, and which of its node values are
/// explained.
#[derive(Debug)]
pub struct NativeTrees {
    preprocessor: Preprocessor,
    trees: Vec<boosted::Tree>,
    /// Values a node in the model's tables (the number of classes, or 1).
    width: usize,
    /// The first explained value of a node (1 for a binary classifier's second class).
    first: usize,
    /// How many values a node are explained.
    outputs: usize,
    /// The schema feature of each encoded column.
    feature_of_column: Vec<usize>,
    /// TreeSHAP tables of the trees, where they fit.
    tables: EnsembleTables,
}

impl NativeTrees {
    /// The explainer of a decision tree or random forest classifier, in class probability:
    /// towards the second class for two classes, every class otherwise. `None` for other
    /// estimators and for trees without covers.
    pub fn of_classifier(model: &NativeModel) -> Option<(NativeTrees, Vec<f64>)> {
        let (first, outputs) = if model.n_classes == 2 {
            (1, 1)
        } else {
            (0, model.n_classes)
        };
        let trees = NativeTrees::new(&model.preprocessor, &model.trees(), model.n_classes)?;
        let trees = NativeTrees {
            first,
            outputs,
            ..trees
        };
        let bases = trees.expected_values(&model.trees());
        Some((trees, bases))
    }

    /// The explainer of a decision tree or random forest that predicts a number.
    pub fn of_regressor(model: &NativeRegressor) -> Option<(NativeTrees, Vec<f64>)> {
        let trees = NativeTrees::new(&model.preprocessor, &model.trees(), 1)?;
        let bases = trees.expected_values(&model.trees());
        Some((trees, bases))
    }

    fn new(preprocessor: &Preprocessor, trees: &[&Tree], width: usize) -> Option<NativeTrees> {
        if trees.is_empty() || !trees.iter().all(|tree| tree.covers_fit()) {
            return None;
        }
        let mut explainer = NativeTrees {
            preprocessor: preprocessor.clone(),
            trees: trees.iter().map(|tree| as_nodes(tree)).collect(),
            width,
            first: 0,
            outputs: 1,
            feature_of_column: super::linear::feature_of_column(preprocessor),
            tables: EnsembleTables::default(),
        };
        // The tables depend on the splits and covers alone, not on which values are explained.
        explainer.tables = EnsembleTables::build(
            explainer
                .trees
                .iter()
                .zip(trees)
                .map(|(tree, native)| explainer.explained(tree, &native.value)),
        );
        Some(explainer)
    }

    fn explained<'a>(&'a self, tree: &'a boosted::Tree, values: &'a [f64]) -> Explained<'a> {
        Explained {
            tree,
            covers: &tree.covers,
            rule: SplitRule::AtMost,
            values: NodeValues::Table {
                values,
                width: self.width,
                first: self.first,
                outputs: self.outputs,
            },
        }
    }

    /// The forest's expected output: the mean of its trees'.
    fn expected_values(&self, native: &[&Tree]) -> Vec<f64> {
        let mut bases = vec![0.0; self.outputs];
        for (tree, native) in self.trees.iter().zip(native) {
            self.explained(tree, &native.value)
                .add_expected_values(&mut bases);
        }
        let count = self.trees.len().max(1) as f64;
        bases.iter().map(|base| base / count).collect()
    }

    /// Adds the row's contributions to `phi`, laid out `[outputs][features]`: each tree's over
    /// the encoded columns, averaged over the forest, then summed per schema feature.
    pub fn add_contributions(
        &self,
        model: &Model,
        row: &[FeatureValue],
        phi: &mut [f64],
    ) -> Result<(), ExplainError> {
        let native = match model {
            Model::Native(native) => native.trees(),
            Model::NativeRegressor(regressor) => regressor.trees(),
            Model::Onnx(_) | Model::Boosted(_) => Vec::new(),
        };
        if native.len() != self.trees.len() {
            return Err(ExplainError::OtherModel);
        }
        let mut encoded = Vec::with_capacity(self.preprocessor.width());
        self.preprocessor.encode_into(row, &mut encoded)?;
        let width = encoded.len();
        let mut by_column = vec![0.0; self.outputs * width];
        let mut hot = Vec::new();
        for (index, (tree, native)) in self.trees.iter().zip(&native).enumerate() {
            let explained = self.explained(tree, &native.value);
            self.tables
                .add_contributions(index, &explained, &encoded, &mut by_column, &mut hot);
        }
        let count = self.trees.len() as f64;
        let features = row.len();
        for (output, columns) in by_column.chunks(width.max(1)).enumerate() {
            for (&feature, value) in self.feature_of_column.iter().zip(columns) {
                phi[output * features + feature] += value / count;
            }
        }
        Ok(())
    }
}

/// A native tree's splits as the TreeSHAP engine's nodes, with its covers.
fn as_nodes(tree: &Tree) -> boosted::Tree {
    let nodes = (0..tree.n_nodes())
        .map(|node| Node {
            feature: tree.feature[node],
            value: tree.threshold[node],
            left: if tree.left[node] == Tree::LEAF {
                boosted::LEAF
            } else {
                tree.left[node]
            },
            right: if tree.right[node] == Tree::LEAF {
                boosted::LEAF
            } else {
                tree.right[node]
            },
            default_left: false,
            missing: MissingType::None,
            categories: None,
        })
        .collect();
    boosted::Tree {
        nodes,
        categories: Vec::new(),
        covers: tree.covers.clone(),
    }
}

/// The unit of a boosted model's explanations, or why it has none: the raw margin (log-odds
/// of a plain sigmoid, else the raw score; the log of a Poisson, gamma or Tweedie prediction).
pub fn boosted_unit(model: &BoostedTrees, name: &str) -> Result<Unit, String> {
    if !model.explainable() {
        return Err(format!(
            "model '{name}' has trees without node covers, which TreeSHAP weighs with: an \
             XGBoost file without `sum_hessian` (save the model again with XGBoost's \
             save_model, which writes them, and import that), a LightGBM file without counts \
             (save it again with LightGBM), or a model stored before covers were kept (import \
             or train it again)"
        ));
    }
    Ok(match model.link {
        Link::BinarySigmoid { scale: 1.0 } => Unit::LogOdds,
        Link::Logistic => Unit::LogOdds,
        Link::BinarySigmoid { .. } | Link::Softmax | Link::OneVsRest { .. } => Unit::RawScore,
        Link::Identity => Unit::Value,
        Link::Exp => Unit::LogValue,
    })
}

/// The base value of each output of a boosted model that explains ([`boosted_unit`] is `Ok`):
/// its expected margins, divided as its output is.
pub fn boosted_bases(model: &BoostedTrees) -> Vec<f64> {
    let divisor = average_over(model);
    model
        .expected_margins()
        .into_iter()
        .map(|base| base / divisor)
        .collect()
}

/// LightGBM's random-forest mode averages its trees: contributions are divided as its output
/// is, so that they add up to the margin the model answers from (LightGBM's own
/// `pred_contrib` leaves them undivided).
fn average_over(model: &BoostedTrees) -> f64 {
    model.average_over.map_or(1.0, f64::from).max(1.0)
}

/// Adds a boosted model's contributions for a validated row to `phi` (`[outputs][features]`).
pub fn add_boosted_contributions(
    model: &BoostedTrees,
    tables: &EnsembleTables,
    row: &[FeatureValue],
    phi: &mut [f64],
) {
    let columns = model.row(row);
    model.add_contributions(Some(tables), &columns, phi);
    let divisor = average_over(model);
    if divisor != 1.0 {
        phi.iter_mut().for_each(|value| *value /= divisor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::native::{Estimator, InputEncoding};

    /// Columns: 0 the numeric feature, 1 and 2 the categorical feature's one-hot columns
    /// (standardized with mean 0 and scale 1, so the encoded row is the raw one). Column 0
    /// and column 2 repeat on paths.
    fn model(n_classes: usize) -> NativeModel {
        let leaf = Tree::LEAF;
        let feature = vec![0, 1, 2, 0, 0, 0, 0, 0, 2, 0, 0];
        let threshold = vec![0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0];
        let left = vec![1, 3, 5, leaf, leaf, 7, leaf, leaf, 9, leaf, leaf];
        let right = vec![2, 4, 6, leaf, leaf, 8, leaf, leaf, 10, leaf, leaf];
        let mut covers = vec![0.0; 11];
        for (node, cover) in [
            (3, 7.0),
            (4, 11.0),
            (6, 5.0),
            (7, 3.0),
            (9, 13.0),
            (10, 2.0),
        ] {
            covers[node] = cover;
        }
        for node in (0..11).rev() {
            if left[node] != leaf {
                covers[node] = covers[left[node] as usize] + covers[right[node] as usize];
            }
        }
        // Leaf class shares, made up; inner nodes' are not read by TreeSHAP.
        let value: Vec<f64> = (0..11 * n_classes)
            .map(|i| ((i * 7919) % 13) as f64 / 13.0)
            .collect();
        NativeModel {
            preprocessor: Preprocessor {
                inputs: vec![
                    InputEncoding::Numeric,
                    InputEncoding::OneHot(vec!["a".into(), "b".into()]),
                ],
                mean: vec![0.0; 3],
                scale: vec![1.0; 3],
            },
            estimator: Estimator::DecisionTree(Tree {
                feature,
                threshold,
                left,
                right,
                value,
                covers,
            }),
            n_classes,
        }
    }

    /// E[f_k | x_S] over the native tree, columns in `fixed` following the row.
    fn conditional(tree: &Tree, node: usize, x: &[f64], fixed: u32, k: usize, width: usize) -> f64 {
        if tree.left[node] == Tree::LEAF {
            return tree.value[node * width + k];
        }
        let (l, r) = (tree.left[node] as usize, tree.right[node] as usize);
        let column = tree.feature[node] as usize;
        if fixed >> column & 1 == 1 {
            let next = if x[column] <= tree.threshold[node] {
                l
            } else {
                r
            };
            return conditional(tree, next, x, fixed, k, width);
        }
        (conditional(tree, l, x, fixed, k, width) * tree.covers[l]
            + conditional(tree, r, x, fixed, k, width) * tree.covers[r])
            / tree.covers[node]
    }

    /// Exact Shapley values of the 3 columns for output k.
    fn brute_force(tree: &Tree, x: &[f64], k: usize, width: usize) -> [f64; 3] {
        let factorial = |n: usize| (1..=n).product::<usize>() as f64;
        std::array::from_fn(|i| {
            (0..8u32)
                .filter(|subset| subset >> i & 1 == 0)
                .map(|subset| {
                    let size = subset.count_ones() as usize;
                    let weight = factorial(size) * factorial(2 - size) / factorial(3);
                    weight
                        * (conditional(tree, 0, x, subset | 1 << i, k, width)
                            - conditional(tree, 0, x, subset, k, width))
                })
                .sum()
        })
    }

    #[test]
    fn native_tree_contributions_are_the_column_shapley_values_summed_per_feature() {
        for n_classes in [2, 3] {
            let native = model(n_classes);
            let tree = native.trees()[0].clone();
            let (explainer, bases) = NativeTrees::of_classifier(&native).unwrap();
            let outputs = if n_classes == 2 { 1 } else { n_classes };
            assert_eq!(bases.len(), outputs);
            for (number, category) in [(0.2, "a"), (0.9, "b"), (0.5, "a"), (-3.0, "b")] {
                let row = [
                    FeatureValue::Number(number),
                    FeatureValue::Category(category.into()),
                ];
                let x = [
                    number,
                    f64::from(category == "a"),
                    f64::from(category == "b"),
                ];
                let mut phi = vec![0.0; outputs * 2];
                let model = Model::Native(native.clone());
                explainer.add_contributions(&model, &row, &mut phi).unwrap();
                for output in 0..outputs {
                    let k = if n_classes == 2 { 1 } else { output };
                    let exact = brute_force(&tree, &x, k, n_classes);
                    let got = &phi[output * 2..output * 2 + 2];
                    assert!((got[0] - exact[0]).abs() < 1e-12, "{got:?} vs {exact:?}");
                    assert!(
                        (got[1] - exact[1] - exact[2]).abs() < 1e-12,
                        "{got:?} vs {exact:?}"
                    );
                    let base = conditional(&tree, 0, &x, 0, k, n_classes);
                    assert!((bases[output] - base).abs() < 1e-12);
                }
            }
        }
    }
}
