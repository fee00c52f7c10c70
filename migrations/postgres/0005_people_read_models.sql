-- Read model of cadres in their current posts (for lists and for building a cycle's roster).
CREATE TABLE rm_cadres (
    cadre_id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    unit_code text NOT NULL,
    role text NOT NULL,
    since text NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX rm_cadres_unit ON rm_cadres (unit_code);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON rm_cadres TO %I', app);
END $$;
