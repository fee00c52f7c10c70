-- Refused reads of restricted material, counted per reader, material, rule and window (not one
-- log event per refusal: a refused caller must not grow the permanent log at its own pace).
-- Operational state, not the log: a row is counted up in place while its window is open; once
-- the window has ended it is recorded as one RefusedReads.Counted event, and recorded_position
-- (the event's position) is set in the same transaction as that event, so every refusal is in
-- exactly one recorded count. See service/refusals.py and docs/operations.md.
CREATE TABLE kaoping_refused_reads (
    reader text NOT NULL,
    role text NOT NULL,
    what text NOT NULL,
    rule text NOT NULL,
    -- what was asked for: year, subject and case; '*' past the distinct-per-window cap
    scope text NOT NULL,
    year integer,
    subject text,
    case_id text,
    window_start bigint NOT NULL,  -- epoch seconds (UTC)
    window_end bigint NOT NULL,
    count bigint NOT NULL,
    first_at text NOT NULL,
    last_at text NOT NULL,
    recorded_position bigint,
    PRIMARY KEY (reader, what, rule, window_start, scope)
);
CREATE INDEX kaoping_refused_reads_pending ON kaoping_refused_reads (window_end)
    WHERE recorded_position IS NULL;

-- The access record shows counted refusals as one row with their count and first/last time.
ALTER TABLE rm_access_log ADD COLUMN count bigint NOT NULL DEFAULT 1;
ALTER TABLE rm_access_log ADD COLUMN last_at text;

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON kaoping_refused_reads TO %I', app);
END $$;
