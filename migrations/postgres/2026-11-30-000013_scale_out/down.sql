DROP INDEX users_by_manager;
DROP INDEX sync_runs_queue;
ALTER TABLE organizations DROP COLUMN last_claimed_at;
ALTER TABLE sync_runs DROP COLUMN transient_failures;
ALTER TABLE sync_runs DROP COLUMN not_before;
ALTER TABLE sync_runs DROP COLUMN lease_expires_at;
ALTER TABLE sync_runs DROP COLUMN claimed_by;
