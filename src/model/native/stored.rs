//! A native model as stored in model.bin (after its magic bytes and format number, written by
//! `model::artifact`): the model in postcard, then its trees' node covers in a section of their
//! own, so that files written before covers were kept still load (without explanations), and
//! a release that knows no covers reads the model of a newer file, leaving the section unread.

use super::{Estimator, NativeModel, NativeRegressor, Regressor, Tree};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A model whose trees may carry covers.
pub trait WithTrees: Serialize + DeserializeOwned {
    /// Its trees, in order (none for models that are not trees).
    fn trees(&self) -> Vec<&Tree>;
    /// The same, to give them their covers.
    fn trees_mut(&mut self) -> Vec<&mut Tree>;
}

impl WithTrees for NativeModel {
    fn trees(&self) -> Vec<&Tree> {
        match &self.estimator {
            Estimator::DecisionTree(tree) => vec![tree],
            Estimator::RandomForest(trees) => trees.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn trees_mut(&mut self) -> Vec<&mut Tree> {
        match &mut self.estimator {
            Estimator::DecisionTree(tree) => vec![tree],
            Estimator::RandomForest(trees) => trees.iter_mut().collect(),
            _ => Vec::new(),
        }
    }
}

impl WithTrees for NativeRegressor {
    fn trees(&self) -> Vec<&Tree> {
        match &self.regressor {
            Regressor::DecisionTree(tree) => vec![tree],
            Regressor::RandomForest(trees) => trees.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn trees_mut(&mut self) -> Vec<&mut Tree> {
        match &mut self.regressor {
            Regressor::DecisionTree(tree) => vec![tree],
            Regressor::RandomForest(trees) => trees.iter_mut().collect(),
            _ => Vec::new(),
        }
    }
}

/// The model, then the covers of its trees when every tree has them (models without trees,
/// or trained before covers were kept, have no section).
pub fn to_payload(model: &impl WithTrees) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = postcard::to_allocvec(model)?;
    let trees = model.trees();
    if !trees.is_empty() && trees.iter().all(|tree| tree.covers_fit()) {
        let covers: Vec<&Vec<f64>> = trees.iter().map(|tree| &tree.covers).collect();
        bytes.extend_from_slice(&postcard::to_allocvec(&covers)?);
    }
    Ok(bytes)
}

/// The model of a payload, with its trees' covers when the file has them; a section that
/// does not fit the trees is refused, never half applied.
pub fn from_payload<M: WithTrees>(payload: &[u8]) -> Result<M, String> {
    let (mut model, rest): (M, &[u8]) =
        postcard::take_from_bytes(payload).map_err(|error| error.to_string())?;
    if rest.is_empty() {
        return Ok(model);
    }
    let covers: Vec<Vec<f64>> =
        postcard::from_bytes(rest).map_err(|error| format!("the trees' covers: {error}"))?;
    let mut trees = model.trees_mut();
    if covers.len() != trees.len() {
        return Err(format!(
            "{} trees but covers for {}",
            trees.len(),
            covers.len()
        ));
    }
    for (index, (tree, covers)) in trees.iter_mut().zip(covers).enumerate() {
        tree.covers = covers;
        if !tree.covers_fit() {
            return Err(format!("tree {index}'s covers do not fit its nodes"));
        }
    }
    Ok(model)
}

impl Tree {
    /// Whether the covers fit the tree: one per node, finite, not negative, and each split's
    /// children together covering what their parent does (within rounding).
    pub fn covers_fit(&self) -> bool {
        let n = self.left.len();
        self.covers.len() == n
            && self.covers.iter().all(|c| c.is_finite() && *c >= 0.0)
            && (0..n).all(|node| {
                let (left, right) = (self.left[node], self.right[node]);
                left == Tree::LEAF
                    || match (
                        self.covers.get(left as usize),
                        self.covers.get(right as usize),
                    ) {
                        (Some(l), Some(r)) => {
                            (l + r - self.covers[node]).abs() <= 1e-9 * self.covers[node].max(1.0)
                        }
                        _ => false,
                    }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::native::{InputEncoding, Preprocessor};

    fn forest(covers: Vec<f64>) -> NativeRegressor {
        let tree = Tree {
            feature: vec![0, 0, 0],
            threshold: vec![0.5, 0.0, 0.0],
            left: vec![1, Tree::LEAF, Tree::LEAF],
            right: vec![2, Tree::LEAF, Tree::LEAF],
            value: vec![1.0, 0.0, 2.0],
            covers,
        };
        NativeRegressor {
            preprocessor: Preprocessor {
                inputs: vec![InputEncoding::Numeric],
                mean: vec![0.0],
                scale: vec![1.0],
            },
            regressor: Regressor::RandomForest(vec![tree.clone(), tree]),
        }
    }

    #[test]
    fn covers_survive_the_round_trip() {
        let model = forest(vec![10.0, 4.0, 6.0]);
        let read: NativeRegressor = from_payload(&to_payload(&model).unwrap()).unwrap();
        assert_eq!(read.trees()[1].covers, [10.0, 4.0, 6.0]);
        assert_eq!(read, model);
    }

    #[test]
    fn a_model_stored_without_covers_loads_without_them() {
        let bytes = postcard::to_allocvec(&forest(vec![10.0, 4.0, 6.0])).unwrap();
        let read: NativeRegressor = from_payload(&bytes).unwrap();
        assert!(read.trees().iter().all(|tree| tree.covers.is_empty()));
    }

    #[test]
    fn covers_that_do_not_add_up_are_refused() {
        let model = forest(vec![10.0, 4.0, 6.0]);
        let mut bytes = postcard::to_allocvec(&model).unwrap();
        let wrong = vec![vec![10.0, 4.0, 5.0], vec![10.0, 4.0, 6.0]];
        bytes.extend_from_slice(&postcard::to_allocvec(&wrong).unwrap());
        let error = from_payload::<NativeRegressor>(&bytes).unwrap_err();
        assert_eq!(error, "tree 0's covers do not fit its nodes");
    }
}
