-- The compact prediction log (SQLite): inputs and probabilities as bytes, labels as indexes,
-- request ids as 16 bytes, and each model version's schema stored once. The rows of the first
-- layout are moved over at start-up (src/store/upgrade.rs), then its tables are dropped.
ALTER TABLE predictions RENAME TO predictions_v1;
ALTER TABLE feedback RENAME TO feedback_v1;
CREATE TABLE log_schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    schema TEXT NOT NULL,
    UNIQUE (model, version, digest)
);
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BLOB NOT NULL,
    row_index INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    schema_id INTEGER NOT NULL,
    label INTEGER,
    value REAL,
    inputs BLOB NOT NULL,
    probabilities BLOB,
    latency_us INTEGER NOT NULL,
    key_name TEXT,
    UNIQUE (request_id, row_index)
);
CREATE INDEX predictions_by_schema_time ON predictions (schema_id, created_at_ms);
CREATE TABLE feedback (
    request_id BLOB NOT NULL,
    row_index INTEGER NOT NULL,
    label TEXT,
    value REAL,
    created_at_ms INTEGER NOT NULL,
    key_name TEXT,
    PRIMARY KEY (request_id, row_index)
);
-- Live metrics and drift, counted as predictions and feedback arrive (src/store/live.rs): one
-- row per model version, process, resolution and time bucket.
CREATE TABLE log_stats (
    schema_id INTEGER NOT NULL,
    replica TEXT NOT NULL,
    level INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (schema_id, replica, level, bucket_ms)
);
