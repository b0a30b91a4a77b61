ALTER TABLE users DROP COLUMN pending_archive_reason;
ALTER TABLE users DROP COLUMN pending_archive_since;
ALTER TABLE users DROP COLUMN "groups";
