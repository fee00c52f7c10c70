"""Webhooks against a real HTTP receiver on 127.0.0.1: signed, complete, retried, redelivered,
and refused for URLs that would probe internal networks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import TestClient

from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.webhook_guard import UrlPolicy, check_url, verify
from service.webhooks import Webhooks
from tests.conftest import bearer

Client = TestClient[Any]
SUBS = "/api/v1/webhooks/subscriptions"
UNIT = {"code": "XZ-01", "name": "城关镇", "kind": "township", "category": "platform-1"}


class Receiver:
    """A real HTTP server recording what it is sent; ``failing`` makes it answer 500."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if outer.failing:
                    self.send_response(500)
                else:
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()},
                                           body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def hooks(services: Services) -> Webhooks:
    """The deliverer configured as for tests: loopback allowed, quick retries."""
    services.webhooks = Webhooks(
        services.db, services.store.mapper,
        services.settings.with_overrides(webhook_allow_loopback=True,
                                         webhook_retry_base_seconds=0.01,
                                         webhook_retry_cap_seconds=0.02),
        services.clock)
    return services.webhooks


def _units(client: Client, organizer: dict[str, str], n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        resp = client.post("/api/v1/units", json={**UNIT, "code": f"U-{i:02d}"},
                           headers=organizer)
        assert resp.status_code == 201, resp.text


def _subscribe(client: Client, headers: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    resp = client.post(SUBS, json={"url": url, **extra}, headers=headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _feed(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    body = client.get("/api/v1/events?after=-1&limit=1000", headers=headers).json()
    items: list[dict[str, Any]] = body["items"]
    return items


def _deliveries(client: Client, headers: dict[str, str], sub: str) -> list[dict[str, Any]]:
    resp = client.get(f"{SUBS}/{sub}/deliveries?limit=500", headers=headers)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def test_the_receiver_gets_the_feed_signed(client: Client, services: Services, hooks: Webhooks,
                                           receiver: Receiver, organizer: dict[str, str]) -> None:
    _units(client, organizer, 3)
    created = _subscribe(client, organizer, receiver.url, after=-1)
    _units(client, organizer, 2, start=3)
    hooks.queue()
    assert hooks.deliver_due() == 5
    feed = _feed(client, organizer)
    assert [json.loads(body) for _, body in receiver.received] == feed
    now = int(services.clock.now().timestamp())
    sub = created["subscription"]["id"]
    for headers, body in receiver.received:
        assert verify(created["secret"], headers, body, now=now)
        assert headers["webhook-id"] == f"{sub}.{json.loads(body)['position']}"
        assert not verify(created["secret"], headers, body + b" ", now=now)
        assert not verify(created["secret"], headers, body, now=now + 3600)  # replayed late
    assert {d["state"] for d in _deliveries(client, organizer, sub)} == {"delivered"}
    # Queuing again sends nothing twice.
    assert hooks.queue() == 0
    assert hooks.deliver_due() == 0


def test_event_types_filter_and_the_role_filter(client: Client, services: Services,
                                                hooks: Webhooks, receiver: Receiver,
                                                organizer: dict[str, str]) -> None:
    _units(client, organizer, 2)
    chosen = _feed(client, organizer)[0]["type"]
    _subscribe(client, organizer, receiver.url, after=-1, event_types=[chosen])
    hooks.queue()
    hooks.deliver_due()
    assert receiver.received
    assert {json.loads(b)["type"] for _, b in receiver.received} == {chosen}
    refused = client.post(SUBS, json={"url": receiver.url,
                                      "event_types": ["kaoping.ballot.cast.v1"]},
                          headers=organizer)
    assert refused.status_code == 422
    assert refused.json()["rule"] == "webhook.event-type"
    assert refused.json()["field"] == "event_types[0]"


def test_a_receiver_that_was_down_catches_up_with_the_same_ids(
        client: Client, services: Services, hooks: Webhooks, receiver: Receiver,
        organizer: dict[str, str], clock: FixedClock) -> None:
    created = _subscribe(client, organizer, receiver.url)
    sub = created["subscription"]["id"]
    _units(client, organizer, 3)
    receiver.failing = True
    hooks.queue()
    assert hooks.deliver_due() == 0
    log = _deliveries(client, organizer, sub)
    assert [(d["state"], d["attempts"], d["last_status"]) for d in log] == [
        ("pending", 1, 500)] * 3
    # A new deliverer (a restart) picks up where the stored state says.
    receiver.failing = False
    clock.advance(timedelta(seconds=1))  # past the retry (the injected clock; no sleep)
    restarted = Webhooks(services.db, services.store.mapper, hooks.settings, services.clock)
    assert restarted.queue() == 0
    assert restarted.deliver_due() == 3
    ids = sorted(h["webhook-id"] for h, _ in receiver.received)
    assert ids == sorted(d["webhook_id"] for d in log)
    assert [d["attempts"] for d in _deliveries(client, organizer, sub)] == [2, 2, 2]


def test_parked_deliveries_can_be_redelivered_once_per_key(
        client: Client, services: Services, receiver: Receiver,
        organizer: dict[str, str]) -> None:
    services.webhooks = hooks = Webhooks(
        services.db, services.store.mapper, services.settings.with_overrides(
            webhook_allow_loopback=True, webhook_retry_base_seconds=10,
            webhook_retry_for_seconds=0.5), services.clock)
    sub = _subscribe(client, organizer, receiver.url)["subscription"]["id"]
    _units(client, organizer, 1)
    receiver.failing = True
    hooks.queue()
    hooks.deliver_due()
    [parked] = _deliveries(client, organizer, sub)
    assert parked["state"] == "failed"
    assert parked["last_error"] == "HTTP 500"
    receiver.failing = False
    url = f"{SUBS}/{sub}/deliveries/{parked['id']}/redelivery"
    key = {**organizer, "Idempotency-Key": "again-1"}
    resp = client.post(url, headers=key)
    assert resp.status_code == 202, resp.text
    assert resp.json()["state"] == "pending"
    assert hooks.deliver_due() == 1
    assert client.post(url, headers=key).json()["state"] == "delivered"  # same key: not again
    assert hooks.deliver_due() == 0
    assert len(receiver.received) == 1
    client.post(url, headers={**organizer, "Idempotency-Key": "again-2"})
    assert hooks.deliver_due() == 1
    assert len(receiver.received) == 2
    assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]


def test_subscriptions_are_idempotent_and_private(client: Client, services: Services,
                                                  hooks: Webhooks, receiver: Receiver,
                                                  organizer: dict[str, str]) -> None:
    headers = {**organizer, "Idempotency-Key": "sub-1"}
    first = client.post(SUBS, json={"url": receiver.url}, headers=headers)
    again = client.post(SUBS, json={"url": receiver.url}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json() == again.json()
    other_body = client.post(SUBS, json={"url": receiver.url + "/x"}, headers=headers)
    assert other_body.status_code == 422
    assert other_body.json()["rule"] == "idempotency-key.reused"
    listed = client.get(SUBS, headers=organizer).json()["items"]
    assert [s["id"] for s in listed] == [first.json()["subscription"]["id"]]
    assert "secret" not in listed[0]
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")
    assert client.get(SUBS, headers=supervisor).json()["items"] == []
    sub = first.json()["subscription"]["id"]
    hidden = client.get(f"{SUBS}/{sub}/deliveries", headers=supervisor)
    assert hidden.status_code == 404
    assert hidden.json()["rule"] == "webhook.subscription.exists"


@pytest.mark.parametrize(("url", "rule"), [
    ("ftp://1.1.1.1/x", "webhook.url.scheme"),
    ("not a url", "webhook.url.scheme"),
    ("https://[::1/hooks", "webhook.url.scheme"),
    ("http://1.1.1.1/hooks", "webhook.url.scheme"),
    ("https://10.0.0.7/hooks", "webhook.url.private"),
    ("https://169.254.169.254/latest/meta-data", "webhook.url.private"),
    ("https://[fd00::1]/hooks", "webhook.url.private"),
    # IPv6 forms that carry a private IPv4 address a gateway would route to: NAT64, 6to4,
    # Teredo, IPv4-mapped; and multicast
    ("https://[64:ff9b::a00:1]/hooks", "webhook.url.private"),
    ("https://[64:ff9b:1::a00:1]/hooks", "webhook.url.private"),
    ("https://[2002:a00:1::]/hooks", "webhook.url.private"),
    ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hooks", "webhook.url.private"),
    ("https://[::ffff:a00:1]/hooks", "webhook.url.private"),
    ("https://224.0.0.1/hooks", "webhook.url.private"),
    ("https://[ff02::1]/hooks", "webhook.url.private"),
    ("http://127.0.0.1:9/hooks", "webhook.url.loopback"),
    ("https://user:pw@1.1.1.1/hooks", "webhook.url.credentials"),
    ("https://1.1.1.1:99999/hooks", "webhook.url.port"),
])
def test_urls_that_could_probe_internal_networks_are_refused(
        client: Client, organizer: dict[str, str], url: str, rule: str) -> None:
    resp = client.post(SUBS, json={"url": url}, headers=organizer)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["rule"] == rule
    assert body["field"] == "url"
    assert client.get(SUBS, headers=organizer).json()["items"] == []


def test_a_public_ipv6_address_carrying_a_public_ipv4_one_is_allowed() -> None:
    check_url("https://[64:ff9b::5db8:d70e]/x", UrlPolicy(), lambda _h, _p: ["64:ff9b::5db8:d70e"])
    check_url("https://[2002:5db8:d70e::]/x", UrlPolicy(), lambda _h, _p: ["2002:5db8:d70e::"])


def test_a_host_name_is_judged_by_every_address_it_resolves_to() -> None:
    def resolver(answers: list[str]) -> Any:
        return lambda _host, _port: answers

    check_url("https://hooks.example.org/x", UrlPolicy(), resolver(["93.184.215.14"]))
    with pytest.raises(Exception, match="private") as refused:
        check_url("https://hooks.example.org/x", UrlPolicy(),
                  resolver(["93.184.215.14", "192.168.1.20"]))
    assert getattr(refused.value, "rule", "") == "webhook.url.private"
    check_url("https://hooks.example.org/x", UrlPolicy(allow_private=True),
              resolver(["192.168.1.20"]))


def test_the_background_deliverer_sends_without_being_asked(
        client: Client, services: Services, hooks: Webhooks, receiver: Receiver,
        organizer: dict[str, str]) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=hooks.run, args=(stop,), daemon=True)
    worker.start()
    try:
        _subscribe(client, organizer, receiver.url)
        _units(client, organizer, 2)  # each write wakes the deliverer (Services.written)
        deadline = time.monotonic() + 10
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        hooks.poke()
        worker.join(timeout=5)
    assert [json.loads(b)["type"] for _, b in receiver.received] == [
        "kaoping.unit.registered.v1"] * 2


# --- lifecycle: read, pause, resume, delete ---------------------------------------------------

def _read(client: Client, headers: dict[str, str], sub: str) -> tuple[dict[str, Any], str]:
    resp = client.get(f"{SUBS}/{sub}", headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body, resp.headers["etag"]


def _pause(client: Client, headers: dict[str, str], sub: str, tag: str, *,
           paused: bool) -> dict[str, Any]:
    resp = client.patch(f"{SUBS}/{sub}", json={"paused": paused},
                        headers={**headers, "If-Match": tag})
    assert resp.status_code == 200, resp.text
    assert resp.headers["etag"] == f'"{resp.json()["version"]}"'
    body: dict[str, Any] = resp.json()
    return body


def test_a_paused_subscription_queues_and_its_resume_delivers_in_order(
        client: Client, services: Services, hooks: Webhooks, receiver: Receiver,
        organizer: dict[str, str]) -> None:
    created = _subscribe(client, organizer, receiver.url)
    sub = created["subscription"]["id"]
    first, tag = _read(client, organizer, sub)
    assert (first["paused"], first["active"], first["version"], tag) == (False, True, 1, '"1"')
    paused = _pause(client, organizer, sub, tag, paused=True)
    assert (paused["paused"], paused["version"]) == (True, 2)
    _units(client, organizer, 4)
    assert hooks.queue() == 4  # queued while paused ...
    assert hooks.deliver_due() == 0  # ... but nothing sent
    assert receiver.received == []
    log = _deliveries(client, organizer, sub)
    assert [d["state"] for d in log] == ["pending"] * 4
    assert [d["attempts"] for d in log] == [0] * 4
    resumed = _pause(client, organizer, sub, '"2"', paused=False)
    assert (resumed["paused"], resumed["version"]) == (False, 3)
    _units(client, organizer, 1, start=4)  # an event after the resume goes after the backlog
    hooks.queue()
    assert hooks.deliver_due() == 5
    sent = [json.loads(body) for _, body in receiver.received]
    assert [e["data"]["code"] for e in sent] == [f"U-{i:02d}" for i in range(5)]
    assert [e["position"] for e in sent] == sorted(e["position"] for e in sent)
    assert sent == _feed(client, organizer)  # exactly what the feed shows, nothing lost
    now = int(services.clock.now().timestamp())
    for headers, body in receiver.received:
        assert headers["webhook-id"] == f"{sub}.{json.loads(body)['position']}"
        assert verify(created["secret"], headers, body, now=now)
    assert [d["webhook_id"] for d in _deliveries(client, organizer, sub)] == [
        h["webhook-id"] for h, _ in receiver.received]


def test_a_deleted_subscription_sends_nothing_more_and_keeps_its_log(
        client: Client, hooks: Webhooks, receiver: Receiver,
        organizer: dict[str, str]) -> None:
    sub = _subscribe(client, organizer, receiver.url)["subscription"]["id"]
    _units(client, organizer, 2)
    hooks.queue()
    assert hooks.deliver_due() == 2
    _units(client, organizer, 1, start=2)
    hooks.queue()  # queued, then the subscription goes before it is sent
    gone = client.delete(f"{SUBS}/{sub}", headers={**organizer, "If-Match": '"1"'})
    assert gone.status_code == 200, gone.text
    assert (gone.json()["active"], gone.json()["version"]) == (False, 2)
    assert gone.json()["deleted_at"] is not None
    _units(client, organizer, 2, start=3)
    assert hooks.queue() == 0
    assert hooks.deliver_due() == 0
    assert len(receiver.received) == 2
    log = _deliveries(client, organizer, sub)  # the audit trail stays readable
    assert [d["state"] for d in log] == ["delivered", "delivered", "cancelled"]
    read, tag = _read(client, organizer, sub)
    assert (read["active"], tag) == (False, '"2"')
    assert [s["id"] for s in client.get(SUBS, headers=organizer).json()["items"]] == [sub]
    # Deleting again at the current ETag answers the same; a deleted one cannot be resumed
    # or redelivered.
    again = client.delete(f"{SUBS}/{sub}", headers={**organizer, "If-Match": '"2"'})
    assert (again.status_code, again.json()) == (200, read)
    resume = client.patch(f"{SUBS}/{sub}", json={"paused": False},
                          headers={**organizer, "If-Match": '"2"'})
    assert resume.status_code == 409, resume.text
    assert resume.json()["rule"] == "webhook.subscription.deleted"
    redo = client.post(f"{SUBS}/{sub}/deliveries/{log[0]['id']}/redelivery", headers=organizer)
    assert redo.status_code == 409, redo.text
    assert redo.json()["rule"] == "webhook.subscription.deleted"
    hooks.queue()
    assert hooks.deliver_due() == 0
    assert len(receiver.received) == 2


def test_changes_need_the_current_etag(client: Client, hooks: Webhooks, receiver: Receiver,
                                       organizer: dict[str, str]) -> None:
    sub = _subscribe(client, organizer, receiver.url)["subscription"]["id"]
    url = f"{SUBS}/{sub}"
    for method in ("PATCH", "DELETE"):
        body = {"paused": True} if method == "PATCH" else None
        missing = client.request(method, url, json=body, headers=organizer)
        assert missing.status_code == 428, missing.text
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["rule"] == "if-match.required"
    _pause(client, organizer, sub, '"1"', paused=True)
    for method in ("PATCH", "DELETE"):
        body = {"paused": False} if method == "PATCH" else None
        stale = client.request(method, url, json=body, headers={**organizer, "If-Match": '"1"'})
        assert stale.status_code == 412, stale.text
        problem = stale.json()
        assert problem["type"] == "https://kaoping.example/problems/stale-version"
        assert problem["current_version"] == 2
        assert stale.headers["etag"] == '"2"'
    read, _ = _read(client, organizer, sub)
    assert (read["paused"], read["active"], read["version"]) == (True, True, 2)  # unchanged
    unknown = client.patch(url, json={"paused": True, "url": "https://x.example"},
                           headers={**organizer, "If-Match": '"2"'})
    assert unknown.status_code == 400
    assert unknown.json()["rule"] == "unknown-field"


def test_a_change_is_replayed_for_its_idempotency_key(
        client: Client, hooks: Webhooks, receiver: Receiver, organizer: dict[str, str]) -> None:
    sub = _subscribe(client, organizer, receiver.url)["subscription"]["id"]
    headers = {**organizer, "If-Match": '"1"', "Idempotency-Key": "pause-1"}
    first = client.patch(f"{SUBS}/{sub}", json={"paused": True}, headers=headers)
    retry = client.patch(f"{SUBS}/{sub}", json={"paused": True}, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.json()["version"] == 2  # applied once
    other = client.patch(f"{SUBS}/{sub}", json={"paused": False}, headers=headers)
    assert other.status_code == 422
    assert other.json()["rule"] == "idempotency-key.reused"


def test_another_principal_can_neither_see_nor_change_a_subscription(
        client: Client, services: Services, hooks: Webhooks, receiver: Receiver,
        organizer: dict[str, str]) -> None:
    sub = _subscribe(client, organizer, receiver.url)["subscription"]["id"]
    _units(client, organizer, 1)
    hooks.queue()
    other = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-2")  # same role, too
    attempts = [
        client.get(f"{SUBS}/{sub}", headers=other),
        client.patch(f"{SUBS}/{sub}", json={"paused": True},
                     headers={**other, "If-Match": '"1"'}),
        client.delete(f"{SUBS}/{sub}", headers={**other, "If-Match": '"1"'}),
        client.get(f"{SUBS}/{sub}/deliveries", headers=other),
    ]
    nowhere = client.get(f"{SUBS}/wh_0000000000000000", headers=organizer)
    for resp in [*attempts, nowhere]:
        assert resp.status_code == 404, resp.text
        assert resp.json()["rule"] == "webhook.subscription.exists"
    assert attempts[0].json()["detail"].replace(sub, "?") == nowhere.json()["detail"].replace(
        "wh_0000000000000000", "?")  # the answer does not tell that it exists
    read, tag = _read(client, organizer, sub)
    assert (read["paused"], read["active"], tag) == (False, True, '"1"')
    assert hooks.deliver_due() == 1
    assert len(receiver.received) == 1
