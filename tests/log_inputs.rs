//! What the prediction log keeps of inputs is the operator's choice: features left out, or
//! kept as a keyed hash, and models whose manifest says `prediction_log = false` not logged at
//! all. Drift skips what is not kept. Through a running server on a real SQLite file.

mod common;

use common::{TestServer, demo_repository, test_settings};
use serde_json::{Value, json};
use std::time::Duration;

async fn logged(server: &TestServer, count: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    let found = common::eventually(Duration::from_secs(10), async || {
        let (_, _, listed) = server.get("/api/predictions?limit=1000").await;
        rows = listed["predictions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        rows.len() >= count
    })
    .await;
    assert!(found, "{} of {count} predictions logged", rows.len());
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn excluded_features_are_not_stored_and_hashed_ones_are_stored_as_their_hash() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.prediction_log_exclude_features = vec!["senior".into()];
    settings.prediction_log_hash_features = vec!["plan".into()];
    settings.prediction_log_hash_key = "churn-key-0123456789".into();
    let server = TestServer::start(settings).await;
    for (tenure, plan) in (0..60).map(|i| (i % 30, ["basic", "plus", "pro"][i % 3])) {
        let row = json!({"tenure": tenure, "plan": plan, "senior": tenure % 2 == 0});
        let (status, _, answer) = server.post_json("/api/models/churn/predict", &row).await;
        assert_eq!(status, 200, "{answer}");
    }
    let rows = logged(&server, 60).await;
    let pro = rows
        .iter()
        .find(|r| r["inputs"]["tenure"] == 29)
        .expect("the row with tenure 29 is logged");
    // Python: hmac.new(b"churn-key-0123456789", b"plan\x00pro", hashlib.sha256).hexdigest()[:32]
    assert_eq!(
        pro["inputs"],
        json!({"tenure": 29, "plan": "e541e6a052c0cf6c2e64718f9e7e6c86"}),
        "senior is left out, plan hashed"
    );
    // Drift is computed for the value kept, and for neither of the others.
    // The live counts behind drift are written within a second of the rows.
    let mut drift = Value::Null;
    let counted = common::eventually(Duration::from_secs(10), async || {
        drift = server.get("/api/models/churn/drift?window=1h").await.2;
        drift["rows"] == 60
    })
    .await;
    assert!(counted, "{drift}");
    let by_name = |name: &str| {
        drift["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["feature"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("tenure")["values"], 60, "{drift}");
    for hidden in ["plan", "senior"] {
        let feature = by_name(hidden);
        assert_eq!(
            (&feature["values"], &feature["psi"]),
            (&json!(0), &Value::Null)
        );
    }
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_whose_manifest_opts_out_is_not_logged() {
    let repo = demo_repository();
    let manifest = repo.path().join("iris/1/model.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("prediction_log = false\n{text}")).unwrap();
    let server = TestServer::start(test_settings(repo.path())).await;
    let iris =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    let (status, _, answer) = server.post_json("/api/models/iris/predict", &iris).await;
    assert_eq!(status, 200, "{answer}");
    let churn = json!({"tenure": 3, "plan": "pro", "senior": true});
    let (status, _, _) = server.post_json("/api/models/churn/predict", &churn).await;
    assert_eq!(status, 200);
    let rows = logged(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, _, listed) = server.get("/api/predictions").await;
    let models: Vec<&str> = listed["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["churn"], "{rows:?}");
    server.server.shutdown().await.unwrap();
}
