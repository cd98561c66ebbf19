//! What one explained row costs, per method, on the bundled breast cancer data (30 features),
//! through the served path (`LoadedModel::explain_rows`, the explainer built once): linear
//! SHAP of a logistic regression, path-dependent TreeSHAP of a random forest (100 trees) and of
//! gradient boosting, KernelSHAP of naive Bayes and k-NN (`explain_samples` coalitions, 1,000
//! by default, over the 100-row background). Also the plain prediction of each, for the ratio.
//! Prints one JSON object; `scripts/bench-explain.sh` runs it in release mode and prints a table.

use mlserve::data::{BundledDataset, load_bundled};
use mlserve::model::{FeatureValue, Repository, Task};
use mlserve::train::boosting::pipeline::train_boosted;
use mlserve::train::preprocess::raw_row;
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use std::hint::black_box;
use std::time::Instant;

fn options(algorithm: Algorithm) -> TrainOptions {
    TrainOptions {
        params: AlgorithmParams::from_flags_for(
            Task::Classification,
            algorithm,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 1,
        cv: None,
    }
}

/// Best of three: seconds per row.
fn time_per_row(rows: &[Vec<FeatureValue>], mut run: impl FnMut(&[FeatureValue])) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        for row in rows {
            run(row);
        }
        best = best.min(started.elapsed().as_secs_f64() / rows.len() as f64);
    }
    best
}

fn main() {
    let data = load_bundled(BundledDataset::BreastCancer);
    let repo = tempfile::tempdir().unwrap();
    let models = [
        ("logistic_regression", Algorithm::LogisticRegression, 569),
        ("random_forest", Algorithm::RandomForest, 200),
        ("gradient_boosting", Algorithm::GradientBoosting, 200),
        ("naive_bayes", Algorithm::NaiveBayes, 5),
        ("knn", Algorithm::Knn, 2),
    ];
    for (name, algorithm, _) in models {
        if algorithm == Algorithm::GradientBoosting {
            train_boosted(&data, &options(algorithm), &NoProgress)
                .unwrap()
                .save(repo.path(), name)
                .unwrap();
        } else {
            mlserve::train::train(&data, &options(algorithm), &NoProgress)
                .unwrap()
                .save(repo.path(), name)
                .unwrap();
        }
    }
    let repository = Repository::new(repo.path());
    repository.reload_all(false);
    let catalog = repository.catalog();
    let all: Vec<Vec<FeatureValue>> = (0..data.n_rows()).map(|r| raw_row(&data, r)).collect();
    let mut report = serde_json::Map::new();
    for (name, _, count) in models {
        let model = catalog.resolve(name, None).unwrap();
        let explainer = model.explainer().unwrap();
        let rows = &all[..count];
        let mut checksum = 0.0;
        let predict = time_per_row(rows, |row| {
            checksum += model.probabilities(black_box(row)).unwrap()[1];
        });
        let explain = time_per_row(rows, |row| {
            let explained = model
                .explain_rows(explainer, &[black_box(row)], &Default::default())
                .unwrap();
            checksum += explained[0].outputs[0].features[0];
        });
        report.insert(
            name.to_string(),
            serde_json::json!({
                "method": explainer.method().name(),
                "predict_microseconds": predict * 1e6,
                "explain_microseconds": explain * 1e6,
                "ratio": explain / predict,
                "checksum": checksum,
            }),
        );
    }
    println!("{}", serde_json::Value::Object(report));
}
