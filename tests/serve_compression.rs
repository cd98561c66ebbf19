//! Compressed request bodies on every route that takes one (gzip, deflate, br, zstd), the body
//! limits counted on the inflated bytes (a 200 MiB bomb), unknown codings, and compressed
//! answers: over real HTTP.

mod common;

use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn encode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2).
        "deflate" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut encoder = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                encoder.write_all(bytes).unwrap();
            }
            out
        }
        "zstd" => zstd::encode_all(bytes, 3).unwrap(),
        other => panic!("no encoder for {other}"),
    }
}

async fn post_encoded(
    server: &TestServer,
    path: &str,
    coding: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = server
        .client
        .post(server.url(path))
        .header("content-type", content_type)
        .header("content-encoding", coding)
        .body(body)
        .send()
        .await
        .unwrap();
    common::split(response).await
}

fn iris() -> Value {
    json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2})
}

#[tokio::test(flavor = "multi_thread")]
async fn every_coding_is_decompressed_on_the_native_api_v1_and_v2() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let native = serde_json::to_vec(&iris()).unwrap();
    let v1 = serde_json::to_vec(&json!({"instances": [[5.1, 3.5, 1.4, 0.2]]})).unwrap();
    let v2 = serde_json::to_vec(&json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]})).unwrap();
    for coding in ["gzip", "deflate", "br", "zstd", "GZIP"] {
        let encoder = coding.to_ascii_lowercase();
        let (status, _, answer) = post_encoded(
            &server,
            "/api/models/iris/predict",
            coding,
            "application/json",
            encode(&encoder, &native),
        )
        .await;
        assert_eq!(
            (status, answer["label"].clone()),
            (200, json!("setosa")),
            "{coding}: {answer}"
        );
        let (status, _, answer) = post_encoded(
            &server,
            "/v1/models/iris:predict",
            coding,
            "application/json",
            encode(&encoder, &v1),
        )
        .await;
        assert_eq!(
            (status, answer),
            (200, json!({"predictions": ["setosa"]})),
            "{coding}"
        );
        let (status, _, answer) = post_encoded(
            &server,
            "/v2/models/iris/infer",
            coding,
            "application/json",
            encode(&encoder, &v2),
        )
        .await;
        assert_eq!(status, 200, "{coding}: {answer}");
        assert_eq!(answer["outputs"][0]["data"], json!(["setosa"]), "{coding}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_body_that_inflates_past_the_limit_is_413_without_inflating_the_rest() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    // 200 MiB of one JSON string, about 200 KiB compressed: far under max_body_bytes (2 MiB).
    let mut inflated = Vec::with_capacity(200 << 20);
    inflated.extend_from_slice(b"{\"sepal_length\": \"");
    inflated.resize(200 << 20, b'a');
    let bomb = encode("gzip", &inflated);
    drop(inflated);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    for (path, protocol_error) in [
        ("/api/models/iris/predict", false),
        ("/v2/models/iris/infer", true),
        ("/v1/models/iris:predict", true),
    ] {
        let started = Instant::now();
        let (status, headers, answer) =
            post_encoded(&server, path, "gzip", "application/json", bomb.clone()).await;
        assert_eq!(status, 413, "{path}: {answer}");
        // The rest of the body is never read: the server says it closes, so the client does
        // not send its next request into this connection.
        assert_eq!(headers["connection"], "close", "{path}");
        if protocol_error {
            assert!(answer["error"].as_str().is_some(), "{path}: {answer}");
        } else {
            assert_eq!(headers["content-type"], "application/problem+json");
            assert!(
                answer["detail"]
                    .as_str()
                    .unwrap()
                    .contains("max_body_bytes"),
                "{answer}"
            );
        }
        // Inflating all 200 MiB takes far longer than stopping at 2 MiB; generous for CI.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_coding_is_415_naming_it_in_each_protocols_shape() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    let body = serde_json::to_vec(&iris()).unwrap();
    let (status, headers, problem) = post_encoded(
        &server,
        "/api/models/iris/predict",
        "compress",
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["accept-encoding"], "gzip, deflate, br, zstd");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Content-Encoding 'compress' is not supported"),
        "{problem}"
    );
    assert!(problem["request_id"].is_string());
    let (status, _, answer) = post_encoded(
        &server,
        "/v2/models/iris/infer",
        "gzip, br",
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        answer["error"].as_str().unwrap().contains("'gzip, br'"),
        "{answer}"
    );
    // A body that says gzip but is not: 400, not a server error.
    let (status, _, problem) = post_encoded(
        &server,
        "/api/models/iris/predict",
        "gzip",
        "application/json",
        body,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_compressed_when_the_client_asks() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    // reqwest here has no decompression features: it sends what we say and hands back bytes.
    let response = server
        .client
        .get(server.url("/api/models/iris"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    let model: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(model["name"], "iris");
    let plain = server
        .client
        .get(server.url("/api/models/iris"))
        .send()
        .await
        .unwrap();
    assert!(!plain.headers().contains_key("content-encoding"));
}
