//! The state every handler shares: the repository, the settings, the prediction log, auth,
//! and the web UI's downloads and upload slots.

use crate::config::Settings;
use crate::model::Repository;
use std::sync::Arc;

/// Shared state of every handler: one reference count to clone, since every request clones
/// it (each extractor and middleware that takes the state).
#[derive(Clone)]
pub struct App(Arc<AppState>);

/// What [`App`] shares.
pub struct AppState {
    /// The served models.
    pub repository: Arc<Repository>,
    /// The effective settings.
    pub settings: Arc<Settings>,
    /// Batch results of the web UI, kept for download.
    pub downloads: Arc<super::ui::downloads::Downloads>,
    /// Web UI batch uploads predicted at once; more are refused (503), so uploads cannot
    /// take every core and all the memory.
    pub batch_slots: Arc<tokio::sync::Semaphore>,
    /// The prediction log, when it is on.
    pub log: Option<Arc<crate::store::PredictionLog>>,
    /// Authentication, when it is on.
    pub auth: Option<Arc<super::auth::check::AuthState>>,
    /// Requests in flight, for load shedding.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl App {
    /// The state of a server over this repository with these settings, without the prediction
    /// log and authentication.
    pub fn new(repository: Arc<Repository>, settings: Settings) -> Self {
        App::with(repository, settings, None, None)
    }

    /// The state of a server over this repository with these settings, the prediction log and
    /// authentication when they are on.
    pub fn with(
        repository: Arc<Repository>,
        settings: Settings,
        log: Option<Arc<crate::store::PredictionLog>>,
        auth: Option<Arc<super::auth::check::AuthState>>,
    ) -> Self {
        App(Arc::new(AppState {
            repository,
            settings: Arc::new(settings),
            downloads: Arc::new(super::ui::downloads::Downloads::default()),
            batch_slots: Arc::new(tokio::sync::Semaphore::new(2)),
            log,
            auth,
            in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }))
    }
}
