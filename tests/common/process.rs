//! `mlserve` as a child process, as an operator runs it.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process that is killed if the test ends early.
pub struct ServerProcess {
    pub child: Child,
    pub addr: String,
    /// Log lines up to and including "listening".
    pub start_up_lines: Vec<String>,
    pub log_lines: mpsc::Receiver<String>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mlserve ARGS` in `cwd` on a free port and waits for its "listening" log line.
pub fn spawn_server(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlserve"));
    command.args(args);
    spawn(command, cwd, envs)
}

/// [`spawn_server`] with the open-file limit (`ulimit -n`, soft and hard) set to `limit`,
/// through util-linux's `prlimit`, which then runs mlserve in its own place.
pub fn spawn_server_with_open_files(
    cwd: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    limit: u64,
) -> ServerProcess {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={limit}:{limit}"))
        .arg(env!("CARGO_BIN_EXE_mlserve"))
        .args(args);
    spawn(command, cwd, envs)
}

fn spawn(mut command: Command, cwd: &Path, envs: &[(&str, &str)]) -> ServerProcess {
    #[allow(clippy::zombie_processes)] // reaped by ServerProcess's Drop
    let mut child = command
        .current_dir(cwd)
        .env("MLSERVE_ADDR", "127.0.0.1:0")
        .env("MLSERVE_GRPC_ADDR", "127.0.0.1:0")
        .env("MLSERVE_LOG_FORMAT", "json")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, log_lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // Owned by the guard at once, so a failed start still kills and reaps the process.
    let mut process = ServerProcess {
        child,
        addr: String::new(),
        start_up_lines: Vec::new(),
        log_lines,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = process
            .log_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a listening line within 20 s");
        process.start_up_lines.push(line.clone());
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["message"] == "listening" {
            process.addr = event["addr"].as_str().unwrap().to_string();
            return process;
        }
    }
}
