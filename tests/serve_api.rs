//! The native REST API over real HTTP on 127.0.0.1: every endpoint, every error status.

mod common;

use common::{TestServer, demo_repository, test_settings};
use mlserve::data::{BundledDataset, load_bundled};
use mlserve::model::load_version;
use mlserve::train::preprocess::raw_row;
use serde_json::{Value, json};

fn iris_row() -> Value {
    json!({"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5})
}

fn assert_problem(status: u16, headers: &reqwest::header::HeaderMap, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], expected, "{body}");
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

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

/// A model name or version that is not UTF-8 once percent-decoded is a 400 naming the path;
/// one that decodes names the model it spells.
#[tokio::test(flavor = "multi_thread")]
async fn model_paths_are_percent_decoded_and_refused_when_not_utf8() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    for path in [
        "/api/models/%FF/predict",
        "/api/models/iris/versions/%C3%28/predict",
    ] {
        let (status, headers, body) = server.post_json(path, &iris_row()).await;
        assert_problem(status, &headers, &body, 400);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("cannot be decoded"),
            "{path}: {body}"
        );
    }
    let (status, _, body) = server
        .post_json("/api/models/%69ris/versions/%31/predict", &iris_row())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["model"], &body["version"]),
        (&json!("iris"), &json!("1"))
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
        correct += usize::from(label == data.labels[data.target[row]]);
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
async fn values_outside_the_training_range_are_answered_with_warnings() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let mut row = iris_row();
    row["petal_length"] = json!(42.0);
    let (status, _, body) = server.post_json("/api/models/iris/predict", &row).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["warnings"],
        json!(["petal_length = 42 is above the training maximum 6.9"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_validation_problem_is_listed_at_once_as_422() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let body = json!({"tenure": 10.5, "plan": "gold", "senior": "yes", "colour": "red"});
    let (status, headers, problem) = server.post_json("/api/models/churn/predict", &body).await;
    assert_problem(status, &headers, &problem, 422);
    assert_eq!(problem["title"], "Unprocessable Content");
    assert_eq!(
        problem["errors"],
        json!([
            {"field": "tenure", "message": "expected an integer, got 10.5"},
            {"field": "plan", "message": "unknown category \"gold\": expected one of \"basic\", \"plus\", \"pro\""},
            {"field": "senior", "message": "expected a boolean (true or false), got the string \"yes\""},
            {"field": "colour", "message": "unknown field: not a feature of this model"},
        ])
    );
    assert!(problem["request_id"].is_string());

    let (status, _, answer) = server
        .post_json(
            "/api/models/churn/predict",
            &json!({"tenure": 3, "plan": "pro", "senior": true}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["probabilities"].as_object().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn null_nan_and_infinity_are_refused_by_field() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    // Python's json.dumps writes bare NaN and Infinity; they are named, not a syntax error.
    let body = r#"{"sepal_length": NaN, "sepal_width": Infinity, "petal_length": null, "petal_width": -Infinity}"#;
    let response = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, headers, problem) = common::split(response).await;
    assert_problem(status, &headers, &problem, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    );
    assert_eq!(
        problem["errors"][2]["message"],
        "expected a finite number, got null"
    );
    assert_eq!(
        problem["errors"][0]["message"],
        "expected a finite number, got NaN: not a finite number"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_validate_every_row_and_name_it() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let mut bad = iris_row();
    bad["sepal_width"] = json!(true);
    let body = json!({"instances": [iris_row(), bad, 7]});
    let (status, headers, problem) = server.post_json("/api/models/iris/predict", &body).await;
    assert_problem(status, &headers, &problem, 422);
    assert_eq!(
        problem["errors"],
        json!([
            {"field": "instances[1].sepal_width", "message": "expected a finite number, got the boolean true"},
            {"field": "instances[2]", "message": "expected an object of features, got a number"},
        ])
    );
    for body in [
        json!({"instances": []}),
        json!({"instances": {"a": 1}}),
        json!([1, 2]),
        json!("text"),
    ] {
        let (status, headers, problem) = server.post_json("/api/models/iris/predict", &body).await;
        assert_problem(status, &headers, &problem, 422);
    }
    let (status, _, answer) = server
        .post_json(
            "/api/models/iris/predict",
            &json!({"instances": [iris_row(), iris_row()]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 2);
    assert_eq!(answer["predictions"][1]["label"], "virginica");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_and_wrong_content_types() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let url = server.url("/api/models/iris/predict");
    let send = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = server.client.post(&url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let (status, headers, problem) = common::split(
        send(Some("application/json"), "{\"sepal_length\": 5.1,")
            .await
            .unwrap(),
    )
    .await;
    assert_problem(status, &headers, &problem, 400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{problem}"
    );
    let (status, headers, problem) = common::split(send(None, "{}").await.unwrap()).await;
    assert_problem(status, &headers, &problem, 415);
    let (status, headers, problem) =
        common::split(send(Some("text/csv"), "a,b\n").await.unwrap()).await;
    assert_problem(status, &headers, &problem, 415);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_and_batches_over_the_limits_are_413() {
    let models = demo_repository();
    let mut settings = test_settings(models.path());
    settings.max_body_bytes = 4096;
    settings.max_batch_rows = 3;
    let server = TestServer::start(settings).await;
    let huge = json!({"sepal_length": "x".repeat(10_000)});
    let (status, headers, problem) = server.post_json("/api/models/iris/predict", &huge).await;
    assert_problem(status, &headers, &problem, 413);
    assert_eq!(problem["title"], "Content Too Large");
    let batch = json!({"instances": [iris_row(), iris_row(), iris_row(), iris_row()]});
    let (status, headers, problem) = server.post_json("/api/models/iris/predict", &batch).await;
    assert_problem(status, &headers, &problem, 413);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("the limit is 3"),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_models_versions_routes_and_methods() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, headers, problem) = server
        .post_json("/api/models/titanic/predict", &iris_row())
        .await;
    assert_problem(status, &headers, &problem, 404);
    assert_eq!(
        problem["detail"],
        "no model named 'titanic'; the models are: breast_cancer, churn, iris"
    );
    for path in [
        "/api/models/iris/versions/9",
        "/api/models/iris/versions/latest/predict",
        "/api/models/nope",
        "/no/such/route",
    ] {
        let (status, headers, problem) = server.get(path).await;
        assert_problem(status, &headers, &problem, 404);
    }
    let response = server
        .client
        .delete(server.url("/api/models/iris/predict"))
        .send()
        .await
        .unwrap();
    let (status, headers, problem) = common::split(response).await;
    assert_problem(status, &headers, &problem, 405);
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
async fn numbers_too_far_outside_training_are_refused_by_name_and_whole_numbers_are_integers() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let (_, _, info) = server.get("/api/models/breast_cancer").await;
    // 1.7e308 in every feature would overflow the model's arithmetic: each is refused by name,
    // with the range the feature takes (the one the OpenAPI document gives).
    let mut extreme = info["example"].clone();
    for value in extreme.as_object_mut().unwrap().values_mut() {
        *value = json!(1.7e308);
    }
    let (status, headers, problem) = server
        .post_json("/api/models/breast_cancer/predict", &extreme)
        .await;
    assert_problem(status, &headers, &problem, 422);
    assert_eq!(problem["errors"].as_array().unwrap().len(), 30, "{problem}");
    let (_, _, doc) = server.get("/openapi.json").await;
    let documented =
        &doc["components"]["schemas"]["breast_cancer.Features"]["properties"]["mean_area"];
    let highest = documented["maximum"].as_f64().unwrap();
    let refusal = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "mean_area")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    let stated: f64 = refusal.rsplit(" to ").next().unwrap().parse().unwrap();
    assert!(
        refusal.starts_with("1.7e308 is too far outside the training range")
            && stated == highest
            && documented["minimum"].as_f64() == Some(-highest),
        "{refusal} (documented maximum {highest})"
    );
    // The documented bounds themselves are scored.
    let mut edge = info["example"].clone();
    edge["mean_area"] = json!(highest);
    let (status, _, answer) = server
        .post_json("/api/models/breast_cancer/predict", &edge)
        .await;
    assert_eq!(status, 200, "{answer}");
    let batch = json!({"instances": [info["example"], extreme]});
    let (status, _, problem) = server
        .post_json("/api/models/breast_cancer/predict", &batch)
        .await;
    assert_eq!(status, 422);
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("instances[1]."),
        "{problem}"
    );

    let (status, _, answer) = server
        .get("/api/models/churn/predict?tenure=3.0&plan=pro&senior=true")
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, problem) = server
        .post_json(
            "/api/models/churn/predict",
            &json!({"tenure": 1e17, "plan": "pro", "senior": true}),
        )
        .await;
    assert_eq!(status, 422);
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("1e17 is too far outside the training range")
            && message.contains("expected an integer from"),
        "{message}"
    );
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
