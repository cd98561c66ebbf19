-- The prediction log and ground-truth feedback (PostgreSQL).
CREATE TABLE IF NOT EXISTS predictions (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    inputs TEXT NOT NULL,
    label TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    key_name TEXT,
    UNIQUE (request_id, row_index)
);
CREATE INDEX IF NOT EXISTS predictions_by_model_time ON predictions (model, created_at_ms);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    label TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    key_name TEXT,
    PRIMARY KEY (request_id, row_index)
);
