//! The prediction log on a real SQLite file and a real PostgreSQL server: what is stored, that
//! shutdown and kill -9 lose nothing acknowledged, that overflow is counted; feedback, live
//! metrics and drift read back from it.

mod common;

use common::postgres::fresh_postgres_database;
use common::{TestServer, demo_repository, test_settings};
use mlserve::store::{LogSettings, PredictionLog, PredictionQuery, PredictionRecord, Store};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SETOSA: &str =
    r#"{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}"#;

async fn wait_for_rows(
    store: &Store,
    query: &PredictionQuery,
    rows: usize,
) -> Vec<mlserve::store::LoggedPrediction> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = store.predictions(query).await.unwrap();
        if found.len() >= rows {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {rows} rows logged",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends predictions every way (JSON, batch, query string, web UI) and checks each row of the
/// log against the answer it was given.
async fn every_prediction_is_logged(database_url: String) {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.database_url = database_url.clone();
    let server = TestServer::start(settings).await;
    let single: Value = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("content-type", "application/json")
        .header("x-request-id", "log-single")
        .body(SETOSA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let batch_rows = json!([
        {"sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1},
        {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5},
        {"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2},
    ]);
    let batch: Value = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("x-request-id", "log-batch")
        .json(&json!({ "instances": batch_rows }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let query = server
        .client
        .get(server.url("/api/models/churn/predict?tenure=12&plan=pro&senior=true"))
        .header("x-request-id", "log-query")
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    let query: Value = query.json().await.unwrap();

    let store = Store::open(&database_url).await.unwrap();
    let logged = wait_for_rows(
        &store,
        &PredictionQuery {
            limit: 100,
            ..Default::default()
        },
        5,
    )
    .await;
    assert_eq!(logged.len(), 5);
    let find = |id: &str, row: i64| {
        logged
            .iter()
            .find(|p| p.request_id == id && p.row_index == row)
            .unwrap_or_else(|| panic!("{id}/{row} is logged"))
    };
    let one = find("log-single", 0);
    assert_eq!((one.model.as_str(), one.version.as_str()), ("iris", "1"));
    assert_eq!(one.inputs, serde_json::from_str::<Value>(SETOSA).unwrap());
    assert_eq!(one.label, single["label"]);
    assert_eq!(one.probabilities, single["probabilities"]);
    assert!(one.latency_ms > 0.0 && one.latency_ms < 10_000.0);
    assert_eq!(one.key_name, None);
    for (index, expected) in batch["predictions"].as_array().unwrap().iter().enumerate() {
        let row = find("log-batch", index as i64);
        assert_eq!(row.inputs, batch_rows[index]);
        assert_eq!(row.label, expected["label"]);
    }
    let typed = find("log-query", 0);
    assert_eq!(
        typed.inputs,
        json!({"tenure": 12, "plan": "pro", "senior": true}),
        "query-string values are logged typed"
    );
    assert_eq!(typed.label, query["label"]);

    // The admin endpoint reads the same rows back, newest first, filtered.
    let (status, _, answer) = server.get("/api/predictions?model=iris&limit=2").await;
    assert_eq!(status, 200);
    let listed = answer["predictions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|p| p["model"] == "iris"));
    assert_eq!(listed[0]["request_id"], "log-batch");
    let (status, _, answer) = server.get("/api/predictions?limit=0").await;
    assert_eq!(status, 422, "{answer}");
    let (status, _, answer) = server.get("/api/predictions?since=yesterday").await;
    assert_eq!(status, 422, "{answer}");
    let (status, _, answer) = server
        .get("/api/predictions?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(
        (status, answer["predictions"].as_array().unwrap().len()),
        (200, 0)
    );
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_prediction_is_logged_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_prediction_is_logged(format!("sqlite://{}", dir.path().join("p.db").display())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_prediction_is_logged_in_postgresql() {
    every_prediction_is_logged(fresh_postgres_database().await).await;
}

/// Many predictions, then an immediate shutdown: every answered one is in the log.
async fn shutdown_writes_what_is_queued(database_url: String) {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.database_url = database_url.clone();
    let server = TestServer::start(settings).await;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let client = server.client.clone();
        let url = server.url("/api/models/iris/predict");
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-request-id", format!("w{worker}-{i}"))
                    .body(SETOSA)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    server.server.shutdown().await.unwrap();
    let store = Store::open(&database_url).await.unwrap();
    let logged = store
        .predictions(&PredictionQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_writes_what_is_queued_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    shutdown_writes_what_is_queued(format!("sqlite://{}", dir.path().join("p.db").display())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_writes_what_is_queued_postgresql() {
    shutdown_writes_what_is_queued(fresh_postgres_database().await).await;
}

fn record(i: usize) -> PredictionRecord {
    common::log::record(&common::log::cancer_model(), &format!("r{i}"), i, 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_drops_records_and_counts_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let log = PredictionLog::start(
        &url,
        LogSettings {
            queue_capacity: 8,
            max_batch: 1,
            flush_interval: Duration::from_millis(1),
            ..LogSettings::default()
        },
    )
    .await
    .unwrap();
    for i in 0..2000 {
        log.record([record(i)]);
    }
    let dropped = log.dropped();
    assert!(dropped > 0, "a queue of 8 cannot take 2000 records at once");
    log.shutdown().await;
    let store = Store::open(&url).await.unwrap();
    let written = store
        .predictions(&PredictionQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len() as u64;
    let all = if written == 1000 {
        // More than one page: count the rest.
        let mut total = 0u64;
        for chunk in 0..2000 {
            let found = store
                .find_prediction(&format!("r{chunk}"), 0)
                .await
                .unwrap();
            total += u64::from(found.is_some());
        }
        total
    } else {
        written
    };
    assert_eq!(
        all + dropped,
        2000,
        "every record is written or counted as dropped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_gives_live_metrics_per_version() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    // Rows of known classes, and the truth we report for each (two deliberately wrong).
    let rows = [
        (
            json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}),
            "setosa",
        ),
        (
            json!({"sepal_length": 4.9, "sepal_width": 3.0, "petal_length": 1.4, "petal_width": 0.2}),
            "setosa",
        ),
        (
            json!({"sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1}),
            "virginica",
        ),
        (
            json!({"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}),
            "versicolor",
        ),
        (
            json!({"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5}),
            "versicolor",
        ),
        (
            json!({"sepal_length": 5.7, "sepal_width": 2.8, "petal_length": 4.1, "petal_width": 1.3}),
            "setosa",
        ),
    ];
    let mut predicted = Vec::new();
    for (index, (row, _)) in rows.iter().enumerate() {
        let response = server
            .client
            .post(server.url("/api/models/iris/predict"))
            .header("x-request-id", format!("fb-{index}"))
            .json(row)
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        predicted.push(answer["label"].as_str().unwrap().to_string());
    }
    let store = Store::open(&test_settings(repo.path()).database_url)
        .await
        .unwrap();
    wait_for_rows(
        &store,
        &PredictionQuery {
            limit: 100,
            ..Default::default()
        },
        rows.len(),
    )
    .await;
    for (index, (_, truth)) in rows.iter().enumerate() {
        let (status, _, answer) = server
            .post_json(
                &format!("/api/predictions/fb-{index}/feedback"),
                &json!({"label": truth}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["correct"], json!(predicted[index] == *truth));
    }
    // Wrong feedback is refused with the reason.
    let (status, _, answer) = server
        .post_json("/api/predictions/fb-0/feedback", &json!({"label": "rose"}))
        .await;
    assert_eq!(status, 422, "{answer}");
    let (status, _, _) = server
        .post_json(
            "/api/predictions/nope/feedback",
            &json!({"label": "setosa"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = server
        .post_json(
            "/api/predictions/fb-0/feedback",
            &json!({"truth": "setosa"}),
        )
        .await;
    assert_eq!(status, 422);
    // `row` is a JSON Schema integer: 0.0 is row 0; 1.5, -1 and 2^32 are not rows, and say so
    // without naming a Rust type.
    let (status, _, answer) = server
        .post_json(
            "/api/predictions/fb-0/feedback",
            &json!({"label": rows[0].1, "row": 0.0}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    for row in [json!(1.5), json!(-1), json!(4_294_967_296u64), json!("0")] {
        let (status, _, answer) = server
            .post_json(
                "/api/predictions/fb-0/feedback",
                &json!({"label": "setosa", "row": row}),
            )
            .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["errors"][0]["field"], "row", "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("whole number from 0 to 4294967295") && !message.contains("u32"),
            "{message}"
        );
    }

    // The live counts are written within a second of the rows.
    let mut answer = Value::Null;
    let counted = common::eventually(Duration::from_secs(10), async || {
        let (status, _, live) = server.get("/api/models/iris/monitoring?window=1h").await;
        assert_eq!(status, 200, "{live}");
        answer = live;
        answer["versions"][0]["predictions"] == 6
    })
    .await;
    assert!(counted, "{answer}");
    let version = &answer["versions"][0];
    assert_eq!(version["version"], "1");
    assert_eq!(version["predictions"], 6);
    assert_eq!(version["with_feedback"], 6);
    let correct = rows
        .iter()
        .zip(&predicted)
        .filter(|((_, truth), label)| *truth == label.as_str())
        .count();
    assert_eq!(version["accuracy"].as_f64().unwrap(), correct as f64 / 6.0);
    assert!(correct < 6, "the test reports some wrong truths");
    let (status, _, _) = server
        .get("/api/models/iris/monitoring?window=forever")
        .await;
    assert_eq!(status, 422);
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mlserve_live_accuracy{model=\"iris\",version=\"1\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("mlserve_feedback_total{model=\"iris\",version=\"1\"}"));
}

/// Iris-like rows from the bundled data, optionally shifted.
fn iris_rows(shift_sepal_length: f64) -> Vec<Value> {
    let data = mlserve::data::load_bundled(mlserve::data::BundledDataset::Iris);
    let columns: Vec<(&str, &Vec<f64>)> = data
        .columns
        .iter()
        .map(|c| match &c.values {
            mlserve::data::ColumnValues::Numeric(values) => (c.name.as_str(), values),
            _ => panic!("iris is numeric"),
        })
        .collect();
    (0..data.n_rows())
        .map(|row| {
            let mut object = serde_json::Map::new();
            for (name, values) in &columns {
                let mut value = values[row];
                if *name == "sepal_length" {
                    value += shift_sepal_length;
                }
                object.insert(name.to_string(), json!(value));
            }
            Value::Object(object)
        })
        .collect()
}

async fn drift_after(rows: Vec<Value>) -> Value {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for chunk in rows.chunks(50) {
        let (status, _, answer) = server
            .post_json("/api/models/iris/predict", &json!({ "instances": chunk }))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let store = Store::open(&test_settings(repo.path()).database_url)
        .await
        .unwrap();
    wait_for_rows(
        &store,
        &PredictionQuery {
            limit: 1000,
            ..Default::default()
        },
        rows.len(),
    )
    .await;
    // The live counts behind drift are written within a second of the rows.
    let mut answer = Value::Null;
    let counted = common::eventually(Duration::from_secs(10), async || {
        let (status, _, drift) = server.get("/api/models/iris/drift?window=1h").await;
        assert_eq!(status, 200, "{drift}");
        answer = drift;
        answer["rows"] == rows.len()
    })
    .await;
    assert!(counted, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_flagged_on_a_shifted_stream_only() {
    let calm = drift_after(iris_rows(0.0)).await;
    assert_eq!(calm["rows"], 150);
    assert_eq!(calm["drifted"], json!([]), "{calm}");
    for feature in calm["features"].as_array().unwrap() {
        assert!(feature["psi"].as_f64().unwrap() < 0.1, "{feature}");
    }
    let shifted = drift_after(iris_rows(1.5)).await;
    assert_eq!(shifted["drifted"], json!(["sepal_length"]), "{shifted}");
    let sepal = &shifted["features"][0];
    assert!(sepal["psi"].as_f64().unwrap() > 0.5, "{sepal}");
}

#[cfg(unix)]
#[test]
fn kill_9_loses_no_prediction_acknowledged_before_the_last_flush() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let repo = demo_repository();
    let db = repo.path().with_extension("kill9.db");
    let url = format!("sqlite://{}", db.display());
    let spawn = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .args(["serve", "--models"])
            .arg(repo.path())
            .env("MLSERVE_ADDR", "127.0.0.1:0")
            .env("MLSERVE_GRPC_ADDR", "127.0.0.1:0")
            .env("MLSERVE_LOG_FORMAT", "json")
            .env("MLSERVE_DATABASE_URL", &url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines.next().expect("server log").unwrap();
            if line.contains("\"listening\"") {
                let value: Value = serde_json::from_str(&line).unwrap();
                break value["addr"].as_str().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (child, addr)
    };
    let (mut child, addr) = spawn();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/models/iris/predict");
        let ready = format!("http://{addr}/health/ready");
        while client
            .get(&ready)
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0;
                while started.elapsed() < Duration::from_millis(2500) {
                    let id = format!("k{worker}-{i}");
                    i += 1;
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-request-id", &id)
                        .body(SETOSA)
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            acked.push((id, Instant::now()))
                        }
                        _ => break, // the server is gone
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let killed_at = Instant::now();
        // SIGKILL: no shutdown, no flush, no chance to clean up.
        child.kill().unwrap();
        child.wait().unwrap();
        let mut acked = Vec::new();
        for task in tasks {
            acked.extend(task.await.unwrap());
        }
        acked
            .into_iter()
            .filter(|(_, at)| *at + Duration::from_secs(1) < killed_at)
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    });
    assert!(
        acknowledged.len() > 100,
        "load ran: {} acknowledged",
        acknowledged.len()
    );
    // A restart opens the same file (WAL recovery) and serves again.
    let (mut child, _addr) = spawn();
    runtime.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let mut missing = Vec::new();
        for id in &acknowledged {
            if store.find_prediction(id, 0).await.unwrap().is_none() {
                missing.push(id.clone());
            }
        }
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged predictions lost: {:?}",
            missing.len(),
            acknowledged.len(),
            &missing[..missing.len().min(5)]
        );
        let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(check.0, "ok");
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The same feedback posted many times at once is one labelled prediction in the live metrics.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_feedback_on_one_prediction_is_counted_once() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let response = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("content-type", "application/json")
        .header("x-request-id", "labelled-once")
        .body(SETOSA)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        common::eventually(Duration::from_secs(10), async || {
            server.get("/api/predictions?limit=1").await.2["predictions"][0]["request_id"]
                == "labelled-once"
        })
        .await
    );
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..16 {
        let label = if i % 2 == 0 { "setosa" } else { "versicolor" };
        let request = server
            .client
            .post(server.url("/api/predictions/labelled-once/feedback"))
            .json(&serde_json::json!({"label": label}));
        posts.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let counted = common::eventually(Duration::from_secs(10), async || {
        let (_, _, live) = server.get("/api/models/iris/monitoring?window=1h").await;
        live["versions"][0]["with_feedback"] == 1
    })
    .await;
    let (_, _, live) = server.get("/api/models/iris/monitoring?window=1h").await;
    assert!(counted, "{live}");
    server.server.shutdown().await.unwrap();
}

/// A client that reuses an x-request-id gets one logged prediction, and the live counts count
/// what the log holds.
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_request_id_is_logged_and_counted_once() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for _ in 0..3 {
        let response = server
            .client
            .post(server.url("/api/models/iris/predict"))
            .header("content-type", "application/json")
            .header("x-request-id", "sent-three-times")
            .body(SETOSA)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let settled = common::eventually(Duration::from_secs(10), async || {
        server
            .metric("mlserve_prediction_log_duplicates_total", &[])
            .await
            == 2.0
    })
    .await;
    assert!(settled, "two of the three are refused as duplicates");
    let (_, _, listed) = server.get("/api/predictions").await;
    assert_eq!(listed["predictions"].as_array().unwrap().len(), 1);
    let counted = common::eventually(Duration::from_secs(10), async || {
        let (_, _, live) = server.get("/api/models/iris/monitoring?window=1h").await;
        live["versions"][0]["predictions"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_, _, live) = server.get("/api/models/iris/monitoring?window=1h").await;
    assert!(counted && live["versions"][0]["predictions"] == 1, "{live}");
    server.server.shutdown().await.unwrap();
}
