//! Hot reload: new, corrupt, changed and removed versions, forced reloads, and no failed
//! request while versions change under load.

mod common;

use common::{TestServer, demo_repository, eventually, test_settings, train_into};
use mlserve::data::BundledDataset;
use mlserve::train::Algorithm;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn iris_row() -> Value {
    json!({"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 5.1, "petal_width": 1.8})
}

async fn default_version(server: &TestServer, model: &str) -> String {
    let (_, _, info) = server.get(&format!("/api/models/{model}")).await;
    info["version"].as_str().unwrap_or_default().to_string()
}

/// Writes a version folder the way a careless copy would: files appear one by one, the model file damaged.
fn write_corrupt_version(models: &Path, good: &Path, version: u32) {
    let dir = models.join("iris").join(version.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = std::fs::read(good.join("model.bin")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(dir.join("model.bin"), bytes).unwrap();
    let manifest = std::fs::read_to_string(good.join("model.toml")).unwrap();
    let manifest = manifest.replace(
        &format!("version = {}", good.file_name().unwrap().to_str().unwrap()),
        &format!("version = {version}"),
    );
    std::fs::write(dir.join("model.toml"), manifest).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_is_served_without_restart_and_a_corrupt_one_never_replaces_it() {
    let models = demo_repository();
    let server = TestServer::start(test_settings(models.path())).await;
    assert_eq!(default_version(&server, "iris").await, "1");

    let v2 = train_into(
        models.path(),
        BundledDataset::Iris,
        Algorithm::Knn,
        "iris",
        7,
    );
    assert!(
        eventually(Duration::from_secs(10), async || default_version(
            &server, "iris"
        )
        .await
            == "2")
        .await
    );
    let (status, _, answer) = server
        .post_json("/api/models/iris/predict", &iris_row())
        .await;
    assert_eq!((status, answer["version"].as_str()), (200, Some("2")));
    let (status, _, pinned) = server
        .post_json("/api/models/iris/versions/1/predict", &iris_row())
        .await;
    assert_eq!((status, pinned["version"].as_str()), (200, Some("1")));

    write_corrupt_version(models.path(), &v2, 3);
    let failed = eventually(Duration::from_secs(10), async || {
        let (_, _, info) = server.get("/api/models/iris").await;
        info["versions"].as_array().is_some_and(|v| {
            v.iter()
                .any(|v| v["version"] == "3" && v["status"] == "failed")
        })
    })
    .await;
    assert!(failed, "version 3 should be shown as failed");
    assert_eq!(default_version(&server, "iris").await, "2");
    let (status, _, answer) = server
        .post_json("/api/models/iris/predict", &iris_row())
        .await;
    assert_eq!((status, answer["version"].as_str()), (200, Some("2")));
    let (status, _, problem) = server.get("/api/models/iris/versions/3").await;
    assert_eq!(status, 503);
    assert!(
        problem["detail"].as_str().unwrap().contains("SHA-256"),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_reload_picks_up_changes_and_keeps_a_good_model_over_a_bad_rewrite() {
    let models = demo_repository();
    let mut settings = test_settings(models.path());
    settings.watch = false;
    let server = TestServer::start(settings).await;

    train_into(
        models.path(),
        BundledDataset::Iris,
        Algorithm::NaiveBayes,
        "iris",
        3,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        default_version(&server, "iris").await,
        "1",
        "without watching, nothing changes by itself"
    );
    let (status, _, report) = server
        .post_json("/api/models/iris/reload", &json!({}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report["report"]["loaded"]
            .as_array()
            .unwrap()
            .contains(&json!("iris/2"))
    );
    assert_eq!(default_version(&server, "iris").await, "2");

    // Damage version 2 in place: the reload fails, the loaded model keeps serving, marked stale.
    let v2 = models.path().join("iris/2");
    std::fs::write(v2.join("model.bin"), b"garbage").unwrap();
    let (status, _, report) = server
        .post_json("/api/models/iris/reload", &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        report["report"]["failed"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let stale = report["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == "2")
        .unwrap()
        .clone();
    assert_eq!(stale["status"], "stale");
    let (status, _, answer) = server
        .post_json("/api/models/iris/predict", &iris_row())
        .await;
    assert_eq!((status, answer["version"].as_str()), (200, Some("2")));

    std::fs::remove_dir_all(&v2).unwrap();
    let (_, _, report) = server
        .post_json("/api/models/iris/reload", &json!({}))
        .await;
    assert_eq!(report["report"]["removed"], json!(["iris/2"]));
    assert_eq!(default_version(&server, "iris").await, "1");

    let (status, headers, problem) = server
        .post_json("/api/models/titanic/reload", &json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains("titanic"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_request_fails_while_versions_change_under_load() {
    let models = demo_repository();
    let server = Arc::new(TestServer::start(test_settings(models.path())).await);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (server, stop, answered) = (server.clone(), stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut versions = std::collections::BTreeSet::new();
            // Bounded: at most 20 000 requests per client, and the loop stops when told.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (status, _, body) = server
                    .post_json("/api/models/iris/predict", &iris_row())
                    .await;
                if status == 200 {
                    versions.insert(body["version"].as_str().unwrap_or_default().to_string());
                } else {
                    failures.push(format!("{status}: {body}"));
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
            (failures, versions)
        }));
    }
    for seed in 0..4 {
        train_into(
            models.path(),
            BundledDataset::Iris,
            Algorithm::RandomForest,
            "iris",
            seed,
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, _, _) = server
            .post_json("/api/models/iris/reload", &json!({}))
            .await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for client in clients {
        let (failures, versions) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during reloads: {failures:?}"
        );
        seen.extend(versions);
    }
    assert!(answered.load(Ordering::Relaxed) > 100);
    assert!(
        seen.len() >= 3,
        "requests should have been answered by several versions: {seen:?}"
    );
    assert_eq!(default_version(&server, "iris").await, "5");
}
