-- What a push carries, the directory it keeps in step, and the report of each run.

-- The body of a push exactly as it was accepted (LZ4-compressed), so that a run can be
-- processed, resumed after a crash and retried.
CREATE TABLE sync_payloads (
    run_id    TEXT PRIMARY KEY NOT NULL REFERENCES sync_runs (id),
    body_lz4  BYTEA NOT NULL
);

CREATE TABLE idempotency_keys (
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    run_id           TEXT NOT NULL REFERENCES sync_runs (id),
    created_at       TEXT NOT NULL,
    PRIMARY KEY (organization_id, idempotency_key)
);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY NOT NULL,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    external_id        TEXT,
    email              TEXT NOT NULL,
    email_key          TEXT NOT NULL,
    username           TEXT,
    first_name         TEXT NOT NULL,
    last_name          TEXT NOT NULL,
    state              TEXT NOT NULL,
    role               TEXT NOT NULL,
    approval_process   TEXT NOT NULL,
    employment_status  TEXT NOT NULL,
    manager_id         TEXT,
    teams              TEXT NOT NULL,
    start_date         TEXT,
    end_date           TEXT,
    date_of_birth      TEXT,
    gender             TEXT,
    phone              TEXT,
    custom_fields      TEXT NOT NULL,
    upcoming_trips     INTEGER NOT NULL,
    -- Fingerprint of the HR record last applied: an identical record needs no diff.
    source_hash        TEXT,
    search_key         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    archived_at        TEXT,
    UNIQUE (organization_id, id),
    -- A manager is a user of the same organization (not checked while manager_id is NULL).
    FOREIGN KEY (organization_id, manager_id) REFERENCES users (organization_id, id)
);
CREATE UNIQUE INDEX users_by_external_id ON users (organization_id, external_id);
CREATE UNIQUE INDEX users_by_email ON users (organization_id, email_key);

CREATE TABLE teams (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX teams_by_name ON teams (organization_id, name_key);

-- The report of a run, in the order the work was planned (seq).
CREATE TABLE sync_events (
    run_id       TEXT NOT NULL REFERENCES sync_runs (id),
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    entity       TEXT NOT NULL,
    action       TEXT,
    code         TEXT,
    severity     TEXT,
    field        TEXT,
    message      TEXT,
    changes      TEXT,
    source_row   INTEGER,
    external_id  TEXT,
    email        TEXT,
    first_name   TEXT,
    last_name    TEXT,
    user_id      TEXT,
    team         TEXT,
    search_key   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
