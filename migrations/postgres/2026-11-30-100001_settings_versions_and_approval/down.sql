ALTER TABLE sync_runs DROP COLUMN decided_at;
ALTER TABLE sync_runs DROP COLUMN decision_reason;
ALTER TABLE sync_runs DROP COLUMN decided_by;
ALTER TABLE sync_runs DROP COLUMN approval_expires_at;
ALTER TABLE sync_runs DROP COLUMN awaiting_since;
ALTER TABLE sync_runs DROP COLUMN approval_reasons;
ALTER TABLE sync_runs DROP COLUMN settings_version;
DROP TABLE settings_versions;
ALTER TABLE organizations DROP COLUMN settings_version;
