//! HTTP/2 without TLS on the HTTP port ("h2c", prior knowledge: RFC 9113 §3.3), for gRPC on
//! platforms that give a container one port (Knative, KServe serverless). A connection whose
//! first bytes are HTTP/2's preface is served as HTTP/2; any other stays HTTP/1.1. The bytes
//! are peeked, not read, so an HTTP/1.1 connection loses nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait between looks while the bytes that arrived are the preface's beginning.
const LOOK_AGAIN: Duration = Duration::from_millis(5);

/// Whether the client opens with HTTP/2's preface, waiting at most `wait` for its bytes. An
/// HTTP/1.1 request differs from it in its first byte, so only an HTTP/2 client (or one that
/// sends nothing) waits.
pub(super) async fn opens_with_preface(stream: &TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut seen = [0u8; PREFACE.len()];
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut seen)).await;
        let count = match peeked {
            Ok(Ok(count)) if count > 0 => count,
            _ => return false,
        };
        if seen[..count] != PREFACE[..count] {
            return false;
        }
        if count == PREFACE.len() {
            return true;
        }
        if Instant::now() + LOOK_AGAIN > deadline {
            return false;
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

/// Streams one HTTP/2 connection may have open at once.
const MAX_STREAMS: u32 = 256;

/// How often an HTTP/2 connection looks whether it has been idle too long.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The calls in flight on one connection, and when the last one ended.
#[derive(Default)]
struct Activity {
    active: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Option<Instant>>,
}

/// Marks a call in flight until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: &Arc<Activity>) -> Busy {
        activity.active.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    /// Whether no call is in flight and none has been for `idle` (counted from `opened` when
    /// none has come yet).
    fn idle_for(&self, idle: Duration, opened: Instant) -> bool {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(opened);
        self.active.load(Ordering::Acquire) == 0 && last.elapsed() >= idle
    }
}

/// Serves one HTTP/2 connection with `router` until it ends, until it has had no call for
/// `idle` (the keep-alive timeout of HTTP/1.1 connections), or until `stopped` turns true; then
/// it finishes its streams in flight and closes. Keep-alive pings drop a peer that is gone.
pub(super) async fn serve<S>(
    stream: S,
    router: axum::Router,
    idle: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let calls = activity.clone();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let busy = Busy::enter(&calls);
            let request = request.map(axum::body::Body::new);
            let answer = tower::ServiceExt::oneshot(router.clone(), request);
            async move {
                let answered = answer.await;
                drop(busy);
                answered
            }
        });
    let connection = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(MAX_STREAMS)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    let opened = Instant::now();
    let mut checks = tokio::time::interval(IDLE_CHECK);
    let mut closing = *stopped.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP/2 connection ended with an error");
                }
                return;
            }
            changed = stopped.changed(), if !closing => {
                if changed.is_err() || *stopped.borrow() {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            _ = checks.tick(), if !closing => {
                if activity.idle_for(idle, opened) {
                    metrics::counter!("mlserve_connections_timed_out_total").increment(1);
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_preface_is_taken_for_http2() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for (sent, expected) in [
            (&PREFACE[..], true),
            (&b"POST /v2/models/iris/infer HTTP/1.1\r\n"[..], false),
            (&b"PRI * HTTP/1.1\r\n\r\n"[..], false),
        ] {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut client, sent)
                .await
                .unwrap();
            assert_eq!(
                opens_with_preface(&server, Duration::from_secs(2)).await,
                expected
            );
            // Peeked, not read: the bytes are still there.
            let mut first = [0u8; 3];
            server.peek(&mut first).await.unwrap();
            assert_eq!(&first, &sent[..3]);
        }
    }
}
