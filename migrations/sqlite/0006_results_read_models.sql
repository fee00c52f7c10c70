-- See postgres/0006.
CREATE TABLE rm_subject_files (
    stream_id TEXT PRIMARY KEY,
    year INTEGER NOT NULL,
    subject TEXT NOT NULL,
    grp TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (year, subject)
);
CREATE INDEX rm_subject_files_pool ON rm_subject_files (year, grp, kind);

CREATE TABLE rm_cycles (
    year INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL
);

CREATE TABLE rm_results (
    year INTEGER NOT NULL,
    subject TEXT NOT NULL,
    grp TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    seq INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    composite TEXT NOT NULL,
    final_grade TEXT,
    result BLOB NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (year, subject)
);
CREATE INDEX rm_results_order ON rm_results (year, grp, kind, seq);
