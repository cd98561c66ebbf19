//! The Open Inference Protocol over gRPC: `inference.GRPCInferenceService` (the six RPCs that
//! tritonclient.grpc and the kserve SDK call), the standard health service following readiness,
//! and server reflection (v1 and v1alpha, which grpcurl asks for), on a listener of its own
//! (`grpc_addr`, default 127.0.0.1:8081 as KServe uses).
//!
//! One more thin adapter over the one predict path: [`service`] turns each RPC into what
//! REST's V2 routes call, [`tensors`] converts protobuf tensors, [`call`] gives every call
//! the request id, in-flight limit, credentials, rate limit, timeout, metrics and access log
//! REST's middleware gives a request, and [`status`] maps refusals to gRPC codes.

mod admit;
mod call;
pub mod health;
mod limits;
mod pb;
mod service;
pub mod status;
mod tensors;
mod tls_incoming;

use crate::serve::state::App;
use std::future::Future;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

/// Streams one HTTP/2 connection may have open at once (gRPC's own servers default to 100).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// The gRPC services of `app`, and the reporter of their health (NOT_SERVING until
/// [`health::follow_readiness`] says otherwise). Fails only if the descriptor sets built into
/// the binary cannot be read by reflection.
pub async fn routes(
    app: &App,
) -> Result<(Routes, HealthReporter), tonic_reflection::server::Error> {
    let limit = app.settings.grpc_max_message_bytes;
    let inference = pb::grpc_inference_service_server::GrpcInferenceServiceServer::new(
        service::InferenceService::new(app.clone()),
    )
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit)
    // Requests may come compressed (tritonclient's compression_algorithm); answers do not,
    // since compressing floats costs more time than it saves on a data-centre network.
    .accept_compressed(CompressionEncoding::Gzip)
    .accept_compressed(CompressionEncoding::Deflate)
    .accept_compressed(CompressionEncoding::Zstd);
    let inference = limits::MessageLimit::new(admit::Admission::new(inference, app.clone()), limit);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    // Until the models are loaded, as REST's readiness answers 503 until then.
    health::stop_serving(&reporter, app).await;
    // Each version lists the other too: a client sees every service whichever it asks.
    let reflection = |other_version: &'static [u8]| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(other_version)
    };
    let routes = Routes::new(inference)
        .add_service(health_service)
        .add_service(reflection(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET).build_v1()?)
        .add_service(reflection(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET).build_v1alpha()?);
    Ok((routes, reporter))
}

/// Serves `routes` on `listener` (TCP_NODELAY on every connection: without it a 1,000-row
/// answer waits on Nagle's algorithm and the client's delayed ACK, 44 ms instead of 0.1 ms)
/// until `stop` resolves, then lets calls in flight finish. With `tls`, every connection is
/// TLS (ALPN `h2`), its handshake due within `handshake_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_timeout: std::time::Duration,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    // Keep-alive pings drop dead peers; a cap on streams per connection bounds what one client
    // holds open (the in-flight limit bounds the calls being answered).
    let mut server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let router = server.add_routes(routes);
    match tls {
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, stop).await
        }
        Some(acceptor) => {
            let incoming = tls_incoming::TlsIncoming::new(listener, acceptor, handshake_timeout);
            router.serve_with_incoming_shutdown(incoming, stop).await
        }
    }
}
