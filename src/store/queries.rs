//! Reading the log back: recent predictions, feedback, and the rows behind live metrics and
//! drift. Statements are built with numbered placeholders only; values are always bound.

use super::{Store, StoreError};
use sqlx::Row;

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

/// A logged prediction with its feedback, if any.
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
    /// Inputs, a JSON object.
    pub inputs: String,
    /// Predicted label.
    pub label: String,
    /// Probabilities, a JSON object.
    pub probabilities: String,
    /// Answer time in milliseconds.
    pub latency_ms: f64,
    /// Who asked, when auth is on.
    pub key_name: Option<String>,
    /// The true label, when feedback came.
    pub feedback: Option<String>,
}

/// A prediction with its true label, for live metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthRow {
    /// Model version.
    pub version: String,
    /// Predicted label.
    pub predicted: String,
    /// True label.
    pub actual: String,
}

impl Store {
    /// Recent predictions, newest first, with their feedback.
    pub async fn predictions(
        &self,
        query: &PredictionQuery,
    ) -> Result<Vec<LoggedPrediction>, StoreError> {
        let mut sql = String::from(
            "SELECT p.request_id, p.row_index, p.created_at_ms, p.model, p.version, p.inputs, \
             p.label, p.probabilities, p.latency_ms, p.key_name, f.label AS feedback \
             FROM predictions p LEFT JOIN feedback f \
             ON f.request_id = p.request_id AND f.row_index = p.row_index WHERE 1 = 1",
        );
        let mut next = 1;
        if query.model.is_some() {
            sql.push_str(&format!(" AND p.model = ${next}"));
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
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LoggedPrediction {
                    request_id: row.try_get("request_id")?,
                    row_index: row.try_get("row_index")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                    model: row.try_get("model")?,
                    version: row.try_get("version")?,
                    inputs: row.try_get("inputs")?,
                    label: row.try_get("label")?,
                    probabilities: row.try_get("probabilities")?,
                    latency_ms: row.try_get("latency_ms")?,
                    key_name: row.try_get("key_name")?,
                    feedback: row.try_get("feedback")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The model, version and label of a logged prediction.
    pub async fn find_prediction(
        &self,
        request_id: &str,
        row_index: u32,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT model, version, label FROM predictions WHERE request_id = $1 AND row_index = $2",
        )
        .bind(request_id.to_string())
        .bind(i64::from(row_index))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some((
                row.try_get("model")?,
                row.try_get("version")?,
                row.try_get("label")?,
            )),
            None => None,
        })
    }

    /// Erases every logged row of a request and their feedback, in one transaction: what a
    /// person's request to have their data removed asks for. Returns the predictions and the
    /// feedback rows deleted.
    pub async fn erase_request(&self, request_id: &str) -> Result<(u64, u64), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let feedback = sqlx::query("DELETE FROM feedback WHERE request_id = $1")
            .bind(request_id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        let predictions = sqlx::query("DELETE FROM predictions WHERE request_id = $1")
            .bind(request_id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        Ok((predictions, feedback))
    }

    /// Records (or corrects) the true label of a logged prediction.
    pub async fn record_feedback(
        &self,
        request_id: &str,
        row_index: u32,
        label: &str,
        at_ms: i64,
        key_name: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO feedback (request_id, row_index, label, created_at_ms, key_name) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, row_index) \
             DO UPDATE SET label = excluded.label, created_at_ms = excluded.created_at_ms, \
             key_name = excluded.key_name",
        )
        .bind(request_id.to_string())
        .bind(i64::from(row_index))
        .bind(label.to_string())
        .bind(at_ms)
        .bind(key_name.map(str::to_string))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Predictions of a model since a time that have a true label (the latest 100,000).
    pub async fn truth(&self, model: &str, since_ms: i64) -> Result<Vec<TruthRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.version, p.label AS predicted, f.label AS actual FROM predictions p \
             JOIN feedback f ON f.request_id = p.request_id AND f.row_index = p.row_index \
             WHERE p.model = $1 AND p.created_at_ms >= $2 ORDER BY p.id DESC LIMIT 100000",
        )
        .bind(model.to_string())
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TruthRow {
                    version: row.try_get("version")?,
                    predicted: row.try_get("predicted")?,
                    actual: row.try_get("actual")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Predictions of a model version since a time, per version: (version, count).
    pub async fn prediction_counts(
        &self,
        model: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, COUNT(*) AS n FROM predictions WHERE model = $1 AND created_at_ms >= $2 \
             GROUP BY version",
        )
        .bind(model.to_string())
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("version")?, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The logged inputs (JSON objects) of a model version since a time, newest first.
    pub async fn recent_inputs(
        &self,
        model: &str,
        version: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT inputs FROM predictions WHERE model = $1 AND version = $2 \
             AND created_at_ms >= $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(model.to_string())
        .bind(version.to_string())
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("inputs"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
