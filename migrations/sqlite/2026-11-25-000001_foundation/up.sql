-- Organizations (tenants), their API tokens and their sync runs.
-- Timestamps are RFC 3339 UTC text with a fixed width, so that text order is time order.
CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL,
    scope            TEXT NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    created_at       TEXT NOT NULL,
    last_used_at     TEXT,
    revoked_at       TEXT
);
CREATE INDEX api_tokens_by_organization ON api_tokens (organization_id, id);

CREATE TABLE sync_runs (
    id                  TEXT PRIMARY KEY NOT NULL,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    status              TEXT NOT NULL,
    mode                TEXT NOT NULL,
    source              TEXT NOT NULL,
    dry_run             BOOLEAN NOT NULL,
    content_type        TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT,
    attempts            INTEGER NOT NULL,
    progress_processed  INTEGER NOT NULL,
    progress_total      INTEGER NOT NULL,
    summary             TEXT,
    logs                TEXT NOT NULL,
    retry_of            TEXT
);
-- Ids are UUIDv7, so id order is arrival order.
CREATE INDEX sync_runs_by_organization ON sync_runs (organization_id, id);
CREATE INDEX sync_runs_by_status ON sync_runs (status, id);
