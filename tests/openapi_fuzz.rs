//! schemathesis, a property-based API fuzzer, runs every check it has over the served OpenAPI
//! document: requests it generates from a schema must be answered 2xx, requests that break a
//! schema refused 4xx, every status and answer must be the documented one, and nothing may be
//! a server error. The repository holds numeric, integer, boolean, categorical and nullable
//! features (the demo models, a categorical model, and an imported ONNX pipeline that imputes),
//! and two versions of one model. The few rules JSON Schema cannot state are listed, with why, in
//! tests/fuzz/schemathesis.toml.

mod common;

use common::onnx::{import_loans, library};
use common::{TestServer, demo_repository, test_settings, train_into};
use mlserve::data::BundledDataset;
use mlserve::train::Algorithm;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `st` command of the test venv (scripts/test.sh installs schemathesis beside the Python
/// that MLSERVE_TEST_PYTHON names).
fn schemathesis() -> PathBuf {
    let python = std::env::var_os("MLSERVE_TEST_PYTHON").expect(
        "MLSERVE_TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs schemathesis",
    );
    let st = Path::new(&python).with_file_name("st");
    assert!(
        st.is_file(),
        "{} is missing: scripts/test.sh installs schemathesis",
        st.display()
    );
    st
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_wrong_with_the_served_openapi_document() {
    let st = schemathesis();
    let models = demo_repository();
    train_into(
        models.path(),
        BundledDataset::Iris,
        Algorithm::DecisionTree,
        "iris",
        7,
    );
    // A model that predicts a number: its answers are checked against its own schemas.
    let regression = mlserve::train::TrainOptions {
        params: mlserve::train::AlgorithmParams::from_flags_for(
            mlserve::data::Task::Regression,
            Algorithm::LinearRegression,
            &mlserve::train::HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 1,
        cv: None,
    };
    mlserve::train::regression::train_regressor(
        &mlserve::data::load_bundled(BundledDataset::Diabetes),
        &regression,
        &mlserve::train::NoProgress,
    )
    .unwrap()
    .save(models.path(), "diabetes")
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    import_loans(work.path(), models.path());
    let mut settings = test_settings(models.path());
    settings.onnxruntime = Some(library());
    let server = TestServer::start(settings).await;
    let (status, _, ready) = server.get("/health/ready").await;
    assert_eq!(status, 200, "{ready}");

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/schemathesis.toml");
    let url = server.url("/openapi.json");
    // schemathesis keeps a cache of what it learnt in its working folder: not in the source tree.
    let cwd = work.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .current_dir(cwd)
            .arg("--config-file")
            .arg(config)
            .args(["--no-color", "run", &url])
            // A fixed seed and enough examples per operation to reach each; every check is on
            // unless the config file turns one off for an operation.
            .args(["--seed", "1", "--max-examples", "30"])
            // Loading and unloading models changes what every other operation answers (an
            // unloaded repository is rightly not ready: 503); tests/serve_readiness.rs tests them.
            .args(["--exclude-path-regex", "^/v2/repository/models/"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It reached every operation of the document but the two excluded above.
    let (_, _, document) = server.get("/openapi.json").await;
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| !path.starts_with("/v2/repository/models/"))
        .map(|(_, item)| item.as_object().unwrap().len())
        .sum();
    let tested = format!("Tested: {operations}");
    assert!(
        report.contains(&tested),
        "expected '{tested}' in:\n{report}"
    );
    assert!(report.contains("passed"), "{report}");
}
