-- The record of `kaoping rebuild --check` runs: read models rebuilt from the log and compared
-- with the live ones. Append-only, like the log it vouches for.
CREATE TABLE kaoping_rebuild_checks (
    id bigserial PRIMARY KEY,
    checked_at timestamptz NOT NULL,
    checkpoint_size bigint NOT NULL,
    checkpoint bytea NOT NULL,
    ok boolean NOT NULL,
    report bytea NOT NULL
);
CREATE TRIGGER kaoping_rebuild_checks_append_only BEFORE UPDATE OR DELETE
    ON kaoping_rebuild_checks FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON kaoping_rebuild_checks TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE kaoping_rebuild_checks_id_seq TO %I', app);
END $$;
