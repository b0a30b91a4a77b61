-- Several workers on one database (PostgreSQL; on SQLite, one instance uses the same columns).
-- Which instance holds a running run and until when (its lease, renewed while it works).
ALTER TABLE sync_runs ADD COLUMN claimed_by TEXT;
ALTER TABLE sync_runs ADD COLUMN lease_expires_at TEXT;
-- A run set back by a transient fault (disk full, database busy, connection lost) waits until
-- then before it is tried again; how many times that happened.
ALTER TABLE sync_runs ADD COLUMN not_before TEXT;
ALTER TABLE sync_runs ADD COLUMN transient_failures INTEGER NOT NULL DEFAULT 0;
-- When a run of the organization was last taken from the queue: organizations take turns.
ALTER TABLE organizations ADD COLUMN last_claimed_at TEXT;

-- The queue: runs by status, per organization, in arrival order.
CREATE INDEX sync_runs_queue ON sync_runs (status, organization_id, id);
-- Deleting a user checks that nobody reports to them.
CREATE INDEX users_by_manager ON users (organization_id, manager_id) WHERE manager_id IS NOT NULL;
