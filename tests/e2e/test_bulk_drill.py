"""Drill: the projection worker killed (SIGKILL) while it loads a read model without its
indexes (projections/bulk.py), then started again: the load carries on from the last page it
committed and the indexes come back, the same as before, at the head. Real processes
(``kaoping project``), real PostgreSQL."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

from domain.units import UnitKind, register_unit
from projections.follower import head_position, tracked_position
from service.clock import FixedClock
from service.runtime import Services
from service.settings import Settings
from tests.e2e.live_server import process, wait_until
from tests.e2e.test_several_processes import _env

UNITS = 8000
NAME = "第{}局 \u200d\U0001f3db\ufe0f"  # odd unicode in names, as a city's might have


def _state(services: Services) -> tuple[int, int, list[str], list[str]]:
    """(units.v1's position, the head, rm_units' indexes, deferred index names)."""
    with services.db.read() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'rm_units' "
                    "ORDER BY indexname")
        indexes = [str(r[0]) for r in cur.fetchall()]
        cur.execute("SELECT name FROM kaoping_deferred_indexes ORDER BY name")
        deferred = [str(r[0]) for r in cur.fetchall()]
        return tracked_position(cur, "units.v1"), head_position(cur), indexes, deferred


def test_drill_kill_9_mid_bulk_load(pg_settings: Settings, tmp_path: Path) -> None:
    local = Services(pg_settings, clock=FixedClock(datetime.now(UTC)))
    try:
        original = _state(local)[2]
        assert len(original) == 2
        codes = [f"K{i:05d}" for i in range(UNITS)]
        for i in range(0, UNITS, 500):
            local.store.save(*[register_unit(c, NAME.format(c), UnitKind.DEPARTMENT, "vertical",
                                             "t") for c in codes[i:i + 500]])
        # One event per page: the load takes long enough to be killed in the middle.
        env = _env(pg_settings, tmp_path) | {"KAOPING_PROJECTION_BULK_MIN_EVENTS": "100",
                                             "KAOPING_PROJECTION_PAGE_SIZE": "1"}
        with process(["project"], env, tmp_path, tmp_path / "project-1.log") as worker:
            def mid_load() -> bool:
                at, head, indexes, deferred = _state(local)
                return bool(deferred) and not indexes and 100 < at < head
            wait_until("the load to be under way without indexes", mid_load)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=15)
        at, head, indexes, deferred = _state(local)
        assert 100 < at < head, "killed after the load had finished: the drill proves nothing"
        assert indexes == [] and deferred == ["rm_units_code_key", "rm_units_pkey"]

        with process(["project"], env | {"KAOPING_PROJECTION_PAGE_SIZE": "500"}, tmp_path,
                     tmp_path / "project-2.log"):
            wait_until("the read model to reach the head",
                       lambda: _state(local)[0] == _state(local)[1])
            wait_until("its indexes to be built", lambda: bool(_state(local)[2]))
        at, head, indexes, deferred = _state(local)
        assert (at, indexes, deferred) == (head, original, [])
        with local.db.read() as cur:
            cur.execute("SELECT code, name, version FROM rm_units ORDER BY code")
            rows = cur.fetchall()
        assert [str(r[0]) for r in rows] == codes  # each once: no page applied twice
        assert {str(r[1]) for r in rows} == {NAME.format(c) for c in codes}
        assert {int(r[2]) for r in rows} == {1}
        log = (tmp_path / "project-2.log").read_text()
        assert "projection.bulk.indexed" in log and '"projection.bulk"' not in log
    finally:
        local.close()
