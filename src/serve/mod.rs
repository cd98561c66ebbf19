//! The HTTP server: an axum app over the model repository.
//!
//! One module per concern: [`api`] (the native REST API), [`health`] (probes), [`openapi`]
//! (the document and Swagger UI), [`ui`] (the web UI for people), [`body`] (reading requests), [`problem`] (RFC 9457 errors),
//! [`middleware`] (request id, timeout, access log), [`watch`] (hot reload).

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
pub mod state;
pub mod ui;
pub mod v1;
pub mod v2;
pub mod watch;

use crate::config::Settings;
use crate::model::Repository;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use problem::Problem;
pub use state::App;
use std::net::SocketAddr;
use std::sync::Arc;

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
    let timeout = app.settings.request_timeout();
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
        .layer(axum::middleware::from_fn_with_state(app, auth::shed_load))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            middleware::request_context,
        ))
}

/// A server running in the background; stops when told or when dropped.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The address the gRPC server listens on, unless `grpc_addr` is off.
    pub grpc_addr: Option<SocketAddr>,
    /// The served repository.
    pub repository: Arc<Repository>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    grpc: Option<GrpcServer>,
    /// How long calls in flight may take to finish once stopping.
    grace: std::time::Duration,
    _watcher: Option<watch::RepositoryWatcher>,
    log: Option<Arc<crate::store::PredictionLog>>,
    /// Tasks that live as long as the server: gauge refreshes, the keys file watch.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish, and waits for the end.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(grpc) = &self.grpc {
            // Health Watch streams hear it before the listeners close.
            grpc::health::stop_serving(&grpc.reporter, &grpc.app).await;
        }
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(true);
        }
        let served = match (&mut self.task).await {
            Ok(result) => result,
            Err(error) => Err(ServeError::Io(std::io::Error::other(error))),
        };
        let grpc_served = match self.grpc.take() {
            Some(grpc) => grpc.finish(self.grace).await,
            None => Ok(()),
        };
        for task in self.background.drain(..) {
            task.abort();
        }
        // Every answered request has queued its records by now; write them before exiting.
        if let Some(log) = self.log.take() {
            log.shutdown().await;
        }
        served.and(grpc_served)
    }
}

/// The gRPC server beside the HTTP one.
struct GrpcServer {
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    reporter: tonic_health::server::HealthReporter,
    app: App,
}

impl GrpcServer {
    /// Waits for calls in flight to finish, at most `grace` (an open health Watch stream
    /// would otherwise hold the server open for as long as its client stays).
    async fn finish(mut self, grace: std::time::Duration) -> Result<(), ServeError> {
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(Ok(served)) => served.map_err(|error| ServeError::Grpc(error.to_string())),
            Ok(Err(error)) => Err(ServeError::Grpc(error.to_string())),
            Err(_) => {
                self.task.abort();
                tracing::warn!(
                    grace_secs = grace.as_secs_f64(),
                    "gRPC calls or streams still open after the grace period: closed"
                );
                Ok(())
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(true);
        }
        if let Some(grpc) = self.grpc.take() {
            grpc.task.abort();
        }
    }
}

/// Binds the address, starts serving at once (readiness answers 503 until the models are
/// loaded), loads the repository in the background, and starts watching it.
pub async fn start(settings: Settings) -> Result<RunningServer, ServeError> {
    metrics::install();
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    // Everything that can refuse the settings is checked before anything is created.
    let (auth, keys_seen) = if settings.auth {
        // Taken before the keys are read: a change in between is then seen by the watch.
        let keys_seen = auth::keys_fingerprint(&settings.keys_file).await;
        let keys = auth::keys::KeysFile::load(&settings.keys_file)?;
        if keys.is_empty() {
            return Err(ServeError::NoKeys(settings.keys_file.display().to_string()));
        }
        tracing::info!(keys = keys.keys.len(), users = keys.users.len(), file = %settings.keys_file.display(), "auth on");
        let rate_limiter = (settings.rate_limit_per_sec > 0.0).then(|| {
            auth::RateLimiter::new(
                settings.rate_limit_per_sec,
                f64::from(settings.rate_limit_burst),
            )
        });
        let state = auth::AuthState::new(&keys, settings.metrics_auth, rate_limiter);
        (Some(Arc::new(state)), keys_seen)
    } else {
        (None, None)
    };
    if !settings.models.is_dir() {
        return Err(ServeError::NoRepository(
            settings.models.display().to_string(),
        ));
    }
    let grpc_listener = match settings.grpc_addr.addr() {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };
    crate::model::imported::configure(settings.onnx());
    crate::model::explain::set_kernel_samples(settings.explain_samples);
    // A KernelSHAP row over a full background counts explain_samples × 100 / 1000.
    if settings.explain_samples / 10 > settings.max_batch_rows {
        tracing::warn!(
            explain_samples = settings.explain_samples,
            max_batch_rows = settings.max_batch_rows,
            "no KernelSHAP explanation fits max_batch_rows at this explain_samples (one row \
             counts explain_samples / 10): such requests will be refused with 413"
        );
    }
    let repository = Arc::new(Repository::new(&settings.models));
    let watcher = if settings.watch {
        match watch::watch(repository.clone()) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the model repository; use POST /api/models/{{name}}/reload");
                None
            }
        }
    } else {
        None
    };
    let loading = repository.clone();
    tokio::task::spawn_blocking(move || loading.reload_all(false));
    let log = if settings.prediction_log {
        let log = crate::store::PredictionLog::start(
            &settings.database_url,
            crate::store::LogSettings {
                sample_rate: settings.prediction_log_sample_rate,
                models: settings.prediction_log_models.clone(),
                policy: crate::store::policy::InputPolicy::new(
                    &settings.prediction_log_exclude_features,
                    &settings.prediction_log_hash_features,
                    &settings.prediction_log_hash_key,
                ),
                ..crate::store::LogSettings::default()
            },
        )
        .await?;
        tracing::info!(database = %crate::store::redact(&settings.database_url), "prediction log on");
        Some(Arc::new(log))
    } else {
        None
    };
    let app = App::with(repository.clone(), settings, log.clone(), auth);
    let mut background = Vec::new();
    if let Some(log) = &app.log {
        background.push(tokio::spawn(refresh_quality_gauges(app.clone())));
        background.push(tokio::spawn(enforce_retention(
            log.clone(),
            app.settings.retention(),
        )));
    }
    if let Some(auth) = &app.auth {
        let path = app.settings.keys_file.clone();
        background.push(tokio::spawn(auth::watch_keys_file(
            auth.clone(),
            path,
            keys_seen,
        )));
    }
    let limits = connections::ConnectionLimits::from_settings(&app.settings);
    let (sender, receiver) = tokio::sync::watch::channel(false);
    let grpc = match grpc_listener {
        Some(listener) => {
            Some(start_grpc(&app, listener, receiver.clone(), &mut background).await?)
        }
        None => None,
    };
    let grpc_addr = grpc.as_ref().map(|(addr, _)| *addr);
    let grace = app.settings.request_timeout();
    let http_app = app.clone();
    let task = tokio::spawn(async move {
        connections::serve(listener, router(http_app), limits, stopped(receiver))
            .await
            .map_err(ServeError::Io)
    });
    tracing::info!(%addr, max_connections = limits.max_connections, "listening");
    Ok(RunningServer {
        addr,
        grpc_addr,
        repository,
        shutdown: Some(sender),
        task,
        grpc: grpc.map(|(_, server)| server),
        grace,
        _watcher: watcher,
        log,
        background,
    })
}

/// Resolves once the stop flag is raised (or its sender is gone).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Starts the gRPC server on `listener`, its health following readiness.
async fn start_grpc(
    app: &App,
    listener: tokio::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
    background: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(SocketAddr, GrpcServer), ServeError> {
    let addr = listener.local_addr()?;
    let (routes, reporter) = grpc::routes(app)
        .await
        .map_err(|error| ServeError::Grpc(error.to_string()))?;
    background.push(tokio::spawn(grpc::health::follow_readiness(
        app.clone(),
        reporter.clone(),
    )));
    let task = tokio::spawn(grpc::serve(listener, routes, stopped(stop)));
    tracing::info!(%addr, "gRPC listening");
    Ok((
        addr,
        GrpcServer {
            task,
            reporter,
            app: app.clone(),
        },
    ))
}

/// Keeps the live-metric and drift gauges of /metrics current: every minute, for every model,
/// over the last 24 hours (the API and the UI compute them on demand for any window).
async fn refresh_quality_gauges(app: App) {
    let window = std::time::Duration::from_secs(24 * 3600);
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        ticks.tick().await;
        let Some(log) = &app.log else { return };
        let names: Vec<String> = app.repository.catalog().models.keys().cloned().collect();
        for name in names {
            if let Err(error) = monitoring::monitoring(log.store(), &name, window).await {
                tracing::warn!(%error, model = name.as_str(), "cannot refresh live metrics");
            }
            if let Err(problem) =
                monitoring::drift_report(&app, &name, window, monitoring::DEFAULT_DRIFT_THRESHOLD)
                    .await
            {
                tracing::debug!(
                    detail = problem.detail.as_str(),
                    model = name.as_str(),
                    "no drift figures"
                );
            }
        }
    }
}

/// Keeps the prediction log within its retention and byte limit, off the request path; what it
/// deletes is counted in /metrics, and a failed pass is logged and tried again next time.
async fn enforce_retention(
    log: Arc<crate::store::PredictionLog>,
    retention: crate::store::retention::Retention,
) {
    let mut ticks = tokio::time::interval(retention.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = crate::store::record::now_ms();
        match crate::store::retention::enforce(log.store(), &retention, now).await {
            Ok(deleted) => {
                for (reason, rows) in [("age", deleted.by_age), ("size", deleted.by_size)] {
                    if rows > 0 {
                        ::metrics::counter!("mlserve_prediction_log_deleted_total", "reason" => reason)
                            .increment(rows);
                        tracing::info!(rows, reason, "prediction log: deleted old predictions");
                    }
                }
            }
            Err(error) => {
                ::metrics::counter!("mlserve_prediction_log_retention_errors_total").increment(1);
                tracing::warn!(%error, "prediction log: retention pass failed; trying again later");
            }
        }
        if let Ok(bytes) = log.store().log_bytes().await {
            ::metrics::gauge!("mlserve_prediction_log_bytes").set(bytes as f64);
        }
    }
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Serves until SIGINT or SIGTERM, then drains in-flight requests and returns.
pub async fn run(settings: Settings) -> Result<(), ServeError> {
    let server = start(settings).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}
