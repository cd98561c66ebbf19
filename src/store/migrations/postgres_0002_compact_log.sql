-- The compact prediction log (PostgreSQL): inputs and probabilities as bytes, labels as indexes,
-- request ids as 16 bytes, and each model version's schema stored once. The rows of the first
-- layout are moved over at start-up (src/store/upgrade.rs), then its tables are dropped.
ALTER TABLE predictions RENAME TO predictions_v1;
ALTER TABLE feedback RENAME TO feedback_v1;
CREATE TABLE log_schemas (
    id BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    schema TEXT NOT NULL,
    UNIQUE (model, version, digest)
);
CREATE TABLE predictions (
    id BIGSERIAL PRIMARY KEY,
    request_id BYTEA NOT NULL,
    row_index INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL,
    schema_id BIGINT NOT NULL,
    label INTEGER,
    value DOUBLE PRECISION,
    inputs BYTEA NOT NULL,
    probabilities BYTEA,
    latency_us BIGINT NOT NULL,
    key_name TEXT,
    UNIQUE (request_id, row_index)
);
CREATE INDEX predictions_by_schema_time ON predictions (schema_id, created_at_ms);
CREATE TABLE feedback (
    request_id BYTEA NOT NULL,
    row_index INTEGER NOT NULL,
    label TEXT,
    value DOUBLE PRECISION,
    created_at_ms BIGINT NOT NULL,
    key_name TEXT,
    PRIMARY KEY (request_id, row_index)
);
-- Live metrics and drift, counted as predictions and feedback arrive (src/store/live.rs): one
-- row per model version, process, resolution and time bucket.
CREATE TABLE log_stats (
    schema_id BIGINT NOT NULL,
    replica TEXT NOT NULL,
    level INTEGER NOT NULL,
    bucket_ms BIGINT NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (schema_id, replica, level, bucket_ms)
);
