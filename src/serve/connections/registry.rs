//! What the accept loop knows of each live connection: whether it is serving a request or
//! waiting for one, since when, and whether the client has begun its next request's headers.
//! One sweeper closes connections past their deadlines; at the connection limit, the one that
//! has waited longest for headers is closed to make room.

use super::ConnectionLimits;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One connection's state, shared by its task, its socket and the sweeper. Times are
/// microseconds since the registry's epoch, plus one, so that 0 can mean "not set".
#[derive(Debug)]
pub(super) struct ConnectionState {
    epoch: Instant,
    /// Since when the connection has waited for a request's headers; 0 while it serves one.
    waiting_since: AtomicU64,
    /// When the client sent the first byte of the next request's headers; 0 if it has not.
    headers_begun: AtomicU64,
    /// Requests answered on this connection.
    answered: AtomicU64,
    /// Set when the sweeper closes the connection for a timeout (else: evicted).
    timed_out: AtomicBool,
    /// Whether the current request's body has been read to its end.
    body_read: AtomicBool,
    /// Asks the connection's task to close it.
    close: Notify,
}

impl ConnectionState {
    fn now(&self) -> u64 {
        let micros = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_micros();
        u64::try_from(micros).unwrap_or(u64::MAX - 1) + 1
    }

    /// hyper has read a request's headers and calls the service; `body_read`: the request has
    /// no body left to read.
    pub(super) fn serving(&self, body_read: bool) {
        self.waiting_since.store(0, Ordering::Release);
        self.headers_begun.store(0, Ordering::Release);
        self.body_read.store(body_read, Ordering::Release);
    }

    /// The request's body has been read to its end.
    pub(super) fn body_finished(&self) {
        self.body_read.store(true, Ordering::Release);
    }

    /// Whether the request's body has been read to its end.
    pub(super) fn body_was_read(&self) -> bool {
        self.body_read.load(Ordering::Acquire)
    }

    /// The answer has been written: the connection waits for the next request.
    pub(super) fn answered(&self) {
        self.answered.fetch_add(1, Ordering::AcqRel);
        self.headers_begun.store(0, Ordering::Release);
        self.waiting_since.store(self.now(), Ordering::Release);
    }

    /// The client sent bytes: while waiting, the first of them starts the header clock.
    pub(super) fn bytes_arrived(&self) {
        if self.waiting_since.load(Ordering::Acquire) != 0
            && self.headers_begun.load(Ordering::Acquire) == 0
        {
            self.headers_begun.store(self.now(), Ordering::Release);
        }
    }

    /// Whether the connection is waiting for a request (no answer would be lost by closing).
    pub(super) fn is_waiting(&self) -> bool {
        self.waiting_since.load(Ordering::Acquire) != 0
    }

    /// Whether the sweeper closed it for a timeout.
    pub(super) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire)
    }

    /// Resolves when the connection is asked to close.
    pub(super) async fn close_requested(&self) {
        self.close.notified().await;
    }

    /// The moment past which a waiting connection is closed: the header read timeout from the
    /// connection's start (first request) or from the first byte of a later request's headers,
    /// else the keep-alive timeout from the last answer.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<u64> {
        let waiting_since = self.waiting_since.load(Ordering::Acquire);
        if waiting_since == 0 {
            return None;
        }
        let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2);
        let headers_begun = self.headers_begun.load(Ordering::Acquire);
        Some(if self.answered.load(Ordering::Acquire) == 0 {
            // The first request's headers are due from the connection's start, however
            // slowly their bytes come.
            waiting_since.saturating_add(micros(limits.header_read_timeout))
        } else if headers_begun != 0 {
            headers_begun.saturating_add(micros(limits.header_read_timeout))
        } else {
            waiting_since.saturating_add(micros(limits.keep_alive_timeout))
        })
    }
}

/// The live connections.
#[derive(Debug)]
pub(super) struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<ConnectionState>>>,
}

impl Registry {
    pub(super) fn new() -> Self {
        Registry {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Registers a new connection, waiting for its first request.
    pub(super) fn add(&self) -> (u64, Arc<ConnectionState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            epoch: self.epoch,
            waiting_since: AtomicU64::new(0),
            headers_begun: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
            body_read: AtomicBool::new(true),
            close: Notify::new(),
        });
        state.waiting_since.store(state.now(), Ordering::Release);
        self.lock().insert(id, state.clone());
        (id, state)
    }

    pub(super) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        // The map is only ever changed by whole inserts and removes: a panic cannot leave it
        // half-changed, so a poisoned lock is taken over.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the connection that has waited longest for a request to close, if any is waiting
    /// (the same one is asked again until it is gone: asking twice costs nothing).
    pub(super) fn evict_longest_waiting(&self) {
        let live = self.lock();
        let oldest = live
            .values()
            .filter(|state| state.is_waiting())
            .min_by_key(|state| state.waiting_since.load(Ordering::Acquire));
        if let Some(state) = oldest {
            state.close.notify_one();
        }
    }

    /// Asks every connection past its deadline to close.
    pub(super) fn sweep(&self, limits: &ConnectionLimits) {
        let live = self.lock();
        let Some(now) = live.values().next().map(|state| state.now()) else {
            return;
        };
        for state in live.values() {
            if state
                .deadline(limits)
                .is_some_and(|deadline| now >= deadline)
            {
                state.timed_out.store(true, Ordering::Release);
                state.close.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
            max_connections: 10,
        }
    }

    #[test]
    fn deadlines_follow_the_connections_phase() {
        let registry = Registry::new();
        let (_, state) = registry.add();
        let start = state.waiting_since.load(Ordering::Acquire);
        // First request: the header timeout from the start, even once bytes arrive.
        assert_eq!(state.deadline(&limits()), Some(start + 10_000_000));
        std::thread::sleep(Duration::from_millis(2));
        state.bytes_arrived();
        assert_eq!(state.deadline(&limits()), Some(start + 10_000_000));
        state.serving(true);
        assert_eq!(state.deadline(&limits()), None, "no deadline while serving");
        state.answered();
        let idle_from = state.waiting_since.load(Ordering::Acquire);
        // Idle after an answer: the keep-alive timeout.
        assert_eq!(state.deadline(&limits()), Some(idle_from + 75_000_000));
        // Headers begun: the header timeout from their first byte.
        state.bytes_arrived();
        let begun = state.headers_begun.load(Ordering::Acquire);
        assert_eq!(state.deadline(&limits()), Some(begun + 10_000_000));
    }
}
