"""Idempotency-Keys after faults: a reservation left by a killed process is a lease that runs
out (a retry then performs the request once), a slow first attempt cannot complete after being
taken over, and 50 concurrent first uses of one key give one write and no 5xx."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient, TestClient

from api import create_app
from domain.errors import Busy
from domain.units import UnitKind, register_unit
from service.clock import FixedClock
from service.idempotency import Reservation, fingerprint
from service.runtime import Services
from service.settings import Settings
from tests.e2e.test_api_mechanisms import UNIT, _count_events

Client = TestClient[Any]
BODY = b'{"code":"XZ-01","name":"x","kind":"township","category":"platform-1"}'


def _reserve_and_die(services: Services, organizer: dict[str, str], key: str) -> Reservation:
    """What a process killed mid-request leaves behind: a pending reservation."""
    principal = services.tokens.verify(organizer["Authorization"][7:], now=services.clock.now())
    held = services.idempotency.reserve(principal.id, key, fingerprint(
        "POST", "/api/v1/units", BODY), services.clock.now())
    assert isinstance(held, Reservation)
    return held


def _post(client: Client, organizer: dict[str, str], key: str) -> Any:
    return client.post("/api/v1/units", content=BODY, headers={
        **organizer, "Idempotency-Key": key, "content-type": "application/json"})


def test_a_key_left_pending_by_a_crash_is_performed_after_its_lease(
        client: Client, services: Services, clock: FixedClock,
        organizer: dict[str, str]) -> None:
    assert services.settings.idempotency_lease_seconds == 30  # the documented default
    _reserve_and_die(services, organizer, "crashed")
    clock.advance(timedelta(seconds=10))
    busy = _post(client, organizer, "crashed")
    assert busy.status_code == 409
    assert busy.json()["rule"] == "idempotency-key.in-progress"
    assert busy.json()["field"] == "Idempotency-Key"
    assert busy.headers["Retry-After"] == "20"  # the rest of the lease
    assert _count_events(services) == 0
    clock.advance(timedelta(seconds=21))
    done = _post(client, organizer, "crashed")
    assert done.status_code == 201, done.text
    assert "Idempotent-Replayed" not in done.headers
    again = _post(client, organizer, "crashed")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["receipt"] == done.json()["receipt"]
    assert _count_events(services) == 1


def test_a_slow_first_attempt_cannot_complete_after_a_takeover(
        client: Client, services: Services, clock: FixedClock,
        organizer: dict[str, str]) -> None:
    slow = _reserve_and_die(services, organizer, "slow")
    clock.advance(timedelta(seconds=31))
    assert _post(client, organizer, "slow").status_code == 201
    principal = services.tokens.verify(organizer["Authorization"][7:], now=clock.now())
    # The first attempt wakes up and tries to save with its (taken over) lease.
    late = register_unit("XZ-09", "late", UnitKind.TOWNSHIP, "platform-1", principal.id)
    with pytest.raises(Busy, match="lease ran out"):
        services.store.save(late, after_append=services.idempotency.completer(
            principal.id, "slow", 201, slow))
    assert _count_events(services) == 1  # its event rolled back with the refusal


def test_fifty_concurrent_first_uses_give_one_write_and_no_5xx(
        settings: Settings, services: Services, organizer: dict[str, str]) -> None:
    app = create_app(settings, services=services)
    headers = {**organizer, "Idempotency-Key": "stampede"}
    _warm_pool(services)

    async def stampede() -> list[Any]:
        async with AsyncTestClient(app=app) as client:
            return list(await asyncio.gather(*[
                client.post("/api/v1/units", json=UNIT, headers=headers) for _ in range(50)]))

    responses = asyncio.run(stampede())
    statuses = sorted(r.status_code for r in responses)
    assert all(s < 500 for s in statuses), [r.text for r in responses if r.status_code >= 500]
    performed = [r for r in responses
                 if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(performed) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["rule"] == "idempotency-key.in-progress"
            assert int(r.headers["Retry-After"]) >= 1
        else:
            assert r.status_code == 201
            assert r.json()["receipt"] == performed[0].json()["receipt"]
    assert _count_events(services) == 1


def _warm_pool(services: Services) -> None:
    """Open every pooled connection (the pool starts with one), so writers really overlap."""
    size = services.settings.db_pool_size if services.settings.engine == "postgres" else 1
    held = threading.Barrier(size)

    def hold() -> None:
        with services.db.read():
            held.wait(timeout=30)

    threads = [threading.Thread(target=hold) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_fifty_threads_racing_to_reserve_one_key(services: Services,
                                                 organizer: dict[str, str]) -> None:
    """The race itself, without HTTP in front to stagger it: 50 threads released at once."""
    principal = services.tokens.verify(organizer["Authorization"][7:], now=services.clock.now())
    digest = fingerprint("POST", "/api/v1/units", BODY)
    _warm_pool(services)
    barrier = threading.Barrier(50)
    outcomes: list[object] = []

    def race() -> None:
        barrier.wait()
        try:
            outcomes.append(services.idempotency.reserve(principal.id, "race", digest,
                                                         services.clock.now()))
        except Exception as exc:  # noqa: BLE001 -- every outcome is asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=race) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 50
    reserved = [o for o in outcomes if isinstance(o, Reservation)]
    others = [o for o in outcomes if not isinstance(o, Reservation)]
    assert len(reserved) == 1
    assert all(isinstance(o, Busy) and o.rule == "idempotency-key.in-progress"
               for o in others), {type(o).__name__: str(o) for o in others}
