//! A closed-loop load generator for the Open Inference Protocol's ModelInfer, over gRPC (tonic,
//! one HTTP/2 connection carrying every stream, as tritonclient's channel does) or over REST
//! (`POST /v2/models/{model}/infer` with a JSON body, one kept-alive HTTP/1.1 connection per
//! stream), so scripts/bench-grpc.sh compares the two transports in one run with the same
//! client machinery. Prints one line of JSON: requests/s, p50 and p99 in ms, errors.
//!
//! Usage: grpc_load grpc|rest ADDR MODEL ROW ROWS STREAMS SECONDS
//! ROW is one row's values in schema order, comma-separated (every row of a call is this row).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::time::{Duration, Instant};

#[allow(dead_code, missing_docs, clippy::all, clippy::pedantic)]
mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use pb::model_infer_request::InferInputTensor;

struct Load {
    transport: String,
    addr: String,
    model: String,
    row: Vec<f64>,
    rows: usize,
    streams: usize,
    seconds: f64,
}

fn parse() -> Result<Load, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [transport, addr, model, row, rows, streams, seconds] = args.as_slice() else {
        return Err("usage: grpc_load grpc|rest ADDR MODEL ROW ROWS STREAMS SECONDS".to_string());
    };
    let row = row
        .split(',')
        .map(|v| v.trim().parse::<f64>().map_err(|e| format!("{v}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let number = |text: &str| text.parse::<usize>().map_err(|e| format!("{text}: {e}"));
    Ok(Load {
        transport: transport.clone(),
        addr: addr.clone(),
        model: model.clone(),
        row,
        rows: number(rows)?,
        streams: number(streams)?,
        seconds: seconds.parse().map_err(|e| format!("{seconds}: {e}"))?,
    })
}

/// Row-major values of the call's rows.
fn values(load: &Load) -> Vec<f64> {
    load.row.repeat(load.rows)
}

fn grpc_request(load: &Load) -> pb::ModelInferRequest {
    let raw: Vec<u8> = values(load).iter().flat_map(|v| v.to_le_bytes()).collect();
    pb::ModelInferRequest {
        model_name: load.model.clone(),
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: "FP64".into(),
            shape: vec![load.rows as i64, load.row.len() as i64],
            parameters: Default::default(),
            contents: None,
        }],
        raw_input_contents: vec![Bytes::from(raw)],
        ..Default::default()
    }
}

fn rest_body(load: &Load) -> Bytes {
    let body = serde_json::json!({"inputs": [{"name": "input", "datatype": "FP64",
        "shape": [load.rows, load.row.len()], "data": values(load)}]});
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Latencies in µs and the errors of one stream, until `until`.
type Outcome = (Vec<u32>, u64);

async fn grpc_stream(
    mut client: GrpcInferenceServiceClient<tonic::transport::Channel>,
    request: pb::ModelInferRequest,
    until: Instant,
) -> Outcome {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while Instant::now() < until {
        let started = Instant::now();
        match client.model_infer(request.clone()).await {
            Ok(_) => latencies.push(started.elapsed().as_micros() as u32),
            Err(_) => errors += 1,
        }
    }
    (latencies, errors)
}

async fn rest_stream(url: hyper::Uri, body: Bytes, until: Instant) -> Outcome {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http::<Full<Bytes>>();
    while Instant::now() < until {
        let started = Instant::now();
        let request = hyper::Request::post(url.clone())
            .header("content-type", "application/json")
            .body(Full::new(body.clone()));
        let Ok(request) = request else { break };
        match client.request(request).await {
            Ok(response) if response.status().is_success() => {
                if response.into_body().collect().await.is_ok() {
                    latencies.push(started.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                }
            }
            _ => errors += 1,
        }
    }
    (latencies, errors)
}

async fn run(load: Load) -> Result<(), String> {
    let warm_up = Duration::from_secs(1);
    let mut outcomes = Vec::new();
    for (phase, length) in [
        ("warm-up", warm_up),
        ("run", Duration::from_secs_f64(load.seconds)),
    ] {
        let until = Instant::now() + length;
        let started = Instant::now();
        let mut tasks = Vec::new();
        if load.transport == "grpc" {
            let channel = tonic::transport::Channel::from_shared(format!("http://{}", load.addr))
                .map_err(|e| e.to_string())?
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", load.addr))?;
            let client = GrpcInferenceServiceClient::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX);
            let request = grpc_request(&load);
            for _ in 0..load.streams {
                tasks.push(tokio::spawn(grpc_stream(
                    client.clone(),
                    request.clone(),
                    until,
                )));
            }
        } else {
            let url: hyper::Uri = format!("http://{}/v2/models/{}/infer", load.addr, load.model)
                .parse()
                .map_err(|e| format!("{e}"))?;
            let body = rest_body(&load);
            for _ in 0..load.streams {
                tasks.push(tokio::spawn(rest_stream(url.clone(), body.clone(), until)));
            }
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut these, failed) = task.await.map_err(|e| e.to_string())?;
            latencies.append(&mut these);
            errors += failed;
        }
        if phase == "run" {
            outcomes.push((latencies, errors, started.elapsed()));
        }
    }
    let Some((mut latencies, errors, elapsed)) = outcomes.pop() else {
        return Err("no run".into());
    };
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "transport": load.transport,
            "rows": load.rows,
            "streams": load.streams,
            "requests_per_sec": (latencies.len() as f64 / elapsed.as_secs_f64()).round(),
            "p50_ms": quantile(0.5),
            "p99_ms": quantile(0.99),
            "errors": errors,
        })
    );
    Ok(())
}

fn main() {
    let outcome = parse().and_then(|load| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|runtime| runtime.block_on(run(load)))
    });
    if let Err(error) = outcome {
        eprintln!("grpc_load: {error}");
        std::process::exit(2);
    }
}
