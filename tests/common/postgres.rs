//! Fresh PostgreSQL databases on the test server.

/// A fresh, empty PostgreSQL database on the test server (MLSERVE_TEST_POSTGRES_URL, which
/// scripts/test.sh sets up); returns its URL.
pub async fn fresh_postgres_database() -> String {
    let base = std::env::var("MLSERVE_TEST_POSTGRES_URL").expect(
        "MLSERVE_TEST_POSTGRES_URL names a PostgreSQL server; scripts/test.sh starts one (scripts/test-postgres.sh)",
    );
    sqlx::any::install_default_drivers();
    let name = format!("mlserve_test_{}", uuid_like());
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap_or_else(|error| panic!("connect to the test PostgreSQL at {base:?}: {error}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// A name unique to this process and moment.
pub fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// What the prediction log's tables take on disk in the PostgreSQL database at `url`, indexes
/// and free space included: `pg_total_relation_size` of each.
pub async fn postgres_log_files_bytes(url: &str) -> u64 {
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let bytes: i64 = sqlx::query_scalar(
        "SELECT (pg_total_relation_size('predictions') + pg_total_relation_size('feedback') \
         + pg_total_relation_size('log_schemas') + pg_total_relation_size('log_stats'))::BIGINT",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    u64::try_from(bytes).unwrap()
}

/// Runs `statement` on the PostgreSQL database at `url` (VACUUM, which cannot run in a
/// transaction, included).
pub async fn postgres_execute(url: &str, statement: &str) {
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut connection)
        .await
        .unwrap();
}
