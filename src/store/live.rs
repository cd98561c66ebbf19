//! Live metrics and drift kept up to date as predictions and feedback arrive, so that reading
//! them never re-reads the log.
//!
//! Counts are kept per model version (its schema id) in time buckets at three resolutions:
//! minutes (kept 2 hours), hours (kept 48 hours) and days (kept as long as the log). A bucket
//! holds the predictions made in it, the (predicted, true) label pairs of those that got
//! feedback, for a model that predicts a number the sums of its (predicted, true) value pairs
//! ([`super::residuals`]), and for each feature the count of its values in each training bin
//! (see [`super::drift`]). The writer adds each batch it commits; feedback adds its pair (and takes
//! back the pair it corrects). Each process writes its own rows of `log_stats`, under an id of
//! its own, by reading, adding to and writing back its bucket, so replicas sharing a database
//! never overwrite one another; a reader sums every process's rows in the window.
//!
//! A window is counted in whole buckets of the finest resolution that covers it: up to 2 hours
//! in minutes, up to 48 hours in hours, beyond in days. Erasing a request leaves its counts
//! (they say nothing about a person); retention deletes buckets older than the log.

use super::drift::DriftBins;
use super::queries::{FoundPrediction, Truth};
use super::residuals::Residuals;
use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// One resolution of the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Its number in `log_stats.level`.
    pub id: i64,
    /// The width of a bucket, in milliseconds.
    pub width_ms: i64,
    /// How long its buckets are kept, in milliseconds.
    pub horizon_ms: i64,
}

/// Minutes for 2 hours, hours for 48 hours, days for as long as the log is kept.
pub const LEVELS: [Level; 3] = [
    Level {
        id: 0,
        width_ms: 60_000,
        horizon_ms: 2 * 3_600_000,
    },
    Level {
        id: 1,
        width_ms: 3_600_000,
        horizon_ms: 48 * 3_600_000,
    },
    Level {
        id: 2,
        width_ms: 86_400_000,
        horizon_ms: i64::MAX,
    },
];

/// The finest level whose buckets still cover a window of `window_ms`.
pub fn level_for(window_ms: i64) -> Level {
    LEVELS
        .into_iter()
        .find(|level| window_ms <= level.horizon_ms)
        .unwrap_or(LEVELS[2])
}

/// The start of the bucket of `level` that holds `at_ms`.
pub fn bucket_start(level: Level, at_ms: i64) -> i64 {
    at_ms.div_euclid(level.width_ms) * level.width_ms
}

/// What one bucket of one model version counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketStats {
    /// Predictions made.
    #[serde(rename = "n", default)]
    pub predictions: i64,
    /// Of those with feedback: predicted label → true label → count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confusion: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per feature (schema order), the count of values in each training bin; empty for a
    /// feature without bins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bins: Vec<Vec<i64>>,
    /// Of those with a true value as feedback (a model that predicts a number): the sums that
    /// RMSE, MAE and R² come from.
    #[serde(default, skip_serializing_if = "Residuals::is_empty")]
    pub residuals: Residuals,
    /// A model that predicts a number: the count of its predicted values in each bin of its
    /// training target's deciles (the drift of its outputs).
    #[serde(rename = "v", default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<i64>,
}

impl BucketStats {
    /// Adds another bucket's counts (signed: a correction takes a pair back).
    pub fn merge(&mut self, other: &BucketStats) {
        self.predictions += other.predictions;
        self.residuals.merge(&other.residuals);
        add_counts(&mut self.values, &other.values);
        for (predicted, actuals) in &other.confusion {
            let mine = self.confusion.entry(predicted.clone()).or_default();
            for (actual, count) in actuals {
                *mine.entry(actual.clone()).or_default() += count;
            }
        }
        if self.bins.len() < other.bins.len() {
            self.bins.resize(other.bins.len(), Vec::new());
        }
        for (mine, theirs) in self.bins.iter_mut().zip(&other.bins) {
            add_counts(mine, theirs);
        }
    }

    /// The (predicted, true, count) triples with a positive count.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        self.confusion.iter().flat_map(|(p, actuals)| {
            actuals
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(move |(a, n)| (p.as_str(), a.as_str(), *n))
        })
    }
}

/// Adds counts bin by bin; an empty side takes the other's, and counts of another number of
/// bins (never from one version's schema) are left as they are.
fn add_counts(mine: &mut Vec<i64>, theirs: &[i64]) {
    if mine.is_empty() {
        mine.extend_from_slice(theirs);
    } else if mine.len() == theirs.len() {
        for (a, b) in mine.iter_mut().zip(theirs) {
            *a += b;
        }
    }
}

/// The key of one stored bucket: schema id, level, bucket start.
type BucketKey = (i64, i64, i64);

/// Counts not yet written to `log_stats`, in minute buckets only: a count is added once, and
/// summed into the coarser levels' buckets when written ([`Pending::all_levels`]). They are
/// written every second, so this holds a minute bucket or two per model version.
#[derive(Debug, Default)]
pub struct Pending {
    minutes: HashMap<(i64, i64), BucketStats>,
}

impl Pending {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// The minute bucket of a model version (its schema id) that holds `at_ms`.
    fn minute(&mut self, schema_id: i64, at_ms: i64) -> &mut BucketStats {
        let minute = bucket_start(LEVELS[0], at_ms);
        self.minutes.entry((schema_id, minute)).or_default()
    }

    /// Every level's buckets: each minute's counts, and their sums per hour and per day.
    fn all_levels(&self) -> HashMap<BucketKey, BucketStats> {
        let mut all = HashMap::with_capacity(self.minutes.len() * LEVELS.len());
        for (&(schema_id, minute), stats) in &self.minutes {
            for level in LEVELS {
                let key = (schema_id, level.id, bucket_start(level, minute));
                all.entry(key)
                    .or_insert_with(BucketStats::default)
                    .merge(stats);
            }
        }
        all
    }

    /// Counts one prediction and the drift bins of its inputs (binned as `bins` says; none
    /// when it is empty).
    pub fn add_prediction(&mut self, schema_id: i64, at_ms: i64, bins: &DriftBins, inputs: &[u8]) {
        let stats = self.minute(schema_id, at_ms);
        stats.predictions += 1;
        if bins.is_empty() {
            return;
        }
        if stats.bins.is_empty() {
            stats.bins = bins.zeros();
        }
        bins.count(&mut stats.bins, inputs);
    }

    /// Counts a predicted value of a model that predicts a number in bin `bin` of the `bins`
    /// bins of its training target's deciles.
    pub fn add_predicted_value(&mut self, schema_id: i64, at_ms: i64, bin: usize, bins: usize) {
        let values = &mut self.minute(schema_id, at_ms).values;
        if values.is_empty() {
            values.resize(bins, 0);
        }
        if let Some(count) = values.get_mut(bin) {
            *count += 1;
        }
    }

    /// Counts a (predicted, true) pair of a prediction made at `at_ms`; `delta` -1 takes back a
    /// pair that feedback corrects.
    pub fn add_pair(
        &mut self,
        schema_id: i64,
        at_ms: i64,
        predicted: &str,
        actual: &str,
        delta: i64,
    ) {
        *self
            .minute(schema_id, at_ms)
            .confusion
            .entry(predicted.to_string())
            .or_default()
            .entry(actual.to_string())
            .or_default() += delta;
    }

    /// Counts a (predicted, true) value pair of a prediction made at `at_ms` (a model that
    /// predicts a number); `delta` -1 takes back a pair that feedback corrects.
    pub fn add_value_pair(
        &mut self,
        schema_id: i64,
        at_ms: i64,
        predicted: f64,
        actual: f64,
        delta: i64,
    ) {
        let pair = Residuals::of_pair(predicted, actual, delta);
        if !pair.is_finite() {
            // A square past f64's range would poison the bucket's sums (and not survive JSON).
            tracing::warn!(
                predicted,
                actual,
                "prediction log: a value pair too large to count in live metrics"
            );
            return;
        }
        self.minute(schema_id, at_ms).residuals.merge(&pair);
    }

    /// Counts feedback on a found prediction: a (predicted, true) label pair, or value pair;
    /// `delta` -1 takes back the pair a correction replaces. A truth of the other kind than the
    /// prediction (never from the API, which checks it) counts nothing.
    pub fn add_truth(&mut self, found: &FoundPrediction, truth: &Truth, delta: i64) {
        let (id, at) = (found.schema_id, found.created_at_ms);
        match (&found.predicted, truth) {
            (Truth::Label(predicted), Truth::Label(actual)) => {
                self.add_pair(id, at, predicted, actual, delta);
            }
            (Truth::Value(predicted), Truth::Value(actual)) => {
                self.add_value_pair(id, at, *predicted, *actual, delta);
            }
            _ => {}
        }
    }

    /// Adds counts that could not be written back, to be written with the next ones.
    pub fn restore(&mut self, other: Pending) {
        for (key, stats) in other.minutes {
            self.minutes.entry(key).or_default().merge(&stats);
        }
    }
}

/// This process's counts not yet written, shared by the log writer and feedback.
#[derive(Debug)]
pub struct LiveCounts {
    /// This process's id in `log_stats`.
    replica: String,
    unwritten: std::sync::Mutex<Pending>,
    /// One writer at a time: each reads its rows, adds and writes them back.
    writing: tokio::sync::Mutex<()>,
}

impl Default for LiveCounts {
    fn default() -> Self {
        LiveCounts {
            replica: uuid::Uuid::now_v7().to_string(),
            unwritten: std::sync::Mutex::new(Pending::default()),
            writing: tokio::sync::Mutex::new(()),
        }
    }
}

impl LiveCounts {
    /// Adds counts, to be written by the next [`LiveCounts::write`].
    pub fn add(&self, add: impl FnOnce(&mut Pending)) {
        add(&mut self.unwritten.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Whether some counts wait to be written.
    pub fn has_unwritten(&self) -> bool {
        !self
            .unwritten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Forgets the counts not yet written (their database is gone).
    pub fn clear(&self) {
        *self.unwritten.lock().unwrap_or_else(|e| e.into_inner()) = Pending::default();
    }

    /// Writes every count added so far; on failure they stay, to be written next time.
    pub async fn write(&self, store: &Store) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        let pending =
            std::mem::take(&mut *self.unwritten.lock().unwrap_or_else(|e| e.into_inner()));
        match store.write_stats(&self.replica, pending).await {
            Ok(()) => Ok(()),
            Err((error, pending)) => {
                self.add(|unwritten| unwritten.restore(pending));
                Err(error)
            }
        }
    }
}

impl Store {
    /// Writes pending counts into this process's rows of `log_stats` (read, add, write back),
    /// in one transaction. On failure the counts are handed back, to be written next time.
    pub async fn write_stats(
        &self,
        replica: &str,
        pending: Pending,
    ) -> Result<(), (StoreError, Pending)> {
        if pending.is_empty() {
            return Ok(());
        }
        match self.write_stats_once(replica, &pending).await {
            Ok(()) => Ok(()),
            Err(error) => Err((error, pending)),
        }
    }

    async fn write_stats_once(&self, replica: &str, pending: &Pending) -> Result<(), StoreError> {
        let mut transaction = self.pool().begin().await?;
        for (&(schema_id, level, bucket_ms), delta) in &pending.all_levels() {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT stats FROM log_stats WHERE schema_id = $1 AND replica = $2 \
                 AND level = $3 AND bucket_ms = $4",
            )
            .bind(schema_id)
            .bind(replica.to_string())
            .bind(level)
            .bind(bucket_ms)
            .fetch_optional(&mut *transaction)
            .await?;
            let mut stats: BucketStats = match stored.map(|text| serde_json::from_str(&text)) {
                None => BucketStats::default(),
                Some(Ok(stats)) => stats,
                Some(Err(error)) => {
                    // Counts nobody can read are lost either way; start the bucket over.
                    tracing::error!(%error, schema_id, bucket_ms, "prediction log: unreadable live counts replaced");
                    BucketStats::default()
                }
            };
            stats.merge(delta);
            sqlx::query(
                "INSERT INTO log_stats (schema_id, replica, level, bucket_ms, stats) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (schema_id, replica, level, bucket_ms) \
                 DO UPDATE SET stats = excluded.stats",
            )
            .bind(schema_id)
            .bind(replica.to_string())
            .bind(level)
            .bind(bucket_ms)
            .bind(serde_json::to_string(&stats).unwrap_or_default())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every process's counts of a model's versions since `since_ms`, summed per version.
    pub async fn live_stats(
        &self,
        model: &str,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<BTreeMap<String, BucketStats>, StoreError> {
        let level = level_for(now_ms.saturating_sub(since_ms));
        let rows = sqlx::query(
            "SELECT l.version, s.stats FROM log_stats s JOIN log_schemas l ON l.id = s.schema_id \
             WHERE l.model = $1 AND s.level = $2 AND s.bucket_ms >= $3",
        )
        .bind(model.to_string())
        .bind(level.id)
        .bind(bucket_start(level, since_ms))
        .fetch_all(&*self.pool())
        .await?;
        let mut by_version: BTreeMap<String, BucketStats> = BTreeMap::new();
        for row in &rows {
            let version: String = row.try_get("version")?;
            let text: String = row.try_get("stats")?;
            match serde_json::from_str::<BucketStats>(&text) {
                Ok(stats) => by_version.entry(version).or_default().merge(&stats),
                Err(error) => tracing::error!(%error, "prediction log: unreadable live counts"),
            }
        }
        Ok(by_version)
    }

    /// Deletes buckets past their level's horizon, and every bucket older than `cutoff_ms`.
    pub async fn expire_stats(&self, now_ms: i64, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for level in LEVELS {
            let oldest = now_ms.saturating_sub(level.horizon_ms).max(cutoff_ms);
            deleted += sqlx::query("DELETE FROM log_stats WHERE level = $1 AND bucket_ms < $2")
                .bind(level.id)
                .bind(bucket_start(level, oldest))
                .execute(&*self.pool())
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_take_the_finest_level_that_covers_them() {
        assert_eq!(level_for(90_000).id, 0);
        assert_eq!(level_for(2 * 3_600_000).id, 0);
        assert_eq!(level_for(24 * 3_600_000).id, 1);
        assert_eq!(level_for(30 * 86_400_000).id, 2);
        assert_eq!(bucket_start(LEVELS[1], 3_600_000 * 5 + 17), 3_600_000 * 5);
        assert_eq!(bucket_start(LEVELS[0], -1), -60_000);
    }

    #[test]
    fn corrections_take_a_pair_back_and_merging_adds() {
        let mut pending = Pending::default();
        pending.add_pair(1, 0, "a", "b", 1);
        pending.add_pair(1, 0, "a", "b", -1);
        pending.add_pair(1, 0, "a", "a", 1);
        let stats = &pending.minutes[&(1, 0)];
        let pairs: Vec<_> = stats.pairs().collect();
        assert_eq!(pairs, vec![("a", "a", 1)]);
        let mut total = stats.clone();
        total.merge(stats);
        assert_eq!(total.pairs().collect::<Vec<_>>(), vec![("a", "a", 2)]);
        // Every level counts it when written.
        let all = pending.all_levels();
        assert_eq!(all.len(), 3);
        for level in LEVELS {
            assert_eq!(
                all[&(1, level.id, 0)].pairs().collect::<Vec<_>>(),
                vec![("a", "a", 1)]
            );
        }
    }

    /// Value pairs written by two processes and a correction read back as one version's sums.
    #[tokio::test]
    async fn value_pairs_are_summed_across_processes_through_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = Store::open(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO log_schemas (model, version, digest, schema) \
             VALUES ('diabetes', '1', 'd', '{}')",
        )
        .execute(&*store.pool())
        .await
        .unwrap();
        let schema_id: i64 = sqlx::query_scalar("SELECT id FROM log_schemas")
            .fetch_one(&*store.pool())
            .await
            .unwrap();
        let now = 10 * 60_000;
        let mut first = Pending::default();
        first.add_value_pair(schema_id, now, 151.0, 140.0, 1);
        first.add_value_pair(schema_id, now, 75.5, 80.0, 1);
        store.write_stats("a", first).await.unwrap();
        let mut second = Pending::default();
        second.add_value_pair(schema_id, now, 141.0, 150.5, 1);
        // Feedback corrected: the first pair's true value was 150, not 140.
        second.add_value_pair(schema_id, now, 151.0, 140.0, -1);
        second.add_value_pair(schema_id, now, 151.0, 150.0, 1);
        store.write_stats("b", second).await.unwrap();

        let by_version = store
            .live_stats("diabetes", now - 60_000, now)
            .await
            .unwrap();
        let residuals = by_version["1"].residuals;
        let expected = [(151.0, 150.0), (75.5, 80.0), (141.0, 150.5)]
            .into_iter()
            .fold(Residuals::default(), |mut sums, (p, t)| {
                sums.merge(&Residuals::of_pair(p, t, 1));
                sums
            });
        assert_eq!(residuals.n, 3);
        for (got, want) in [
            (residuals.rmse(), expected.rmse()),
            (residuals.mae(), expected.mae()),
            (residuals.r2(), expected.r2()),
        ] {
            assert!(
                (got.unwrap() - want.unwrap()).abs() < 1e-9,
                "{got:?} vs {want:?}"
            );
        }
        store.close().await;
    }
}
