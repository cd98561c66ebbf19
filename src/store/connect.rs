//! Connecting to the prediction database: the pool, the settings of each SQLite connection,
//! and the migrations.

use super::{Backend, Store, StoreError, redact, retention};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The file a SQLite URL names.
pub(super) fn sqlite_path(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or(rest)
}

fn migrations(backend: Backend) -> Vec<Migration> {
    let steps: Vec<(&str, &'static str)> = match backend {
        Backend::Sqlite => vec![
            (
                "prediction log",
                include_str!("migrations/sqlite_0001_prediction_log.sql"),
            ),
            (
                "compact prediction log",
                include_str!("migrations/sqlite_0002_compact_log.sql"),
            ),
        ],
        Backend::Postgres => vec![
            (
                "prediction log",
                include_str!("migrations/postgres_0001_prediction_log.sql"),
            ),
            (
                "compact prediction log",
                include_str!("migrations/postgres_0002_compact_log.sql"),
            ),
            (
                "prediction log autovacuum",
                include_str!("migrations/postgres_0003_log_autovacuum.sql"),
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

/// The settings of every connection to a SQLite log, the writer's own included.
pub(super) fn sqlite_pragmas() -> [String; 6] {
    [
        // WAL: readers never block the writer. NORMAL: a committed batch survives a crash of
        // the process (not of the machine), at a fraction of FULL's cost.
        "PRAGMA journal_mode = WAL".into(),
        "PRAGMA synchronous = NORMAL".into(),
        "PRAGMA busy_timeout = 5000".into(),
        // A checkpoint cuts the write-ahead log back to this, so a burst of writes or deletes
        // does not leave a file that size behind for good.
        format!("PRAGMA journal_size_limit = {}", retention::WAL_LIMIT_BYTES),
        // 2 MiB of page cache per connection: rows and index entries are appended in time
        // order, so the pages the writer touches (the ends of the indexes) are few, and the
        // connections cannot hold more than a few MiB.
        "PRAGMA cache_size = -2048".into(),
        // No memory map: each connection mapped up to 256 MiB of the file, which stayed
        // resident as the log grew.
        "PRAGMA mmap_size = 0".into(),
    ]
}

/// What a pool is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// The server: create the database when missing and bring its schema up to date.
    Write,
    /// A reader such as `mlserve log export`: the database as it is, changed in nothing.
    Read,
}

/// A pool of PostgreSQL's own driver, for the writer's inserts of typed arrays (which sqlx's
/// `Any` driver cannot bind): one connection, made when first used, with the same URL and
/// acquire timeout as the other pool.
pub(super) fn postgres_writer_pool(url: &str) -> Result<sqlx::PgPool, StoreError> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options))
}

/// A pool to the database at `url`; for [`Access::Write`], with its migrations applied.
pub(super) async fn connect(url: &str, access: Access) -> Result<(AnyPool, Backend), StoreError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url).ok_or_else(|| StoreError::UnsupportedUrl(redact(url)))?;
    let mut connect_url = url.to_string();
    if backend == Backend::Sqlite && access == Access::Write {
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
    }
    if backend == Backend::Sqlite && !url.contains("mode=") {
        let separator = if url.contains('?') { '&' } else { '?' };
        connect_url.push(separator);
        connect_url.push_str(match access {
            Access::Write => "mode=rwc",
            Access::Read => "mode=ro",
        });
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
                    for pragma in sqlite_pragmas() {
                        connection.execute(Store::sql(pragma)).await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    if access == Access::Write {
        Migrator::with_migrations(migrations(backend))
            .run(&pool)
            .await?;
    } else {
        check_up_to_date(&pool, backend).await?;
    }
    Ok((pool, backend))
}

/// Refuses a database whose schema is not this release's (older: a server of this release
/// upgrades it at start; newer: this release cannot read it).
async fn check_up_to_date(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let latest = migrations(backend).len() as i64;
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .unwrap_or(None);
    match applied {
        Some(version) if version == latest => Ok(()),
        Some(version) if version > latest => Err(StoreError::Layout(format!(
            "it was written by a newer release (schema {version}; this one reads {latest})"
        ))),
        _ => Err(StoreError::Layout(
            "it was written by an earlier release: start the server of this release once to \
             upgrade it in place"
                .into(),
        )),
    }
}
