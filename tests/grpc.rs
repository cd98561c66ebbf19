//! The Open Inference Protocol over gRPC, on real sockets: the official clients
//! (tritonclient.grpc, KServe's InferenceGRPCClient, grpcio's health and reflection stubs, from
//! tests/clients/triton_grpc.py) and a tonic client for what Python cannot time (deadlines,
//! shedding, shutdown with an open Watch stream). Answers must equal the REST ones.

mod common;

use common::clients::run_python_client;
use common::{TestServer, demo_repository, test_settings, train_into};
use mlserve::data::BundledDataset;
use mlserve::train::Algorithm;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

mod grpc_common;

use grpc_common::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use grpc_common::pb::model_infer_request::InferInputTensor;
use grpc_common::pb::{InferTensorContents, ModelInferRequest};
use grpc_common::{ROWS, channel, iris_request, predict_key};

/// REST's V2 answer for a JSON inference request on iris: status and body.
async fn rest_infer(server: &TestServer, model: &str, body: Value) -> (u16, Value) {
    let (status, _, answer) = server
        .post_json(&format!("/v2/models/{model}/infer"), &body)
        .await;
    (status, answer)
}

fn iris_body(rows: &[[f64; 4]]) -> Value {
    json!({"inputs": [{"name": "input", "shape": [rows.len(), 4], "datatype": "FP64",
        "data": rows.iter().flatten().collect::<Vec<_>>()}]})
}

async fn grpc_client(server: &TestServer) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
    let addr = server.server.grpc_addr.expect("the gRPC listener is on");
    GrpcInferenceServiceClient::new(channel(addr).await)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_grpc_clients_get_the_rest_answers() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let addr = server.server.grpc_addr.unwrap().to_string();
    let seen = run_python_client("triton_grpc.py", vec![addr.clone(), "main".into()]).await;
    let kserve = run_python_client("triton_grpc.py", vec![addr, "kserve".into()]).await;

    assert_eq!(
        (&seen["live"], &seen["ready"], &seen["model_ready"]),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(seen["server"]["name"], "mlserve");
    assert_eq!(seen["server"]["extensions"], json!(["classification"]));
    // Metadata as REST's, shapes as the proto's int64 (the JSON form prints them as strings).
    let (_, _, rest_metadata) = server.get("/v2/models/iris").await;
    assert_eq!(seen["metadata"]["name"], rest_metadata["name"]);
    assert_eq!(seen["metadata"]["platform"], rest_metadata["platform"]);
    assert_eq!(seen["metadata"]["versions"], rest_metadata["versions"]);
    assert_eq!(
        seen["metadata"]["inputs"],
        json!([{"name": "input", "datatype": "FP64", "shape": ["-1", "4"]}])
    );
    assert_eq!(
        seen["churn_metadata"]["inputs"],
        json!([
            {"name": "tenure", "datatype": "INT64", "shape": ["-1"]},
            {"name": "plan", "datatype": "BYTES", "shape": ["-1"]},
            {"name": "senior", "datatype": "BOOL", "shape": ["-1"]},
        ])
    );

    // Every way in gives REST's answer, to the last bit.
    let (status, rest) = rest_infer(&server, "iris", iris_body(&ROWS)).await;
    assert_eq!(status, 200, "{rest}");
    let rest_labels = &rest["outputs"][0]["data"];
    let rest_indexes = &rest["outputs"][1]["data"];
    let rest_probabilities: Vec<Vec<f64>> = rest["outputs"][2]["data"]
        .as_array()
        .unwrap()
        .chunks(3)
        .map(|c| c.iter().map(|v| v.as_f64().unwrap()).collect())
        .collect();
    let raw = &seen["raw"];
    assert_eq!(&raw["label"], rest_labels);
    assert_eq!(&raw["label_index"], rest_indexes);
    assert_eq!(raw["probabilities"], json!(rest_probabilities));
    assert_eq!(raw["id"], "grpc-7");
    assert_eq!(raw["version"], "1");
    assert_eq!(
        raw["outputs"],
        json!(["label", "label_index", "probabilities"])
    );
    let typed = &seen["typed"];
    assert_eq!(&typed["label"], rest_labels);
    assert_eq!(typed["probabilities"], json!(rest_probabilities));
    assert_eq!(typed["outputs"], json!(["label", "probabilities"]));
    for key in ["numpy", "list"] {
        assert_eq!(
            kserve["kserve"][key]["probabilities"],
            json!(rest_probabilities),
            "kserve {key}"
        );
        assert_eq!(kserve["kserve"][key]["id"], "k-1");
    }
    assert_eq!(kserve["kserve"]["ready"], true);
    assert_eq!(kserve["kserve"]["model_ready"], true);

    let (_, rest_top2) = rest_infer(
        &server,
        "iris",
        json!({"inputs": iris_body(&ROWS)["inputs"],
               "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]}),
    )
    .await;
    let top2: Vec<Value> = rest_top2["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .chunks(2)
        .map(|pair| json!(pair))
        .collect();
    assert_eq!(seen["top2"], json!(top2));

    let (_, rest_explained) = rest_infer(
        &server,
        "iris",
        json!({"inputs": iris_body(&ROWS)["inputs"], "parameters": {"explain": true}}),
    )
    .await;
    let flat: Vec<f64> = seen["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .flat_map(|class| class.as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(json!(flat), rest_explained["outputs"][3]["data"]);

    let (_, rest_churn) = rest_infer(
        &server,
        "churn",
        json!({"inputs": [
            {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [3, 20]},
            {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["basic", "pro"]},
            {"name": "senior", "shape": [2], "datatype": "BOOL", "data": [true, false]},
        ]}),
    )
    .await;
    assert_eq!(seen["churn_raw"], rest_churn["outputs"][0]["data"]);
    assert_eq!(seen["churn_typed"], rest_churn["outputs"][0]["data"]);

    let batch: Vec<Value> = rest_labels
        .as_array()
        .unwrap()
        .iter()
        .cycle()
        .take(1000)
        .cloned()
        .collect();
    assert_eq!(seen["batch_labels"], json!(batch));
    assert_eq!(seen["gzip_labels"], json!(batch));

    // Refusals: the code of their meaning, REST's message.
    let errors = &seen["errors"];
    let code = |case: &str| errors[case]["code"].as_str().unwrap().to_string();
    for case in [
        "unknown_model",
        "unknown_version",
        "model_ready_unknown",
        "metadata_unknown",
    ] {
        assert_eq!(code(case), "StatusCode.NOT_FOUND", "{case}: {errors}");
    }
    for case in [
        "shape",
        "category",
        "output",
        "explain_type",
        "too_many_rows",
    ] {
        assert_eq!(
            code(case),
            "StatusCode.INVALID_ARGUMENT",
            "{case}: {errors}"
        );
    }
    assert_eq!(code("unimplemented"), "StatusCode.UNIMPLEMENTED");
    let shape_rows: Vec<[f64; 3]> = ROWS.iter().map(|r| [r[0], r[1], r[2]]).collect();
    let (_, rest_shape) = rest_infer(
        &server,
        "iris",
        json!({"inputs": [{"name": "input", "shape": [3, 3], "datatype": "FP32",
            "data": shape_rows.iter().flatten().collect::<Vec<_>>()}]}),
    )
    .await;
    assert_eq!(errors["shape"]["message"], rest_shape["error"]);
    let (_, rest_unknown) = rest_infer(&server, "nope", iris_body(&ROWS)).await;
    assert_eq!(errors["unknown_model"]["message"], rest_unknown["error"]);
    assert!(
        errors["category"]["message"]
            .as_str()
            .unwrap()
            .contains("row 0: plan: unknown category \"gold\""),
        "{errors}"
    );

    // Counted and logged as every other protocol's predictions.
    let calls = server
        .metric(
            "mlserve_grpc_requests_total",
            &[("method", "ModelInfer"), ("code", "OK"), ("model", "iris")],
        )
        .await;
    assert!(calls >= 8.0, "{calls}");
    let refused = server
        .metric(
            "mlserve_grpc_requests_total",
            &[("method", "ModelInfer"), ("code", "NOT_FOUND")],
        )
        .await;
    assert!(refused >= 1.0, "{refused}");
    let mut call = tonic::Request::new(iris_request(2, false));
    call.metadata_mut()
        .insert("x-request-id", "grpc-logged".parse().unwrap());
    let answered = grpc_client(&server).await.model_infer(call).await.unwrap();
    assert_eq!(
        answered.metadata().get("x-request-id").unwrap(),
        "grpc-logged"
    );
    let logged = common::eventually(Duration::from_secs(5), async || {
        let (_, _, page) = server.get("/api/predictions?model=iris&limit=10").await;
        page["predictions"].as_array().is_some_and(|rows| {
            rows.iter()
                .filter(|r| r["request_id"] == "grpc-logged")
                .count()
                == 2
        })
    })
    .await;
    assert!(
        logged,
        "the gRPC prediction reaches the log under its request id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_readiness_and_reflection_serves_both_versions() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let addr = server.server.grpc_addr.unwrap();
    let seen = run_python_client("triton_grpc.py", vec![addr.to_string(), "health".into()]).await;
    assert_eq!(
        seen["health"],
        json!({"": "SERVING", "inference.GRPCInferenceService": "SERVING",
               "iris": "SERVING", "nope": "StatusCode.NOT_FOUND"})
    );
    for version in ["reflection_v1alpha", "reflection_v1"] {
        let services = seen[version].as_array().unwrap();
        for service in [
            "grpc.health.v1.Health",
            "inference.GRPCInferenceService",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(
                services.contains(&json!(service)),
                "{version}: {services:?}"
            );
        }
    }
    assert!(seen["descriptor_files"].as_u64().unwrap() >= 1);

    // A model unloaded leaves the health service; loaded again, it serves again.
    let mut health = HealthClient::new(channel(addr).await);
    let check = async |health: &mut HealthClient<_>, service: &str| {
        health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .map(|answer| answer.into_inner().status)
            .map_err(|status| status.code())
    };
    assert_eq!(
        server.post_empty("/v2/repository/models/iris/unload").await,
        200
    );
    let gone = common::eventually(Duration::from_secs(5), async || {
        check(&mut health, "iris").await == Err(tonic::Code::NotFound)
    })
    .await;
    assert!(gone, "an unloaded model is unknown to the health service");
    assert_eq!(
        server.post_empty("/v2/repository/models/iris/load").await,
        200
    );
    let back = common::eventually(Duration::from_secs(5), async || {
        check(&mut health, "iris").await == Ok(ServingStatus::Serving as i32)
    })
    .await;
    assert!(back);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_tells_watchers_and_ends_within_the_grace_period() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.request_timeout_secs = 2.0;
    let server = TestServer::start(settings).await;
    let addr = server.server.grpc_addr.unwrap();
    let mut health = HealthClient::new(channel(addr).await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = next_status(&mut watch).await;
    let serving = if first == Some(ServingStatus::Serving as i32) {
        first
    } else {
        next_status(&mut watch).await
    };
    assert_eq!(serving, Some(ServingStatus::Serving as i32));
    let started = Instant::now();
    let stopping = tokio::spawn(server.server.shutdown());
    assert_eq!(
        next_status(&mut watch).await,
        Some(ServingStatus::NotServing as i32),
        "a Watch stream hears the server stop serving"
    );
    // The stream stays open on the client's side: the grace period ends the server anyway.
    stopping.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    drop(watch);
}

async fn next_status(stream: &mut tonic::Streaming<HealthCheckResponse>) -> Option<i32> {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .ok()?
        .ok()?
        .map(|answer| answer.status)
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_roles_and_rate_limits_apply_to_grpc_calls() {
    let repo = demo_repository();
    let dir = tempfile::tempdir().unwrap();
    let (keys_path, key) = predict_key(dir.path());
    let mut settings = test_settings(repo.path());
    settings.auth = true;
    settings.keys_file = keys_path;
    settings.rate_limit_per_sec = 0.01;
    settings.rate_limit_burst = 3;
    let server = TestServer::start(settings).await;
    let addr = server.server.grpc_addr.unwrap().to_string();
    let seen = run_python_client("triton_grpc.py", vec![addr, "auth".into(), key]).await;
    assert_eq!(seen["live_without_credentials"], true, "probes stay open");
    assert_eq!(seen["ready_without_credentials"], true);
    for case in ["missing", "metadata_missing", "wrong"] {
        assert_eq!(
            seen[case]["code"], "StatusCode.UNAUTHENTICATED",
            "{case}: {seen}"
        );
    }
    assert!(
        seen["missing"]["message"]
            .as_str()
            .unwrap()
            .contains("credentials are required"),
        "{seen}"
    );
    assert_eq!(seen["bearer"], json!(["setosa", "virginica", "versicolor"]));
    assert_eq!(seen["x_api_key"], seen["bearer"]);
    // Two calls spent the burst of three; the third passes, the fourth is limited.
    assert_eq!(seen["rate"], json!(["OK", "StatusCode.RESOURCE_EXHAUSTED"]));
    assert!(
        seen["limited"]["message"]
            .as_str()
            .unwrap()
            .contains("'ci' is over its rate limit"),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_calls_meet_the_timeout_and_the_in_flight_limit_sheds() {
    let repo = demo_repository();
    // k-NN explains by KernelSHAP: at this budget one row takes seconds.
    train_into(
        repo.path(),
        BundledDataset::BreastCancer,
        Algorithm::Knn,
        "slow",
        1,
    );
    let mut settings = test_settings(repo.path());
    settings.explain_samples = 50_000;
    settings.max_batch_rows = 100_000;
    settings.max_concurrent_requests = 1;
    settings.request_timeout_secs = 1.5;
    let server = TestServer::start(settings).await;
    let mut client = grpc_client(&server).await;
    let (_, _, dataset) = server.get("/api/models/slow").await;
    let features = dataset["features"].as_array().unwrap().len();
    let slow = ModelInferRequest {
        model_name: "slow".into(),
        parameters: iris_request(1, true).parameters,
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: "FP64".into(),
            shape: vec![1, features as i64],
            parameters: Default::default(),
            contents: Some(InferTensorContents {
                fp64_contents: vec![1.0; features],
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    let mut slow_client = client.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { slow_client.model_infer(slow).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let shed = client
        .model_infer(iris_request(1, false))
        .await
        .unwrap_err();
    assert_eq!(shed.code(), tonic::Code::Unavailable, "{shed:?}");
    assert!(
        shed.message().contains("max_concurrent_requests"),
        "{shed:?}"
    );
    let timed_out = waiting.await.unwrap().unwrap_err();
    assert_eq!(
        timed_out.code(),
        tonic::Code::DeadlineExceeded,
        "{timed_out:?}"
    );
    assert!(timed_out.message().contains("request_timeout_secs"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let answered = client.model_infer(iris_request(3, false)).await.unwrap();
    assert!(
        answered.metadata().get("x-request-id").is_some(),
        "every answer names its request id"
    );
    assert_eq!(
        answered.into_inner().outputs.len(),
        3,
        "the slot was given back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_past_the_limit_are_refused_naming_the_setting() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.grpc_max_message_bytes = 64 * 1024;
    let server = TestServer::start(settings).await;
    let mut client = grpc_client(&server).await;
    // 3,000 rows of 4 doubles: about 100 KB.
    let refused = client
        .model_infer(iris_request(3000, false))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("grpc_max_message_bytes"),
        "{refused:?}"
    );
    let answered = client.model_infer(iris_request(100, false)).await.unwrap();
    assert_eq!(answered.into_inner().raw_output_contents.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_can_be_turned_off() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.grpc_addr = mlserve::config::GrpcAddr::Off;
    let server = TestServer::start(settings).await;
    assert_eq!(server.server.grpc_addr, None);
    let (status, _, _) = server.get("/v2/health/ready").await;
    assert_eq!(status, 200);
}
