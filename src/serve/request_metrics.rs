//! The per-request metrics: `mlserve_http_requests_total{route, method, status, model,
//! version}`, `mlserve_http_request_duration_seconds{route, method}`,
//! `mlserve_validation_failures_total{model, version}` and `mlserve_http_requests_in_flight`.
//!
//! Every request adds to them, so their handles are kept by label set once the recorder is
//! installed: the `metrics` macros build the labels' strings and look the series up in the
//! recorder's registry on every call, which cost a request more than its access log line.

use super::request_scope::ModelTag;
use axum::http::{Method, StatusCode};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{OnceLock, RwLock};

/// One label set's handles.
struct Series {
    route: Box<str>,
    method: &'static str,
    status: StatusCode,
    model: Box<str>,
    version: Box<str>,
    requests: metrics::Counter,
    duration: metrics::Histogram,
    validation_failures: Option<metrics::Counter>,
}

impl Series {
    fn is(&self, labels: &Labels<'_>) -> bool {
        self.status == labels.status
            && self.method == labels.method
            && *self.route == *labels.route
            && *self.model == *labels.model
            && *self.version == *labels.version
    }
}

/// A request's labels, borrowed.
struct Labels<'a> {
    route: &'a str,
    method: &'static str,
    status: StatusCode,
    model: &'a str,
    version: &'a str,
}

impl Labels<'_> {
    fn series(&self) -> Series {
        let about_a_model = !self.model.is_empty();
        Series {
            route: self.route.into(),
            method: self.method,
            status: self.status,
            model: self.model.into(),
            version: self.version.into(),
            requests: metrics::counter!(
                "mlserve_http_requests_total",
                "route" => self.route.to_string(),
                "method" => self.method,
                "status" => self.status.as_str().to_string(),
                "model" => self.model.to_string(),
                "version" => self.version.to_string(),
            ),
            duration: metrics::histogram!(
                "mlserve_http_request_duration_seconds",
                "route" => self.route.to_string(),
                "method" => self.method,
            ),
            validation_failures: (about_a_model && self.status == StatusCode::UNPROCESSABLE_ENTITY)
                .then(|| {
                    metrics::counter!(
                        "mlserve_validation_failures_total",
                        "model" => self.model.to_string(),
                        "version" => self.version.to_string(),
                    )
                }),
        }
    }
}

/// The handles made so far, by a hash of their labels.
#[derive(Default)]
struct Cache {
    hasher: RandomState,
    by_hash: RwLock<HashMap<u64, Vec<Series>>>,
}

impl Cache {
    fn hash(&self, labels: &Labels<'_>) -> u64 {
        self.hasher.hash_one((
            labels.route,
            labels.method,
            labels.status,
            labels.model,
            labels.version,
        ))
    }

    /// Runs `add` on the label set's handles, made on its first request.
    fn with_series(&self, labels: &Labels<'_>, add: impl Fn(&Series)) {
        let hash = self.hash(labels);
        {
            let by_hash = self.by_hash.read().unwrap_or_else(|p| p.into_inner());
            if let Some(series) = by_hash
                .get(&hash)
                .and_then(|all| all.iter().find(|s| s.is(labels)))
            {
                add(series);
                return;
            }
        }
        let mut by_hash = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        let all = by_hash.entry(hash).or_default();
        // Another request may have made it between the two locks.
        match all.iter().find(|s| s.is(labels)) {
            Some(series) => add(series),
            None => {
                let series = labels.series();
                add(&series);
                all.push(series);
            }
        }
    }
}

/// The cache, once the recorder is installed (handles made before would record nowhere).
fn cache() -> Option<&'static Cache> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    super::metrics::is_installed().then(|| CACHE.get_or_init(Cache::default))
}

fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Counts an answered request: its route (the matched path, `unmatched` for none), method,
/// status, the model version that answered it (if any), and how long it took in seconds.
pub fn record(
    route: &str,
    method: &Method,
    status: StatusCode,
    tag: Option<&ModelTag>,
    seconds: f64,
) {
    let labels = Labels {
        route,
        method: method_label(method),
        status,
        model: tag.map_or("", |t| t.model.as_str()),
        version: tag.map_or("", |t| t.version.as_str()),
    };
    let add = |series: &Series| {
        series.requests.increment(1);
        series.duration.record(seconds);
        if let Some(failures) = &series.validation_failures {
            failures.increment(1);
        }
    };
    match cache() {
        Some(cache) => cache.with_series(&labels, add),
        None => add(&labels.series()),
    }
}

/// The in-flight requests gauge.
fn in_flight() -> metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    if super::metrics::is_installed() {
        GAUGE
            .get_or_init(|| metrics::gauge!("mlserve_http_requests_in_flight"))
            .clone()
    } else {
        metrics::gauge!("mlserve_http_requests_in_flight")
    }
}

/// Counts a request in flight for as long as it lives (also when a timeout drops it).
pub struct InFlight(metrics::Gauge);

impl InFlight {
    /// One more request in flight, until this is dropped.
    pub fn enter() -> InFlight {
        let gauge = in_flight();
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
