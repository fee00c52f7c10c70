"""Refused reads of restricted material are counted per reader, material, rule and window, and
recorded as one event per window: the log no longer grows at a refused caller's pace, and
every refusal is in exactly one recorded count (both stores)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from api import create_app
from domain.cases import RefusedReads
from domain.errors import InvalidInput
from projections.follower import head_position
from service.clock import FixedClock
from service.principals import Identity, IdentityKind, Principal, Role
from service.refusals import GRACE
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import People, setup_cycle

Client = TestClient[Any]
WINDOW = 60


@pytest.fixture
def tight(settings: Settings, clock: FixedClock) -> Iterator[tuple[Client, Services]]:
    s = settings.with_overrides(refused_read_window_seconds=WINDOW, refused_read_scopes=2)
    svc = Services(s, clock=clock)
    try:
        with TestClient(app=create_app(s, services=svc)) as c:
            yield c, svc
    finally:
        svc.close()


def head(services: Services) -> int:
    with services.db.read() as cur:
        return head_position(cur)


def counted(client: Client, services: Services) -> list[dict[str, Any]]:
    services.follower.catch_up()
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")
    resp = client.get("/api/v1/audit/access?limit=1000", headers=supervisor)
    assert resp.status_code == 200, resp.text
    return [e for e in resp.json() if not e["allowed"]]


def test_a_refused_reader_in_a_loop_adds_one_counted_record_per_window(
        tight: tuple[Client, Services], clock: FixedClock) -> None:
    client, services = tight
    setup_cycle(client, services, People(services))  # reports name subjects of a cycle
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    cases = [client.post("/api/v1/cases", json={
        "channel": "hotline", "year": 2025, "subjects": [f"team:E{i + 1}"], "summary": "反映问题"},
        headers=intake).json()["case_id"] for i in range(3)]
    outsider = bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "inv-9")
    start = head(services)
    t0 = clock.now().isoformat(timespec="microseconds")
    t1 = (clock.now() + timedelta(seconds=WINDOW)).isoformat(timespec="microseconds")

    first = client.get(f"/api/v1/cases/{cases[0]}", headers=outsider)
    assert first.status_code == 403
    assert first.json()["rule"] == "case.readers"
    for _ in range(36):
        assert client.get(f"/api/v1/cases/{cases[0]}", headers=outsider).status_code == 403
    for case in cases[1:]:  # past the cap of 2 distinct per window: counted under "*"
        assert client.get(f"/api/v1/cases/{case}", headers=outsider).status_code == 403
    assert head(services) == start  # 39 refusals, not one event yet
    clock.advance(timedelta(seconds=WINDOW))
    for _ in range(5):  # the next window
        assert client.get(f"/api/v1/cases/{cases[0]}", headers=outsider).status_code == 403
    clock.advance(timedelta(seconds=WINDOW + GRACE))
    assert services.refusals.flush() == 4
    assert services.refusals.flush() == 0  # recorded once
    assert head(services) == start + 4

    rows = counted(client, services)
    assert {(e["reader"], e["what"], e["rule"]) for e in rows} == {
        ("person:staff:inv-9", "case", "case.readers")}
    summary = sorted((e["at"], e["case"] or "*", e["count"], e["last"]) for e in rows)
    assert summary == sorted([(t0, cases[0], 37, t0), (t0, cases[1], 1, t0), (t0, "*", 1, t0),
                              (t1, cases[0], 5, t1)])
    assert sum(e["count"] for e in rows) == 37 + 2 + 5

    # The events carry the window and the first and last refusal.
    with services.db.read() as cur:
        cur.execute("SELECT e.state FROM kaoping_events e WHERE e.topic = %s",
                    (RefusedReads.Counted.TOPIC,))
        assert len(cur.fetchall()) == 4


def test_a_refusal_for_a_window_already_recorded_is_counted_in_the_next(
        tight: tuple[Client, Services], clock: FixedClock) -> None:
    client, services = tight
    reader = Principal(id="person:staff:inv-7", name="inv-7", role=Role.INVESTIGATOR,
                       acts_as=Identity(IdentityKind.STAFF, "inv-7"), via="token")
    for _ in range(3):
        services.cases.record(reader, "evidence", 2025, "team:E1", None, False,
                              "investigator.case-scope")
    clock.advance(timedelta(seconds=WINDOW + GRACE))
    assert services.refusals.flush() == 1
    # A slow request (or another process's clock) still in the recorded window:
    clock.advance(timedelta(seconds=-(WINDOW + GRACE)))
    services.cases.record(reader, "evidence", 2025, "team:E1", None, False,
                          "investigator.case-scope")
    clock.advance(timedelta(seconds=2 * WINDOW + GRACE))
    assert services.refusals.flush() == 1
    assert [e["count"] for e in counted(client, services)] == [3, 1]


def test_concurrent_refusals_and_flushes_lose_nothing(tight: tuple[Client, Services],
                                                      clock: FixedClock) -> None:
    client, services = tight
    readers = [Principal(id=f"person:staff:inv-{i}", name=f"inv-{i}", role=Role.INVESTIGATOR,
                         acts_as=Identity(IdentityKind.STAFF, f"inv-{i}"), via="token")
               for i in range(4)]
    for r in readers:  # an earlier window, recorded while the next one fills up
        services.cases.record(r, "explain-notes", 2025, "team:E1", None, False,
                              "investigator.case-scope")
    clock.advance(timedelta(seconds=WINDOW + GRACE))
    errors: list[BaseException] = []

    def refuse(r: Principal) -> None:
        try:
            for _ in range(25):
                services.cases.record(r, "explain-notes", 2025, "team:E1", None, False,
                                      "investigator.case-scope")
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=refuse, args=(r,)) for r in readers]
    flusher = threading.Thread(target=lambda: [services.refusals.flush() for _ in range(5)])
    for t in [*threads, flusher]:
        t.start()
    for t in [*threads, flusher]:
        t.join(timeout=120)
    assert errors == []
    clock.advance(timedelta(seconds=WINDOW + GRACE))
    services.refusals.flush()
    rows = counted(client, services)
    per_reader = {r.id: sum(e["count"] for e in rows if e["reader"] == r.id) for r in readers}
    assert per_reader == {r.id: 26 for r in readers}
    assert len(rows) == 8  # one record per reader and window


def test_a_counted_record_counts_at_least_one_refusal() -> None:
    with pytest.raises(InvalidInput) as refused:
        RefusedReads(reader="person:staff:x", role="investigator", what="case",
                     rule="case.readers", year=None, subject=None, case=None, count=0,
                     window_start="2026-03-01T09:00:00+00:00",
                     window_end="2026-03-01T09:01:00+00:00", first="", last="")
    assert refused.value.rule == "refused-reads.count"
