//! Shared helpers of the end-to-end tests: model repositories and servers on 127.0.0.1.
#![allow(dead_code)]

pub mod browser;
pub mod clients;
pub mod explain;
pub mod forms;
pub mod log;
pub mod onnx;
pub mod postgres;
pub mod process;

use mlserve::config::Settings;
use mlserve::data::{BundledDataset, load_bundled};
use mlserve::serve::RunningServer;
use mlserve::train::{
    Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions, train,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Trains a bundled dataset into `models` as the next version of `name`.
pub fn train_into(
    models: &Path,
    dataset: BundledDataset,
    algorithm: Algorithm,
    name: &str,
    seed: u64,
) -> PathBuf {
    let options = TrainOptions {
        params: AlgorithmParams::from_flags(algorithm, &HyperParameterFlags::default()).unwrap(),
        test_size: 0.2,
        seed,
        cv: None,
    };
    let trained = train(&load_bundled(dataset), &options, &NoProgress).unwrap();
    trained.save(models, name).unwrap().1
}

/// A repository with the demo models and a model with a categorical feature.
pub fn demo_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    mlserve::train::train_demo_models_if_empty(dir.path()).unwrap();
    let csv = dir
        .path()
        .join("..")
        .join(format!("plans-{}.csv", std::process::id()));
    let mut text = String::from("tenure,plan,senior,churned\n");
    for i in 0..90 {
        let plan = ["basic", "plus", "pro"][i % 3];
        let churned = if i % 3 == 0 || i % 7 == 0 {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!("{},{plan},{},{churned}\n", i % 30, i % 4 == 0));
    }
    std::fs::write(&csv, text).unwrap();
    let data = mlserve::data::load_csv(
        &csv,
        &mlserve::data::CsvOptions {
            target: "churned".into(),
            categorical: vec![],
            task: None,
            missing_values: false,
        },
    )
    .unwrap();
    let _ = std::fs::remove_file(&csv);
    let options = TrainOptions {
        params: AlgorithmParams::from_flags(
            Algorithm::LogisticRegression,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 1,
        cv: None,
    };
    train(&data, &options, &NoProgress)
        .unwrap()
        .save(dir.path(), "churn")
        .unwrap();
    dir
}

/// Settings for a test server on a free port of 127.0.0.1.
/// The prediction log goes to a SQLite file beside the repository (never inside it: the
/// repository is watched).
pub fn test_settings(models: &Path) -> Settings {
    let database = models.with_extension("predictions.db");
    Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        models: models.to_path_buf(),
        database_url: format!("sqlite://{}", database.display()),
        ..Settings::default()
    }
}

/// A started server and a client for it.
pub struct TestServer {
    pub server: RunningServer,
    pub base: String,
    pub client: reqwest::Client,
}

impl TestServer {
    /// Starts a server and waits until its repository is loaded (then it is ready, unless the
    /// repository holds a model that cannot serve, or none).
    pub async fn start(settings: Settings) -> TestServer {
        let server = mlserve::serve::start(settings).await.unwrap();
        let base = format!("http://{}", server.addr);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.repository.is_loaded() {
            assert!(Instant::now() < deadline, "repository not loaded in 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestServer {
            server,
            base,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a JSON body; returns status, headers and the JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        split(response).await
    }

    /// GETs a path; returns status and the body as text (a page, a document).
    /// POSTs `path` with no body and returns the status.
    pub async fn post_empty(&self, path: &str) -> u16 {
        let response = self.client.post(self.url(path)).send().await.unwrap();
        response.status().as_u16()
    }

    /// POSTs a JSON body given as text (which may be JSON that serde cannot write, such as a
    /// bare NaN); returns status and the JSON answer (Null if not JSON).
    pub async fn post_text(&self, path: &str, body: String) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// The value of a Prometheus metric from /metrics, summed over the series that carry every
    /// one of `labels`; 0 when there is none.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, text) = self.text("/metrics").await;
        text.lines()
            .filter(|line| {
                let series = line.split(' ').next().unwrap_or_default();
                series.split('{').next() == Some(name)
                    && labels
                        .iter()
                        .all(|(key, value)| series.contains(&format!("{key}=\"{value}\"")))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// GETs a path; returns status, headers and the JSON answer (Null if not JSON).
    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        split(response).await
    }
}

pub async fn split(
    response: reqwest::Response,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, value)
}

/// Waits until `check` holds, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A virginica row of iris.
pub fn iris_row() -> serde_json::Value {
    serde_json::json!({"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5})
}

/// Asserts an RFC 9457 problem with `expected` status, a title and a detail.
pub fn assert_problem(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &serde_json::Value,
    expected: u16,
) {
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

/// A dataset's rows as JSON objects of features: rows given as arrays of values (in the order
/// of `dataset["features"]`) or as objects already.
pub fn rows_as_objects(dataset: &serde_json::Value) -> Vec<serde_json::Value> {
    let features: Vec<&str> = dataset["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    dataset["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| match row {
            serde_json::Value::Array(cells) => serde_json::Value::Object(
                features
                    .iter()
                    .map(|f| f.to_string())
                    .zip(cells.iter().cloned())
                    .collect(),
            ),
            object => object.clone(),
        })
        .collect()
}

/// What `model` answers for rows given as JSON objects, each validated as the API validates
/// it (every row must be valid).
pub fn outcomes_of(
    model: &mlserve::model::LoadedModel,
    objects: &[serde_json::Value],
) -> Vec<Result<mlserve::model::Outcome, mlserve::model::PredictError>> {
    use mlserve::model::{RawValue, UnknownFields};
    let mut errors = Vec::new();
    let rows: Vec<_> = objects
        .iter()
        .map(|object| {
            let fields = object.as_object().unwrap();
            model
                .validator
                .validate(
                    fields.iter().map(|(k, v)| (k.as_str(), RawValue::Json(v))),
                    UnknownFields::Reject,
                    "",
                    &mut errors,
                )
                .unwrap_or_else(|| panic!("{}: {errors:?}", model.name()))
        })
        .collect();
    let views: Vec<_> = rows.iter().map(|r| r.values.as_slice()).collect();
    model.outcomes_of_rows(&views).unwrap()
}
