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
//!   one that has waited longest for a request's headers (idle or slow), as nginx drains idle
//!   keep-alive connections when it runs out; only when every connection is busy with a request
//!   does a new one wait in the listen queue.
//!
//! hyper has one timer for both waits (its `header_read_timeout` also runs while a kept-alive
//! connection is idle), and axum's `serve` sets neither, so the connection loop is ours: hyper
//! is given a timer of our own ([`HeadTimer`]) that knows, from the bytes the connection has
//! read, whether the client is idle or in the middle of its headers.

use http_body::Body as _;
use hyper::body::Incoming;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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

/// What the loop and a connection's timer share about one connection.
#[derive(Debug)]
struct ConnectionState {
    /// Bytes read from the client so far.
    bytes_read: AtomicU64,
    /// Request heads hyper has started to wait for (0 before the first).
    heads: AtomicU64,
    /// Since when the connection has been waiting for a request's headers, in microseconds
    /// since the server's epoch plus one (0: a request is being served).
    waiting_since: AtomicU64,
    /// Asks the connection to close (it was evicted for a new one).
    evict: Notify,
}

/// The live connections, for eviction.
#[derive(Debug)]
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<ConnectionState>>>,
}

impl Registry {
    fn micros_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX - 1)
    }

    fn add(&self) -> (u64, Arc<ConnectionState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            bytes_read: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            waiting_since: AtomicU64::new(self.micros_since_epoch(Instant::now()) + 1),
            evict: Notify::new(),
        });
        self.lock().insert(id, state.clone());
        (id, state)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        // The map is only ever changed by whole inserts and removes: a panic cannot leave it
        // half-changed, so a poisoned lock is taken over.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the connection that has waited longest for a request's headers to close, if any
    /// is waiting (the same one is asked again until it is gone: asking twice costs nothing).
    fn evict_longest_waiting(&self) {
        let live = self.lock();
        let oldest = live
            .values()
            .filter(|state| state.waiting_since.load(Ordering::Acquire) != 0)
            .min_by_key(|state| state.waiting_since.load(Ordering::Acquire));
        if let Some(state) = oldest {
            state.evict.notify_one();
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets every
/// request in flight finish, closes idle connections and returns.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        next_id: AtomicU64::new(0),
        live: Mutex::new(HashMap::new()),
    });
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
            limits,
            registry: registry.clone(),
            stopped: stopped.clone(),
        };
        tokio::spawn(connection.run(stream, peer, permit));
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: all slots back means all connections done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// One accepted connection and what it needs.
struct Connection {
    router: axum::Router,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr, _permit: OwnedSemaphorePermit) {
        // Answers are small and written whole: waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        let (id, state) = self.registry.add();
        let open = metrics::gauge!("mlserve_connections_open");
        open.increment(1.0);
        let timer = HeadTimer {
            state: state.clone(),
            registry: self.registry.clone(),
            limits: self.limits,
        };
        let io = hyper_util::rt::TokioIo::new(CountingStream {
            inner: stream,
            state: state.clone(),
        });
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let finished = Arc::new(AtomicBool::new(request.body().is_end_stream()));
            let body_read = finished.clone();
            let request = request.map(|inner| TrackedBody { inner, finished });
            let call = tower::ServiceExt::oneshot(router.clone(), request);
            // Boxed, so the connection is Unpin and can hand its socket back at the end.
            Box::pin(async move {
                let mut response = call.await?;
                if !body_read.load(Ordering::Acquire) {
                    // The answer came before the body was read (a body past the limit, a
                    // refused credential): hyper will close rather than read the rest, so say
                    // so, or the client may send its next request into a closing connection.
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(response)
            })
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(timer)
            // Our timer decides the real deadline; this only switches hyper's header timer on.
            .header_read_timeout(self.limits.keep_alive_timeout);
        let mut connection = builder.serve_connection(io, service);
        let mut closing = *self.stopped.borrow();
        if closing {
            Pin::new(&mut connection).graceful_shutdown();
        }
        let ended = loop {
            tokio::select! {
                result = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => {
                    break Some(result);
                }
                () = state.evict.notified(), if !closing => {
                    if state.waiting_since.load(Ordering::Acquire) != 0 {
                        // Waiting for headers: no request is lost by closing now.
                        metrics::counter!("mlserve_connections_evicted_total").increment(1);
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
        match ended {
            // Evicted, or cut off before its headers were in: no answer is on its way.
            None => {}
            Some(Err(error)) if error.is_timeout() => log_connection_end(&error, peer),
            Some(result) => {
                if let Err(error) = &result {
                    log_connection_end(error, peer);
                }
                let stream = connection.into_parts().io.into_inner().inner;
                linger(stream).await;
            }
        }
        self.registry.remove(id);
        open.decrement(1.0);
    }
}

/// Closes a connection in stages (RFC 9112 §9.6): half-close, so the client sees the end of
/// the answers at once, then read and drop whatever it still sends until it closes too. An
/// answer given before the request body was read (413 for a body past the limit, say) then
/// reaches the client: closing a socket with unread input would reset the connection, and a
/// reset makes the client's system drop an answer it has not read yet.
async fn linger(mut stream: TcpStream) {
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

/// A request body that notes whether it was read to its end.
struct TrackedBody {
    inner: Incoming,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Timeouts and resets are the client's doing, not the server's: logged at debug level.
fn log_connection_end(error: &hyper::Error, peer: SocketAddr) {
    if error.is_timeout() {
        metrics::counter!("mlserve_connections_timed_out_total").increment(1);
        tracing::debug!(%peer, "connection closed: the client was too slow to send its headers or idle too long");
    } else {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// The client's side of a connection, counting the bytes it sends so the timer can tell an
/// idle client from one in the middle of its headers.
struct CountingStream {
    inner: TcpStream,
    state: Arc<ConnectionState>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before) as u64;
        if read > 0 {
            self.state.bytes_read.fetch_add(read, Ordering::AcqRel);
        }
        polled
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// hyper's timer for one connection. In an HTTP/1 server hyper asks for a timer only to wait
/// for a request's headers: it arms one when it starts to wait and drops it once the headers
/// are in. Ours ends that wait at the header read timeout for a connection's first request and
/// from the first byte of each later one, and at the keep-alive timeout while a kept-alive
/// client sends nothing.
#[derive(Clone)]
struct HeadTimer {
    state: Arc<ConnectionState>,
    registry: Arc<Registry>,
    limits: ConnectionLimits,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(PlainSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = Instant::now();
        // The first wait starts as the connection opens: its headers are due at once.
        let generation = self.state.heads.fetch_add(1, Ordering::AcqRel) + 1;
        let first = generation == 1;
        self.state
            .waiting_since
            .store(self.registry.micros_since_epoch(now) + 1, Ordering::Release);
        let limit = if first {
            self.limits.header_read_timeout
        } else {
            self.limits.keep_alive_timeout
        };
        Box::pin(HeadSleep {
            sleep: Box::pin(tokio::time::sleep_until(now + limit)),
            state: self.state.clone(),
            bytes_at_arm: self.state.bytes_read.load(Ordering::Acquire),
            header_read_timeout: self.limits.header_read_timeout,
            counting_headers: first,
            generation,
        })
    }
}

/// A plain sleep, for any other wait hyper might ask for.
struct PlainSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for PlainSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for PlainSleep {}

/// One wait for a request's headers (see [`HeadTimer`]).
struct HeadSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    state: Arc<ConnectionState>,
    /// The connection's byte count when the wait began: more means the headers have begun.
    bytes_at_arm: u64,
    header_read_timeout: Duration,
    /// Whether the deadline is already the header read timeout's.
    counting_headers: bool,
    /// Which wait of the connection this is: a newer wait owns `waiting_since`.
    generation: u64,
}

impl Future for HeadSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // hyper polls this right after every read that left the headers incomplete, so the
        // first byte of a kept-alive connection's next request is seen as it arrives.
        if !this.counting_headers
            && this.state.bytes_read.load(Ordering::Acquire) > this.bytes_at_arm
        {
            this.counting_headers = true;
            let deadline = Instant::now() + this.header_read_timeout;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    /// The headers are in (or the connection is gone): no longer waiting.
    fn drop(&mut self) {
        if self.state.heads.load(Ordering::Acquire) == self.generation {
            self.state.waiting_since.store(0, Ordering::Release);
        }
    }
}
