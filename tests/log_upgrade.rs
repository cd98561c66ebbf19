//! A prediction log written by the release before the compact layout is upgraded in place when
//! the server starts: every row reads back as that release read it (named inputs, labels,
//! probabilities, feedback), feedback can still be given on old rows, live metrics count them,
//! and new predictions are logged beside them. `tests/fixtures/log_v1/log_v1.db` was written by
//! that release (`make.sh` beside it), `log_v1.json` is what it answered on /api/predictions.

mod common;

use common::postgres::fresh_postgres_database;
use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/log_v1")
        .join(name)
}

fn old_answer() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("log_v1.json")).unwrap()).unwrap()
}

/// The old answer and the new one agree, the latency to the microsecond the log now keeps.
fn assert_same_predictions(old: &Value, new: &Value) {
    let (old, new) = (
        old["predictions"].as_array().unwrap(),
        new["predictions"].as_array().unwrap(),
    );
    assert_eq!(old.len(), new.len());
    for (before, after) in old.iter().zip(new) {
        let mut before = before.clone();
        let mut after = after.clone();
        let (a, b) = (
            before["latency_ms"].take().as_f64().unwrap(),
            after["latency_ms"].take().as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 0.0005, "latency {a} became {b}");
        assert_eq!(before, after);
    }
}

async fn upgraded_log_reads_back_as_before(database_url: String) {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.database_url = database_url.clone();
    let server = TestServer::start(settings).await;
    let (status, _, listed) = server.get("/api/predictions?limit=1000").await;
    assert_eq!(status, 200, "{listed}");
    assert_same_predictions(&old_answer(), &listed);

    // Live metrics count the old rows and their (corrected) feedback.
    let (_, _, iris) = server
        .get("/api/models/iris/monitoring?window=999999d")
        .await;
    let version = &iris["versions"][0];
    assert_eq!(
        (
            &version["predictions"],
            &version["with_feedback"],
            &version["accuracy"]
        ),
        (&json!(23), &json!(2), &json!(1.0)),
        "{iris}"
    );
    let (_, _, churn) = server
        .get("/api/models/churn/monitoring?window=999999d")
        .await;
    assert_eq!(churn["versions"][0]["predictions"], 2, "{churn}");
    assert_eq!(churn["versions"][0]["accuracy"], 0.0, "{churn}");

    // Feedback on an old row, and a new prediction logged beside the old ones.
    let (status, _, answer) = server
        .post_json(
            "/api/predictions/fifteen-bytes-1/feedback",
            &json!({"label": "no"}),
        )
        .await;
    assert_eq!(
        (status, &answer["predicted"]),
        (200, &json!("no")),
        "{answer}"
    );
    let (status, _, answer) = server
        .post_json(
            "/api/models/iris/predict",
            &json!({"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        common::eventually(std::time::Duration::from_secs(5), async || {
            let (_, _, listed) = server.get("/api/predictions?limit=1000").await;
            listed["predictions"].as_array().unwrap().len() == 26
        })
        .await,
        "the new prediction is logged"
    );
    let (_, _, listed) = server.get("/api/predictions?limit=1").await;
    assert_eq!(listed["predictions"][0]["request_id"], answer["request_id"]);
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_log_of_the_previous_release_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    std::fs::copy(fixture("log_v1.db"), &path).unwrap();
    let url = format!("sqlite://{}", path.display());
    upgraded_log_reads_back_as_before(url.clone()).await;
    // The old tables are gone; opening again finds nothing to move.
    let store = mlserve::store::Store::open(&url).await.unwrap();
    assert_eq!(store.prediction_count().await.unwrap(), 26);
    store.close().await;
}

/// The same on PostgreSQL: the previous release's migration and inserts, replayed with the rows
/// it answered, then the server starts on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_log_of_the_previous_release_is_upgraded_in_place() {
    let url = fresh_postgres_database().await;
    write_first_layout(&url).await;
    upgraded_log_reads_back_as_before(url).await;
}

/// A pool to the database at `url` with the previous release's one migration (`sql`) applied:
/// the first layout's tables, empty.
async fn first_layout(url: &str, sql: &'static str) -> sqlx::AnyPool {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    Migrator::with_migrations(vec![Migration::new(
        1,
        "prediction log".into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )])
    .run(&pool)
    .await
    .unwrap();
    pool
}

async fn write_first_layout(url: &str) {
    use sqlx::Executor;
    let pool = first_layout(
        url,
        include_str!("../src/store/migrations/postgres_0001_prediction_log.sql"),
    )
    .await;
    let answer = old_answer();
    let rows = answer["predictions"].as_array().unwrap();
    // Oldest first, as they were written.
    for row in rows.iter().rev() {
        let at: jiff::Timestamp = row["created_at"].as_str().unwrap().parse().unwrap();
        sqlx::query(
            "INSERT INTO predictions (request_id, row_index, created_at_ms, model, version, \
             inputs, label, probabilities, latency_ms, key_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(row["request_id"].as_str().unwrap().to_string())
        .bind(row["row"].as_i64().unwrap() as i32)
        .bind(at.as_millisecond())
        .bind(row["model"].as_str().unwrap().to_string())
        .bind(row["version"].as_str().unwrap().to_string())
        .bind(row["inputs"].to_string())
        .bind(row["label"].as_str().unwrap().to_string())
        .bind(row["probabilities"].to_string())
        .bind(row["latency_ms"].as_f64().unwrap())
        .bind(None::<String>)
        .execute(&pool)
        .await
        .unwrap();
        if let Some(label) = row["feedback"].as_str() {
            sqlx::query(
                "INSERT INTO feedback (request_id, row_index, label, created_at_ms) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(row["request_id"].as_str().unwrap().to_string())
            .bind(row["row"].as_i64().unwrap() as i32)
            .bind(label.to_string())
            .bind(at.as_millisecond())
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    pool.execute("SELECT 1").await.unwrap();
    pool.close().await;
}

/// Old rows of one version that differ only in which values are missing share one schema, and
/// their missing values (text, integer, boolean and number) read back as null.
#[tokio::test(flavor = "multi_thread")]
async fn old_rows_with_missing_values_share_their_versions_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let pool = first_layout(
        &url,
        include_str!("../src/store/migrations/sqlite_0001_prediction_log.sql"),
    )
    .await;
    let inputs = [
        json!({"tenure": 3, "plan": "pro", "senior": true, "charges": 70.5}),
        json!({"tenure": null, "plan": "basic", "senior": false, "charges": 20.25}),
        json!({"tenure": 12, "plan": null, "senior": null, "charges": null}),
        json!({"tenure": null, "plan": null, "senior": null, "charges": null}),
    ];
    for (i, row) in inputs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO predictions (request_id, row_index, created_at_ms, model, version, \
             inputs, label, probabilities, latency_ms, key_name) \
             VALUES ($1, 0, $2, 'churn', '1', $3, 'stays', $4, 0.5, NULL)",
        )
        .bind(format!("old-{i}"))
        .bind(1_700_000_000_000_i64 + i as i64)
        .bind(row.to_string())
        .bind(json!({"leaves": 0.25, "stays": 0.75}).to_string())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = mlserve::store::Store::open(&url).await.unwrap();
    let logged = store
        .predictions(&mlserve::store::PredictionQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), 4);
    for prediction in &logged {
        let index: usize = prediction.request_id["old-".len()..].parse().unwrap();
        assert_eq!(
            prediction.inputs, inputs[index],
            "{}",
            prediction.request_id
        );
    }
    store.close().await;
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let schemas: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_schemas WHERE model = 'churn'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(schemas, 1);
    pool.close().await;
}
