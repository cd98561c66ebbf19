//! The native REST API's refusals over real HTTP on 127.0.0.1: each way a request can be
//! wrong (its path, content type, body, size, fields and values) gets its status and a problem
//! naming what is wrong; values outside training are answered with warnings.

mod common;

use common::{TestServer, assert_problem, demo_repository, iris_row, test_settings};
use serde_json::json;

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
    // Bytes that are not UTF-8, in a name and in a value: 400, saying where.
    for body in [
        &b"{\"sepal_length\": 5.1, \"sepal_\xffwidth\": 3.5}"[..],
        &b"{\"sepal_length\": \"5.\xc3\"}"[..],
    ] {
        let response = server
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let (status, headers, problem) = common::split(response).await;
        assert_problem(status, &headers, &problem, 400);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("not valid JSON") && detail.contains("column"),
            "{problem}"
        );
    }
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
