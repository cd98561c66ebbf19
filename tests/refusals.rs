//! The same bad value gets the same reason on every protocol: the native API (JSON body and
//! query), KServe V1, the Open Inference Protocol (V2, JSON and binary tensors) and offline CSV
//! prediction, each naming the field, over real HTTP against the real server.

mod common;

use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};

/// One row of `model` with `field` replaced by the JSON text `literal` (which may be one JSON
/// cannot hold, such as `NaN` or `1e999`, as Python's json module writes them).
fn body_with(row: &Value, field: &str, literal: &str) -> String {
    let mut fields: Vec<String> = row
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.as_str() != field)
        .map(|(name, value)| format!("\"{name}\": {value}"))
        .collect();
    fields.push(format!("\"{field}\": {literal}"));
    format!("{{{}}}", fields.join(", "))
}

/// A V2 request with one FP64 tensor per numeric value of `row` (booleans as 0/1), a BYTES one
/// per text, and `field` carrying `literal` in an FP64 tensor, or a BYTES one when it is a
/// JSON string.
fn v2_body(row: &Value, field: &str, literal: &str) -> String {
    let tensor = |name: &str, value: &str, text: bool| {
        let datatype = if text { "BYTES" } else { "FP64" };
        format!(
            r#"{{"name": "{name}", "shape": [1], "datatype": "{datatype}", "data": [{value}]}}"#
        )
    };
    let mut inputs: Vec<String> = row
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.as_str() != field)
        .map(|(name, value)| match value {
            Value::Bool(b) => tensor(name, if *b { "1" } else { "0" }, false),
            Value::String(_) => tensor(name, &value.to_string(), true),
            other => tensor(name, &other.to_string(), false),
        })
        .collect();
    inputs.push(tensor(field, literal, literal.starts_with('"')));
    format!(r#"{{"inputs": [{}]}}"#, inputs.join(", "))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_value_gets_one_reason_on_every_protocol() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let iris =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    let churn = json!({"tenure": 3, "plan": "pro", "senior": true});
    // (model, row, field, literal, what every protocol says about it)
    let cases = [
        (
            "iris",
            &iris,
            "sepal_length",
            "1e999",
            "not a finite number",
        ),
        (
            "iris",
            &iris,
            "sepal_length",
            "NaN",
            "got NaN: not a finite number",
        ),
        (
            "iris",
            &iris,
            "sepal_length",
            "-Infinity",
            "got -Infinity: not a finite number",
        ),
        (
            "iris",
            &iris,
            "sepal_length",
            "1e300",
            "1e300 is too far outside the training range",
        ),
        (
            "churn",
            &churn,
            "tenure",
            "1.5",
            "expected an integer, got 1.5",
        ),
        (
            "churn",
            &churn,
            "tenure",
            "1e17",
            "1e17 is too far outside the training range",
        ),
        (
            "churn",
            &churn,
            "senior",
            "2",
            "expected a boolean (true or false), got the number 2",
        ),
        (
            "churn",
            &churn,
            "plan",
            "\"gold\"",
            "unknown category \"gold\": expected one of",
        ),
        ("churn", &churn, "plan", "\"\"", "got an empty value"),
    ];
    for (model, row, field, literal, reason) in cases {
        let context = format!("{model}.{field} = {literal}");
        let (status, problem) = server
            .post_text(
                &format!("/api/models/{model}/predict"),
                body_with(row, field, literal),
            )
            .await;
        assert_eq!(status, 422, "native {context}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], field,
            "native {context}: {problem}"
        );
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "native {context}: {message}");

        let (status, answer) = server
            .post_text(
                &format!("/v1/models/{model}:predict"),
                format!(r#"{{"instances": [{}]}}"#, body_with(row, field, literal)),
            )
            .await;
        assert_eq!(status, 400, "V1 {context}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("instances[0].{field}: ")) && error.contains(reason),
            "V1 {context}: {error}"
        );

        let (status, answer) = server
            .post_text(
                &format!("/v2/models/{model}/infer"),
                v2_body(row, field, literal),
            )
            .await;
        assert_eq!(status, 400, "V2 {context}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(field) && error.contains(reason),
            "V2 {context}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spaces_around_a_category_are_ignored_everywhere() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let row = json!({"tenure": 3, "plan": " pro ", "senior": true});
    let (status, _, answer) = server.post_json("/api/models/churn/predict", &row).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, v1) = server
        .post_json("/v1/models/churn:predict", &json!({"instances": [row]}))
        .await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["predictions"][0], answer["label"]);
    let (status, _, query) = server
        .get("/api/models/churn/predict?tenure=3&plan=%20pro%20&senior=true")
        .await;
    assert_eq!(status, 200, "{query}");
    assert_eq!(query["probabilities"], answer["probabilities"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_takes_unknown_fields_as_the_setting_says() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.unknown_fields = mlserve::model::UnknownFields::Ignore;
    let server = TestServer::start(settings).await;
    let row = json!({"tenure": 3, "plan": "pro", "senior": true, "note": "extra"});
    let (status, _, answer) = server
        .post_json("/v1/models/churn:predict", &json!({"instances": [row]}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = server.post_json("/api/models/churn/predict", &row).await;
    assert_eq!(status, 200, "{answer}");
}

/// Binary tensor data: bytes a datatype cannot hold are refused, naming the input and the value
/// as sent.
#[tokio::test(flavor = "multi_thread")]
async fn binary_tensors_refuse_what_their_datatype_cannot_hold() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let send = async |senior: (&str, Vec<u8>), tenure: (&str, Vec<u8>)| {
        let header = json!({"inputs": [
            {"name": "tenure", "shape": [1], "datatype": tenure.0, "parameters": {"binary_data_size": tenure.1.len()}},
            {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
            {"name": "senior", "shape": [1], "datatype": senior.0, "parameters": {"binary_data_size": senior.1.len()}},
        ]});
        let mut body = serde_json::to_vec(&header).unwrap();
        let length = body.len();
        body.extend(tenure.1);
        body.extend(senior.1);
        let response = server
            .client
            .post(server.url("/v2/models/churn/infer"))
            .header("inference-header-content-length", length.to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, text)
    };
    let three = 3i64.to_le_bytes().to_vec();
    let (status, text) = send(("BOOL", vec![1]), ("INT64", three.clone())).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = send(("BOOL", vec![2]), ("INT64", three)).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("input 'senior': BOOL element 2 is not 0 or 1"),
        "{text}"
    );
    let huge = (1i64 << 60) + 1;
    let (status, text) = send(("BOOL", vec![1]), ("INT64", huge.to_le_bytes().to_vec())).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains(&format!("input 'tenure': {huge} is beyond the integers")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_bad_element_is_echoed_short() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let long = "x".repeat(100_000);
    let body = v2_body(
        &json!({"tenure": 3, "plan": "pro", "senior": true}),
        "tenure",
        &format!("\"{long}\""),
    );
    let body = body.replace(
        r#""name": "tenure", "shape": [1], "datatype": "BYTES""#,
        r#""name": "tenure", "shape": [1], "datatype": "INT64""#,
    );
    let (status, answer) = server.post_text("/v2/models/churn/infer", body).await;
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.len() < 200 && error.contains("tenure"), "{error}");
}
