//! Training time per algorithm on the bundled datasets, and single-row prediction latency:
//! classifiers on breast cancer and iris, regressors on diabetes, gradient boosting on all
//! three. Run with `cargo bench --bench train`; prints three Markdown tables. Gradient boosting
//! on larger data, beside scikit-learn's, is scripts/sklearn_baseline.py's.

use mlserve::data::Task;
use mlserve::data::{BundledDataset, load_bundled};
use mlserve::train::boosting::pipeline::{BoostedMetrics, train_boosted};
use mlserve::train::preprocess::raw_row;
use mlserve::train::regression::train_regressor;
use mlserve::train::{
    Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions, train,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::LogisticRegression,
    Algorithm::RandomForest,
    Algorithm::DecisionTree,
    Algorithm::Knn,
    Algorithm::Svm,
    Algorithm::NaiveBayes,
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

const REGRESSORS: [Algorithm; 5] = [
    Algorithm::LinearRegression,
    Algorithm::RandomForest,
    Algorithm::DecisionTree,
    Algorithm::Knn,
    Algorithm::Svm,
];

fn main() {
    classifiers();
    regressors();
    boosted();
}

fn boosted() {
    println!();
    println!(
        "| dataset | algorithm | train + evaluate (median) | predict one row (median) | test accuracy or R² |"
    );
    println!("|---|---|---|---|---|");
    for dataset in [
        BundledDataset::BreastCancer,
        BundledDataset::Iris,
        BundledDataset::Diabetes,
    ] {
        let data = load_bundled(dataset);
        let options = TrainOptions {
            params: AlgorithmParams::from_flags_for(
                data.target.task(),
                Algorithm::GradientBoosting,
                &HyperParameterFlags::default(),
            )
            .unwrap(),
            test_size: 0.2,
            seed: 42,
            cv: None,
        };
        let mut trained = None;
        let mut train_times = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            trained = Some(black_box(
                train_boosted(&data, &options, &NoProgress).unwrap(),
            ));
            train_times.push(started.elapsed());
        }
        let trained = trained.unwrap();
        let (test_rows, score) = match &trained.metrics {
            BoostedMetrics::Classification(m) => (&m.split.test_rows, m.evaluation.accuracy),
            BoostedMetrics::Regression(m) => (&m.split.test_rows, m.evaluation.metrics.r2),
        };
        let rows: Vec<_> = test_rows.iter().map(|&r| raw_row(&data, r)).collect();
        let model = &trained.model;
        let mut predict_times = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            for row in &rows {
                black_box(model.predict(&model.row(black_box(row))));
            }
            predict_times.push(started.elapsed() / rows.len() as u32);
        }
        println!(
            "| {} | gradient-boosting | {:.1} ms | {:.2} µs | {:.4} |",
            dataset.cli_name(),
            median(train_times).as_secs_f64() * 1e3,
            median(predict_times).as_secs_f64() * 1e6,
            score
        );
    }
}

fn classifiers() {
    println!(
        "| dataset | algorithm | train + evaluate (median) | predict one row (median) | test accuracy |"
    );
    println!("|---|---|---|---|---|");
    for dataset in [BundledDataset::BreastCancer, BundledDataset::Iris] {
        let data = load_bundled(dataset);
        for algorithm in ALGORITHMS {
            let options = TrainOptions {
                params: AlgorithmParams::from_flags(algorithm, &HyperParameterFlags::default())
                    .unwrap(),
                test_size: 0.2,
                seed: 42,
                cv: None,
            };
            let mut trained = None;
            let mut train_times = Vec::new();
            for _ in 0..7 {
                let started = Instant::now();
                trained = Some(black_box(train(&data, &options, &NoProgress).unwrap()));
                train_times.push(started.elapsed());
            }
            let trained = trained.unwrap();
            let rows: Vec<_> = trained
                .metrics
                .split
                .test_rows
                .iter()
                .map(|&r| raw_row(&data, r))
                .collect();
            let mut predict_times = Vec::new();
            for _ in 0..21 {
                let started = Instant::now();
                for row in &rows {
                    black_box(trained.model.predict_proba(black_box(row)).unwrap());
                }
                predict_times.push(started.elapsed() / rows.len() as u32);
            }
            println!(
                "| {} | {} | {:.1} ms | {:.2} µs | {:.4} |",
                dataset.cli_name(),
                algorithm.cli_name(),
                median(train_times).as_secs_f64() * 1e3,
                median(predict_times).as_secs_f64() * 1e6,
                trained.metrics.evaluation.accuracy
            );
        }
    }
}

fn regressors() {
    println!();
    println!(
        "| dataset | algorithm | train + evaluate (median) | predict one row (median) | test R² |"
    );
    println!("|---|---|---|---|---|");
    let data = load_bundled(BundledDataset::Diabetes);
    for algorithm in REGRESSORS {
        let options = TrainOptions {
            params: AlgorithmParams::from_flags_for(
                Task::Regression,
                algorithm,
                &HyperParameterFlags::default(),
            )
            .unwrap(),
            test_size: 0.2,
            seed: 42,
            cv: None,
        };
        let mut trained = None;
        let mut train_times = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            trained = Some(black_box(
                train_regressor(&data, &options, &NoProgress).unwrap(),
            ));
            train_times.push(started.elapsed());
        }
        let trained = trained.unwrap();
        let rows: Vec<_> = trained
            .metrics
            .split
            .test_rows
            .iter()
            .map(|&r| raw_row(&data, r))
            .collect();
        let mut predict_times = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            for row in &rows {
                black_box(trained.model.predict(black_box(row)).unwrap());
            }
            predict_times.push(started.elapsed() / rows.len() as u32);
        }
        println!(
            "| diabetes | {} | {:.1} ms | {:.2} µs | {:.4} |",
            algorithm.cli_name(),
            median(train_times).as_secs_f64() * 1e3,
            median(predict_times).as_secs_f64() * 1e6,
            trained.metrics.evaluation.metrics.r2
        );
    }
}
