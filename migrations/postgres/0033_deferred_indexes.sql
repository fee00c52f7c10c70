-- Building a read model from zero (a new read model, or one reset and rebuilt) inserts each of
-- its rows into every index one at a time; rm_units' primary key is on random (uuid5) ids, so
-- each insert lands on a random page. Measured (1,000,000 units copied in pages of 1,000 on
-- PostgreSQL 15, 2 cores, 2026-12-07): 7.1-8.0 s into the table with its two indexes, 3.4 s
-- into the bare table with both indexes built after (docs/architecture.md). So the follower
-- may drop a read model's indexes while it catches up from zero over a long log (from
-- projection_bulk_min_events events: on 2 cores it pays only for large tables) and build them
-- once, when it reaches the head (projections/follower.py, projections/bulk.py).
--
-- The application role has no DDL. These two functions, owned by the owner role, do exactly
-- this and nothing more: only on read-model tables (public.rm_*), dropping only from an empty
-- table, recording each definition (as PostgreSQL's catalog prints it) before dropping it, so
-- a crash in the middle loses nothing: the next follower finds the record and builds them.
-- The record is state, not history (like the rate buckets): the restore deletes its rows.
CREATE TABLE kaoping_deferred_indexes (
    table_name text NOT NULL,
    name text NOT NULL,
    is_constraint boolean NOT NULL,  -- primary key / unique constraint, or a plain index
    definition text NOT NULL,
    deferred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, name)
);

CREATE FUNCTION kaoping_defer_indexes(tbl text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    rel regclass;
    occupied boolean;
    r record;
    n integer := 0;
BEGIN
    IF tbl IS NULL OR tbl !~ '^rm_[a-z0-9_]+$' THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: % is not a read-model table', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    rel := to_regclass(format('public.%I', tbl));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: no table %', tbl USING ERRCODE = 'undefined_table';
    END IF;
    IF EXISTS (SELECT 1 FROM kaoping_deferred_indexes WHERE table_name = tbl) THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: the indexes of % are already deferred', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.%I)', tbl) INTO occupied;
    IF occupied THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: % is not empty', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Constraints backed by an index (primary key, unique, exclusion) first, then the rest.
    FOR r IN SELECT c.conname AS name, pg_get_constraintdef(c.oid) AS def
             FROM pg_constraint c WHERE c.conrelid = rel AND c.contype IN ('p', 'u', 'x')
             ORDER BY c.conname LOOP
        INSERT INTO kaoping_deferred_indexes (table_name, name, is_constraint, definition)
            VALUES (tbl, r.name, true, r.def);
        EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', tbl, r.name);
        n := n + 1;
    END LOOP;
    FOR r IN SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = rel ORDER BY ic.relname LOOP
        INSERT INTO kaoping_deferred_indexes (table_name, name, is_constraint, definition)
            VALUES (tbl, r.name, false, r.def);
        EXECUTE format('DROP INDEX public.%I', r.name);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE FUNCTION kaoping_restore_indexes(tbl text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT name, is_constraint, definition FROM kaoping_deferred_indexes
             WHERE table_name = tbl ORDER BY is_constraint DESC, name LOOP
        IF r.is_constraint THEN
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s', tbl, r.name,
                           r.definition);
        ELSE
            EXECUTE r.definition;  -- CREATE [UNIQUE] INDEX ... ON public.tbl ..., as printed
        END IF;
        n := n + 1;
    END LOOP;
    DELETE FROM kaoping_deferred_indexes WHERE table_name = tbl;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION kaoping_defer_indexes(text), kaoping_restore_indexes(text) FROM PUBLIC;

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT ON kaoping_deferred_indexes TO %I', app);
    EXECUTE format('GRANT EXECUTE ON FUNCTION kaoping_defer_indexes(text), '
                   'kaoping_restore_indexes(text) TO %I', app);
END $$;
