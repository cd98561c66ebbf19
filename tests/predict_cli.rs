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

/// An input of `good` rows cycling through ROWS' good rows (ids r0, r1, …), with one bad row
/// on line `bad_line`.
fn many_rows(good: usize, bad_line: usize) -> String {
    let samples = ["5.1,3.5,1.4,0.2", "6.3,3.3,6.0,2.5", "5.7,2.8,4.1,1.3"];
    let mut text = String::from("id,sepal_length,sepal_width,petal_length,petal_width\n");
    for i in 0..good {
        if i + 2 == bad_line {
            text.push_str("bad,5.9,x,5.1,1.8\n");
        }
        text.push_str(&format!("r{i},{}\n", samples[i % samples.len()]));
    }
    text
}

fn has_control_characters(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b == b'\r' || b == 0x1b)
}

#[test]
fn without_a_terminal_no_progress_is_drawn_and_the_output_is_unchanged() {
    let models = common::demo_repository();
    let input = models.path().join("many.csv");
    std::fs::write(&input, many_rows(3_000, 1_002)).unwrap();
    let output = models.path().join("out.csv");
    let quiet_output = models.path().join("quiet.csv");
    let args = |output: &Path| {
        vec![
            "--model".to_string(),
            "iris".to_string(),
            "--input".to_string(),
            input.display().to_string(),
            "--output".to_string(),
            output.display().to_string(),
        ]
    };
    // Output() pipes stdout and stderr: neither is a terminal.
    let run = predict(
        models.path(),
        &args(&output).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut quiet_args = args(&quiet_output);
    quiet_args.push("--quiet".to_string());
    let quiet = predict(
        models.path(),
        &quiet_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let skipped = format!(
        "{}:1002: skipped: sepal_width: expected a finite number, got \"x\"\n",
        input.display()
    );
    for run in [&run, &quiet] {
        assert_eq!(run.status.code(), Some(3));
        assert!(run.stdout.is_empty(), "{:?}", run.stdout);
        assert!(!has_control_characters(&run.stderr), "{:?}", run.stderr);
    }
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!(
            "{skipped}predicted 3000 rows into {}; skipped 1 bad rows (listed above)\n",
            output.display()
        )
    );
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), skipped);

    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(written, std::fs::read_to_string(&quiet_output).unwrap());
    assert!(!has_control_characters(written.as_bytes()));
    let mut lines = written.lines();
    assert_eq!(
        lines.next(),
        Some(
            "id,sepal_length,sepal_width,petal_length,petal_width,label,\
             probability_setosa,probability_versicolor,probability_virginica"
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 3_000);
    let labels = ["setosa", "virginica", "versicolor"];
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], format!("r{i}"));
        assert_eq!(row[5], labels[i % 3], "{row:?}");
        let total: f64 = row[6..9].iter().map(|p| p.parse::<f64>().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{row:?}");
    }
}

/// Runs `mlserve predict` with stderr on a terminal of its own (util-linux's `script`) and
/// stdout into a file: what the terminal showed, and stdout. None without `script`.
fn predict_on_a_terminal(models: &Path, args: &str, stdout: &Path) -> Option<(Output, Vec<u8>)> {
    let command = format!(
        "'{}' predict --models '{}' {args} > '{}'",
        env!("CARGO_BIN_EXE_mlserve"),
        models.display(),
        stdout.display()
    );
    let run = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .ok()?;
    let written = std::fs::read(stdout).unwrap();
    Some((run, written))
}

#[test]
fn on_a_terminal_progress_is_drawn_on_stderr_only_and_ends_with_a_summary() {
    let models = common::demo_repository();
    let input = models.path().join("many.csv");
    std::fs::write(&input, many_rows(3_000, 1_002)).unwrap();
    let (output, quiet_output) = (models.path().join("out.csv"), models.path().join("q.csv"));
    let stdout = models.path().join("stdout.txt");
    let args = |output: &Path| {
        format!(
            "--model iris --input '{}' --output '{}'",
            input.display(),
            output.display()
        )
    };
    let Some((run, run_stdout)) = predict_on_a_terminal(models.path(), &args(&output), &stdout)
    else {
        eprintln!("skipped: util-linux's script is not installed");
        return;
    };
    let terminal = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(3), "{terminal}");
    assert!(run_stdout.is_empty(), "{run_stdout:?}");
    assert!(has_control_characters(&run.stdout), "{terminal}");
    assert!(terminal.contains("3,001 rows in "), "{terminal}");
    assert!(terminal.contains(" rows/s)"), "{terminal}");
    assert!(terminal.contains("predicted 3000 rows into"), "{terminal}");
    assert!(
        terminal.contains("many.csv:1002: skipped: sepal_width"),
        "{terminal}"
    );

    let quiet_args = format!("{} --quiet", args(&quiet_output));
    let (quiet, quiet_stdout) = predict_on_a_terminal(models.path(), &quiet_args, &stdout).unwrap();
    let terminal = String::from_utf8_lossy(&quiet.stdout);
    assert_eq!(quiet.status.code(), Some(3), "{terminal}");
    assert!(quiet_stdout.is_empty());
    assert!(!terminal.contains('\u{1b}'), "{terminal}");
    assert!(!terminal.contains(" rows in "), "{terminal}");
    assert!(!terminal.contains("predicted"), "{terminal}");
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&quiet_output).unwrap()
    );
}
