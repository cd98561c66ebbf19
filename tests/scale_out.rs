//! Scale-out: three `mlserve serve` replicas on 127.0.0.1 behind nginx (the Debian package, with
//! deploy/nginx/mlserve.conf.template filled in), sharing one PostgreSQL prediction log. Load
//! goes through nginx from concurrent clients while one replica is stopped with SIGTERM, another
//! is killed with SIGKILL and then restarted on the same port.
//!
//! Checked: no request fails across the SIGTERM, and across the SIGKILL only one that was in
//! flight at that moment may (nginx retries the rest on another replica, POST included: the
//! template's proxy_next_upstream … non_idempotent); every prediction a client was answered is in
//! the log exactly once, except the tail of the killed replica's answers that its log writer had
//! not committed yet (the log is written asynchronously: README, "kill -9"); the log holds no
//! request id that no client sent; every replica, the restarted one too, answered requests.
//! Nothing here is a timing assertion: how far the killed replica's log was behind is reported.
//!
//! `MLSERVE_SCALE_SECONDS` sets the length of the load (default 6; it lasts at least 3 s past the
//! restarted replica's readiness, so that nginx sends it requests); scripts/scale-out.sh runs it
//! on a release build for longer and prints the report (`--nocapture`).

mod common;

use common::postgres::fresh_postgres_database;
use common::process::{ServerProcess, spawn_server};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TEMPLATE: &str = include_str!("../deploy/nginx/mlserve.conf.template");

const SETOSA: &str =
    r#"{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}"#;

/// Concurrent clients.
const CLIENTS: usize = 16;
/// The prediction log's flush interval (LogSettings::default()).
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// What a kill is expected to lose, back from the kill: one flush interval, the write under way,
/// and scheduling. Reported beside what was lost, not asserted (a timing, not a behaviour): on a
/// machine saturated by the load, nginx, three replicas and PostgreSQL, a write can take a
/// second and the kill then loses more; what it loses is always the killed writer's tail, which
/// is asserted (see `lost_by_design` below).
const EXPECTED_LOSS_WINDOW: Duration = Duration::from_millis(1000);
/// How far a record's creation time (its `created_at_ms`) may be out of queue order: two
/// requests on two threads stamp their records and queue them in either order when a thread
/// is preempted in between.
const REORDER: Duration = Duration::from_millis(100);

/// The template with its placeholders filled in: `@PREFIX@` and `@LISTEN@` replaced, the line
/// holding `@SERVER@` repeated once per server. Comment lines are copied as they are.
fn fill_template(template: &str, prefix: &Path, listen: &str, servers: &[String]) -> String {
    let prefix = prefix.to_str().expect("a UTF-8 temp path");
    let mut config = String::new();
    for line in template.lines() {
        if line.trim_start().starts_with('#') {
            config.push_str(line);
            config.push('\n');
        } else if line.contains("@SERVER@") {
            for server in servers {
                config.push_str(&line.replace("@SERVER@", server));
                config.push('\n');
            }
        } else {
            let line = line.replace("@PREFIX@", prefix).replace("@LISTEN@", listen);
            assert!(!line.contains('@'), "an unknown placeholder: {line}");
            config.push_str(&line);
            config.push('\n');
        }
    }
    config
}

/// The nginx binary: on PATH or where Debian puts it.
fn find_nginx() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .expect(
            "nginx not found on PATH or at /usr/sbin/nginx: the scale-out test needs it \
             (Debian package nginx: apt-get install nginx; scripts/test.sh installs it)",
        )
}

/// Sends `signal` (TERM, QUIT …) to a process with kill(1).
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits for a child to exit, without holding up the runtime's other tasks.
async fn wait_exit(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no exit within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// nginx in the foreground, in a directory of its own; stopped (and its workers with it) when
/// dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
}

impl Nginx {
    fn start(servers: &[String]) -> Nginx {
        let nginx = find_nginx();
        let dir = tempfile::tempdir().unwrap();
        // When the test runs as root, nginx's workers run as nobody and must reach the
        // temp folders nginx makes in here.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let addr = free_local_addr();
        let config = fill_template(TEMPLATE, dir.path(), &addr, servers);
        let config_file = dir.path().join("nginx.conf");
        std::fs::write(&config_file, config).unwrap();
        let error_log = dir.path().join("error.log");
        let args = |test: bool| {
            let mut command = Command::new(&nginx);
            command
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(&error_log)
                .arg("-c")
                .arg(&config_file);
            if test {
                command.arg("-t");
            }
            command.stdin(Stdio::null());
            command
        };
        let checked = args(true).output().expect("run nginx -t");
        assert!(
            checked.status.success(),
            "nginx -t refused the filled template:\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        #[allow(clippy::zombie_processes)] // reaped by Nginx's Drop
        let child = args(false)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        Nginx { child, dir, addr }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Graceful stop (SIGQUIT: finish what is in flight) and the exit status.
    async fn stop(&mut self) -> Result<ExitStatus, String> {
        signal(self.child.id(), "QUIT");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                // Which connections held it up.
                let sockets = Command::new("ss")
                    .args(["-tanp"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let held: Vec<&str> = sockets.lines().filter(|l| l.contains("nginx")).collect();
                return Err(format!(
                    "nginx: no exit within 10 s of SIGQUIT; its sockets: {held:#?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM, not SIGKILL: a killed master would leave its workers serving.
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (free when asked; nginx binds it right after).
fn free_local_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Waits until `GET http://ADDR/health/ready` answers 200.
async fn wait_ready(client: &reqwest::Client, addr: &str, within: Duration) {
    let deadline = Instant::now() + within;
    let url = format!("http://{addr}/health/ready");
    loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} not ready within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts one replica serving the shared repository into the shared log.
fn start_replica(
    cwd: &Path,
    models: &Path,
    database_url: &str,
    addr: Option<&str>,
) -> ServerProcess {
    let models = models.to_str().unwrap();
    let mut args = vec![
        "serve",
        "--models",
        models,
        "--database-url",
        database_url,
        "--watch",
        "false",
    ];
    if let Some(addr) = addr {
        args.extend(["--addr", addr]);
    }
    // Access lines off (one per request): only start-up, shutdown and warnings are kept.
    spawn_server(
        cwd,
        &args,
        &[("MLSERVE_LOG_LEVEL", "info,mlserve::access=warn")],
    )
}

/// What the replica logged since start (up to its exit, when it has exited).
fn drain_log(process: &ServerProcess, into: &mut Vec<Value>) {
    for line in process
        .start_up_lines
        .iter()
        .cloned()
        .chain(process.log_lines.try_iter())
    {
        if let Ok(event) = serde_json::from_str::<Value>(&line) {
            into.push(event);
        }
    }
}

/// One request of the load.
struct Outcome {
    id: String,
    /// Since the start of the load.
    sent: Duration,
    done: Duration,
    result: Result<Answer, String>,
}

struct Answer {
    status: u16,
    /// X-Upstream: every replica nginx tried, the one that answered last.
    upstream: String,
    /// X-Upstream-Status: their statuses.
    upstream_status: String,
    /// The answer names the request id that was sent (body and x-request-id header).
    id_echoed: bool,
}

impl Answer {
    fn answered_by(&self) -> &str {
        self.upstream.rsplit(", ").next().unwrap_or("").trim()
    }
    fn retried(&self) -> bool {
        self.upstream.contains(',')
    }
}

/// Sends requests one after the other until `until_ms` (since `start`, may be moved later).
async fn client_loop(
    client: reqwest::Client,
    url: String,
    task: usize,
    start: Instant,
    until_ms: Arc<AtomicU64>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_millis(until_ms.load(Ordering::Relaxed)) {
        let id = format!("scale-{task}-{n}");
        n += 1;
        let sent = start.elapsed();
        let result = match client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-request-id", &id)
            .body(SETOSA)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let upstream = header("x-upstream");
                let upstream_status = header("x-upstream-status");
                let header_id = header("x-request-id");
                match response.bytes().await {
                    Ok(body) => {
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        Ok(Answer {
                            status,
                            upstream,
                            upstream_status,
                            id_echoed: status != 200
                                || (header_id == id && body["request_id"] == id.as_str()),
                        })
                    }
                    Err(error) => Err(format!("reading the body: {}", error_chain(&error))),
                }
            }
            Err(error) => Err(error_chain(&error)),
        };
        outcomes.push(Outcome {
            id,
            sent,
            done: start.elapsed(),
            result,
        });
    }
    outcomes
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_nginx_survive_sigterm_and_sigkill_and_log_every_prediction_once() {
    let seconds: f64 = std::env::var("MLSERVE_SCALE_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("MLSERVE_SCALE_SECONDS: a number of seconds")
        })
        .unwrap_or(6.0);
    assert!(seconds >= 3.0, "MLSERVE_SCALE_SECONDS: at least 3");
    let total = Duration::from_secs_f64(seconds);
    let database_url = fresh_postgres_database().await;
    let repo = tempfile::tempdir().unwrap();
    let models = repo.path().join("models");
    mlserve::train::train_demo_models_if_empty(&models).unwrap();
    let cwd = tempfile::tempdir().unwrap();

    let probe = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // Three replicas on free ports; the addresses stay theirs (a restart takes the same one).
    let mut replicas: Vec<Option<ServerProcess>> = Vec::new();
    for _ in 0..3 {
        let replica = start_replica(cwd.path(), &models, &database_url, None);
        wait_ready(&probe, &replica.addr, Duration::from_secs(20)).await;
        replicas.push(Some(replica));
    }
    let addrs: Vec<String> = replicas
        .iter()
        .map(|r| r.as_ref().unwrap().addr.clone())
        .collect();
    let mut nginx = Nginx::start(&addrs);
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        let url = format!("http://{}/health/ready", nginx.addr);
        loop {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}", nginx.error_log());
            }
            if let Ok(response) = probe.get(&url).send().await
                && response.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nginx not answering within 10 s:\n{}",
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The load: CLIENTS tasks, one request at a time each, each request with its own id.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("http://{}/api/models/iris/predict", nginx.addr);
    let start = Instant::now();
    let start_wall_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let until_ms = Arc::new(AtomicU64::new(total.as_millis() as u64));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|task| {
            let (client, url, until_ms) = (client.clone(), url.clone(), until_ms.clone());
            tokio::spawn(client_loop(client, url, task, start, until_ms))
        })
        .collect();

    let mut replica_logs: Vec<Vec<Value>> = vec![Vec::new(); 4];
    let at = |fraction: f64| start + total.mul_f64(fraction);

    // ~1/3: SIGTERM replica 1. It stops accepting, finishes what is in flight, writes its log
    // queue and exits 0; its exit is awaited in the background.
    tokio::time::sleep_until(at(1.0 / 3.0).into()).await;
    let mut first = replicas[0].take().unwrap();
    let term_at = start.elapsed();
    signal(first.child.id(), "TERM");
    let first_exit = tokio::spawn(async move {
        let status = wait_exit(&mut first.child, Duration::from_secs(30), "replica 1").await;
        (status, start.elapsed(), first)
    });

    // ~1/2: SIGKILL replica 2: no shutdown, no flush.
    tokio::time::sleep_until(at(0.5).into()).await;
    let mut second = replicas[1].take().unwrap();
    let kill_at = start.elapsed();
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    drain_log(&second, &mut replica_logs[1]);
    drop(second);

    // 0.5 s later: replica 2 again, on the same address.
    tokio::time::sleep_until((start + kill_at + Duration::from_millis(500)).into()).await;
    let restart_at = start.elapsed();
    let restarted = tokio::task::block_in_place(|| {
        start_replica(cwd.path(), &models, &database_url, Some(&addrs[1]))
    });
    assert_eq!(restarted.addr, addrs[1]);
    wait_ready(&probe, &addrs[1], Duration::from_secs(20)).await;
    let restart_ready_at = start.elapsed();
    replicas[1] = Some(restarted);
    // nginx sends it requests again once its fail_timeout (2 s) since the last failure it saw
    // there has passed: the load goes on for a while after that, however slow the start was.
    until_ms.fetch_max(
        (restart_ready_at + Duration::from_secs(3)).as_millis() as u64,
        Ordering::Relaxed,
    );

    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let load_time = start.elapsed();
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    // How far the log is behind the answers when the load ends: still queued in the replicas.
    let (rows_at_load_end,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM predictions")
        .fetch_one(&mut connection)
        .await
        .unwrap();

    let (first_status, first_exited_at, first) = first_exit.await.unwrap();
    drain_log(&first, &mut replica_logs[0]);
    drop(first);
    assert!(
        first_status.success(),
        "replica 1 after SIGTERM: {first_status}"
    );
    // The other two stop the same way, together, so their queues are written. Writing a long
    // queue takes a while: the wait is a guard against a hang, not a time limit.
    let stop_at = Instant::now();
    for replica in replicas.iter().flatten() {
        signal(replica.child.id(), "TERM");
    }
    let mut stop_times = Vec::new();
    for (index, slot) in replicas.iter_mut().enumerate() {
        if let Some(mut replica) = slot.take() {
            let what = format!("replica {}", index + 1);
            let status = wait_exit(&mut replica.child, Duration::from_secs(120), &what).await;
            stop_times.push(format!("{what} {}", ms(stop_at.elapsed())));
            assert!(status.success(), "{what} after SIGTERM: {status}");
            drain_log(&replica, &mut replica_logs[if index == 1 { 2 } else { 3 }]);
        }
    }
    // The clients' idle connections are closed first, so nginx has nothing left to finish.
    drop(client);
    drop(probe);
    let nginx_stopped = nginx.stop().await;
    let nginx_errors = nginx.error_log();

    // The log, read back: rows per request id.
    let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
        "SELECT request_id, COUNT(*), MIN(created_at_ms) FROM predictions GROUP BY request_id",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    // Request id -> (rows, when the replica answered, since the start of the load).
    let logged: HashMap<String, (i64, Duration)> = rows
        .into_iter()
        .map(|(key, count, created_at_ms)| {
            let id = mlserve::store::record::RequestKey::text_of(&key).unwrap();
            let since_start = u64::try_from(created_at_ms - start_wall_ms).unwrap_or(0);
            (id, (count, Duration::from_millis(since_start)))
        })
        .collect();
    let log_rows: i64 = logged.values().map(|(count, _)| count).sum();

    // What the clients saw.
    let sent_ids: HashSet<&str> = outcomes.iter().map(|o| o.id.as_str()).collect();
    let ok: Vec<(&Outcome, &Answer)> = outcomes
        .iter()
        .filter_map(|o| match &o.result {
            Ok(answer) if answer.status == 200 => Some((o, answer)),
            _ => None,
        })
        .collect();
    let failures: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(&o.result, Ok(answer) if answer.status == 200))
        .collect();
    let mut failures_by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for failure in &failures {
        let kind = match &failure.result {
            Ok(answer) => format!(
                "HTTP {} (upstream {})",
                answer.status, answer.upstream_status
            ),
            Err(error) => format!("transport: {error}"),
        };
        *failures_by_kind.entry(kind).or_default() += 1;
    }
    let in_flight_at_kill = |o: &Outcome| o.sent <= kill_at && o.done >= kill_at;
    let retried: Vec<&Answer> = ok.iter().map(|(_, a)| *a).filter(|a| a.retried()).collect();
    let mut retried_by_status: BTreeMap<String, usize> = BTreeMap::new();
    for answer in &retried {
        *retried_by_status
            .entry(answer.upstream_status.clone())
            .or_default() += 1;
    }

    // Lost by design: what the killed replica 2 answered after the last batch it committed.
    // Its writer takes records in queue order and commits them batch after batch, so what a
    // kill loses is a tail: every answer queued after the last committed batch was gathered,
    // and nothing before. That batch is known from the log itself: the latest answer of the
    // killed process that is logged (its created_at_ms). A missing answer is lost by design
    // when the killed process gave it (replica 2's address, received before the restart began:
    // only the killed process can have answered it) no earlier than that, less REORDER. How
    // long before the kill that was is reported: one flush interval plus the writes under way
    // when the writer keeps up; its whole backlog when it does not.
    let by_killed = |o: &Outcome, a: &Answer| a.answered_by() == addrs[1] && o.done < restart_at;
    let killed_answers = ok.iter().filter(|(o, a)| by_killed(o, a)).count();
    let last_committed = ok
        .iter()
        .filter(|(o, a)| by_killed(o, a))
        .filter_map(|(o, _)| logged.get(&o.id).map(|(_, at)| *at))
        .max()
        .expect("the killed replica logged some of its answers before the kill");
    let cutoff = last_committed.saturating_sub(REORDER);
    let lost_by_design = |o: &Outcome, a: &Answer| by_killed(o, a) && o.done >= cutoff;
    let missing: Vec<&(&Outcome, &Answer)> = ok
        .iter()
        .filter(|(o, _)| !logged.contains_key(&o.id))
        .collect();
    let missing_by_design = missing.iter().filter(|(o, a)| lost_by_design(o, a)).count();
    let earliest_lost = missing
        .iter()
        .filter(|(o, a)| lost_by_design(o, a))
        .map(|(o, _)| o.done)
        .min();
    let within_expected = missing
        .iter()
        .filter(|(o, a)| lost_by_design(o, a) && o.done + EXPECTED_LOSS_WINDOW >= kill_at)
        .count();
    // Answered, not logged, and not the killed replica's tail.
    let unexpected_missing: Vec<String> = missing
        .iter()
        .filter(|(o, a)| !lost_by_design(o, a))
        .map(|(o, a)| {
            format!(
                "{} answered by {} at {} ({} before the kill)",
                o.id,
                a.upstream,
                ms(o.done),
                if o.done <= kill_at {
                    ms(kill_at - o.done)
                } else {
                    format!("-{}", ms(o.done - kill_at))
                }
            )
        })
        .collect();
    let duplicates: Vec<(&String, i64)> = logged
        .iter()
        .filter(|(_, (n, _))| *n != 1)
        .map(|(id, (n, _))| (id, *n))
        .collect();
    let strangers: Vec<&String> = logged
        .keys()
        .filter(|id| !sent_ids.contains(id.as_str()))
        .collect();
    let logged_failures = failures
        .iter()
        .filter(|o| logged.contains_key(&o.id))
        .count();
    let not_echoed = ok.iter().filter(|(_, a)| !a.id_echoed).count();

    // Who answered: replica 1, replica 2 before the kill, replica 2 after the restart, replica 3.
    let mut served = [0usize; 4];
    for (o, a) in &ok {
        let by = a.answered_by();
        if by == addrs[0] {
            served[0] += 1;
        } else if by == addrs[1] {
            served[if o.done < restart_at { 1 } else { 2 }] += 1;
        } else if by == addrs[2] {
            served[3] += 1;
        }
    }
    // What the replicas said: duplicates the log refused, records dropped, errors.
    let mut log_duplicates = 0u64;
    // Records a replica could not log: its queue was full (the writer fell behind the answers)
    // or the database refused them. The warnings are rate-limited, so they are counted, and
    // the records are found as answers missing from the log.
    let mut drop_warnings = 0usize;
    let mut warnings: Vec<String> = Vec::new();
    for events in &replica_logs {
        for event in events {
            let message = event["message"].as_str().unwrap_or("");
            if message.contains("already logged") {
                log_duplicates += event["duplicates"].as_u64().unwrap_or(0);
            }
            if message.contains("queue is full")
                || message.starts_with("prediction log: giving up")
                || message.starts_with("prediction log: the database refused")
            {
                drop_warnings += 1;
            }
            if matches!(event["level"].as_str(), Some("WARN" | "ERROR"))
                && !message.contains("already logged")
            {
                warnings.push(event.to_string());
            }
        }
    }
    let mut nginx_error_kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for line in nginx_errors.lines() {
        let kind = [
            "Connection refused",
            "Connection reset by peer",
            "upstream prematurely closed",
            "no live upstreams",
            "upstream timed out",
            "temporarily disabled",
        ]
        .into_iter()
        .find(|kind| line.contains(kind))
        .unwrap_or(if line.contains("[warn]") {
            "other warn"
        } else {
            "other"
        });
        *nginx_error_kinds.entry(kind).or_default() += 1;
    }

    println!("== scale-out through nginx: 3 replicas, {CLIENTS} clients, {seconds} s");
    println!(
        "events: SIGTERM replica 1 at {} (exited at {}, {first_status}); SIGKILL replica 2 at {}; \
         restart at {}, ready at {}; load ended at {}",
        ms(term_at),
        ms(first_exited_at),
        ms(kill_at),
        ms(restart_at),
        ms(restart_ready_at),
        ms(load_time)
    );
    println!(
        "requests: {} in {:.1} s = {:.0} req/s through nginx; 200: {}; failed: {} ({} in flight at the SIGKILL)",
        outcomes.len(),
        load_time.as_secs_f64(),
        outcomes.len() as f64 / load_time.as_secs_f64(),
        ok.len(),
        failures.len(),
        failures.iter().filter(|o| in_flight_at_kill(o)).count()
    );
    for (kind, count) in &failures_by_kind {
        println!("  failure: {count} × {kind}");
    }
    println!(
        "answered by: replica 1 {}, replica 2 {} (+{} after the restart), replica 3 {}",
        served[0], served[1], served[2], served[3]
    );
    println!(
        "retried by nginx (X-Upstream lists more than one replica): {} {:?}",
        retried.len(),
        retried_by_status
    );
    println!("nginx error log: {nginx_error_kinds:?}");
    println!(
        "prediction log: {log_rows} rows for {} request ids; duplicate rows: {}; duplicates \
         refused by the log (mlserve_prediction_log_duplicates_total): {log_duplicates}; ids no \
         client sent: {}; failed requests that were logged: {logged_failures}; answered but not \
         logged, beside what the SIGKILL lost: {}; the replicas' warnings of dropped records: \
         {drop_warnings}",
        logged.len(),
        duplicates.len(),
        strangers.len(),
        unexpected_missing.len()
    );
    println!(
        "log backlog: {rows_at_load_end} rows when the load ended; {} more written after it, at \
         the replicas' SIGTERM (exit after: {})",
        log_rows - rows_at_load_end,
        stop_times.join(", ")
    );
    println!(
        "lost by the SIGKILL (by design): {missing_by_design} of replica 2's {killed_answers} \
         answers before it; its last logged answer was given {} before the kill, the first lost \
         one {} before (flush interval {}; {within_expected} of them within {} of the kill)",
        ms(kill_at.saturating_sub(last_committed)),
        earliest_lost.map_or("-".to_string(), |at| ms(kill_at.saturating_sub(at))),
        ms(FLUSH_INTERVAL),
        ms(EXPECTED_LOSS_WINDOW),
    );
    if !warnings.is_empty() {
        println!("replica warnings and errors ({}):", warnings.len());
        for warning in warnings.iter().take(10) {
            println!("  {warning}");
        }
    }

    match &nginx_stopped {
        Ok(status) => assert!(status.success(), "nginx: {status}"),
        Err(error) => panic!("{error}"),
    }
    // Failures: none across the SIGTERM; across the SIGKILL only requests in flight at it.
    let unexplained: Vec<String> = failures
        .iter()
        .filter(|o| !in_flight_at_kill(o))
        .map(|o| {
            format!(
                "{} sent {} done {}: {}",
                o.id,
                ms(o.sent),
                ms(o.done),
                match &o.result {
                    Ok(a) => format!(
                        "HTTP {} via {} ({})",
                        a.status, a.upstream, a.upstream_status
                    ),
                    Err(error) => error.clone(),
                }
            )
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} requests failed outside the SIGKILL moment: {:#?}\nnginx error log:\n{nginx_errors}",
        unexplained.len(),
        &unexplained[..unexplained.len().min(10)]
    );
    assert_eq!(
        not_echoed, 0,
        "answers that did not carry the request id sent"
    );
    assert_eq!(
        drop_warnings,
        0,
        "the replicas dropped {} answered predictions from the prediction log (a full queue: \
         the writer fell behind the answers; or refused by the database): see their warnings",
        unexpected_missing.len()
    );
    // Every answered prediction is logged once, but those lost by design.
    assert!(
        unexpected_missing.is_empty(),
        "{} answered predictions are not in the log, and not a tail of the killed replica's \
         answers (its last logged answer was given at {}): {:#?}",
        unexpected_missing.len(),
        ms(last_committed),
        &unexpected_missing[..unexpected_missing.len().min(10)]
    );
    assert!(
        duplicates.is_empty(),
        "request ids with more than one row: {:?}",
        &duplicates[..duplicates.len().min(10)]
    );
    assert!(
        strangers.is_empty(),
        "logged request ids no client sent: {:?}",
        &strangers[..strangers.len().min(10)]
    );
    for (count, who) in served.iter().zip([
        "replica 1",
        "replica 2",
        "replica 2 after its restart",
        "replica 3",
    ]) {
        assert!(*count > 0, "{who} answered no request");
    }
}
