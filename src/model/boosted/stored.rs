//! Boosted trees as stored in model.bin (after its magic bytes and format number, written by
//! `model::artifact`): the trees in postcard, then their node covers in a section of their own,
//! so files written before covers existed load as they are.

use super::BoostedTrees;

/// Boosted trees as model.bin's payload: the trees, then their node covers in a section of their own.
/// A reader that knows no covers (the release before them) stops after the trees, as postcard
/// leaves trailing bytes unread; a file without the section loads with no covers.
pub fn to_payload(model: &BoostedTrees) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = postcard::to_allocvec(model)?;
    let covers: Vec<&Vec<f64>> = model.trees.iter().map(|tree| &tree.covers).collect();
    bytes.extend_from_slice(&postcard::to_allocvec(&covers)?);
    Ok(bytes)
}

/// The trees of a boosted model.bin's payload, with their covers when the file has them and
/// they fit (one per node of each tree, finite and not negative; otherwise none).
pub fn from_payload(payload: &[u8]) -> Result<BoostedTrees, String> {
    let (mut model, rest): (BoostedTrees, &[u8]) =
        postcard::take_from_bytes(payload).map_err(|error| error.to_string())?;
    if rest.is_empty() {
        return Ok(model);
    }
    let covers: Vec<Vec<f64>> =
        postcard::from_bytes(rest).map_err(|error| format!("the trees' covers: {error}"))?;
    if covers.len() != model.trees.len() {
        return Err(format!(
            "{} trees but covers for {}",
            model.trees.len(),
            covers.len()
        ));
    }
    for (index, (tree, covers)) in model.trees.iter_mut().zip(covers).enumerate() {
        tree.covers = covers;
        if !tree.covers.is_empty() && !tree.covers_fit() {
            return Err(format!("tree {index}'s covers do not fit its nodes"));
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boosted::{BoostedSource, LEAF, Link, MissingType, Node, Routing, Tree};

    fn model(covers: Vec<f64>) -> BoostedTrees {
        let leaf = |value| Node {
            feature: 0,
            value,
            left: LEAF,
            right: LEAF,
            default_left: true,
            missing: MissingType::NaN,
            categories: None,
        };
        let split = Node {
            left: 1,
            right: 2,
            value: 0.5,
            ..leaf(0.0)
        };
        BoostedTrees {
            trees: vec![Tree {
                nodes: vec![split, leaf(-1.0), leaf(1.0)],
                categories: Vec::new(),
                covers,
            }],
            tree_output: vec![0],
            base_margin: vec![0.0],
            link: Link::Identity,
            routing: Routing::Xgboost,
            features: 1,
            average_over: None,
            source: BoostedSource {
                library: "xgboost".into(),
                objective: "reg:squarederror".into(),
                iterations: (1, 1),
            },
            category_codes: Vec::new(),
            fast: None,
            fast64: None,
        }
    }

    #[test]
    fn covers_round_trip_and_a_file_without_them_still_loads() {
        let with = model(vec![10.0, 4.0, 6.0]);
        let bytes = to_payload(&with).unwrap();
        assert_eq!(from_payload(&bytes).unwrap().trees, with.trees);
        // The trees alone, as the release before covers wrote them, and as it reads them.
        let without = postcard::to_allocvec(&with).unwrap();
        let read = from_payload(&without).unwrap();
        assert!(read.trees[0].covers.is_empty());
        let old_reader: BoostedTrees = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(old_reader.trees[0].nodes, with.trees[0].nodes);
    }

    #[test]
    fn covers_that_do_not_fit_are_refused() {
        let mut bytes = postcard::to_allocvec(&model(Vec::new())).unwrap();
        bytes.extend(postcard::to_allocvec(&vec![vec![1.0, -2.0, 3.0]]).unwrap());
        assert_eq!(
            from_payload(&bytes).unwrap_err(),
            "tree 0's covers do not fit its nodes"
        );
        let mut bytes = postcard::to_allocvec(&model(Vec::new())).unwrap();
        bytes.extend(postcard::to_allocvec(&Vec::<Vec<f64>>::new()).unwrap());
        assert_eq!(
            from_payload(&bytes).unwrap_err(),
            "1 trees but covers for 0"
        );
    }
}
