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
-- this and nothing more: only on the tables listed in kaoping_bulk_tables (by a migration;
-- the application role cannot add to it), only on an empty one (checked under an exclusive
-- lock, in READ COMMITTED, so a row committed meanwhile is seen), only on one whose indexes a
-- round trip keeps whole (no foreign key pointing at it, no exclusion or deferrable key, no
-- index options, tablespace, comment, CLUSTER or replica-identity mark), recording each index
-- (as PostgreSQL's catalog prints it) before dropping it, so a crash in the middle loses
-- nothing: the next follower, or the next `kaoping migrate`, finds the record and builds them.
-- The restore builds each index first (a SHARE lock: reads go on) and only then makes the
-- keys of them (ALTER TABLE ... USING INDEX: a moment's exclusive lock). Both pin their
-- search_path, so a temporary table cannot stand in for the record. The record is state, not
-- history (like the rate buckets): the restore deletes its rows.
CREATE TABLE kaoping_bulk_tables (table_name text PRIMARY KEY);
INSERT INTO kaoping_bulk_tables VALUES ('rm_units');

CREATE TABLE kaoping_deferred_indexes (
    table_name text NOT NULL,
    name text NOT NULL,              -- the index
    constraint_name text,            -- the key it backs, if any
    constraint_type text CHECK (constraint_type IN ('PRIMARY KEY', 'UNIQUE')),
    definition text NOT NULL,        -- CREATE [UNIQUE] INDEX ..., as pg_get_indexdef prints it
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
    IF NOT EXISTS (SELECT 1 FROM public.kaoping_bulk_tables WHERE table_name = tbl) THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: % is not a table whose indexes may be deferred',
            tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: only in a READ COMMITTED transaction'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    rel := to_regclass(format('public.%I', tbl));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: no table %', tbl USING ERRCODE = 'undefined_table';
    END IF;
    IF EXISTS (SELECT 1 FROM public.kaoping_deferred_indexes WHERE table_name = tbl) THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: the indexes of % are already deferred', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', tbl);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.%I)', tbl) INTO occupied;
    IF occupied THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: % is not empty', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint c WHERE (c.confrelid = rel AND c.contype = 'f')
               OR (c.conrelid = rel AND (c.contype = 'x' OR (c.contype IN ('p', 'u') AND
                   (c.condeferrable OR obj_description(c.oid, 'pg_constraint') IS NOT NULL)))))
       OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                  WHERE i.indrelid = rel AND (i.indisclustered OR i.indisreplident
                      OR ic.reloptions IS NOT NULL OR ic.reltablespace <> 0
                      OR obj_description(ic.oid, 'pg_class') IS NOT NULL)) THEN
        RAISE EXCEPTION 'kaoping_defer_indexes: % has keys or index options a rebuild would '
            'not keep whole', tbl USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOR r IN SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def,
                    c.conname, c.contype
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = rel
                 AND c.contype IN ('p', 'u')
             WHERE i.indrelid = rel ORDER BY ic.relname LOOP
        INSERT INTO public.kaoping_deferred_indexes (table_name, name, constraint_name,
                                                     constraint_type, definition)
            VALUES (tbl, r.name, r.conname, CASE r.contype WHEN 'p' THEN 'PRIMARY KEY'
                                                           WHEN 'u' THEN 'UNIQUE' END, r.def);
        IF r.conname IS NOT NULL THEN
            EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', tbl, r.conname);
        ELSE
            EXECUTE format('DROP INDEX public.%I', r.name);
        END IF;
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
    FOR r IN SELECT name, definition FROM public.kaoping_deferred_indexes
             WHERE table_name = tbl ORDER BY name LOOP
        EXECUTE r.definition;  -- CREATE [UNIQUE] INDEX name ON public.tbl ..., as printed
        n := n + 1;
    END LOOP;
    FOR r IN SELECT name, constraint_name, constraint_type FROM public.kaoping_deferred_indexes
             WHERE table_name = tbl AND constraint_name IS NOT NULL
             ORDER BY constraint_type, name LOOP
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s USING INDEX %I', tbl,
                       r.constraint_name, r.constraint_type, r.name);
    END LOOP;
    DELETE FROM public.kaoping_deferred_indexes WHERE table_name = tbl;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION kaoping_defer_indexes(text), kaoping_restore_indexes(text) FROM PUBLIC;

DO $$
DECLARE app text := current_setting('kaoping.app_role');
BEGIN
    EXECUTE format('GRANT SELECT ON kaoping_deferred_indexes, kaoping_bulk_tables TO %I', app);
    EXECUTE format('GRANT EXECUTE ON FUNCTION kaoping_defer_indexes(text), '
                   'kaoping_restore_indexes(text) TO %I', app);
END $$;
