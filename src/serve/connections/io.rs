//! The wrappers that tell a connection's [`ConnectionState`] what happens on it: bytes arriving
//! from the client, a request body read to its end, an answer's body written out.

use super::registry::ConnectionState;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client's connection (a socket, or TLS over it), noting when bytes arrive (the start of
/// a request's headers).
pub(super) struct WatchedStream<S> {
    inner: S,
    state: Arc<ConnectionState>,
}

impl<S> WatchedStream<S> {
    pub(super) fn new(inner: S, state: Arc<ConnectionState>) -> Self {
        WatchedStream { inner, state }
    }

    /// The connection back, for a lingering close.
    pub(super) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that notes on its connection whether it was read to its end.
pub(super) struct TrackedBody {
    inner: Incoming,
    state: Arc<ConnectionState>,
}

impl TrackedBody {
    pub(super) fn new(inner: Incoming, state: Arc<ConnectionState>) -> Self {
        TrackedBody { inner, state }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.state.body_finished();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that marks the connection as waiting for its next request once it has
/// been written out (or dropped), so a long download is never taken for an idle connection.
pub(super) struct AnsweredBody {
    inner: axum::body::Body,
    state: Option<Arc<ConnectionState>>,
}

impl AnsweredBody {
    pub(super) fn new(inner: axum::body::Body, state: Arc<ConnectionState>) -> Self {
        AnsweredBody {
            inner,
            state: Some(state),
        }
    }

    fn done(&mut self) {
        if let Some(state) = self.state.take() {
            state.answered();
        }
    }
}

impl Body for AnsweredBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AnsweredBody {
    fn drop(&mut self) {
        self.done();
    }
}
