"""The projection follower: pages of events per transaction, position kept with the rows."""

from __future__ import annotations

from collections import Counter

import pytest

from domain.units import UnitKind, register_unit
from projections.event_counts import EventCounts, read_counts
from projections.follower import ConcurrentFollowerError, Follower, tracked_position
from projections.units import list_units
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
