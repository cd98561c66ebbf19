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

/// Checks what tests/clients/regression_clients.py saw of one model that predicts a number:
/// its metadata, and the values every client decoded (Triton's, binary and JSON; KServe's V2,
/// JSON and binary, and V1) against `expected`, within `relative` of each.
pub fn assert_regression_clients_saw(seen: &Value, expected: &[f64], relative: f64) {
    let close = |got: &Value, want: f64| {
        let got = got
            .as_f64()
            .unwrap_or_else(|| panic!("not a number: {got}"));
        assert!(
            (got - want).abs() <= relative * want.abs().max(1.0),
            "{got} != {want}: {seen}"
        );
    };
    assert_eq!(
        seen["triton_metadata"]["outputs"],
        serde_json::json!([{"name": "prediction", "datatype": "FP64", "shape": [-1]}])
    );
    assert_eq!(
        seen["triton_default_outputs"],
        serde_json::json!(["prediction"])
    );
    for key in ["triton_binary", "triton_json", "kserve_v2"] {
        assert_eq!(
            seen[key]["shape"],
            serde_json::json!([expected.len()]),
            "{key}: {seen}"
        );
        for (got, want) in seen[key]["values"].as_array().unwrap().iter().zip(expected) {
            close(got, *want);
        }
    }
    assert_eq!(seen["triton_binary"]["dtype"], "float64");
    assert_eq!(seen["kserve_v2"]["datatype"], "FP64");
    let binary = seen["kserve_v2_binary"].as_array().unwrap();
    let v1 = seen["kserve_v1"]["predictions"].as_array().unwrap();
    assert_eq!(
        (binary.len(), v1.len()),
        (expected.len(), expected.len()),
        "{seen}"
    );
    for ((got, v1), want) in binary.iter().zip(v1).zip(expected) {
        close(got, *want);
        close(v1, *want);
    }
}
