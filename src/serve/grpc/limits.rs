//! The message size limit's refusal in gRPC's terms. tonic refuses a message past
//! `max_decoding_message_size` with OUT_OF_RANGE and its own words before any handler runs;
//! gRPC's own servers say RESOURCE_EXHAUSTED for that (what clients retry on, or not, by
//! code), so the answer is rewritten with that code and a message naming the setting.

use axum::http::{HeaderValue, Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::server::NamedService;

/// tonic's message for a message past the limit begins so (percent-encoded in grpc-message).
const TOO_LARGE: &[u8] = b"Error,%20decoded%20message%20length%20too%20large";

/// A gRPC service whose too-large-message refusals say RESOURCE_EXHAUSTED and name the setting.
#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> MessageLimit<S> {
    /// `inner`, whose decoding limit is `limit` bytes.
    pub fn new(inner: S, limit: usize) -> Self {
        MessageLimit { inner, limit }
    }
}

impl<S: NamedService> NamedService for MessageLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> tower::Service<Request<B>> for MessageLimit<S>
where
    S: tower::Service<Request<B>, Response = Response<R>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        let limit = self.limit;
        Box::pin(async move {
            let mut response = answer.await?;
            restate_too_large(&mut response, limit);
            Ok(response)
        })
    }
}

/// Rewrites a trailers-only OUT_OF_RANGE answer for a message past the limit.
fn restate_too_large<R>(response: &mut Response<R>, limit: usize) {
    let headers = response.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() == b"11");
    let too_large = headers
        .get("grpc-message")
        .is_some_and(|message| message.as_bytes().starts_with(TOO_LARGE));
    if !(out_of_range && too_large) {
        return;
    }
    // grpc-message is percent-encoded (tonic decodes it as such).
    let message = format!(
        "the message is larger than the server takes: at most {limit} bytes (setting \
         grpc_max_message_bytes); send fewer rows per call"
    )
    .replace(' ', "%20");
    headers.insert("grpc-status", HeaderValue::from_static("8"));
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_too_large_refusal_is_restated() {
        let mut response = Response::new(());
        let headers = response.headers_mut();
        headers.insert("grpc-status", HeaderValue::from_static("11"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("Error,%20decoded%20message%20length%20too%20large:%20found"),
        );
        restate_too_large(&mut response, 1024);
        assert_eq!(response.headers()["grpc-status"], "8");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("grpc_max_message_bytes"), "{message}");
        let mut other = Response::new(());
        other
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static("11"));
        restate_too_large(&mut other, 1024);
        assert_eq!(other.headers()["grpc-status"], "11");
    }
}
