"""The API mechanisms every endpoint relies on, through the real HTTP app on both stores:
problem documents, authentication, roles, strict bodies, Idempotency-Key, ETag/If-Match,
cursor pagination with Link, read-your-writes, receipts."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from typing import Any

import pytest
from litestar import get
from litestar.testing import TestClient

from api import create_app
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer

PROBLEM = "application/problem+json"
UNIT = {"code": "XZ-01", "name": "城关镇", "kind": "township", "category": "platform-1"}
Client = TestClient[Any]


def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("https://kaoping.example/problems/")
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def _count_events(services: Services) -> int:
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def test_health_and_openapi(client: Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    doc = client.get("/schema/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/units" in doc["paths"]
    post = doc["paths"]["/api/v1/units"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]
    assert PROBLEM in post["responses"]["409"]["content"]
    assert set(doc["components"]["securitySchemes"]) == {"ApiKey", "BearerToken"}


def test_ready_reports_store_migrations_and_lag(client: Client, services: Services,
                                                organizer: dict[str, str]) -> None:
    body = client.get("/ready").json()
    assert body["ready"] is True
    assert body["migrations_pending"] == []
    assert body["head_position"] == -1
    client.post("/api/v1/units", json=UNIT, headers=organizer)
    body = client.get("/ready").json()
    assert body["head_position"] == 0
    assert set(body["projection_lag"].values()) == {1}
    assert {"event_counts.v1", "units.v1", "cadres.v1", "results.v1", "cases.v1"} == set(
        body["projection_lag"])
    services.follower.catch_up()
    assert set(client.get("/ready").json()["projection_lag"].values()) == {0}


def test_writes_need_a_principal(client: Client, services: Services) -> None:
    body = _problem(client.post("/api/v1/units", json=UNIT), 401)
    assert body["rule"] == "authentication"
    body = _problem(client.post("/api/v1/units", json=UNIT,
                                headers={"Authorization": "Bearer not-a-token"}), 401)
    assert "invalid bearer token" in body["detail"]
    _problem(client.post("/api/v1/units", json=UNIT, headers={"X-API-Key": "kp_nope"}), 401)
    assert _count_events(services) == 0


def test_expired_tokens_are_refused(client: Client, services: Services, clock: Any) -> None:
    from datetime import timedelta  # noqa: PLC0415

    headers = bearer(services, Role.ORGANIZER)
    clock.advance(timedelta(seconds=services.settings.token_ttl_seconds + 1))
    body = _problem(client.post("/api/v1/units", json=UNIT, headers=headers), 401)
    assert body["detail"] == "bearer token expired"


def test_roles_are_checked_and_named(client: Client, services: Services) -> None:
    headers = bearer(services, Role.LEADER, IdentityKind.LEADER, "mayor")
    body = _problem(client.post("/api/v1/units", json=UNIT, headers=headers), 403)
    assert body["rule"] == "role"
    assert "organizer" in body["detail"]
    assert _count_events(services) == 0


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({**UNIT, "code": 7}, "code", "type"),
        ({**UNIT, "kind": "city"}, "kind", "enum"),
        ({**UNIT, "extra": 1}, "extra", "unknown-field"),
        ({k: v for k, v in UNIT.items() if k != "name"}, "name", "required"),
        ({**UNIT, "name": ""}, "name", "constraint"),
        ({**UNIT, "code": "has space"}, "code", "code.format"),
    ],
)
def test_malformed_bodies_name_the_field_and_rule(client: Client, services: Services,
                                                  organizer: dict[str, str],
                                                  body: dict[str, Any], field: str,
                                                  rule: str) -> None:
    problem = _problem(client.post("/api/v1/units", json=body, headers=organizer), 400)
    assert problem["field"] == field
    assert problem["rule"] == rule
    assert problem["errors"][0]["field"] == field
    assert _count_events(services) == 0


def test_bodies_are_decoded_strictly_and_typed(client: Client,
                                              organizer: dict[str, str]) -> None:
    _problem(client.post("/api/v1/units", content=b"{not json", headers={
        **organizer, "content-type": "application/json"}), 400)
    _problem(client.post("/api/v1/units", content=b"code=1", headers={
        **organizer, "content-type": "application/x-www-form-urlencoded"}), 415)
    # A domain rule (not the schema) refuses an unknown category, naming it.
    problem = _problem(client.post("/api/v1/units", json={**UNIT, "category": "vertical"},
                                   headers=organizer), 422)
    assert (problem["rule"], problem["field"]) == ("unit.category", "category")


def test_problems_speak_chinese_when_asked(client: Client) -> None:
    body = client.post("/api/v1/units", json=UNIT, headers={"Accept-Language": "zh-CN"}).json()
    assert body["title"] == "需要身份认证"


def test_unexpected_errors_leak_nothing(settings: Settings, services: Services) -> None:
    @get("/boom", opt={"public": True})
    async def boom() -> None:
        msg = "secret-connection-string=postgres://admin:hunter2@db"
        raise RuntimeError(msg)

    app = create_app(settings, services=services)
    app.register(boom)
    with TestClient(app=app) as c:
        resp = c.get("/boom")
    body = _problem(resp, 500)
    assert "hunter2" not in resp.text
    assert "Traceback" not in resp.text
    assert "request id" in body["detail"]


def test_a_write_returns_a_receipt_etag_and_location(client: Client, services: Services,
                                                    organizer: dict[str, str]) -> None:
    resp = client.post("/api/v1/units", json=UNIT, headers=organizer)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["unit"]["code"] == "XZ-01"
    assert resp.headers["etag"] == '"1"'
    assert resp.headers["location"] == f"/api/v1/units/{body['unit']['id']}"
    [item] = body["receipt"]
    assert item["position"] == 0
    assert item["stream_version"] == 1
    assert item["topic"] == "kaoping/Unit.Registered.v1"
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger WHERE position = 0")
        row = cur.fetchone()
    assert row is not None
    assert base64.b64decode(item["leaf_hash"]) == bytes(row[0])


# --- Idempotency-Key ---------------------------------------------------------------------

def test_a_retry_returns_the_first_result_and_stores_nothing_new(
        client: Client, services: Services, organizer: dict[str, str]) -> None:
    headers = {**organizer, "Idempotency-Key": "k-1"}
    first = client.post("/api/v1/units", json=UNIT, headers=headers)
    # Same body, other key order and spacing: the same request, compared as parsed JSON.
    raw = b'{ "category": "platform-1", "kind": "township", "name": "\\u57ce\\u5173\\u9547",' \
          b' "code": "XZ-01" }'
    again = client.post("/api/v1/units", content=raw,
                        headers={**headers, "content-type": "application/json"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert _count_events(services) == 1


def test_a_key_reused_with_another_body_is_refused(client: Client, services: Services,
                                                   organizer: dict[str, str]) -> None:
    headers = {**organizer, "Idempotency-Key": "k-2"}
    assert client.post("/api/v1/units", json=UNIT, headers=headers).status_code == 201
    body = _problem(client.post("/api/v1/units", json={**UNIT, "name": "other"},
                                headers=headers), 422)
    assert body["rule"] == "idempotency-key.reused"
    assert _count_events(services) == 1


def test_keys_are_scoped_to_the_principal(client: Client, services: Services,
                                          organizer: dict[str, str]) -> None:
    other = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-2")
    assert client.post("/api/v1/units", json=UNIT,
                       headers={**organizer, "Idempotency-Key": "same"}).status_code == 201
    second = client.post("/api/v1/units", json={**UNIT, "code": "XZ-02"},
                         headers={**other, "Idempotency-Key": "same"})
    assert second.status_code == 201
    assert _count_events(services) == 2


def test_a_duplicate_in_flight_gets_409(client: Client, services: Services,
                                        organizer: dict[str, str]) -> None:
    from service.idempotency import Reservation, fingerprint  # noqa: PLC0415

    principal = services.tokens.verify(organizer["Authorization"][7:], now=services.clock.now())
    body = b'{"code":"XZ-01","name":"x","kind":"township","category":"platform-1"}'
    digest = fingerprint("POST", "/api/v1/units", body)
    # The first request has reserved the key and is still running its command.
    assert isinstance(services.idempotency.reserve(principal.id, "k-3", digest,
                                                   services.clock.now()), Reservation)
    resp = client.post("/api/v1/units", content=body, headers={
        **organizer, "Idempotency-Key": "k-3", "content-type": "application/json"})
    assert _problem(resp, 409)["rule"] == "idempotency-key.in-progress"
    assert _count_events(services) == 0


def test_a_refused_command_releases_its_key(client: Client, services: Services,
                                            organizer: dict[str, str]) -> None:
    headers = {**organizer, "Idempotency-Key": "k-4"}
    bad = {**UNIT, "category": "vertical"}
    _problem(client.post("/api/v1/units", json=bad, headers=headers), 422)
    _problem(client.post("/api/v1/units", json=bad, headers=headers), 422)
    assert _count_events(services) == 0
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_idempotency")
        assert cur.fetchone() == (0,)


def test_keys_expire_after_the_retention(client: Client, services: Services, clock: Any) -> None:
    from service.idempotency import RETENTION  # noqa: PLC0415

    def org(key: str) -> dict[str, str]:  # a fresh token each time: the clock moves by hours
        return {**bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1"),
                "Idempotency-Key": key}

    assert client.post("/api/v1/units", json=UNIT, headers=org("old")).status_code == 201
    clock.advance(RETENTION / 2)
    client.post("/api/v1/units", json={**UNIT, "code": "XZ-09"}, headers=org("new"))
    assert services.idempotency.purge(clock.now()) == 0  # both still within the retention
    replay = client.post("/api/v1/units", json=UNIT, headers=org("old"))
    assert replay.headers["idempotent-replayed"] == "true"
    clock.advance(RETENTION / 2 + timedelta(seconds=1))
    assert services.idempotency.purge(clock.now()) == 1  # "old" only
    with services.db.read() as cur:
        cur.execute("SELECT idem_key FROM kaoping_idempotency")
        assert [tuple(r) for r in cur.fetchall()] == [("new",)]
    # Forgotten: the same key now runs the command afresh (here refused: the code exists).
    assert _problem(client.post("/api/v1/units", json=UNIT, headers=org("old")), 409)


def test_concurrent_identical_requests_store_one_event(client: Client, services: Services,
                                                       organizer: dict[str, str]) -> None:
    statuses: list[int] = []

    def send() -> None:
        resp = client.post("/api/v1/units", json=UNIT,
                           headers={**organizer, "Idempotency-Key": "k-5"})
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _count_events(services) == 1
    assert set(statuses) <= {201, 409}
    assert 201 in statuses


def test_malformed_keys_are_refused(client: Client, organizer: dict[str, str]) -> None:
    body = _problem(client.post("/api/v1/units", json=UNIT,
                                headers={**organizer, "Idempotency-Key": "x" * 256}), 400)
    assert body["rule"] == "idempotency-key.format"


# --- ETag / If-Match -----------------------------------------------------------------------

def test_updates_require_if_match_and_refuse_stale_versions(
        client: Client, services: Services, organizer: dict[str, str]) -> None:
    created = client.post("/api/v1/units", json=UNIT, headers=organizer).json()
    url = f"/api/v1/units/{created['unit']['id']}"
    rename = {"name": "城关街道", "reason": "撤镇设街道"}
    body = _problem(client.patch(url, json=rename, headers=organizer), 428)
    assert body["field"] == "If-Match"
    body = _problem(client.patch(url, json=rename, headers={**organizer, "If-Match": '"7"'}), 412)
    assert body["current_version"] == 1
    ok = client.patch(url, json=rename, headers={**organizer, "If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == '"2"'
    assert ok.json()["unit"]["name"] == "城关街道"
    # The version it was written against is gone: the same If-Match is now stale.
    _problem(client.patch(url, json={**rename, "name": "x"},
                          headers={**organizer, "If-Match": '"1"'}), 412)
    read = client.get(url)
    assert read.headers["etag"] == '"2"'
    assert read.json()["version"] == 2
    assert _count_events(services) == 2


def test_unknown_resources_are_404_problems(client: Client) -> None:
    body = _problem(client.get("/api/v1/units/00000000-0000-0000-0000-000000000000"), 404)
    assert body["rule"] == "unit.exists"


# --- cursors and read-your-writes ------------------------------------------------------------

def test_lists_page_with_opaque_cursors_and_link_headers(
        client: Client, services: Services, organizer: dict[str, str]) -> None:
    last = None
    for i in range(7):
        resp = client.post("/api/v1/units", json={**UNIT, "code": f"U-{i:02d}"},
                           headers=organizer)
        last = resp.json()["receipt"][-1]["position"]
    services.follower.catch_up()
    seen: list[str] = []
    url: str | None = f"/api/v1/units?limit=3&min_position={last}"
    pages = 0
    while url:
        resp = client.get(url)
        assert resp.status_code == 200, resp.text
        seen += [u["code"] for u in resp.json()["items"]]
        link = resp.headers.get("link")
        url = link[1:link.index(">")] if link else None
        pages += 1
        assert pages < 10
    assert seen == [f"U-{i:02d}" for i in range(7)]
    assert pages == 3


def test_a_cursor_from_another_query_is_refused(client: Client, services: Services,
                                                organizer: dict[str, str]) -> None:
    for i in range(3):
        client.post("/api/v1/units", json={**UNIT, "code": f"U-{i}"}, headers=organizer)
    services.follower.catch_up()
    cursor = client.get("/api/v1/units?limit=1").json()["next_cursor"]
    assert cursor
    body = _problem(client.get(f"/api/v1/units?limit=1&kind=department&cursor={cursor}"), 400)
    assert body["field"] == "cursor"
    _problem(client.get("/api/v1/units?cursor=garbage!!"), 400)


def test_min_position_waits_for_the_read_model(client: Client, services: Services,
                                               organizer: dict[str, str]) -> None:
    position = client.post("/api/v1/units", json=UNIT, headers=organizer).json()[
        "receipt"][0]["position"]
    stop = threading.Event()
    worker = threading.Thread(target=services.follower.run, args=(stop,))
    worker.start()
    try:
        items = client.get(f"/api/v1/units?min_position={position}").json()["items"]
    finally:
        stop.set()
        services.follower.poke()
        worker.join()
    assert [u["code"] for u in items] == ["XZ-01"]


# --- per-principal rate limits -----------------------------------------------------------

def test_each_principal_has_its_own_request_rate(settings: Settings, services: Services) -> None:
    tight = settings.with_overrides(rate_limit_burst=3, rate_limit_per_second=0.01)
    first = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "busy")
    second = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "calm")
    with TestClient(app=create_app(tight, services=services)) as client:
        for _ in range(3):
            assert client.get("/api/v1/units", headers=first).status_code == 200
        body = _problem(client.get("/api/v1/units", headers=first), 429)
        assert "person:staff:busy" in body["detail"]
        refused = client.post("/api/v1/units", json=UNIT, headers=first)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/api/v1/units", headers=second).status_code == 200  # unaffected
        assert client.get("/health").status_code == 200  # unauthenticated: not counted
    with services.db.read() as cur:  # the refused write wrote nothing
        cur.execute("SELECT count(*) FROM kaoping_events")
        row = cur.fetchone()
        assert row is not None
        assert row[0] == 0


def test_the_bucket_refills_at_the_configured_rate() -> None:
    from api.ratelimit import PrincipalLimiter  # noqa: PLC0415

    now = [0.0]
    limiter = PrincipalLimiter(rate=2.0, burst=2, monotonic=lambda: now[0])
    assert limiter.take("a") is None
    assert limiter.take("a") is None
    assert limiter.take("a") == 1
    now[0] += 0.5  # one token back at 2/s
    assert limiter.take("a") is None
    assert limiter.take("a") == 1
    assert limiter.take("b") is None


def test_a_unit_is_addressed_by_its_code_as_by_its_id(
        client: Client, services: Services, organizer: dict[str, str]) -> None:
    created = client.post("/api/v1/units", json=UNIT, headers=organizer).json()["unit"]
    by_id = client.get(f"/api/v1/units/{created['id']}")
    by_code = client.get(f"/api/v1/units/{created['code']}")
    assert by_code.status_code == 200
    assert by_code.json() == by_id.json()
    assert by_code.headers["etag"] == by_id.headers["etag"] == '"1"'
    renamed = client.patch(f"/api/v1/units/{created['code']}",
                           json={"name": "城关街道", "reason": "撤镇设街道"},
                           headers={**organizer, "If-Match": '"1"'})
    assert renamed.status_code == 200, renamed.text
    assert client.get(f"/api/v1/units/{created['id']}").json()["name"] == "城关街道"
    missing = _problem(client.get("/api/v1/units/NO-SUCH"), 404)
    assert missing["rule"] == "unit.exists"
    assert _count_events(services) == 2
