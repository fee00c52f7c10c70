"""Issue 12: a webhook subscription lives no longer than the credential that made it, and
operators can list and remove subscriptions (``kaoping webhooks list|remove``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from service.clock import FixedClock
from service.principals import Role, create_api_key, revoke_api_key, rotate_api_key
from service.runtime import Services
from service.settings import Settings
from service.webhooks import Webhooks
from tests.conftest import bearer
from tests.e2e.test_cli import _kaoping
from tests.e2e.test_webhooks import SUBS, Receiver

Client = TestClient[Any]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def hooks(services: Services) -> Webhooks:
    services.webhooks = Webhooks(services.db, services.store.mapper,
                                 services.settings.with_overrides(webhook_allow_loopback=True),
                                 services.clock)
    return services.webhooks


def _unit(client: Client, headers: dict[str, str], n: int) -> None:
    resp = client.post("/api/v1/units", headers=headers, json={
        "code": f"U{n}", "name": f"单位{n}", "kind": "township", "category": "platform-1"})
    assert resp.status_code == 201, resp.text


def _key(services: Services) -> tuple[str, dict[str, str]]:
    key_id, key = create_api_key(services.db, role=Role.ORGANIZER, name="HR system",
                                 acts_as=None, now=services.clock.now())
    return key_id, {"X-API-Key": key}


def _subscribe(client: Client, headers: dict[str, str], url: str) -> str:
    resp = client.post(SUBS, json={"url": url}, headers=headers)
    assert resp.status_code == 201, resp.text
    sub: str = resp.json()["subscription"]["id"]
    return sub


def _state(hooks: Webhooks, sub_id: str) -> Any:
    return next(s for _, _, s in hooks.everyone() if s.id == sub_id)


def test_revoking_the_key_suspends_its_subscription(client: Client, services: Services,
                                                    hooks: Webhooks, receiver: Receiver,
                                                    organizer: dict[str, str]) -> None:
    key_id, key = _key(services)
    sub = _subscribe(client, key, receiver.url)
    _unit(client, organizer, 1)
    hooks.queue()
    assert hooks.deliver_due() == 1
    _unit(client, organizer, 2)
    hooks.queue()  # queued while the key was live ...
    revoke_api_key(services.db, key_id, services.clock.now())
    _unit(client, organizer, 3)
    assert hooks.deliver_due() == 0  # ... but not sent once it is revoked
    assert hooks.queue() == 0
    assert len(receiver.received) == 1
    state = _state(hooks, sub)
    assert state.suspended_at == services.clock.now().isoformat()
    assert "revoked" in (state.suspended_reason or "")
    assert state.active  # suspended, not deleted: the log stays readable


def test_a_rotated_key_keeps_its_subscription(client: Client, services: Services,
                                              hooks: Webhooks, receiver: Receiver,
                                              organizer: dict[str, str]) -> None:
    old_id, key = _key(services)
    sub = _subscribe(client, key, receiver.url)
    rotate_api_key(services.db, old_id, services.clock.now())
    revoke_api_key(services.db, old_id, services.clock.now())  # the successor is live
    _unit(client, organizer, 1)
    hooks.queue()
    assert hooks.deliver_due() == 1
    assert _state(hooks, sub).suspended_at is None


def test_an_expired_token_suspends_and_nothing_resumes_it(client: Client, services: Services,
                                                          hooks: Webhooks, receiver: Receiver,
                                                          clock: FixedClock) -> None:
    person = bearer(services, Role.ORGANIZER)
    sub = _subscribe(client, person, receiver.url)
    _unit(client, person, 1)
    hooks.queue()
    assert hooks.deliver_due() == 1
    clock.advance(timedelta(seconds=services.settings.token_ttl_seconds + 1))
    person = bearer(services, Role.ORGANIZER)  # the same person, a fresh token
    _unit(client, person, 2)
    assert hooks.queue() == 0
    assert hooks.deliver_due() == 0
    assert len(receiver.received) == 1
    shown = client.get(f"{SUBS}/{sub}", headers=person).json()
    assert shown["suspended_reason"] and "expired" in shown["suspended_reason"]
    etag = client.get(f"{SUBS}/{sub}", headers=person).headers["etag"]
    resume = client.patch(f"{SUBS}/{sub}", json={"paused": False},
                          headers={**person, "If-Match": etag})
    assert resume.status_code == 409, resume.text
    assert resume.json()["rule"] == "webhook.subscription.suspended"
    assert hooks.queue() == 0
    assert hooks.deliver_due() == 0


def test_operators_list_and_remove_subscriptions(settings: Settings, client: Client,
                                                 services: Services, hooks: Webhooks,
                                                 receiver: Receiver) -> None:
    _, key = _key(services)
    sub = _subscribe(client, key, receiver.url)
    listed = _kaoping(settings, "webhooks", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["state"], r["role"], r["url"]) for r in rows] == [
        (sub, "active", "organizer", receiver.url)]
    assert rows[0]["owner"].startswith("key:")
    refused = _kaoping(settings, "webhooks", "remove", sub)
    assert refused.returncode == 2
    assert "--reason" in refused.stderr
    removed = _kaoping(settings, "webhooks", "remove", sub, "--reason", "接收方已停用")
    assert removed.returncode == 0, removed.stderr
    again = [json.loads(line) for line in _kaoping(settings, "webhooks", "list").stdout
             .splitlines()]
    assert again[0]["state"] == "deleted"
    with services.db.read() as cur:
        cur.execute("SELECT deleted_reason FROM kaoping_webhook_subscriptions WHERE id = %s",
                    (sub,))
        (reason,) = cur.fetchone() or ("",)
    assert str(reason).endswith(": 接收方已停用")
    assert _kaoping(settings, "webhooks", "remove", sub, "--reason", "x").returncode == 1
