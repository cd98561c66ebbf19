//! gRPC as operators meet it: grpcurl through reflection, and gRPC on the HTTP port
//! (`grpc_on_http_port`) for platforms that give a container one port: HTTP/2 without TLS (prior
//! knowledge) beside HTTP/1.1 on one listener, gRPC calls to the gRPC services and REST over
//! either version to REST.

mod common;

use common::clients::run_python_client;
use common::{TestServer, demo_repository, test_settings};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

mod grpc_common;

use grpc_common::{channel, iris_request, pb, predict_key};

#[tokio::test(flavor = "multi_thread")]
async fn grpc_rest_over_http1_and_rest_over_h2c_share_the_http_port() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.grpc_addr = mlserve::config::GrpcAddr::Off;
    settings.grpc_on_http_port = true;
    let server = TestServer::start(settings).await;
    assert_eq!(server.server.grpc_addr, None, "no listener of its own");
    let addr = server.server.addr;

    // gRPC from tonic and from grpcio, on the HTTP port.
    let mut client =
        pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(channel(addr).await);
    let ready = client
        .model_ready(pb::ModelReadyRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(ready.into_inner().ready);
    let mut label_only = iris_request(1, false);
    label_only.outputs = vec![pb::model_infer_request::InferRequestedOutputTensor {
        name: "label".into(),
        parameters: Default::default(),
    }];
    let answer = client.model_infer(label_only).await.unwrap().into_inner();
    // BYTES raw: a 4-byte little-endian length, then the text.
    assert_eq!(&answer.raw_output_contents[0][4..], b"setosa");
    let seen = run_python_client("triton_grpc.py", vec![addr.to_string(), "health".into()]).await;
    assert_eq!(seen["health"]["iris"], "SERVING", "{seen}");
    assert!(
        seen["reflection_v1alpha"]
            .as_array()
            .unwrap()
            .contains(&json!("inference.GRPCInferenceService"))
    );

    // REST over HTTP/1.1, as ever.
    let (status, _, metadata) = server.get("/v2/models/iris").await;
    assert_eq!(status, 200);
    // REST over HTTP/2 prior knowledge (what Knative sends to a port named h2c).
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let response = h2
        .request(
            hyper::Request::get(format!("http://{addr}/v2/models/iris"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let over_h2: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(over_h2, metadata);
    let (status, _, _) = server
        .post_json(
            "/api/models/iris/predict",
            &json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}),
        )
        .await;
    assert_eq!(status, 200);
}

/// grpcurl, as the README shows it: no proto file, only reflection.
#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_calls_and_checks_health_through_reflection() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let addr = server.server.grpc_addr.unwrap().to_string();
    let python = std::env::var("MLSERVE_TEST_PYTHON")
        .expect("MLSERVE_TEST_PYTHON names the test venv's Python; scripts/test.sh sets it up");
    let grpcurl = std::path::Path::new(&python).with_file_name("grpcurl");
    let run = |args: Vec<String>| {
        let grpcurl = grpcurl.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(&grpcurl)
                .args(&args)
                .output()
                .unwrap()
        })
    };
    let listed = run(vec!["-plaintext".into(), addr.clone(), "list".into()])
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    for service in ["inference.GRPCInferenceService", "grpc.health.v1.Health"] {
        assert!(listed.lines().any(|l| l == service), "{listed}");
    }
    let body = r#"{"model_name": "iris", "inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4],
        "contents": {"fp64_contents": [5.1, 3.5, 1.4, 0.2]}}], "outputs": [{"name": "label"}]}"#;
    let inferred = run(vec![
        "-plaintext".into(),
        "-d".into(),
        body.into(),
        addr.clone(),
        "inference.GRPCInferenceService/ModelInfer".into(),
    ])
    .await
    .unwrap();
    assert!(inferred.status.success(), "{inferred:?}");
    let answer: Value = serde_json::from_slice(&inferred.stdout).unwrap();
    // A BYTES output, raw: a 4-byte length, then "setosa".
    assert_eq!(
        answer["rawOutputContents"],
        json!(["BgAAAHNldG9zYQ=="]),
        "{answer}"
    );
    let health = run(vec![
        "-plaintext".into(),
        "-d".into(),
        r#"{"service": "iris"}"#.into(),
        addr.clone(),
        "grpc.health.v1.Health/Check".into(),
    ])
    .await
    .unwrap();
    let health: Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(health["status"], "SERVING");
    let refused = run(vec![
        "-plaintext".into(),
        "-d".into(),
        r#"{"model_name": "nope"}"#.into(),
        addr,
        "inference.GRPCInferenceService/ModelInfer".into(),
    ])
    .await
    .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("NotFound") && said.contains("no model named 'nope'"),
        "{said}"
    );
}

/// An idle HTTP/2 connection on the HTTP port is closed after the keep-alive timeout, as an
/// idle HTTP/1.1 one is; and a health Watch stream open on that port does not hold shutdown
/// past the grace period.
#[tokio::test(flavor = "multi_thread")]
async fn http2_on_the_http_port_is_timed_out_when_idle_and_drained_at_shutdown() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.grpc_addr = mlserve::config::GrpcAddr::Off;
    settings.grpc_on_http_port = true;
    settings.keep_alive_timeout_secs = 1.0;
    settings.request_timeout_secs = 2.0;
    let server = TestServer::start(settings).await;
    let addr = server.server.addr;
    let before = server
        .metric("mlserve_connections_timed_out_total", &[])
        .await;
    let mut client =
        pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(channel(addr).await);
    client.model_infer(iris_request(1, false)).await.unwrap();
    let closed = common::eventually(std::time::Duration::from_secs(5), async || {
        server
            .metric("mlserve_connections_timed_out_total", &[])
            .await
            > before
    })
    .await;
    assert!(closed, "the idle HTTP/2 connection was closed");
    // tonic's channel reconnects by itself: the next call works.
    client.model_infer(iris_request(1, false)).await.unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(addr).await);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(watch.message().await.unwrap().is_some());
    let started = std::time::Instant::now();
    server.server.shutdown().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    drop(watch);
}

/// Admission comes before the message is read: a call without credentials is refused as
/// UNAUTHENTICATED even when its message is past the size limit, and a rate-limited call says
/// when to come back.
#[tokio::test(flavor = "multi_thread")]
async fn calls_are_admitted_before_their_message_is_read() {
    let repo = demo_repository();
    let dir = tempfile::tempdir().unwrap();
    let (keys_path, key) = predict_key(dir.path());
    let mut settings = test_settings(repo.path());
    settings.auth = true;
    settings.keys_file = keys_path;
    settings.grpc_max_message_bytes = 64 * 1024;
    settings.rate_limit_per_sec = 0.01;
    settings.rate_limit_burst = 1;
    let server = TestServer::start(settings).await;
    let mut client = pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(
        channel(server.server.grpc_addr.unwrap()).await,
    );
    let mut large = iris_request(1, false);
    let contents = large.inputs[0].contents.as_mut().unwrap();
    contents.fp64_contents = vec![1.0; 4 * 4000];
    large.inputs[0].shape = vec![4000, 4];
    let refused = client.model_infer(large).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(refused.metadata().get("x-request-id").is_some());

    let with_key = || {
        let mut request = tonic::Request::new(iris_request(1, false));
        request
            .metadata_mut()
            .insert("x-api-key", key.parse().unwrap());
        request
    };
    client.model_infer(with_key()).await.unwrap();
    let limited = client.model_infer(with_key()).await.unwrap_err();
    assert_eq!(
        limited.code(),
        tonic::Code::ResourceExhausted,
        "{limited:?}"
    );
    let retry_after: u32 = limited
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let counted = server
        .metric(
            "mlserve_grpc_requests_total",
            &[("method", "ModelInfer"), ("code", "UNAUTHENTICATED")],
        )
        .await;
    assert_eq!(counted, 1.0);
}

/// A model whose only version failed to load: UNAVAILABLE to infer (a retry may succeed once
/// it is fixed), `ready: false`, NOT_SERVING in the health service, and the server not ready,
/// as REST's readiness says; the other models serve.
#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_cannot_serve_is_unavailable_and_not_serving() {
    let repo = demo_repository();
    let broken = repo.path().join("broken/1");
    std::fs::create_dir_all(&broken).unwrap();
    let manifest = std::fs::read_to_string(repo.path().join("iris/1/model.toml"))
        .unwrap()
        .replace("name = \"iris\"", "name = \"broken\"");
    std::fs::write(broken.join("model.toml"), manifest).unwrap();
    std::fs::write(broken.join("model.bin"), b"not a model at all").unwrap();
    let server = TestServer::start(test_settings(repo.path())).await;
    let grpc = channel(server.server.grpc_addr.unwrap()).await;
    let mut client =
        pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(grpc.clone());
    let ready = client
        .server_ready(pb::ServerReadyRequest {})
        .await
        .unwrap();
    assert!(!ready.into_inner().ready);
    let model_ready = client
        .model_ready(pb::ModelReadyRequest {
            name: "broken".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!model_ready.into_inner().ready);
    let mut call = iris_request(1, false);
    call.model_name = "broken".into();
    let refused = client.model_infer(call).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    let (_, _, rest) = server
        .post_json(
            "/v2/models/broken/infer",
            &serde_json::json!({"inputs": []}),
        )
        .await;
    assert_eq!(refused.message(), rest["error"].as_str().unwrap());
    client.model_infer(iris_request(1, false)).await.unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(grpc);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let check = async |health: &mut tonic_health::pb::health_client::HealthClient<_>,
                       service: &str| {
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    };
    let settled = common::eventually(std::time::Duration::from_secs(5), async || {
        check(&mut health, "iris").await == serving
    })
    .await;
    assert!(settled);
    assert_ne!(check(&mut health, "broken").await, serving);
    assert_ne!(check(&mut health, "").await, serving);
}
