//! The prediction log, ground-truth feedback and the statistics drawn from them (live metrics
//! and drift), in SQLite (the default, one file) or PostgreSQL (shared by replicas).
//!
//! One code path for both: sqlx's `Any` driver with runtime queries written in the SQL both
//! understand (`$1` placeholders, `ON CONFLICT`). Only the schema differs (column types), so
//! each has its own migrations, applied at start. Rows are compact (see [`record`]): numbers
//! and bytes, read back by the model version's schema stored once in `log_schemas`.

pub mod drift;
mod insert;
pub mod live;
mod log;
pub mod log_schema;
pub mod policy;
mod queries;
pub mod record;
pub mod retention;
mod upgrade;
mod writer;

pub use log::PredictionLog;
pub use queries::{FoundPrediction, LoggedPrediction, PredictionQuery, StoredSchema};
pub use record::PredictionRecord;
pub use writer::LogSettings;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one we support.
    #[error("database URL '{0}' is not supported: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The SQLite file's folder cannot be created.
    #[error("cannot create the folder of {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database cannot be reached or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema cannot be brought up to date.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend of a URL, when it is one we support.
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// A connection pool to the prediction database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// The URL without its password, for logs and messages.
pub fn redact(url: &str) -> String {
    let url = &redact_query_password(url);
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Hides a `password=` query parameter.
fn redact_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

fn sqlite_path(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or(rest)
}

fn migrations(backend: Backend) -> Vec<Migration> {
    let steps: [(&str, &'static str); 2] = match backend {
        Backend::Sqlite => [
            (
                "prediction log",
                include_str!("migrations/sqlite_0001_prediction_log.sql"),
            ),
            (
                "compact prediction log",
                include_str!("migrations/sqlite_0002_compact_log.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                "prediction log",
                include_str!("migrations/postgres_0001_prediction_log.sql"),
            ),
            (
                "compact prediction log",
                include_str!("migrations/postgres_0002_compact_log.sql"),
            ),
        ],
    };
    steps
        .into_iter()
        .zip(1..)
        .map(|((name, sql), version)| {
            Migration::new(
                version,
                Cow::Borrowed(name),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect()
}

impl Store {
    /// Connects (creating a SQLite file and its folder when missing) and applies migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| StoreError::UnsupportedUrl(redact(url)))?;
        let mut connect_url = url.to_string();
        if backend == Backend::Sqlite {
            let path = sqlite_path(url);
            if let Some(folder) = Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                    path: path.to_string(),
                    source,
                })?;
            }
            if !url.contains("mode=") {
                let separator = if url.contains('?') { '&' } else { '?' };
                connect_url.push(separator);
                connect_url.push_str("mode=rwc");
            }
        }
        let options = AnyConnectOptions::from_str(&connect_url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time is all SQLite allows; readers use the others (WAL).
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. NORMAL: a committed batch survives a
                        // crash of the process (not of the machine), at a fraction of FULL's cost.
                        connection.execute("PRAGMA journal_mode = WAL").await?;
                        connection.execute("PRAGMA synchronous = NORMAL").await?;
                        connection.execute("PRAGMA busy_timeout = 5000").await?;
                        // A checkpoint cuts the write-ahead log back to this, so a burst of
                        // writes or deletes does not leave a file that size behind for good.
                        connection
                            .execute(Store::sql(format!(
                                "PRAGMA journal_size_limit = {}",
                                retention::WAL_LIMIT_BYTES
                            )))
                            .await?;
                        // 2 MiB of page cache per connection: rows and index entries are
                        // appended in time order, so the pages the writer touches (the ends of
                        // the indexes) are few, and four connections cannot hold more than 8 MiB.
                        connection.execute("PRAGMA cache_size = -2048").await?;
                        // No memory map: each connection mapped up to 256 MiB of the file, which
                        // stayed resident as the log grew.
                        connection.execute("PRAGMA mmap_size = 0").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Migrator::with_migrations(migrations(backend))
            .run(&pool)
            .await?;
        let store = Store { pool, backend };
        upgrade::move_first_layout_rows(&store).await?;
        Ok(store)
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn sql(text: String) -> AssertSqlSafe<String> {
        AssertSqlSafe(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_of_messages() {
        assert_eq!(
            redact("postgres://mlserve:s3cret@db:5432/mlserve"),
            "postgres://mlserve:***@db:5432/mlserve"
        );
        assert_eq!(redact("sqlite://data/p.db"), "sqlite://data/p.db");
        assert_eq!(
            redact("postgres://db/mlserve?user=a&password=s3cret"),
            "postgres://db/mlserve?user=a&password=***"
        );
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite://data/p.db?mode=rwc"), "data/p.db");
        assert_eq!(sqlite_path("sqlite:///tmp/p.db"), "/tmp/p.db");
        assert_eq!(Backend::of("mysql://x"), None);
    }
}
