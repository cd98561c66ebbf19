//! The `mlserve` binary as an operator runs it: the embedded default, settings layers, log
//! output, bad settings, and a graceful stop on SIGTERM.

mod common;

use common::process::{ServerProcess, spawn_server};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ureq_get(addr, "/health/ready").is_some_and(|(status, _)| status == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not ready within 10 s");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ureq_get(addr: &str, path: &str) -> Option<(u16, Value)> {
    runtime().block_on(async {
        let response = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.unwrap_or(Value::Null)))
    })
}

fn terminate(process: &mut ServerProcess) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_a_command_it_trains_the_demo_models_serves_them_and_logs_each_request() {
    let cwd = tempfile::tempdir().unwrap();
    let mut server = spawn_server(cwd.path(), &[], &[]);
    // MLSERVE_ADDR=127.0.0.1:0 applies without a command too: a free port, not 8080.
    assert!(!server.addr.ends_with(":8080"), "{}", server.addr);
    wait_ready(&server.addr);
    for model in ["breast_cancer/1/model.toml", "iris/1/model.bin"] {
        assert!(cwd.path().join("models").join(model).exists(), "{model}");
    }
    let body =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    let answer = runtime().block_on(async {
        reqwest::Client::new()
            .post(format!("http://{}/api/models/iris/predict", server.addr))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    assert_eq!(answer["label"], "setosa");
    let request_id = answer["request_id"].as_str().unwrap().to_string();
    assert_eq!(terminate(&mut server).code(), Some(0));

    // The process has exited, so the log reader ends at end of file.
    let lines: Vec<Value> = server
        .start_up_lines
        .clone()
        .into_iter()
        .chain(server.log_lines.iter())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("trained the demo models"))
    }));
    let access = lines
        .iter()
        .find(|l| l["request_id"] == request_id)
        .expect("an access log line for the request");
    assert_eq!(access["method"], "POST");
    assert_eq!(access["path"], "/api/models/iris/predict");
    assert_eq!(access["model"], "iris");
    assert_eq!(access["version"], "1");
    assert_eq!(access["status"], 200);
    assert!(access["latency_ms"].as_f64().is_some());
}

/// `mlserve healthcheck ARGS`: its exit code and what it printed.
fn healthcheck(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .arg("healthcheck")
        .args(args)
        .env_remove("MLSERVE_ADDR")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_healthcheck_command_follows_readiness() {
    let cwd = tempfile::tempdir().unwrap();
    let mut server = spawn_server(cwd.path(), &["--watch", "false"], &[]);
    wait_ready(&server.addr);
    assert_eq!(healthcheck(&["--addr", &server.addr]).0, Some(0));
    // A server listening on every address is asked on loopback, as in a container.
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        healthcheck(&["--addr", &format!("0.0.0.0:{port}")]).0,
        Some(0)
    );
    // Any answer but 200 is unhealthy, and says what it got.
    let (code, said) = healthcheck(&["--addr", &server.addr, "--path", "/nope"]);
    assert_eq!(code, Some(1));
    assert!(said.contains("404"), "{said}");
    assert_eq!(terminate(&mut server).code(), Some(0));
    // Nothing listening: unhealthy, with the reason.
    let (code, said) = healthcheck(&["--addr", &server.addr, "--timeout-secs", "1"]);
    assert_eq!(code, Some(1));
    assert!(said.contains("refused"), "{said}");
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let cwd = tempfile::tempdir().unwrap();
    mlserve::train::train_demo_models_if_empty(&cwd.path().join("models")).unwrap();
    let mut server = spawn_server(cwd.path(), &["serve", "--max-batch-rows", "5000"], &[]);
    wait_ready(&server.addr);
    let addr = server.addr.clone();
    let row =
        json!({"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 5.1, "petal_width": 1.8});
    let batch = json!({"instances": vec![row; 5000]});
    // Clients keep sending large batches; some are in flight when SIGTERM arrives.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, batch) = (addr.clone(), batch.clone());
            std::thread::spawn(move || {
                runtime().block_on(async move {
                    let client = reqwest::Client::new();
                    let mut outcomes = Vec::new();
                    for _ in 0..200 {
                        match client
                            .post(format!("http://{addr}/api/models/iris/predict"))
                            .json(&batch)
                            .send()
                            .await
                        {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let complete = response.json::<Value>().await.is_ok_and(|v| {
                                    v["predictions"].as_array().is_some_and(|p| p.len() == 5000)
                                });
                                outcomes.push((status, complete));
                            }
                            // Refused once the listener is closed: expected after the signal.
                            Err(_) => break,
                        }
                    }
                    outcomes
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let status = terminate(&mut server);
    assert_eq!(status.code(), Some(0));
    let mut answered = 0;
    for client in clients {
        for (status, complete) in client.join().unwrap() {
            assert_eq!(status, 200);
            assert!(complete, "a response was cut short");
            answered += 1;
        }
    }
    assert!(answered > 0);
}

#[test]
fn settings_layer_defaults_file_environment_and_flags() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("mlserve.toml"),
        "max_batch_rows = 50\nmax_body_bytes = 1000\nlog_level = \"debug\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["config", "--max-body-bytes", "2000"])
        .current_dir(cwd.path())
        .env("MLSERVE_MAX_BATCH_ROWS", "70")
        .env("MLSERVE_MAX_BODY_BYTES", "1500")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: toml::Table = toml::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(
        printed["max_batch_rows"].as_integer(),
        Some(70),
        "environment over file"
    );
    assert_eq!(
        printed["max_body_bytes"].as_integer(),
        Some(2000),
        "flag over environment"
    );
    assert_eq!(
        printed["log_level"].as_str(),
        Some("debug"),
        "file over default"
    );
    assert_eq!(printed["addr"].as_str(), Some("127.0.0.1:8080"), "default");
}

#[test]
fn bad_settings_stop_start_up_with_a_clear_message() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("typo.toml"), "max_batch_row = 5\n").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["serve", "--max-batch-rows", "0"],
            "invalid setting max_batch_rows",
        ),
        (
            vec!["serve", "--request-timeout-secs", "-3"],
            "request_timeout_secs",
        ),
        (
            vec!["serve", "--config", "typo.toml"],
            "unknown field `max_batch_row`",
        ),
        (
            vec!["serve", "--config", "absent.toml"],
            "cannot read settings file absent.toml",
        ),
        (
            vec!["serve", "--addr", "not-an-address"],
            "invalid value 'not-an-address'",
        ),
        (vec!["serve", "--addr", &taken_addr], "cannot listen on"),
        (
            vec![
                "serve",
                "--models",
                ".",
                "--addr",
                "127.0.0.1:0",
                "--grpc-addr",
                &taken_addr,
            ],
            "for gRPC",
        ),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .args(&args)
            .current_dir(cwd.path())
            .env("MLSERVE_WATCH", "false")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected '{expected}' in {stderr}"
        );
    }
    drop(taken);
}

#[test]
fn log_dir_gets_daily_files_of_json_lines() {
    let cwd = tempfile::tempdir().unwrap();
    mlserve::train::train_demo_models_if_empty(&cwd.path().join("models")).unwrap();
    let mut server = spawn_server(cwd.path(), &["serve", "--log-dir", "logs"], &[]);
    wait_ready(&server.addr);
    assert_eq!(
        ureq_get(&server.addr, "/api/models").map(|(s, _)| s),
        Some(200)
    );
    assert_eq!(terminate(&mut server).code(), Some(0));
    let files: Vec<_> = std::fs::read_dir(cwd.path().join("logs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().into_string().unwrap();
    assert!(name.starts_with("mlserve.log."), "{name}");
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    let access: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["path"] == "/api/models")
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    assert_eq!(access[0]["status"], 200);
    // The console has every line the file has, byte for byte (each is formatted once for both);
    // the process has ended, so its stderr reader ends too.
    let console: Vec<String> = server
        .start_up_lines
        .iter()
        .cloned()
        .chain(server.log_lines.iter())
        .collect();
    let file_lines: Vec<&str> = text.lines().collect();
    assert!(file_lines.len() >= 3, "{text}");
    for line in &file_lines {
        assert!(
            console.iter().any(|c| c == line),
            "{line} not on the console"
        );
    }
}
