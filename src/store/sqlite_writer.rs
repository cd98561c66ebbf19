//! The log writer's inserts into a SQLite file, through SQLite's own API (rusqlite) on a
//! blocking thread rather than through sqlx's `Any` driver.
//!
//! Why: under callgrind, sqlx spent about 6,100 instructions a logged row between building
//! the `Any` arguments of a 100-row insert (about 2,600 on the writer task) and converting,
//! binding and stepping them on its connection thread (about 3,500), a quarter of what the log
//! cost a request. Here a batch is packed into one buffer, moved to a blocking thread with the
//! connection, and written with the same multi-row statements as the sqlx path
//! ([`super::insert::sqlite_insert`]), prepared once and bound straight from the buffer. Everything else (schemas, live counts, retention, reads) stays on the sqlx pool.
//!
//! A failure drops the connection (SQLite rolls back and releases its locks when a connection
//! closes), and the next batch opens a new one: no lock is ever held across a failure.

use super::connect::sqlite_pragmas;
use super::insert::{COLUMNS, StoredRow, sqlite_chunks, sqlite_insert};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

/// One row of [`PackedRows`]: its numbers, and where its bytes are in the buffer.
#[derive(Debug, Clone)]
struct PackedRow {
    request_id: Range<usize>,
    row_index: i64,
    created_at_ms: i64,
    schema_id: i64,
    label: Option<i64>,
    value: Option<f64>,
    inputs: Range<usize>,
    probabilities: Option<Range<usize>>,
    latency_us: i64,
    key_name: Option<Range<usize>>,
}

/// A batch's rows as SQLite's thread writes them: every row's bytes in one buffer, so a batch
/// moves to the thread without an allocation a row. Reused from batch to batch.
#[derive(Debug, Default)]
pub(super) struct PackedRows {
    bytes: Vec<u8>,
    rows: Vec<PackedRow>,
}

impl PackedRows {
    /// Packs `rows`, replacing what the buffer held.
    pub fn pack(&mut self, rows: &[StoredRow<'_>]) {
        self.bytes.clear();
        self.rows.clear();
        for row in rows {
            let packed = PackedRow {
                request_id: self.push(&row.request_id),
                row_index: row.row_index,
                created_at_ms: row.created_at_ms,
                schema_id: row.schema_id,
                label: row.label,
                value: row.value,
                inputs: self.push(&row.inputs),
                probabilities: row.probabilities.as_deref().map(|p| self.push(p)),
                latency_us: row.latency_us,
                key_name: row.key_name.as_deref().map(|k| self.push(k.as_bytes())),
            };
            self.rows.push(packed);
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    fn bytes(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }

    /// The key name's text. It was packed from a `str`, so it is UTF-8; lossy only to keep the
    /// insert free of a panic path.
    fn text(&self, range: &Range<usize>) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes(range))
    }
}

/// What SQLite's API reports, or the blocking thread ending without an answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum SqliteWriteError {
    /// SQLite refused to open the file or to write.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task that writes did not finish (a panic, or the runtime shutting down).
    #[error("the SQLite writing thread stopped: {0}")]
    Thread(String),
}

impl SqliteWriteError {
    /// Whether a later attempt may succeed: the file is busy or locked, its disk full, read-only,
    /// missing or failing, or memory ran out (the kinds the writer retries through sqlx too).
    pub fn transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            SqliteWriteError::Sqlite(error) => matches!(
                error.sqlite_error_code(),
                Some(
                    DatabaseBusy
                        | DatabaseLocked
                        | OutOfMemory
                        | ReadOnly
                        | SystemIoFailure
                        | DiskFull
                        | CannotOpen
                )
            ),
            SqliteWriteError::Thread(_) => false,
        }
    }
}

/// The writer's own connection to the log's SQLite file, opened when first needed and dropped
/// after any failure.
pub(super) struct SqliteWriter {
    path: PathBuf,
    connection: Option<Connection>,
    /// The buffer of the batch being written, kept for the next one.
    spare: PackedRows,
}

impl SqliteWriter {
    /// A writer of the file at `path`, which the store has created with its tables.
    pub fn new(path: PathBuf) -> SqliteWriter {
        SqliteWriter {
            path,
            connection: None,
            spare: PackedRows::default(),
        }
    }

    /// Closes the connection, so the next write opens the file anew (after the store moved to
    /// a new file that replaced a deleted one).
    pub fn reconnect(&mut self) {
        self.connection = None;
    }

    /// Writes `rows` in one transaction on a blocking thread; returns the rows inserted.
    pub async fn write(&mut self, rows: &[StoredRow<'_>]) -> Result<u64, SqliteWriteError> {
        let mut packed = std::mem::take(&mut self.spare);
        packed.pack(rows);
        let connection = self.connection.take();
        let path = self.path.clone();
        let (connection, packed, result) = tokio::task::spawn_blocking(move || {
            let (connection, result) = write_blocking(connection, &path, &packed);
            (connection, packed, result)
        })
        .await
        .map_err(|error| SqliteWriteError::Thread(error.to_string()))?;
        self.connection = connection;
        self.spare = packed;
        result
    }
}

/// Opens the connection when there is none and writes; the connection comes back only when
/// everything succeeded.
fn write_blocking(
    connection: Option<Connection>,
    path: &std::path::Path,
    rows: &PackedRows,
) -> (Option<Connection>, Result<u64, SqliteWriteError>) {
    let mut connection = match connection.map_or_else(|| open(path), Ok) {
        Ok(connection) => connection,
        Err(error) => return (None, Err(error.into())),
    };
    match insert(&mut connection, rows) {
        Ok(inserted) => (Some(connection), Ok(inserted)),
        // Dropping the connection rolls back what the transaction wrote and frees its locks.
        Err(error) => (None, Err(error.into())),
    }
}

/// Opens the existing file (never creating one: a missing file is the store's to create, with
/// its tables) with the settings of the store's other connections.
fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(5))?;
    for pragma in sqlite_pragmas() {
        // Some pragmas answer with a row (journal_mode its mode): read and ignore it.
        connection
            .query_row(&pragma, [], |_| Ok(()))
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                error => Err(error),
            })?;
    }
    Ok(connection)
}

/// Inserts every row in one immediate transaction (it takes the write lock at its start, so a
/// busy file is waited for under the busy timeout rather than failing midway).
fn insert(connection: &mut Connection, rows: &PackedRows) -> rusqlite::Result<u64> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = 0;
    for chunk in sqlite_chunks(&rows.rows) {
        let mut statement = transaction.prepare_cached(&sqlite_insert(chunk.len()))?;
        for (i, row) in chunk.iter().enumerate() {
            bind_row(&mut statement, i * COLUMNS, rows, row)?;
        }
        inserted += statement.raw_execute()? as u64;
    }
    transaction.commit()?;
    Ok(inserted)
}

/// Binds a row's values to the placeholders after the first `offset`.
fn bind_row(
    statement: &mut rusqlite::CachedStatement<'_>,
    offset: usize,
    rows: &PackedRows,
    row: &PackedRow,
) -> rusqlite::Result<()> {
    statement.raw_bind_parameter(offset + 1, rows.bytes(&row.request_id))?;
    statement.raw_bind_parameter(offset + 2, row.row_index)?;
    statement.raw_bind_parameter(offset + 3, row.created_at_ms)?;
    statement.raw_bind_parameter(offset + 4, row.schema_id)?;
    statement.raw_bind_parameter(offset + 5, row.label)?;
    statement.raw_bind_parameter(offset + 6, row.value)?;
    statement.raw_bind_parameter(offset + 7, rows.bytes(&row.inputs))?;
    statement.raw_bind_parameter(
        offset + 8,
        row.probabilities.as_ref().map(|p| rows.bytes(p)),
    )?;
    statement.raw_bind_parameter(offset + 9, row.latency_us)?;
    statement.raw_bind_parameter(offset + 10, row.key_name.as_ref().map(|k| rows.text(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn row<'a>(id: u8, key_name: Option<&'a str>) -> StoredRow<'a> {
        StoredRow {
            request_id: Cow::Owned(vec![id; 16]),
            row_index: 0,
            created_at_ms: 1_700_000_000_000 + i64::from(id),
            schema_id: 1,
            label: Some(1),
            value: None,
            inputs: Cow::Owned(vec![id, 1, 2, 3]),
            probabilities: Some(Cow::Owned(vec![9; 16])),
            latency_us: 42,
            key_name: key_name.map(Cow::Borrowed),
        }
    }

    #[test]
    fn packed_rows_give_back_each_rows_bytes() {
        let mut packed = PackedRows::default();
        packed.pack(&[row(1, Some("alice")), row(2, None)]);
        assert_eq!(packed.rows.len(), 2);
        let second = &packed.rows[1];
        assert_eq!(packed.bytes(&second.request_id), &[2; 16]);
        assert_eq!(packed.bytes(&second.inputs), &[2, 1, 2, 3]);
        assert!(second.key_name.is_none());
        let first = &packed.rows[0];
        assert_eq!(packed.text(first.key_name.as_ref().unwrap()), "alice");
        // Packing again replaces what was there.
        packed.pack(&[row(3, None)]);
        assert_eq!(packed.rows.len(), 1);
        assert_eq!(packed.bytes(&packed.rows[0].request_id), &[3; 16]);
    }

    fn table(path: &std::path::Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE predictions (id INTEGER PRIMARY KEY, request_id BLOB NOT NULL, \
                 row_index INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, \
                 schema_id INTEGER NOT NULL, label INTEGER, value REAL, inputs BLOB NOT NULL, \
                 probabilities BLOB, latency_us INTEGER NOT NULL, key_name TEXT, \
                 UNIQUE (request_id, row_index))",
            )
            .unwrap();
        connection
    }

    /// A log file with the table, a connection reading it, and a writer of it.
    fn log_file() -> (tempfile::TempDir, Connection, SqliteWriter) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let reader = table(&path);
        (dir, reader, SqliteWriter::new(path))
    }

    #[tokio::test]
    async fn rows_are_written_once_and_read_back_as_packed() {
        let (_dir, reader, mut writer) = log_file();
        let rows = [row(1, Some("alice")), row(2, None)];
        assert_eq!(writer.write(&rows).await.unwrap(), 2);
        // The same request ids again: nothing new, and the batch does not fail.
        assert_eq!(writer.write(&rows).await.unwrap(), 0);
        let (inputs, key, probabilities): (Vec<u8>, Option<String>, Vec<u8>) = reader
            .query_row(
                "SELECT inputs, key_name, probabilities FROM predictions WHERE request_id = ?1",
                [vec![1u8; 16]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (inputs, key.as_deref(), probabilities),
            (vec![1, 1, 2, 3], Some("alice"), vec![9; 16])
        );
    }

    #[tokio::test]
    async fn a_batch_of_any_size_is_cut_into_the_prepared_statements_sizes() {
        let (_dir, reader, mut writer) = log_file();
        // 123 = 100 + 2 x 10 + 3 x 1.
        let rows: Vec<StoredRow<'_>> = (0..123).map(|i| row(i, None)).collect();
        assert_eq!(writer.write(&rows).await.unwrap(), 123);
        let ids: Vec<u8> = reader
            .prepare("SELECT inputs FROM predictions ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|inputs| inputs.unwrap()[0])
            .collect();
        assert_eq!(ids, (0..123).collect::<Vec<u8>>());
        assert_eq!(writer.write(&rows[95..]).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_missing_file_is_a_transient_error_and_never_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.db");
        let mut writer = SqliteWriter::new(path.clone());
        let error = writer.write(&[row(1, None)]).await.unwrap_err();
        assert!(error.transient(), "{error}");
        assert!(!path.exists());
        // Once the file is there, the same writer writes.
        drop(table(&path));
        assert_eq!(writer.write(&[row(1, None)]).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_batch_writes_nothing_and_holds_no_lock() {
        let (_dir, reader, mut writer) = log_file();
        assert_eq!(writer.write(&[row(1, None)]).await.unwrap(), 1);
        // A row the table refuses (a NOT NULL column) fails the whole batch, not as transient.
        let mut bad = row(3, None);
        bad.probabilities = None;
        reader
            .execute_batch(
                "CREATE TRIGGER refuse_rows_without_probabilities BEFORE INSERT ON predictions \
                 WHEN NEW.probabilities IS NULL BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .unwrap();
        let error = writer.write(&[row(2, None), bad]).await.unwrap_err();
        assert!(!error.transient(), "{error}");
        let count: i64 = reader
            .query_row("SELECT count(*) FROM predictions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1, "the batch's first row was rolled back");
        // Another connection can take the write lock at once.
        reader
            .execute_batch("BEGIN IMMEDIATE; DELETE FROM predictions; COMMIT;")
            .unwrap();
    }
}
