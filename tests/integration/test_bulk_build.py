"""A read model built from zero without its indexes, indexed once at the head (projections/bulk.py).

On PostgreSQL the follower drops rm_units' indexes while units.v1 catches up from zero over a
long enough log and builds them in the page that reaches the head, or before a page with a
rename (which updates a row by its id). On SQLite it never does. Either way the rows are the
ones a follower with its indexes builds: that, the indexes themselves, the crash in the middle
and what the application role may and may not do with it are tested here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from domain.units import Unit, UnitKind, register_unit
from projections.follower import Follower, LoggedEvent, stopped, tracked_position
from projections.units import UnitsView
from service.db import Cursor
from service.migrate import migrate
from service.runtime import Services
from service.settings import Settings

PAGE = 7


def _register(services: Services, codes: Sequence[str]) -> None:
    # Odd unicode in names: the copy carries them as they are.
    services.store.save(*[register_unit(c, f"单位 {c} \u00e9\u0301 \U0001f3db", UnitKind.DEPARTMENT,
                                        "vertical", "t") for c in codes])


def _rename(services: Services, code: str, name: str) -> None:
    unit: Unit = services.store.repository.get(Unit.create_id(code))
    unit.rename(name, "test", "t")
    services.store.save(unit)


def _rows(services: Services) -> list[tuple[Any, ...]]:
    with services.db.read() as cur:
        cur.execute("SELECT unit_id, code, name, kind, category, version, position FROM rm_units "
                    "ORDER BY code")
        return [tuple(str(v) for v in r) for r in cur.fetchall()]


def _indexes(cur: Cursor) -> list[str]:
    """rm_units' indexes as the catalog prints them (PostgreSQL), or SQLite's."""
    if cur.engine == "postgres":
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'rm_units' "
                    "ORDER BY indexname")
    else:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                    "tbl_name = 'rm_units' ORDER BY name")
    return [str(r[0]) for r in cur.fetchall()]


def _deferred(cur: Cursor) -> list[str]:
    if cur.engine != "postgres":
        return []
    cur.execute("SELECT name FROM kaoping_deferred_indexes ORDER BY name")
    return [str(r[0]) for r in cur.fetchall()]


class Watched(UnitsView):
    """units.v1, noting for each page it applies how many indexes rm_units had then."""

    def __init__(self) -> None:
        self.pages: list[tuple[int, int, bool]] = []  # (first position, indexes, has a rename)

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        renames = any(e.topic == "kaoping/Unit.Renamed.v1" for e in events)
        self.pages.append((events[0].position, len(_indexes(cur)), renames))
        super().apply(cur, events)


def _built_with_indexes(services: Services) -> tuple[list[tuple[Any, ...]], list[str]]:
    """What units.v1 holds when followed as usual, and rm_units' indexes."""
    services.follower.catch_up()
    rows = _rows(services)
    with services.db.read() as cur:
        return rows, _indexes(cur)


def _rebuild(services: Services, *, bulk_min_events: int | None = 10) -> Watched:
    view = Watched()
    services.follower.reset(view)
    follower = Follower(services.db, services.store.mapper, [view], page_size=PAGE,
                        read_ahead=False, bulk_min_events=bulk_min_events)
    follower.catch_up()
    return view


def _one_page_loaded_without_indexes(
        services: Services) -> tuple[list[tuple[Any, ...]], list[str]]:
    """units.v1 as followed as usual and its indexes; then reset, and its first page loaded
    without its indexes by a follower that stops there (a worker killed, say)."""
    rows, indexes = _built_with_indexes(services)
    view = Watched()
    services.follower.reset(view)
    Follower(services.db, services.store.mapper, [view], page_size=PAGE, read_ahead=False,
             bulk_min_events=10).step(view)
    return rows, indexes


def test_built_from_zero_without_indexes_gives_the_same_rows_and_indexes(
        services: Services) -> None:
    _register(services, [f"B{i:03d}" for i in range(4 * PAGE)])  # a whole number of pages
    rows, indexes = _built_with_indexes(services)
    assert len(rows) == 4 * PAGE and len(indexes) == 2

    view = _rebuild(services)

    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes  # the same definitions, names included
        assert _deferred(cur) == []
        assert tracked_position(cur, view.name) == 4 * PAGE - 1
    during = [n for _, n, _ in view.pages]
    if services.settings.engine == "postgres":
        # Every page applied without them; they were built after the last full page, by the
        # step that found nothing more to read.
        assert during == [0, 0, 0, 0]
    else:
        assert during == [2, 2, 2, 2]  # SQLite: never deferred


def test_a_short_log_is_built_with_its_indexes(services: Services) -> None:
    _register(services, [f"S{i:03d}" for i in range(2 * PAGE)])
    rows, _ = _built_with_indexes(services)
    view = _rebuild(services, bulk_min_events=2 * PAGE + 1)  # more than the log holds
    assert _rows(services) == rows
    assert [n for _, n, _ in view.pages] == [2, 2]


def test_a_rename_has_the_indexes_built_before_it_is_applied(services: Services) -> None:
    _register(services, [f"R{i:03d}" for i in range(3 * PAGE)])
    _rename(services, "R004", "改名 ①")
    _register(services, [f"T{i:03d}" for i in range(2 * PAGE)])
    _rename(services, "T001", "改名 ②")
    rows, indexes = _built_with_indexes(services)
    assert {r[1]: r[2] for r in rows}["R004"] == "改名 ①"

    view = _rebuild(services)

    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == []
    first_rename = next(i for i, (_, _, r) in enumerate(view.pages) if r)
    counts = [n for _, n, _ in view.pages]
    if services.settings.engine == "postgres":
        # Deferred from the first page up to the rename's page, built before it, and never
        # dropped again (the read model is no longer at zero).
        assert first_rename > 0
        assert counts == [0] * first_rename + [2] * (len(counts) - first_rename)
    else:
        assert set(counts) == {2}


def test_a_build_stopped_in_the_middle_is_indexed_by_the_next_follower(
        services: Services) -> None:
    _register(services, [f"C{i:03d}" for i in range(5 * PAGE + 3)])
    rows, indexes = _built_with_indexes(services)
    view = Watched()
    services.follower.reset(view)
    # A worker killed after two pages: each page committed with its position (and the
    # deferral with the first), nothing else.
    first = Follower(services.db, services.store.mapper, [view], page_size=PAGE,
                     read_ahead=False, bulk_min_events=10)
    assert [first.step(view) for _ in range(2)] == [PAGE, PAGE]
    first.close()
    with services.db.read() as cur:
        postgres = cur.engine == "postgres"
        assert _deferred(cur) == (["rm_units_code_key", "rm_units_pkey"] if postgres else [])
        assert len(_indexes(cur)) == (0 if postgres else 2)
        assert tracked_position(cur, view.name) == 2 * PAGE - 1
    # The next worker (a restart) carries on from there and builds them at the head.
    Follower(services.db, services.store.mapper, [view], page_size=PAGE,
             bulk_min_events=10).catch_up()
    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == []


def test_the_indexes_come_back_through_the_services_follower(services: Services) -> None:
    """The running service's follower (its settings' threshold) finishes a deferral too."""
    _register(services, [f"D{i:03d}" for i in range(3 * PAGE)])
    rows, indexes = _one_page_loaded_without_indexes(services)
    services.follower.catch_up()
    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == []


def _refused(services: Services, sql: str, params: Sequence[object] = ()) -> str:
    with pytest.raises(psycopg.Error) as caught, services.db.write() as cur:
        cur.execute(sql, params)
    return str(caught.value)


def test_the_app_role_may_defer_only_an_allowed_empty_table(pg_services: Services) -> None:
    services = pg_services
    for table in ("kaoping_events", "kaoping_ledger", "rm_dirty_pools", "rm_nothing",
                  "rm_units; DROP TABLE kaoping_events", "RM_UNITS", None):
        assert "is not a table whose indexes may be deferred" in _refused(
            services, "SELECT kaoping_defer_indexes(%s)", (table,))
    with pytest.raises(psycopg.Error, match="only in a READ COMMITTED"), \
            services.db.write() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT kaoping_defer_indexes('rm_units')")
    _register(services, ["E001"])
    services.follower.catch_up()
    assert "rm_units is not empty" in _refused(
        services, "SELECT kaoping_defer_indexes('rm_units')")
    # The restore runs what the record holds as the owner: the application role can write
    # neither the record nor the list of allowed tables.
    assert "permission denied" in _refused(
        services, "INSERT INTO kaoping_deferred_indexes (table_name, name, definition) "
        "VALUES ('rm_units', 'x', 'DROP TABLE kaoping_events')")
    assert "permission denied" in _refused(
        services, "INSERT INTO kaoping_bulk_tables VALUES ('rm_dirty_pools')")
    with services.db.read() as cur:
        assert len(_indexes(cur)) == 2
        cur.execute("SELECT count(*) FROM kaoping_events")
        row = cur.fetchone()
        assert row is not None and int(row[0]) == 1
    # Deferring twice is refused; the first deferral stands and is restored whole.
    services.follower.reset(UnitsView())
    with services.db.write() as cur:
        cur.execute("SELECT kaoping_defer_indexes('rm_units')")
    assert "already deferred" in _refused(services, "SELECT kaoping_defer_indexes('rm_units')")
    with services.db.write() as cur:
        cur.execute("SELECT kaoping_restore_indexes('rm_units')")
        assert len(_indexes(cur)) == 2


def test_a_temporary_table_cannot_stand_in_for_the_record(pg_services: Services,
                                                          pg_settings: Settings) -> None:
    """The functions run as the owner with their own search_path: a temporary
    kaoping_deferred_indexes of the application role's, granted to the owner, is never read."""
    services = pg_services
    with services.db.write() as cur:
        cur.execute("CREATE TEMP TABLE kaoping_deferred_indexes (table_name text, name text, "
                    "constraint_name text, constraint_type text, definition text)")
        cur.execute("INSERT INTO pg_temp.kaoping_deferred_indexes VALUES ('rm_units', 'x', "
                    "NULL, NULL, 'CREATE TABLE public.pwned_by_app (x int)')")
        cur.execute(f'GRANT SELECT, DELETE ON pg_temp.kaoping_deferred_indexes TO '
                    f'"{pg_settings.db_owner_role}"')
        cur.execute("SET LOCAL search_path = pg_temp, public")
        cur.execute("SELECT kaoping_restore_indexes('rm_units')")
        row = cur.fetchone()
        assert row is not None and int(row[0]) == 0  # nothing recorded: nothing built
        cur.execute("SELECT to_regclass('public.pwned_by_app') IS NULL")
        row = cur.fetchone()
        assert row is not None and row[0] is True


def _keys(cur: Cursor) -> list[tuple[str, ...]]:
    cur.execute("SELECT conname, contype::text, pg_get_constraintdef(oid), condeferrable::text "
                "FROM pg_constraint WHERE conrelid = 'rm_units'::regclass ORDER BY conname")
    keys = [tuple(str(v) for v in r) for r in cur.fetchall()]
    cur.execute("SELECT attname, attnotnull::text FROM pg_attribute WHERE attrelid = "
                "'rm_units'::regclass AND attnum > 0 ORDER BY attnum")
    return keys + [tuple(str(v) for v in r) for r in cur.fetchall()]


def test_the_keys_come_back_as_keys(pg_services: Services) -> None:
    """Not merely unique indexes printed alike: the same constraints, NOT NULL kept."""
    services = pg_services
    _register(services, [f"K{i:03d}" for i in range(3 * PAGE)])
    services.follower.catch_up()
    with services.db.read() as cur:
        before = _keys(cur)
    assert [k[:2] for k in before[:2]] == [("rm_units_code_key", "u"), ("rm_units_pkey", "p")]
    view = _rebuild(services)
    assert [n for _, n, _ in view.pages] == [0, 0, 0]
    with services.db.read() as cur:
        assert _keys(cur) == before


class NotOptingIn(Watched):
    bulk_tables: tuple[str, ...] = ()


def test_a_read_model_that_no_longer_opts_in_gets_its_indexes_first(services: Services) -> None:
    _register(services, [f"O{i:03d}" for i in range(3 * PAGE)])
    rows, indexes = _one_page_loaded_without_indexes(services)
    plain = NotOptingIn()  # the next version of the code, say
    Follower(services.db, services.store.mapper, [plain], page_size=PAGE, read_ahead=False,
             bulk_min_events=10).catch_up()
    assert [n for _, n, _ in plain.pages] == [2, 2]
    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == []


def test_a_table_the_functions_refuse_is_loaded_with_its_indexes(
        pg_services: Services, pg_settings: Settings) -> None:
    """A foreign key pointing at rm_units (a round trip would lose it): the deferral is
    refused, and the read model is loaded as usual instead of stopping."""
    services = pg_services
    _register(services, [f"F{i:03d}" for i in range(3 * PAGE)])
    rows, indexes = _built_with_indexes(services)
    assert pg_settings.migrate_database_url is not None
    with psycopg.connect(pg_settings.migrate_database_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE rm_probe_fk (unit_id uuid REFERENCES rm_units (unit_id))")
    view = _rebuild(services)
    assert [n for _, n, _ in view.pages] == [2, 2, 2]
    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == []
        assert stopped(cur) == {}


def test_migrate_builds_deferred_indexes_first(pg_services: Services,
                                               pg_settings: Settings) -> None:
    services = pg_services
    _register(services, [f"M{i:03d}" for i in range(3 * PAGE)])
    rows, indexes = _one_page_loaded_without_indexes(services)
    with services.db.read() as cur:
        assert _indexes(cur) == []
    migrate(pg_settings)
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == []
    services.follower.catch_up()
    assert _rows(services) == rows


def test_a_build_that_waits_too_long_for_its_lock_is_recorded_and_retried(
        pg_services: Services, pg_settings: Settings) -> None:
    """A reader holding rm_units (a long report) past the lock timeout: the build gives up
    whole, the read model says why (for /ready) and sits out a pause; the next try builds
    them and clears the error."""
    services = pg_services
    _register(services, [f"L{i:03d}" for i in range(3 * PAGE)])
    rows, indexes = _one_page_loaded_without_indexes(services)
    with psycopg.connect(pg_settings.database_url) as reader:
        reader.execute("SELECT count(*) FROM rm_units").fetchone()  # holds ACCESS SHARE
        first = Follower(services.db, services.store.mapper, [UnitsView()], page_size=PAGE,
                         read_ahead=False, bulk_min_events=10)
        first.catch_up()
        with services.db.read() as cur:
            why = stopped(cur)
            assert list(why) == ["units.v1"] and "lock timeout" in why["units.v1"][1]
            assert tracked_position(cur, "units.v1") == 3 * PAGE - 1  # the rows are all in
            assert _indexes(cur) == [] and len(_deferred(cur)) == 2  # nothing half-built
        reader.rollback()
    Follower(services.db, services.store.mapper, [UnitsView()], page_size=PAGE,
             read_ahead=False, bulk_min_events=10).catch_up()  # a restart, say
    assert _rows(services) == rows
    with services.db.read() as cur:
        assert _indexes(cur) == indexes
        assert _deferred(cur) == [] and stopped(cur) == {}
