//! XGBoost models saved as JSON and UBJSON, and LightGBM text models (tests/fixtures/boosted,
//! written by
//! scripts/make_boosted_fixtures.py with the libraries' own answers): imported, loaded and
//! scored by mlserve's tree engine, they answer as the library's scikit-learn wrapper does, a
//! tenth of the cells missing; files mlserve cannot evaluate are refused with the reason.

mod common;

use common::{TestServer, test_settings};
use mlserve::import::{FeatureNames, ImportOptions, import_model};
use mlserve::model::{Outcome, Repository};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boosted")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn options(file: &str, name: &str, models: &Path) -> ImportOptions {
    ImportOptions {
        graph: fixtures().join(file),
        name: name.to_string(),
        models: models.to_path_buf(),
        features: FeatureNames::FromGraph,
        labels: None,
        all_trees: false,
        task: None,
        target: None,
        test_data: None,
        onnxruntime: None,
        background: None,
    }
}

#[test]
fn every_xgboost_and_lightgbm_fixture_answers_as_the_library() {
    let expected = expected();
    let fixtures_list = expected["fixtures"].as_object().unwrap();
    assert!(fixtures_list.len() >= 31, "{}", fixtures_list.len());
    let repo = tempfile::tempdir().unwrap();
    for (name, fixture) in fixtures_list {
        import_model(&options(
            fixture["file"].as_str().unwrap(),
            name,
            repo.path(),
        ))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let repository = Repository::new(repo.path());
    let report = repository.reload_all(false);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let names: Vec<(&str, &str)> = fixtures_list
        .keys()
        .map(|n| (n.as_str(), n.as_str()))
        .collect();
    let differences = differences_from_the_library(&repository, &names, &expected);
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// Runs `mlserve import` on `file` into `repo`; the exit code and stderr.
fn import_cli(repo: &Path, file: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .arg("import")
        .arg(file)
        .args(["--name", "refused", "--models"])
        .arg(repo)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn files_mlserve_cannot_evaluate_are_refused_naming_why() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    let original = std::fs::read_to_string(fixtures().join("xgb_binary_logistic.json")).unwrap();
    let mut document: Value = serde_json::from_str(&original).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let ranking = {
        let mut d = document.clone();
        d["learner"]["objective"]["name"] = json!("rank:ndcg");
        write("ranking.json", d.to_string().as_bytes())
    };
    let linear = {
        let mut d = document.clone();
        d["learner"]["gradient_booster"]["name"] = json!("gblinear");
        write("linear.json", d.to_string().as_bytes())
    };
    let edited = |key: &str, value: Value| {
        let mut d = document.clone();
        let mut at = &mut d;
        for part in key.split('.') {
            at = &mut at[part];
        }
        *at = value;
        write(&format!("{key}.json"), d.to_string().as_bytes())
    };
    // Counts a damaged or hostile file could use to make the reader allocate without bound.
    let huge_indptr = edited(
        "learner.gradient_booster.model.iteration_indptr",
        json!([0, 1e15]),
    );
    let huge_classes = {
        let mut d = document.clone();
        d["learner"]["objective"]["name"] = json!("multi:softprob");
        d["learner"]["learner_model_param"]["num_class"] = json!("1000000000000");
        write("classes.json", d.to_string().as_bytes())
    };
    let huge_features = edited(
        "learner.learner_model_param.num_feature",
        json!("18446744073709551615"),
    );
    let lightgbm = std::fs::read_to_string(fixtures().join("lgb_regression.txt")).unwrap();
    let sqrt = write(
        "sqrt.txt",
        lightgbm
            .replacen("objective=regression", "objective=regression_l1 sqrt", 1)
            .as_bytes(),
    );
    let custom = write(
        "custom.txt",
        lightgbm
            .replacen("objective=regression", "no_objective=", 1)
            .as_bytes(),
    );
    let categorical = std::fs::read_to_string(fixtures().join("lgb_categorical.txt")).unwrap();
    // Two pandas lists but one categorical feature (an ordered category column LightGBM took
    // as numeric): the lists cannot be paired with features.
    let unpaired = write(
        "unpaired.txt",
        categorical
            .replacen("[categorical_feature: 2,3]", "[categorical_feature: 3]", 1)
            .as_bytes(),
    );
    let cycle = {
        document["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][1] = json!(0);
        write("cycle.json", document.to_string().as_bytes())
    };
    let cases = [
        (
            write("truncated.json", &original.as_bytes()[..2000]),
            "not valid JSON",
        ),
        (ranking, "objective 'rank:ndcg' is not supported"),
        (linear, "the booster is 'gblinear'"),
        (cycle, "tree 0: node 0 is reached twice"),
        (huge_indptr, "iteration_indptr does not count the trees"),
        (huge_classes, "1000000000000 classes for"),
        (huge_features, "is not a count below a million"),
        (sqrt, "(reg_sqrt), which mlserve does not evaluate"),
        (custom, "names no objective (a custom objective?)"),
        (unpaired, "cannot be told apart"),
        (
            write("legacy.bin", b"binf\x00\x00\x00\x3f\x1e\x00\x00\x00garbage"),
            "re-save it with booster.save_model(\"model.json\")",
        ),
        (
            fixtures().join("mlflow_sklearn_pickle"),
            "keep no XGBoost, LightGBM or ONNX file: a pickled model cannot be served",
        ),
    ];
    for (file, message) in cases {
        let (code, stderr) = import_cli(&repo, &file, &[]);
        assert_eq!(code, Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains(message), "{}: {stderr}", file.display());
    }
    let regressor = fixtures().join("xgb_reg_gamma.json");
    let (code, stderr) = import_cli(&repo, &regressor, &["--labels", "a,b"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--labels is for classifiers"), "{stderr}");
    assert!(
        !repo.join("refused").exists(),
        "a refused import wrote a version"
    );
}

#[tokio::test]
async fn an_xgboost_classifier_serves_with_missing_values_on_the_native_api_and_v2() {
    let expected = expected();
    let fixture = &expected["fixtures"]["xgb_binary_logistic"];
    let dataset = &expected["datasets"]["breast_cancer"];
    let repo = tempfile::tempdir().unwrap();
    let mut with_labels = options("xgb_binary_logistic.json", "cancer", repo.path());
    with_labels.labels = Some(vec!["malignant".into(), "benign".into()]);
    let imported = import_model(&with_labels).unwrap();
    assert!(
        imported.dir.join("source.json").is_file(),
        "the file is kept"
    );
    let server = TestServer::start(test_settings(repo.path())).await;
    let rows = common::rows_as_objects(dataset);
    let (status, _, answer) = server
        .post_json("/api/models/cancer/predict", &json!({"instances": rows}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    let mut with_missing = 0;
    for (row, (item, object)) in predictions.iter().zip(&rows).enumerate() {
        let want: Vec<f64> = serde_json::from_value(fixture["probabilities"][row].clone()).unwrap();
        let got = item["probabilities"]["benign"].as_f64().unwrap();
        assert!(
            (got - want[1]).abs() <= 1e-6,
            "row {row}: {got} vs {want:?}"
        );
        let label = if want[1] > want[0] {
            "benign"
        } else {
            "malignant"
        };
        assert_eq!(item["label"], label, "row {row}");
        with_missing += usize::from(object.as_object().unwrap().values().any(Value::is_null));
    }
    assert!(
        with_missing > 10,
        "only {with_missing} rows have a missing value"
    );
    // V2: missing values as NaN in an FP64 tensor.
    let first = dataset["rows"][0].as_array().unwrap();
    let cells: Vec<String> = first
        .iter()
        .map(|v| v.as_f64().map_or("NaN".to_string(), |x| x.to_string()))
        .collect();
    let body = format!(
        r#"{{"inputs": [{{"name": "input", "datatype": "FP64", "shape": [1, {}], "data": [{}]}}]}}"#,
        cells.len(),
        cells.join(",")
    );
    let (status, inferred) = server.post_text("/v2/models/cancer/infer", body).await;
    assert_eq!(status, 200, "{inferred}");
    let p = inferred["outputs"][2]["data"][1].as_f64().unwrap();
    let want = fixture["probabilities"][0][1].as_f64().unwrap();
    assert!((p - want).abs() <= 1e-6, "{p} vs {want}");
    let (_, _, metadata) = server.get("/v2/models/cancer").await;
    assert_eq!(metadata["platform"], "mlserve_boosted_trees");
    server.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn categories_are_named_as_the_frames_were_and_an_unknown_one_is_refused() {
    let repo = tempfile::tempdir().unwrap();
    for (file, name) in [
        ("lgb_categorical.txt", "lgb"),
        ("xgb_categorical.json", "xgb"),
    ] {
        import_model(&options(file, name, repo.path())).unwrap();
    }
    let server = TestServer::start(test_settings(repo.path())).await;
    for name in ["lgb", "xgb"] {
        let (_, _, described) = server.get(&format!("/api/models/{name}")).await;
        let plan = &described["features"][2];
        assert_eq!(plan["name"], "plan");
        assert_eq!(plan["type"], "categorical");
        // The training frame's order, not sorted: a code is a position in it.
        assert_eq!(plan["categories"], json!(["pro", "basic", "plus", "team"]));
        assert_eq!(plan["nullable"], true);
        let row = json!({"age": 50, "income": null, "plan": "gold", "region": "east"});
        let (status, _, problem) = server
            .post_json(&format!("/api/models/{name}/predict"), &row)
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "plan", "{problem}");
        // The web form offers the categories by name.
        let (status, page) = server.text(&format!("/ui/models/{name}")).await;
        assert_eq!(status, 200);
        assert!(page.contains("<option value=\"team\""), "{page}");
        let row = json!({"age": 50, "income": null, "plan": "pro", "region": null});
        let (status, _, answer) = server
            .post_json(&format!("/api/models/{name}/predict"), &row)
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    server.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn boosted_regressors_answer_the_official_clients_with_missing_values_as_nan() {
    let expected = expected();
    let repo = tempfile::tempdir().unwrap();
    let models = [
        "xgb_reg_squarederror",
        "lgb_regression",
        "xgb_count_poisson",
    ];
    for name in models {
        let file = expected["fixtures"][name]["file"].as_str().unwrap();
        import_model(&options(file, name, repo.path())).unwrap();
    }
    let server = TestServer::start(test_settings(repo.path())).await;
    let rows: Vec<Value> =
        expected["datasets"]["diabetes"]["rows"].as_array().unwrap()[..6].to_vec();
    assert!(
        rows.iter()
            .flat_map(|r| r.as_array().unwrap())
            .any(Value::is_null),
        "the rows have a missing value"
    );
    let seen = common::clients::run_python_client(
        "regression_clients.py",
        vec![
            server.server.addr.to_string(),
            models.join(","),
            json!(rows).to_string(),
        ],
    )
    .await;
    for name in models {
        let values: Vec<f64> = expected["fixtures"][name]["values"].as_array().unwrap()[..6]
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        common::clients::assert_regression_clients_saw(&seen[name], &values, 1e-6);
    }
    server.server.shutdown().await.unwrap();
}

/// Where the models of `repository` answer other than the library on their fixture's rows:
/// `names` pairs each model with its fixture in expected.json.
fn differences_from_the_library(
    repository: &Repository,
    names: &[(&str, &str)],
    expected: &Value,
) -> Vec<String> {
    let catalog = repository.catalog();
    let mut differences = Vec::new();
    for &(name, fixture_name) in names {
        let fixture = &expected["fixtures"][fixture_name];
        let model = catalog.resolve(name, None).unwrap();
        let mut dataset = expected["datasets"][fixture["dataset"].as_str().unwrap()].clone();
        // A fixture may hold rows of its own (zeros where zero is missing).
        if let Some(rows) = fixture.get("rows") {
            dataset["rows"] = rows.clone();
        }
        let outcomes = common::outcomes_of(&model, &common::rows_as_objects(&dataset));
        for (row, outcome) in outcomes.iter().enumerate() {
            match (outcome, fixture["task"].as_str().unwrap()) {
                (Ok(Outcome::Class { probabilities, .. }), "classification") => {
                    let want: Vec<f64> =
                        serde_json::from_value(fixture["probabilities"][row].clone()).unwrap();
                    let gap = probabilities
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    if gap > 1e-6 || probabilities.len() != want.len() {
                        differences
                            .push(format!("{name} row {row}: {probabilities:?} vs {want:?}"));
                    }
                }
                (Ok(Outcome::Value(value)), "regression") => {
                    let want = fixture["values"][row].as_f64().unwrap();
                    if (value - want).abs() > 1e-6 * want.abs().max(1.0) {
                        differences.push(format!("{name} row {row}: {value} vs {want}"));
                    }
                }
                (other, task) => differences.push(format!("{name} row {row}: {other:?} ({task})")),
            }
        }
    }
    differences
}

#[test]
fn versions_written_by_the_last_release_still_load_and_answer_alike() {
    // Written by mlserve at a952cfb (the release before native training) from two fixtures.
    let old = fixtures().join("written_by_a952cfb");
    let repo = tempfile::tempdir().unwrap();
    for name in ["xgb", "lgb"] {
        let from = old.join(name).join("1");
        let to = repo.path().join(name).join("1");
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let repository = Repository::new(repo.path());
    let report = repository.reload_all(false);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let names = [("xgb", "xgb_binary_logistic"), ("lgb", "lgb_categorical")];
    let differences = differences_from_the_library(&repository, &names, &expected());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
