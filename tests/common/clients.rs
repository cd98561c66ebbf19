//! The third-party clients of tests/clients/, run with the test venv's Python
//! (MLSERVE_TEST_PYTHON, which scripts/test.sh sets up with tritonclient and kserve).

use serde_json::Value;

/// Runs `tests/clients/SCRIPT ARGS` and returns the JSON it printed; the client must succeed.
pub async fn run_python_client(script: &str, args: Vec<String>) -> Value {
    let python = std::env::var("MLSERVE_TEST_PYTHON")
        .expect("MLSERVE_TEST_PYTHON names a Python with tritonclient and kserve; scripts/test.sh sets it up");
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&path)
            .args(&args)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "the client {script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
