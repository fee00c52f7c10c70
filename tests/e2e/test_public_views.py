"""Public session reads (the session, its board, its ballot page) come from views built once
per version of the session: correct after each event that changes them, on both stores, in the
process that wrote and in another one; anonymous callers are throttled per client address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient

from api import create_app
from domain.ballots import credential_hash
from service.ballots import REFRESH
from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer
from tests.e2e.test_ballots import DEFINITION, S, _answers, ok, refused

Client = TestClient[Any]


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def other_process(settings: Settings, clock: FixedClock) -> Iterator[tuple[Client, Monotonic]]:
    """A second API process on the same store, with its own caches and its own time."""
    svc = Services(settings, clock=clock)
    tick = Monotonic()
    svc.sessions.monotonic = tick
    try:
        with TestClient(app=create_app(settings, services=svc)) as c:
            yield c, tick
    finally:
        svc.close()


def views(client: Client) -> tuple[dict[str, Any], int, str]:
    session = ok(client.get(f"/api/v1/sessions/{S}"), 200)
    board = client.get(f"/api/v1/sessions/{S}/board")
    page = client.get(f"/vote/{S}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    return session, board.status_code, page.text


def test_views_follow_every_event_of_the_session(client: Client, services: Services,
                                                 settings: Settings, clock: FixedClock) -> None:
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    assert refused(client.get(f"/api/v1/sessions/{S}"), 404, "session.exists")
    ok(client.post("/api/v1/sessions", json=DEFINITION, headers=org))
    with other_process(settings, clock) as (other, tick):
        seen: list[tuple[str, int, dict[str, int], int]] = []

        def step(expect_state: str, expect_issued: dict[str, int], board: int) -> None:
            here, board_status, page = views(client)
            assert (here["state"], here["issued"], board_status) == (
                expect_state, expect_issued, board)
            assert ("This session is not accepting ballots." in page) == (
                expect_state != "open")
            tick.now += REFRESH  # the other process looks again, and agrees
            assert views(other)[:2] == (here, board_status)
            seen.append((here["state"], here["version"], here["issued"], board_status))

        step("defined", {}, 409)
        ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=org))
        step("frozen", {}, 409)
        fingerprint = ok(client.get(f"/api/v1/sessions/{S}"), 200)["fingerprint"]
        assert fingerprint
        codes = ok(client.post(f"/api/v1/sessions/{S}/credentials",
                               json={"rater_class": "cadres", "count": 8}, headers=org))["codes"]
        codes += ok(client.post(f"/api/v1/sessions/{S}/credentials",
                                json={"rater_class": "public", "count": 6},
                                headers=org))["codes"]
        step("frozen", {"cadres": 8, "public": 6}, 409)
        ok(client.post(f"/api/v1/sessions/{S}/credentials/revocations", json={
            "credential_hash": credential_hash(S, codes[-1]), "reason": "凭条遗失"},
            headers=org))
        step("frozen", {"cadres": 8, "public": 6}, 409)
        ok(client.post(f"/api/v1/sessions/{S}/open", json={}, headers=org))
        step("open", {"cadres": 8, "public": 6}, 409)
        before = ok(client.get(f"/api/v1/sessions/{S}"), 200)
        for code in codes[:5] + codes[8:11]:  # ballots are streams of their own: no view changes
            ok(client.post(f"/api/v1/sessions/{S}/ballots", json={
                "credential": code, "answers": _answers(("good", "fair"), ("good", "good"))}))
        assert ok(client.get(f"/api/v1/sessions/{S}"), 200) == before
        ok(client.post(f"/api/v1/sessions/{S}/close", json={}, headers=org))
        step("closed", {"cadres": 8, "public": 6}, 200)
        board = ok(client.get(f"/api/v1/sessions/{S}/board"), 200)
        assert len(board["trackers"]) == 8
        assert board["trackers"] == sorted(board["trackers"])
        assert board["fingerprint"] == fingerprint
        tick.now += REFRESH
        assert ok(other.get(f"/api/v1/sessions/{S}/board"), 200) == board
        ok(client.post(f"/api/v1/sessions/{S}/void", json={
            "reason": "发现拉票", "authority": "市委组织部〔2025〕9号"}, headers=org))
        step("voided", {"cadres": 8, "public": 6}, 200)
        assert ok(client.get(f"/api/v1/sessions/{S}/board"), 200)["state"] == "voided"
        versions = [v for _, v, _, _ in seen]
        assert versions == sorted(set(versions))  # every event gave a new view


def test_a_view_is_built_once_per_version(client: Client, services: Services) -> None:
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    ok(client.post("/api/v1/sessions", json=DEFINITION, headers=org))
    builds: list[int] = []

    def build(s: Any) -> tuple[int, str]:
        builds.append(s.version)
        return s.version, s.state.value

    sessions = services.sessions
    first = sessions.public_view(S, "probe", build)
    assert sessions.public_view(S, "probe", build) is first
    assert builds == [1]
    ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=org))
    assert builds == [1, 2]  # rebuilt at the freeze, by the writer, before anyone asks
    assert sessions.cached_view(S, "probe", build) == (2, "frozen")
    assert builds == [1, 2]


def test_anonymous_callers_are_throttled_per_client(settings: Settings,
                                                   clock: FixedClock) -> None:
    tight = settings.with_overrides(anonymous_burst=5, anonymous_rate_per_second=0.001,
                                    anonymous_throttle_delay_seconds=0.0)
    svc = Services(tight, clock=clock)
    try:
        with TestClient(app=create_app(tight, services=svc)) as c:
            org = bearer(svc, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
            ok(c.post("/api/v1/sessions", json=DEFINITION, headers=org))
            # The test client's peer is not a trusted proxy: rotating X-Forwarded-For is
            # ignored, and every request spends the same client's tokens.
            statuses = [c.get(f"/api/v1/sessions/{S}",
                              headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                        for i in range(8)]
            assert statuses == [200] * 5 + [429] * 3
            body = refused(c.get(f"/vote/{S}"), 429, "rate-limit.anonymous")
            assert body["field"] == "client"
            assert int(c.get(f"/api/v1/sessions/{S}/board").headers["Retry-After"]) >= 1
            # Callers with credentials have their own (per principal) budget; /health is free.
            assert ok(c.get(f"/api/v1/sessions/{S}", headers=org), 200)["state"] == "defined"
            assert ok(c.get("/health"), 200) == {"status": "ok"}
    finally:
        svc.close()
