//! Serving a model that predicts a number, end to end over real HTTP: the native API (single,
//! batch, query string), the Open Inference Protocol V2 (JSON and binary, metadata), KServe V1,
//! the official clients (tritonclient, the kserve SDK), the web form, the model card, the
//! OpenAPI document, the Prometheus counters, and `mlserve predict` on a CSV file. Every value
//! answered is checked against the model's own held-out predictions in metrics.json, which
//! training computed before the server existed.

mod common;

use common::TestServer;
use common::clients::run_python_client;
use common::forms::{open_form, post_form};
use mlserve::data::{BundledDataset, Task, load_bundled};
use mlserve::train::regression::{RegressionMetricsFile, train_regressor};
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use serde_json::{Value, json};
use std::path::Path;

const FEATURES: [&str; 10] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];

/// Trains the diabetes data with k-NN into `models` as `diabetes`; its metrics.json.
fn train_diabetes(models: &Path) -> RegressionMetricsFile {
    let options = TrainOptions {
        params: AlgorithmParams::from_flags_for(
            Task::Regression,
            Algorithm::Knn,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 42,
        cv: None,
    };
    let trained = train_regressor(
        &load_bundled(BundledDataset::Diabetes),
        &options,
        &NoProgress,
    )
    .unwrap();
    let (_, dir) = trained.save(models, "diabetes").unwrap();
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap()
}

/// The rows of the bundled diabetes CSV, as numbers in schema order.
fn diabetes_rows() -> Vec<Vec<f64>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/data/diabetes.csv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .take(FEATURES.len())
                .map(|cell| cell.parse().unwrap())
                .collect()
        })
        .collect()
}

/// The true targets of the bundled diabetes CSV, in row order.
fn diabetes_targets() -> Vec<f64> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/data/diabetes.csv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| line.rsplit(',').next().unwrap().parse().unwrap())
        .collect()
}

/// The first `n` held-out rows and the values training predicted for them.
fn held_out(metrics: &RegressionMetricsFile, n: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let rows = diabetes_rows();
    let picked = metrics.split.test_rows[..n]
        .iter()
        .map(|&i| rows[i].clone())
        .collect();
    (picked, metrics.evaluation.test_predicted[..n].to_vec())
}

fn object(row: &[f64]) -> Value {
    let mut map = serde_json::Map::new();
    for (name, value) in FEATURES.iter().zip(row) {
        map.insert(name.to_string(), json!(value));
    }
    Value::Object(map)
}

fn assert_close(got: &Value, expected: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!(
        (got - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{got} != {expected}"
    );
}

#[tokio::test]
async fn a_regression_model_answers_its_number_on_the_native_api_v1_and_v2() {
    let models = tempfile::tempdir().unwrap();
    let metrics = train_diabetes(models.path());
    let (rows, expected) = held_out(&metrics, 3);
    let server = TestServer::start(common::test_settings(models.path())).await;

    let (status, _, single) = server
        .post_json("/api/models/diabetes/predict", &object(&rows[0]))
        .await;
    assert_eq!(status, 200, "{single}");
    assert_close(&single["prediction"], expected[0]);
    assert_eq!(single["model"], "diabetes");
    assert_eq!(single["warnings"], json!([]));
    assert!(single.get("label").is_none() && single.get("probabilities").is_none());

    let batch = json!({"instances": rows.iter().map(|r| object(r)).collect::<Vec<_>>()});
    let (status, _, answer) = server
        .post_json("/api/models/diabetes/predict", &batch)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 3);
    for (item, value) in answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&expected)
    {
        assert_close(&item["prediction"], *value);
        assert_eq!(item["warnings"], json!([]));
    }

    let query: Vec<String> = FEATURES
        .iter()
        .zip(&rows[1])
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let (status, _, by_query) = server
        .get(&format!("/api/models/diabetes/predict?{}", query.join("&")))
        .await;
    assert_eq!(status, 200, "{by_query}");
    assert_close(&by_query["prediction"], expected[1]);

    let (_, _, metadata) = server.get("/v2/models/diabetes").await;
    assert_eq!(
        metadata["outputs"],
        json!([{"name": "prediction", "datatype": "FP64", "shape": [-1]}])
    );
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let tensor = json!({"name": "input", "datatype": "FP64", "shape": [3, 10], "data": flat});
    let (status, _, inferred) = server
        .post_json(
            "/v2/models/diabetes/infer",
            &json!({"id": "r-1", "inputs": [tensor]}),
        )
        .await;
    assert_eq!(status, 200, "{inferred}");
    assert_eq!(inferred["id"], "r-1");
    let output = &inferred["outputs"][0];
    assert_eq!(
        (&output["name"], &output["datatype"]),
        (&json!("prediction"), &json!("FP64"))
    );
    assert_eq!(output["shape"], json!([3]));
    assert_eq!(output["data"].as_array().unwrap().len(), 3);
    for (got, value) in output["data"].as_array().unwrap().iter().zip(&expected) {
        assert_close(got, *value);
    }
    // A classifier's output asked of a regressor names the one there is.
    let wrong = json!({"inputs": [tensor], "outputs": [{"name": "probabilities"}]});
    let (status, _, error) = server.post_json("/v2/models/diabetes/infer", &wrong).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("the outputs are prediction"),
        "{error}"
    );
    // The classification extension has no classes to give here.
    let top = json!({"inputs": [tensor], "outputs": [{"name": "prediction", "parameters": {"classification": 2}}]});
    let (status, _, error) = server.post_json("/v2/models/diabetes/infer", &top).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("predicts a number and has no classes"),
        "{error}"
    );

    let positional = json!({"instances": rows});
    let (status, _, v1) = server
        .post_json("/v1/models/diabetes:predict", &positional)
        .await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["predictions"].as_array().unwrap().len(), 3);
    for (got, value) in v1["predictions"].as_array().unwrap().iter().zip(&expected) {
        assert_close(got, *value);
    }

    // 1 + 3 + 1 rows natively, 3 on V2 and 3 on V1; every one in a bin of the target's deciles.
    let rows_counted = server
        .metric("mlserve_rows_predicted_total", &[("model", "diabetes")])
        .await;
    let binned = server
        .metric(
            "mlserve_prediction_value_bin_total",
            &[("model", "diabetes")],
        )
        .await;
    assert_eq!(rows_counted, 11.0);
    assert_eq!(binned, 11.0);
    server.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tritonclient_and_the_kserve_sdk_read_the_predicted_values() {
    let models = tempfile::tempdir().unwrap();
    let metrics = train_diabetes(models.path());
    let (rows, expected) = held_out(&metrics, 4);
    let server = TestServer::start(common::test_settings(models.path())).await;
    let seen = run_python_client(
        "regression_clients.py",
        vec![
            server.server.addr.to_string(),
            "diabetes".to_string(),
            json!(rows).to_string(),
        ],
    )
    .await;
    common::clients::assert_regression_clients_saw(&seen["diabetes"], &expected, 1e-9);
    server.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_form_places_the_number_on_the_training_range_and_the_card_shows_its_metrics() {
    let models = tempfile::tempdir().unwrap();
    let metrics = train_diabetes(models.path());
    let (rows, expected) = held_out(&metrics, 1);
    let server = TestServer::start(common::test_settings(models.path())).await;
    let (token, cookie) = open_form(&server, "/ui/models/diabetes").await;
    let values: Vec<String> = rows[0].iter().map(f64::to_string).collect();
    let mut fields: Vec<(&str, &str)> = vec![("_csrf", &token)];
    fields.extend(
        FEATURES
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str)),
    );
    let (status, _, page) = post_form(&server, "/ui/models/diabetes", Some(&cookie), &fields).await;
    assert_eq!(status, 200, "{page}");
    let shown = format!("{:.1}", expected[0]);
    assert!(
        page.contains(&format!(
            "Predicted disease_progression <strong id=\"predicted-value\">{shown}</strong>"
        )),
        "{page}"
    );
    // The page says between which of the training target's quartiles the value lies.
    let (_, _, described) = server.get("/api/models/diabetes").await;
    let target = &described["target"];
    assert_eq!(target["name"], "disease_progression");
    let q: Vec<f64> = serde_json::from_value(target["quartiles"].clone()).unwrap();
    let between = match expected[0] {
        v if v <= q[0] => "the training minimum",
        v if v <= q[1] => "the 25th percentile",
        v if v <= q[2] => "the median",
        _ => "the 75th percentile",
    };
    assert!(
        page.contains(&format!("<figcaption>{shown} is between {between} (")),
        "{between}: {page}"
    );
    assert!(
        page.contains("of the training data's disease_progression."),
        "{page}"
    );
    assert!(page.contains("<th scope=\"col\">median</th>"), "{page}");

    // The batch upload writes a prediction column, each value the model's.
    let (token, cookie) = open_form(&server, "/ui/models/diabetes/batch").await;
    let (rows, expected) = held_out(&metrics, 3);
    let mut upload = format!("{}\n", FEATURES.join(","));
    for row in &rows {
        let cells: Vec<String> = row.iter().map(f64::to_string).collect();
        upload.push_str(&format!("{}\n", cells.join(",")));
    }
    let form = reqwest::multipart::Form::new().text("_csrf", token).part(
        "file",
        reqwest::multipart::Part::bytes(upload.into_bytes()).file_name("rows.csv"),
    );
    let html = server
        .client
        .post(server.url("/ui/models/diabetes/batch"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<strong>3</strong> rows predicted"), "{html}");
    let link = html
        .split("id=\"download\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let (_, csv) = server.text(link).await;
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("{},prediction", FEATURES.join(","))
    );
    for (line, value) in lines.zip(&expected) {
        assert_close(
            &json!(line.rsplit(',').next().unwrap().parse::<f64>().unwrap()),
            *value,
        );
    }

    let (status, card) = server.text("/ui/models/diabetes/card").await;
    assert_eq!(status, 200, "{card}");
    assert!(card.contains("R²"), "{card}");
    assert!(card.contains("Residuals"), "{card}");
    let index = server
        .client
        .get(server.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains("<td>regression</td>"), "{index}");
    assert!(
        index.contains(&format!("R² {:.3}", metrics.evaluation.metrics.r2)),
        "{index}"
    );
    server.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_says_the_model_predicts_a_number() {
    let models = tempfile::tempdir().unwrap();
    train_diabetes(models.path());
    let server = TestServer::start(common::test_settings(models.path())).await;
    let (status, _, document) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    let schemas = &document["components"]["schemas"];
    let single = &schemas["diabetes.Prediction"];
    assert_eq!(single["properties"]["prediction"]["type"], "number");
    assert!(single["properties"].get("label").is_none(), "{single}");
    assert!(
        single["required"]
            .as_array()
            .unwrap()
            .contains(&json!("prediction"))
    );
    assert!(
        single["description"]
            .as_str()
            .unwrap()
            .starts_with("Task: regression"),
        "{single}"
    );
    let item = &schemas["diabetes.BatchPrediction"]["properties"]["predictions"]["items"];
    assert_eq!(item["required"], json!(["prediction", "warnings"]));
    let v1 = &document["paths"]["/v1/models/diabetes:predict"]["post"]["responses"]["200"];
    assert_eq!(
        v1["content"]["application/json"]["schema"]["properties"]["predictions"]["items"],
        json!({"type": "number"})
    );
    server.server.shutdown().await.unwrap();
}

#[test]
fn mlserve_predict_writes_a_prediction_column() {
    let models = tempfile::tempdir().unwrap();
    let metrics = train_diabetes(models.path());
    let (rows, expected) = held_out(&metrics, 2);
    let input = models.path().join("../rows.csv");
    let input = input.with_file_name(format!("rows-{}.csv", std::process::id()));
    let output = input.with_extension("out.csv");
    let mut text = format!("id,{}\n", FEATURES.join(","));
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(f64::to_string).collect();
        text.push_str(&format!("r{i},{}\n", cells.join(",")));
    }
    std::fs::write(&input, text).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["predict", "--models"])
        .arg(models.path())
        .args(["--model", "diabetes", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read_to_string(&output).unwrap();
    let _ = (std::fs::remove_file(&input), std::fs::remove_file(&output));
    assert_eq!(written.lines().count(), 3, "{written}");
    let mut lines = written.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("id,{},prediction", FEATURES.join(","))
    );
    for (line, value) in lines.zip(&expected) {
        let cell = line.rsplit(',').next().unwrap();
        assert_close(&json!(cell.parse::<f64>().unwrap()), *value);
    }
}

#[tokio::test]
async fn true_values_as_feedback_give_live_rmse_mae_and_r2_and_outputs_have_drift() {
    let models = tempfile::tempdir().unwrap();
    let metrics = train_diabetes(models.path());
    common::train_into(
        models.path(),
        BundledDataset::Iris,
        Algorithm::Knn,
        "iris",
        1,
    );
    let (rows, predicted) = held_out(&metrics, 4);
    let targets = diabetes_targets();
    let truths: Vec<f64> = metrics.split.test_rows[..4]
        .iter()
        .map(|&i| targets[i])
        .collect();
    let settings = common::test_settings(models.path());
    let database = settings.database_url.clone();
    let server = TestServer::start(settings).await;
    let batch = json!({"instances": rows.iter().map(|r| object(r)).collect::<Vec<_>>()});
    let response = server
        .client
        .post(server.url("/api/models/diabetes/predict"))
        .header("x-request-id", "reg-batch")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let logged = common::eventually(std::time::Duration::from_secs(5), async || {
        let (_, _, list) = server.get("/api/predictions?model=diabetes").await;
        list["predictions"].as_array().is_some_and(|p| p.len() == 4)
    })
    .await;
    assert!(logged, "the batch was not logged");
    let (_, _, list) = server.get("/api/predictions?model=diabetes").await;
    for item in list["predictions"].as_array().unwrap() {
        let row = item["row"].as_u64().unwrap() as usize;
        assert_close(&item["prediction"], predicted[row]);
        assert!(item.get("label").is_none() && item.get("probabilities").is_none());
        assert_eq!(item["feedback"], Value::Null);
    }

    let feedback = "/api/predictions/reg-batch/feedback";
    // Row 0 first gets a wrong value, then its correction: the first pair is taken back.
    let (status, _, first) = server.post_json(feedback, &json!({"value": 1.0})).await;
    assert_eq!(status, 200, "{first}");
    for (row, truth) in truths.iter().enumerate() {
        let (status, _, answer) = server
            .post_json(feedback, &json!({"value": truth, "row": row}))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_close(&answer["predicted"], predicted[row]);
        assert_close(&answer["residual"], truth - predicted[row]);
    }
    let (status, _, wrong_kind) = server.post_json(feedback, &json!({"label": "high"})).await;
    assert_eq!(status, 422, "{wrong_kind}");
    assert_eq!(wrong_kind["errors"][0]["field"], "label");
    assert!(
        wrong_kind["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("predicts a number: send the true value as \"value\""),
        "{wrong_kind}"
    );
    let (status, _, text_value) = server.post_json(feedback, &json!({"value": "151"})).await;
    assert_eq!(status, 422, "{text_value}");
    assert_eq!(
        text_value["errors"][0]["message"],
        "expected a number, got text"
    );
    // A classifier is told the opposite.
    let response = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("x-request-id", "iris-1")
        .json(&common::iris_row())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        common::eventually(std::time::Duration::from_secs(5), async || {
            let (_, _, list) = server.get("/api/predictions?model=iris").await;
            list["predictions"].as_array().is_some_and(|p| p.len() == 1)
        })
        .await
    );
    let (status, _, on_classifier) = server
        .post_json("/api/predictions/iris-1/feedback", &json!({"value": 2.0}))
        .await;
    assert_eq!(status, 422, "{on_classifier}");
    assert_eq!(on_classifier["errors"][0]["field"], "value");

    // Live metrics from the four (predicted, true) pairs, as scikit-learn defines them.
    let n = truths.len() as f64;
    let errors: Vec<f64> = predicted.iter().zip(&truths).map(|(p, t)| p - t).collect();
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / n;
    let mean_truth = truths.iter().sum::<f64>() / n;
    let total: f64 = truths.iter().map(|t| (t - mean_truth).powi(2)).sum();
    let r2 = 1.0 - errors.iter().map(|e| e * e).sum::<f64>() / total;
    let counted = common::eventually(std::time::Duration::from_secs(5), async || {
        let (_, _, live) = server
            .get("/api/models/diabetes/monitoring?window=1h")
            .await;
        live["versions"][0]["with_feedback"] == 4
    })
    .await;
    assert!(counted, "feedback not counted");
    let (_, _, live) = server
        .get("/api/models/diabetes/monitoring?window=1h")
        .await;
    let version = &live["versions"][0];
    assert_eq!(version["task"], "regression");
    // Beside the held-out figures of training.
    assert_eq!(
        version["held_out"]["r2"].as_f64().unwrap(),
        metrics.evaluation.metrics.r2
    );
    assert_eq!(version["predictions"], 4);
    assert!(version.get("accuracy").is_none(), "{version}");
    let mean_error = errors.iter().sum::<f64>() / n;
    for (key, expected) in [
        ("rmse", rmse),
        ("mae", mae),
        ("r2", r2),
        ("mean_error", mean_error),
    ] {
        let got = version[key].as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{key}: {got} vs {expected}"
        );
    }
    assert!(
        server
            .metric("mlserve_live_rmse", &[("model", "diabetes")])
            .await
            > 0.0
    );

    let (_, _, drift) = server.get("/api/models/diabetes/drift?window=1h").await;
    assert_eq!(drift["prediction"]["feature"], "prediction");
    assert_eq!(drift["prediction"]["values"], 4);
    assert!(drift["prediction"]["psi"].as_f64().is_some(), "{drift}");
    let (_, page) = server
        .text("/ui/models/diabetes/monitoring?window=1h")
        .await;
    assert!(
        page.contains(">RMSE</th>") && page.contains(">Held-out R²</th>"),
        "{page}"
    );
    assert!(page.contains("data-feature=\"prediction\""), "{page}");
    server.server.shutdown().await.unwrap();

    let export = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["log", "export", "--model", "diabetes", "--format", "csv"])
        .args(["--database-url", &database])
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let csv = String::from_utf8(export.stdout).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (prediction, truth) = (at("prediction"), at("feedback"));
    assert!(!header.contains(&"label"), "{header:?}");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let row: usize = cells[at("row")].parse().unwrap();
        assert_close(
            &json!(cells[prediction].parse::<f64>().unwrap()),
            predicted[row],
        );
        assert_close(&json!(cells[truth].parse::<f64>().unwrap()), truths[row]);
    }
}

/// The drift of predicted values compares them with the model's own held-out predictions, so
/// a model that sees what it was evaluated on is stable, and one whose outputs crowd into one
/// end is flagged.
#[tokio::test]
async fn predicted_values_drift_against_the_held_out_predictions_not_the_target() {
    let models = tempfile::tempdir().unwrap();
    let metrics = train_diabetes(models.path());
    let held_out_rows = metrics.split.test_rows.len();
    let (rows, predicted) = held_out(&metrics, held_out_rows);
    let server = TestServer::start(common::test_settings(models.path())).await;
    let drift = async |expected_values: usize| {
        let mut report = Value::Null;
        let counted = common::eventually(std::time::Duration::from_secs(5), async || {
            report = server.get("/api/models/diabetes/drift?window=1h").await.2;
            report["prediction"]["values"] == expected_values
        })
        .await;
        assert!(counted, "{report}");
        report
    };
    let batch = json!({"instances": rows.iter().map(|r| object(r)).collect::<Vec<_>>()});
    let (status, _, _) = server
        .post_json("/api/models/diabetes/predict", &batch)
        .await;
    assert_eq!(status, 200);
    let report = drift(held_out_rows).await;
    assert!(held_out_rows >= 50, "{held_out_rows} rows");
    assert_eq!(report["prediction"]["drifted"], false, "{report}");
    assert!(
        report["prediction"]["psi"].as_f64().unwrap() < 0.01,
        "{report}"
    );

    // Now every answer is the highest the model gave on held-out data.
    let top = (0..held_out_rows)
        .max_by(|&a, &b| predicted[a].total_cmp(&predicted[b]))
        .unwrap();
    let same = json!({"instances": vec![object(&rows[top]); 200]});
    let (status, _, _) = server
        .post_json("/api/models/diabetes/predict", &same)
        .await;
    assert_eq!(status, 200);
    let report = drift(held_out_rows + 200).await;
    assert_eq!(report["prediction"]["drifted"], true, "{report}");
    assert!(
        server
            .metric("mlserve_prediction_psi", &[("model", "diabetes")])
            .await
            > 0.2
    );
    server.server.shutdown().await.unwrap();
}
