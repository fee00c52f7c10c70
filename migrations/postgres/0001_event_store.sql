-- The event store and its ledger leaves. Migrations own every table (the library's
-- CREATE_TABLE is off); the layout of kaoping_events is eventsourcing 9.5's PostgreSQL
-- application recorder's, for an application named "Kaoping".

CREATE TABLE kaoping_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
CREATE UNIQUE INDEX kaoping_events_notification_id_idx ON kaoping_events (notification_id ASC);

-- The library's batch insert binds an array of this composite type.
CREATE TYPE stored_event_uuid AS (
    originator_id uuid, originator_version bigint, topic text, state bytea
);

-- One leaf per event, written in the same transaction while the events table lock is held.
-- position is the event's public position: the 0-based, dense RFC 9162 leaf index.
CREATE TABLE kaoping_ledger (
    position bigint PRIMARY KEY CHECK (position >= 0),
    notification_id bigint NOT NULL UNIQUE,
    stream_id uuid NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (stream_id, stream_version)
);

-- Append-only for everyone, the owner included: corrections are new events.
CREATE FUNCTION kaoping_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER kaoping_events_append_only BEFORE UPDATE OR DELETE ON kaoping_events
    FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_events_no_truncate BEFORE TRUNCATE ON kaoping_events
    FOR EACH STATEMENT EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_ledger_append_only BEFORE UPDATE OR DELETE ON kaoping_ledger
    FOR EACH ROW EXECUTE FUNCTION kaoping_refuse_change();
CREATE TRIGGER kaoping_ledger_no_truncate BEFORE TRUNCATE ON kaoping_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION kaoping_refuse_change();

-- The application role: SELECT and INSERT, plus UPDATE on the events table only because the
-- library's LOCK TABLE ... IN EXCLUSIVE MODE requires it (the trigger refuses every UPDATE).
-- No DELETE, no TRUNCATE, no ownership. The role name is a migration parameter.
DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('REVOKE ALL ON kaoping_events, kaoping_ledger FROM PUBLIC');
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON kaoping_events TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON kaoping_ledger TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE kaoping_events_notification_id_seq TO %I', app);
    EXECUTE format('GRANT USAGE ON TYPE stored_event_uuid TO %I', app);
END $$;
