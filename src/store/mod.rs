//! The prediction log, ground-truth feedback and the statistics drawn from them (live metrics
//! and drift), in SQLite (the default, one file) or PostgreSQL (shared by replicas).
//!
//! One code path for both: sqlx's `Any` driver with runtime queries written in the SQL both
//! understand (`$1` placeholders, `ON CONFLICT`). Only the schema differs (column types), so
//! each has its own migrations, applied at start. The writer's inserts, the one statement run
//! for every prediction, go through each database's own driver instead ([`sqlite_writer`],
//! PostgreSQL's in [`insert`]). Rows are compact (see [`record`]): numbers
//! and bytes, read back by the model version's schema stored once in `log_schemas`.

mod connect;
pub mod drift;
mod insert;
pub mod live;
mod log;
pub mod log_schema;
pub mod policy;
mod queries;
pub mod record;
pub mod residuals;
pub mod retention;
mod sqlite_writer;
mod upgrade;
mod writer;

pub use log::PredictionLog;
pub use queries::{
    ExportQuery, FoundPrediction, LoggedPrediction, PredictionQuery, StoredSchema, Truth, rfc3339,
};

/// The file a `sqlite:` URL names.
pub fn sqlite_file(url: &str) -> &str {
    connect::sqlite_path(url)
}
pub use record::PredictionRecord;
pub use writer::LogSettings;

use arc_swap::ArcSwap;
use sqlx::{AnyPool, AssertSqlSafe};
use std::sync::Arc;

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
    /// The database's layout is not the one this release reads.
    #[error("the prediction log cannot be read as it is: {0}")]
    Layout(String),
    /// A task of the store stopped before its end.
    #[error("a prediction log task failed: {0}")]
    Task(String),
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
    pool: Arc<ArcSwap<AnyPool>>,
    backend: Backend,
    url: Arc<str>,
    /// The SQLite file's device and inode when it was opened.
    file: Arc<std::sync::Mutex<Option<(u64, u64)>>>,
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

impl Store {
    /// Connects (creating a SQLite file and its folder when missing), applies the migrations
    /// and moves the rows of an earlier layout.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (pool, backend) = connect::connect(url, connect::Access::Write).await?;
        let store = Store {
            pool: Arc::new(ArcSwap::from_pointee(pool)),
            backend,
            url: Arc::from(url),
            file: Arc::new(std::sync::Mutex::new(None)),
        };
        store.remember_file();
        upgrade::move_first_layout_rows(&store).await?;
        Ok(store)
    }

    /// Opens an existing log to read it, changing nothing (no migration, no upgrade; a SQLite
    /// file is opened read-only): for tools such as `mlserve log export` that may run beside
    /// servers of another release.
    pub async fn open_for_reading(url: &str) -> Result<Store, StoreError> {
        let (pool, backend) = connect::connect(url, connect::Access::Read).await?;
        Ok(Store {
            pool: Arc::new(ArcSwap::from_pointee(pool)),
            backend,
            url: Arc::from(url),
            file: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// The writer's pool of PostgreSQL's own driver ([`connect::postgres_writer_pool`]);
    /// `None` on SQLite.
    pub(super) fn postgres_writer_pool(&self) -> Result<Option<sqlx::PgPool>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(None),
            Backend::Postgres => connect::postgres_writer_pool(&self.url).map(Some),
        }
    }

    /// The path of the SQLite file the log is in; `None` on PostgreSQL and for an in-memory
    /// database (whose file identity is unknown).
    pub(super) fn sqlite_file_path(&self) -> Option<std::path::PathBuf> {
        let opened = self
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        opened.then(|| connect::sqlite_path(&self.url).into())
    }

    /// The connection pool (the current one: a SQLite file that was deleted or replaced gets a
    /// new one, see [`Store::reopen_if_replaced`]).
    fn pool(&self) -> Arc<AnyPool> {
        self.pool.load_full()
    }

    /// The SQLite file's identity (device and inode) now, if it exists.
    fn file_identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        (self.backend == Backend::Sqlite)
            .then(|| std::fs::metadata(connect::sqlite_path(&self.url)).ok())
            .flatten()
            .map(|m| (m.dev(), m.ino()))
    }

    fn remember_file(&self) {
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = self.file_identity();
    }

    /// For SQLite: when the database file was deleted or replaced while open (the connections
    /// would go on writing to a file no one can read again), opens it anew, creating it with
    /// its tables, and returns true. Readers and the writer move to the new file together.
    pub async fn reopen_if_replaced(&self) -> Result<bool, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(false);
        }
        let opened = *self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A file whose identity was never known (an in-memory database) is never reopened.
        if opened.is_none() || self.file_identity() == opened {
            return Ok(false);
        }
        let (pool, _) = connect::connect(&self.url, connect::Access::Write).await?;
        let old = self.pool.swap(Arc::new(pool));
        self.remember_file();
        // The new file has the first layout's tables, empty, from the migrations: drop them.
        upgrade::move_first_layout_rows(self).await?;
        // Readers may still hold the old pool's connections: close it without waiting here.
        tokio::spawn(async move { old.close().await });
        Ok(true)
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool().close().await;
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
        assert_eq!(
            connect::sqlite_path("sqlite://data/p.db?mode=rwc"),
            "data/p.db"
        );
        assert_eq!(connect::sqlite_path("sqlite:///tmp/p.db"), "/tmp/p.db");
        assert_eq!(Backend::of("mysql://x"), None);
    }
}
