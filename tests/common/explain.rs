//! Shared by the explanation tests: a repository with a model of every family (and two as
//! older releases saved them) and bundled rows as JSON objects.

use super::train_into;
use mlserve::data::{BundledDataset, Dataset, load_bundled};
use mlserve::model::{FeatureValue, Task};
use mlserve::train::boosting::pipeline::train_boosted;
use mlserve::train::preprocess::raw_row;
use mlserve::train::regression::train_regressor;
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use serde_json::{Map, Value, json};
use std::path::Path;

fn options(task: Task, algorithm: Algorithm) -> TrainOptions {
    TrainOptions {
        params: AlgorithmParams::from_flags_for(task, algorithm, &HyperParameterFlags::default())
            .unwrap(),
        test_size: 0.2,
        seed: 7,
        cv: None,
    }
}

/// Every model this file asks: classifiers and regressors, linear, trees and boosted trees, one
/// that cannot explain (k-NN), and a forest as a release without node covers stored it.
pub fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path();
    use Algorithm::*;
    use BundledDataset::{BreastCancer, Iris};
    train_into(models, BreastCancer, LogisticRegression, "cancer_linear", 7);
    train_into(models, Iris, LogisticRegression, "iris_linear", 7);
    train_into(models, Iris, RandomForest, "iris_forest", 7);
    train_into(models, BreastCancer, DecisionTree, "cancer_tree", 7);
    train_into(models, Iris, Knn, "iris_knn", 7);
    train_into(models, BreastCancer, NaiveBayes, "cancer_bayes", 7);
    let diabetes = load_bundled(BundledDataset::Diabetes);
    for (algorithm, name) in [
        (LinearRegression, "diabetes_linear"),
        (RandomForest, "diabetes_forest"),
    ] {
        train_regressor(
            &diabetes,
            &options(Task::Regression, algorithm),
            &NoProgress,
        )
        .unwrap()
        .save(models, name)
        .unwrap();
    }
    train_boosted(
        &diabetes,
        &options(Task::Regression, GradientBoosting),
        &NoProgress,
    )
    .unwrap()
    .save(models, "diabetes_boosted")
    .unwrap();
    for (dataset, name) in [(BreastCancer, "cancer_boosted"), (Iris, "iris_boosted")] {
        train_boosted(
            &load_bundled(dataset),
            &options(Task::Classification, GradientBoosting),
            &NoProgress,
        )
        .unwrap()
        .save(models, name)
        .unwrap();
    }
    save_without_covers(models);
    save_without_background(models);
    dir
}

/// A k-NN model saved as releases before background sets were kept saved it.
fn save_without_background(models: &Path) {
    let options = options(Task::Classification, Algorithm::Knn);
    let mut trained =
        mlserve::train::train(&load_bundled(BundledDataset::Iris), &options, &NoProgress).unwrap();
    assert!(trained.background.is_some(), "k-NN keeps a background set");
    trained.background = None;
    trained.save(models, "old_knn").unwrap();
}

/// A forest saved as releases before node covers were kept saved it: no covers section.
fn save_without_covers(models: &Path) {
    let options = options(Task::Classification, Algorithm::RandomForest);
    let mut trained =
        mlserve::train::train(&load_bundled(BundledDataset::Iris), &options, &NoProgress).unwrap();
    match &mut trained.model.estimator {
        mlserve::model::native::Estimator::RandomForest(trees) => {
            trees.iter_mut().for_each(|tree| tree.covers.clear())
        }
        other => panic!("a forest expected, got {other:?}"),
    }
    trained.save(models, "old_forest").unwrap();
}

/// Rows of a bundled dataset as JSON objects of features.
pub fn rows(dataset: BundledDataset, take: usize) -> Vec<Value> {
    let data: Dataset = load_bundled(dataset);
    (0..data.n_rows())
        .step_by(data.n_rows() / take)
        .take(take)
        .map(|row| {
            let values = raw_row(&data, row);
            let fields: Map<String, Value> = data
                .columns
                .iter()
                .zip(values)
                .map(|(column, value)| {
                    let value = match value {
                        FeatureValue::Number(x) => json!(x),
                        FeatureValue::Category(text) | FeatureValue::Text(text) => json!(text),
                        FeatureValue::Missing => Value::Null,
                    };
                    (column.name.clone(), value)
                })
                .collect();
            Value::Object(fields)
        })
        .collect()
}
