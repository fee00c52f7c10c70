-- Read models for report-line cases (who investigates which subjects) and the access record.
CREATE TABLE rm_cases (
    case_id uuid PRIMARY KEY,
    year integer NOT NULL,
    subjects text NOT NULL,  -- JSON list
    investigator text,
    state text NOT NULL,
    follow_up_hash text,
    position bigint NOT NULL
);
CREATE INDEX rm_cases_investigator ON rm_cases (investigator, state);

CREATE TABLE rm_access_log (
    position bigint PRIMARY KEY,
    reader text NOT NULL,
    role text NOT NULL,
    what text NOT NULL,
    year integer,
    subject text,
    case_id text,
    allowed boolean NOT NULL,
    rule text NOT NULL,
    at text NOT NULL
);
CREATE INDEX rm_access_log_subject ON rm_access_log (subject, position);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON rm_cases, rm_access_log TO %I', app);
END $$;
