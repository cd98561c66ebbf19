//! The log writer: one task that drains the queue and writes whatever has gathered as
//! multi-row inserts in one transaction, retrying while the database is away.

use super::Store;
use super::insert::{SchemaIds, StoredRow, Version, insert_rows, rows};
use super::live::LiveCounts;
use super::policy::InputPolicy;
use super::record::PredictionRecord;
use super::sqlite_writer::{SqliteWriteError, SqliteWriter};
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
    /// What is kept of inputs: features left out or hashed.
    pub policy: InputPolicy,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            queue_capacity: 100_000,
            max_batch: 5_000,
            flush_interval: Duration::from_millis(100),
            sample_rate: 1.0,
            models: Vec::new(),
            policy: InputPolicy::default(),
        }
    }
}

/// Writes a batch in one transaction; returns the rows inserted. A failed transaction is
/// rolled back here, and a connection whose rollback fails too is closed rather than returned
/// to the pool: a pooled connection must never keep SQLite's write lock (after a full disk,
/// that wedged every later write until a restart).
async fn write_batch(store: &Store, rows: &[StoredRow<'_>]) -> Result<u64, sqlx::Error> {
    let mut connection = store.pool().acquire().await?;
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

/// Why a batch was not written: through sqlx (PostgreSQL, an in-memory SQLite database) or
/// through the writer's own SQLite connection.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] SqliteWriteError),
}

impl WriteError {
    /// Whether a later attempt may succeed, so the batch waits rather than being dropped.
    fn transient(&self) -> bool {
        match self {
            WriteError::Database(error) => transient(error),
            WriteError::Sqlite(error) => error.transient(),
        }
    }
}

fn count_dropped(rows: usize, why: &str, error: &WriteError) {
    tracing::error!(%error, rows, "prediction log: {why}");
    metrics::counter!("mlserve_prediction_log_dropped_total").increment(rows as u64);
}

/// Writes one batch. While the database is unreachable it retries with backoff (the queue
/// fills meanwhile and overflow is counted); a batch the database refuses outright is written
/// row by row, so only the rows it refuses are dropped. The writer bounds it at shutdown.
async fn write_with_retry(writer: &mut Writer, batch: &[PredictionRecord]) {
    let mut backoff = Backoff::new();
    loop {
        if !writer.reopen_if_replaced().await {
            // The file was deleted or replaced and a new one cannot be made yet (another
            // process may be creating it): writing now would put rows where no one reads them.
            backoff.failed();
            backoff.wait().await;
            continue;
        }
        let error = match writer.write(batch).await {
            Ok(()) => return,
            Err(error) => error,
        };
        writer.ids.forget();
        let attempt = backoff.failed();
        if !error.transient() && attempt >= 2 {
            for record in batch.chunks(1) {
                if let Err(error) = writer.write(record).await {
                    count_dropped(1, "the database refused a row", &error);
                }
            }
            return;
        }
        tracing::warn!(%error, rows = batch.len(), attempt, "prediction log: write failed; retrying");
        backoff.wait().await;
    }
}

/// The wait between a batch's attempts: 100 ms, doubling up to 5 s.
struct Backoff {
    delay: Duration,
    attempts: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            delay: Duration::from_millis(100),
            attempts: 0,
        }
    }

    /// Counts a failed attempt (in `/metrics` too); returns how many there were.
    fn failed(&mut self) -> u32 {
        self.attempts += 1;
        metrics::counter!("mlserve_prediction_log_write_errors_total").increment(1);
        self.attempts
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
    }
}

/// What the writer keeps between batches.
struct Writer {
    store: Store,
    /// PostgreSQL's own driver, for the inserts (`None` on SQLite).
    postgres: Option<sqlx::PgPool>,
    /// SQLite's own API, for the inserts into a SQLite file (`None` on PostgreSQL and for an
    /// in-memory database, which only the pool's connections can reach).
    sqlite: Option<SqliteWriter>,
    ids: SchemaIds,
    policy: InputPolicy,
    live: Arc<LiveCounts>,
}

impl Writer {
    /// Moves to a new database file when the one in use was deleted or replaced, so that no
    /// row is written where no one can read it. False when it was and no new one could be
    /// opened.
    async fn reopen_if_replaced(&mut self) -> bool {
        match self.store.reopen_if_replaced().await {
            Ok(false) => true,
            Ok(true) => {
                self.ids.forget();
                if let Some(sqlite) = &mut self.sqlite {
                    sqlite.reconnect();
                }
                self.live.clear();
                metrics::counter!("mlserve_prediction_log_reopened_total").increment(1);
                tracing::error!(
                    "prediction log: the database file was deleted or replaced while in use; \
                     a new one was created and the log goes on in it"
                );
                true
            }
            Err(error) => {
                tracing::error!(%error, "prediction log: the database file was deleted and cannot be created again yet; retrying");
                false
            }
        }
    }

    /// Writes records in one transaction, and counts what committed in the live metrics.
    async fn write(&mut self, batch: &[PredictionRecord]) -> Result<(), WriteError> {
        let versions = self.ids.versions(&self.store, batch, &self.policy).await?;
        let rows = rows(batch, &versions);
        let inserted = match (&self.postgres, &mut self.sqlite) {
            (Some(pool), _) => super::insert::insert_rows_postgres(pool, &rows).await?,
            (None, Some(sqlite)) => sqlite.write(&rows).await?,
            (None, None) => write_batch(&self.store, &rows).await?,
        };
        count_written(batch.len(), inserted);
        let logged = if inserted == batch.len() as u64 {
            vec![true; batch.len()]
        } else {
            which_were_logged(&self.store, batch).await
        };
        self.live.add(|pending| {
            for ((record, version), logged) in batch.iter().zip(&versions).zip(logged) {
                if logged {
                    count_live(pending, record, version);
                }
            }
        });
        Ok(())
    }
}

/// Which records of a batch that met rows already logged under their request id and row
/// (a client reusing an `x-request-id`) are the ones in the log, so that the live counts
/// count what the log holds. Rare, so one lookup a record; a record that cannot be looked
/// up is counted.
async fn which_were_logged(store: &Store, batch: &[PredictionRecord]) -> Vec<bool> {
    let mut logged = Vec::with_capacity(batch.len());
    for record in batch {
        let stored = store
            .logged_time(&record.request_id.to_bytes(), record.row_index)
            .await;
        logged.push(match stored {
            Ok(Some((at, latency))) => {
                at == record.created_at_ms && latency == i64::from(record.latency_us)
            }
            Ok(None) | Err(_) => true,
        });
    }
    logged
}

/// Adds a committed row to the live counts: drift bins for the features kept as values, and
/// the bin of a predicted value among the deciles of the model's predictions on held-out data
/// (its [`crate::model::TargetSchema::predictions`]).
fn count_live(pending: &mut super::live::Pending, record: &PredictionRecord, version: &Version) {
    let manifest = &record.model.artifact.manifest;
    pending.add_prediction(
        version.id,
        record.created_at_ms,
        &version.drift,
        record.inputs(),
    );
    let target_bins = manifest
        .target
        .as_ref()
        .and_then(|t| t.predictions.as_ref());
    if let (Some(value), Some(bins)) = (record.value, target_bins) {
        pending.add_predicted_value(
            version.id,
            record.created_at_ms,
            bins.bin(value),
            bins.shares.len(),
        );
    }
}

/// How often the writer writes the live counts of what it committed.
const LIVE_COUNTS_EVERY: Duration = Duration::from_secs(1);

async fn write_live_counts(store: &Store, live: &LiveCounts) {
    if let Err(error) = live.write(store).await {
        tracing::warn!(%error, "prediction log: live counts not written; retrying with the next ones");
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
    let mut counted_at = Instant::now();
    let postgres = match store.postgres_writer_pool() {
        Ok(pool) => pool,
        Err(error) => {
            // The URL already opened the log: this cannot fail but on a parser difference.
            tracing::error!(%error, "prediction log: PostgreSQL's own driver refused the URL; writing through the other pool");
            None
        }
    };
    let mut writer = Writer {
        store: store.clone(),
        postgres,
        sqlite: store.sqlite_file_path().map(SqliteWriter::new),
        ids: SchemaIds::default(),
        policy: settings.policy.clone(),
        live: live.clone(),
    };
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, max_batch) => Some(received),
            // Shutdown: refuse new records, then drain what is queued.
            _ = closing.wait_for(|closing| *closing), if !receiver.is_closed() => {
                receiver.close();
                continue;
            }
            // Counts of the last batches wait at most a second, traffic or not.
            () = tokio::time::sleep_until((counted_at + LIVE_COUNTS_EVERY).into()), if live.has_unwritten() => {
                None
            }
        };
        let Some(received) = received else {
            counted_at = Instant::now();
            write_live_counts(&store, &live).await;
            continue;
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
            () = write_with_retry(&mut writer, &batch) => true,
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
        // The live counts are written once a second, not after every batch: a few statements
        // per model version, read, added to and written back.
        if counted_at.elapsed() >= LIVE_COUNTS_EVERY {
            counted_at = Instant::now();
            write_live_counts(&store, &live).await;
        }
    }
    write_live_counts(&store, &live).await;
    in_hand.store(0, Ordering::Relaxed);
    metrics::gauge!("mlserve_prediction_log_queue_depth").set(0.0);
}
