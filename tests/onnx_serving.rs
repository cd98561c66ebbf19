//! Models exported from scikit-learn as ONNX, imported with `mlserve import` and served like
//! native ones: the native API, V2 (BYTES tensors for text, NaN for missing values), the web
//! UI and offline `mlserve predict`, all agreeing with scikit-learn; one-hot encoded text
//! columns, one or several, per-column inputs or one wide input, typed categorical with their
//! own categories; imports that cannot run refused; a server without ONNX Runtime keeps
//! serving native models.

mod common;

use common::clients::run_python_client;
use common::forms::{open_form, post_form};
use common::onnx::{
    assert_close, expected, fixtures, import, import_dataset_fixture, import_fixture, import_loans,
    library, manifest, probabilities_of, v2_probabilities,
};
use common::process::spawn_server;
use common::{TestServer, test_settings, train_into};
use serde_json::{Value, json};

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn an_imported_column_transformer_serves_as_scikit_learn_predicts() {
    let expected = expected();
    let loans = &expected["datasets"]["loans"];
    let want = probabilities_of(&expected["fixtures"]["loans_column_transformer"]);
    let want_labels = expected["fixtures"]["loans_column_transformer"]["sklearn_labels"].clone();
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    // The default export (ZipMap), with the CSV naming the features and giving their ranges.
    let (csv, stdout) = import_loans(work.path(), &repo);
    assert!(
        stdout.contains("imported") && stdout.contains("loans/1"),
        "{stdout}"
    );
    // The zipmap-off export, with the graph's own class names (0 and 1).
    import_fixture(
        &repo,
        "loans_column_transformer_nozipmap.onnx",
        "loans_raw",
        &[],
    );

    let manifest = manifest(&repo, "loans");
    assert_eq!(manifest["backend"], "onnx");
    assert_eq!(manifest["artifact"]["file"], "model.onnx");
    assert_eq!(manifest["imported"]["producer"], "skl2onnx 1.20.0");
    let features = manifest["features"].as_array().unwrap();
    let by_name = |name: &str| features.iter().find(|f| f["name"] == name).unwrap().clone();
    // The graph's Imputer fills both numeric columns, so both take null; text stays strict.
    assert_eq!(by_name("income")["nullable"], true);
    assert_eq!(by_name("age")["nullable"], true);
    assert_eq!(by_name("plan")["nullable"], false);
    assert_eq!(by_name("plan")["type"], "categorical");
    assert_eq!(
        by_name("plan")["categories"],
        json!(["basic", "plus", "pro"])
    );
    assert_eq!(
        by_name("region")["categories"],
        json!(["east", "north", "south", "west"])
    );
    // Ranges and the example come from the CSV's rows; its target column is left out.
    let ages: Vec<f64> = loans["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["age"].as_f64().unwrap())
        .collect();
    assert_eq!(
        by_name("age")["min"].as_f64(),
        ages.iter().copied().reduce(f64::min)
    );
    assert_eq!(
        by_name("age")["max"].as_f64(),
        ages.iter().copied().reduce(f64::max)
    );
    assert!(
        by_name("income")["baseline"]["edges"]
            .as_array()
            .is_some_and(|e| e.len() > 3)
    );
    assert_eq!(features.len(), 4);
    assert_eq!(
        manifest["onnx"]["inputs"][2],
        json!({"name": "plan", "features": ["plan"]})
    );

    let server = TestServer::start(test_settings(&repo)).await;

    // The OpenAPI document describes the imported model's schema, nulls where the graph imputes.
    let (_, document) = server.text("/openapi.json").await;
    let parsed: Value = serde_json::from_str(&document).unwrap();
    let loans_features = &parsed["components"]["schemas"]["loans.Features"]["properties"];
    assert_eq!(loans_features["income"]["type"], json!(["number", "null"]));
    assert_eq!(
        loans_features["plan"]["enum"],
        json!(["basic", "plus", "pro"])
    );
    let python = std::env::var("MLSERVE_TEST_PYTHON")
        .expect("MLSERVE_TEST_PYTHON names a Python with openapi-spec-validator; scripts/test.sh sets it up");
    let file = work.path().join("openapi.json");
    std::fs::write(&file, &document).unwrap();
    let output = Command::new(&python)
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // The native API, one batch with the missing incomes as null.
    let instances: Vec<Value> = loans["rows"].as_array().unwrap().clone();
    assert!(
        instances.iter().any(|r| r["income"].is_null()),
        "the rows include missing incomes"
    );
    for (model, labels) in [
        ("loans", ["declined", "approved"]),
        ("loans_raw", ["0", "1"]),
    ] {
        let (status, _, body) = server
            .post_json(
                &format!("/api/models/{model}/predict"),
                &json!({"instances": instances}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for (row, prediction) in body["predictions"].as_array().unwrap().iter().enumerate() {
            let got: Vec<f64> = labels
                .iter()
                .map(|l| prediction["probabilities"][l].as_f64().unwrap())
                .collect();
            assert_close(&got, &want[row], &format!("{model} row {row}"));
            let sklearn = want_labels[row].as_str().unwrap();
            let index = ["declined", "approved"]
                .iter()
                .position(|l| *l == sklearn)
                .unwrap();
            assert_eq!(prediction["label"], labels[index], "{model} row {row}");
        }
    }

    // Strictness: an unknown category, a null category, a missing field.
    for (bad, field) in [
        (
            json!({"age": 40, "income": 50000, "plan": "gold", "region": "east"}),
            "plan",
        ),
        (
            json!({"age": 40, "income": 50000, "plan": null, "region": "east"}),
            "plan",
        ),
        (json!({"age": 40, "income": 50000, "plan": "pro"}), "region"),
    ] {
        let (status, _, body) = server.post_json("/api/models/loans/predict", &bad).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }

    // V2: one tensor per column, BYTES for text.
    let rows: Vec<&Value> = instances
        .iter()
        .filter(|r| !r["income"].is_null())
        .collect();
    let column = |name: &str| -> Vec<Value> { rows.iter().map(|r| r[name].clone()).collect() };
    let n = rows.len();
    let body = json!({
        "id": "loans-1",
        "inputs": [
            {"name": "age", "shape": [n, 1], "datatype": "FP32", "data": column("age")},
            {"name": "income", "shape": [n], "datatype": "FP64", "data": column("income")},
            {"name": "plan", "shape": [n, 1], "datatype": "BYTES", "data": column("plan")},
            {"name": "region", "shape": [n], "datatype": "BYTES", "data": column("region")},
        ]
    });
    let (status, _, answer) = server.post_json("/v2/models/loans/infer", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "loans-1");
    let probabilities = v2_probabilities(&answer);
    let indices: Vec<usize> = instances
        .iter()
        .enumerate()
        .filter(|(_, r)| !r["income"].is_null())
        .map(|(i, _)| i)
        .collect();
    for (k, &row) in indices.iter().enumerate() {
        // FP32 on the wire rounds the ages; they are whole numbers, so nothing is lost.
        assert_close(
            &probabilities[2 * k..2 * k + 2],
            &want[row],
            &format!("V2 row {row}"),
        );
    }
    let (status, _, metadata) = server.get("/v2/models/loans").await;
    assert_eq!(status, 200);
    assert_eq!(metadata["platform"], "onnxruntime_onnx");
    assert_eq!(
        metadata["inputs"][2],
        json!({"name": "plan", "datatype": "BYTES", "shape": [-1]})
    );

    // The web UI: the form offers the categories and accepts an empty (missing) income.
    let (token, cookie) = open_form(&server, "/ui/models/loans").await;
    let (_, page) = server.text("/ui/models/loans").await;
    assert!(
        page.contains("<select") && page.contains(">pro<"),
        "the plan list"
    );
    let missing_row = instances
        .iter()
        .position(|r| r["income"].is_null())
        .unwrap();
    let row = &instances[missing_row];
    let age = row["age"].to_string();
    let (status, _, html) = post_form(
        &server,
        "/ui/models/loans",
        Some(&cookie),
        &[
            ("_csrf", &token),
            ("age", &age),
            ("income", ""),
            ("plan", row["plan"].as_str().unwrap()),
            ("region", row["region"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let sklearn = want_labels[missing_row].as_str().unwrap();
    assert!(
        html.contains(&format!(
            "<strong id=\"predicted-label\">{sklearn}</strong>"
        )),
        "{sklearn} is the predicted label"
    );
    // The model card shows the import.
    let (status, card) = server.text("/ui/models/loans/card").await;
    assert_eq!(status, 200);
    assert!(card.contains("skl2onnx 1.20.0") && card.contains("loans_column_transformer.onnx"));
    drop(server);

    // Offline: mlserve predict streams the CSV (empty incomes are missing) through the graph.
    let predicted = work.path().join("predicted.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["predict", "--model", "loans", "--input"])
        .arg(&csv)
        .arg("--output")
        .arg(&predicted)
        .arg("--models")
        .arg(&repo)
        .env("ORT_DYLIB_PATH", library())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut reader = csv::Reader::from_path(&predicted).unwrap();
    let header = reader.headers().unwrap().clone();
    let label_column = header.iter().position(|h| h == "label").unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), want.len());
    for (row, record) in records.iter().enumerate() {
        assert_eq!(
            &record[label_column],
            want_labels[row].as_str().unwrap(),
            "CSV row {row}"
        );
        let got: Vec<f64> = (1..=2)
            .map(|k| record[label_column + k].parse().unwrap())
            .collect();
        assert_close(&got, &want[row], &format!("CSV row {row}"));
    }
}

/// The text-column fixtures: one, two and three text columns with one graph input each, and two
/// or three in one wide string input (read through Gathers, and ArrayFeatureExtractors).
const TEXT_COLUMN_FIXTURES: [&str; 5] = [
    "shop_text1",
    "shop_text2",
    "shop_text3",
    "shop_wide2",
    "shop_wide3",
];

#[tokio::test(flavor = "multi_thread")]
async fn text_columns_import_as_categorical_with_their_own_categories_and_serve() {
    let expected = expected();
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    for name in TEXT_COLUMN_FIXTURES {
        import_dataset_fixture(work.path(), &repo, name);
        let dataset = &expected["datasets"][name];
        let categories = dataset["categories"].as_object().unwrap();
        let features = manifest(&repo, name)["features"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            features.len(),
            dataset["features"].as_array().unwrap().len()
        );
        for feature in &features {
            let feature_name = feature["name"].as_str().unwrap();
            match categories.get(feature_name) {
                // Exactly the categories scikit-learn's encoder learned for this column.
                Some(learned) => {
                    assert_eq!(feature["type"], "categorical", "{name}: {feature}");
                    assert_eq!(&feature["categories"], learned, "{name}: {feature}");
                }
                None => assert_eq!(feature["type"], "number", "{name}: {feature}"),
            }
        }
    }

    let server = TestServer::start(test_settings(&repo)).await;
    for name in TEXT_COLUMN_FIXTURES {
        let dataset = &expected["datasets"][name];
        let fixture = &expected["fixtures"][name];
        let want = probabilities_of(fixture);
        let rows = dataset["rows"].as_array().unwrap();
        let path = format!("/api/models/{name}/predict");
        let (status, _, body) = server.post_json(&path, &json!({"instances": rows})).await;
        assert_eq!(status, 200, "{name}: {body}");
        let predictions = body["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), want.len(), "{name}");
        for (row, prediction) in predictions.iter().enumerate() {
            let got: Vec<f64> = ["no", "yes"]
                .iter()
                .map(|l| prediction["probabilities"][l].as_f64().unwrap())
                .collect();
            assert_close(&got, &want[row], &format!("{name} row {row}"));
            assert_eq!(
                prediction["label"], fixture["sklearn_labels"][row],
                "{name} row {row}"
            );
        }
        // A value the encoder never saw is refused, naming the feature and its categories.
        for (feature, learned) in dataset["categories"].as_object().unwrap() {
            let mut row = rows[0].clone();
            row[feature] = json!("purple");
            let (status, _, body) = server.post_json(&path, &row).await;
            assert_eq!(status, 422, "{name}: {body}");
            assert_eq!(body["errors"][0]["field"], *feature, "{name}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            let listed: Vec<String> = learned
                .as_array()
                .unwrap()
                .iter()
                .map(Value::to_string)
                .collect();
            let refusal = format!(
                "unknown category \"purple\": expected one of {}",
                listed.join(", ")
            );
            assert_eq!(message, refusal, "{name}");
        }
    }

    // V2, one tensor per feature (BYTES for text), into the graph's wide string input.
    let dataset = &expected["datasets"]["shop_wide3"];
    let rows = dataset["rows"].as_array().unwrap();
    let n = rows.len();
    let inputs: Vec<Value> = dataset["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|feature| {
            let name = feature.as_str().unwrap();
            let data: Vec<Value> = rows.iter().map(|r| r[name].clone()).collect();
            let datatype = if data[0].is_string() { "BYTES" } else { "FP64" };
            json!({"name": name, "shape": [n], "datatype": datatype, "data": data})
        })
        .collect();
    let body = json!({ "inputs": inputs });
    let (status, _, answer) = server.post_json("/v2/models/shop_wide3/infer", &body).await;
    assert_eq!(status, 200, "{answer}");
    let probabilities = v2_probabilities(&answer);
    let want = probabilities_of(&expected["fixtures"]["shop_wide3"]);
    for (row, want) in want.iter().enumerate() {
        assert_close(
            &probabilities[2 * row..2 * row + 2],
            want,
            &format!("V2 row {row}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_triton_client_sends_text_and_missing_values() {
    let expected = expected();
    let loans = &expected["datasets"]["loans"];
    let want = probabilities_of(&expected["fixtures"]["loans_column_transformer"]);
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    import_fixture(
        &repo,
        "loans_column_transformer.onnx",
        "loans",
        &["--labels", "declined,approved"],
    );
    let rows = work.path().join("rows.json");
    std::fs::write(&rows, serde_json::to_vec(&loans["rows"]).unwrap()).unwrap();
    let server = TestServer::start(test_settings(&repo)).await;
    let addr = server.server.addr.to_string();
    let rows = rows.to_str().unwrap().to_string();
    let seen = run_python_client("triton_loans.py", vec![addr, rows]).await;
    for case in ["binary", "json_without_missing"] {
        let answer = seen[case].as_array().unwrap();
        assert!(!answer.is_empty(), "{case}");
        for item in answer {
            let row = item["row"].as_u64().unwrap() as usize;
            let got: Vec<f64> = item["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            assert_close(&got, &want[row], &format!("{case} row {row}"));
        }
    }
    assert_eq!(
        seen["binary"].as_array().unwrap().len(),
        want.len(),
        "every row, NaN incomes included"
    );
    assert_eq!(seen["unknown_category"]["status"], "400", "{seen}");
}

#[test]
fn imports_that_cannot_run_are_refused_and_write_nothing() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    let garbage = work.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a graph").unwrap();
    let truncated = work.path().join("truncated.onnx");
    let whole = std::fs::read(fixtures().join("iris_logistic_regression.onnx")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let names = work.path().join("names.txt");
    std::fs::write(
        &names,
        "sepal_length\nsepal_width\npetal_length\npetal_width\n",
    )
    .unwrap();
    let three_names = work.path().join("three.txt");
    std::fs::write(&three_names, "a\nb\nc\n").unwrap();
    let iris = fixtures().join("iris_logistic_regression.onnx");
    let knn = fixtures().join("iris_knn_nozipmap.onnx");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![garbage.to_str().unwrap(), "--name", "g"],
            "not an ONNX model",
        ),
        (
            vec![truncated.to_str().unwrap(), "--name", "t"],
            "truncated",
        ),
        (
            vec!["/nonexistent/model.onnx", "--name", "n"],
            "No such file",
        ),
        (
            vec![iris.to_str().unwrap(), "--name", "iris"],
            "--features FILE or --training-data CSV",
        ),
        (
            vec![
                iris.to_str().unwrap(),
                "--name",
                "iris",
                "--features",
                three_names.to_str().unwrap(),
            ],
            "takes 4 columns",
        ),
        (
            vec![
                iris.to_str().unwrap(),
                "--name",
                "iris",
                "--features",
                names.to_str().unwrap(),
                "--labels",
                "a,b",
            ],
            "--labels names 2 classes, but the graph has 3",
        ),
        (
            vec![
                knn.to_str().unwrap(),
                "--name",
                "knn",
                "--features",
                names.to_str().unwrap(),
            ],
            "--labels a,b,c",
        ),
        (
            vec![
                iris.to_str().unwrap(),
                "--name",
                "../up",
                "--features",
                names.to_str().unwrap(),
            ],
            "invalid model name",
        ),
    ];
    for (args, message) in cases {
        let output = import(&repo, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let written: Vec<_> = std::fs::read_dir(&repo)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "nothing written: {written:?}");
    // The same graph with names and labels imports.
    import_fixture(
        &repo,
        "iris_logistic_regression.onnx",
        "iris",
        &[
            "--features",
            names.to_str().unwrap(),
            "--labels",
            "setosa,versicolor,virginica",
        ],
    );
    assert!(repo.join("iris/1/model.onnx").is_file());
}

#[test]
fn without_onnx_runtime_onnx_models_fail_with_the_reason_and_native_ones_serve() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    import_fixture(&repo, "loans_column_transformer.onnx", "loans", &[]);
    train_into(
        &repo,
        mlserve::data::BundledDataset::Iris,
        mlserve::train::Algorithm::LogisticRegression,
        "iris",
        1,
    );
    let repo_arg = repo.to_str().unwrap().to_string();
    // No library anywhere: the setting names a missing file, ORT_DYLIB_PATH is unset, and the
    // working folder has no target/onnxruntime.
    let mut process = spawn_server(
        work.path(),
        &["serve", "--models", &repo_arg, "--prediction-log", "false"],
        &[
            ("MLSERVE_ONNXRUNTIME", "/nonexistent/libonnxruntime.so"),
            ("ORT_DYLIB_PATH", ""),
        ],
    );
    let addr = process.addr.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{addr}{path}");
        // Loaded, but not ready (issue 11): a model with no version that serves keeps the
        // server out of the load balancer, and readiness names it and why.
        let mut ready = Value::Null;
        assert!(
            common::eventually(std::time::Duration::from_secs(10), async || {
                let Ok(response) = client.get(url("/health/ready")).send().await else { return false };
                let status = response.status();
                ready = response.json().await.unwrap_or(Value::Null);
                status == 503 && ready["status"] == "not_ready"
            })
            .await,
            "{ready}"
        );
        let detail = ready["detail"].as_str().unwrap();
        assert!(detail.contains("model 'loans' has no version that serves") && detail.contains("ONNX Runtime is not available"), "{detail}");
        assert_eq!(ready["models"]["iris"]["status"], "ready");
        let response = client.get(url("/api/models/loans")).send().await.unwrap();
        assert_eq!(response.status(), 503);
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("ONNX Runtime is not available") && detail.contains("/nonexistent/libonnxruntime.so"), "{detail}");
        let response = client
            .post(url("/api/models/iris/predict"))
            .json(&json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let response = client.get(url("/v2/models/loans/ready")).send().await.unwrap();
        assert_eq!(response.status(), 400, "V2 says not ready");
        let index = client.get(url("/")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
        assert!(index.contains("failed"), "the model list shows the failure");
    });
    let _ = process.child.kill();
}
