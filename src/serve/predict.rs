//! The one predict path under every adapter (the native API, V1, V2, the web form): score
//! validated rows with the model layer, then count the predictions and hand them to the
//! prediction log (see [`crate::store`]), off the request path: building the records is all a
//! request pays. A new protocol gets metrics and the log by calling [`predict`]; the web UI's
//! CSV upload, which streams, gets the same through [`StreamedPredictions`].

use super::middleware::Caller;
use super::state::App;
use crate::model::explain::Cancel;
use crate::model::{
    Explainer, FeatureValue, LoadedModel, Outcome, PredictFailure, Prediction, Tally, ValidRow,
};
use crate::store::policy::InputPolicy;
use crate::store::record::{Answered, RequestKey};
use crate::store::{PredictionLog, PredictionRecord};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// Batches larger than this run on the blocking pool, so they do not stall other requests.
const INLINE_BATCH_ROWS: usize = 64;

/// The model version a request names (see [`crate::model::Catalog::resolve`]), recorded as the
/// one answering the request for the access log and the request metrics.
pub fn resolve(
    app: &App,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<LoadedModel>, PredictFailure> {
    let model = app.repository.catalog().resolve(name, version)?;
    super::request_scope::answered_by(&model);
    Ok(model)
}

/// Scores validated rows (on the blocking pool when the batch is large, or explained), counts
/// the answers and queues them for the prediction log. `batch` names a failing row by its index
/// in `instances`. With `explain`, each prediction carries its explanation; a model that cannot
/// explain, or more rows than `max_batch_rows` allows at the method's weight, fails before
/// anything is scored.
pub async fn predict(
    app: &App,
    model: &Arc<LoadedModel>,
    rows: Vec<ValidRow>,
    asked: &Asked,
    batch: bool,
    explain: bool,
) -> Result<Vec<Prediction>, PredictFailure> {
    if explain {
        check_explained_rows(app, model, rows.len()).await?;
    }
    let predictions = if rows.len() <= INLINE_BATCH_ROWS && !explain {
        model.predict(rows, batch, None)?
    } else {
        // Dropping this request (a timeout, a client gone) stops its explanations too: the
        // blocking pool would not stop them by itself.
        let stop = StopOnDrop(Cancel::default());
        let cancel = stop.0.clone();
        let running = model.clone();
        tokio::task::spawn_blocking(move || {
            running.predict(rows, batch, explain.then_some(&cancel))
        })
        .await
        .map_err(|error| PredictFailure::Internal(error.to_string()))??
    };
    if explain && let Ok(explainer) = model.explainer() {
        metrics::counter!(
            "mlserve_explained_rows_total",
            "model" => model.name().to_string(),
            "method" => explainer.method().name()
        )
        .increment(predictions.len() as u64);
    }
    log_predictions(app, model, asked, &predictions);
    Ok(predictions)
}

/// Cancels its explanations when dropped with the request's future.
struct StopOnDrop(Cancel);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The version's explainer, built on the blocking pool the first time (TreeSHAP tables,
/// a background file to read), or why the model cannot explain.
pub async fn explainer(model: &Arc<LoadedModel>) -> Result<&Explainer, PredictFailure> {
    if model.explainer.get().is_none() {
        let building = model.clone();
        tokio::task::spawn_blocking(move || {
            let _ = building.explainer();
        })
        .await
        .map_err(|error| PredictFailure::Internal(error.to_string()))?;
    }
    model.explainer().map_err(PredictFailure::CannotExplain)
}

/// Refuses a model that cannot explain, and more explained rows than `max_batch_rows` allows
/// at the method's weight (README: explanations).
async fn check_explained_rows(
    app: &App,
    model: &Arc<LoadedModel>,
    rows: usize,
) -> Result<(), PredictFailure> {
    let explainer = explainer(model).await?;
    let (method, weight) = (explainer.method(), explainer.row_weight());
    let limit = app.settings.max_batch_rows;
    if rows.saturating_mul(weight) > limit {
        return Err(PredictFailure::TooManyExplained {
            rows,
            method: method.name(),
            weight,
            limit,
        });
    }
    Ok(())
}

/// Who asked and when: what the log needs besides the prediction.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The request id.
    pub request_id: String,
    /// When the request arrived.
    pub started: Instant,
    /// The key or user that asked, when auth is on.
    pub caller: Option<Arc<str>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Asked {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Inside the request context (every served route) the scope has both.
        let (request_id, started) = super::request_scope::current_request()
            .unwrap_or_else(|| (String::new(), Instant::now()));
        Ok(Asked {
            request_id,
            started,
            caller: parts.extensions.get::<Caller>().map(|c| c.0.clone()),
        })
    }
}

/// The log records of answered predictions (one per row), as `policy` keeps their inputs.
pub fn records(
    model: &Arc<LoadedModel>,
    asked: &Asked,
    predictions: &[Prediction],
    policy: &InputPolicy,
) -> Vec<PredictionRecord> {
    let key = RequestKey::of(&asked.request_id);
    let latency_us = latency_us(asked);
    predictions
        .iter()
        .enumerate()
        .map(|(row_index, p)| {
            let answered = Answered {
                row_index,
                values: &p.values,
                outcome: &p.outcome,
            };
            PredictionRecord::new(
                model,
                &key,
                answered,
                policy,
                latency_us,
                asked.caller.clone(),
            )
        })
        .collect()
}

fn latency_us(asked: &Asked) -> u32 {
    u32::try_from(asked.started.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// Counts answered predictions, and queues them for the log when the log is on.
fn log_predictions(app: &App, model: &Arc<LoadedModel>, asked: &Asked, predictions: &[Prediction]) {
    let mut tally = model.new_tally();
    for prediction in predictions {
        model.tally(&mut tally, &prediction.outcome);
    }
    model.count_predictions(&tally);
    if let Some(log) = &app.log
        && log.keeps(model, &asked.request_id, predictions.len())
    {
        log.record(records(model, asked, predictions, log.policy()));
    }
}

/// The counting and logging of predictions that are made as a stream rather than answered at
/// once (the web UI's CSV upload): the same metrics and log records as [`predict`], handed to
/// the log in chunks, waiting for room (an upload may wait; it is not bound by latency).
pub struct StreamedPredictions<'a> {
    model: &'a Arc<LoadedModel>,
    key: RequestKey,
    asked: &'a Asked,
    log: Option<&'a PredictionLog>,
    pending: Vec<PredictionRecord>,
    tally: Tally,
    row: usize,
}

impl<'a> StreamedPredictions<'a> {
    /// Records to be written to `log` (none when the log is off, or samples this request out).
    pub fn new(
        model: &'a Arc<LoadedModel>,
        asked: &'a Asked,
        log: Option<&'a PredictionLog>,
    ) -> Self {
        StreamedPredictions {
            model,
            key: RequestKey::of(&asked.request_id),
            asked,
            log: log.filter(|log| log.keeps(model, &asked.request_id, 0)),
            pending: Vec::new(),
            tally: model.new_tally(),
            row: 0,
        }
    }

    /// One more predicted row: its values and what the model answered.
    pub fn predicted(&mut self, values: &[FeatureValue], outcome: &Outcome) {
        self.model.tally(&mut self.tally, outcome);
        if let Some(log) = self.log {
            let answered = Answered {
                row_index: self.row,
                values,
                outcome,
            };
            self.pending.push(PredictionRecord::new(
                self.model,
                &self.key,
                answered,
                log.policy(),
                latency_us(self.asked),
                self.asked.caller.clone(),
            ));
            if self.pending.len() >= 256 {
                self.flush();
            }
        }
        self.row += 1;
    }

    fn flush(&mut self) {
        if let Some(log) = self.log
            && !self.pending.is_empty()
        {
            log.record_blocking(self.pending.drain(..));
        }
    }

    /// Hands the last records to the log and counts every row in the metrics.
    pub fn finish(mut self) {
        self.flush();
        self.model.count_predictions(&self.tally);
    }
}
