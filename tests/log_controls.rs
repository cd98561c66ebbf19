//! The operator's control of the prediction log. It stays bounded: predictions older than the
//! retention are deleted, and the oldest while the log takes more than its byte limit, with their
//! feedback (on a real SQLite file and a real PostgreSQL database, and by a running server on its
//! own). A request's rows can be erased; a fraction of requests, or some models only, logged.

mod common;

use common::postgres::{fresh_postgres_database, postgres_execute, postgres_log_files_bytes};
use common::{TestServer, demo_repository, test_settings};
use mlserve::store::retention::{Retention, enforce};
use mlserve::store::{LogSettings, PredictionLog, PredictionRecord, Store, Truth};
use serde_json::json;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;

fn record(i: usize, created_at_ms: i64) -> PredictionRecord {
    common::log::record(
        &common::log::cancer_model(),
        &format!("r{i}"),
        i,
        created_at_ms,
    )
}

/// Writes `records` through the log's writer (as the server does) and reopens the store.
async fn filled(url: &str, records: Vec<PredictionRecord>) -> Store {
    let log = PredictionLog::start(url, LogSettings::default())
        .await
        .unwrap();
    log.record(records);
    assert_eq!(log.dropped(), 0);
    log.shutdown().await;
    Store::open(url).await.unwrap()
}

async fn predictions_past_the_retention_are_deleted_with_their_feedback(url: String) {
    let now = 100 * HOUR_MS;
    // 12,000 rows three hours old (more than one deletion step), then 50 from the last minute.
    let mut records: Vec<PredictionRecord> =
        (0..12_000).map(|i| record(i, now - 3 * HOUR_MS)).collect();
    records.extend((12_000..12_050).map(|i| record(i, now - 60_000)));
    let store = filled(&url, records).await;
    assert_eq!(store.prediction_count().await.unwrap(), 12_050);
    store
        .record_feedback("r1", 0, &Truth::Label("a".into()), now - 2 * HOUR_MS, None)
        .await
        .unwrap();
    store
        .record_feedback("r12001", 0, &Truth::Label("a".into()), now, None)
        .await
        .unwrap();

    let retention = Retention {
        max_age: Duration::from_secs(3600),
        max_bytes: u64::MAX,
    };
    let deleted = enforce(&store, &retention, now).await.unwrap();
    assert_eq!((deleted.by_age, deleted.by_size), (12_000, 0));
    assert_eq!(store.prediction_count().await.unwrap(), 50);
    assert!(store.find_prediction("r1", 0).await.unwrap().is_none());
    assert!(store.find_prediction("r12001", 0).await.unwrap().is_some());
    // The old prediction's feedback went with it; the recent one's stays.
    let logged = store
        .predictions(&mlserve::store::PredictionQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let with_feedback: Vec<&str> = logged
        .iter()
        .filter(|p| p.feedback.is_some())
        .map(|p| p.request_id.as_str())
        .collect();
    assert_eq!(with_feedback, ["r12001"]);
    // Nothing more to do: a second pass deletes nothing.
    let again = enforce(&store, &retention, now).await.unwrap();
    assert_eq!((again.by_age, again.by_size), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn predictions_past_the_retention_are_deleted_with_their_feedback_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    predictions_past_the_retention_are_deleted_with_their_feedback(url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn predictions_past_the_retention_are_deleted_with_their_feedback_postgresql() {
    predictions_past_the_retention_are_deleted_with_their_feedback(fresh_postgres_database().await)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_predictions_go_while_the_log_is_over_its_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let url = format!("sqlite://{}", path.display());
    let now = 100 * HOUR_MS;
    let records: Vec<PredictionRecord> = (0..20_000)
        .map(|i| record(i, now - 20_000 + i as i64))
        .collect();
    let store = filled(&url, records).await;
    let full = store.log_bytes().await.unwrap();
    assert!(full > 4_000_000, "{full} bytes for 20,000 rows");
    let limit = full / 2;
    let retention = Retention {
        max_age: Duration::from_secs(30 * 86_400),
        max_bytes: limit,
    };
    let deleted = enforce(&store, &retention, now).await.unwrap();
    assert_eq!(deleted.by_age, 0);
    assert!(deleted.by_size >= 10_000, "{deleted:?}");
    assert!(store.log_bytes().await.unwrap() <= limit);
    // The newest stayed.
    let kept = store.prediction_count().await.unwrap();
    assert_eq!(kept, 20_000 - deleted.by_size);
    assert!(store.find_prediction("r19999", 0).await.unwrap().is_some());
    assert!(store.find_prediction("r0", 0).await.unwrap().is_none());
    // Freed pages are reused: writing as many rows again does not grow the file past what it
    // was, and the write-ahead log was cut back by the checkpoint.
    let file_before = std::fs::metadata(&path).unwrap().len();
    let wal = path.with_extension("db-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(
        wal_bytes <= mlserve::store::retention::WAL_LIMIT_BYTES,
        "{wal_bytes} bytes of WAL"
    );
    store.close().await;
    let more: Vec<PredictionRecord> = (20_000..20_000 + deleted.by_size as usize)
        .map(|i| record(i, now))
        .collect();
    let store = filled(&url, more).await;
    let file_after = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_after <= file_before + file_before / 10,
        "{file_before} -> {file_after} bytes"
    );
    store.close().await;
}

/// PostgreSQL keeps a deleted row's space for new rows rather than giving it back, so its
/// files never shrink: the limit counts the rows' bytes, stops deleting once under it, and
/// after VACUUM new rows fill the freed space instead of growing the files.
#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_predictions_go_while_the_log_is_over_its_byte_limit_on_postgresql() {
    let url = fresh_postgres_database().await;
    let store = filled_with_cancer_rows(&url, 20_000).await;
    let full = store.log_bytes().await.unwrap();
    let limit = full / 2;
    let retention = Retention {
        max_age: Duration::from_secs(30 * 86_400),
        max_bytes: limit,
    };
    let now = 100 * HOUR_MS + 20_000;
    let deleted = enforce(&store, &retention, now).await.unwrap();
    assert_eq!(deleted.by_age, 0);
    assert!(
        (10_000..=15_000).contains(&deleted.by_size),
        "{deleted:?} of 20,000 rows to halve the log"
    );
    assert!(store.log_bytes().await.unwrap() <= limit);
    assert_eq!(
        store.prediction_count().await.unwrap(),
        20_000 - deleted.by_size
    );
    store.close().await;

    postgres_execute(&url, "VACUUM predictions").await;
    // The files did not shrink, but the space they keep free is not counted.
    let store = Store::open(&url).await.unwrap();
    let vacuumed = enforce(&store, &retention, now).await.unwrap();
    assert_eq!(vacuumed, mlserve::store::retention::Deleted::default());
    store.close().await;
    let files_before = postgres_log_files_bytes(&url).await;
    let more = cancer_records(deleted.by_size as usize, 100 * HOUR_MS + 20_000, 0);
    let store = filled(&url, more).await;
    let files_after = postgres_log_files_bytes(&url).await;
    // Written without reuse, the rows would have grown the files by half or more.
    assert!(
        files_after <= files_before + files_before / 5,
        "{files_before} -> {files_after} bytes on disk"
    );
    // As many rows as at first: as many go again (within one deletion step).
    let again = enforce(&store, &retention, now).await.unwrap();
    assert!(
        again.by_size.abs_diff(deleted.by_size) <= 5_000,
        "{again:?} after {deleted:?}"
    );
    // A limit below what the feedback, schemas and live counts take alone cannot be met by
    // deleting predictions: none are deleted for it.
    let kept = store.prediction_count().await.unwrap();
    let impossible = Retention {
        max_bytes: 1,
        ..retention
    };
    let none = enforce(&store, &impossible, now).await.unwrap();
    assert_eq!(none.by_size, 0);
    assert_eq!(store.prediction_count().await.unwrap(), kept);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_server_deletes_what_is_past_its_retention_and_counts_it() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.prediction_log_retention = "1s".into();
    let server = TestServer::start(settings).await;
    let row =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    for _ in 0..5 {
        let (status, _, answer) = server.post_json("/api/models/iris/predict", &row).await;
        assert_eq!(status, 200, "{answer}");
    }
    let gone = common::eventually(Duration::from_secs(10), async || {
        server
            .metric("mlserve_prediction_log_deleted_total", &[("reason", "age")])
            .await
            >= 5.0
    })
    .await;
    assert!(gone, "5 predictions deleted by age within 10 s");
    let (status, _, listed) = server.get("/api/predictions?model=iris").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["predictions"], json!([]), "{listed}");
}

/// A person's request to have their data removed: every row of a request and its feedback are
/// erased (admin only, see tests/ops_auth.rs), and erasing again is harmless.
#[tokio::test(flavor = "multi_thread")]
async fn a_requests_logged_rows_and_feedback_can_be_erased() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let row =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    for id in ["erase-me", "keep-me"] {
        let response = server
            .client
            .post(server.url("/api/models/iris/predict"))
            .header("x-request-id", id)
            .json(&json!({"instances": [row, row]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let logged = common::eventually(Duration::from_secs(10), async || {
        let (_, _, listed) = server.get("/api/predictions?model=iris").await;
        listed["predictions"].as_array().map_or(0, Vec::len) == 4
    })
    .await;
    assert!(logged, "4 rows logged");
    let (status, _, answer) = server
        .post_json(
            "/api/predictions/erase-me/feedback",
            &json!({"label": "setosa", "row": 1}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    let erase = async || {
        let response = server
            .client
            .delete(server.url("/api/predictions/erase-me"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<serde_json::Value>().await.unwrap()
    };
    let answer = erase().await;
    assert_eq!(answer["predictions_deleted"], 2, "{answer}");
    assert_eq!(answer["feedback_deleted"], 1, "{answer}");
    let (_, _, listed) = server.get("/api/predictions?model=iris").await;
    let left: Vec<&str> = listed["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["keep-me", "keep-me"]);
    // Feedback for an erased prediction finds nothing; erasing again deletes nothing.
    let (status, _, _) = server
        .post_json(
            "/api/predictions/erase-me/feedback",
            &json!({"label": "setosa"}),
        )
        .await;
    assert_eq!(status, 404);
    let again = erase().await;
    assert_eq!(
        (
            again["predictions_deleted"].as_u64(),
            again["feedback_deleted"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

/// prediction_log_sample_rate logs a fraction of requests, each whole or not at all, and
/// counts the rows left out.
#[tokio::test(flavor = "multi_thread")]
async fn a_sample_rate_logs_whole_requests_and_counts_the_rest() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.prediction_log_sample_rate = 0.5;
    let server = TestServer::start(settings).await;
    let row =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    for i in 0..100 {
        let response = server
            .client
            .post(server.url("/api/models/iris/predict"))
            .header("x-request-id", format!("sampled-{i}"))
            .json(&json!({"instances": [row, row]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let sampled_out = server
        .metric("mlserve_prediction_log_sampled_out_total", &[])
        .await;
    let all_written = common::eventually(Duration::from_secs(10), async || {
        server
            .metric("mlserve_prediction_log_written_total", &[])
            .await
            + sampled_out
            == 200.0
    })
    .await;
    assert!(
        all_written,
        "every row logged or counted as sampled out ({sampled_out} out)"
    );
    assert!(
        (40.0..=160.0).contains(&sampled_out),
        "about half of 200 rows left out: {sampled_out}"
    );
    let (_, _, listed) = server.get("/api/predictions?model=iris&limit=1000").await;
    let mut rows_per_request = std::collections::HashMap::<String, usize>::new();
    for prediction in listed["predictions"].as_array().unwrap() {
        *rows_per_request
            .entry(prediction["request_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        rows_per_request.values().all(|&rows| rows == 2),
        "a request is logged whole: {rows_per_request:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_models_named_are_logged() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.prediction_log_models = vec!["breast_cancer".into()];
    let server = TestServer::start(settings).await;
    let iris =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    let (status, _, _) = server.post_json("/api/models/iris/predict", &iris).await;
    assert_eq!(status, 200);
    let (_, _, info) = server.get("/api/models/breast_cancer").await;
    let (status, _, _) = server
        .post_json("/api/models/breast_cancer/predict", &info["example"])
        .await;
    assert_eq!(status, 200);
    let logged = common::eventually(Duration::from_secs(10), async || {
        let (_, _, listed) = server.get("/api/predictions").await;
        listed["predictions"].as_array().map_or(0, Vec::len) == 1
    })
    .await;
    assert!(logged, "the breast_cancer prediction is logged");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, _, listed) = server.get("/api/predictions").await;
    let models: Vec<&str> = listed["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["breast_cancer"], "iris is not logged");
}

/// `rows` logged predictions of a 30-feature model, with server-made (UUID v7) request ids.
async fn filled_with_cancer_rows(url: &str, rows: usize) -> Store {
    let store = filled(url, cancer_records(rows, 100 * HOUR_MS, 1)).await;
    assert_eq!(store.prediction_count().await.unwrap(), rows as u64);
    store
}

/// `rows` predictions of a 30-feature model with server-made (UUID v7) request ids, the first
/// made at `first_ms` and each next `step_ms` later.
fn cancer_records(rows: usize, first_ms: i64, step_ms: i64) -> Vec<PredictionRecord> {
    let model = common::log::cancer_model();
    (0..rows)
        .map(|i| {
            let id = uuid::Uuid::now_v7().to_string();
            common::log::record(&model, &id, i, first_ms + i as i64 * step_ms)
        })
        .collect()
}

/// Bytes per logged prediction of a 30-feature model, rows and indexes (SQLite's pages in use).
async fn bytes_per_row(url: &str, rows: usize) -> f64 {
    let store = filled_with_cancer_rows(url, rows).await;
    let bytes = store.log_bytes().await.unwrap() as f64;
    store.close().await;
    bytes / rows as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logged_30_feature_prediction_takes_at_most_400_bytes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let per_row = bytes_per_row(&url, 20_000).await;
    eprintln!("SQLite: {per_row:.0} bytes per logged prediction");
    assert!(per_row <= 400.0, "{per_row:.0} bytes per row");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logged_30_feature_prediction_is_compact_on_postgresql() {
    let url = fresh_postgres_database().await;
    let rows = 20_000;
    let store = filled_with_cancer_rows(&url, rows).await;
    let estimated = store.log_bytes().await.unwrap() as f64;
    store.close().await;
    // What the files take, not the estimate the byte limit uses; the estimate agrees with it.
    let on_disk = postgres_log_files_bytes(&url).await as f64;
    let per_row = on_disk / rows as f64;
    eprintln!(
        "PostgreSQL: {per_row:.0} bytes per logged prediction on disk, {:.0} estimated",
        estimated / rows as f64
    );
    assert!(
        (estimated - on_disk).abs() <= on_disk * 0.1,
        "{estimated} estimated, {on_disk} on disk"
    );
    // A PostgreSQL row carries a 24-byte header and its B-trees keep a tenth of each page free.
    assert!(per_row <= 520.0, "{per_row:.0} bytes per row");
}
