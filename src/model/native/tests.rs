//! Unit tests of `src/model/native.rs`.

use super::*;

#[test]
fn softmax_survives_huge_scores() {
    let mut scores = [1000.0, 1000.0, -1000.0];
    softmax_in_place(&mut scores);
    assert_eq!(scores, [0.5, 0.5, 0.0]);
}

#[test]
fn sigmoid_is_symmetric_and_finite_at_extremes() {
    assert_eq!(sigmoid(0.0), 0.5);
    assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-15);
    assert_eq!(sigmoid(-1000.0), 0.0);
    assert_eq!(sigmoid(1000.0), 1.0);
}

#[test]
fn tree_routes_left_on_less_or_equal() {
    let tree = Tree {
        feature: vec![0, 0, 0],
        threshold: vec![1.0, 0.0, 0.0],
        left: vec![1, Tree::LEAF, Tree::LEAF],
        right: vec![2, Tree::LEAF, Tree::LEAF],
        value: vec![0.5, 0.5, 1.0, 0.0, 0.0, 1.0],
        covers: vec![2.0, 1.0, 1.0],
    };
    assert_eq!(tree.leaf_probabilities(&[1.0], 2), [1.0, 0.0]);
    assert_eq!(tree.leaf_probabilities(&[1.5], 2), [0.0, 1.0]);
}

#[test]
fn knn_distance_weighting_gives_exact_matches_the_vote() {
    let points = vec![0.0, 1.0, 2.0];
    let classes = vec![0, 1, 1];
    let p = knn_probabilities(3, KnnWeights::Distance, &points, &classes, &[0.0], 2);
    assert_eq!(p, [1.0, 0.0]);
    let p = knn_probabilities(3, KnnWeights::Uniform, &points, &classes, &[0.0], 2);
    assert_eq!(p, [1.0 / 3.0, 2.0 / 3.0]);
}

#[test]
fn one_hot_encoding_then_scaling() {
    let preprocessor = Preprocessor {
        inputs: vec![
            InputEncoding::Numeric,
            InputEncoding::OneHot(vec!["a".into(), "b".into()]),
        ],
        mean: vec![1.0, 0.0, 0.0],
        scale: vec![2.0, 1.0, 1.0],
    };
    let mut out = Vec::new();
    preprocessor
        .encode_into(
            &[
                FeatureValue::Number(5.0),
                FeatureValue::Category("b".into()),
            ],
            &mut out,
        )
        .unwrap();
    assert_eq!(out, [2.0, 0.0, 1.0]);
    let error = preprocessor
        .encode_into(
            &[
                FeatureValue::Category("a".into()),
                FeatureValue::Number(1.0),
            ],
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(error, ModelError::WrongKind { position: 0 });
}
