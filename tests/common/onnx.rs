//! The ONNX fixtures of tests/fixtures/onnx (exported from scikit-learn by
//! scripts/make_onnx_fixtures.py, with scikit-learn's own answers in expected.json), and
//! `mlserve import` run on them with the test's ONNX Runtime.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

pub fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

pub fn library() -> PathBuf {
    let path = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/onnxruntime/libonnxruntime.so.1.32.0")
        });
    assert!(
        path.is_file(),
        "ONNX Runtime is missing at {}: scripts/test.sh fetches it",
        path.display()
    );
    path
}

/// Runs `mlserve import ARGS` with the test's ONNX Runtime.
pub fn import(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .arg("import")
        .args(args)
        .arg("--models")
        .arg(repo)
        .env("ORT_DYLIB_PATH", library())
        .output()
        .unwrap()
}

/// Imports a fixture graph as `name` and returns what the command printed; the import must work.
pub fn import_fixture(repo: &Path, fixture: &str, name: &str, extra: &[&str]) -> String {
    let graph = fixtures().join(fixture);
    let mut args = vec![graph.to_str().unwrap(), "--name", name];
    args.extend_from_slice(extra);
    let output = import(repo, &args);
    assert!(
        output.status.success(),
        "{fixture}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The loans rows as a CSV (empty cell for a missing income), with an extra target column.
pub fn loans_csv(dir: &Path, loans: &Value) -> PathBuf {
    let mut text = String::from("age,income,plan,region,approved\n");
    for (row, label) in loans["rows"].as_array().unwrap().iter().zip(
        expected()["fixtures"]["loans_column_transformer"]["sklearn_labels"]
            .as_array()
            .unwrap(),
    ) {
        let income = row["income"]
            .as_f64()
            .map_or(String::new(), |v| v.to_string());
        text.push_str(&format!(
            "{},{income},{},{},{}\n",
            row["age"],
            row["plan"].as_str().unwrap(),
            row["region"].as_str().unwrap(),
            label.as_str().unwrap()
        ));
    }
    let path = dir.join("loans.csv");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn probabilities_of(fixture: &Value) -> Vec<Vec<f64>> {
    fixture["sklearn_probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// Imports the loans pipeline (ZipMap export) as `loans` into `repo`, its features and ranges
/// from the loans CSV written into `work`, its classes named declined and approved. Returns
/// the CSV and what the import printed.
pub fn import_loans(work: &Path, repo: &Path) -> (PathBuf, String) {
    let csv = loans_csv(work, &expected()["datasets"]["loans"]);
    let stdout = import_fixture(
        repo,
        "loans_column_transformer.onnx",
        "loans",
        &[
            "--features-from",
            csv.to_str().unwrap(),
            "--labels",
            "declined,approved",
        ],
    );
    (csv, stdout)
}

/// The manifest of version 1 of `name` in `repo`, as JSON.
pub fn manifest(repo: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(repo.join(name).join("1/model.toml")).unwrap();
    serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap()
}

/// Imports a fixture of expected.json's `datasets` as `name`: one input per column is named by
/// the graph, other inputs by a file of the dataset's feature names written into `work`.
pub fn import_dataset_fixture(work: &Path, repo: &Path, name: &str) {
    let dataset = &expected()["datasets"][name];
    if dataset["inputs"] == "columns" {
        import_fixture(repo, &format!("{name}.onnx"), name, &[]);
        return;
    }
    let features: Vec<&str> = dataset["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let file = work.join(format!("{name}-features.txt"));
    std::fs::write(&file, features.join("\n")).unwrap();
    import_fixture(
        repo,
        &format!("{name}.onnx"),
        name,
        &["--features", file.to_str().unwrap()],
    );
}

/// Probabilities agree within 1e-5 (ONNX Runtime computes in float32).
pub fn assert_close(got: &[f64], want: &[f64], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}");
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{context}: {got:?} vs {want:?}");
    }
}

/// The data of the `probabilities` output of a V2 inference answer.
pub fn v2_probabilities(answer: &Value) -> Vec<f64> {
    answer["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probabilities")
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect()
}
