-- The stamp of the HR record text a run last applied cleanly to the user (no issue, active
-- after the run): a hash of the record's exact text and of what decides how a text applies
-- (the organization's settings, the build). A push whose every record carries the stamp
-- of the user it names is recognised as unchanged without being parsed (sync::unchanged).
ALTER TABLE users ADD COLUMN text_stamp TEXT;

-- A stamp holds only while the row is as the run that stamped it left it: any other update
-- of the row (a state change, an invitation revoked, upcoming trips, a later run that does
-- not stamp it) clears it.
CREATE FUNCTION users_text_stamp_cleared_by_other_writes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.text_stamp IS NOT DISTINCT FROM OLD.text_stamp THEN
        NEW.text_stamp := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_text_stamp_cleared_by_other_writes
BEFORE UPDATE ON users
FOR EACH ROW
WHEN (OLD.text_stamp IS NOT NULL)
EXECUTE FUNCTION users_text_stamp_cleared_by_other_writes();

-- How a record applies also depends on its manager (present, staying, able to approve): a
-- change of what the checks read of a manager clears the stamps of their direct reports.
CREATE FUNCTION users_text_stamp_follows_manager() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET text_stamp = NULL
    WHERE organization_id = NEW.organization_id
      AND manager_id = NEW.id
      AND text_stamp IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_text_stamp_follows_manager
AFTER UPDATE OF external_id, state, role, employment_status, end_date ON users
FOR EACH ROW
WHEN (NEW.external_id IS DISTINCT FROM OLD.external_id
    OR NEW.state IS DISTINCT FROM OLD.state
    OR NEW.role IS DISTINCT FROM OLD.role
    OR NEW.employment_status IS DISTINCT FROM OLD.employment_status
    OR NEW.end_date IS DISTINCT FROM OLD.end_date)
EXECUTE FUNCTION users_text_stamp_follows_manager();
