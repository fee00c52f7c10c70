-- Results read models: which pool each subject file belongs to, each cycle's state, and every
-- subject's result as the score function computed it for its pool.
CREATE TABLE rm_subject_files (
    stream_id uuid PRIMARY KEY,
    year integer NOT NULL,
    subject text NOT NULL,
    grp text NOT NULL,
    kind text NOT NULL,
    UNIQUE (year, subject)
);
CREATE INDEX rm_subject_files_pool ON rm_subject_files (year, grp, kind);

CREATE TABLE rm_cycles (
    year integer PRIMARY KEY,
    phase text NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE rm_results (
    year integer NOT NULL,
    subject text NOT NULL,
    grp text NOT NULL,
    kind text NOT NULL,
    code text NOT NULL,
    seq integer NOT NULL,  -- place in the pool order (rank, then the tie rule)
    rank integer NOT NULL,
    composite text NOT NULL,
    final_grade text,
    result bytea NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (year, subject)
);
CREATE INDEX rm_results_order ON rm_results (year, grp, kind, seq);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON rm_subject_files, rm_cycles, '
                   'rm_results TO %I', app);
END $$;
