//! `mlserve import --training-data CSV --test-data CSV --target COLUMN`: an imported model
//! evaluated on held-out rows as a trained model is on its held-out split. The reference is
//! the library's own answers for the same rows (scikit-learn's through expected.json of the
//! ONNX fixtures, XGBoost's of the boosted ones), scored against labels the test chooses.

mod common;

use common::onnx::{expected, import, manifest};
use common::{TestServer, test_settings};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A CSV of a dataset's rows (an empty cell for a missing value) with a target column.
fn csv_with_target(dir: &Path, name: &str, dataset: &Value, target: &[String]) -> PathBuf {
    let features: Vec<&str> = dataset["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let mut text = format!("{},truth\n", features.join(","));
    for (row, truth) in dataset["rows"].as_array().unwrap().iter().zip(target) {
        let cells: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().map_or(String::new(), |x| x.to_string()))
            .collect();
        text.push_str(&format!("{},{truth}\n", cells.join(",")));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The reference's labels with every fourth one replaced by another class, so the accuracy is
/// neither 0 nor 1.
fn truth_from(reference: &[usize], labels: &[&str]) -> Vec<String> {
    reference
        .iter()
        .enumerate()
        .map(|(i, &class)| {
            let class = if i % 4 == 0 {
                (class + 1) % labels.len()
            } else {
                class
            };
            labels[class].to_string()
        })
        .collect()
}

/// Accuracy and log loss (probabilities clipped to machine epsilon, as scikit-learn 1.9's
/// `log_loss` clips float64) of `probabilities`
/// against `truth`.
fn reference_metrics(probabilities: &[Vec<f64>], truth: &[usize]) -> (f64, f64) {
    let n = truth.len() as f64;
    let argmax = |p: &Vec<f64>| {
        (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
            .unwrap()
    };
    let correct = probabilities
        .iter()
        .zip(truth)
        .filter(|(p, t)| argmax(p) == **t)
        .count() as f64;
    let loss = probabilities
        .iter()
        .zip(truth)
        .map(|(p, &t)| -p[t].clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln())
        .sum::<f64>();
    (correct / n, loss / n)
}

fn probabilities_of(fixture: &Value, key: &str) -> Vec<Vec<f64>> {
    serde_json::from_value(fixture[key].clone()).unwrap()
}

#[tokio::test]
async fn an_onnx_classifier_is_evaluated_on_held_out_rows_as_scikit_learn_scores_them() {
    let expected = expected();
    let dataset = &expected["datasets"]["iris"];
    let fixture = &expected["fixtures"]["iris_random_forest"];
    let probabilities = probabilities_of(fixture, "sklearn_probabilities");
    let labels = ["setosa", "versicolor", "virginica"];
    let reference: Vec<usize> = probabilities
        .iter()
        .map(|p| (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap())
        .collect();
    let truth = truth_from(&reference, &labels);
    let work = tempfile::tempdir().unwrap();
    let csv = csv_with_target(work.path(), "iris.csv", dataset, &truth);
    let repo = work.path().join("models");
    let graph = common::onnx::fixtures().join("iris_random_forest.onnx");
    let csv_arg = csv.to_str().unwrap();
    let output = import(
        &repo,
        &[
            graph.to_str().unwrap(),
            "--name",
            "iris",
            "--labels",
            "setosa,versicolor,virginica",
            "--training-data",
            csv_arg,
            "--test-data",
            csv_arg,
            "--target",
            "truth",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let classes: Vec<usize> = truth
        .iter()
        .map(|t| labels.iter().position(|l| l == t).unwrap())
        .collect();
    let (accuracy, log_loss) = reference_metrics(&probabilities, &classes);
    assert!(stdout.contains("on the test data: accuracy"), "{stdout}");
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(repo.join("iris/1/metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["accuracy"].as_f64().unwrap(), accuracy);
    assert!(accuracy > 0.6 && accuracy < 0.8, "{accuracy}");
    // ONNX Runtime computes in f32.
    let ours = metrics["log_loss"].as_f64().unwrap();
    assert!((ours - log_loss).abs() < 1e-4, "{ours} vs {log_loss}");
    assert_eq!(
        metrics["split"]["test_rows"].as_array().unwrap().len(),
        truth.len()
    );
    let written = manifest(&repo, "iris");
    assert_eq!(written["metrics"]["accuracy"].as_f64().unwrap(), accuracy);
    let features: Vec<&str> = written["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(!features.contains(&"truth"), "the target is not a feature");
    let card = std::fs::read_to_string(repo.join("iris/1/report.html")).unwrap();
    assert!(
        card.contains("Confusion matrix"),
        "the card shows the evaluation"
    );

    // The server describes the model with it, and the UI's card renders it.
    let server = TestServer::start(test_settings(&repo)).await;
    let (status, _, described) = server.get("/api/models/iris").await;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["metrics"]["accuracy"].as_f64(), Some(accuracy));
    let (status, page) = server.text("/ui/models/iris/card").await;
    assert_eq!(status, 200);
    assert!(page.contains("Confusion matrix"), "{page}");
    server.server.shutdown().await.unwrap();
}

fn boosted_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boosted")
}

#[test]
fn an_xgboost_model_is_evaluated_with_missing_values_and_bad_rows_are_refused_by_line() {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(boosted_fixtures().join("expected.json")).unwrap())
            .unwrap();
    let dataset = &expected["datasets"]["breast_cancer"];
    let probabilities = probabilities_of(
        &expected["fixtures"]["xgb_binary_logistic"],
        "probabilities",
    );
    let reference: Vec<usize> = probabilities
        .iter()
        .map(|p| usize::from(p[1] > p[0]))
        .collect();
    let labels = ["malignant", "benign"];
    let truth = truth_from(&reference, &labels);
    let work = tempfile::tempdir().unwrap();
    let csv = csv_with_target(work.path(), "cancer.csv", dataset, &truth);
    let repo = work.path().join("models");
    let model = boosted_fixtures().join("xgb_binary_logistic.json");
    let run = |test: &Path, name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .arg("import")
            .arg(&model)
            .args([
                "--name",
                name,
                "--labels",
                "malignant,benign",
                "--target",
                "truth",
            ])
            .arg("--training-data")
            .arg(&csv)
            .arg("--test-data")
            .arg(test)
            .arg("--models")
            .arg(&repo)
            .output()
            .unwrap()
    };
    let output = run(&csv, "cancer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let classes: Vec<usize> = truth
        .iter()
        .map(|t| labels.iter().position(|l| l == t).unwrap())
        .collect();
    let (accuracy, log_loss) = reference_metrics(&probabilities, &classes);
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(repo.join("cancer/1/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["accuracy"].as_f64().unwrap(), accuracy);
    let ours = metrics["log_loss"].as_f64().unwrap();
    assert!((ours - log_loss).abs() < 1e-6, "{ours} vs {log_loss}");

    // A label the model does not have, and a cell of the wrong type, are refused by line.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3] = lines[3]
        .replace(",malignant", ",maybe")
        .replace(",benign", ",maybe");
    let unknown = work.path().join("unknown.csv");
    std::fs::write(&unknown, lines.join("\n")).unwrap();
    let output = run(&unknown, "refused");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(":4: column 'truth' (the target): 'maybe' is not one of the model's classes (malignant, benign)"),
        "{stderr}"
    );
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[5] = format!("n/a{}", &lines[5][lines[5].find(',').unwrap()..]);
    let bad = work.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let output = run(&bad, "refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(":6: column '"), "{stderr}");
    assert!(!repo.join("refused").exists(), "nothing is written");
}

#[test]
fn columns_that_would_be_misread_are_refused_before_anything_is_written() {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(boosted_fixtures().join("expected.json")).unwrap())
            .unwrap();
    let dataset = &expected["datasets"]["breast_cancer"];
    let rows = dataset["rows"].as_array().unwrap().len();
    let truth: Vec<String> = (0..rows)
        .map(|i| ["malignant", "benign"][i % 2].to_string())
        .collect();
    let work = tempfile::tempdir().unwrap();
    let csv = csv_with_target(work.path(), "cancer.csv", dataset, &truth);
    let text = std::fs::read_to_string(&csv).unwrap();
    let repo = work.path().join("models");
    let model = boosted_fixtures().join("xgb_binary_logistic.json");
    let write = |name: &str, text: String| {
        let path = work.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .arg("import")
            .arg(&model)
            .args([
                "--name",
                "refused",
                "--labels",
                "malignant,benign",
                "--models",
            ])
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let csv = csv.to_str().unwrap();
    let first_feature = dataset["features"][0].as_str().unwrap();
    // The target names one of the model's features.
    let stderr = run(&["--training-data", csv, "--target", first_feature]);
    assert!(
        stderr.contains(&format!(
            "--target {first_feature} is one of the model's features"
        )),
        "{stderr}"
    );
    // A target the header does not have.
    let stderr = run(&["--training-data", csv, "--target", "nosuch"]);
    assert!(
        stderr.contains("--target names 'nosuch', which is not a column of its header"),
        "{stderr}"
    );
    // A header with some of the model's names but not all, the same number of columns.
    let renamed = write(
        "renamed.csv",
        text.replacen(first_feature, "something_else", 1),
    );
    let stderr = run(&[
        "--training-data",
        renamed.to_str().unwrap(),
        "--target",
        "truth",
    ]);
    assert!(
        stderr.contains(&format!("the header lacks {first_feature}")),
        "{stderr}"
    );
    // A column named twice; a test file with no rows.
    let header = text.lines().next().unwrap();
    let twice = write(
        "twice.csv",
        format!("{header},truth\n{}", &text[header.len() + 1..]),
    );
    let stderr = run(&[
        "--training-data",
        twice.to_str().unwrap(),
        "--target",
        "truth",
    ]);
    assert!(
        stderr.contains("the header names the column 'truth' twice"),
        "{stderr}"
    );
    let empty = write("empty.csv", format!("{header}\n"));
    let stderr = run(&[
        "--training-data",
        csv,
        "--target",
        "truth",
        "--test-data",
        empty.to_str().unwrap(),
    ]);
    assert!(stderr.contains("no rows to evaluate on"), "{stderr}");
    // Lines are the file's: a blank line before the third row moves it to line 5.
    let mut lines: Vec<&str> = text.lines().collect();
    let bad_row = lines[3].rsplit_once(',').unwrap().0.to_string() + ",maybe";
    lines[3] = &bad_row;
    lines.insert(3, "");
    let blank = write("blank.csv", lines.join("\n"));
    let stderr = run(&[
        "--training-data",
        csv,
        "--target",
        "truth",
        "--test-data",
        blank.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("blank.csv:5: column 'truth' (the target): 'maybe'"),
        "{stderr}"
    );
    assert!(!repo.join("refused").exists(), "nothing is written");
}
