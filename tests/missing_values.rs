//! Missing values have one meaning everywhere: for a feature the model imputes, `null`, the bare
//! `NaN` that Python's json.dumps writes, `NaN` in a query, and `NaN` in a V2 JSON tensor all
//! reach the model as missing and get scikit-learn's answer for that row; a feature the model
//! does not impute refuses every one of them, naming the feature. Over real HTTP, on the loans
//! pipeline exported from scikit-learn (an Imputer over the numbers, one-hot over the text).

mod common;

use common::onnx::{expected, import_loans, probabilities_of};
use common::{TestServer, test_settings};
use serde_json::{Value, json};

/// A server over the loans pipeline, imported with its features and labels named.
async fn loans_server() -> (tempfile::TempDir, TestServer) {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("models");
    import_loans(work.path(), &repo);
    let server = TestServer::start(test_settings(&repo)).await;
    (work, server)
}

/// Rows of the loans data whose income is missing, with scikit-learn's probabilities.
fn rows_with_missing_income() -> Vec<(Value, Vec<f64>)> {
    let expected = expected();
    let want = probabilities_of(&expected["fixtures"]["loans_column_transformer"]);
    expected["datasets"]["loans"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want)
        .filter(|(row, _)| row["income"].is_null())
        .map(|(row, want)| (row.clone(), want))
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}");
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{context}: {got:?} vs {want:?}");
    }
}

/// The row as Python's json.dumps writes it when income is float('nan').
fn python_json(row: &Value) -> String {
    format!(
        r#"{{"age": {}, "income": NaN, "plan": "{}", "region": "{}"}}"#,
        row["age"],
        row["plan"].as_str().unwrap(),
        row["region"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn null_nan_and_tensor_nan_are_one_missing_value_with_scikit_learns_answer() {
    let (_work, server) = loans_server().await;
    let rows = rows_with_missing_income();
    assert!(!rows.is_empty());
    let probabilities = |answer: &Value| -> Vec<f64> {
        ["declined", "approved"]
            .iter()
            .map(|label| answer["probabilities"][label].as_f64().unwrap())
            .collect()
    };
    for (index, (row, want)) in rows.iter().enumerate() {
        // null, the reference form.
        let (status, _, answer) = server.post_json("/api/models/loans/predict", row).await;
        assert_eq!(status, 200, "{answer}");
        assert_close(&probabilities(&answer), want, &format!("null, row {index}"));
        // Python's bare NaN, on the native API and on V1.
        let (status, answer) = server
            .post_text("/api/models/loans/predict", python_json(row))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_close(&probabilities(&answer), want, &format!("NaN, row {index}"));
        let (status, answer) = server
            .post_text(
                "/v1/models/loans:predict",
                format!(r#"{{"instances": [{}]}}"#, python_json(row)),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let label = if want[1] > want[0] {
            "approved"
        } else {
            "declined"
        };
        assert_eq!(answer["predictions"], json!([label]), "V1 row {index}");
        // NaN in a query string.
        let query = format!(
            "/api/models/loans/predict?age={}&income=NaN&plan={}&region={}",
            row["age"],
            row["plan"].as_str().unwrap(),
            row["region"].as_str().unwrap()
        );
        let (status, _, answer) = server.get(&query).await;
        assert_eq!(status, 200, "{answer}");
        assert_close(
            &probabilities(&answer),
            want,
            &format!("query, row {index}"),
        );
        // NaN in a V2 JSON tensor, written bare as tritonclient and the kserve SDK do, and
        // null, as the native API takes it.
        for missing in ["NaN", "null"] {
            let body = format!(
                r#"{{"inputs": [
                {{"name": "age", "shape": [1], "datatype": "FP64", "data": [{}]}},
                {{"name": "income", "shape": [1], "datatype": "FP64", "data": [{missing}]}},
                {{"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["{}"]}},
                {{"name": "region", "shape": [1], "datatype": "BYTES", "data": ["{}"]}}]}}"#,
                row["age"],
                row["plan"].as_str().unwrap(),
                row["region"].as_str().unwrap()
            );
            let (status, answer) = server.post_text("/v2/models/loans/infer", body).await;
            assert_eq!(status, 200, "{answer}");
            let outputs = answer["outputs"].as_array().unwrap();
            let tensor = outputs
                .iter()
                .find(|o| o["name"] == "probabilities")
                .unwrap();
            let got: Vec<f64> = tensor["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            assert_close(&got, want, &format!("V2 tensor {missing}, row {index}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feature_the_model_does_not_impute_refuses_every_form_of_missing() {
    let (_work, server) = loans_server().await;
    for body in [
        r#"{"age": 40, "income": 50000, "plan": null, "region": "east"}"#,
        r#"{"age": 40, "income": 50000, "plan": NaN, "region": "east"}"#,
    ] {
        let (status, problem) = server
            .post_text("/api/models/loans/predict", body.to_string())
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "plan", "{problem}");
    }
    let (status, _, problem) = server
        .get("/api/models/loans/predict?age=40&income=50000&plan=&region=east")
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "plan", "{problem}");
    // A null in a V2 tensor of a feature the model does not impute: refused by name.
    let body = r#"{"inputs": [
        {"name": "age", "shape": [1], "datatype": "FP64", "data": [40]},
        {"name": "income", "shape": [1], "datatype": "FP64", "data": [50000]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": [null]},
        {"name": "region", "shape": [1], "datatype": "BYTES", "data": ["east"]}]}"#;
    let (status, answer) = server
        .post_text("/v2/models/loans/infer", body.to_string())
        .await;
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("'plan'") && error.contains("null"),
        "{error}"
    );
}
