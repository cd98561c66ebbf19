//! `mlserve log export` streams a model's logged predictions as CSV or JSON Lines: every row
//! the server logged, with named inputs and outputs, read back by pandas as written; JSON Lines
//! the same objects as /api/predictions. Time ranges filter; mistakes exit 2 saying why.

mod common;

use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};
use std::process::{Command, Output};
use std::time::Duration;

fn export(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["log", "export", "--database-url", database_url])
        .args(args)
        .env_remove("MLSERVE_DATABASE_URL")
        .output()
        .unwrap()
}

/// A log with 30 churn predictions (one with feedback) and one of iris; returns its URL and
/// what /api/predictions gave for churn, newest first.
async fn logged_churn(dir: &std::path::Path) -> (String, Vec<Value>) {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.database_url = format!("sqlite://{}", dir.join("p.db").display());
    let server = TestServer::start(settings.clone()).await;
    for i in 0..30 {
        let plan = ["basic", "plus", "pro"][i % 3];
        let row = json!({"tenure": i, "plan": plan, "senior": i % 2 == 0});
        let (status, _, _) = server.post_json("/api/models/churn/predict", &row).await;
        assert_eq!(status, 200);
    }
    let iris =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    server.post_json("/api/models/iris/predict", &iris).await;
    let mut listed = Vec::new();
    assert!(
        common::eventually(Duration::from_secs(10), async || {
            let (_, _, answer) = server.get("/api/predictions?model=churn&limit=1000").await;
            listed = answer["predictions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            listed.len() == 30
        })
        .await
    );
    let first = listed[0]["request_id"].as_str().unwrap().to_string();
    let (status, _, _) = server
        .post_json(
            &format!("/api/predictions/{first}/feedback"),
            &json!({"label": "yes"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, answer) = server.get("/api/predictions?model=churn&limit=1000").await;
    server.server.shutdown().await.unwrap();
    (
        settings.database_url,
        answer["predictions"].as_array().cloned().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_hold_every_logged_row_with_named_inputs_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (url, listed) = logged_churn(dir.path()).await;

    // JSON Lines: the API's objects, oldest first.
    let out = export(&url, &["--model", "churn", "--format", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let oldest_first: Vec<Value> = listed.iter().rev().cloned().collect();
    assert_eq!(lines, oldest_first);
    assert!(out.stderr.is_empty(), "no progress drawn off a terminal");

    // CSV into a file, read by pandas.
    let csv = dir.path().join("churn.csv");
    let out = export(
        &url,
        &[
            "--model",
            "churn",
            "--format",
            "csv",
            "--output",
            csv.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Ok(python) = std::env::var("MLSERVE_TEST_PYTHON") else {
        panic!("MLSERVE_TEST_PYTHON names the test venv's python (scripts/test.sh sets it)");
    };
    let script = r#"
import json, sys
import pandas as pd
frame = pd.read_csv(sys.argv[1], float_precision="round_trip")
print(json.dumps({
    "columns": list(frame.columns),
    "rows": len(frame),
    "tenure": frame["tenure"].tolist(),
    "plan": frame["plan"].tolist(),
    "senior": frame["senior"].tolist(),
    "label": frame["label"].tolist(),
    "p_yes": frame["probability_yes"].tolist(),
    "feedback": frame["feedback"].fillna("").tolist(),
}))
"#;
    let read = Command::new(python)
        .args(["-c", script, csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let frame: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(
        frame["columns"],
        json!([
            "request_id",
            "row",
            "created_at",
            "model",
            "version",
            "tenure",
            "plan",
            "senior",
            "label",
            "probability_no",
            "probability_yes",
            "latency_ms",
            "key",
            "feedback"
        ])
    );
    assert_eq!(frame["rows"], 30);
    for (i, api) in oldest_first.iter().enumerate() {
        assert_eq!(frame["tenure"][i], api["inputs"]["tenure"]);
        assert_eq!(frame["plan"][i], api["inputs"]["plan"]);
        assert_eq!(frame["senior"][i], api["inputs"]["senior"]);
        assert_eq!(frame["label"][i], api["label"]);
        assert_eq!(
            frame["p_yes"][i], api["probabilities"]["yes"],
            "exact doubles"
        );
        assert_eq!(frame["feedback"][i], api["feedback"].as_str().unwrap_or(""));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn time_ranges_filter_and_mistakes_exit_2_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let (url, listed) = logged_churn(dir.path()).await;
    let count = |out: &Output| String::from_utf8_lossy(&out.stdout).lines().count();
    let all = export(
        &url,
        &[
            "--model",
            "churn",
            "--format",
            "jsonl",
            "--since",
            "2000-01-01T00:00:00Z",
        ],
    );
    assert_eq!(count(&all), 30);
    let none = export(
        &url,
        &[
            "--model",
            "churn",
            "--format",
            "jsonl",
            "--until",
            "2000-01-01T00:00:00Z",
        ],
    );
    assert!(none.status.success());
    assert_eq!(count(&none), 0);
    // From the newest prediction's time on: at least that one, never an older one.
    let newest = listed[0]["created_at"].as_str().unwrap();
    let tail = export(
        &url,
        &["--model", "churn", "--format", "jsonl", "--since", newest],
    );
    let tail: Vec<Value> = String::from_utf8_lossy(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !tail.is_empty()
            && tail
                .iter()
                .all(|row| row["created_at"].as_str().unwrap() >= newest)
    );

    let unknown = export(&url, &["--model", "nope", "--format", "csv"]);
    assert_eq!(unknown.status.code(), Some(2));
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        message.contains("'nope'") && message.contains("churn, iris"),
        "{message}"
    );
    let backwards = export(
        &url,
        &[
            "--model",
            "churn",
            "--format",
            "csv",
            "--since",
            "2030-01-01T00:00:00Z",
            "--until",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert_eq!(backwards.status.code(), Some(2));
    let missing = export(
        &format!("sqlite://{}", dir.path().join("none.db").display()),
        &["--model", "churn", "--format", "csv"],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no prediction log"));
    assert!(!dir.path().join("none.db").exists(), "nothing is created");
}

#[test]
fn a_log_of_an_earlier_release_is_not_changed_by_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log_v1/log_v1.db");
    std::fs::copy(&fixture, &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let out = export(
        &format!("sqlite://{}", path.display()),
        &["--model", "iris", "--format", "csv"],
    );
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("earlier release"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is left as it was"
    );
}
