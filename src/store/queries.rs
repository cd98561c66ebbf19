//! Reading the log back: recent predictions with their feedback, one prediction for feedback,
//! and erasure. Rows are decoded by their version's schema (see [`super::record`]), read once
//! per query. Statements are built with numbered placeholders only; values are always bound.

use super::log_schema::LogSchema;
use super::record::RequestKey;
use super::{Store, StoreError};
use serde_json::{Map, Value};
use sqlx::Row;
use std::collections::HashMap;

/// The logged predictions with their feedback: the columns [`logged_prediction`] reads.
const LOGGED_ROWS: &str = "SELECT p.id, p.request_id, p.row_index, p.created_at_ms, \
     p.schema_id, p.label, p.value, p.inputs, p.probabilities, p.latency_us, p.key_name, \
     f.label AS feedback, f.value AS feedback_value FROM predictions p LEFT JOIN feedback f \
     ON f.request_id = p.request_id AND f.row_index = p.row_index";

/// Which predictions to read.
#[derive(Debug, Clone, Default)]
pub struct PredictionQuery {
    /// Only this model.
    pub model: Option<String>,
    /// Only predictions at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// A logged prediction with its feedback, if any, read back by name.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedPrediction {
    /// The request id.
    pub request_id: String,
    /// The row's index in its request.
    pub row_index: i64,
    /// When it was answered (ms since the epoch).
    pub created_at_ms: i64,
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Inputs by feature name (null for a row that cannot be read).
    pub inputs: Value,
    /// Predicted label (a classifier; empty for a model that predicts a number).
    pub label: String,
    /// Probabilities by label (null when not logged, or for a model that predicts a number).
    pub probabilities: Value,
    /// The predicted value (a model that predicts a number).
    pub value: Option<f64>,
    /// Answer time in milliseconds (to the microsecond).
    pub latency_ms: f64,
    /// Who asked, when auth is on.
    pub key_name: Option<String>,
    /// The true label, when feedback came (a classifier).
    pub feedback: Option<String>,
    /// The true value, when feedback came (a model that predicts a number).
    pub feedback_value: Option<f64>,
}

impl LoggedPrediction {
    /// The prediction as `/api/predictions` and `mlserve log export --format jsonl` give it:
    /// a classifier's `label` and `probabilities` and the true label as `feedback`, or a
    /// regressor's `prediction` and the true value as `feedback`.
    pub fn to_json(&self) -> Value {
        let mut json = serde_json::json!({
            "request_id": self.request_id,
            "row": self.row_index,
            "created_at": rfc3339(self.created_at_ms),
            "model": self.model,
            "version": self.version,
            "inputs": self.inputs,
            "latency_ms": self.latency_ms,
            "key": self.key_name,
        });
        match self.value {
            Some(value) => {
                json["prediction"] = Value::from(value);
                json["feedback"] = self.feedback_value.map_or(Value::Null, Value::from);
            }
            None => {
                json["label"] = Value::from(self.label.clone());
                json["probabilities"] = self.probabilities.clone();
                json["feedback"] = self.feedback.clone().map_or(Value::Null, Value::from);
            }
        }
        json
    }
}

/// A time in milliseconds since the epoch as RFC 3339 text (UTC).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// A logged prediction as feedback needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPrediction {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// What was predicted, and what feedback gave before (if any).
    pub predicted: Truth,
    /// The version's schema id in the log.
    pub schema_id: i64,
    /// When it was answered (ms since the epoch).
    pub created_at_ms: i64,
    /// The true label or value given before, if any.
    pub feedback: Option<Truth>,
}

/// A label or a value: what a model predicted, or what feedback says was true.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// A class label (a classifier).
    Label(String),
    /// A number (a model that predicts a number).
    Value(f64),
}

impl Truth {
    /// As JSON: the label as text, the value as a number.
    pub fn to_json(&self) -> Value {
        match self {
            Truth::Label(label) => Value::from(label.as_str()),
            Truth::Value(value) => Value::from(*value),
        }
    }
}

/// A model version's schema as stored.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Features and labels.
    pub schema: LogSchema,
}

/// Which predictions to export: one model's, in a time range.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    /// The model.
    pub model: String,
    /// Only predictions at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only predictions before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only rows up to this id: the newest when the export began, so that rows committed
    /// meanwhile (out of id order, by other replicas) cannot be stepped over.
    pub max_id: Option<i64>,
}

impl ExportQuery {
    /// The WHERE clause (from `$1`) and its values.
    fn filter(&self) -> (String, Vec<i64>) {
        let mut sql = String::from("p.schema_id IN (SELECT id FROM log_schemas WHERE model = $1)");
        let mut values = Vec::new();
        for (bound, condition) in [
            (self.since_ms, "p.created_at_ms >="),
            (self.until_ms, "p.created_at_ms <"),
            (self.max_id, "p.id <="),
        ] {
            if let Some(value) = bound {
                values.push(value);
                sql.push_str(&format!(" AND {condition} ${}", values.len() + 1));
            }
        }
        (sql, values)
    }
}

impl Store {
    /// The id of the newest logged prediction (0 when there is none).
    pub async fn last_prediction_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM predictions")
            .fetch_one(&*self.pool())
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// How many predictions an export holds.
    pub async fn export_count(&self, query: &ExportQuery) -> Result<u64, StoreError> {
        let (filter, values) = query.filter();
        let mut statement = sqlx::query_scalar::<_, i64>(Store::sql(format!(
            "SELECT COUNT(*) FROM predictions p WHERE {filter}"
        )))
        .bind(query.model.clone());
        for value in values {
            statement = statement.bind(value);
        }
        let count = statement.fetch_one(&*self.pool()).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The next `limit` predictions of an export after the row with id `after_id`, oldest
    /// first, each with its row id (the `after_id` of the next page).
    pub async fn export_page(
        &self,
        query: &ExportQuery,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, LoggedPrediction)>, StoreError> {
        let (filter, values) = query.filter();
        let next = values.len() + 2;
        let sql = format!(
            "{LOGGED_ROWS} WHERE {filter} AND p.id > ${next} ORDER BY p.id LIMIT ${}",
            next + 1
        );
        let mut statement = sqlx::query(Store::sql(sql)).bind(query.model.clone());
        for value in values {
            statement = statement.bind(value);
        }
        let rows = statement
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&*self.pool())
            .await?;
        self.read_back(&rows).await
    }

    /// Rows of [`LOGGED_ROWS`] read back by their versions' schemas, each with its row id.
    async fn read_back(
        &self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Vec<(i64, LoggedPrediction)>, StoreError> {
        let ids: Vec<i64> = rows
            .iter()
            .map(|row| row.try_get("schema_id"))
            .collect::<Result<_, sqlx::Error>>()?;
        let schemas = self.schemas(&ids).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, logged_prediction(row, &schemas)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The schemas of these ids (those that exist and can be read), in one query.
    pub async fn schemas(&self, ids: &[i64]) -> Result<HashMap<i64, StoredSchema>, StoreError> {
        let mut wanted: Vec<i64> = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let placeholders: Vec<String> = (1..=wanted.len()).map(|i| format!("${i}")).collect();
        let mut statement = sqlx::query(Store::sql(format!(
            "SELECT id, model, version, schema FROM log_schemas WHERE id IN ({})",
            placeholders.join(", ")
        )));
        for id in wanted {
            statement = statement.bind(id);
        }
        for row in statement.fetch_all(&*self.pool()).await? {
            let id: i64 = row.try_get("id")?;
            let text: String = row.try_get("schema")?;
            match serde_json::from_str::<LogSchema>(&text) {
                Ok(schema) => {
                    found.insert(
                        id,
                        StoredSchema {
                            model: row.try_get("model")?,
                            version: row.try_get("version")?,
                            schema,
                        },
                    );
                }
                Err(error) => tracing::error!(%error, id, "prediction log: unreadable schema"),
            }
        }
        Ok(found)
    }

    /// The stored schemas of a model's versions, oldest first.
    pub async fn model_schemas(&self, model: &str) -> Result<Vec<StoredSchema>, StoreError> {
        let ids: Vec<i64> = self
            .schema_ids(model)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let mut schemas: Vec<(i64, StoredSchema)> = self.schemas(&ids).await?.into_iter().collect();
        schemas.sort_by_key(|(id, _)| *id);
        Ok(schemas.into_iter().map(|(_, schema)| schema).collect())
    }

    /// The models with a stored schema in the log, by name.
    pub async fn logged_models(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT model FROM log_schemas ORDER BY model")
                .fetch_all(&*self.pool())
                .await?,
        )
    }

    /// The schema ids of a model's versions.
    pub async fn schema_ids(&self, model: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, version FROM log_schemas WHERE model = $1")
            .bind(model.to_string())
            .fetch_all(&*self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("version")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Recent predictions, newest first, with their feedback.
    pub async fn predictions(
        &self,
        query: &PredictionQuery,
    ) -> Result<Vec<LoggedPrediction>, StoreError> {
        let mut sql = format!("{LOGGED_ROWS} WHERE 1 = 1");
        let mut next = 1;
        if query.model.is_some() {
            sql.push_str(&format!(
                " AND p.schema_id IN (SELECT id FROM log_schemas WHERE model = ${next})"
            ));
            next += 1;
        }
        if query.since_ms.is_some() {
            sql.push_str(&format!(" AND p.created_at_ms >= ${next}"));
            next += 1;
        }
        sql.push_str(&format!(" ORDER BY p.id DESC LIMIT ${next}"));
        let mut statement = sqlx::query(Store::sql(sql));
        if let Some(model) = &query.model {
            statement = statement.bind(model.clone());
        }
        if let Some(since) = query.since_ms {
            statement = statement.bind(since);
        }
        let rows = statement
            .bind(i64::from(query.limit))
            .fetch_all(&*self.pool())
            .await?;
        let read = self.read_back(&rows).await?;
        Ok(read.into_iter().map(|(_, prediction)| prediction).collect())
    }

    /// When the row of a request id (as stored) and row index was answered, and its latency in
    /// microseconds.
    pub(crate) async fn logged_time(
        &self,
        request_id: &[u8],
        row_index: u32,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT created_at_ms, latency_us FROM predictions WHERE request_id = $1 AND row_index = $2",
        )
        .bind(request_id.to_vec())
        .bind(i64::from(row_index))
        .fetch_optional(&*self.pool())
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("created_at_ms")?, row.try_get("latency_us")?)),
            None => None,
        })
    }

    /// A logged prediction, for feedback on it.
    pub async fn find_prediction(
        &self,
        request_id: &str,
        row_index: u32,
    ) -> Result<Option<FoundPrediction>, StoreError> {
        let row = sqlx::query(
            "SELECT p.schema_id, p.label, p.value, p.created_at_ms, f.label AS feedback, \
             f.value AS feedback_value \
             FROM predictions p LEFT JOIN feedback f \
             ON f.request_id = p.request_id AND f.row_index = p.row_index \
             WHERE p.request_id = $1 AND p.row_index = $2",
        )
        .bind(RequestKey::of(request_id).to_bytes())
        .bind(i64::from(row_index))
        .fetch_optional(&*self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let schema_id: i64 = row.try_get("schema_id")?;
        let label_index: Option<i64> = row.try_get("label")?;
        let schemas = self.schemas(&[schema_id]).await?;
        let stored = schemas.get(&schema_id);
        let value: Option<f64> = row.try_get("value")?;
        let feedback_label: Option<String> = row.try_get("feedback")?;
        let feedback_value: Option<f64> = row.try_get("feedback_value")?;
        Ok(Some(FoundPrediction {
            model: stored.map(|s| s.model.clone()).unwrap_or_default(),
            version: stored.map(|s| s.version.clone()).unwrap_or_default(),
            predicted: match value {
                Some(value) => Truth::Value(value),
                None => Truth::Label(label_text(stored, label_index)),
            },
            schema_id,
            created_at_ms: row.try_get("created_at_ms")?,
            feedback: match (feedback_label, feedback_value) {
                (Some(label), _) => Some(Truth::Label(label)),
                (None, Some(value)) => Some(Truth::Value(value)),
                (None, None) => None,
            },
        }))
    }

    /// Erases every logged row of a request and their feedback, in one transaction: what a
    /// person's request to have their data removed asks for. Returns the predictions and the
    /// feedback rows deleted.
    pub async fn erase_request(&self, request_id: &str) -> Result<(u64, u64), StoreError> {
        let key = RequestKey::of(request_id).to_bytes();
        let mut transaction = self.pool().begin().await?;
        let feedback = sqlx::query("DELETE FROM feedback WHERE request_id = $1")
            .bind(key.clone())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        let predictions = sqlx::query("DELETE FROM predictions WHERE request_id = $1")
            .bind(key)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        Ok((predictions, feedback))
    }

    /// Records (or corrects) the true label or value of a logged prediction.
    pub async fn record_feedback(
        &self,
        request_id: &str,
        row_index: u32,
        truth: &Truth,
        at_ms: i64,
        key_name: Option<&str>,
    ) -> Result<(), StoreError> {
        let (label, value) = match truth {
            Truth::Label(label) => (Some(label.clone()), None),
            Truth::Value(value) => (None, Some(*value)),
        };
        sqlx::query(
            "INSERT INTO feedback (request_id, row_index, label, value, created_at_ms, key_name) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id, row_index) \
             DO UPDATE SET label = excluded.label, value = excluded.value, \
             created_at_ms = excluded.created_at_ms, key_name = excluded.key_name",
        )
        .bind(RequestKey::of(request_id).to_bytes())
        .bind(i64::from(row_index))
        .bind(label)
        .bind(value)
        .bind(at_ms)
        .bind(key_name.map(str::to_string))
        .execute(&*self.pool())
        .await?;
        Ok(())
    }
}

fn label_text(schema: Option<&StoredSchema>, index: Option<i64>) -> String {
    schema
        .zip(index)
        .and_then(|(s, i)| s.schema.label(i))
        .unwrap_or_default()
        .to_string()
}

fn logged_prediction(
    row: &sqlx::any::AnyRow,
    schemas: &HashMap<i64, StoredSchema>,
) -> Result<LoggedPrediction, sqlx::Error> {
    let schema_id: i64 = row.try_get("schema_id")?;
    let stored = schemas.get(&schema_id);
    let key: Vec<u8> = row.try_get("request_id")?;
    let inputs: Vec<u8> = row.try_get("inputs")?;
    let probabilities: Option<Vec<u8>> = row.try_get("probabilities")?;
    let latency_us: i64 = row.try_get("latency_us")?;
    let object = |map: Option<Map<String, Value>>| map.map_or(Value::Null, Value::Object);
    Ok(LoggedPrediction {
        request_id: RequestKey::text_of(&key).unwrap_or_default(),
        row_index: row.try_get("row_index")?,
        created_at_ms: row.try_get("created_at_ms")?,
        model: stored.map(|s| s.model.clone()).unwrap_or_default(),
        version: stored.map(|s| s.version.clone()).unwrap_or_default(),
        inputs: object(stored.and_then(|s| s.schema.decode_inputs(&inputs))),
        label: label_text(stored, row.try_get("label")?),
        probabilities: object(
            stored
                .zip(probabilities)
                .and_then(|(s, p)| s.schema.decode_probabilities(&p)),
        ),
        value: row.try_get("value")?,
        latency_ms: latency_us as f64 / 1e3,
        key_name: row.try_get("key_name")?,
        feedback: row.try_get("feedback")?,
        feedback_value: row.try_get("feedback_value")?,
    })
}
