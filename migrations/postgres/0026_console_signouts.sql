-- The audit console's sign-outs (api/console/session.py). A console session is a sealed cookie
-- with its own expiry; signing out records its random session id here, and a cookie whose id is
-- listed is refused from then on, even if someone kept a copy. Append-only: rows are never
-- changed or removed (one short row per sign-out; past `expires` a row is moot, not wrong).
CREATE TABLE kaoping_console_signouts (
    session_id text PRIMARY KEY,
    expires bigint NOT NULL,  -- the session's own expiry, epoch seconds
    signed_out_at timestamptz NOT NULL
);
CREATE TRIGGER kaoping_console_signouts_append_only BEFORE UPDATE OR DELETE
    ON kaoping_console_signouts FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON kaoping_console_signouts TO %I', app);
END $$;
