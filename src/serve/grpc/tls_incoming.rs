//! The gRPC listener's connections over TLS: accepted, TCP_NODELAY set, and handshaken each on
//! a task of its own (a slow or silent client holds no other back), within a deadline; those
//! that complete are handed to tonic in the order they finish.

use crate::serve::tls::handshake;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;

/// Handshaken connections waiting for tonic to take them.
const READY_CONNECTIONS: usize = 64;

/// A stream of TLS connections accepted on a listener; dropping it stops accepting.
pub struct TlsIncoming {
    ready: mpsc::Receiver<std::io::Result<TlsStream<TcpStream>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsIncoming {
    /// Accepts on `listener`, each handshake due within `wait`.
    pub fn new(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, wait: Duration) -> Self {
        let (sender, ready) = mpsc::channel(READY_CONNECTIONS);
        let accepting = tokio::spawn(accept(listener, acceptor, wait, sender));
        TlsIncoming { ready, accepting }
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Stream for TlsIncoming {
    type Item = std::io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ready.poll_recv(cx)
    }
}

async fn accept(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    wait: Duration,
    ready: mpsc::Sender<std::io::Result<TlsStream<TcpStream>>>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or a reset before accept: the listener is fine.
                tracing::warn!(%error, "cannot accept a gRPC connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            if let Some(connection) = handshake(&acceptor, stream, wait, peer).await {
                let _ = ready.send(Ok(connection)).await;
            }
        });
    }
}
