//! Writing the prediction log off the request path.
//!
//! Requests hand their records to a bounded queue and move on; one writer task drains it and
//! writes whatever has gathered as one multi-row insert in one transaction. Under load the
//! batches grow by themselves, so a slow database costs batch size, not request latency. When
//! the queue is full the record is dropped, counted (`mlserve_prediction_log_dropped_total`)
//! and logged: never silently. On shutdown the queue is drained before the process exits.

use super::{Backend, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One logged prediction (one row of a batch).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PredictionRecord {
    /// The request id.
    pub request_id: String,
    /// The row's index in its request (0 for a single row).
    pub row_index: u32,
    /// When it was answered, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// The validated inputs, as a JSON object.
    pub inputs: String,
    /// The predicted label.
    pub label: String,
    /// Probabilities by label, as a JSON object.
    pub probabilities: String,
    /// Time spent answering the request, in milliseconds.
    pub latency_ms: f64,
    /// The API key or user that asked, when auth is on.
    pub key_name: Option<String>,
}

/// Queue size, batch size and flush interval of the log writer.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Records the queue holds before it drops.
    pub queue_capacity: usize,
    /// Most records in one transaction.
    pub max_batch: usize,
    /// How long the writer gathers records before writing them; also the most a crash of the
    /// process can lose of what was answered (plus the time of one write).
    pub flush_interval: Duration,
    /// The fraction of requests logged, in (0, 1]: a request is logged whole or not at all,
    /// decided by its id, so replicas and reruns agree.
    pub sample_rate: f64,
    /// The models whose predictions are logged; empty for every model.
    pub models: Vec<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            queue_capacity: 100_000,
            max_batch: 20_000,
            flush_interval: Duration::from_millis(250),
            sample_rate: 1.0,
            models: Vec::new(),
        }
    }
}

/// The sending side of the prediction log.
pub struct PredictionLog {
    sender: mpsc::Sender<PredictionRecord>,
    sample_rate: f64,
    models: Vec<String>,
    /// Records the writer has taken from the queue and not yet written (its batch).
    in_hand: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    last_drop_warning: std::sync::Mutex<Option<Instant>>,
    closing: tokio::sync::watch::Sender<bool>,
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    store: Store,
}

/// Columns of one record, in insert order.
const COLUMNS: usize = 10;

/// The SQLite insert of `rows` records, with anonymous `?` placeholders: the driver looks up
/// every numbered one by name, which made a 1,000-parameter insert quadratic.
fn sqlite_insert(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO predictions (request_id, row_index, created_at_ms, model, version, inputs, \
         label, probabilities, latency_ms, key_name) VALUES ",
    );
    let row = format!("({})", ["?"; COLUMNS].join(", "));
    sql.push_str(&vec![row; rows].join(", "));
    // A retried batch after a timeout must not log a prediction twice.
    sql.push_str(" ON CONFLICT (request_id, row_index) DO NOTHING");
    sql
}

/// Rows per SQLite insert statement. Fixed sizes keep the statements few, so each is prepared
/// once and then taken from the connection's statement cache; a batch is cut into chunks of these.
const CHUNKS: [usize; 3] = [100, 10, 1];

/// Records per PostgreSQL insert: one statement (one round trip) carries them all as JSON.
const POSTGRES_CHUNK: usize = 5_000;

/// The PostgreSQL insert of a JSON array of records. One parameter whatever the row count:
/// sqlx does not set TCP_NODELAY, so every statement can wait for a delayed ACK (up to 40 ms on
/// Linux); a statement per 100 rows held the log to about 2,000 rows a second over TCP.
const POSTGRES_INSERT: &str = "INSERT INTO predictions (request_id, row_index, created_at_ms, \
     model, version, inputs, label, probabilities, latency_ms, key_name) \
     SELECT request_id, row_index, created_at_ms, model, version, inputs, label, probabilities, \
     latency_ms, key_name FROM json_to_recordset($1::json) AS r(request_id text, \
     row_index integer, created_at_ms bigint, model text, version text, inputs text, label text, \
     probabilities text, latency_ms double precision, key_name text) \
     ON CONFLICT (request_id, row_index) DO NOTHING";

/// Writes a batch in one transaction; returns the rows inserted (a row whose request id and
/// row index are already logged is left out). A failed transaction is rolled back here, and a
/// connection whose rollback fails too is closed rather than returned to the pool: a pooled
/// connection must never keep SQLite's write lock (after a full disk, that wedged every later
/// write until a restart).
async fn write_batch(store: &Store, batch: &[PredictionRecord]) -> Result<u64, sqlx::Error> {
    let mut connection = store.pool.acquire().await?;
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    match insert_batch(store.backend(), &mut transaction, batch).await {
        Ok(inserted) => match transaction.commit().await {
            Ok(()) => Ok(inserted),
            Err(error) => {
                connection.close_on_drop();
                Err(error)
            }
        },
        Err(error) => {
            if transaction.rollback().await.is_err() {
                connection.close_on_drop();
            }
            Err(error)
        }
    }
}

/// Inserts a batch inside `transaction`; returns the rows inserted.
async fn insert_batch(
    backend: Backend,
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    batch: &[PredictionRecord],
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    match backend {
        Backend::Postgres => {
            for chunk in batch.chunks(POSTGRES_CHUNK) {
                let records = serde_json::to_string(chunk)
                    .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
                inserted += sqlx::query(POSTGRES_INSERT)
                    .bind(records)
                    .execute(&mut **transaction)
                    .await?
                    .rows_affected();
            }
        }
        Backend::Sqlite => {
            let mut rest = batch;
            while !rest.is_empty() {
                let size = CHUNKS
                    .into_iter()
                    .find(|&size| size <= rest.len())
                    .unwrap_or(1);
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let mut query = sqlx::query(Store::sql(sqlite_insert(size)));
                for record in chunk {
                    query = query
                        .bind(record.request_id.as_str())
                        .bind(i64::from(record.row_index))
                        .bind(record.created_at_ms)
                        .bind(record.model.as_str())
                        .bind(record.version.as_str())
                        .bind(record.inputs.as_str())
                        .bind(record.label.as_str())
                        .bind(record.probabilities.as_str())
                        .bind(record.latency_ms)
                        .bind(record.key_name.as_deref());
                }
                inserted += query.execute(&mut **transaction).await?.rows_affected();
            }
        }
    }
    Ok(inserted)
}

fn count_written(batch: usize, inserted: u64) {
    metrics::counter!("mlserve_prediction_log_written_total").increment(inserted);
    let duplicates = (batch as u64).saturating_sub(inserted);
    if duplicates > 0 {
        // A client reused an x-request-id: the log keeps the first prediction under it.
        tracing::warn!(
            duplicates,
            "prediction log: request ids already logged were not logged again"
        );
        metrics::counter!("mlserve_prediction_log_duplicates_total").increment(duplicates);
    }
}

/// Errors that a later attempt may not meet, so the batch waits and is tried again rather
/// than dropped: the database is unreachable, busy or locked, its disk is full, its file is
/// read-only, missing or failing, or a PostgreSQL server is shutting down or out of space.
fn transient(error: &sqlx::Error) -> bool {
    if matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) {
        return true;
    }
    let Some(database) = error.as_database_error() else {
        return false;
    };
    let code = database.code();
    // SQLite's primary result codes (the low byte of an extended code): BUSY 5, LOCKED 6,
    // NOMEM 7, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
    // (SQLite's codes are numbers of at most four digits; PostgreSQL's are five characters.)
    let sqlite = code
        .as_deref()
        .filter(|c| c.len() <= 4)
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14));
    // PostgreSQL's SQLSTATE classes: 08 connection, 53 insufficient resources (disk full), 57
    // operator intervention (shutting down), 58 system error.
    let postgres = code.as_deref().is_some_and(|c| {
        ["08", "53", "57", "58"]
            .iter()
            .any(|class| c.starts_with(class))
    });
    let message = database.message();
    sqlite
        || postgres
        || message.contains("locked")
        || message.contains("busy")
        || message.contains("disk is full")
        || message.contains("readonly")
}

/// At shutdown the queue is written for at most this long; what is left is counted as dropped,
/// so a database that is down, slow or hung cannot hold the process past its grace period.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

fn count_dropped(rows: usize, why: &str, error: &sqlx::Error) {
    tracing::error!(%error, rows, "prediction log: {why}");
    metrics::counter!("mlserve_prediction_log_dropped_total").increment(rows as u64);
}

/// Writes one batch. While the database is unreachable it retries with backoff (the queue
/// fills meanwhile and overflow is counted); a batch the database refuses outright is written
/// row by row, so only the rows it refuses are dropped. The writer bounds it at shutdown.
async fn write_with_retry(store: &Store, batch: &[PredictionRecord]) {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0u32;
    loop {
        let error = match write_batch(store, batch).await {
            Ok(inserted) => {
                count_written(batch.len(), inserted);
                return;
            }
            Err(error) => error,
        };
        attempt += 1;
        metrics::counter!("mlserve_prediction_log_write_errors_total").increment(1);
        if !transient(&error) && attempt >= 2 {
            write_row_by_row(store, batch).await;
            return;
        }
        tracing::warn!(%error, rows = batch.len(), attempt, "prediction log: write failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Resolves [`SHUTDOWN_DRAIN`] after shutdown began: the end of the time a write may take then.
async fn drain_deadline(
    closing: &mut tokio::sync::watch::Receiver<bool>,
    closed_at: &mut Option<Instant>,
) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        return std::future::pending().await; // the log itself is gone; the queue ends the writer
    }
    let since = *closed_at.get_or_insert_with(Instant::now);
    tokio::time::sleep(SHUTDOWN_DRAIN.saturating_sub(since.elapsed())).await;
}

async fn write_row_by_row(store: &Store, batch: &[PredictionRecord]) {
    for record in batch {
        match write_batch(store, std::slice::from_ref(record)).await {
            Ok(inserted) => count_written(1, inserted),
            Err(error) => count_dropped(1, "the database refused a row", &error),
        }
    }
}

async fn run_writer(
    store: Store,
    mut receiver: mpsc::Receiver<PredictionRecord>,
    mut closing: tokio::sync::watch::Receiver<bool>,
    settings: LogSettings,
    in_hand: Arc<AtomicUsize>,
) {
    let max_batch = settings.max_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    let mut closed_at = None;
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, max_batch) => received,
            // Shutdown: refuse new records, then drain what is queued.
            _ = closing.wait_for(|closing| *closing), if !receiver.is_closed() => {
                receiver.close();
                continue;
            }
        };
        if received == 0 {
            break; // closed and drained
        }
        // Gather for one flush interval: one transaction for all, so the request-id index's
        // randomly placed pages are written once per interval, not once per small batch. The
        // writer sleeps meanwhile rather than waking for every record: a wake-up per request
        // costs more CPU than the write.
        if batch.len() < max_batch && !*closing.borrow() {
            let deadline = tokio::time::Instant::now() + settings.flush_interval;
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = closing.wait_for(|closing| *closing) => {}
            }
            while batch.len() < max_batch {
                match receiver.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
        }
        in_hand.store(batch.len(), Ordering::Relaxed);
        metrics::gauge!("mlserve_prediction_log_queue_depth")
            .set((receiver.len() + batch.len()) as f64);
        // A database that is down, slow or hung must not hold the process past its grace
        // period: once shutdown began, what is not written in time is counted as dropped.
        let written = tokio::select! {
            () = write_with_retry(&store, &batch) => true,
            () = drain_deadline(&mut closing, &mut closed_at) => false,
        };
        if !written {
            let mut left = batch.len() as u64;
            while receiver.try_recv().is_ok() {
                left += 1;
            }
            tracing::error!(
                rows = left,
                "prediction log: the shutdown drain took its {} s; the rest is dropped",
                SHUTDOWN_DRAIN.as_secs()
            );
            metrics::counter!("mlserve_prediction_log_dropped_total").increment(left);
            break;
        }
        batch.clear();
        in_hand.store(0, Ordering::Relaxed);
    }
    in_hand.store(0, Ordering::Relaxed);
    metrics::gauge!("mlserve_prediction_log_queue_depth").set(0.0);
}

impl PredictionLog {
    /// Opens the database and starts the writer.
    pub async fn start(url: &str, settings: LogSettings) -> Result<PredictionLog, StoreError> {
        let store = Store::open(url).await?;
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let (closing, closing_receiver) = tokio::sync::watch::channel(false);
        let in_hand = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn(run_writer(
            store.clone(),
            receiver,
            closing_receiver,
            settings.clone(),
            in_hand.clone(),
        ));
        Ok(PredictionLog {
            sender,
            sample_rate: settings.sample_rate,
            models: settings.models.clone(),
            in_hand,
            dropped: Arc::new(AtomicU64::new(0)),
            last_drop_warning: std::sync::Mutex::new(None),
            closing,
            writer: tokio::sync::Mutex::new(Some(writer)),
            store,
        })
    }

    /// Whether a request of this model with this id is logged (see [`LogSettings::models`] and
    /// [`LogSettings::sample_rate`]); counts `rows` in `mlserve_prediction_log_sampled_out_total`
    /// when it is sampled out.
    pub fn keeps(&self, model: &str, request_id: &str, rows: usize) -> bool {
        if !self.models.is_empty() && !self.models.iter().any(|m| m == model) {
            return false;
        }
        let kept = self.sample_rate >= 1.0 || sampled_in(request_id, self.sample_rate);
        if !kept {
            metrics::counter!("mlserve_prediction_log_sampled_out_total").increment(rows as u64);
        }
        kept
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
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in request_id.as_bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
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

    #[test]
    fn sqlite_inserts_have_a_row_of_placeholders_per_record() {
        assert!(sqlite_insert(1).contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT"));
        assert_eq!(sqlite_insert(3).matches('?').count(), 3 * COLUMNS);
        assert!(sqlite_insert(2).contains("?), (?"));
    }

    #[test]
    fn postgres_reads_records_by_the_names_they_serialize_under() {
        let record = PredictionRecord {
            request_id: "r".into(),
            row_index: 0,
            created_at_ms: 1,
            model: "m".into(),
            version: "1".into(),
            inputs: "{}".into(),
            label: "a".into(),
            probabilities: "{}".into(),
            latency_ms: 0.5,
            key_name: None,
        };
        let json = serde_json::to_value(&record).unwrap();
        for field in json.as_object().unwrap().keys() {
            assert!(POSTGRES_INSERT.contains(&format!("{field} ")), "{field}");
        }
        assert_eq!(json.as_object().unwrap().len(), COLUMNS);
    }
}
