-- Provisioning rules: the groups that group_rules assign, and why and since when a user is
-- pending_archive (upcoming trips, or the grace period of a user missing from a full sync).
ALTER TABLE users ADD COLUMN "groups" TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN pending_archive_since TEXT;
ALTER TABLE users ADD COLUMN pending_archive_reason TEXT;
-- Every pending_archive user so far waited for upcoming trips.
UPDATE users SET pending_archive_reason = 'upcoming_trips' WHERE state = 'pending_archive';
