//! Keeping the prediction log bounded: predictions older than the retention are deleted, and
//! while the log takes more than its byte limit the oldest are deleted too. The server runs
//! [`enforce`] off the request path, at least every min(retention / 4, 60 s), in steps of a few
//! thousand rows, each its own short statement, so the writer never waits long behind one.

use super::{Backend, Store, StoreError};
use sqlx::Row;
use std::time::Duration;

/// Rows deleted per statement.
const STEP: i64 = 5_000;

/// SQLite's write-ahead log is cut back to this after a checkpoint (`journal_size_limit`).
pub const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How long and how much the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Predictions older than this are deleted.
    pub max_age: Duration,
    /// While the log's rows take more than this many bytes ([`Store::log_bytes`]), the oldest
    /// are deleted.
    pub max_bytes: u64,
}

impl Retention {
    /// How often [`enforce`] runs: a quarter of the retention, at most a minute, at least a
    /// quarter second.
    pub fn interval(&self) -> Duration {
        (self.max_age / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Predictions past the retention.
    pub by_age: u64,
    /// Predictions deleted to get under the byte limit.
    pub by_size: u64,
}

/// Parses a duration such as `90s`, `15m`, `12h` or `30d`: a whole number of 1 to 9 digits
/// without a leading zero, and a unit.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.len() > 9 || number.starts_with('0') {
        return None;
    }
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(number * seconds))
}

/// One pass: deletes what is past the retention, then the oldest while over the byte limit,
/// then lets SQLite cut its write-ahead log back.
pub async fn enforce(
    store: &Store,
    retention: &Retention,
    now_ms: i64,
) -> Result<Deleted, StoreError> {
    let max_age_ms = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(max_age_ms);
    let mut deleted = Deleted::default();
    while let Some((oldest_id, oldest_ms)) = store.oldest_prediction().await? {
        if oldest_ms >= cutoff {
            break;
        }
        deleted.by_age += store.delete_step(oldest_id, Some(cutoff)).await?;
        tokio::task::yield_now().await;
    }
    loop {
        let size = store.log_size().await?;
        if size.total() <= retention.max_bytes {
            break;
        }
        if size.others >= retention.max_bytes {
            // Deleting every prediction would not get under the limit: keep them.
            tracing::warn!(
                others = size.others,
                limit = retention.max_bytes,
                "prediction log: its feedback and counts alone take more than prediction_log_max_bytes; no prediction is deleted for size"
            );
            break;
        }
        let Some((oldest_id, _)) = store.oldest_prediction().await? else {
            break;
        };
        deleted.by_size += store.delete_step(oldest_id, None).await?;
        tokio::task::yield_now().await;
    }
    store.expire_stats(now_ms, cutoff).await?;
    if deleted.by_age + deleted.by_size > 0 {
        store.delete_orphaned_feedback().await?;
        if store.backend() == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&*store.pool())
                .await?;
        }
    }
    Ok(deleted)
}

impl Store {
    /// The first prediction in insertion order (`id`, `created_at_ms`): the oldest, but for the
    /// few milliseconds by which the writer's batches can reorder answers.
    async fn oldest_prediction(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT id, created_at_ms FROM predictions ORDER BY id LIMIT 1")
            .fetch_optional(&*self.pool())
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
            None => None,
        })
    }

    /// Deletes the predictions among the next [`STEP`] ids from `from_id` (those answered before
    /// `before_ms`, when given); the primary key finds them without a scan.
    async fn delete_step(&self, from_id: i64, before_ms: Option<i64>) -> Result<u64, StoreError> {
        let below = from_id.saturating_add(STEP);
        let result = match before_ms {
            Some(before) => {
                sqlx::query("DELETE FROM predictions WHERE id < $1 AND created_at_ms < $2")
                    .bind(below)
                    .bind(before)
                    .execute(&*self.pool())
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM predictions WHERE id < $1")
                    .bind(below)
                    .execute(&*self.pool())
                    .await?
            }
        };
        Ok(result.rows_affected())
    }

    /// Deletes feedback whose prediction is gone.
    async fn delete_orphaned_feedback(&self) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM feedback WHERE NOT EXISTS (SELECT 1 FROM predictions AS p \
             WHERE p.request_id = feedback.request_id AND p.row_index = feedback.row_index)",
        )
        .execute(&*self.pool())
        .await?;
        Ok(result.rows_affected())
    }

    /// How many predictions the log holds.
    pub async fn prediction_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM predictions")
            .fetch_one(&*self.pool())
            .await?
            .try_get(0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Bytes the log's rows and indexes take ([`LogSize::total`]).
    pub async fn log_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.log_size().await?.total())
    }

    /// Bytes the log's rows and indexes take. SQLite: its pages in use (free pages, which new
    /// rows reuse, do not count), all counted as predictions. PostgreSQL keeps deleted rows'
    /// space in its files for new rows (VACUUM frees it for reuse; only VACUUM FULL gives it
    /// back), so its files' sizes cannot say when enough is deleted. There the predictions'
    /// bytes are estimated: their count (by their id range, which also counts the ids of
    /// inserts that failed or conflicted, so it errs towards deleting early) times the bytes of
    /// a recent row as stored (`pg_column_size`, aligned, with its line pointer), scaled by the
    /// indexes' size to the table's; the other tables count as their files.
    pub async fn log_size(&self) -> Result<LogSize, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                let pragma = async |name: &str| -> Result<i64, StoreError> {
                    let row = sqlx::query(Store::sql(format!("PRAGMA {name}")))
                        .fetch_one(&*self.pool())
                        .await?;
                    Ok(row.try_get(0)?)
                };
                let pages = pragma("page_count").await? - pragma("freelist_count").await?;
                let bytes = pages.saturating_mul(pragma("page_size").await?);
                Ok(LogSize {
                    predictions: u64::try_from(bytes).unwrap_or(0),
                    others: 0,
                })
            }
            Backend::Postgres => {
                let row = sqlx::query(
                    "SELECT \
                     (SELECT COALESCE(max(id) - min(id) + 1, 0) FROM predictions)::BIGINT, \
                     (SELECT COALESCE(avg(pg_column_size(p.*)), 0) FROM \
                        (SELECT * FROM predictions ORDER BY id DESC LIMIT 1000) AS p)::FLOAT8, \
                     pg_relation_size('predictions')::BIGINT, \
                     pg_indexes_size('predictions')::BIGINT, \
                     (pg_total_relation_size('feedback') + pg_total_relation_size('log_schemas') \
                      + pg_total_relation_size('log_stats'))::BIGINT",
                )
                .fetch_one(&*self.pool())
                .await?;
                let (rows, row_bytes): (i64, f64) = (row.try_get(0)?, row.try_get(1)?);
                let (heap, indexes, others): (i64, i64, i64) =
                    (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
                Ok(LogSize {
                    predictions: postgres_bytes_in_use(rows, row_bytes, heap, indexes) as u64,
                    others: u64::try_from(others).unwrap_or(0),
                })
            }
        }
    }
}

/// What the prediction log takes, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSize {
    /// The predictions and their indexes (SQLite: every page in use).
    pub predictions: u64,
    /// Feedback, schemas and live counts (PostgreSQL only), which deleting old predictions does
    /// not shrink at once.
    pub others: u64,
}

impl LogSize {
    /// Everything.
    pub fn total(&self) -> u64 {
        self.predictions.saturating_add(self.others)
    }
}

/// PostgreSQL's bytes in use by `rows` predictions of `row_bytes` each (a tuple as
/// `pg_column_size` gives it, out-of-line values included): tuples are 8-byte aligned on a
/// page and each has a 4-byte line pointer; the indexes grow with the table.
fn postgres_bytes_in_use(rows: i64, row_bytes: f64, heap: i64, indexes: i64) -> f64 {
    let on_page = (row_bytes / 8.0).ceil() * 8.0 + 4.0;
    let with_indexes = if heap > 0 {
        1.0 + indexes as f64 / heap as f64
    } else {
        1.0
    };
    (rows.max(0) as f64 * on_page * with_indexes).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_number_and_a_unit() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(
            parse_duration("30d"),
            Some(Duration::from_secs(30 * 86_400))
        );
        for bad in [
            "",
            "d",
            "0d",
            "07d",
            "1w",
            "-1h",
            "1.5h",
            " 1h",
            "1000000000s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_pass_runs_four_times_a_retention_at_most_every_minute() {
        let every = |max_age| {
            Retention {
                max_age,
                max_bytes: 1,
            }
            .interval()
        };
        assert_eq!(
            every(Duration::from_secs(30 * 86_400)),
            Duration::from_secs(60)
        );
        assert_eq!(
            every(Duration::from_secs(90)),
            Duration::from_millis(22_500)
        );
        assert_eq!(every(Duration::from_secs(1)), Duration::from_millis(250));
    }
}
