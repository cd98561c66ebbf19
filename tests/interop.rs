//! The Open Inference Protocol (V2) and KServe V1 over real HTTP, and the official Triton
//! client (tritonclient.http from PyPI) against the server.

mod common;

use common::clients::run_python_client;
use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};

const ROWS: [[f64; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.9, 3.1, 5.4, 2.1],
    [5.9, 3.0, 4.2, 1.5],
];

/// The native API's answer for the rows: the reference the protocols must agree with.
async fn native(server: &TestServer) -> Vec<(String, Vec<f64>)> {
    let instances: Vec<Value> = ROWS
        .iter()
        .map(|r| json!({"sepal_length": r[0], "sepal_width": r[1], "petal_length": r[2], "petal_width": r[3]}))
        .collect();
    let (status, _, answer) = server
        .post_json(
            "/api/models/iris/predict",
            &json!({ "instances": instances }),
        )
        .await;
    assert_eq!(status, 200);
    answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let probabilities = ["setosa", "versicolor", "virginica"]
                .iter()
                .map(|l| p["probabilities"][l].as_f64().unwrap())
                .collect();
            (p["label"].as_str().unwrap().to_string(), probabilities)
        })
        .collect()
}

async fn post_raw(
    server: &TestServer,
    path: &str,
    body: Vec<u8>,
    header_length: Option<usize>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = server.client.post(server.url(path)).body(body);
    if let Some(length) = header_length {
        request = request.header("inference-header-content-length", length.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

async fn infer_json(server: &TestServer, body: Value) -> (u16, Value) {
    let (status, _, bytes) = post_raw(
        server,
        "/v2/models/iris/infer",
        serde_json::to_vec(&body).unwrap(),
        None,
    )
    .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_triton_client_gets_the_native_answers() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let expected = native(&server).await;
    let addr = server.server.addr.to_string();
    let seen = run_python_client("triton_client.py", vec![addr]).await;
    assert_eq!(
        (
            seen["live"].clone(),
            seen["ready"].clone(),
            seen["model_ready"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    assert_eq!(seen["server"]["name"], "mlserve");
    assert_eq!(
        seen["metadata"]["inputs"][0],
        json!({"name": "input", "datatype": "FP64", "shape": [-1, 4]})
    );
    for case in [
        "binary_default",
        "json",
        "binary_in_json_out",
        "all_outputs_binary",
    ] {
        let answer = &seen[case];
        assert_eq!(answer["id"], "req-7", "{case}");
        for (row, (label, probabilities)) in expected.iter().enumerate() {
            assert_eq!(answer["labels"][row], json!(label), "{case}");
            for (class, p) in probabilities.iter().enumerate() {
                let got = answer["probabilities"][row][class].as_f64().unwrap();
                assert!((got - p).abs() < 1e-12, "{case} row {row}: {got} vs {p}");
            }
        }
    }
    let top1: Vec<String> = expected
        .iter()
        .map(|(label, p)| {
            let class = ["setosa", "versicolor", "virginica"]
                .iter()
                .position(|l| l == label)
                .unwrap();
            format!("{:.6}:{class}:{label}", p[class])
        })
        .collect();
    assert_eq!(seen["per_feature_top1"], json!(top1));
    // Explanations through the client: per row and class, four contributions and the base
    // value last, adding up to the class's probability.
    let explained = &seen["explained"];
    let contributions = explained["contributions"].as_array().unwrap();
    assert_eq!(contributions.len(), 3, "{explained}");
    for (row, probabilities) in contributions
        .iter()
        .zip(explained["probabilities"].as_array().unwrap())
    {
        for (class, probability) in row
            .as_array()
            .unwrap()
            .iter()
            .zip(probabilities.as_array().unwrap())
        {
            let values = class.as_array().unwrap();
            assert_eq!(values.len(), 5, "{explained}");
            let total: f64 = values.iter().map(|v| v.as_f64().unwrap()).sum();
            assert!(
                (total - probability.as_f64().unwrap()).abs() < 1e-9,
                "{explained}"
            );
        }
    }
    assert_eq!(seen["errors"]["shape"]["status"], "400");
    assert_eq!(seen["errors"]["unknown_input"]["status"], "400");
    assert_eq!(seen["errors"]["unknown_model"]["status"], "404");
    assert_eq!(seen["ready_after_unload"], false);
    assert_eq!(seen["ready_after_load"], true);
    let index = seen["index"].as_array().unwrap();
    assert!(
        index
            .iter()
            .any(|m| m["name"] == "iris" && m["state"] == "READY")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_tensors_are_400_with_the_protocol_error_body() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let cases = [
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}),
            "shape [1, 4] holds 4 elements, the data has 3",
        ),
        // Nested data must have the declared shape at every level, never be re-cut into it.
        (
            json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": [[5.1, 3.5, 1.4, 0.2, 6.9], [3.1, 5.4, 2.1]]}]}),
            "input 'input': data[0] has 5 values, the shape [2, 4] asks for 4",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 1e300, 1.4, 0.2]}]}),
            "input 'input': 1e+300 is out of range for FP32",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}]}),
            "invalid datatype 'FP99' for input 'input'",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, "x", 4]}]}),
            "element \"x\" is not of datatype INT64",
        ),
        (
            json!({"inputs": [{"name": "petals", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
            "unexpected inference input 'petals' for model 'iris'",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}),
            "Expected [-1,4], got [1, 3]",
        ),
        (
            json!({"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            "missing required input(s) 'sepal_width', 'petal_length', 'petal_width'",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32"}]}),
            "must set exactly one of 'data' and 'binary_data_size'",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}),
            "expecting 16 additional bytes",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}], "outputs": [{"name": "logits"}]}),
            "unexpected inference output 'logits'",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1e308, 2, 3, 4]}]}),
            "",
        ),
        (json!({"inputs": "nope"}), "not valid JSON for the protocol"),
    ];
    for (body, expected) in cases {
        let (status, answer) = infer_json(&server, body.clone()).await;
        if expected.is_empty() {
            // Extreme but finite values are answered (with range warnings in the native API).
            assert!(status == 200 || status == 400, "{body}: {status} {answer}");
            continue;
        }
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
        assert_eq!(
            answer.as_object().unwrap().len(),
            1,
            "only the error field: {answer}"
        );
    }
    // Values the validator refuses, per row.
    let (status, answer) = infer_json(
        &server,
        json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2, 5.1, 3.5, 1.4, "NaN"]}]}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    // Binary data whose size disagrees with the shape.
    let header = serde_json::to_vec(&json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 12}}]})).unwrap();
    let length = header.len();
    let mut body = header;
    body.extend_from_slice(&[0u8; 12]);
    let (status, _, bytes) = post_raw(&server, "/v2/models/iris/infer", body, Some(length)).await;
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"],
        "input byte size mismatch for input 'input': expected 16, got 12"
    );
    let (status, _, _) = post_raw(&server, "/v2/models/iris/infer", b"{}".to_vec(), Some(99)).await;
    assert_eq!(status, 400);
    let (status, _, bytes) = post_raw(&server, "/v2/models/nope/infer", b"{}".to_vec(), None).await;
    assert_eq!(status, 404);
    assert!(serde_json::from_slice::<Value>(&bytes).unwrap()["error"].is_string());
    let (status, _, bytes) = post_raw(
        &server,
        "/v2/models/iris/versions/9/infer",
        b"{}".to_vec(),
        None,
    )
    .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&bytes));
    let response = server
        .client
        .get(server.url("/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_outputs_follow_the_json_header() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let expected = native(&server).await;
    let header = serde_json::to_vec(&json!({
        "id": "b1",
        "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP64", "parameters": {"binary_data_size": 96}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}}, {"name": "probabilities", "parameters": {"binary_data": true}}, {"name": "label_index"}],
    }))
    .unwrap();
    let length = header.len();
    let mut body = header;
    for value in ROWS.iter().flatten() {
        body.extend_from_slice(&value.to_le_bytes());
    }
    let (status, headers, bytes) =
        post_raw(&server, "/v2/models/iris/infer", body, Some(length)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["content-type"], "application/octet-stream");
    let json_length: usize = headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let answer: Value = serde_json::from_slice(&bytes[..json_length]).unwrap();
    assert_eq!(answer["id"], "b1");
    assert_eq!(answer["model_name"], "iris");
    let outputs = answer["outputs"].as_array().unwrap();
    assert_eq!(
        outputs[2]["data"],
        json!(
            expected
                .iter()
                .map(|(l, _)| ["setosa", "versicolor", "virginica"]
                    .iter()
                    .position(|x| x == l)
                    .unwrap())
                .collect::<Vec<_>>()
        )
    );
    let mut binary = &bytes[json_length..];
    // label: BYTES, length-prefixed.
    let label_size = outputs[0]["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let (mut labels, rest) = binary.split_at(label_size);
    binary = rest;
    for (label, _) in &expected {
        let n = u32::from_le_bytes(labels[..4].try_into().unwrap()) as usize;
        assert_eq!(std::str::from_utf8(&labels[4..4 + n]).unwrap(), label);
        labels = &labels[4 + n..];
    }
    assert_eq!(outputs[1]["shape"], json!([3, 3]));
    assert_eq!(outputs[1]["parameters"]["binary_data_size"], 72);
    let probabilities: Vec<f64> = binary
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let flat: Vec<f64> = expected.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(probabilities, flat);
}

#[tokio::test(flavor = "multi_thread")]
async fn models_with_text_features_take_bytes_tensors() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let (_, _, metadata) = server.get("/v2/models/churn").await;
    assert_eq!(
        metadata["inputs"],
        json!([
            {"name": "tenure", "datatype": "INT64", "shape": [-1]},
            {"name": "plan", "datatype": "BYTES", "shape": [-1]},
            {"name": "senior", "datatype": "BOOL", "shape": [-1]},
        ])
    );
    let (_, _, reference) = server
        .post_json("/api/models/churn/predict", &json!({"instances": [{"tenure": 3, "plan": "basic", "senior": true}, {"tenure": 20, "plan": "pro", "senior": false}]}))
        .await;
    let per_feature = json!({"inputs": [
        {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [3, 20]},
        {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": [["basic"], ["pro"]]},
        {"name": "senior", "shape": [2], "datatype": "BOOL", "data": [true, false]},
    ]});
    let matrix = json!({"inputs": [{"name": "input", "shape": [2, 3], "datatype": "BYTES", "data": ["3", "basic", "true", "20", "pro", "false"]}]});
    for body in [per_feature, matrix] {
        let (status, _, bytes) = post_raw(
            &server,
            "/v2/models/churn/infer",
            serde_json::to_vec(&body).unwrap(),
            None,
        )
        .await;
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 200, "{answer}");
        let labels = &answer["outputs"][0]["data"];
        assert_eq!(labels[0], reference["predictions"][0]["label"]);
        assert_eq!(labels[1], reference["predictions"][1]["label"]);
    }
    let wrong = json!({"inputs": [
        {"name": "tenure", "shape": [1], "datatype": "INT64", "data": [3]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["gold"]},
        {"name": "senior", "shape": [1], "datatype": "BOOL", "data": [true]},
    ]});
    let (status, _, bytes) = post_raw(
        &server,
        "/v2/models/churn/infer",
        serde_json::to_vec(&wrong).unwrap(),
        None,
    )
    .await;
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("row 0: plan: unknown category \"gold\""),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metadata_readiness_and_the_repository() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    // The status code is the protocol's answer; the bodies are KServe's, which its own
    // Python client reads.
    for (path, body) in [
        ("/v2/health/live", json!({"live": true})),
        ("/v2/health/ready", json!({"ready": true})),
        (
            "/v2/models/iris/ready",
            json!({"name": "iris", "ready": true}),
        ),
        (
            "/v2/models/iris/versions/1/ready",
            json!({"name": "iris", "ready": true}),
        ),
    ] {
        let (status, _, answer) = server.get(path).await;
        assert_eq!((status, answer), (200, body), "{path}");
    }
    let (status, _, server_metadata) = server.get("/v2").await;
    assert_eq!(status, 200);
    assert_eq!(
        server_metadata["extensions"],
        json!(["binary_tensor_data", "classification", "model_repository"])
    );
    let (status, _, metadata) = server.get("/v2/models/iris/versions/1").await;
    assert_eq!((status, metadata["name"].clone()), (200, json!("iris")));
    assert_eq!(
        metadata["outputs"][2],
        json!({"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]})
    );
    let (status, _, missing) = server.get("/v2/models/nope/ready").await;
    assert_eq!(status, 404);
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("no model named 'nope'")
    );

    let response = server
        .client
        .post(server.url("/v2/repository/models/iris/unload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .client
        .get(server.url("/v2/models/iris/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "an unloaded model is gone until loaded"
    );
    let index: Value = server
        .client
        .post(server.url("/v2/repository/index"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        index.as_array().unwrap().iter().any(|m| m["name"] == "iris"
            && m["state"] == "UNAVAILABLE"
            && m["reason"] == "unloaded")
    );
    let ready_only: Value = server
        .client
        .post(server.url("/v2/repository/index"))
        .json(&json!({"ready": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !ready_only
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "iris")
    );
    let response = server
        .client
        .post(server.url("/v2/repository/models/iris/load"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .client
        .get(server.url("/v2/models/iris/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .client
        .post(server.url("/v2/repository/models/nope/load"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kserve_v1_predicts_instances() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let expected = native(&server).await;
    let (status, _, list) = server.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(list["models"], json!(["breast_cancer", "churn", "iris"]));
    let (status, _, ready) = server.get("/v1/models/iris").await;
    assert_eq!(
        (status, ready),
        (200, json!({"name": "iris", "ready": true}))
    );
    let (status, _, missing) = server.get("/v1/models/nope").await;
    assert_eq!(
        (status, missing),
        (
            404,
            json!({"error": "Model with name nope does not exist."})
        )
    );
    let instances = json!({"instances": [
        ROWS[0],
        {"sepal_length": ROWS[1][0], "sepal_width": ROWS[1][1], "petal_length": ROWS[1][2], "petal_width": ROWS[1][3]},
        ROWS[2],
    ]});
    let (status, _, answer) = server
        .post_json("/v1/models/iris:predict", &instances)
        .await;
    assert_eq!(status, 200, "{answer}");
    let labels: Vec<&str> = expected.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(answer, json!({ "predictions": labels }));
    for (body, message) in [
        (
            json!({"instances": [[1, 2, 3]]}),
            "instances[0]: expected 4 values in schema order, got 3",
        ),
        (
            json!({"rows": []}),
            "Expected \"instances\" to be a non-empty list",
        ),
        (
            json!({"instances": [{"sepal_length": "x", "sepal_width": 1, "petal_length": 1, "petal_width": 1}]}),
            "instances[0].sepal_length: expected a finite number",
        ),
    ] {
        let (status, _, answer) = server.post_json("/v1/models/iris:predict", &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
    let (status, _, _) = server
        .post_json("/v1/models/nope:predict", &instances)
        .await;
    assert_eq!(status, 404);
    let (status, _, answer) = server
        .post_json("/v1/models/iris:explain", &instances)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_adds_up_to_the_probabilities(&answer["explanations"], &expected);
    let (status, _, answer) = server
        .post_json("/v1/models/nope:explain", &instances)
        .await;
    assert_eq!(status, 404, "{answer}");
}

/// Each instance's explanation per class: TreeSHAP in probability, the base value and the
/// contributions adding up to the native API's probability of the class.
fn assert_adds_up_to_the_probabilities(explanations: &Value, expected: &[(String, Vec<f64>)]) {
    let explanations = explanations.as_array().unwrap();
    assert_eq!(explanations.len(), expected.len(), "{explanations:?}");
    for (explanation, (_, probabilities)) in explanations.iter().zip(expected) {
        for (class, probability) in ["setosa", "versicolor", "virginica"]
            .iter()
            .zip(probabilities)
        {
            let output = &explanation[class];
            assert_eq!(output["method"], "tree_path_dependent", "{output}");
            assert_eq!(output["unit"], "probability", "{output}");
            let features = output["features"].as_object().unwrap();
            assert_eq!(features.len(), 4, "{output}");
            let total = output["base_value"].as_f64().unwrap()
                + features.values().map(|v| v.as_f64().unwrap()).sum::<f64>();
            assert!(
                (total - probability).abs() < 1e-9,
                "{output} vs {probability}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_limits_outputs_and_integer_ranges_are_enforced() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.max_batch_rows = 2;
    let server = TestServer::start(settings).await;
    let row = [5.1, 3.5, 1.4, 0.2];
    let three: Vec<f64> = row.iter().chain(&row).chain(&row).copied().collect();
    let cases = [
        (
            json!({"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP64", "data": three}]}),
            "batch-size must be <= 2",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": row}], "outputs": [{"name": "label", "parameters": {"classification": 2}}]}),
            "classification applies to 'probabilities' only",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": row}], "outputs": [{"name": "label"}, {"name": "label"}]}),
            "requested twice",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT8", "data": [5, 3, 1000, 0]}]}),
            "1000 is out of range for INT8",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "UINT8", "data": [5, 3, -1, 0]}]}),
            "-1 is out of range for UINT8",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = infer_json(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{answer}"
        );
    }
    let (status, _, answer) = server
        .post_json(
            "/v1/models/iris:predict",
            &json!({"instances": [row, row, row]}),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_get_the_protocol_error_shape() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.max_body_bytes = 64;
    let server = TestServer::start(settings).await;
    let big = vec![b' '; 1000];
    for path in ["/v2/models/iris/infer", "/v1/models/iris:predict"] {
        let (status, _, bytes) = post_raw(&server, path, big.clone(), None).await;
        assert_eq!(status, 413, "{path}");
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
}

/// Labels and probabilities as KServe's client decoded them from one V2 answer.
fn kserve_outputs(answer: &Value) -> Vec<(String, Vec<f64>)> {
    let outputs = &answer["outputs"];
    let labels = outputs["label"]["data"].as_array().unwrap();
    let probabilities: Vec<f64> = outputs["probabilities"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert_eq!(outputs["probabilities"]["shape"], json!([3, 3]));
    labels
        .iter()
        .zip(probabilities.chunks(3))
        .map(|(label, p)| (label.as_str().unwrap().to_string(), p.to_vec()))
        .collect()
}

fn assert_same_predictions(
    seen: &[(String, Vec<f64>)],
    expected: &[(String, Vec<f64>)],
    case: &str,
) {
    assert_eq!(seen.len(), expected.len(), "{case}");
    for (row, ((label, p), (want_label, want))) in seen.iter().zip(expected).enumerate() {
        assert_eq!(label, want_label, "{case} row {row}");
        for (got, want) in p.iter().zip(want) {
            assert!(
                (got - want).abs() < 1e-12,
                "{case} row {row}: {got} vs {want}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kserves_own_python_client_works_on_v1_and_v2() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let expected = native(&server).await;
    let seen = run_python_client("kserve_client.py", vec![server.server.addr.to_string()]).await;
    assert_eq!(seen["failed"], json!([]), "{seen}");

    let v2 = &seen["v2"];
    assert_eq!(
        [
            &v2["live"],
            &v2["ready"],
            &v2["model_ready"],
            &v2["unknown_model_ready"]
        ],
        [&json!(true), &json!(true), &json!(true), &json!(false)]
    );
    for (case, id, binary) in [
        ("json", "req-7", false),
        ("json_outputs", "req-8", false),
        ("binary", "req-9", true),
    ] {
        let answer = &v2[case];
        assert_eq!(
            (&answer["model_name"], &answer["id"]),
            (&json!("iris"), &json!(id)),
            "{case}"
        );
        assert_eq!(answer["binary"], binary, "{case}");
        assert_same_predictions(&kserve_outputs(answer), &expected, case);
    }
    // The client shows the server's own words for a failure (it needs exactly application/json).
    let unknown = &v2["errors"]["unknown_model"];
    assert_eq!(unknown["status"], 404);
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .starts_with("no model named 'nope'"),
        "{unknown}"
    );
    let bad_shape = &v2["errors"]["bad_shape"];
    assert_eq!(bad_shape["status"], 400);
    assert!(
        bad_shape["message"]
            .as_str()
            .unwrap()
            .contains("input 'input'"),
        "{bad_shape}"
    );

    let v1 = &seen["v1"];
    assert_eq!(
        (&v1["live"], &v1["model_ready"]),
        (&json!(true), &json!(true))
    );
    let labels: Vec<&str> = expected.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(v1["predict"], json!({"predictions": labels}));
    assert_eq!(v1["unknown_model_ready"]["status"], 404);
    assert_eq!(v1["errors"]["unknown_model"]["status"], 404);
    assert_eq!(
        v1["errors"]["unknown_model"]["body"]["error"],
        "Model with name nope does not exist."
    );
    assert_eq!(v1["errors"]["bad_instance"]["status"], 400);
    assert_adds_up_to_the_probabilities(&v1["explain"]["explanations"], &expected[..2]);
    assert_eq!(v1["errors"]["explain_unknown_model"]["status"], 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_refuses_a_key_given_twice_at_any_depth() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let row =
        r#"{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}"#;
    for (body, key) in [
        (
            format!(r#"{{"instances": [{row}], "instances": [[6.9, 3.1, 5.4, 2.1]]}}"#),
            "instances",
        ),
        (
            format!(
                r#"{{"instances": [{row}, {{"sepal_length": 5.1, "sepal_length": 7.0, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}]}}"#
            ),
            "instances[1].sepal_length",
        ),
    ] {
        let (status, _, bytes) =
            post_raw(&server, "/v1/models/iris:predict", body.into_bytes(), None).await;
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message == format!("{key}: given more than once"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_on_v1_and_v2_answers_in_the_protocols_shape() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for path in [
        "/v1/models/iris",
        "/v2/models/iris/infer",
        "/v2/health/ready",
    ] {
        let response = server.client.delete(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert!(response.headers().contains_key("allow"), "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("DELETE is not allowed")),
            "{path}: {body}"
        );
    }
    // The native API keeps problem details.
    let response = server
        .client
        .delete(server.url("/api/models/iris/predict"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}
