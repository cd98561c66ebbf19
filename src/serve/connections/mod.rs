//! Accepting connections with bounds, so slow or idle clients cost a bounded number of file
//! descriptors and the probes always get an answer.
//!
//! - **Header read timeout** (`header_read_timeout_secs`): a client must send a request's headers
//!   within this time, counted from the connection's start for its first request and from the
//!   first byte of each later one. A slowloris client (one header byte every few seconds) is
//!   cut off.
//! - **Keep-alive timeout** (`keep_alive_timeout_secs`): an idle kept-alive connection is closed
//!   after this time. Its default (75 s) is longer than the shipped nginx upstream's 60 s, so the
//!   proxy, which knows whether it is about to reuse a connection, closes first.
//! - **Most connections** (`max_connections`): never more than the open-file limit leaves after
//!   room for model files, the database and logs. At the limit, a new connection evicts the
//!   one that has waited longest for a request (idle or slow), as nginx drains idle keep-alive
//!   connections when it runs out; only when every connection is busy with a request does a new
//!   one wait in the listen queue.
//! - **Lingering close**: a connection closes in stages, so an answer given before the request
//!   body was read still reaches the client ([`linger`]).
//!
//! hyper has one timer for both waits (its `header_read_timeout` also runs while a kept-alive
//! connection is idle), and axum's `serve` sets neither, so the connection loop is ours. A
//! connection's phase (serving, or waiting since when, and whether the next headers have begun)
//! is kept in a few atomics ([`registry`]), set as hyper calls the service, as the answer's
//! body ends and as bytes arrive ([`io`]); one sweeper task closes what is past its deadline.
//! That costs a request two atomic stores, where a timer per request would cost a timer-wheel
//! entry and wake the runtime's timer driver.

mod h2c;
mod io;
mod registry;

use io::{AnsweredBody, TrackedBody, WatchedStream};
use registry::{ConnectionState, Registry};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// File descriptors kept free of connections for model files, the database, logs and the
/// repository watch: at least this many, or a tenth of the limit if that is more.
const RESERVED_DESCRIPTORS: u64 = 64;

/// A closing connection reads what the client still sends for at most this long in all...
const LINGER_TOTAL: Duration = Duration::from_secs(5);
/// ...and this long without anything arriving.
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// How often a connection accepted at the limit looks again for one to close.
const EVICTION_RETRY: Duration = Duration::from_millis(20);

/// How often the sweeper closes connections past their deadlines: the timeouts' resolution.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// The bounds on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may stay idle between requests.
    pub keep_alive_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits of these settings, with `max_connections` lowered to what the process's
    /// open-file limit allows (the soft limit is first raised to the hard one, as Go's runtime
    /// does, since a server's default soft limit of 1,024 is an accident of history).
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let wanted = settings.max_connections;
        let allowed = descriptor_room().map_or(wanted, |room| wanted.min(room));
        if allowed < wanted {
            tracing::warn!(
                max_connections = wanted,
                allowed,
                "max_connections lowered to what the open-file limit (ulimit -n) allows"
            );
        }
        ConnectionLimits {
            header_read_timeout: settings.header_read_timeout(),
            keep_alive_timeout: settings.keep_alive_timeout(),
            max_connections: allowed.max(1),
        }
    }
}

/// Connections the open-file limit leaves room for, after raising the soft limit to the hard
/// one; `None` where the platform has no such limit.
fn descriptor_room() -> Option<usize> {
    #[cfg(unix)]
    {
        let limit = rlimit::increase_nofile_limit(u64::MAX).ok()?;
        let reserve = RESERVED_DESCRIPTORS.max(limit / 10);
        let room = limit.saturating_sub(reserve).max(1);
        Some(usize::try_from(room).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets every
/// request in flight finish, closes idle connections and returns. With `h2c`, a connection
/// that opens with HTTP/2's preface (or, with `tls`, one that chose `h2` by ALPN) is served by
/// that router as HTTP/2 instead ([`h2c`]). With `tls`, every connection is TLS, its handshake
/// due within the header read timeout.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    h2c: Option<axum::Router>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::new());
    let sweeper = tokio::spawn(sweep(registry.clone(), limits));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was accepted: the
                    // listener itself is fine, so wait a moment and go on.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                metrics::counter!("mlserve_connections_at_limit_total").increment(1);
                // Busy connections may go idle while this one waits: look again now and then.
                let waited = loop {
                    registry.evict_longest_waiting();
                    tokio::select! {
                        () = &mut shutdown => break None,
                        permit = slots.clone().acquire_owned() => break permit.ok(),
                        () = tokio::time::sleep(EVICTION_RETRY) => {}
                    }
                };
                match waited {
                    Some(permit) => permit,
                    None => break,
                }
            }
        };
        let connection = Connection {
            router: router.clone(),
            registry: registry.clone(),
            stopped: stopped.clone(),
        };
        let served = accepted(
            stream,
            peer,
            permit,
            connection,
            h2c.clone(),
            tls.clone(),
            limits,
        );
        tokio::spawn(served);
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: all slots back means all connections done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    sweeper.abort();
    Ok(())
}

/// Serves one accepted connection: TLS first when on, then HTTP/2 when the client chose it
/// (ALPN `h2`, or HTTP/2's preface without TLS) and `h2c` serves it, HTTP/1.1 otherwise.
async fn accepted(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    connection: Connection,
    h2c: Option<axum::Router>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
) {
    // Answers are small and written whole: waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    let wait = limits.header_read_timeout;
    match tls {
        Some(acceptor) => {
            let Some(stream) = super::tls::handshake(&acceptor, stream, wait, peer).await else {
                return;
            };
            let chose_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let http2 = h2c.filter(|_| chose_h2);
            serve_as(stream, http2, connection, peer, permit, limits).await;
        }
        None => {
            let http2 = match h2c {
                Some(router) if h2c::opens_with_preface(&stream, wait).await => Some(router),
                _ => None,
            };
            serve_as(stream, http2, connection, peer, permit, limits).await;
        }
    }
}

/// Serves a connection as HTTP/2 with `http2`'s router when given, as HTTP/1.1 otherwise.
async fn serve_as<S>(
    stream: S,
    http2: Option<axum::Router>,
    connection: Connection,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    limits: ConnectionLimits,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match http2 {
        Some(router) => {
            let _permit = permit;
            let idle = limits.keep_alive_timeout;
            h2c::serve(stream, router, idle, connection.stopped).await;
        }
        None => connection.run(stream, peer, permit).await,
    }
}

/// Closes connections past their deadlines, every [`SWEEP_EVERY`].
async fn sweep(registry: Arc<Registry>, limits: ConnectionLimits) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        registry.sweep(&limits);
    }
}

/// One accepted connection and what it needs.
struct Connection {
    router: axum::Router,
    registry: Arc<Registry>,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    async fn run<S>(mut self, stream: S, peer: SocketAddr, _permit: OwnedSemaphorePermit)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (id, state) = self.registry.add();
        let open = metrics::gauge!("mlserve_connections_open");
        open.increment(1.0);
        let io = hyper_util::rt::TokioIo::new(WatchedStream::new(stream, state.clone()));
        let service = service(self.router.clone(), state.clone());
        let mut connection =
            hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        let mut closing = *self.stopped.borrow();
        if closing {
            Pin::new(&mut connection).graceful_shutdown();
        }
        let ended = loop {
            tokio::select! {
                result = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => {
                    break Some(result);
                }
                () = state.close_requested(), if !closing => {
                    if state.is_waiting() {
                        // Waiting for a request: no answer is lost by closing now.
                        count_close(&state, peer);
                        break None;
                    }
                    // A request started meanwhile: close once it is answered.
                    closing = true;
                    Pin::new(&mut connection).graceful_shutdown();
                }
                changed = self.stopped.changed(), if !closing => {
                    if changed.is_err() || *self.stopped.borrow() {
                        closing = true;
                        Pin::new(&mut connection).graceful_shutdown();
                    }
                }
            }
        };
        // Closed while waiting for a request: no answer is on its way, nothing to linger for.
        if let Some(result) = ended {
            if let Err(error) = &result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            linger(connection.into_parts().io.into_inner().into_inner()).await;
        }
        self.registry.remove(id);
        open.decrement(1.0);
    }
}

/// The router as hyper's service: each request marks the connection as serving, its answer's
/// end marks it waiting again, and an answer given before the body was read says it closes.
fn service(
    router: axum::Router,
    state: Arc<ConnectionState>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<AnsweredBody>,
    Error = std::convert::Infallible,
    Future = Answer,
> + Unpin {
    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        state.serving(http_body::Body::is_end_stream(request.body()));
        let request = request.map(|inner| TrackedBody::new(inner, state.clone()));
        let call = tower::ServiceExt::oneshot(router.clone(), request);
        let state = state.clone();
        // Boxed, so the connection is Unpin and can hand its socket back at the end.
        let answer: Answer = Box::pin(async move {
            let Ok(mut response) = call.await;
            if !state.body_was_read() {
                // The answer came before the body was read (a body past the limit, a refused
                // credential): hyper will close rather than read the rest, so say so, or the
                // client may send its next request into a closing connection.
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            Ok(response.map(|body| AnsweredBody::new(body, state)))
        });
        answer
    })
}

/// The future of one answer.
type Answer = Pin<
    Box<
        dyn Future<Output = Result<hyper::Response<AnsweredBody>, std::convert::Infallible>> + Send,
    >,
>;

/// Counts a connection the registry asked to close while it waited.
fn count_close(state: &ConnectionState, peer: SocketAddr) {
    if state.timed_out() {
        metrics::counter!("mlserve_connections_timed_out_total").increment(1);
        tracing::debug!(%peer, "connection closed: the client was too slow to send its headers or idle too long");
    } else {
        metrics::counter!("mlserve_connections_evicted_total").increment(1);
    }
}

/// Closes a connection in stages (RFC 9112 §9.6): half-close, so the client sees the end of
/// the answers at once, then read and drop whatever it still sends until it closes too. An
/// answer given before the request body was read (413 for a body past the limit, say) then
/// reaches the client: closing a socket with unread input would reset the connection, and a
/// reset makes the client's system drop an answer it has not read yet.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let until = Instant::now() + LINGER_TOTAL;
    let mut scratch = [0u8; 8192];
    loop {
        let quiet_until = (Instant::now() + LINGER_IDLE).min(until);
        match tokio::time::timeout_at(quiet_until, stream.read(&mut scratch)).await {
            Ok(Ok(read)) if read > 0 => continue,
            _ => return,
        }
    }
}
