//! Readiness that tells the truth, start-up on a missing repository, and the probe answers
//! KServe's clients read: over real HTTP against real servers, and the real binary.

mod common;

use common::process::spawn_server;
use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Writes a version whose model file is not a model: the manifest is fine, the artifact is not.
fn corrupt_version(models: &Path, name: &str, version: u32) {
    let source = models.join("iris/1");
    let target = models.join(format!("{name}/{version}"));
    std::fs::create_dir_all(&target).unwrap();
    let manifest = std::fs::read_to_string(source.join("model.toml"))
        .unwrap()
        .replace("name = \"iris\"", &format!("name = \"{name}\""))
        .replace("version = 1", &format!("version = {version}"));
    std::fs::write(target.join("model.toml"), manifest).unwrap();
    std::fs::write(target.join("model.bin"), b"not a model at all").unwrap();
}

/// A repository holding only `name`, whose one version is corrupt.
fn corrupt_only_repository(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::train_into(
        dir.path(),
        mlserve::data::BundledDataset::Iris,
        mlserve::train::Algorithm::LogisticRegression,
        "iris",
        1,
    );
    corrupt_version(dir.path(), name, 1);
    std::fs::remove_dir_all(dir.path().join("iris")).unwrap();
    dir
}

async fn status_and_json(server: &TestServer, path: &str) -> (u16, Value) {
    let (status, _, body) = server.get(path).await;
    (status, body)
}

/// `mlserve healthcheck --addr ADDR`: its exit code.
fn healthcheck(addr: &str) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["healthcheck", "--addr", addr])
        .env_remove("MLSERVE_ADDR")
        .output()
        .unwrap()
        .status
        .code()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_whose_only_model_is_corrupt_is_not_ready_on_every_probe() {
    let models = corrupt_only_repository("broken");
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, headers, ready) = server.get("/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["models"]["broken"]["status"], "failed");
    let detail = ready["detail"].as_str().unwrap();
    assert!(
        detail.contains("model 'broken' has no version that serves (version 1:"),
        "{detail}"
    );
    assert!(
        ready["models"]["broken"]["failed_versions"]["1"]
            .as_str()
            .is_some_and(|reason| !reason.is_empty()),
        "{ready}"
    );
    let (status, body) = status_and_json(&server, "/api/readiness").await;
    assert_eq!((status, body["status"].clone()), (503, json!("not_ready")));
    // The V2 routes agree: 4xx is the protocol's "false".
    let (status, body) = status_and_json(&server, "/v2/health/ready").await;
    assert_eq!((status, body["ready"].clone()), (400, json!(false)));
    assert_eq!(body["error"].as_str(), Some(detail));
    let (status, body) = status_and_json(&server, "/v2/models/broken/ready").await;
    assert_eq!(status, 400);
    assert_eq!(body["ready"], false);
    // Liveness is unaffected: the process is fine, only its models are not.
    let (status, body) = status_and_json(&server, "/v2/health/live").await;
    assert_eq!((status, body), (200, json!({"live": true})));
    assert_eq!(healthcheck(&server.server.addr.to_string()), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_newer_version_degrades_but_stays_ready_unless_strict() {
    let models = demo_repository();
    corrupt_version(models.path(), "iris", 2);
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, ready) = status_and_json(&server, "/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["models"]["iris"]["status"], "degraded");
    assert_eq!(ready["models"]["iris"]["version"], "1");
    assert!(ready["models"]["iris"]["failed_versions"]["2"].is_string());
    assert_eq!(ready["models"]["churn"]["status"], "ready");
    let (status, _) = status_and_json(&server, "/v2/health/ready").await;
    assert_eq!(status, 200);
    assert_eq!(healthcheck(&server.server.addr.to_string()), Some(0));

    let strict = TestServer::start(mlserve::config::Settings {
        strict_readiness: true,
        ..test_settings(models.path())
    })
    .await;
    let (status, ready) = status_and_json(&strict, "/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains("model 'iris' has a failed version and strict readiness is on"),
        "{ready}"
    );
    let (status, _) = status_and_json(&strict, "/v2/health/ready").await;
    assert_eq!(status, 400);
    // The model itself still serves its good version.
    let (status, _) = status_and_json(&strict, "/v2/models/iris/ready").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_repository_and_one_whose_last_model_was_unloaded_are_not_ready() {
    let empty = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_settings(empty.path())).await;
    let (status, ready) = status_and_json(&server, "/health/ready").await;
    assert_eq!(status, 503);
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains("holds no model: nothing to serve"),
        "{ready}"
    );
    let (status, _) = status_and_json(&server, "/v2/health/ready").await;
    assert_eq!(status, 400);

    let models = tempfile::tempdir().unwrap();
    common::train_into(
        models.path(),
        mlserve::data::BundledDataset::Iris,
        mlserve::train::Algorithm::LogisticRegression,
        "iris",
        1,
    );
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, _) = status_and_json(&server, "/health/ready").await;
    assert_eq!(status, 200);
    assert_eq!(
        server.post_empty("/v2/repository/models/iris/unload").await,
        200
    );
    let (status, ready) = status_and_json(&server, "/health/ready").await;
    assert_eq!(status, 503);
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains("every model was unloaded (iris)"),
        "{ready}"
    );
    assert_eq!(
        server.post_empty("/v2/repository/models/iris/load").await,
        200
    );
    let (status, _) = status_and_json(&server, "/health/ready").await;
    assert_eq!(status, 200);
}

#[test]
fn serve_on_a_missing_folder_stops_with_exit_code_2_and_creates_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["serve", "--models", "modles", "--addr", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env_remove("MLSERVE_MODELS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("the model repository modles does not exist"),
        "{said}"
    );
    assert!(
        !cwd.path().join("modles").exists(),
        "the folder was created"
    );
    // A file where the folder should be is refused the same way.
    std::fs::write(cwd.path().join("afile"), "x").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["serve", "--models", "afile", "--addr", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // The demo default still creates ./models and trains into it.
    let server = spawn_server(cwd.path(), &["--models", "models"], &[]);
    assert!(cwd.path().join("models/iris/1/model.toml").is_file());
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn root_is_kserve_v1_liveness_for_programs_and_the_ui_for_browsers() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut request = server.client.get(server.url("/"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{accept:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "alive"}), "{accept:?}");
    }
    let response = server
        .client
        .get(server.url("/"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("iris"));
}

/// Replaces the last `1.0` (as the model file's little-endian f64) with `value` and updates the
/// manifest's checksum: a model file altered by someone who also fixed its hash.
fn tamper_last_one(version_dir: &Path, value: f64) {
    use sha2::Digest;
    let path = version_dir.join("model.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    // model.bin: magic bytes and format number (10 bytes), the model, then the trees' node
    // covers; the value altered is the model's last 1.0, a class share, not a cover.
    let (_, covers): (mlserve::model::NativeModel, &[u8]) =
        postcard::take_from_bytes(&bytes[10..]).unwrap();
    let model_end = bytes.len() - covers.len();
    let one = 1.0f64.to_le_bytes();
    let at = bytes[..model_end]
        .windows(8)
        .rposition(|window| window == one)
        .expect("a 1.0 in the model file");
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let manifest = version_dir.join("model.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let old = text
        .lines()
        .find_map(|line| line.strip_prefix("sha256 = \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let new = format!("{:x}", sha2::Sha256::digest(&bytes));
    std::fs::write(&manifest, text.replace(&old, &new)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_file_altered_with_its_checksum_updated_is_refused_on_load() {
    let models = tempfile::tempdir().unwrap();
    let dir = common::train_into(
        models.path(),
        mlserve::data::BundledDataset::Iris,
        mlserve::train::Algorithm::RandomForest,
        "iris",
        1,
    );
    tamper_last_one(&dir, 2.1e181);
    let server = TestServer::start(test_settings(models.path())).await;
    let (status, ready) = status_and_json(&server, "/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    let reason = ready["models"]["iris"]["failed_versions"]["1"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("tree node class shares are not probabilities summing to 1"),
        "{reason}"
    );
    let (status, _, problem) = server
        .post_json(
            "/api/models/iris/predict",
            &json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}),
        )
        .await;
    assert_eq!(status, 503, "{problem}");
}
