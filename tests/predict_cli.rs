//! `mlserve predict`: offline batch prediction of a CSV file.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn predict(models: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .arg("predict")
        .arg("--models")
        .arg(models)
        .args(args)
        .output()
        .unwrap()
}

const ROWS: &str = "id,sepal_length,sepal_width,petal_length,petal_width
a,5.1,3.5,1.4,0.2
b,5.9,x,5.1,1.8
c,6.3,3.3,6.0,2.5
d,5.7,2.8,4.1,1.3
";

#[test]
fn predicts_every_good_row_and_reports_bad_ones_with_line_numbers() {
    let models = common::demo_repository();
    let input = models.path().join("rows.csv");
    let output = models.path().join("out.csv");
    std::fs::write(&input, ROWS).unwrap();
    let run = predict(
        models.path(),
        &[
            "--model",
            "iris",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("rows.csv:3: skipped: sepal_width: expected a finite number, got \"x\""),
        "{stderr}"
    );
    assert!(stderr.contains("predicted 3 rows"), "{stderr}");
    let mut reader = csv::Reader::from_path(&output).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "sepal_length",
            "sepal_width",
            "petal_length",
            "petal_width",
            "label",
            "probability_setosa",
            "probability_versicolor",
            "probability_virginica"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, ["a", "c", "d"]);
    let labels: Vec<&str> = rows.iter().map(|r| &r[5]).collect();
    assert_eq!(labels, ["setosa", "virginica", "versicolor"]);
    for row in &rows {
        let total: f64 = (6..9).map(|i| row[i].parse::<f64>().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}

#[test]
fn fail_fast_stops_at_the_first_bad_row_and_writes_nothing() {
    let models = common::demo_repository();
    let input = models.path().join("rows.csv");
    let output = models.path().join("out.csv");
    std::fs::write(&input, ROWS).unwrap();
    let run = predict(
        models.path(),
        &[
            "--model",
            "iris/1",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--fail-fast",
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rows.csv:3: sepal_width: expected a finite number"),
        "{stderr}"
    );
    assert!(!output.exists());
    let leftovers: Vec<_> = std::fs::read_dir(models.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn refuses_missing_columns_unknown_models_and_versions() {
    let models = common::demo_repository();
    let input = models.path().join("rows.csv");
    let output = models.path().join("out.csv");
    std::fs::write(&input, "sepal_length,sepal_width,petal_length\n1,2,3\n").unwrap();
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let clash = models.path().join("clash.csv");
    std::fs::write(
        &clash,
        "sepal_length,sepal_width,petal_length,petal_width,label\n1,2,3,4,x\n",
    )
    .unwrap();
    let cases = [
        (
            vec![
                "--model",
                "iris",
                "--input",
                clash.to_str().unwrap(),
                "--output",
                o,
            ],
            "already has a column named 'label'",
        ),
        (
            vec!["--model", "iris", "--input", i, "--output", o],
            "lacks the feature column(s) petal_width",
        ),
        (
            vec!["--model", "titanic", "--input", i, "--output", o],
            "no model named 'titanic'",
        ),
        (
            vec!["--model", "iris/9", "--input", i, "--output", o],
            "has no version '9'",
        ),
        (
            vec![
                "--model",
                "iris",
                "--input",
                "/nonexistent.csv",
                "--output",
                o,
            ],
            "/nonexistent.csv",
        ),
    ];
    for (args, expected) in cases {
        let run = predict(models.path(), &args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!output.exists());
    }
}
