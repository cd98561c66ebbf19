//! HTTP/2 without TLS on the HTTP port ("h2c", prior knowledge: RFC 9113 §3.3), for gRPC on
//! platforms that give a container one port (Knative, KServe serverless). A connection whose
//! first bytes are HTTP/2's preface is served as HTTP/2; any other stays HTTP/1.1. The bytes
//! are peeked, not read, so an HTTP/1.1 connection loses nothing.

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

/// Serves one HTTP/2 connection with `router` until it ends, or until `stopped` turns true
/// (then it finishes its streams in flight and closes).
pub(super) async fn serve<S>(
    stream: S,
    router: axum::Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            tower::ServiceExt::oneshot(router.clone(), request.map(axum::body::Body::new))
        });
    let connection = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
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
