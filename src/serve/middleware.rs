//! Per-request plumbing: the request id, the timeout, and one log line per request.

use super::auth::slots::{Slot, take_slot};
use super::problem::Problem;
use super::request_metrics::InFlight;
use super::request_scope::RequestScope;
pub use super::request_scope::{ModelTag, SIGNED_IN, answered_by, current_request_id};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tower::{Layer, ServiceExt};

/// The header that carries the request id both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request: the caller's `x-request-id` when it is sane, else a new
/// time-ordered UUID (version 7). An extractor: handlers take it from the request's scope
/// (empty outside the request context middleware, which every served route passes).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestId(current_request_id().unwrap_or_default()))
    }
}

/// Who asked: the API key's or user's name, set by authentication.
#[derive(Debug, Clone)]
pub struct Caller(pub std::sync::Arc<str>);

/// Whether the client asks for a page (a browser): then errors come as HTML pages, and `/` is
/// the web UI rather than KServe V1's liveness answer.
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Whether a request is KServe V1's liveness check: `GET /` (or `HEAD /`) from a program, one
/// that does not ask for HTML. Like every probe it needs no credential and is never shed.
pub fn is_root_liveness(request: &Request) -> bool {
    let method = request.method();
    (method == axum::http::Method::GET || method == axum::http::Method::HEAD)
        && request.uri().path() == "/"
        && !wants_html(request.headers())
}

/// The content codings a request body may come in (RFC 9110 §8.4), decoded by tower-http's
/// request decompression: the body limits count the inflated bytes as they are read, so a
/// small body that inflates past `max_body_bytes` is refused without inflating the rest.
const CONTENT_CODINGS: [&str; 5] = ["gzip", "deflate", "br", "zstd", "identity"];

/// Content codings both ways: a request body in gzip, deflate, br or zstd is decompressed, and
/// an answer is compressed when the client asks (`Accept-Encoding`), both with tower-http. A
/// body in any other coding is refused: 415 naming it, with `Accept-Encoding` listing the ones
/// the server takes (RFC 9110 §15.5.16), in the error shape of the route's protocol. The
/// tower-http layers wrap only the requests that use a coding, so the others pay nothing.
pub async fn content_codings(mut request: Request, next: Next) -> Response {
    let decode = match request.headers().get(header::CONTENT_ENCODING) {
        None => false,
        Some(value) => {
            let coding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if !CONTENT_CODINGS.contains(&coding.as_str()) {
                let named = String::from_utf8_lossy(value.as_bytes()).into_owned();
                return unsupported_coding(&request, &named);
            }
            // Codings are case-insensitive; the decompression layer reads lower case.
            if let Ok(normalised) = HeaderValue::from_str(&coding) {
                request
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, normalised);
            }
            coding != "identity"
        }
    };
    let encode = request.headers().contains_key(header::ACCEPT_ENCODING);
    if encode {
        let inner =
            tower::service_fn(move |request: Request| decompressed(request, next.clone(), decode));
        match tower_http::compression::CompressionLayer::new()
            .layer(inner)
            .oneshot(request)
            .await
        {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        }
    } else {
        match decompressed(request, next, decode).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Runs the rest of the stack on the request, its body decompressed when `decode`.
async fn decompressed(
    request: Request,
    next: Next,
    decode: bool,
) -> Result<Response, std::convert::Infallible> {
    if !decode {
        return Ok(next.run(request).await);
    }
    let inner = tower::service_fn(move |request: axum::http::Request<_>| {
        let next = next.clone();
        async move {
            let request = request.map(axum::body::Body::new);
            Ok::<_, std::convert::Infallible>(next.run(request).await)
        }
    });
    let response = tower_http::decompression::RequestDecompressionLayer::new()
        .layer(inner)
        .oneshot(request)
        .await?;
    Ok(response.into_response())
}

/// 415 for a body in a coding the server cannot decode.
fn unsupported_coding(request: &Request, named: &str) -> Response {
    let detail = format!(
        "Content-Encoding '{named}' is not supported: send the body uncompressed or as gzip, deflate, br or zstd (one coding)"
    );
    let status = axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    let path = request.uri().path();
    let mut response = if super::protocol_error::is_protocol_path(path) {
        (status, axum::Json(serde_json::json!({ "error": detail }))).into_response()
    } else {
        // Inside the request's scope: the problem finds its request id itself.
        Problem::new(status, detail).into_response()
    };
    response.headers_mut().insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("gzip, deflate, br, zstd"),
    );
    response
}

/// An incoming id is kept only if it is short and plain, so it cannot inject into logs or headers.
fn accept_incoming_id(value: &HeaderValue) -> Option<String> {
    plain_request_id(value.to_str().ok()?)
}

/// A caller's request id, kept only when short and plain (every transport's rule).
pub fn plain_request_id(text: &str) -> Option<String> {
    let plain = (1..=128).contains(&text.len())
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        });
    plain.then(|| text.to_string())
}

/// A place among the requests in flight for this request, or why it is refused: beyond
/// `max_concurrent_requests` the request gets 503 with Retry-After, so an overloaded server
/// answers fast instead of queueing until every request times out. Health probes are always
/// answered (`Ok(None)`).
fn shed_load(app: &super::App, request: &Request) -> Result<Option<Slot>, String> {
    if super::health::is_probe(request.uri().path()) || is_root_liveness(request) {
        return Ok(None);
    }
    take_slot(app).map(Some)
}

/// Assigns the request id, sheds load beyond the in-flight limit ([`shed_load`]),
/// applies the timeout and the content codings, and logs the request when it is answered. One
/// middleware for all of these: each layer a request passes costs it allocations and clones.
pub async fn request_context(
    State(app): State<super::App>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let timeout = app.settings.request_timeout();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(accept_incoming_id)
        // Version 7: time-ordered, so the prediction log's request-id index grows at its end
        // instead of at random places (which made every write rewrite pages all over it).
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = request.method().clone();
    // Both shared, not copied: a URI and a matched path clone by reference count.
    let uri = request.uri().clone();
    let path = uri.path();
    let matched = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
    let in_flight = InFlight::enter();
    // The id and arrival time go in the task's scope, not in extensions: each extension
    // costs the request a hash-table insert, and the first allocates the table.
    let scope = RequestScope {
        id: id.clone(),
        started,
        answered_by: std::sync::OnceLock::new(),
    };
    let answered = super::request_scope::REQUEST.scope(scope, async {
        let answer = match shed_load(&app, &request) {
            Ok(slot) => {
                // Content codings here rather than in a layer of their own: one layer less.
                let answer = tokio::time::timeout(timeout, content_codings(request, next)).await;
                drop(slot);
                answer
            }
            Err(detail) => Ok(Problem::unavailable(detail, 1).answer_for(path)),
        };
        let answered_by =
            super::request_scope::REQUEST.with(|scope| scope.answered_by.get().cloned());
        (answer, answered_by)
    });
    let (answer, answered_by) = answered.await;
    let mut response = match answer {
        Ok(response) => response,
        Err(_) => Problem::unavailable(
            format!(
                "the request took longer than {:.1} s and was stopped",
                timeout.as_secs_f64()
            ),
            1,
        )
        .with_request_id(&id)
        .answer_for(path),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    drop(in_flight);
    let tag = answered_by.as_ref();
    let seconds = started.elapsed().as_secs_f64();
    super::request_metrics::record(route, &method, response.status(), tag, seconds);
    tracing::info!(
        target: "mlserve::access",
        request_id = id.as_str(),
        method = method.as_str(),
        path,
        model = tag.map_or("", |t| t.model.as_str()),
        version = tag.map_or("", |t| t.version.as_str()),
        status = response.status().as_u16(),
        latency_ms = (seconds * 1e6).round() / 1e3,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_are_kept_only_when_plain() {
        assert_eq!(
            accept_incoming_id(&HeaderValue::from_static("abc-123")),
            Some("abc-123".into())
        );
        assert_eq!(
            accept_incoming_id(&HeaderValue::from_static("has space")),
            None
        );
        assert_eq!(
            accept_incoming_id(&HeaderValue::from_str(&"a".repeat(129)).unwrap()),
            None
        );
    }
}
