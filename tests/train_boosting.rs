//! Native gradient boosting (`--algorithm gradient-boosting`): trained through the library and
//! the CLI on the bundled data and on CSV files with missing values and categories, written as
//! boosted trees, and served. Quality against scikit-learn's HistGradientBoosting on larger
//! data is scripts/sklearn_baseline.py's (README, "Quality against scikit-learn").

mod common;

use common::{TestServer, test_settings};
use mlserve::data::{BundledDataset, CsvOptions, Dataset, load_bundled, load_csv};
use mlserve::model::{Backend, Model, Task, load_version};
use mlserve::train::boosting::pipeline::{BoostedMetrics, TrainedBoosted, train_boosted};
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use serde_json::json;
use std::path::Path;

fn options(task: Task, flags: HyperParameterFlags, cv: Option<usize>) -> TrainOptions {
    TrainOptions {
        params: AlgorithmParams::from_flags_for(task, Algorithm::GradientBoosting, &flags).unwrap(),
        test_size: 0.2,
        seed: 42,
        cv,
    }
}

fn train(data: &Dataset, flags: HyperParameterFlags) -> TrainedBoosted {
    train_boosted(data, &options(data.target.task(), flags, None), &NoProgress).unwrap()
}

#[test]
fn bundled_data_trains_to_scikit_learns_quality_and_the_artifact_reproduces_it() {
    let models = tempfile::tempdir().unwrap();
    // On these splits (seed 42) HistGradientBoosting with its defaults gets accuracy 0.9469 on
    // breast cancer and 0.9667 on iris, and R² 0.281 on diabetes (scripts/sklearn_baseline.py).
    for (dataset, least) in [
        (BundledDataset::BreastCancer, 0.94),
        (BundledDataset::Iris, 0.96),
        (BundledDataset::Diabetes, 0.27),
    ] {
        let data = load_bundled(dataset);
        let trained = train(&data, HyperParameterFlags::default());
        let (_, dir) = trained.save(models.path(), dataset.model_name()).unwrap();
        let artifact = load_version(&dir).unwrap();
        let manifest = &artifact.manifest;
        assert_eq!(manifest.backend, Backend::Boosted);
        assert_eq!(manifest.algorithm_name(), "gradient-boosting");
        assert_eq!(manifest.task, data.target.task());
        assert!(manifest.features.iter().all(|f| f.nullable));
        let Model::Boosted(model) = &artifact.model else {
            panic!("{dataset:?}: boosted trees expected")
        };
        assert_eq!(model.source.library, "mlserve");
        assert_eq!(model.source.iterations, (100, 100), "no early stopping");
        let card = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(card.contains("gradient-boosting"), "the card names it");
        match &trained.metrics {
            BoostedMetrics::Classification(metrics) => {
                let accuracy = metrics.evaluation.accuracy;
                assert!(accuracy >= least, "{dataset:?}: accuracy {accuracy}");
            }
            BoostedMetrics::Regression(metrics) => {
                let r2 = metrics.evaluation.metrics.r2;
                assert!(r2 >= least, "{dataset:?}: R² {r2}");
                // The stored trees give the held-out predictions metrics.json records.
                for (&row, &want) in metrics
                    .split
                    .test_rows
                    .iter()
                    .zip(&metrics.evaluation.test_predicted)
                {
                    let values = mlserve::train::preprocess::raw_row(&data, row);
                    let got = model.predict(&model.row(&values))[0];
                    assert_eq!(got, want, "row {row}");
                }
            }
        }
    }
}

fn csv_dataset(dir: &Path, text: &str, task: Task) -> Dataset {
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    let options = CsvOptions {
        target: "y".into(),
        task: Some(task),
        missing_values: true,
        ..CsvOptions::default()
    };
    load_csv(&path, &options).unwrap()
}

/// 400 rows: `clinic` decides the class as {north, west} against {east, south}, which no
/// single threshold on the sorted codes separates; `dose` is missing in a quarter of the rows
/// and the regression target is 10 exactly there, its value elsewhere.
fn clinics_csv(target: &str) -> String {
    let clinics = ["north", "south", "east", "west"];
    let mut text = String::from("clinic,dose,y\n");
    for i in 0..400 {
        let clinic = clinics[i % 4];
        let missing = i % 8 < 2;
        let dose = (i * 37 % 100) as f64 / 20.0;
        let y = match target {
            "class" => if matches!(clinic, "north" | "west") {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            _ => (if missing { 10.0 } else { dose }).to_string(),
        };
        let dose = if missing {
            String::new()
        } else {
            dose.to_string()
        };
        text.push_str(&format!("{clinic},{dose},{y}\n"));
    }
    text
}

#[test]
fn one_categorical_split_separates_categories_that_no_threshold_can() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_dataset(dir.path(), &clinics_csv("class"), Task::Classification);
    let flags = HyperParameterFlags {
        max_leaves: Some(2),
        n_trees: Some(30),
        ..Default::default()
    };
    let trained = train(&data, flags);
    let BoostedMetrics::Classification(metrics) = &trained.metrics else {
        panic!("a classifier")
    };
    assert_eq!(metrics.evaluation.accuracy, 1.0);
    let clinic = &trained.features[0];
    assert_eq!(
        clinic.categories.as_deref().unwrap(),
        ["east", "north", "south", "west"]
    );
    let root = &trained.model.trees[0].nodes[0];
    assert!(
        root.categories.is_some(),
        "the first split is on the clinic"
    );
}

#[tokio::test]
async fn missing_values_learn_their_own_direction_and_are_served_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_dataset(dir.path(), &clinics_csv("value"), Task::Regression);
    let trained = train(&data, HyperParameterFlags::default());
    let models = dir.path().join("models");
    trained.save(&models, "dose").unwrap();
    let server = TestServer::start(test_settings(&models)).await;
    let (status, _, missing) = server
        .post_json(
            "/api/models/dose/predict",
            &json!({"clinic": "east", "dose": null}),
        )
        .await;
    assert_eq!(status, 200, "{missing}");
    let value = missing["prediction"].as_f64().unwrap();
    assert!(
        (value - 10.0).abs() < 0.5,
        "a missing dose predicts {value}"
    );
    let (_, _, present) = server
        .post_json(
            "/api/models/dose/predict",
            &json!({"clinic": "east", "dose": 2.0}),
        )
        .await;
    let value = present["prediction"].as_f64().unwrap();
    assert!((value - 2.0).abs() < 0.5, "a dose of 2 predicts {value}");
    // V2 takes the missing value as NaN in an FP64 tensor, with the category as BYTES.
    let body = r#"{"inputs": [
        {"name": "clinic", "datatype": "BYTES", "shape": [1], "data": ["east"]},
        {"name": "dose", "datatype": "FP64", "shape": [1], "data": [NaN]}]}"#;
    let (status, inferred) = server
        .post_text("/v2/models/dose/infer", body.to_string())
        .await;
    assert_eq!(status, 200, "{inferred}");
    let v2 = inferred["outputs"][0]["data"][0].as_f64().unwrap();
    assert_eq!(v2, missing["prediction"].as_f64().unwrap());
    let (status, _, problem) = server
        .post_json(
            "/api/models/dose/predict",
            &json!({"clinic": "central", "dose": 1.0}),
        )
        .await;
    assert_eq!(status, 422, "an unknown clinic: {problem}");
    server.server.shutdown().await.unwrap();
}

#[test]
fn early_stopping_keeps_the_best_iterations_and_a_seed_gives_the_same_trees() {
    let data = load_bundled(BundledDataset::Diabetes);
    let flags = || HyperParameterFlags {
        n_trees: Some(500),
        early_stopping: Some(mlserve::model::EarlyStopping::On),
        ..Default::default()
    };
    let first = train(&data, flags());
    let (used, most) = first.model.source.iterations;
    assert_eq!(most, 500);
    assert!(used < 100, "{used} iterations of 500 on 353 noisy rows");
    assert_eq!(first.model.trees.len(), used);
    assert_eq!(
        first.provenance.iterations_kept,
        Some(used),
        "the manifest says it"
    );
    let again = train(&data, flags());
    assert_eq!(again.model.trees, first.model.trees);
}

#[test]
fn cross_validation_scores_each_fold() {
    let data = load_bundled(BundledDataset::Iris);
    let trained = train_boosted(
        &data,
        &options(
            Task::Classification,
            HyperParameterFlags::default(),
            Some(3),
        ),
        &NoProgress,
    )
    .unwrap();
    let BoostedMetrics::Classification(metrics) = &trained.metrics else {
        panic!("a classifier")
    };
    let cv = metrics.cv.as_ref().unwrap();
    assert_eq!(cv.accuracy.folds.len(), 3);
    assert!(cv.accuracy.mean > 0.85, "{:?}", cv.accuracy);
}

#[test]
fn too_many_categories_and_parameters_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_dataset(dir.path(), &clinics_csv("class"), Task::Classification);
    let flags = HyperParameterFlags {
        max_bins: Some(3),
        ..Default::default()
    };
    let error = train_boosted(
        &data,
        &options(Task::Classification, flags, None),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "feature 'clinic' has 4 categories; gradient-boosting takes at most --max-bins (3) per feature"
    );
    // Early stopping on 30 rows: a validation share that leaves no rows is named.
    let tiny = csv_dataset(
        dir.path(),
        &clinics_csv("class")
            .lines()
            .take(31)
            .collect::<Vec<_>>()
            .join("\n"),
        Task::Classification,
    );
    let flags = HyperParameterFlags {
        early_stopping: Some(mlserve::model::EarlyStopping::On),
        validation_fraction: Some(0.01),
        ..Default::default()
    };
    let error = train_boosted(
        &tiny,
        &options(Task::Classification, flags, None),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("--validation-fraction 0.01 of 24 training rows leaves no rows"),
        "{error}"
    );
    for (flags, message) in [
        (
            HyperParameterFlags {
                learning_rate: Some(0.0),
                ..Default::default()
            },
            "--learning-rate must be a positive number, got 0",
        ),
        (
            HyperParameterFlags {
                max_bins: Some(256),
                ..Default::default()
            },
            "--max-bins must be from 2 to 255, got 256",
        ),
        (
            HyperParameterFlags {
                validation_fraction: Some(1.0),
                ..Default::default()
            },
            "--validation-fraction must be between 0 and 1, got 1",
        ),
        (
            HyperParameterFlags {
                c: Some(1.0),
                ..Default::default()
            },
            "--c does not apply to gradient-boosting; its flags are: --n-trees, --learning-rate, \
             --max-leaves, --max-depth, --min-samples-leaf, --l2, --max-bins, --early-stopping, \
             --validation-fraction, --n-iter-no-change",
        ),
    ] {
        let error = AlgorithmParams::from_flags_for(
            Task::Classification,
            Algorithm::GradientBoosting,
            &flags,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn the_cli_trains_a_csv_with_empty_cells_only_with_gradient_boosting() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("clinics.csv");
    std::fs::write(&csv, clinics_csv("class")).unwrap();
    let models = dir.path().join("models");
    let run = |algorithm: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .args(["train", "--csv"])
            .arg(&csv)
            .args(["--target", "y", "--algorithm", algorithm, "--models"])
            .arg(&models)
            .output()
            .unwrap()
    };
    let refused = run("random-forest");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("column 'dose' is empty; every cell needs a value (of the algorithms, gradient-boosting alone learns from missing feature values)"),
        "{stderr}"
    );
    let trained = run("gradient-boosting");
    let stdout = String::from_utf8_lossy(&trained.stdout);
    assert!(
        trained.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    assert!(
        stdout.contains("boosting iterations     100 of 100"),
        "{stdout}"
    );
    assert!(stdout.contains("accuracy            1.0000"), "{stdout}");
    let artifact = load_version(&models.join("clinics").join("1")).unwrap();
    assert_eq!(artifact.manifest.backend, Backend::Boosted);
}

#[test]
fn a_target_far_from_zero_keeps_its_precision() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x,y\n");
    for i in 0..1000 {
        let x = (i * 7919 % 1000) as f64 / 100.0;
        text.push_str(&format!("{x},{}\n", 1e8 + 3.0 * x));
    }
    let data = csv_dataset(dir.path(), &text, Task::Regression);
    let trained = train(&data, HyperParameterFlags::default());
    let BoostedMetrics::Regression(metrics) = &trained.metrics else {
        panic!("a regressor")
    };
    // Summed in f32, a base margin of 1e8 leaves steps of 8: every answer the same.
    let m = &metrics.evaluation.metrics;
    assert!(m.r2 > 0.99 && m.rmse < 0.5, "R² {} RMSE {}", m.r2, m.rmse);
}

#[test]
fn missing_values_alone_can_be_split_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("flag,y\n");
    for i in 0..400 {
        let missing = i % 3 == 0;
        let flag = if missing { "" } else { "1" };
        text.push_str(&format!("{flag},{}\n", if missing { "yes" } else { "no" }));
    }
    let data = csv_dataset(dir.path(), &text, Task::Classification);
    let trained = train(&data, HyperParameterFlags::default());
    let BoostedMetrics::Classification(metrics) = &trained.metrics else {
        panic!("a classifier")
    };
    assert_eq!(metrics.evaluation.accuracy, 1.0);
    let root = &trained.model.trees[0].nodes[0];
    assert_eq!((root.value, root.default_left), (f64::NEG_INFINITY, true));
}

#[test]
fn held_out_rows_the_served_model_refuses_are_left_out_and_said() {
    let dir = tempfile::tempdir().unwrap();
    // Row 7 alone has the clinic 'island' and a value of 'rare'.
    let mut text = String::from("clinic,rare,dose,y\n");
    for i in 0..200 {
        let (clinic, rare) = if i == 7 {
            ("island", "4.5")
        } else {
            (["north", "south"][i % 2], "")
        };
        let dose = (i * 37 % 100) as f64 / 10.0;
        let y = if dose > 5.0 { "high" } else { "low" };
        text.push_str(&format!("{clinic},{rare},{dose},{y}\n"));
    }
    let data = csv_dataset(dir.path(), &text, Task::Classification);
    let (trained, seed) = (0..50)
        .map(|seed| {
            let options = TrainOptions {
                seed,
                ..options(Task::Classification, HyperParameterFlags::default(), None)
            };
            (train_boosted(&data, &options, &NoProgress).unwrap(), seed)
        })
        .find(|(trained, _)| match &trained.metrics {
            BoostedMetrics::Classification(m) => m.split.test_rows.contains(&7),
            BoostedMetrics::Regression(_) => false,
        })
        .expect("some seed holds row 7 out");
    let BoostedMetrics::Classification(metrics) = &trained.metrics else {
        panic!("a classifier")
    };
    assert_eq!(metrics.split.refused_rows, [7], "seed {seed}");
    assert_eq!(trained.provenance.refused_test_rows, Some(1));
    let models = dir.path().join("models");
    let (_, version) = trained.save(&models, "refusing").unwrap();
    let card = std::fs::read_to_string(version.join("report.html")).unwrap();
    assert!(
        card.contains("1 held-out row(s) left out of the metrics"),
        "the card says it"
    );
    let scored: u64 = metrics.evaluation.confusion_matrix.iter().flatten().sum();
    assert_eq!(scored as usize, metrics.split.test_rows.len() - 1);
    // 'rare' has no value in any training row: no statistics rather than infinite ones.
    let rare = &trained.features[1];
    assert_eq!((rare.min, rare.max, rare.mean), (None, None, None));
}

#[tokio::test]
async fn a_nullable_integer_feature_takes_null_in_a_v2_int64_tensor() {
    let dir = tempfile::tempdir().unwrap();
    // A categorical column too, so V2 takes one tensor per feature (of the feature's type).
    let mut text = String::from("clinic,visits,y\n");
    for i in 0..300 {
        let missing = i % 4 == 0;
        let visits = i % 7;
        let y = if missing { 10.0 } else { visits as f64 };
        let cell = if missing {
            String::new()
        } else {
            visits.to_string()
        };
        let clinic = ["north", "south"][i % 2];
        text.push_str(&format!("{clinic},{cell},{y}\n"));
    }
    let data = csv_dataset(dir.path(), &text, Task::Regression);
    let models = dir.path().join("models");
    train(&data, HyperParameterFlags::default())
        .save(&models, "visits")
        .unwrap();
    let server = TestServer::start(test_settings(&models)).await;
    let (_, _, metadata) = server.get("/v2/models/visits").await;
    assert_eq!(metadata["inputs"][1]["datatype"], "INT64", "{metadata}");
    let infer = |data: &str| {
        format!(
            r#"{{"inputs": [{{"name": "clinic", "datatype": "BYTES", "shape": [1], "data": ["north"]}},
                {{"name": "visits", "datatype": "INT64", "shape": [1], "data": [{data}]}}]}}"#
        )
    };
    let (status, missing) = server
        .post_text("/v2/models/visits/infer", infer("null"))
        .await;
    assert_eq!(status, 200, "{missing}");
    let value = missing["outputs"][0]["data"][0].as_f64().unwrap();
    assert!(
        (value - 10.0).abs() < 0.5,
        "a missing count predicts {value}"
    );
    let (_, _, native) = server
        .post_json(
            "/api/models/visits/predict",
            &json!({"clinic": "north", "visits": null}),
        )
        .await;
    assert_eq!(
        native["prediction"].as_f64(),
        Some(value),
        "the same answer"
    );
    let (_, present) = server
        .post_text("/v2/models/visits/infer", infer("3"))
        .await;
    let value = present["outputs"][0]["data"][0].as_f64().unwrap();
    assert!((value - 3.0).abs() < 0.5, "3 visits predict {value}");
    server.server.shutdown().await.unwrap();
}
