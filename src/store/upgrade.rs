//! Moving a log written by an earlier release into the compact layout, in place, at start-up.
//!
//! The schema migration renamed the first layout's tables (`predictions_v1`, `feedback_v1`);
//! this moves their rows over in chunks, each chunk in one transaction that also deletes what
//! it moved, so an upgrade that is interrupted resumes where it stopped and the file does not
//! need room for two copies. Those rows' versions have no stored schema, so each row's is read
//! from the row itself: feature names in the order they were written, kinds from the JSON
//! values (an integer, a fraction, a boolean, text), labels from the probabilities. A null
//! takes its feature's kind from the version's other rows, so that rows that differ only in
//! which values are missing share one schema. Everything reads back exactly as it was written.

use super::drift::DriftBins;
use super::insert::{StoredRow, ensure_schema, insert_rows};
use super::live::Pending;
use super::log_schema::{LogFeature, LogSchema};
use super::policy::Kept;
use super::record::{RequestKey, encode_doubles};
use super::{Backend, Store, StoreError};
use crate::data::ColumnKind;
use serde_json::{Map, Value};
use sqlx::Row;
use std::borrow::Cow;
use std::collections::HashMap;

/// Rows moved per transaction.
const CHUNK: i64 = 5_000;

/// Serializes upgrades of one PostgreSQL database by several replicas starting at once.
const ADVISORY_LOCK: i64 = 0x6d6c_7365_7276_6531;

/// Moves the rows of the first layout, if any are left, and drops its tables.
pub(super) async fn move_first_layout_rows(store: &Store) -> Result<(), StoreError> {
    let mut connection = store.pool().acquire().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(ADVISORY_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    let moved = move_rows(store, &mut connection).await;
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(ADVISORY_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    moved
}

async fn table_exists(
    store: &Store,
    connection: &mut sqlx::AnyConnection,
    table: &str,
) -> Result<bool, sqlx::Error> {
    let sql = match store.backend() {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = $1 \
             AND table_schema = current_schema()"
        }
    };
    let count: i64 = sqlx::query_scalar(sql)
        .bind(table.to_string())
        .fetch_one(&mut *connection)
        .await?;
    Ok(count > 0)
}

async fn move_rows(store: &Store, connection: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    if !table_exists(store, connection, "predictions_v1").await? {
        return Ok(());
    }
    let mut known = Known::default();
    let mut total = 0u64;
    loop {
        let moved = move_chunk(store, connection, &mut known).await?;
        if moved == 0 {
            break;
        }
        total += moved;
        tracing::info!(
            rows = total,
            "prediction log: moving rows to the compact layout"
        );
    }
    let mut feedback = 0;
    loop {
        let moved = move_feedback_chunk(store, connection).await?;
        if moved == 0 {
            break;
        }
        feedback += moved;
    }
    sqlx::query("DROP TABLE predictions_v1")
        .execute(&mut *connection)
        .await?;
    sqlx::query("DROP TABLE feedback_v1")
        .execute(&mut *connection)
        .await?;
    if total > 0 || feedback > 0 {
        tracing::info!(
            predictions = total,
            feedback,
            "prediction log: moved to the compact layout"
        );
    }
    Ok(())
}

/// The process id under which the upgrade writes the live counts of the rows it moves.
const UPGRADE_REPLICA: &str = "upgrade";

/// What the rows moved so far tell about their versions.
#[derive(Default)]
struct Known {
    /// Stored schema ids by model, version and schema digest.
    schemas: HashMap<(String, String, String), i64>,
    /// By model and version, each feature's kind as its non-null values show it.
    kinds: HashMap<(String, String), HashMap<String, ColumnKind>>,
}

impl Known {
    /// Learns the kinds of a row's non-null values.
    fn learn(&mut self, old: &OldRow) {
        let kinds = self
            .kinds
            .entry((old.model.clone(), old.version.clone()))
            .or_default();
        for (name, value) in &old.inputs {
            if let Some(kind) = kind_of(value) {
                kinds.entry(name.clone()).or_insert(kind);
            }
        }
    }

    fn kinds_of(&self, old: &OldRow) -> Option<&HashMap<String, ColumnKind>> {
        self.kinds.get(&(old.model.clone(), old.version.clone()))
    }
}

/// The kind a JSON value shows; `None` for null.
fn kind_of(value: &Value) -> Option<ColumnKind> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(ColumnKind::Boolean),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(ColumnKind::Integer),
        Value::String(_) => Some(ColumnKind::String),
        _ => Some(ColumnKind::Number),
    }
}

/// Moves the oldest [`CHUNK`] rows; returns how many there were.
async fn move_chunk(
    store: &Store,
    connection: &mut sqlx::AnyConnection,
    known: &mut Known,
) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT id, request_id, row_index, created_at_ms, model, version, inputs, label, \
         probabilities, latency_ms, key_name FROM predictions_v1 ORDER BY id LIMIT $1",
    )
    .bind(CHUNK)
    .fetch_all(&mut *connection)
    .await?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let last_id: i64 = last.try_get("id")?;
    let olds = rows
        .iter()
        .map(OldRow::read)
        .collect::<Result<Vec<_>, _>>()?;
    for old in &olds {
        known.learn(old);
    }
    let mut stored = Vec::with_capacity(rows.len());
    for old in olds {
        let (schema, inputs, probabilities) = old.compact(known.kinds_of(&old));
        let (_, digest) = schema.stored();
        let key = (old.model.clone(), old.version.clone(), digest);
        let schema_id = match known.schemas.get(&key) {
            Some(id) => *id,
            None => {
                let id = ensure_schema(connection, &old.model, &old.version, &schema).await?;
                known.schemas.insert(key, id);
                id
            }
        };
        stored.push(StoredRow {
            request_id: Cow::Owned(RequestKey::of(&old.request_id).to_bytes()),
            row_index: old.row_index,
            created_at_ms: old.created_at_ms,
            schema_id,
            label: schema
                .labels
                .iter()
                .position(|l| *l == old.label)
                .map(|i| i as i64),
            value: None,
            inputs: Cow::Owned(inputs),
            probabilities: Some(Cow::Owned(probabilities)),
            latency_us: (old.latency_ms * 1e3).round() as i64,
            key_name: old.key_name.map(Cow::Owned),
        });
    }
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    insert_rows(store.backend(), &mut transaction, &stored).await?;
    sqlx::query("DELETE FROM predictions_v1 WHERE id <= $1")
        .bind(last_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    let mut pending = Pending::default();
    for row in &stored {
        // Moved rows are counted as predictions; their drift bins are not counted.
        pending.add_prediction(
            row.schema_id,
            row.created_at_ms,
            &DriftBins::default(),
            &row.inputs,
        );
    }
    store
        .write_stats(UPGRADE_REPLICA, pending)
        .await
        .map_err(|(error, _)| error)?;
    Ok(rows.len() as u64)
}

/// Moves up to [`CHUNK`] feedback rows in one transaction that also deletes them from the old
/// table, and counts each (predicted, true) pair in the live metrics; returns how many moved.
async fn move_feedback_chunk(
    store: &Store,
    connection: &mut sqlx::AnyConnection,
) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT request_id, row_index, label, created_at_ms, key_name FROM feedback_v1 LIMIT $1",
    )
    .bind(CHUNK)
    .fetch_all(&mut *connection)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut pairs = Vec::new();
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    for row in &rows {
        let request_id: String = row.try_get("request_id")?;
        let row_index: i64 = row.try_get("row_index")?;
        let label: String = row.try_get("label")?;
        let key = RequestKey::of(&request_id).to_bytes();
        sqlx::query(
            "INSERT INTO feedback (request_id, row_index, label, created_at_ms, key_name) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, row_index) DO NOTHING",
        )
        .bind(key.clone())
        .bind(row_index)
        .bind(label.clone())
        .bind(row.try_get::<i64, _>("created_at_ms")?)
        .bind(row.try_get::<Option<String>, _>("key_name")?)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM feedback_v1 WHERE request_id = $1 AND row_index = $2")
            .bind(request_id)
            .bind(row_index)
            .execute(&mut *transaction)
            .await?;
        let predicted = sqlx::query(
            "SELECT schema_id, label, created_at_ms FROM predictions \
             WHERE request_id = $1 AND row_index = $2",
        )
        .bind(key)
        .bind(row_index)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some(predicted) = predicted {
            let schema_id: i64 = predicted.try_get("schema_id")?;
            let index: Option<i64> = predicted.try_get("label")?;
            let at: i64 = predicted.try_get("created_at_ms")?;
            pairs.push((schema_id, index, at, label));
        }
    }
    transaction.commit().await?;
    let ids: Vec<i64> = pairs.iter().map(|(id, ..)| *id).collect();
    let schemas = store.schemas(&ids).await?;
    let mut pending = Pending::default();
    for (schema_id, index, at, actual) in &pairs {
        let predicted = schemas
            .get(schema_id)
            .zip(*index)
            .and_then(|(s, i)| s.schema.label(i));
        if let Some(predicted) = predicted {
            pending.add_pair(*schema_id, *at, predicted, actual, 1);
        }
    }
    store
        .write_stats(UPGRADE_REPLICA, pending)
        .await
        .map_err(|(error, _)| error)?;
    Ok(rows.len() as u64)
}

/// A row of the first layout.
struct OldRow {
    request_id: String,
    row_index: i64,
    created_at_ms: i64,
    model: String,
    version: String,
    /// The inputs as written: a JSON object (empty when unreadable).
    inputs: Map<String, Value>,
    label: String,
    probabilities: String,
    latency_ms: f64,
    key_name: Option<String>,
}

impl OldRow {
    fn read(row: &sqlx::any::AnyRow) -> Result<OldRow, sqlx::Error> {
        Ok(OldRow {
            request_id: row.try_get("request_id")?,
            row_index: row.try_get("row_index")?,
            created_at_ms: row.try_get("created_at_ms")?,
            model: row.try_get("model")?,
            version: row.try_get("version")?,
            inputs: parse_object(&row.try_get::<String, _>("inputs")?),
            label: row.try_get("label")?,
            probabilities: row.try_get("probabilities")?,
            latency_ms: row.try_get("latency_ms")?,
            key_name: row.try_get("key_name")?,
        })
    }

    /// The row's own schema, its inputs and its probabilities in the compact form; a null
    /// value takes its feature's kind from `kinds` (a number when no row shows it).
    fn compact(
        &self,
        kinds: Option<&HashMap<String, ColumnKind>>,
    ) -> (LogSchema, Vec<u8>, Vec<u8>) {
        let probabilities = parse_object(&self.probabilities);
        let mut features = Vec::with_capacity(self.inputs.len());
        let mut bytes = Vec::with_capacity(self.inputs.len() * 8);
        for (name, value) in &self.inputs {
            let kind = kind_of(value)
                .or_else(|| kinds.and_then(|k| k.get(name)).copied())
                .unwrap_or(ColumnKind::Number);
            features.push(LogFeature {
                name: name.clone(),
                kind,
                categories: None,
                kept: Kept::Value,
            });
            match value {
                Value::Bool(b) => bytes.extend_from_slice(&f64::from(u8::from(*b)).to_le_bytes()),
                Value::Number(n) => {
                    bytes.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes())
                }
                Value::String(text) => {
                    bytes.extend(super::record::text_bytes(text));
                }
                // Missing: the empty varint for text, NaN for numbers.
                _ if kind == ColumnKind::String => bytes.push(0),
                _ => bytes.extend_from_slice(&f64::NAN.to_le_bytes()),
            }
        }
        let labels: Vec<String> = probabilities.keys().cloned().collect();
        let values: Vec<f64> = probabilities
            .values()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        (
            LogSchema { features, labels },
            bytes,
            encode_doubles(&values),
        )
    }
}

fn parse_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}
