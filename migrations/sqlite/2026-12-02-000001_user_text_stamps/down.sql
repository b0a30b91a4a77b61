DROP TRIGGER users_text_stamp_follows_manager;
DROP TRIGGER users_text_stamp_cleared_by_other_writes;
ALTER TABLE users DROP COLUMN text_stamp;
