//! Starting and stopping the server: the HTTP listener (REST, the web UI) and the gRPC
//! listener, the repository's load and watch, the prediction log and the background tasks;
//! SIGTERM drains both listeners within `request_timeout_secs`.

use super::{App, ServeError, auth, connections, grpc, metrics, monitoring, router, watch};
use crate::config::Settings;
use crate::model::Repository;
use std::net::SocketAddr;
use std::sync::Arc;

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
        // First, so readiness's follower cannot set a health status back to SERVING while the
        // listeners drain.
        for task in self.background.drain(..) {
            task.abort();
        }
        let grpc = self.grpc.take();
        if let Some(grpc) = &grpc {
            // Health Watch streams hear it before the listeners close.
            grpc::health::stop_serving(&grpc.reporter, &grpc.app).await;
        }
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(true);
        }
        // Both listeners drain at once, each for at most the grace period: a stream that stays
        // open (a health Watch) must not hold the process past it.
        let grace = self.grace;
        let http = async {
            match tokio::time::timeout(grace, &mut self.task).await {
                Ok(Ok(result)) => result,
                Ok(Err(error)) => Err(ServeError::Io(std::io::Error::other(error))),
                Err(_) => {
                    self.task.abort();
                    tracing::warn!(
                        grace_secs = grace.as_secs_f64(),
                        "HTTP requests or streams still open after the grace period: closed"
                    );
                    Ok(())
                }
            }
        };
        let grpc_finished = async {
            match grpc {
                Some(grpc) => grpc.finish(grace).await,
                None => Ok(()),
            }
        };
        let (served, grpc_served) = tokio::join!(http, grpc_finished);
        // Every answered request has queued its records by now; write them before exiting.
        if let Some(log) = self.log.take() {
            log.shutdown().await;
        }
        served.and(grpc_served)
    }
}

/// The gRPC services: on a listener of their own, on the HTTP port, or both.
struct GrpcServer {
    /// The listener's server, unless `grpc_addr` is off.
    task: Option<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
    reporter: tonic_health::server::HealthReporter,
    app: App,
}

impl GrpcServer {
    /// Waits for calls in flight to finish, at most `grace` (an open health Watch stream
    /// would otherwise hold the server open for as long as its client stays).
    async fn finish(self, grace: std::time::Duration) -> Result<(), ServeError> {
        let Some(mut task) = self.task else {
            return Ok(());
        };
        match tokio::time::timeout(grace, &mut task).await {
            Ok(Ok(served)) => served.map_err(|error| ServeError::Grpc(error.to_string())),
            Ok(Err(error)) => Err(ServeError::Grpc(error.to_string())),
            Err(_) => {
                task.abort();
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
        if let Some(task) = self.grpc.take().and_then(|grpc| grpc.task) {
            task.abort();
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
    let certificate = match settings.tls() {
        Some(files) => Some(super::tls::Certificate::load(files)?),
        None => None,
    };
    let grpc_listener = match settings.grpc_addr.addr() {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::GrpcBind { addr, source })?,
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
    let tls = match &certificate {
        Some(certificate) => {
            background.push(tokio::spawn(certificate.clone().follow_files()));
            // HTTP/2 by ALPN only where gRPC shares the HTTP port.
            let http: &[&[u8]] = if app.settings.grpc_on_http_port {
                &[b"h2", b"http/1.1"]
            } else {
                &[b"http/1.1"]
            };
            Some(Tls {
                http: certificate.acceptor(http)?,
                grpc: certificate.acceptor(&[b"h2"])?,
            })
        }
        None => None,
    };
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
    let rest = router(app.clone());
    let (grpc, h2c) = if grpc_listener.is_some() || app.settings.grpc_on_http_port {
        let (server, routes) = start_grpc(
            &app,
            grpc_listener,
            tls.as_ref().map(|tls| tls.grpc.clone()),
            receiver.clone(),
            &mut background,
        )
        .await?;
        let h2c = app
            .settings
            .grpc_on_http_port
            .then(|| one_port(rest.clone(), routes));
        (Some(server), h2c)
    } else {
        (None, None)
    };
    let grpc_addr = grpc.as_ref().and_then(|(addr, _)| *addr);
    let grace = app.settings.request_timeout();
    let http_tls = tls.map(|tls| tls.http);
    let task = tokio::spawn(async move {
        connections::serve(listener, rest, h2c, http_tls, limits, stopped(receiver))
            .await
            .map_err(ServeError::Io)
    });
    tracing::info!(
        %addr,
        max_connections = limits.max_connections,
        grpc_on_http_port = app.settings.grpc_on_http_port,
        tls = certificate.is_some(),
        "listening"
    );
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

/// The TLS acceptors of the two listeners (they differ in the protocols ALPN offers).
struct Tls {
    http: tokio_rustls::TlsAcceptor,
    grpc: tokio_rustls::TlsAcceptor,
}

/// Resolves once the stop flag is raised (or its sender is gone).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Starts the gRPC services, their health following readiness, and their server on `listener`
/// when there is one; returns the server, its address, and the services for the HTTP port.
async fn start_grpc(
    app: &App,
    listener: Option<tokio::net::TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: tokio::sync::watch::Receiver<bool>,
    background: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<((Option<SocketAddr>, GrpcServer), tonic::service::Routes), ServeError> {
    let (routes, reporter) = grpc::routes(app)
        .await
        .map_err(|error| ServeError::Grpc(error.to_string()))?;
    background.push(tokio::spawn(grpc::health::follow_readiness(
        app.clone(),
        reporter.clone(),
    )));
    let (addr, task) = match listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "gRPC listening");
            let handshake = app.settings.header_read_timeout();
            let served = grpc::serve(listener, routes.clone(), tls, handshake, stopped(stop));
            let task = tokio::spawn(served);
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let server = GrpcServer {
        task,
        reporter,
        app: app.clone(),
    };
    Ok(((addr, server), routes))
}

/// The HTTP port's service for HTTP/2 connections: gRPC calls (`content-type:
/// application/grpc…`) to the gRPC services, everything else to REST, since a one-port
/// platform (Knative's port named h2c) sends REST as HTTP/2 too.
fn one_port(rest: axum::Router, grpc: tonic::service::Routes) -> axum::Router {
    let grpc = grpc.prepare().into_axum_router();
    let dispatch = tower::service_fn(move |request: axum::extract::Request| {
        let is_grpc = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        let target = if is_grpc { grpc.clone() } else { rest.clone() };
        tower::ServiceExt::oneshot(target, request)
    });
    axum::Router::new().fallback_service(dispatch)
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
