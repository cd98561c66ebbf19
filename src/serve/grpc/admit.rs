//! Admission of a gRPC call before its message is read: the request id, a place among the
//! requests in flight (shared with REST) and the caller's credentials from the headers, as
//! REST's layers decide before the body is read. tonic reads and decodes the whole message
//! before calling a handler, so a call without credentials, or past the in-flight limit, must
//! be refused here or it would cost the server its message's memory first.

use super::call::{Admitted, REQUEST_ID, code_name, denied, record};
use crate::serve::auth::{self, Access};
use crate::serve::middleware::plain_request_id;
use crate::serve::state::App;
use axum::http::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::Status;
use tonic::server::NamedService;

/// A gRPC service whose calls are admitted before their message is read.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    app: App,
}

impl<S> Admission<S> {
    /// `inner`, admitting its calls by `app`'s limits and credentials.
    pub fn new(inner: S, app: App) -> Self {
        Admission { inner, app }
    }
}

impl<S: NamedService> NamedService for Admission<S> {
    const NAME: &'static str = S::NAME;
}

/// What a method needs: the probes (ServerLive, ServerReady) are open and never shed, as
/// REST's are; everything else needs a key or user of any role.
fn access_of(path: &str) -> Access {
    match path.rsplit('/').next() {
        Some("ServerLive" | "ServerReady") => Access::Open,
        _ => Access::Predict,
    }
}

/// The method's name, for the metrics and the log of a call refused here.
fn method_of(path: &str) -> &'static str {
    match path.rsplit('/').next() {
        Some("ServerLive") => "ServerLive",
        Some("ServerReady") => "ServerReady",
        Some("ModelReady") => "ModelReady",
        Some("ServerMetadata") => "ServerMetadata",
        Some("ModelMetadata") => "ModelMetadata",
        Some("ModelInfer") => "ModelInfer",
        _ => "unknown",
    }
}

impl<S, B> tower::Service<Request<B>> for Admission<S>
where
    S: tower::Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's usual swap).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let app = self.app.clone();
        Box::pin(async move {
            let started = Instant::now();
            let path = request.uri().path().to_string();
            let access = access_of(&path);
            let id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .and_then(plain_request_id)
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let refuse = |status: Status| {
                record(method_of(&path), status.code(), None, &id, started);
                Ok(refusal(status, &id))
            };
            let slot = match access {
                Access::Open => None,
                _ => match auth::take_slot(&app) {
                    Ok(slot) => Some(slot),
                    Err(message) => return refuse(Status::unavailable(message)),
                },
            };
            let caller = match (&app.auth, access) {
                (Some(state), Access::Predict | Access::Admin) => {
                    match auth::admit(state, request.headers(), false, access, &id, &path).await {
                        Ok(principal) => Some(principal.name),
                        Err(refused) => return refuse(denied(refused)),
                    }
                }
                _ => None,
            };
            request.extensions_mut().insert(Admitted {
                id,
                started,
                caller,
            });
            let answer = inner.call(request).await;
            drop(slot);
            answer
        })
    }
}

/// A refused call's answer: trailers only, with the request id.
fn refusal(mut status: Status, id: &str) -> Response<tonic::body::Body> {
    if let Ok(value) = id.parse() {
        status.metadata_mut().insert(REQUEST_ID, value);
    }
    tracing::debug!(
        request_id = id,
        code = code_name(status.code()),
        "gRPC call refused before its message was read"
    );
    status.into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probes_are_open() {
        let service = "/inference.GRPCInferenceService/";
        assert_eq!(access_of(&format!("{service}ServerLive")), Access::Open);
        assert_eq!(access_of(&format!("{service}ServerReady")), Access::Open);
        for method in [
            "ModelReady",
            "ServerMetadata",
            "ModelMetadata",
            "ModelInfer",
            "Other",
        ] {
            assert_eq!(access_of(&format!("{service}{method}")), Access::Predict);
        }
    }
}
