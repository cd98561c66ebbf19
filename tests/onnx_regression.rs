//! scikit-learn regressors exported as ONNX (tests/fixtures/onnx/expected_regression.json,
//! written by scripts/make_onnx_fixtures.py): imported, loaded as models that predict a
//! number and served, they answer scikit-learn's own predictions; the import reads the
//! target's range from the features' CSV with `--target`, and refuses what does not fit.

mod common;

use common::onnx::{fixtures, import, import_fixture, library};
use common::{TestServer, test_settings};
use mlserve::import::{FeatureNames, ImportOptions, import_onnx};
use mlserve::model::{Outcome, Repository, Task};
use serde_json::{Value, json};
use std::path::Path;

fn expected() -> Value {
    let path = fixtures().join("expected_regression.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A float32 graph keeps about 7 significant digits; its sums over many terms (a forest, an
/// SVR's kernel expansion) lose a little more.
fn close(got: f64, expected: f64) -> bool {
    (got - expected).abs() <= 2e-5 * expected.abs().max(1.0)
}

fn fixture_task(fixture: &Value) -> Option<Task> {
    (fixture["task"] == "regression").then_some(Task::Regression)
}

/// Imports every diabetes regressor into `repo` as `name` (by the fixture's name).
fn import_every_regressor(repo: &Path, expected: &Value) -> Vec<String> {
    let names_file = repo.with_file_name(format!("diabetes-names-{}.txt", std::process::id()));
    let diabetes = &expected["datasets"]["diabetes"];
    let names: Vec<&str> = diabetes["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    std::fs::write(&names_file, names.join("\n")).unwrap();
    let mut imported = Vec::new();
    for (name, fixture) in expected["fixtures"].as_object().unwrap() {
        if fixture["dataset"] != "diabetes" {
            continue;
        }
        import_onnx(&ImportOptions {
            graph: fixtures().join(format!("{name}.onnx")),
            name: name.clone(),
            models: repo.to_path_buf(),
            features: FeatureNames::File(names_file.clone()),
            labels: None,
            all_trees: false,
            task: fixture_task(fixture),
            target: None,
            test_data: None,
            onnxruntime: Some(library()),
            background: None,
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        imported.push(name.clone());
    }
    let _ = std::fs::remove_file(&names_file);
    imported
}

#[tokio::test]
async fn every_regressor_answers_over_the_native_api_v2_v1_and_the_official_clients() {
    let expected = expected();
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    let models = import_every_regressor(&repo, &expected);
    assert!(models.len() >= 12, "{models:?}");
    let server = TestServer::start(test_settings(&repo)).await;
    let diabetes = &expected["datasets"]["diabetes"];
    let rows: Vec<Value> = diabetes["rows"].as_array().unwrap()[..5].to_vec();
    let objects = common::rows_as_objects(&json!({"features": diabetes["features"], "rows": rows}));
    for name in &models {
        let sklearn: Vec<f64> = expected["fixtures"][name]["sklearn_values"]
            .as_array()
            .unwrap()[..5]
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let (status, _, batch) = server
            .post_json(
                &format!("/api/models/{name}/predict"),
                &json!({"instances": objects}),
            )
            .await;
        assert_eq!(status, 200, "{name}: {batch}");
        for (item, want) in batch["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&sklearn)
        {
            assert!(
                close(item["prediction"].as_f64().unwrap(), *want),
                "{name}: {item} vs {want}"
            );
        }
    }
    let seen = common::clients::run_python_client(
        "regression_clients.py",
        vec![
            server.server.addr.to_string(),
            models.join(","),
            json!(rows).to_string(),
        ],
    )
    .await;
    for name in &models {
        let sklearn: Vec<f64> = expected["fixtures"][name]["sklearn_values"]
            .as_array()
            .unwrap()[..5]
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        common::clients::assert_regression_clients_saw(&seen[name], &sklearn, 2e-5);
    }
    server.server.shutdown().await.unwrap();
}

#[test]
fn a_graph_whose_outputs_do_not_tell_needs_the_task() {
    let repo = tempfile::tempdir().unwrap();
    let graph = fixtures().join("diabetes_two_outputs.onnx");
    let output = import(repo.path(), &[graph.to_str().unwrap(), "--name", "two"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("import it with --task regression"),
        "{stderr}"
    );
    // Read as a classifier, it has no probabilities either.
    let output = import(
        repo.path(),
        &[
            graph.to_str().unwrap(),
            "--name",
            "two",
            "--task",
            "classification",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no probability output"), "{stderr}");
    // A classifier cannot be read as a regressor.
    let classifier = fixtures().join("iris_random_forest.onnx");
    let output = import(
        repo.path(),
        &[
            classifier.to_str().unwrap(),
            "--name",
            "iris",
            "--task",
            "regression",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("it is a classifier"), "{stderr}");
    assert!(std::fs::read_dir(repo.path()).unwrap().next().is_none());
}

#[test]
fn every_regressor_imports_loads_and_answers_scikit_learns_values() {
    let expected = expected();
    let fixtures_list = expected["fixtures"].as_object().unwrap();
    assert!(
        fixtures_list.len() >= 13,
        "{} fixtures",
        fixtures_list.len()
    );
    let repo = tempfile::tempdir().unwrap();
    let names_file = repo.path().join("../diabetes-names.txt");
    let names_file =
        names_file.with_file_name(format!("diabetes-names-{}.txt", std::process::id()));
    let diabetes = &expected["datasets"]["diabetes"];
    let names: Vec<&str> = diabetes["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    std::fs::write(&names_file, names.join("\n")).unwrap();
    for name in fixtures_list.keys() {
        let dataset = &expected["datasets"][fixtures_list[name]["dataset"].as_str().unwrap()];
        let imported = import_onnx(&ImportOptions {
            graph: fixtures().join(format!("{name}.onnx")),
            name: name.clone(),
            models: repo.path().to_path_buf(),
            features: if dataset["inputs"] == "matrix" {
                FeatureNames::File(names_file.clone())
            } else {
                FeatureNames::FromGraph
            },
            labels: None,
            // A graph whose outputs do not tell is imported as the fixture says it is.
            all_trees: false,
            task: fixture_task(&fixtures_list[name]),
            target: None,
            test_data: None,
            onnxruntime: Some(library()),
            background: None,
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(imported.manifest.task, Task::Regression, "{name}");
        assert!(imported.manifest.labels.is_empty(), "{name}");
    }
    let _ = std::fs::remove_file(&names_file);
    let repository = Repository::new(repo.path());
    let report = repository.reload_all(false);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let catalog = repository.catalog();
    let mut worst: Vec<String> = Vec::new();
    for (name, fixture) in fixtures_list {
        let dataset = &expected["datasets"][fixture["dataset"].as_str().unwrap()];
        let model = catalog.resolve(name, None).unwrap();
        let outcomes = common::outcomes_of(&model, &common::rows_as_objects(dataset));
        let sklearn = fixture["sklearn_values"].as_array().unwrap();
        assert_eq!(outcomes.len(), sklearn.len(), "{name}");
        for (row, (outcome, want)) in outcomes.iter().zip(sklearn).enumerate() {
            let want = want.as_f64().unwrap();
            match outcome {
                Ok(Outcome::Value(got)) if close(*got, want) => {}
                other => worst.push(format!("{name} row {row}: {other:?}, scikit-learn {want}")),
            }
        }
    }
    assert!(
        worst.is_empty(),
        "{} differences:\n{}",
        worst.len(),
        worst.join("\n")
    );
}

/// The houses training rows, with their price, as the CSV an import reads.
fn houses_csv(dir: &Path, houses: &Value, extra: Option<(usize, &str)>) -> String {
    let mut text = String::from("rooms,area,district,price\n");
    for (i, row) in houses["training_rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let price = match extra {
            Some((at, cell)) if at == i => cell.to_string(),
            _ => row["price"].to_string(),
        };
        // An unknown area is an empty cell.
        let area = row["area"]
            .as_f64()
            .map_or(String::new(), |a| a.to_string());
        text.push_str(&format!(
            "{},{area},{},{price}\n",
            row["rooms"],
            row["district"].as_str().unwrap()
        ));
    }
    let path = dir.join(format!("houses-{}.csv", extra.map_or(0, |(at, _)| at + 1)));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn an_imported_regressor_takes_its_target_from_the_csv_and_serves_on_every_protocol() {
    let expected = expected();
    let houses = &expected["datasets"]["houses"];
    let sklearn = expected["fixtures"]["houses_ridge"]["sklearn_values"]
        .as_array()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    let csv = houses_csv(work.path(), houses, None);
    // Held-out rows with true prices the test chooses: scikit-learn's prediction 1,000 under or
    // 3,000 over, so the reference metrics follow from its predictions.
    let truth: Vec<f64> = sklearn
        .iter()
        .enumerate()
        .map(|(i, v)| v.as_f64().unwrap() + if i % 2 == 0 { 1000.0 } else { -3000.0 })
        .collect();
    let mut test_csv = String::from("rooms,area,district,price\n");
    for (row, price) in houses["rows"].as_array().unwrap().iter().zip(&truth) {
        let area = row["area"]
            .as_f64()
            .map_or(String::new(), |a| a.to_string());
        let district = row["district"].as_str().unwrap();
        test_csv.push_str(&format!("{},{area},{district},{price}\n", row["rooms"]));
    }
    let test_path = work.path().join("houses-test.csv");
    std::fs::write(&test_path, test_csv).unwrap();
    let printed = import_fixture(
        &repo,
        "houses_ridge.onnx",
        "houses",
        &[
            "--training-data",
            &csv,
            "--target",
            "price",
            "--test-data",
            test_path.to_str().unwrap(),
        ],
    );
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(repo.join("houses/1/metrics.json")).unwrap())
            .unwrap();
    let errors: Vec<f64> = truth
        .iter()
        .zip(sklearn)
        .map(|(t, p)| t - p.as_f64().unwrap())
        .collect();
    let n = errors.len() as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
    let r2 = 1.0
        - errors.iter().map(|e| e * e).sum::<f64>()
            / truth.iter().map(|t| (t - mean).powi(2)).sum::<f64>();
    for (name, want) in [("rmse", rmse), ("r2", r2)] {
        let got = metrics[name].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-3 * want.abs(),
            "{name}: {got} vs {want}"
        );
    }
    assert!(printed.contains("on the test data: R²"), "{printed}");
    assert!(
        printed.contains("predicts a number: price (trained on"),
        "{printed}"
    );
    assert!(!printed.contains("feature price"), "{printed}");
    let manifest = std::fs::read_to_string(repo.join("houses/1/model.toml")).unwrap();
    assert!(manifest.contains("task = \"regression\""), "{manifest}");
    assert!(
        manifest.contains("[target]") && manifest.contains("name = \"price\""),
        "{manifest}"
    );
    assert!(
        printed.contains("feature area: number, nullable (the graph imputes it)"),
        "{printed}"
    );
    // The outputs' drift baseline: the graph's own predictions on the CSV's rows.
    assert!(manifest.contains("[target.predictions]"), "{manifest}");

    // What cannot be imported is refused, with exit code 2 and the reason.
    let bad_cell = houses_csv(work.path(), houses, Some((3, "n/a")));
    let houses_graph = fixtures().join("houses_ridge.onnx");
    let refused: [(Vec<&str>, &str); 4] = [
        (
            vec![
                houses_graph.to_str().unwrap(),
                "--name",
                "h",
                "--labels",
                "a,b",
            ],
            "the graph predicts a number",
        ),
        (
            vec![
                houses_graph.to_str().unwrap(),
                "--name",
                "h",
                "--features-from",
                &csv,
                "--target",
                "cost",
            ],
            "--target names 'cost', which is not a column of its header",
        ),
        (
            vec![
                houses_graph.to_str().unwrap(),
                "--name",
                "h",
                "--features-from",
                &bad_cell,
                "--target",
                "price",
            ],
            ":5: column 'price' (the target): expected a finite number, got 'n/a'",
        ),
        (
            vec![
                houses_graph.to_str().unwrap(),
                "--name",
                "h",
                "--test-data",
                &csv,
            ],
            "--target <COLUMN>",
        ),
    ];
    for (args, message) in refused {
        let output = import(&repo, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!repo.join("h").exists());

    let server = TestServer::start(test_settings(&repo)).await;
    let rows = common::rows_as_objects(houses);
    let (status, _, single) = server
        .post_json("/api/models/houses/predict", &rows[0])
        .await;
    assert_eq!(status, 200, "{single}");
    assert!(
        close(
            single["prediction"].as_f64().unwrap(),
            sklearn[0].as_f64().unwrap()
        ),
        "{single}"
    );
    let (status, _, batch) = server
        .post_json("/api/models/houses/predict", &json!({"instances": rows}))
        .await;
    assert_eq!(status, 200, "{batch}");
    for (item, want) in batch["predictions"].as_array().unwrap().iter().zip(sklearn) {
        assert!(
            close(item["prediction"].as_f64().unwrap(), want.as_f64().unwrap()),
            "{item}"
        );
    }
    let (_, _, metadata) = server.get("/v2/models/houses").await;
    assert_eq!(metadata["platform"], "onnxruntime_onnx");
    assert_eq!(
        metadata["outputs"],
        json!([{"name": "prediction", "datatype": "FP64", "shape": [-1]}])
    );
    // V2 takes an unknown area as NaN (which Python's json module writes bare).
    let column = |name: &str| -> Vec<String> {
        rows.iter()
            .map(|r| match &r[name] {
                Value::Null => "NaN".to_string(),
                value => value.to_string(),
            })
            .collect()
    };
    assert!(
        column("area").contains(&"NaN".to_string()),
        "a held-out row has no area"
    );
    let body = format!(
        r#"{{"inputs": [{{"name": "rooms", "datatype": "FP64", "shape": [{n}], "data": [{}]}},
            {{"name": "area", "datatype": "FP64", "shape": [{n}], "data": [{}]}},
            {{"name": "district", "datatype": "BYTES", "shape": [{n}], "data": [{}]}}]}}"#,
        column("rooms").join(","),
        column("area").join(","),
        column("district").join(","),
        n = rows.len()
    );
    let (status, inferred) = server.post_text("/v2/models/houses/infer", body).await;
    assert_eq!(status, 200, "{inferred}");
    let data = inferred["outputs"][0]["data"].as_array().unwrap();
    assert_eq!(data.len(), sklearn.len());
    for (got, want) in data.iter().zip(sklearn) {
        assert!(
            close(got.as_f64().unwrap(), want.as_f64().unwrap()),
            "{inferred}"
        );
    }
    // The form places the answer on the target's training range, read from the CSV.
    let (_, page) = server.text("/ui/models/houses").await;
    assert!(page.contains("name=\"district\""), "{page}");
    let (_, _, described) = server.get("/api/models/houses").await;
    let training: Vec<f64> = houses["training_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["price"].as_f64().unwrap())
        .collect();
    let min = training.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(described["target"]["min"].as_f64().unwrap(), min);
    assert_eq!(described["task"], "regression");
    server.server.shutdown().await.unwrap();
}
