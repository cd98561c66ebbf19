//! The standard gRPC health service (`grpc.health.v1.Health`, Check and Watch) following
//! readiness, so Kubernetes' gRPC probes and service meshes see what `/health/ready` says:
//! the server (`""`) and `inference.GRPCInferenceService` serve when every model has a
//! version that serves; each model, by its name, when it has one. A model that leaves the
//! repository leaves the health service too (Check answers NOT_FOUND for it).

use crate::model::readiness::ModelHealth;
use crate::serve::state::App;
use std::collections::HashMap;
use std::time::Duration;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How often the catalog is looked at: the delay before a probe sees a change. A look costs a
/// pointer comparison; readiness is judged again only when the catalog was replaced.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// The inference service's name, as the health service knows it.
pub const INFERENCE_SERVICE: &str = "inference.GRPCInferenceService";

/// Keeps `reporter` in step with the app's readiness, changing a status only when it changes
/// (a Watch stream hears of changes only). Runs until aborted.
pub async fn follow_readiness(app: App, mut reporter: HealthReporter) {
    let mut known: HashMap<String, ServingStatus> = HashMap::new();
    let mut judged: Option<(std::sync::Arc<crate::model::Catalog>, bool)> = None;
    let mut ticks = tokio::time::interval(FOLLOW_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let catalog = app.repository.catalog();
        let loaded = app.repository.is_loaded();
        if judged.as_ref().is_some_and(|(seen, was_loaded)| {
            std::sync::Arc::ptr_eq(seen, &catalog) && *was_loaded == loaded
        }) {
            continue;
        }
        judged = Some((catalog, loaded));
        let now = statuses(&app);
        for (service, status) in &now {
            if known.get(service) != Some(status) {
                reporter.set_service_status(service, *status).await;
            }
        }
        for gone in known.keys().filter(|name| !now.contains_key(*name)) {
            reporter.clear_service_status(gone).await;
        }
        known = now;
    }
}

/// Every service's status now.
fn statuses(app: &App) -> HashMap<String, ServingStatus> {
    let readiness = app.repository.readiness(app.settings.strict_readiness);
    let serving = |yes: bool| {
        if yes {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    };
    let mut statuses: HashMap<String, ServingStatus> = readiness
        .models
        .iter()
        .map(|(name, model)| (name.clone(), serving(model.status != ModelHealth::Failed)))
        .collect();
    let overall = serving(readiness.is_ready());
    statuses.insert(String::new(), overall);
    statuses.insert(INFERENCE_SERVICE.to_string(), overall);
    statuses
}

/// Says every service is not serving (at shutdown, before the listeners close, so Watch
/// streams hear it).
pub async fn stop_serving(reporter: &HealthReporter, app: &App) {
    for service in statuses(app).keys() {
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
}
