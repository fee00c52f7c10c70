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


def test_the_public_board_shows_only_what_the_publication_policy_makes_public(
        client: Client, services: Services) -> None:
    """A review found cadres' 民主测评 scores on the anonymous board. The public reads a
    subject's tally only once its cycle is published and only for the kinds the policy makes
    public (teams by default); evaluators read every tally."""
    from tests.e2e.test_ballots import DEFINITION  # noqa: PLC0415
    from tests.e2e.test_corrections import published_cycle  # noqa: PLC0415

    who = published_cycle(client, services)
    code, url = "mzcp-2025-mixed", "/api/v1/sessions/mzcp-2025-mixed"
    subjects = ["team:E1", "cadre:P1"]
    definition = {**DEFINITION, "code": code, "subjects": subjects,
                  "rules": {**DEFINITION["rules"], "max_top": 2}}
    assert client.post("/api/v1/sessions", json=definition, headers=who.org).status_code == 201
    assert client.post(f"{url}/freeze", json={}, headers=who.org).status_code == 201
    codes = [c for cls, n in (("cadres", 6), ("public", 4))  # above quorum in both classes
             for c in client.post(f"{url}/credentials", json={"rater_class": cls, "count": n},
                                  headers=who.org).json()["codes"]]
    assert client.post(f"{url}/open", json={}, headers=who.org).status_code == 201
    answers = [{"team:E1": {"de": "good", "ji": "fair"}, "cadre:P1": {"de": "good", "ji": "good"}},
               {"team:E1": {"de": "fair", "ji": "fair"}, "cadre:P1": {"de": "poor", "ji": "good"}}]
    for i, credential in enumerate(codes):
        cast = client.post(f"{url}/ballots",
                           json={"credential": credential, "answers": answers[i % 2]})
        assert cast.status_code == 201, cast.text
    assert client.post(f"{url}/close", json={}, headers=who.org).status_code == 201
    public = {t["subject"]: t for t in client.get(f"{url}/board").json()["result"]["subjects"]}
    assert public["team:E1"]["score"] is not None and public["team:E1"]["counts"]
    assert public["cadre:P1"]["score"] is None and public["cadre:P1"]["counts"] is None
    assert public["cadre:P1"]["withheld_reason"] == "not-public"
    full = client.get(f"{url}/board", headers=who.org).json()["result"]["subjects"]
    assert {t["subject"]: t["score"] is not None for t in full} == {
        "team:E1": True, "cadre:P1": True}
    # A cadre signed in reads the public board too, not its colleagues' tallies.
    mine = client.get(f"{url}/board", headers=who.p1).json()["result"]["subjects"]
    assert next(t for t in mine if t["subject"] == "cadre:P1")["score"] is None
