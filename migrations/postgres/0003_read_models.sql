-- Read models fed by the projection follower. Derived data: rebuilt from the log at will,
-- so the application role may update and delete them.

CREATE TABLE kaoping_projection_tracking (
    name text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= -1)
);

CREATE TABLE rm_event_counts (
    topic text PRIMARY KEY,
    events bigint NOT NULL,
    last_position bigint NOT NULL
);

CREATE TABLE rm_units (
    unit_id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    kind text NOT NULL,
    category text NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL
);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON kaoping_projection_tracking, '
                   'rm_event_counts, rm_units TO %I', app);
END $$;
