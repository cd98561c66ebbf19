//! Explanations of imported models: an ONNX graph imported with `--background CSV` explains by
//! KernelSHAP, checked against shap's own KernelExplainer on the scikit-learn model the graph
//! was exported from (tests/fixtures/onnx/kernel.json, made by scripts/make_kernel_fixtures.py);
//! without a background set it says how to get one; XGBoost and LightGBM files refuse one.

mod common;

use common::onnx::{fixtures, import, import_fixture, library};
use common::{TestServer, test_settings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const FEATURES: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
const LABELS: [&str; 3] = ["setosa", "versicolor", "virginica"];

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("kernel.json")).unwrap()).unwrap()
}

/// The reference's background rows as a CSV with the features' columns.
fn background_csv(dir: &Path, reference: &Value) -> PathBuf {
    let mut text = format!("{}\n", FEATURES.join(","));
    for row in reference["background"].as_array().unwrap() {
        let cells: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap().to_string())
            .collect();
        text.push_str(&format!("{}\n", cells.join(",")));
    }
    let path = dir.join("background.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn an_onnx_graph_with_a_background_set_explains_as_shaps_kernel_explainer() {
    let reference = reference();
    let work = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let background = background_csv(work.path(), &reference);
    let background = background.to_str().unwrap();
    for fixture in ["iris_random_forest", "iris_svc"] {
        import_fixture(
            models.path(),
            &format!("{fixture}.onnx"),
            fixture,
            &[
                "--training-data",
                background,
                "--labels",
                &LABELS.join(","),
                "--background",
                background,
            ],
        );
    }
    import_fixture(
        models.path(),
        "iris_random_forest.onnx",
        "no_background",
        &["--training-data", background, "--labels", &LABELS.join(",")],
    );
    let mut settings = test_settings(models.path());
    settings.onnxruntime = Some(library());
    let server = TestServer::start(settings).await;
    let rows: Vec<Value> = reference["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let values = row.as_array().unwrap();
            json!(
                FEATURES
                    .iter()
                    .zip(values)
                    .map(|(f, v)| (f.to_string(), v.clone()))
                    .collect::<serde_json::Map<_, _>>()
            )
        })
        .collect();
    for fixture in ["iris_random_forest", "iris_svc"] {
        let expected = &reference["fixtures"][fixture];
        let (status, _, answer) = server
            .post_json(
                &format!("/api/models/{fixture}/predict?explain=true"),
                &json!({ "instances": rows }),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let mut largest = 0.0f64;
        for (r, prediction) in answer["predictions"].as_array().unwrap().iter().enumerate() {
            for (k, label) in LABELS.iter().enumerate() {
                let output = &prediction["contributions"][label];
                assert_eq!(output["method"], "kernel", "{output}");
                assert_eq!(output["unit"], "probability", "{output}");
                let base = output["base_value"].as_f64().unwrap();
                largest =
                    largest.max((base - expected["kernel_base_values"][k].as_f64().unwrap()).abs());
                for (j, feature) in FEATURES.iter().enumerate() {
                    let ours = output["features"][feature].as_f64().unwrap();
                    let shap = expected["kernel"][r][k][j].as_f64().unwrap();
                    largest = largest.max((ours - shap).abs());
                }
            }
        }
        // The graph computes in single precision, scikit-learn in double.
        assert!(
            largest < 1e-5,
            "{fixture}: {largest:e} from shap's KernelExplainer"
        );
        eprintln!("{fixture}: largest difference from shap {largest:.1e}");
    }
    let (status, _, problem) = server
        .post_json("/api/models/no_background/predict?explain=true", &rows[0])
        .await;
    assert_eq!(status, 422, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("--background CSV"), "{detail}");
}

#[test]
fn a_background_set_is_refused_where_it_has_no_use_or_does_not_fit() {
    let work = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let reference = reference();
    let background = background_csv(work.path(), &reference);
    // XGBoost and LightGBM trees explain exactly.
    let boosted = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boosted");
    let file = std::fs::read_dir(&boosted)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().unwrap().to_string_lossy().starts_with("xgb")
        })
        .unwrap();
    let output = import(
        models.path(),
        &[
            file.to_str().unwrap(),
            "--name",
            "trees",
            "--background",
            background.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--background is for ONNX graphs"),
        "{stderr}"
    );
    // A background without a feature's column names it.
    std::fs::write(
        work.path().join("short.csv"),
        "sepal_length,sepal_width\n1,2\n",
    )
    .unwrap();
    let graph = fixtures().join("iris_random_forest.onnx");
    let output = import(
        models.path(),
        &[
            graph.to_str().unwrap(),
            "--name",
            "iris",
            "--training-data",
            background.to_str().unwrap(),
            "--background",
            work.path().join("short.csv").to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has no petal_length, petal_width"),
        "{stderr}"
    );
}
