//! What code answering a request knows of it without extractors, through task-locals set by
//! the middleware: the request id, the model that answers (for the access log and the
//! metrics), and who is signed in (for the web UI's pages). A leaf: it imports nothing of serve.

tokio::task_local! {
    /// Who is signed in, for the web UI page being rendered (set by the auth middleware on UI
    /// routes).
    pub static SIGNED_IN: Option<std::sync::Arc<str>>;
}

/// Which model and version answered, for the log line.
#[derive(Debug, Clone)]
pub struct ModelTag {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: String,
}

impl ModelTag {
    fn of(model: &crate::model::LoadedModel) -> Self {
        ModelTag {
            model: model.name().to_string(),
            version: model.version_label.clone(),
        }
    }
}

/// What the code answering a request can learn of it without extractors: its id, and a place
/// to record the model that answers it. Set by the request context middleware for the
/// request's task.
pub(super) struct RequestScope {
    /// The request id.
    pub(super) id: String,
    /// When the request arrived, for the latency the prediction log records.
    pub(super) started: std::time::Instant,
    /// The model that answers, once known.
    pub(super) answered_by: std::sync::OnceLock<ModelTag>,
}

tokio::task_local! {
    /// The scope of the request being answered.
    pub(super) static REQUEST: RequestScope;
}

/// The id of the request being answered, inside the request context.
pub fn current_request_id() -> Option<String> {
    REQUEST.try_with(|scope| scope.id.clone()).ok()
}

/// The id and arrival time of the request being answered, inside the request context.
pub(super) fn current_request() -> Option<(String, std::time::Instant)> {
    REQUEST
        .try_with(|scope| (scope.id.clone(), scope.started))
        .ok()
}

/// Records the model that answers the current request, for the access log and the request
/// metrics; the first one recorded wins. Outside a request it does nothing.
pub fn answered_by(model: &crate::model::LoadedModel) {
    let _ = REQUEST.try_with(|scope| {
        scope.answered_by.get_or_init(|| ModelTag::of(model));
    });
}
