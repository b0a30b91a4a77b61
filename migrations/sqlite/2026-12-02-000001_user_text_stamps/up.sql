-- The stamp of the HR record text a run last applied cleanly to the user (no issue, active
-- after the run): a hash of the record's exact text and of what decides how a text applies
-- (the organization's settings, the build). A push whose every record carries the stamp
-- of the user it names is recognised as unchanged without being parsed (sync::unchanged).
ALTER TABLE users ADD COLUMN text_stamp TEXT;

-- A stamp holds only while the row is as the run that stamped it left it: any other update
-- of the row (a state change, an invitation revoked, upcoming trips, a later run that does
-- not stamp it) clears it.
CREATE TRIGGER users_text_stamp_cleared_by_other_writes
AFTER UPDATE ON users
FOR EACH ROW
WHEN OLD.text_stamp IS NOT NULL AND NEW.text_stamp IS OLD.text_stamp
BEGIN
    UPDATE users SET text_stamp = NULL
    WHERE organization_id = NEW.organization_id AND id = NEW.id;
END;

-- How a record applies also depends on its manager (present, staying, able to approve): a
-- change of what the checks read of a manager clears the stamps of their direct reports.
CREATE TRIGGER users_text_stamp_follows_manager
AFTER UPDATE OF external_id, state, role, employment_status, end_date ON users
FOR EACH ROW
WHEN NEW.external_id IS NOT OLD.external_id
    OR NEW.state IS NOT OLD.state
    OR NEW.role IS NOT OLD.role
    OR NEW.employment_status IS NOT OLD.employment_status
    OR NEW.end_date IS NOT OLD.end_date
BEGIN
    UPDATE users SET text_stamp = NULL
    WHERE organization_id = NEW.organization_id
      AND manager_id = NEW.id
      AND text_stamp IS NOT NULL;
END;
