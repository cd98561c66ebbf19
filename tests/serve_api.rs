//! The native REST API over real HTTP on 127.0.0.1: every endpoint, every error status.

mod common;

use common::{TestServer, assert_problem, demo_repository, iris_row, test_settings};
use mlserve::data::{BundledDataset, load_bundled};
use mlserve::model::load_version;
use mlserve::train::preprocess::raw_row;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn single_prediction_carries_label_probabilities_version_and_request_id() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, headers, body) = server
        .post_json("/api/models/iris/predict", &iris_row())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "iris");
    assert_eq!(body["version"], "1");
    assert_eq!(body["label"], "virginica");
    let probabilities = body["probabilities"].as_object().unwrap();
    let labels: Vec<&String> = probabilities.keys().collect();
    assert_eq!(labels, ["setosa", "versicolor", "virginica"]);
    let total: f64 = probabilities.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9);
    assert_eq!(body["warnings"], json!([]));
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().unwrap()
    );
}

/// Each answered request is counted by route, method, status and the model version that
/// answered; a 422 also counts as a validation failure; the latency histogram counts each,
/// and the predictions are counted by label.
/// (Deltas: other tests in the same process count too.)
#[tokio::test(flavor = "multi_thread")]
async fn requests_are_counted_by_route_status_and_model() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let route = [("route", "/api/models/{name}/predict"), ("method", "POST")];
    let with = |more: &[(&'static str, &'static str)]| {
        let mut labels = route.to_vec();
        labels.extend_from_slice(more);
        labels
    };
    let ok = with(&[("status", "200"), ("model", "iris"), ("version", "1")]);
    let invalid = with(&[("status", "422"), ("model", "iris"), ("version", "1")]);
    let failures = [("model", "iris"), ("version", "1")];
    let unmatched = [("route", "unmatched"), ("status", "404")];
    let read = async || {
        (
            server.metric("mlserve_http_requests_total", &ok).await,
            server.metric("mlserve_http_requests_total", &invalid).await,
            server
                .metric("mlserve_validation_failures_total", &failures)
                .await,
            server
                .metric("mlserve_http_requests_total", &unmatched)
                .await,
            server
                .metric("mlserve_http_request_duration_seconds_count", &route)
                .await,
            server
                .metric(
                    "mlserve_predictions_total",
                    &[("model", "iris"), ("version", "1"), ("label", "virginica")],
                )
                .await,
        )
    };
    let before = read().await;
    for _ in 0..3 {
        let (status, _, _) = server
            .post_json("/api/models/iris/predict", &iris_row())
            .await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = server
        .post_json("/api/models/iris/predict", &json!({"sepal_length": "long"}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = server.text("/no/such/route").await;
    assert_eq!(status, 404);
    let after = read().await;
    assert_eq!(after.0 - before.0, 3.0, "200s");
    assert_eq!(after.1 - before.1, 1.0, "422s");
    assert_eq!(after.2 - before.2, 1.0, "validation failures");
    assert!(after.3 - before.3 >= 1.0, "unmatched 404s");
    assert_eq!(after.4 - before.4, 4.0, "latencies recorded");
    assert_eq!(after.5 - before.5, 3.0, "virginica predictions");
    // The scrape itself is in flight while it renders.
    assert_eq!(
        server.metric("mlserve_http_requests_in_flight", &[]).await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incoming_request_id_is_kept() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let response = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("x-request-id", "trace-abc-123")
        .json(&iris_row())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-abc-123");
}

#[tokio::test(flavor = "multi_thread")]
async fn served_probabilities_equal_the_artifact_on_the_held_out_rows() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let dir = models.path().join("breast_cancer/1");
    let artifact = load_version(&dir).unwrap();
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    let data = load_bundled(BundledDataset::BreastCancer);
    let rows: Vec<usize> = serde_json::from_value(metrics["split"]["test_rows"].clone()).unwrap();
    let instances: Vec<Value> = rows
        .iter()
        .map(|&row| {
            let object: serde_json::Map<String, Value> = data
                .columns
                .iter()
                .zip(raw_row(&data, row))
                .map(|(column, value)| match value {
                    mlserve::model::FeatureValue::Number(n) => (column.name.clone(), json!(n)),
                    mlserve::model::FeatureValue::Category(c)
                    | mlserve::model::FeatureValue::Text(c) => (column.name.clone(), json!(c)),
                    mlserve::model::FeatureValue::Missing => (column.name.clone(), Value::Null),
                })
                .collect();
            Value::Object(object)
        })
        .collect();
    let (status, _, body) = server
        .post_json(
            "/api/models/breast_cancer/predict",
            &json!({"instances": instances}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    let mut correct = 0;
    for (prediction, &row) in predictions.iter().zip(&rows) {
        let expected = artifact
            .model
            .native()
            .unwrap()
            .predict_proba(&raw_row(&data, row))
            .unwrap();
        let served = [
            prediction["probabilities"]["malignant"].as_f64().unwrap(),
            prediction["probabilities"]["benign"].as_f64().unwrap(),
        ];
        assert_eq!(served, [expected[0], expected[1]]);
        let label = prediction["label"].as_str().unwrap();
        let (classes, labels) = data.classes().unwrap();
        correct += usize::from(label == labels[classes[row]]);
    }
    let accuracy = correct as f64 / rows.len() as f64;
    assert_eq!(accuracy, metrics["accuracy"].as_f64().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn query_parameters_and_pinned_versions_predict_too() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let query = "sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2";
    let (status, _, body) = server
        .get(&format!("/api/models/iris/predict?{query}"))
        .await;
    assert_eq!(
        (status, body["label"].as_str()),
        (200, Some("setosa")),
        "{body}"
    );
    let (status, _, body) = server
        .get(&format!("/api/models/iris/versions/1/predict?{query}"))
        .await;
    assert_eq!(
        (status, body["version"].as_str()),
        (200, Some("1")),
        "{body}"
    );
    let (status, _, body) = server
        .post_json("/api/models/iris/versions/1/predict", &iris_row())
        .await;
    assert_eq!(
        (status, body["label"].as_str()),
        (200, Some("virginica")),
        "{body}"
    );

    let (status, headers, body) = server
        .get("/api/models/iris/predict?sepal_length=abc&sepal_width=3.5&petal_length=1.4")
        .await;
    assert_problem(status, &headers, &body, 422);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert_eq!(
        errors[0],
        json!({"field": "sepal_length", "message": "expected a finite number, got \"abc\""})
    );
    assert_eq!(
        errors[1],
        json!({"field": "petal_width", "message": "missing: expected a finite number"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_without_a_loadable_version_is_503_and_others_still_serve() {
    let models = demo_repository();
    let broken = models.path().join("broken/1");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("model.toml"), "name = \"broken\"\n").unwrap();
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, headers, problem) = server
        .post_json("/api/models/broken/predict", &iris_row())
        .await;
    assert_problem(status, &headers, &problem, 503);
    assert!(headers.contains_key("retry-after"));
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("invalid manifest"),
        "{problem}"
    );
    // A model that cannot serve makes the server not ready (issue 11), naming it and why.
    let (status, _, ready) = server.get("/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(ready["models"]["broken"]["status"], "failed");
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains("model 'broken' has no version that serves"),
        "{ready}"
    );
    assert_eq!(ready["models"]["iris"]["status"], "ready");
    let (_, _, list) = server.get("/api/models").await;
    let broken = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "broken")
        .unwrap()
        .clone();
    assert_eq!(broken["versions"][0]["status"], "failed");
    assert!(
        broken["versions"][0]["error"]
            .as_str()
            .unwrap()
            .contains("model.toml")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_listing_metadata_and_card() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, _, list) = server.get("/api/models").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["breast_cancer", "churn", "iris"]);
    assert_eq!(list["models"][2]["algorithm"], "random-forest");

    let (status, _, info) = server.get("/api/models/breast_cancer").await;
    assert_eq!(status, 200);
    assert_eq!(info["version"], "1");
    assert_eq!(info["labels"], json!(["malignant", "benign"]));
    let features = info["features"].as_array().unwrap();
    assert_eq!(features.len(), 30);
    assert_eq!(features[0]["name"], "mean_radius");
    assert_eq!(features[0]["type"], "number");
    assert!(features[0]["min"].as_f64().unwrap() < features[0]["max"].as_f64().unwrap());
    assert_eq!(info["example"].as_object().unwrap().len(), 30);
    assert!(info["metrics"]["accuracy"].as_f64().unwrap() >= 0.95);
    // The example row is a valid request.
    let (status, _, _) = server
        .post_json("/api/models/breast_cancer/predict", &info["example"])
        .await;
    assert_eq!(status, 200);

    let (status, _, version) = server.get("/api/models/breast_cancer/versions/1").await;
    assert_eq!((status, version["version"].as_str()), (200, Some("1")));
    let card = server
        .client
        .get(server.url("/api/models/iris/versions/1/report"))
        .send()
        .await
        .unwrap();
    assert_eq!(card.status(), 200);
    assert!(
        card.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(card.text().await.unwrap().contains("Confusion matrix"));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_probes_and_their_aliases() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    for path in ["/health/live", "/api/liveness"] {
        let (status, _, body) = server.get(path).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("live")));
    }
    for path in ["/health/ready", "/api/readiness"] {
        let (status, _, body) = server.get(path).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_is_503_before_the_first_load() {
    let repository = mlserve::model::Repository::new("/nonexistent");
    assert!(!repository.is_loaded());
    let app = mlserve::serve::App::new(
        std::sync::Arc::new(repository),
        mlserve::config::Settings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        tokio::spawn(async move { axum::serve(listener, mlserve::serve::router(app)).await });
    let response = reqwest::get(format!("http://{addr}/health/ready"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_describes_each_model_and_swagger_ui_is_served() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, _, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let features = &doc["components"]["schemas"]["iris.Features"];
    assert_eq!(features["required"].as_array().unwrap().len(), 4);
    assert_eq!(features["additionalProperties"], false);
    assert_eq!(features["properties"]["petal_length"]["type"], "number");
    assert!(features["properties"]["petal_length"]["x-training-range"].is_array());
    let churn = &doc["components"]["schemas"]["churn.Features"]["properties"];
    assert_eq!(churn["plan"]["enum"], json!(["basic", "plus", "pro"]));
    assert_eq!(churn["tenure"]["type"], "integer");
    assert_eq!(churn["senior"]["type"], "boolean");
    let example = &doc["paths"]["/api/models/iris/predict"]["post"]["requestBody"]["content"]["application/json"]
        ["examples"]["row"]["value"];
    let (status, _, _) = server.post_json("/api/models/iris/predict", example).await;
    assert_eq!(status, 200, "the documented example is a valid request");

    let docs = server
        .client
        .get(server.url("/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
    let init = server
        .client
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_passes_the_openapi_3_1_validator() {
    let Ok(python) = std::env::var("MLSERVE_TEST_PYTHON") else {
        panic!(
            "MLSERVE_TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs openapi-spec-validator"
        );
    };
    // With auth off, and on (security schemes, open probes).
    for auth in [false, true] {
        let models = demo_repository();
        let outside = tempfile::tempdir().unwrap();
        let mut settings = test_settings(models.path());
        if auth {
            let keys = outside.path().join("keys.toml");
            let mut file = mlserve::serve::auth::keys::KeysFile::default();
            file.create_key("ci", mlserve::serve::auth::keys::Role::Predict)
                .unwrap();
            file.save(&keys).unwrap();
            settings.auth = true;
            settings.keys_file = keys;
        }
        let server = TestServer::start(settings).await;
        let doc = server
            .client
            .get(server.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["security"].as_array().unwrap().is_empty(), !auth);
        assert!(parsed["paths"]["/api/models/{name}/drift"]["get"].is_object());
        let file = outside.path().join("openapi.json");
        std::fs::write(&file, doc).unwrap();
        let output = std::process::Command::new(&python)
            .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "auth {auth}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_timeout_is_503_with_retry_after() {
    let models = demo_repository();
    let mut settings = test_settings(models.path());
    // A microsecond: a 1,000-row batch (run off the request thread) cannot make it.
    settings.request_timeout_secs = 1e-6;
    let server = mlserve::serve::start(settings).await.unwrap();
    let client = reqwest::Client::new();
    let batch = json!({"instances": vec![iris_row(); 1000]});
    let response = client
        .post(format!("http://{}/api/models/iris/predict", server.addr))
        .json(&batch)
        .send()
        .await
        .unwrap();
    let (status, headers, problem) = common::split(response).await;
    assert_problem(status, &headers, &problem, 503);
    assert_eq!(headers["retry-after"], "1");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("took longer than"),
        "{problem}"
    );
    assert!(problem["request_id"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_body_status_and_the_loaded_names() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, _, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    let mut with_body = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("requestBody").is_none() {
                continue;
            }
            with_body += 1;
            for code in ["400", "413", "415"] {
                assert!(
                    operation["responses"].get(code).is_some(),
                    "{method} {path} does not document {code}"
                );
            }
        }
    }
    assert!(with_body >= 8, "{with_body} operations take a body");
    // The two found undocumented by a fuzzer.
    assert!(
        paths["/api/predictions/{request_id}/feedback"]["post"]["responses"]["415"].is_object()
    );
    assert!(paths["/v2/repository/index"]["post"]["responses"]["400"].is_object());
    // Each model and each loaded version has its own predict operations, with its own schemas.
    for name in ["breast_cancer", "churn", "iris"] {
        for path in [
            format!("/api/models/{name}/predict"),
            format!("/api/models/{name}/versions/1/predict"),
        ] {
            assert!(paths[&path]["post"]["requestBody"].is_object(), "{path}");
            assert!(paths[&path]["get"]["parameters"].is_array(), "{path}");
        }
        assert!(paths[&format!("/v1/models/{name}:predict")]["post"].is_object());
        assert!(doc["components"]["schemas"][format!("{name}.v1.Features")].is_object());
    }
    // Path parameters offer the loaded models and versions.
    let parameters = paths["/api/models/{name}/versions/{version}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let schema_of = |name: &str| {
        parameters
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap()
    };
    assert_eq!(
        schema_of("name")["enum"],
        json!(["breast_cancer", "churn", "iris"])
    );
    assert_eq!(schema_of("version")["enum"], json!(["1"]));
}
