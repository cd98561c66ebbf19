//! Inserting rows: the compact rows of a batch, their versions' schemas, and the SQL of each
//! database.

use super::drift::DriftBins;
use super::log_schema::LogSchema;
use super::policy::InputPolicy;
use super::record::PredictionRecord;
use super::{Backend, Store};
use crate::model::LoadedModel;
use base64::Engine;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// One row as it is inserted: the compact form of [`super::record`], borrowed from the
/// record it is written for (or owned, when an upgrade makes it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(super) struct StoredRow<'a> {
    /// The request id's bytes ([`super::record::RequestKey::to_bytes`]).
    #[serde(serialize_with = "base64_text")]
    pub request_id: Cow<'a, [u8]>,
    pub row_index: i64,
    pub created_at_ms: i64,
    pub schema_id: i64,
    /// The predicted class's index.
    pub label: Option<i64>,
    /// The predicted value (regression).
    pub value: Option<f64>,
    #[serde(serialize_with = "base64_text")]
    pub inputs: Cow<'a, [u8]>,
    #[serde(serialize_with = "base64_option")]
    pub probabilities: Option<Cow<'a, [u8]>>,
    pub latency_us: i64,
    pub key_name: Option<Cow<'a, str>>,
}

fn base64_text<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn base64_option<S: serde::Serializer>(
    bytes: &Option<Cow<'_, [u8]>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => base64_text(bytes, serializer),
        None => serializer.serialize_none(),
    }
}

/// Columns of one row, in insert order.
pub(super) const COLUMNS: usize = 10;

const COLUMN_LIST: &str = "request_id, row_index, created_at_ms, schema_id, label, value, \
     inputs, probabilities, latency_us, key_name";

/// The SQLite insert of `rows` rows, with anonymous `?` placeholders: the driver looks up
/// every numbered one by name, which made a 1,000-parameter insert quadratic.
pub(super) fn sqlite_insert(rows: usize) -> String {
    let row = format!("({})", ["?"; COLUMNS].join(", "));
    // A retried batch after a timeout must not log a prediction twice.
    format!(
        "INSERT INTO predictions ({COLUMN_LIST}) VALUES {} \
         ON CONFLICT (request_id, row_index) DO NOTHING",
        vec![row; rows].join(", ")
    )
}

/// Rows per SQLite insert statement. Many rows to a statement: SQLite opens its cursors on the
/// table and its two indexes once per statement (a statement a row cost the writer 7% more
/// instructions a logged request). Fixed sizes keep the statements few, so each is prepared
/// once and then taken from the connection's statement cache.
const CHUNKS: [usize; 3] = [100, 10, 1];

/// `rows` cut into chunks of the [`CHUNKS`] sizes, largest first, for [`sqlite_insert`]s.
pub(super) fn sqlite_chunks<T>(mut rest: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|&size| size <= rest.len())?;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// Rows per PostgreSQL insert: one statement (one round trip) carries a whole batch.
const POSTGRES_CHUNK: usize = 5_000;

/// The PostgreSQL insert of a JSON array of rows (bytes as base64), for the upgrade, which
/// works through the `Any` driver. One parameter whatever the row count: sqlx does not set
/// TCP_NODELAY, so every statement can wait for a delayed ACK (up to 40 ms on Linux); a
/// statement per 100 rows held the log to about 2,000 rows a second.
const POSTGRES_INSERT: &str = "INSERT INTO predictions (request_id, row_index, created_at_ms, \
     schema_id, label, value, inputs, probabilities, latency_us, key_name) \
     SELECT decode(request_id, 'base64'), row_index, created_at_ms, schema_id, label, value, \
     decode(inputs, 'base64'), decode(probabilities, 'base64'), latency_us, key_name \
     FROM json_to_recordset($1::json) AS r(request_id text, row_index integer, \
     created_at_ms bigint, schema_id bigint, label integer, value double precision, \
     inputs text, probabilities text, latency_us bigint, key_name text) \
     ON CONFLICT (request_id, row_index) DO NOTHING";

/// The writer's PostgreSQL insert: the batch as one typed array per column, in PostgreSQL's
/// binary format, unnested into rows. Neither side encodes or parses text: the JSON and base64
/// of [`POSTGRES_INSERT`] cost the server 4% of its CPU at full load, and PostgreSQL more.
const POSTGRES_UNNEST: &str = "INSERT INTO predictions (request_id, row_index, created_at_ms, \
     schema_id, label, value, inputs, probabilities, latency_us, key_name) \
     SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
     $6::float8[], $7::bytea[], $8::bytea[], $9::int8[], $10::text[]) \
     ON CONFLICT (request_id, row_index) DO NOTHING";

/// One column of `rows`, as an array to bind.
fn column<'r, 'a, T>(rows: &'r [StoredRow<'a>], value: impl Fn(&'r StoredRow<'a>) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// Inserts rows into PostgreSQL through its own driver (sqlx's `Any` driver has no arrays), in
/// one transaction; returns the rows inserted (a row whose request id and row index are already
/// logged is left out).
pub(super) async fn insert_rows_postgres(
    pool: &sqlx::PgPool,
    rows: &[StoredRow<'_>],
) -> Result<u64, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let mut inserted = 0;
    for chunk in rows.chunks(POSTGRES_CHUNK) {
        inserted += sqlx::query(POSTGRES_UNNEST)
            .bind(column(chunk, |r| r.request_id.as_ref()))
            .bind(column(chunk, |r| r.row_index))
            .bind(column(chunk, |r| r.created_at_ms))
            .bind(column(chunk, |r| r.schema_id))
            .bind(column(chunk, |r| r.label))
            .bind(column(chunk, |r| r.value))
            .bind(column(chunk, |r| r.inputs.as_ref()))
            .bind(column(chunk, |r| r.probabilities.as_deref()))
            .bind(column(chunk, |r| r.latency_us))
            .bind(column(chunk, |r| r.key_name.as_deref()))
            .execute(&mut *transaction)
            .await?
            .rows_affected();
    }
    transaction.commit().await?;
    Ok(inserted)
}

/// Inserts rows inside `transaction`; returns the rows inserted (a row whose request id and
/// row index are already logged is left out).
pub(super) async fn insert_rows(
    backend: Backend,
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[StoredRow<'_>],
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
            for chunk in sqlite_chunks(rows) {
                let mut query = sqlx::query(Store::sql(sqlite_insert(chunk.len())));
                for row in chunk {
                    query = query
                        .bind(row.request_id.as_ref())
                        .bind(row.row_index)
                        .bind(row.created_at_ms)
                        .bind(row.schema_id)
                        .bind(row.label)
                        .bind(row.value)
                        .bind(row.inputs.as_ref())
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

/// A model version as the writer writes it: its schema's id, and how its inputs are counted.
#[derive(Debug, Clone)]
pub(super) struct Version {
    /// Its id in `log_schemas`.
    pub id: i64,
    /// How its rows' inputs are counted in drift bins.
    pub drift: Arc<DriftBins>,
}

/// The schemas of the model versions the writer has seen, by the address of their loaded
/// model. The model is held weakly (a reload must be able to drop the old one) and checked on
/// each lookup, so an address reused by a new model is never taken for the old one.
#[derive(Default)]
pub(super) struct SchemaIds {
    versions: HashMap<usize, (Weak<LoadedModel>, Version)>,
}

impl SchemaIds {
    /// The version of a loaded model, stored in `log_schemas` when first seen.
    pub async fn of(
        &mut self,
        store: &Store,
        model: &Arc<LoadedModel>,
        policy: &InputPolicy,
    ) -> Result<Version, sqlx::Error> {
        let key = Arc::as_ptr(model) as usize;
        if let Some((seen, version)) = self.versions.get(&key)
            && seen.upgrade().is_some_and(|seen| Arc::ptr_eq(&seen, model))
        {
            return Ok(version.clone());
        }
        let manifest = &model.artifact.manifest;
        let schema = LogSchema::of(&manifest.features, &manifest.labels, policy);
        let mut connection = store.pool().acquire().await?;
        let id =
            ensure_schema(&mut connection, model.name(), &model.version_label, &schema).await?;
        // Reloads make new loaded models: forget the ones no longer served.
        self.versions.retain(|_, (seen, _)| seen.strong_count() > 0);
        let version = Version {
            id,
            drift: Arc::new(DriftBins::of(&manifest.features, &schema)),
        };
        self.versions
            .insert(key, (Arc::downgrade(model), version.clone()));
        Ok(version)
    }

    /// Forgets every id: after a failure the database may be a new, empty file.
    pub fn forget(&mut self) {
        self.versions.clear();
    }

    /// The versions of a batch's records, in order.
    pub async fn versions(
        &mut self,
        store: &Store,
        batch: &[PredictionRecord],
        policy: &InputPolicy,
    ) -> Result<Vec<Version>, sqlx::Error> {
        let mut versions: Vec<Version> = Vec::with_capacity(batch.len());
        let mut previous: Option<&Arc<LoadedModel>> = None;
        for record in batch {
            // Records of one model version come in runs: look it up once per run.
            let version = match (previous, versions.last()) {
                (Some(model), Some(version)) if Arc::ptr_eq(model, &record.model) => {
                    version.clone()
                }
                _ => self.of(store, &record.model, policy).await?,
            };
            versions.push(version);
            previous = Some(&record.model);
        }
        Ok(versions)
    }
}

/// The rows of a batch, borrowing from its records.
pub(super) fn rows<'a>(batch: &'a [PredictionRecord], versions: &[Version]) -> Vec<StoredRow<'a>> {
    batch
        .iter()
        .zip(versions)
        .map(|(record, version)| StoredRow {
            request_id: record.request_id.bytes(),
            row_index: i64::from(record.row_index),
            created_at_ms: record.created_at_ms,
            schema_id: version.id,
            label: record.label.map(i64::from),
            value: record.value,
            inputs: Cow::Borrowed(record.inputs()),
            probabilities: record.probabilities().map(Cow::Borrowed),
            latency_us: i64::from(record.latency_us),
            key_name: record.key_name.as_deref().map(Cow::Borrowed),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_inserts_have_a_row_of_placeholders_per_record() {
        assert!(sqlite_insert(1).contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT"));
        assert_eq!(sqlite_insert(3).matches('?').count(), 3 * COLUMNS);
        assert!(sqlite_insert(2).contains("?), (?"));
        // 123 = 100 + 2 x 10 + 3 x 1, in order.
        let rows: Vec<u32> = (0..123).collect();
        let sizes: Vec<usize> = sqlite_chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [100, 10, 10, 1, 1, 1]);
        assert_eq!(
            sqlite_chunks(&rows).flatten().copied().collect::<Vec<_>>(),
            rows
        );
        assert_eq!(sqlite_chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn postgres_reads_rows_by_the_names_they_serialize_under() {
        let row = StoredRow {
            request_id: Cow::Borrowed(&[1, 2]),
            row_index: 0,
            created_at_ms: 1,
            schema_id: 1,
            label: Some(0),
            value: None,
            inputs: Cow::Borrowed(&[0xff]),
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
