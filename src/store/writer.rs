//! The log writer: one task that drains the queue and writes whatever has gathered as
//! multi-row inserts in one transaction, retrying while the database is away.

use super::live::LiveCounts;
use super::record::{LogSchema, PredictionRecord, encode_doubles};
use super::{Backend, Store};
use crate::model::LoadedModel;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

/// One row as it is inserted: the compact form of [`super::record`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(super) struct StoredRow {
    /// The request id's bytes ([`super::record::RequestKey::to_bytes`]).
    #[serde(serialize_with = "base64_text")]
    pub request_id: Vec<u8>,
    pub row_index: i64,
    pub created_at_ms: i64,
    pub schema_id: i64,
    /// The predicted class's index.
    pub label: Option<i64>,
    /// The predicted value (regression).
    pub value: Option<f64>,
    #[serde(serialize_with = "base64_text")]
    pub inputs: Vec<u8>,
    #[serde(serialize_with = "base64_option")]
    pub probabilities: Option<Vec<u8>>,
    pub latency_us: i64,
    pub key_name: Option<Arc<str>>,
}

fn base64_text<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn base64_option<S: serde::Serializer>(
    bytes: &Option<Vec<u8>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => base64_text(bytes, serializer),
        None => serializer.serialize_none(),
    }
}

/// Columns of one row, in insert order.
const COLUMNS: usize = 10;

const COLUMN_LIST: &str = "request_id, row_index, created_at_ms, schema_id, label, value, \
     inputs, probabilities, latency_us, key_name";

/// The SQLite insert of `rows` rows, with anonymous `?` placeholders: the driver looks up
/// every numbered one by name, which made a 1,000-parameter insert quadratic.
fn sqlite_insert(rows: usize) -> String {
    let row = format!("({})", ["?"; COLUMNS].join(", "));
    // A retried batch after a timeout must not log a prediction twice.
    format!(
        "INSERT INTO predictions ({COLUMN_LIST}) VALUES {} \
         ON CONFLICT (request_id, row_index) DO NOTHING",
        vec![row; rows].join(", ")
    )
}

/// Rows per SQLite insert statement. Fixed sizes keep the statements few, so each is prepared
/// once and then taken from the connection's statement cache; a batch is cut into chunks of these.
const CHUNKS: [usize; 3] = [100, 10, 1];

/// Rows per PostgreSQL insert: one statement (one round trip) carries them all as JSON.
const POSTGRES_CHUNK: usize = 5_000;

/// The PostgreSQL insert of a JSON array of rows (bytes as base64). One parameter whatever the
/// row count: sqlx does not set TCP_NODELAY, so every statement can wait for a delayed ACK (up
/// to 40 ms on Linux); a statement per 100 rows held the log to about 2,000 rows a second.
const POSTGRES_INSERT: &str = "INSERT INTO predictions (request_id, row_index, created_at_ms, \
     schema_id, label, value, inputs, probabilities, latency_us, key_name) \
     SELECT decode(request_id, 'base64'), row_index, created_at_ms, schema_id, label, value, \
     decode(inputs, 'base64'), decode(probabilities, 'base64'), latency_us, key_name \
     FROM json_to_recordset($1::json) AS r(request_id text, row_index integer, \
     created_at_ms bigint, schema_id bigint, label integer, value double precision, \
     inputs text, probabilities text, latency_us integer, key_name text) \
     ON CONFLICT (request_id, row_index) DO NOTHING";

/// Inserts rows inside `transaction`; returns the rows inserted (a row whose request id and
/// row index are already logged is left out).
pub(super) async fn insert_rows(
    backend: Backend,
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[StoredRow],
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    match backend {
        Backend::Postgres => {
            for chunk in rows.chunks(POSTGRES_CHUNK) {
                let json = serde_json::to_string(chunk)
                    .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
                inserted += sqlx::query(POSTGRES_INSERT)
                    .bind(json)
                    .execute(&mut **transaction)
                    .await?
                    .rows_affected();
            }
        }
        Backend::Sqlite => {
            let mut rest = rows;
            while !rest.is_empty() {
                let size = CHUNKS
                    .into_iter()
                    .find(|&size| size <= rest.len())
                    .unwrap_or(1);
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let mut query = sqlx::query(Store::sql(sqlite_insert(size)));
                for row in chunk {
                    query = query
                        .bind(row.request_id.as_slice())
                        .bind(row.row_index)
                        .bind(row.created_at_ms)
                        .bind(row.schema_id)
                        .bind(row.label)
                        .bind(row.value)
                        .bind(row.inputs.as_slice())
                        .bind(row.probabilities.as_deref())
                        .bind(row.latency_us)
                        .bind(row.key_name.as_deref());
                }
                inserted += query.execute(&mut **transaction).await?.rows_affected();
            }
        }
    }
    Ok(inserted)
}

/// The id of a model version's schema in `log_schemas`, adding it when new.
pub(super) async fn ensure_schema(
    connection: &mut sqlx::AnyConnection,
    model: &str,
    version: &str,
    schema: &LogSchema,
) -> Result<i64, sqlx::Error> {
    let (text, digest) = schema.stored();
    sqlx::query(
        "INSERT INTO log_schemas (model, version, digest, schema) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model, version, digest) DO NOTHING",
    )
    .bind(model.to_string())
    .bind(version.to_string())
    .bind(digest.clone())
    .bind(text)
    .execute(&mut *connection)
    .await?;
    sqlx::query_scalar(
        "SELECT id FROM log_schemas WHERE model = $1 AND version = $2 AND digest = $3",
    )
    .bind(model.to_string())
    .bind(version.to_string())
    .bind(digest)
    .fetch_one(&mut *connection)
    .await
}

/// The schema ids of the model versions the writer has seen, by the address of their loaded
/// model (kept alive here, so an address is never reused while it is a key).
#[derive(Default)]
pub(super) struct SchemaIds {
    ids: HashMap<usize, (Arc<LoadedModel>, i64)>,
}

impl SchemaIds {
    async fn of(&mut self, store: &Store, model: &Arc<LoadedModel>) -> Result<i64, sqlx::Error> {
        let key = Arc::as_ptr(model) as usize;
        if let Some((_, id)) = self.ids.get(&key) {
            return Ok(*id);
        }
        let manifest = &model.artifact.manifest;
        let schema = LogSchema::of(&manifest.features, &manifest.labels);
        let mut connection = store.pool.acquire().await?;
        let id =
            ensure_schema(&mut connection, model.name(), &model.version_label, &schema).await?;
        // Reloads make new loaded models; forget old ones now and then rather than keep them.
        if self.ids.len() >= 1_000 {
            self.ids.clear();
        }
        self.ids.insert(key, (model.clone(), id));
        Ok(id)
    }

    /// Forgets every id: after a failure the database may be a new, empty file.
    fn forget(&mut self) {
        self.ids.clear();
    }

    /// The rows of a batch, with their versions' schema ids.
    async fn rows(
        &mut self,
        store: &Store,
        batch: &[PredictionRecord],
    ) -> Result<Vec<StoredRow>, sqlx::Error> {
        let mut rows = Vec::with_capacity(batch.len());
        for record in batch {
            let schema_id = self.of(store, &record.model).await?;
            rows.push(StoredRow {
                request_id: record.request_id.to_bytes(),
                row_index: i64::from(record.row_index),
                created_at_ms: record.created_at_ms,
                schema_id,
                label: record.label.map(i64::from),
                value: None,
                inputs: record.inputs.clone(),
                probabilities: Some(encode_doubles(&record.probabilities)),
                latency_us: i64::from(record.latency_us),
                key_name: record.key_name.clone(),
            });
        }
        Ok(rows)
    }
}

/// Writes a batch in one transaction; returns the rows inserted. A failed transaction is
/// rolled back here, and a connection whose rollback fails too is closed rather than returned
/// to the pool: a pooled connection must never keep SQLite's write lock (after a full disk,
/// that wedged every later write until a restart).
async fn write_batch(store: &Store, rows: &[StoredRow]) -> Result<u64, sqlx::Error> {
    let mut connection = store.pool.acquire().await?;
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    match insert_rows(store.backend(), &mut transaction, rows).await {
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
pub(super) fn transient(error: &sqlx::Error) -> bool {
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
async fn write_with_retry(
    store: &Store,
    ids: &mut SchemaIds,
    live: &LiveCounts,
    batch: &[PredictionRecord],
) {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0u32;
    loop {
        let rows = ids.rows(store, batch).await;
        let written = match &rows {
            Ok(rows) => write_batch(store, rows).await,
            Err(_) => Err(sqlx::Error::PoolClosed),
        };
        let error = match (written, rows) {
            (Ok(inserted), Ok(rows)) => {
                count_written(batch.len(), inserted);
                count_live(live, batch, &rows);
                return;
            }
            (Err(error), Ok(_)) | (_, Err(error)) => error,
        };
        ids.forget();
        attempt += 1;
        metrics::counter!("mlserve_prediction_log_write_errors_total").increment(1);
        if !transient(&error) && attempt >= 2 {
            write_row_by_row(store, ids, live, batch).await;
            return;
        }
        tracing::warn!(%error, rows = batch.len(), attempt, "prediction log: write failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn write_row_by_row(
    store: &Store,
    ids: &mut SchemaIds,
    live: &LiveCounts,
    batch: &[PredictionRecord],
) {
    for record in batch.chunks(1) {
        let written = match ids.rows(store, record).await {
            Ok(rows) => write_batch(store, &rows)
                .await
                .map(|inserted| (inserted, rows)),
            Err(error) => Err(error),
        };
        match written {
            Ok((inserted, rows)) => {
                count_written(1, inserted);
                count_live(live, record, &rows);
            }
            Err(error) => count_dropped(1, "the database refused a row", &error),
        }
    }
}

/// Adds committed rows to the live counts.
fn count_live(live: &LiveCounts, batch: &[PredictionRecord], rows: &[StoredRow]) {
    live.add(|pending| {
        for (record, row) in batch.iter().zip(rows) {
            pending.add_prediction(
                row.schema_id,
                record.created_at_ms,
                &record.model.artifact.manifest.features,
                &record.inputs,
            );
        }
    });
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

/// Drains the queue into the database until the log closes.
pub(super) async fn run_writer(
    store: Store,
    mut receiver: mpsc::Receiver<PredictionRecord>,
    mut closing: tokio::sync::watch::Receiver<bool>,
    settings: LogSettings,
    in_hand: Arc<AtomicUsize>,
    live: Arc<LiveCounts>,
) {
    let max_batch = settings.max_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    let mut closed_at = None;
    let mut ids = SchemaIds::default();
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
        // pages are written once per interval, not once per small batch. The writer sleeps
        // meanwhile rather than waking for every record: a wake-up per request costs more CPU
        // than the write.
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
            () = write_with_retry(&store, &mut ids, &live, &batch) => true,
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
        if let Err(error) = live.write(&store).await {
            tracing::warn!(%error, "prediction log: live counts not written; retrying with the next batch");
        }
    }
    in_hand.store(0, Ordering::Relaxed);
    metrics::gauge!("mlserve_prediction_log_queue_depth").set(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_inserts_have_a_row_of_placeholders_per_record() {
        assert!(sqlite_insert(1).contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT"));
        assert_eq!(sqlite_insert(3).matches('?').count(), 3 * COLUMNS);
        assert!(sqlite_insert(2).contains("?), (?"));
    }

    #[test]
    fn postgres_reads_rows_by_the_names_they_serialize_under() {
        let row = StoredRow {
            request_id: vec![1, 2],
            row_index: 0,
            created_at_ms: 1,
            schema_id: 1,
            label: Some(0),
            value: None,
            inputs: vec![0xff],
            probabilities: None,
            latency_us: 5,
            key_name: None,
        };
        let json = serde_json::to_value(&row).unwrap();
        for field in json.as_object().unwrap().keys() {
            assert!(POSTGRES_INSERT.contains(&format!("{field} ")), "{field}");
            assert!(COLUMN_LIST.contains(field.as_str()), "{field}");
        }
        assert_eq!(json.as_object().unwrap().len(), COLUMNS);
        assert_eq!(json["request_id"], "AQI=");
    }
}
