//! The servers: an axum app over the model repository (REST, the web UI), and the Open
//! Inference Protocol over gRPC beside it ([`grpc`]); `server.rs` starts and stops both.
//!
//! One module per concern: [`api`] (the native REST API), [`v1`] and [`v2`] (KServe V1, the Open
//! Inference Protocol over REST), [`health`] (probes), [`openapi`] (the document and Swagger
//! UI), [`ui`] (the web UI for people), [`body`] (reading requests), [`problem`] (RFC 9457
//! errors), [`middleware`] (request id, timeout, access log), [`connections`] (the accept
//! loop), [`watch`] (hot reload).

pub mod api;
pub mod auth;
pub mod body;
pub mod connections;
pub mod cookies;
pub mod explanations;
mod feedback;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod monitoring;
pub mod openapi;
pub mod predict;
pub mod problem;
pub mod protocol_error;
pub mod request_metrics;
pub mod request_scope;
pub mod rows;
mod server;
pub mod state;
pub mod tls;
pub mod ui;
pub mod v1;
pub mod v2;
pub mod watch;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use problem::Problem;
pub use server::{RunningServer, run, shutdown_signal, start};
pub use state::App;
use std::net::SocketAddr;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The gRPC address cannot be bound.
    #[error(
        "cannot listen on {addr} for gRPC: {source}; give --grpc-addr (MLSERVE_GRPC_ADDR) another address, port 0 for a free one, or off"
    )]
    GrpcBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The model repository folder does not exist (a typo must not look like an empty
    /// repository, so it is never created here).
    #[error(
        "the model repository {0} does not exist or is not a folder: check --models (MLSERVE_MODELS); `mlserve train` or `mlserve import` creates it"
    )]
    NoRepository(String),
    /// The keys file cannot be used.
    #[error("{0}")]
    Keys(#[from] auth::keys::KeysError),
    /// Auth is on but nobody could sign in.
    #[error(
        "auth is on but {0} holds no key and no user: create one with `mlserve keys create --name NAME`"
    )]
    NoKeys(String),
    /// The prediction database cannot be opened.
    #[error("prediction log: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The server failed while running.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    /// The gRPC server cannot start or failed while running.
    #[error("gRPC server: {0}")]
    Grpc(String),
}

/// An error for a route that does not exist or a method it does not take: a page for
/// browsers, `{"error"}` under /v1 and /v2 (the protocols' shape), problem details elsewhere.
fn route_error(status: StatusCode, detail: String, request: &Request) -> Response {
    let path = request.uri().path();
    if middleware::wants_html(request.headers()) {
        let heading = status.canonical_reason().unwrap_or("Error");
        ui::error_page(status, heading, &detail)
    } else if protocol_error::is_protocol_path(path) {
        protocol_error::error(status, detail)
    } else {
        Problem::new(status, detail).into_response()
    }
}

async fn not_found(request: Request) -> Response {
    let detail = format!("no route for {} {}", request.method(), request.uri().path());
    route_error(StatusCode::NOT_FOUND, detail, &request)
}

async fn method_not_allowed(request: Request) -> Response {
    let detail = format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    );
    let mut response = route_error(StatusCode::METHOD_NOT_ALLOWED, detail, &request);
    if request.uri().path().starts_with("/v1/models/") {
        let allow = axum::http::HeaderValue::from_static(v1::allowed_methods(request.uri().path()));
        response
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    response
}

/// GET /: the web UI's model list for browsers; `{"status": "alive"}` for programs, which is
/// KServe V1's liveness check (what its Python client reads).
async fn root(State(app): State<App>, headers: axum::http::HeaderMap) -> Response {
    if middleware::wants_html(&headers) {
        ui::index(State(app)).await
    } else {
        health::alive_v1().await
    }
}

/// The complete router.
pub fn router(app: App) -> Router {
    let body_limit = app.settings.max_body_bytes;
    let upload_limit = app.settings.max_upload_bytes;
    let swagger: Router = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"))
        .into();
    let routes = Router::new()
        .route("/api/models", get(api::list_models))
        .route("/api/models/{name}", get(api::model_info))
        .route(
            "/api/models/{name}/predict",
            post(api::predict_post).get(api::predict_get),
        )
        .route("/api/models/{name}/reload", post(api::reload_model))
        .route(
            "/api/models/{name}/versions/{version}",
            get(api::model_info),
        )
        .route(
            "/api/models/{name}/versions/{version}/predict",
            post(api::predict_post).get(api::predict_get),
        )
        .route(
            "/api/models/{name}/versions/{version}/report",
            get(api::model_report),
        )
        .route("/api/predictions", get(monitoring::list_predictions))
        .route(
            "/api/predictions/{request_id}",
            axum::routing::delete(monitoring::erase_prediction),
        )
        .route(
            "/api/predictions/{request_id}/feedback",
            post(feedback::post_feedback),
        )
        .route(
            "/api/models/{name}/monitoring",
            get(monitoring::model_monitoring),
        )
        .route("/api/models/{name}/drift", get(monitoring::model_drift))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::infer),
        )
        .route("/v2/repository/index", post(v2::repository_index))
        .route(
            "/v2/repository/models/{name}/load",
            post(v2::repository_load),
        )
        .route(
            "/v2/repository/models/{name}/unload",
            post(v2::repository_unload),
        )
        .route("/v2/{*rest}", axum::routing::any(v2::not_found))
        .route("/v1/models", get(v1::list))
        .route("/v1/models/{name}", get(v1::status).post(v1::action))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/api/liveness", get(health::live))
        .route("/api/readiness", get(health::ready))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(metrics::render))
        .route("/", get(root))
        .merge(ui::routes(upload_limit))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app.clone())
        .merge(swagger);
    // Auth's layers only where auth is on: every request pays for each layer it passes.
    let routes = if app.auth.is_some() {
        routes
            .layer(axum::middleware::from_fn_with_state(
                app.clone(),
                auth::authorize,
            ))
            .layer(axum::middleware::from_fn(ui::offer_sign_in))
    } else {
        routes
    };
    routes
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            app,
            middleware::request_context,
        ))
}
