-- See postgres/0019.
CREATE TABLE kaoping_refused_reads (
    reader TEXT NOT NULL,
    role TEXT NOT NULL,
    what TEXT NOT NULL,
    rule TEXT NOT NULL,
    scope TEXT NOT NULL,
    year INTEGER,
    subject TEXT,
    case_id TEXT,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    count INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    recorded_position INTEGER,
    PRIMARY KEY (reader, what, rule, window_start, scope)
);
CREATE INDEX kaoping_refused_reads_pending ON kaoping_refused_reads (window_end)
    WHERE recorded_position IS NULL;

ALTER TABLE rm_access_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE rm_access_log ADD COLUMN last_at TEXT;
