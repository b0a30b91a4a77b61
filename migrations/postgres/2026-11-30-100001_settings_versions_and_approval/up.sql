-- Provisioning settings are versioned, and a run may wait for an administrator's decision.

-- The version of the organization's current settings: 0 until they are first changed.
ALTER TABLE organizations ADD COLUMN settings_version INTEGER NOT NULL DEFAULT 0;

-- Every change of an organization's settings: the whole document, who changed it and when.
CREATE TABLE settings_versions (
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    version          INTEGER NOT NULL,
    document         TEXT NOT NULL,
    changed_by       TEXT NOT NULL,
    changed_at       TEXT NOT NULL,
    PRIMARY KEY (organization_id, version)
);

-- The settings version a run was planned with.
ALTER TABLE sync_runs ADD COLUMN settings_version INTEGER;
-- JSON list of the approval limits the run's plan crossed.
ALTER TABLE sync_runs ADD COLUMN approval_reasons TEXT;
-- When the run began to wait for approval, and when it expires if nobody decides.
ALTER TABLE sync_runs ADD COLUMN awaiting_since TEXT;
ALTER TABLE sync_runs ADD COLUMN approval_expires_at TEXT;
-- The decision on a run that waited: who (the token's name), why, when.
ALTER TABLE sync_runs ADD COLUMN decided_by TEXT;
ALTER TABLE sync_runs ADD COLUMN decision_reason TEXT;
ALTER TABLE sync_runs ADD COLUMN decided_at TEXT;
