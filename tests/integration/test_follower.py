"""The projection follower: pages of events per transaction, position kept with the rows."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

import pytest

from domain.units import UnitKind, register_unit
from projections.event_counts import EventCounts, read_counts
from projections.follower import ConcurrentFollowerError, Follower, head_position, tracked_position
from projections.units import UnitsView, list_units
from service.db import _COPY_TYPES
from service.runtime import Services


def _write(services: Services, n: int, start: int = 0) -> Counter[str]:
    topics: Counter[str] = Counter()
    for i in range(start, start + n):
        unit = register_unit(f"U{i:04d}", f"Unit {i}", UnitKind.DEPARTMENT, "vertical", "t")
        services.store.save(unit)
        topics["kaoping/Unit.Registered.v1"] += 1
        if i % 3 == 0:
            unit.rename(f"Renamed {i}", "test", "t")
            services.store.save(unit)
            topics["kaoping/Unit.Renamed.v1"] += 1
    return topics


def _counts(services: Services) -> dict[str, int]:
    with services.db.read() as cur:
        return read_counts(cur)


def test_counts_match_the_log_and_pages_are_applied_whole(services: Services) -> None:
    expected = _write(services, 25)
    total = sum(expected.values())
    follower = Follower(services.db, services.store.mapper, [EventCounts()], page_size=7)
    projection = follower.projections[0]
    applied = [follower.step(projection) for _ in range(6)]
    assert total == 34  # 25 registrations, 9 renames
    assert applied == [7, 7, 7, 7, 6, 0]
    assert _counts(services) == dict(expected)
    with services.db.read() as cur:
        assert tracked_position(cur, projection.name) == total - 1


def test_catch_up_resumes_where_it_stopped_without_double_counting(services: Services) -> None:
    first = _write(services, 10)
    services.follower.catch_up()
    second = _write(services, 5, start=10)
    # A new follower (a restarted worker) continues from the stored position.
    restarted = Follower(services.db, services.store.mapper, services.projections, page_size=3)
    restarted.catch_up()
    assert _counts(services) == dict(first + second)
    with services.db.read() as cur:
        names = [u.name for u in list_units(cur, after_code=None, limit=100)]
    assert len(names) == 15
    assert names[0] == "Renamed 0"


def test_a_failing_projection_keeps_its_position(services: Services) -> None:
    class Broken(EventCounts):
        name = "broken.v1"

        def apply(self, cur: object, events: object) -> None:
            super().apply(cur, events)  # type: ignore[arg-type]
            msg = "projection bug"
            raise RuntimeError(msg)

    _write(services, 3)
    follower = Follower(services.db, services.store.mapper, [Broken()])
    with pytest.raises(RuntimeError):
        follower.catch_up()
    with services.db.read() as cur:
        assert tracked_position(cur, "broken.v1") == -1
        assert read_counts(cur) == {}  # its rows rolled back with its position


def test_a_second_follower_moving_the_position_is_detected(services: Services) -> None:
    _write(services, 4)

    class Racing(EventCounts):
        def apply(self, cur: object, events: object) -> None:
            super().apply(cur, events)  # type: ignore[arg-type]
            cur.execute(  # type: ignore[attr-defined]
                "UPDATE kaoping_projection_tracking SET position = 99 WHERE name = %s",
                (self.name,))

    follower = Follower(services.db, services.store.mapper, [Racing()])
    with pytest.raises(ConcurrentFollowerError):
        follower.catch_up()
    assert _counts(services) == {}


def test_reset_rebuilds_the_same_rows(services: Services) -> None:
    _write(services, 12)
    services.follower.catch_up()
    before = _counts(services)
    for projection in services.projections:
        services.follower.reset(projection)
    assert _counts(services) == {}
    services.follower.catch_up()
    assert _counts(services) == before


class Recording(EventCounts):
    """Counts, and remembers the positions of every page it was given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pages: list[list[int]] = []

    def apply(self, cur: object, events: object) -> None:
        self.pages.append([e.position for e in events])  # type: ignore[attr-defined]


def test_one_read_pass_serves_projections_at_different_positions(services: Services) -> None:
    # 34 events. One projection is at the head, one is 10 behind, one starts from zero: each
    # must get exactly the events after its own position, once, in log order.
    _write(services, 25)
    ahead, behind, fresh = Recording("ahead.v1"), Recording("behind.v1"), Recording("fresh.v1")
    setup = Follower(services.db, services.store.mapper, [ahead, behind, fresh], page_size=5)
    setup.catch_up(stops={"ahead.v1": 33, "behind.v1": 23, "fresh.v1": -1})
    assert [p for page in ahead.pages for p in page] == list(range(34))
    assert [p for page in behind.pages for p in page] == list(range(24))
    assert fresh.pages == []
    ahead.pages.clear()
    behind.pages.clear()
    _write(services, 2, start=100)  # 36 events now
    follower = Follower(services.db, services.store.mapper, [ahead, behind, fresh], page_size=5)
    applied = follower.catch_up()
    assert [p for page in ahead.pages for p in page] == [34, 35]
    assert [p for page in behind.pages for p in page] == list(range(24, 36))
    assert [p for page in fresh.pages for p in page] == list(range(36))
    assert applied == 2 + 12 + 36
    assert all(len(page) <= 5 for page in fresh.pages)
    with services.db.read() as cur:
        assert {tracked_position(cur, n) for n in ("ahead.v1", "behind.v1", "fresh.v1")} == {35}


@pytest.mark.parametrize("read_ahead", [True, False])
def test_read_ahead_never_skips_or_repeats_an_event(services: Services, read_ahead: bool) -> None:
    # Full pages are read ahead on another connection; the last, short page is read inside
    # the applying transaction; events written between two catch-ups are picked up after.
    _write(services, 30)
    seen = Recording("seen.v1")
    follower = Follower(services.db, services.store.mapper, [seen], page_size=4,
                        read_ahead=read_ahead)
    try:
        follower.catch_up()
        _write(services, 3, start=200)
        follower.catch_up()
    finally:
        follower.close()
    positions = [p for page in seen.pages for p in page]
    assert positions == list(range(30 + 10 + 3 + 1))  # 30 + 10 renames, then 3 + 1 rename
    assert all(len(page) <= 4 for page in seen.pages)


def test_a_failing_projection_does_not_stop_the_others(services: Services) -> None:
    class Poisoned(EventCounts):
        name = "poisoned.v1"
        tables: tuple[str, ...] = ()

        def apply(self, cur: object, events: object) -> None:
            msg = "cannot hold this event"
            raise ValueError(msg)

    expected = _write(services, 4)
    counts = EventCounts()
    follower = Follower(services.db, services.store.mapper, [Poisoned(), counts])
    with pytest.raises(ValueError, match="cannot hold this event"):
        follower.catch_up()
    assert _counts(services) == dict(expected)  # the healthy one went on in the same pass
    more = _write(services, 2, start=50)
    assert follower.catch_up() == sum(more.values())  # the failed one sits out its pause
    assert _counts(services) == dict(expected + more)
    with services.db.read() as cur:
        assert tracked_position(cur, "poisoned.v1") == -1
        assert tracked_position(cur, counts.name) == sum((expected + more).values()) - 1


class Settling(EventCounts):
    """Applies nothing; remembers where it was asked to settle."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.settled: list[int] = []

    def apply(self, cur: object, events: object) -> None:
        pass

    def settle(self, cur: object, up_to: int) -> None:
        self.settled.append(up_to)


@pytest.mark.parametrize(("units", "stop"), [(10, 9), (12, 4), (12, 11), (12, 6)])
def test_a_stop_settles_once_at_the_stop_even_on_a_page_boundary(
        services: Services, units: int, stop: int) -> None:
    # Pages of 5: stops at 4 and 9 end a full page exactly (the case a rebuild check with a
    # log of a multiple of the page size hits); 6 and 11 fall inside a page.
    for i in range(units):
        services.store.save(register_unit(f"S{i:04d}", f"Unit {i}", UnitKind.DEPARTMENT,
                                          "vertical", "t"))
    settling = Settling("settling.v1")
    follower = Follower(services.db, services.store.mapper, [settling], page_size=5,
                        read_ahead=False)
    follower.catch_up(stops={"settling.v1": stop})
    assert settling.settled == [stop]


def test_a_position_moved_under_one_of_several_read_models_is_detected(
        services: Services) -> None:
    """A page's positions move in one statement; if one of them was moved by someone else,
    the page is refused, then retried read model by read model: the honest one is applied,
    the raced one keeps its position and rows."""
    _write(services, 4)

    class Racing(EventCounts):
        def apply(self, cur: object, events: object) -> None:
            super().apply(cur, events)  # type: ignore[arg-type]
            cur.execute(  # type: ignore[attr-defined]
                "UPDATE kaoping_projection_tracking SET position = 99 WHERE name = %s",
                (self.name,))

    follower = Follower(services.db, services.store.mapper, [Racing(), UnitsView()])
    with pytest.raises(ConcurrentFollowerError):
        follower.catch_up()
    with services.db.read() as cur:
        assert tracked_position(cur, "event_counts.v1") == -1
        assert read_counts(cur) == {}
        assert tracked_position(cur, "units.v1") == head_position(cur)
        assert len(list_units(cur, after_code=None, limit=100)) == 4


@pytest.mark.parametrize("backend", ["postgres"])  # COPY is PostgreSQL's (SQLite: executemany)
def test_bulk_rows_of_a_type_psycopg_cannot_name_go_in_as_text(services: Services) -> None:
    """insert_rows sends a binary COPY when psycopg knows every column's type by name, and
    falls back to a text COPY otherwise (here a domain): the same rows either way."""
    with services.db.write() as cur:
        cur.execute("CREATE DOMAIN pg_temp.grade_code AS text CHECK (VALUE <> '')")
        cur.execute("CREATE TEMP TABLE bulk_known (id uuid, code text, n bigint)")
        cur.execute("CREATE TEMP TABLE bulk_domain (id uuid, code pg_temp.grade_code, n bigint)")
        rows = [(uuid4(), f"c{i}", i) for i in range(5)]
        for table in ("bulk_known", "bulk_domain"):
            cur.insert_rows(table, ("id", "code", "n"), iter(rows))
            cur.execute(f"SELECT id, code, n FROM {table} ORDER BY n")
            assert [tuple(r) for r in cur.fetchall()] == rows
    assert _COPY_TYPES[("bulk_known", ("id", "code", "n"))] == ["uuid", "text", "bigint"]
    assert _COPY_TYPES[("bulk_domain", ("id", "code", "n"))] is None  # sent as text
