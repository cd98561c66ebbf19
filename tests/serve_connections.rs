//! Connection bounds over raw sockets on 127.0.0.1: the header read timeout, the keep-alive
//! timeout, and slowloris clients against a server with few file descriptors, whose probes
//! must still answer.

mod common;

use common::process::spawn_server_with_open_files;
use common::{TestServer, demo_repository, test_settings};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIVE: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n";

/// Reads one answer to [`LIVE`]; panics unless it is the liveness body.
async fn read_live_answer(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.ends_with(b"{\"status\":\"live\"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// Waits up to `limit` for the server to close `stream`; true if it did.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // Whatever hyper says on its way out (nothing, today) is not an answer we wait for.
            Ok(Ok(_)) => continue,
        }
    }
}

fn settings_with_timeouts(models: &std::path::Path) -> mlserve::config::Settings {
    mlserve::config::Settings {
        header_read_timeout_secs: 1.0,
        keep_alive_timeout_secs: 3.0,
        ..test_settings(models)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_is_closed_at_the_header_read_timeout() {
    let models = demo_repository();
    let server = TestServer::start(settings_with_timeouts(models.path())).await;
    let mut silent = TcpStream::connect(server.server.addr).await.unwrap();
    let opened = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        opened.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kept_alive_connections_idle_up_to_the_keep_alive_timeout_not_the_header_timeout() {
    let models = demo_repository();
    let server = TestServer::start(settings_with_timeouts(models.path())).await;
    let mut stream = TcpStream::connect(server.server.addr).await.unwrap();
    stream.write_all(LIVE).await.unwrap();
    read_live_answer(&mut stream).await;
    // Idle for twice the header read timeout: still open, and answers the next request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream.write_all(LIVE).await.unwrap();
    read_live_answer(&mut stream).await;
    // Idle past the keep-alive timeout: closed.
    let idle = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    assert!(
        idle.elapsed() >= Duration::from_millis(2900),
        "closed before the keep-alive timeout: {:?}",
        idle.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_sent_slowly_on_a_kept_alive_connection_are_cut_at_the_header_timeout() {
    let models = demo_repository();
    let server = TestServer::start(settings_with_timeouts(models.path())).await;
    let mut stream = TcpStream::connect(server.server.addr).await.unwrap();
    stream.write_all(LIVE).await.unwrap();
    read_live_answer(&mut stream).await;
    // One header byte every 200 ms: the connection is never idle, yet its headers never end.
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /health/live HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa".iter() {
        if stream.write_all(&[*byte]).await.is_err()
            || closed_within(&mut stream, Duration::from_millis(200)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "closed only after {elapsed:?}: the keep-alive timeout, not the header timeout"
    );
}

/// Opens a connection that sends a request line and then one header byte every 500 ms, and
/// returns how long the server took to close it (`None`: still open after `limit`).
async fn slowloris(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.ok()?;
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .is_err()
    {
        return Some(started.elapsed());
    }
    while started.elapsed() < limit {
        if stream.write_all(b"a").await.is_err()
            || closed_within(&mut stream, Duration::from_millis(500)).await
        {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_clients_cannot_starve_the_probes_under_a_low_descriptor_limit() {
    let models = demo_repository();
    let cwd = tempfile::tempdir().unwrap();
    let models_dir = models.path().to_str().unwrap();
    let server = spawn_server_with_open_files(
        cwd.path(),
        &[
            "serve",
            "--models",
            models_dir,
            "--prediction-log",
            "false",
            "--header-read-timeout-secs",
            "3",
        ],
        &[],
        256,
    );
    // max_connections is lowered to what 256 descriptors leave room for.
    let listening = server.start_up_lines.last().unwrap();
    let event: serde_json::Value = serde_json::from_str(listening).unwrap();
    let max_connections = event["max_connections"].as_u64().unwrap();
    assert!(
        (64..256).contains(&max_connections),
        "max_connections {max_connections} under a limit of 256"
    );
    let addr: SocketAddr = server.addr.parse().unwrap();
    // More slow clients than the server has descriptors, for longer than the header timeout.
    let attackers: Vec<_> = (0..300)
        .map(|_| tokio::spawn(slowloris(addr, Duration::from_secs(12))))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut answered = 0;
    for _ in 0..10 {
        let response = client
            .get(format!("http://{addr}/health/ready"))
            .send()
            .await
            .expect("the readiness probe answers within 2 s while slow clients hold connections");
        assert_eq!(response.status(), 200);
        answered += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(answered, 10);
    // Every slow client was closed by the server: evicted, or cut at the header timeout.
    for attacker in attackers {
        let closed_after = attacker.await.unwrap();
        let closed_after = closed_after.expect("a slow client was still connected after 12 s");
        assert!(closed_after < Duration::from_secs(11), "{closed_after:?}");
    }
    let response = client
        .post(format!("http://{addr}/api/models/iris/predict"))
        .json(&serde_json::json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
