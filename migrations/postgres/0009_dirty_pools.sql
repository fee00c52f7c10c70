-- Pools whose results must be recomputed: marked in the same transaction as the follower's
-- position, recomputed (once each) when the follower reaches the head of the log, so catching
-- up a long backlog recomputes each pool once, not once per page.
CREATE TABLE rm_dirty_pools (
    year integer NOT NULL,
    grp text NOT NULL,
    kind text NOT NULL,
    PRIMARY KEY (year, grp, kind)
);

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON rm_dirty_pools TO %I', app);
END $$;
