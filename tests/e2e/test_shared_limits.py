"""One request budget for every API process on PostgreSQL (service/throttle.py): two apps on
one database, each with its own Services (as two processes have), draw on the same buckets."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from litestar.testing import TestClient

from api import create_app
from api.ratelimit import FailureLimiter
from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.throttle import (
    SharedLimiter,
    SharedRefusals,
    forget_full_buckets,
    forget_old_refusals,
    pseudonym_key,
)
from tests.conftest import bearer

if TYPE_CHECKING:
    from pathlib import Path

    from service.settings import Settings


def _two_processes(settings: Settings) -> tuple[Services, Services]:
    clock = FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    return Services(settings, clock=clock), Services(settings, clock=clock)


def test_a_principal_that_spends_its_burst_on_one_process_is_throttled_on_another(
        pg_settings: Settings, tmp_path: Path) -> None:
    tight = pg_settings.with_overrides(rate_limit_burst=3, rate_limit_per_second=0.01,
                                       console_key_path=str(tmp_path / "console.key"))
    assert tight.shared_rate_limit  # the default on PostgreSQL
    one, two = _two_processes(tight)
    try:
        busy = bearer(one, Role.ORGANIZER, IdentityKind.STAFF, "busy")
        calm = bearer(one, Role.ORGANIZER, IdentityKind.STAFF, "calm")
        with TestClient(app=create_app(tight, services=one)) as a, \
                TestClient(app=create_app(tight, services=two)) as b:
            for client in (a, b, a):
                assert client.get("/api/v1/units", headers=busy).status_code == 200
            refused = b.get("/api/v1/units", headers=busy)
            assert refused.status_code == 429, refused.text
            body = refused.json()
            assert body["rule"] == "rate-limit.principal"
            assert int(refused.headers["retry-after"]) >= 1
            assert a.get("/api/v1/units", headers=busy).status_code == 429
            assert b.get("/api/v1/units", headers=calm).status_code == 200  # its own bucket
        with one.db.read() as cur:  # no principal or address in clear
            cur.execute("SELECT bucket FROM kaoping_rate_buckets")
            names = [str(r[0]) for r in cur.fetchall()]
        assert len(names) == 2
        assert not any("busy" in n or "calm" in n for n in names)
    finally:
        one.close()
        two.close()


def test_anonymous_clients_share_one_budget_across_processes(
        pg_settings: Settings, tmp_path: Path) -> None:
    tight = pg_settings.with_overrides(anonymous_burst=2, anonymous_rate_per_second=0.01,
                                       anonymous_throttle_delay_seconds=0,
                                       console_key_path=str(tmp_path / "console.key"))
    one, two = _two_processes(tight)
    try:
        with TestClient(app=create_app(tight, services=one)) as a, \
                TestClient(app=create_app(tight, services=two)) as b:
            assert a.get("/api/v1/units").status_code != 429
            assert b.get("/api/v1/units").status_code != 429
            refused = a.get("/api/v1/units")
            assert refused.status_code == 429
            assert refused.json()["rule"] == "rate-limit.anonymous"
    finally:
        one.close()
        two.close()


def test_the_shared_bucket_refills_at_the_rate_and_is_forgotten_when_full(
        pg_services: Services, tmp_path: Path) -> None:
    now = [1000.0]
    key = pseudonym_key(str(tmp_path / "console.key"))
    limiters = [SharedLimiter(pg_services.db, "principal", rate=2.0, burst=2, key=key,
                              now=lambda: now[0]) for _ in range(2)]
    first, second = limiters
    assert first.take("a") is None
    assert second.take("a") is None
    assert first.take("a") == 1
    now[0] += 0.5  # one token back at 2/s
    assert second.take("a") is None
    assert first.take("a") == 1
    assert second.take("b") is None
    assert forget_full_buckets(pg_services.db, now[0]) == 0  # both still spent
    now[0] += 10
    assert forget_full_buckets(pg_services.db, now[0]) == 2
    assert first.take("a") is None  # a fresh, full bucket


def test_a_lease_is_spent_from_memory_and_never_exceeds_the_shared_budget(
        pg_services: Services, tmp_path: Path) -> None:
    """burst 100 → a lease of 5: a round trip every 5 grants, and the two processes together
    are granted exactly the burst, however the leases interleave; a lease not spent within
    LEASE_SECONDS is dropped (its tokens are not handed out again)."""
    now, ticks = [1000.0], [0.0]
    key = pseudonym_key(str(tmp_path / "console.key"))
    first, second = (SharedLimiter(pg_services.db, "anonymous", rate=0.001, burst=100, key=key,
                                   now=lambda: now[0]) for _ in range(2))
    for limiter in (first, second):
        limiter.clock = lambda: ticks[0]
    assert first.lease == 5
    assert not first.leased("x")  # nothing held yet: the caller must take()
    assert first.take("x") is None
    assert [first.leased("x") for _ in range(5)] == [True] * 4 + [False]
    granted, trips, refused = 5, 1, set[SharedLimiter]()
    turn = 0
    while len(refused) < 2:  # until each process has been refused by the bucket
        limiter = (first, second)[turn % 2]
        turn += 1
        if limiter in refused:
            continue
        if limiter.leased("x"):
            granted += 1
        elif limiter.take("x") is None:
            granted, trips = granted + 1, trips + 1
        else:
            refused.add(limiter)
    assert granted == 100
    assert trips <= 100 // 5 + 3
    assert second.take("x") is not None  # the bucket is empty for everyone
    # a lease expires: the tokens it held are gone, not returned
    now[0] += 5000  # 5 tokens back at 0.001/s
    assert first.take("x") is None
    ticks[0] += 1.5
    assert not first.leased("x")
    assert second.take("x") is not None


def test_a_credential_guesser_refused_on_one_process_is_refused_on_another(
        pg_settings: Settings, tmp_path: Path) -> None:
    """The refused-ballot budgets are one across API processes: 20 wrong credentials on one
    process, and the other refuses the next guess — and a valid credential from that client
    too (429, ``ballot.refusals-per-client``), as one process alone does."""
    from tests.e2e.test_ballots import Box, S, _answers  # noqa: PLC0415

    shared = pg_settings.with_overrides(console_key_path=str(tmp_path / "console.key"))
    one, two = _two_processes(shared)
    try:
        with TestClient(app=create_app(shared, services=one)) as a, \
                TestClient(app=create_app(shared, services=two)) as b:
            assert isinstance(a.app.state.ballot_refusals, SharedRefusals)
            box = Box(a, one)
            box.open()
            answers = _answers(("good", "fair"), ("good", "good"))
            assert {box.cast(f"guess-{i:016d}", answers).status_code
                    for i in range(20)} == {422}
            url = f"/api/v1/sessions/{S}/ballots"
            guess = b.post(url, json={"credential": "guess-9999999999999999",
                                      "answers": answers})
            assert (guess.status_code, guess.json()["rule"]) == (
                429, "ballot.refusals-per-client")
            valid = b.post(url, json={"credential": box.cadres[0], "answers": answers})
            assert (valid.status_code, valid.json()["rule"]) == (
                429, "ballot.refusals-per-client")
            assert 1 <= int(valid.headers["retry-after"]) <= 60
        with one.db.read() as cur:  # the client address only as an HMAC
            cur.execute("SELECT DISTINCT client FROM kaoping_ballot_refusals")
            clients = [str(r[0]) for r in cur.fetchall()]
        assert len(clients) == 1 and "testclient" not in clients[0]
    finally:
        one.close()
        two.close()


def _refusals(services: Services, tmp: Path, ticks: list[float], *,
              per_session: int) -> SharedRefusals:
    """One API process's refused-ballot budgets (2 per client, a window of 60 s) on the shared
    table, on a clock the test moves."""
    return SharedRefusals(services.db, per_client=2, per_session=per_session, window=60,
                          key=pseudonym_key(str(tmp / "console.key")),
                          fallback=FailureLimiter(per_client=2, per_session=per_session,
                                                  window=60),
                          clock=lambda: ticks[0])


def test_the_session_budget_counts_refusals_made_on_every_process(
        pg_services: Services, tmp_path: Path) -> None:
    """per client 2, per session 3: refusals spread over two processes exhaust the session's
    budget for the clients that made them; a client with no refusal of its own is never
    locked out by others' guessing; the window forgets them, and so does housekeeping."""
    ticks = [0.0]
    first, second = (_refusals(pg_services, tmp_path, ticks, per_session=3) for _ in range(2))
    for process in (first, second):
        assert process.stale("S1")
        process.refresh("S1")
    first.failed("10.0.0.1", "S1")
    first.failed("10.0.0.1", "S1")
    assert first.retry_after("10.0.0.1", "S1") == (60, "ballot.refusals-per-client")
    assert second.retry_after("10.0.0.1", "S1") is None  # its view is under a second old
    ticks[0] += 1.0
    assert second.stale("S1")
    second.refresh("S1")
    wait, rule = second.retry_after("10.0.0.1", "S1") or (0, "")
    assert rule == "ballot.refusals-per-client" and 58 <= wait <= 60
    second.failed("10.0.0.2", "S1")  # the session's third refusal, on the other process
    assert second.retry_after("10.0.0.2", "S1")[1] == "ballot.refusals-per-session"  # type: ignore[index]
    assert second.retry_after("10.0.0.3", "S1") is None  # no refusal of its own
    assert second.retry_after("10.0.0.2", "S2") is None  # another session's budget
    ticks[0] += 1.0
    first.refresh("S1")
    assert first.retry_after("10.0.0.2", "S1")[1] == "ballot.refusals-per-session"  # type: ignore[index]
    assert forget_old_refusals(pg_services.db, 60) == 0  # all still in the window
    assert forget_old_refusals(pg_services.db, 0.000001) == 3
    ticks[0] += 1.0
    first.refresh("S1")
    assert first.retry_after("10.0.0.1", "S1") is None


def test_refusal_views_are_read_once_at_a_time_in_order_and_expired_rows_go(
        pg_services: Services, tmp_path: Path) -> None:
    """One read of a session's refusals in flight at a time (the others check against the
    view they have); a read that started before the view kept now never replaces it; a
    refusal recorded before any view is counted at once, with a finite wait; and each read
    first deletes the refusals the window has left behind."""
    ticks = [10.0]
    first, other = (_refusals(pg_services, tmp_path, ticks, per_session=10) for _ in range(2))
    first.failed("10.0.0.9", "S9")  # no view yet: counted here at once
    first.failed("10.0.0.9", "S9")
    wait, rule = first.retry_after("10.0.0.9", "S9") or (0, "")
    assert rule == "ballot.refusals-per-client" and wait == 60
    assert other.stale("S9") and not other.stale("S9")  # the second caller does not read
    other.refresh("S9")
    assert other.retry_after("10.0.0.9", "S9") is not None
    ticks[0] += 1.0
    assert other.stale("S9")
    other.refresh("S9")
    ticks[0] -= 0.5  # a read that started before the kept view answers after it
    with pg_services.db.write() as cur:
        cur.execute("DELETE FROM kaoping_ballot_refusals")
    other.refresh("S9")
    assert other.retry_after("10.0.0.9", "S9") is not None  # the newer view stands
    with pg_services.db.write() as cur:  # a refusal from long ago, left by a dead process
        cur.execute("INSERT INTO kaoping_ballot_refusals (session, client, at) VALUES "
                    "('S8', 'x', extract(epoch from clock_timestamp()) - 3600)")
    ticks[0] += 5.0
    other.refresh("S9")
    with pg_services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ballot_refusals WHERE session = 'S8'")
        assert cur.fetchone() == (0,)


def test_requests_that_find_the_lease_spent_share_one_renewal(
        pg_services: Services, tmp_path: Path) -> None:
    """32 concurrent requests from one address, no lease held: one round trip takes a lease
    of 32 (burst 640) and the other 31 spend from it — before, each made its own round trip
    and overwrote the last one's lease. A refusal reaches the waiting requests as it is."""
    import asyncio  # noqa: PLC0415

    from api.auth import _take  # noqa: PLC0415

    key = pseudonym_key(str(tmp_path / "console.key"))

    class Counted(SharedLimiter):
        trips = 0

        def take(self, principal: str) -> int | None:
            self.trips += 1
            time.sleep(0.05)  # a slow round trip: every request arrives while it is out
            return super().take(principal)

    async def burst(limiter: SharedLimiter, n: int) -> list[int | None]:
        return list(await asyncio.gather(*(_take(limiter, "10.0.0.7") for _ in range(n))))

    roomy = Counted(pg_services.db, "anonymous", rate=0.001, burst=640, key=key)
    assert asyncio.run(burst(roomy, 32)) == [None] * 32
    assert roomy.trips == 1
    empty = Counted(pg_services.db, "other", rate=0.001, burst=40, key=key)  # a lease of 2
    answers = asyncio.run(burst(empty, 45))
    assert answers.count(None) == 40  # the burst, not one more
    assert all(isinstance(a, int) and a >= 1 for a in answers if a is not None)
    assert empty.trips <= 20 + 2  # a trip per lease of 2, and the refusal shared
