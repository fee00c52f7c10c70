-- See postgres/0008.
CREATE TABLE rm_cases (
    case_id TEXT PRIMARY KEY,
    year INTEGER NOT NULL,
    subjects TEXT NOT NULL,
    investigator TEXT,
    state TEXT NOT NULL,
    follow_up_hash TEXT,
    position INTEGER NOT NULL
);
CREATE INDEX rm_cases_investigator ON rm_cases (investigator, state);

CREATE TABLE rm_access_log (
    position INTEGER PRIMARY KEY,
    reader TEXT NOT NULL,
    role TEXT NOT NULL,
    what TEXT NOT NULL,
    year INTEGER,
    subject TEXT,
    case_id TEXT,
    allowed INTEGER NOT NULL,
    rule TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX rm_access_log_subject ON rm_access_log (subject, position);
