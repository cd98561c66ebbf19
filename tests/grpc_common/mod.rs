//! What the gRPC tests share: the client generated from the proto, a channel, an iris
//! request, and a key file with one API key. Only the gRPC test files include it, so the other
//! test binaries do not compile the generated code.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("inference");
}

use pb::model_infer_request::InferInputTensor;
use pb::{InferParameter, InferTensorContents, ModelInferRequest};

/// Three iris rows, one of each class.
pub const ROWS: [[f64; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.9, 3.1, 5.4, 2.1],
    [5.9, 3.0, 4.2, 1.5],
];

/// A connected channel to a gRPC listener (or the HTTP port, for h2c).
pub async fn channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// ModelInfer on iris: `rows` rows cycling through [`ROWS`], as typed FP64 contents, with the
/// `explain` parameter when asked.
pub fn iris_request(rows: usize, explain: bool) -> ModelInferRequest {
    let values: Vec<f64> = ROWS.iter().cycle().take(rows).flatten().copied().collect();
    let mut parameters = HashMap::new();
    if explain {
        parameters.insert(
            "explain".to_string(),
            InferParameter {
                parameter_choice: Some(pb::infer_parameter::ParameterChoice::BoolParam(true)),
            },
        );
    }
    ModelInferRequest {
        model_name: "iris".into(),
        parameters,
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: "FP64".into(),
            shape: vec![rows as i64, 4],
            parameters: Default::default(),
            contents: Some(InferTensorContents {
                fp64_contents: values,
                ..Default::default()
            }),
        }],
        ..Default::default()
    }
}

/// A keys file in `dir` holding one predict-role key named `ci`: its path and the key.
pub fn predict_key(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("keys.toml");
    let mut keys = mlserve::serve::auth::keys::KeysFile::default();
    let key = keys
        .create_key("ci", mlserve::serve::auth::keys::Role::Predict)
        .unwrap();
    keys.save(&path).unwrap();
    (path, key)
}
