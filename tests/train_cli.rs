//! End-to-end tests of `mlserve train`: the real binary, real files, the artifact loaded back.

use mlserve::data::{BundledDataset, load_bundled};
use mlserve::model::argmax;
use mlserve::model::load_version;
use mlserve::train::MetricsFile;
use mlserve::train::preprocess::raw_row;
use std::path::Path;
use std::process::{Command, Output};

fn mlserve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(args)
        .output()
        .expect("the mlserve binary runs")
}

fn train(models: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--models", models.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    mlserve(&args)
}

fn read_metrics(dir: &Path) -> MetricsFile {
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap()
}

/// Trains, loads the artifact back, predicts the held-out rows of the bundled dataset through
/// the raw-row path a server uses, and returns (accuracy recomputed, metrics reported).
fn train_and_replay(dataset: BundledDataset, algorithm: &str) -> (f64, MetricsFile) {
    let models = tempfile::tempdir().unwrap();
    let output = train(
        models.path(),
        &["--dataset", dataset.cli_name(), "--algorithm", algorithm],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = models.path().join(dataset.model_name()).join("1");
    let artifact = load_version(&dir).unwrap();
    let metrics = read_metrics(&dir);
    let data = load_bundled(dataset);
    let test_rows = &metrics.split.test_rows;
    let mut correct = 0;
    for &row in test_rows {
        let probabilities = artifact
            .model
            .native()
            .unwrap()
            .predict_proba(&raw_row(&data, row))
            .unwrap();
        let total: f64 = probabilities.iter().sum();
        assert!(
            (total - 1.0).abs() < 1e-9,
            "{algorithm}: probabilities sum to {total}"
        );
        if argmax(&probabilities) == data.classes().unwrap().0[row] {
            correct += 1;
        }
    }
    (correct as f64 / test_rows.len() as f64, metrics)
}

#[test]
fn logistic_regression_on_breast_cancer_meets_the_quality_bar_and_replays() {
    let (replayed, metrics) = train_and_replay(BundledDataset::BreastCancer, "logistic-regression");
    assert_eq!(replayed, metrics.evaluation.accuracy);
    assert!(
        metrics.evaluation.accuracy >= 0.95,
        "{}",
        metrics.evaluation.accuracy
    );
    assert!(metrics.evaluation.roc_auc.unwrap() >= 0.99);
    assert_eq!(metrics.evaluation.labels, ["malignant", "benign"]);
}

#[test]
fn random_forest_on_iris_meets_the_quality_bar_and_replays() {
    let (replayed, metrics) = train_and_replay(BundledDataset::Iris, "random-forest");
    assert_eq!(replayed, metrics.evaluation.accuracy);
    assert!(
        metrics.evaluation.accuracy >= 0.93,
        "{}",
        metrics.evaluation.accuracy
    );
}

#[test]
fn every_algorithm_writes_an_artifact_that_reproduces_its_reported_accuracy() {
    for algorithm in ["decision-tree", "knn", "svm", "naive-bayes"] {
        for dataset in [BundledDataset::BreastCancer, BundledDataset::Iris] {
            let (replayed, metrics) = train_and_replay(dataset, algorithm);
            assert_eq!(
                replayed, metrics.evaluation.accuracy,
                "{algorithm} on {dataset:?}"
            );
            assert!(
                metrics.evaluation.accuracy > 0.85,
                "{algorithm} on {dataset:?}: {}",
                metrics.evaluation.accuracy
            );
        }
    }
}

#[test]
fn artifact_folder_holds_manifest_model_metrics_and_card() {
    let models = tempfile::tempdir().unwrap();
    let output = train(
        models.path(),
        &[
            "--dataset",
            "iris",
            "--algorithm",
            "knn",
            "--cv",
            "5",
            "--name",
            "flowers",
        ],
    );
    assert!(output.status.success());
    let dir = models.path().join("flowers/1");
    let artifact = load_version(&dir).unwrap();
    let manifest = &artifact.manifest;
    assert_eq!((manifest.name.as_str(), manifest.version), ("flowers", 1));
    assert_eq!(manifest.labels, ["setosa", "versicolor", "virginica"]);
    assert_eq!(manifest.features.len(), 4);
    let petal = &manifest.features[2];
    assert_eq!(petal.name, "petal_length");
    assert!(petal.min.unwrap() >= 1.0 && petal.max.unwrap() <= 6.9 && petal.min < petal.max);
    assert_eq!(manifest.training.as_ref().unwrap().cv_folds, Some(5));

    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "log_loss",
        "confusion_matrix",
        "per_class",
        "cv",
    ] {
        assert!(metrics.get(key).is_some(), "metrics.json lacks {key}");
    }
    let cv_accuracy = &metrics["cv"]["accuracy"];
    assert_eq!(cv_accuracy["folds"].as_array().unwrap().len(), 5);
    assert!(cv_accuracy["mean"].as_f64().unwrap() > 0.8);
    let confusion: Vec<Vec<u64>> =
        serde_json::from_value(metrics["confusion_matrix"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 30);

    let card = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        card.contains("<svg") && card.contains("Confusion matrix") && card.contains("ROC curve")
    );
    assert!(card.contains("virginica"));
}

#[test]
fn versions_count_up_and_a_seed_reproduces_the_model() {
    let models = tempfile::tempdir().unwrap();
    let args = [
        "--dataset",
        "breast-cancer",
        "--algorithm",
        "random-forest",
        "--n-trees",
        "20",
        "--seed",
        "7",
    ];
    assert!(train(models.path(), &args).status.success());
    assert!(train(models.path(), &args).status.success());
    let (v1, v2) = (
        models.path().join("breast_cancer/1"),
        models.path().join("breast_cancer/2"),
    );
    assert_eq!(
        std::fs::read(v1.join("model.bin")).unwrap(),
        std::fs::read(v2.join("model.bin")).unwrap()
    );
    assert_eq!(
        std::fs::read(v1.join("metrics.json")).unwrap(),
        std::fs::read(v2.join("metrics.json")).unwrap()
    );
    let manifest = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("model.toml")).unwrap();
        text.lines()
            .filter(|line| !line.starts_with("created_at") && !line.starts_with("version"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(manifest(&v1), manifest(&v2));
    assert_eq!(load_version(&v2).unwrap().manifest.version, 2);

    assert!(
        train(
            models.path(),
            &[
                "--dataset",
                "breast-cancer",
                "--algorithm",
                "random-forest",
                "--n-trees",
                "20",
                "--seed",
                "8"
            ]
        )
        .status
        .success()
    );
    assert_ne!(
        std::fs::read(v1.join("model.bin")).unwrap(),
        std::fs::read(models.path().join("breast_cancer/3/model.bin")).unwrap()
    );
    let leftovers: Vec<_> = std::fs::read_dir(models.path().join("breast_cancer"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging folders left behind: {leftovers:?}"
    );
}

#[test]
fn csv_with_integer_boolean_and_categorical_columns_trains_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("churn.csv");
    let mut text = String::from("tenure,monthly,senior,plan,churned\n");
    for i in 0..120 {
        let plan = ["basic", "plus", "pro"][i % 3];
        let churned = if (i % 3 == 0 && i % 2 == 0) || i % 7 == 0 {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!(
            "{},{:.2},{},{plan},{churned}\n",
            i % 40,
            20.0 + (i % 13) as f64 * 3.5,
            i % 5 == 0
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let models = dir.path().join("models");
    let output = train(
        &models,
        &[
            "--csv",
            csv.to_str().unwrap(),
            "--target",
            "churned",
            "--algorithm",
            "logistic-regression",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let artifact = load_version(&models.join("churn/1")).unwrap();
    let kinds: Vec<&str> = artifact
        .manifest
        .features
        .iter()
        .map(|f| f.kind.name())
        .collect();
    assert_eq!(kinds, ["integer", "number", "boolean", "categorical"]);
    let plan = &artifact.manifest.features[3];
    assert_eq!(
        plan.categories.as_deref().unwrap(),
        ["basic", "plus", "pro"]
    );
    assert_eq!(artifact.manifest.labels, ["no", "yes"]);
    use mlserve::model::FeatureValue::{Category, Number};
    let p = artifact
        .model
        .native()
        .unwrap()
        .predict_proba(&[
            Number(3.0),
            Number(30.0),
            Number(1.0),
            Category("pro".into()),
        ])
        .unwrap();
    assert_eq!(p.len(), 2);
}

/// Runs a training that must fail: exit code 2, one error line, nothing written.
fn assert_refused(extra: &[&str], expected: &str) {
    let models = tempfile::tempdir().unwrap();
    let repository = models.path().join("repo");
    let output = train(&repository, extra);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{extra:?}: expected '{expected}' in: {stderr}"
    );
    assert!(
        !repository.exists(),
        "{extra:?} wrote into the model repository"
    );
}

fn csv_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn bad_input_gives_one_clear_error_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = csv_file(
        d,
        "good.csv",
        "a,b,y\n1,2,x\n3,4,z\n5,6,x\n7,8,z\n9,1,x\n2,2,z\n",
    );
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--dataset".into(),
                "mnist".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "invalid value 'mnist'",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "xgboost".into(),
            ],
            "invalid value 'xgboost'",
        ),
        (
            vec![
                "--csv".into(),
                d.join("absent.csv").to_str().unwrap().into(),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "absent.csv: No such file",
        ),
        (
            vec![
                "--csv".into(),
                csv_file(d, "noheader.csv", "1,2,3\n4,5,6\n"),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "holds numbers, not column names",
        ),
        (
            vec![
                "--csv".into(),
                csv_file(d, "empty.csv", ""),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "the file is empty",
        ),
        (
            vec![
                "--csv".into(),
                good.clone(),
                "--target".into(),
                "label".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "no column named 'label'",
        ),
        (
            vec![
                "--csv".into(),
                csv_file(d, "text.csv", "a,b,y\n1,2,x\n3,4,z\n5,six,x\n7,8,z\n"),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "text.csv:4: column 'b': expected a finite number, got 'six'",
        ),
        (
            vec![
                "--csv".into(),
                csv_file(d, "hole.csv", "a,b,y\n1,2,x\n3,,z\n"),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "hole.csv:3: column 'b' is empty",
        ),
        (
            vec![
                "--csv".into(),
                csv_file(d, "one.csv", "a,y\n1,x\n2,x\n3,x\n"),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "knn".into(),
            ],
            "single class ('x')",
        ),
        (
            vec![
                "--csv".into(),
                good.clone(),
                "--target".into(),
                "y".into(),
                "--algorithm".into(),
                "naive-bayes".into(),
                "--cv".into(),
                "10".into(),
            ],
            "fewer than the folds",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "logistic-regression".into(),
                "--c".into(),
                "-1".into(),
            ],
            "--c must be a positive number",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "logistic-regression".into(),
                "--k".into(),
                "3".into(),
            ],
            "--k does not apply to logistic-regression",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "knn".into(),
                "--k".into(),
                "500".into(),
            ],
            "--k 500 is more than the 120 training rows",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "knn".into(),
                "--test-size".into(),
                "1.5".into(),
            ],
            "--test-size must be between 0 and 1",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "knn".into(),
                "--name".into(),
                "../evil".into(),
            ],
            "invalid model name '../evil'",
        ),
        (
            vec![
                "--dataset".into(),
                "iris".into(),
                "--algorithm".into(),
                "random-forest".into(),
                "--max-features".into(),
                "many".into(),
            ],
            "expected sqrt, log2, all or a positive whole number",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&args, expected);
    }
}

#[test]
fn log_file_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    let output = train(
        &dir.path().join("models"),
        &[
            "--dataset",
            "iris",
            "--algorithm",
            "naive-bayes",
            "--log-file",
            log.to_str().unwrap(),
        ],
    );
    assert!(output.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("model written") && text.contains("iris"),
        "{text}"
    );
}

#[test]
fn summary_table_is_printed_unless_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().to_str().unwrap();
    let output = mlserve(&[
        "train",
        "--dataset",
        "iris",
        "--algorithm",
        "decision-tree",
        "--models",
        models,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("accuracy")
            && stdout.contains("confusion matrix")
            && stdout.contains("versicolor"),
        "{stdout}"
    );
    let quiet = mlserve(&[
        "train",
        "--dataset",
        "iris",
        "--algorithm",
        "decision-tree",
        "--models",
        models,
        "--quiet",
    ]);
    assert!(quiet.status.success() && quiet.stdout.is_empty());
}
