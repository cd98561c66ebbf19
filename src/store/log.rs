//! Writing the prediction log off the request path.
//!
//! Requests hand their records to a bounded queue and move on; one writer task drains it and
//! writes whatever has gathered as one multi-row insert in one transaction. Under load the
//! batches grow by themselves, so a slow database costs batch size, not request latency. When
//! the queue is full the record is dropped, counted (`mlserve_prediction_log_dropped_total`)
//! and logged: never silently. On shutdown the queue is drained before the process exits.

use super::live::LiveCounts;
use super::policy::InputPolicy;
use super::queries::Truth;
use super::record::{PredictionRecord, fnv1a};
use super::writer::LogSettings;
use super::{Store, StoreError};
use crate::model::LoadedModel;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The sending side of the prediction log.
pub struct PredictionLog {
    sender: mpsc::Sender<PredictionRecord>,
    sample_rate: f64,
    models: Vec<String>,
    policy: InputPolicy,
    /// Records the writer has taken from the queue and not yet written (its batch).
    in_hand: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    last_drop_warning: std::sync::Mutex<Option<Instant>>,
    closing: tokio::sync::watch::Sender<bool>,
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    store: Store,
    live: Arc<LiveCounts>,
    /// Feedback is stored and counted one post at a time.
    feedback: Arc<tokio::sync::Mutex<()>>,
}

impl PredictionLog {
    /// Opens the database and starts the writer.
    pub async fn start(url: &str, settings: LogSettings) -> Result<PredictionLog, StoreError> {
        let store = Store::open(url).await?;
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let (closing, closing_receiver) = tokio::sync::watch::channel(false);
        let in_hand = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(LiveCounts::default());
        let writer = tokio::spawn(super::writer::run_writer(
            store.clone(),
            receiver,
            closing_receiver,
            settings.clone(),
            in_hand.clone(),
            live.clone(),
        ));
        Ok(PredictionLog {
            sender,
            sample_rate: settings.sample_rate,
            models: settings.models.clone(),
            policy: settings.policy.clone(),
            in_hand,
            dropped: Arc::new(AtomicU64::new(0)),
            last_drop_warning: std::sync::Mutex::new(None),
            closing,
            writer: tokio::sync::Mutex::new(Some(writer)),
            store,
            live,
            feedback: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Whether a request of this model with this id is logged (see [`LogSettings::models`] and
    /// [`LogSettings::sample_rate`]); counts `rows` in `mlserve_prediction_log_sampled_out_total`
    /// when it is sampled out.
    pub fn keeps(&self, model: &LoadedModel, request_id: &str, rows: usize) -> bool {
        if model.artifact.manifest.prediction_log == Some(false) {
            return false;
        }
        if !self.models.is_empty() && !self.models.iter().any(|m| m == model.name()) {
            return false;
        }
        let kept = self.sample_rate >= 1.0 || sampled_in(request_id, self.sample_rate);
        if !kept {
            metrics::counter!("mlserve_prediction_log_sampled_out_total").increment(rows as u64);
        }
        kept
    }

    /// Stores (or corrects) the true label or value of a logged prediction and counts it in
    /// the live metrics, taking back the pair it corrects. One at a time in this process, so two posts
    /// for one prediction cannot both take back the same earlier label; in a task of its own,
    /// so a client that goes away cannot leave the label stored but not counted. Returns the
    /// prediction as it was before (`None` when it is not logged).
    pub async fn give_feedback(
        &self,
        request_id: &str,
        row_index: u32,
        truth: Truth,
        key_name: Option<&str>,
    ) -> Result<Option<super::FoundPrediction>, StoreError> {
        let store = self.store.clone();
        let live = self.live.clone();
        let one_at_a_time = self.feedback.clone();
        let request_id = request_id.to_string();
        let key_name = key_name.map(str::to_string);
        let task = tokio::spawn(async move {
            let _one = one_at_a_time.lock().await;
            let Some(found) = store.find_prediction(&request_id, row_index).await? else {
                return Ok(None);
            };
            let at_ms = super::record::now_ms();
            store
                .record_feedback(&request_id, row_index, &truth, at_ms, key_name.as_deref())
                .await?;
            live.add(|pending| {
                if let Some(before) = &found.feedback {
                    pending.add_truth(&found, before, -1);
                }
                pending.add_truth(&found, &truth, 1);
            });
            if let Err(error) = live.write(&store).await {
                // The label is stored; its count waits and is written with the next ones.
                tracing::warn!(%error, "live metrics: feedback not counted yet");
            }
            Ok(Some(found))
        });
        task.await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }

    /// What is kept of inputs.
    pub fn policy(&self) -> &InputPolicy {
        &self.policy
    }

    /// The store, for reading the log back.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Queues records without waiting; what does not fit is dropped and counted.
    pub fn record(&self, records: impl IntoIterator<Item = PredictionRecord>) {
        let mut dropped = 0u64;
        for record in records {
            if self.sender.try_send(record).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.count_drops(dropped);
        }
    }

    /// Queues records, waiting for room (for batch jobs, which may wait; requests may not).
    pub fn record_blocking(&self, records: impl IntoIterator<Item = PredictionRecord>) {
        for record in records {
            if self.sender.blocking_send(record).is_err() {
                self.count_drops(1);
            }
        }
    }

    fn count_drops(&self, count: u64) {
        metrics::counter!("mlserve_prediction_log_dropped_total").increment(count);
        let total = self.dropped.fetch_add(count, Ordering::Relaxed) + count;
        // One warning a second at most: an overload must not also flood the log.
        let mut last = self
            .last_drop_warning
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped_total = total,
                "prediction log queue is full: predictions were not logged"
            );
        }
    }

    /// Records dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records not yet written: those in the queue and the writer's batch (which, while the
    /// database fails, waits in the writer's hands).
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity() + self.in_hand.load(Ordering::Relaxed)
    }

    /// Stops taking records, writes what is queued, and closes the database.
    pub async fn shutdown(&self) {
        let _ = self.closing.send(true);
        if let Some(writer) = self.writer.lock().await.take()
            && let Err(error) = writer.await
        {
            tracing::error!(%error, "prediction log writer failed");
        }
        self.store.close().await;
    }
}

/// Whether a request id falls in the sampled fraction: its FNV-1a hash, mixed (splitmix64's
/// finalizer) so that ids differing in a few characters spread evenly, as a number in [0, 1).
fn sampled_in(request_id: &str, rate: f64) -> bool {
    let mut hash = fnv1a(request_id.as_bytes());
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    ((hash >> 11) as f64 / (1u64 << 53) as f64) < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_about_the_rate_and_always_the_same_requests() {
        let ids: Vec<String> = (0..20_000)
            .map(|i| format!("01a2297a-c2d3-7013-9ee3-{i:012x}"))
            .collect();
        for rate in [0.01, 0.1, 0.5] {
            let kept = ids.iter().filter(|id| sampled_in(id, rate)).count() as f64;
            let expected = rate * ids.len() as f64;
            assert!(
                (kept - expected).abs() < 4.0 * expected.sqrt() + 1.0,
                "rate {rate}: {kept}"
            );
        }
        assert_eq!(sampled_in("abc", 0.3), sampled_in("abc", 0.3));
        // A request kept at a rate is kept at every higher rate.
        assert!(
            ids.iter()
                .filter(|id| sampled_in(id, 0.1))
                .all(|id| sampled_in(id, 0.5))
        );
    }
}
