"""The API contract: the OpenAPI document audited, then exercised by schemathesis."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.contract import EXEMPT_FROM_IDEMPOTENCY
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer

Client = TestClient[Any]
# Lists bounded by something other than the log's growth (one subject's events, the catalogue).
BOUNDED = {
    ("/api/v1/cycles/{year}/subjects/{subject}/history", "one subject's file"),
    ("/api/v1/events/catalogue", "the event types of this version"),
}
PAGING = {"cursor", "after", "start"}
# Endless by design (SSE): exercised in tests/e2e/test_events.py with a limit.
STREAMS = {"/api/v1/events/stream"}


def _doc(client: Client) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/schema/openapi.json").json()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items()
            for method, op in item.items() if method in {"get", "post", "put", "patch", "delete"}]


def _returns_list(op: dict[str, Any]) -> bool:
    ok = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    schema = ok.get("schema", {})
    return schema.get("type") == "array" or "items" in schema.get("properties", {}) or (
        "$ref" in schema and schema["$ref"].endswith("Page"))


def test_the_document_is_openapi_3_1_and_every_operation_is_described(client: Client) -> None:
    doc = _doc(client)
    assert doc["openapi"].startswith("3.1.")
    assert doc["webhooks"]  # every event type other systems may receive
    for path, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("tags"), where
        refusals = [s for s in op["responses"] if s.startswith("4")]
        if path not in ("/health", "/ready", "/api/v1/ledger/key", "/api/v1/events/catalogue"):
            assert refusals, f"{where} documents no refusal"
        for status in refusals:
            content = op["responses"][status].get("content", {})
            assert "application/problem+json" in content, f"{where} {status} is not a problem"


def test_every_write_and_list_uses_the_shared_mechanisms(client: Client) -> None:
    doc = _doc(client)
    exempt = {p for p, _ in EXEMPT_FROM_IDEMPOTENCY}
    bounded = {p for p, _ in BOUNDED}
    for path, method, op in _operations(doc):
        names = {p["name"] for p in op.get("parameters", [])}
        if method == "post" and path not in exempt:
            assert "Idempotency-Key" in names, f"POST {path} ignores Idempotency-Key"
        if method in ("put", "patch"):
            assert "If-Match" in names, f"{method.upper()} {path} has no If-Match"
        if method == "get" and _returns_list(op) and path not in bounded:
            assert names & PAGING, f"GET {path} returns a list without a cursor"


# psycopg_pool's worker threads draw connection-lifetime jitter from the global `random` while
# Hypothesis draws a case; Hypothesis sees the global state move and (rarely) calls the draw
# flaky. The strategies themselves never touch `random`.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:"
    "hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.SUPERVISOR])
def test_schemathesis_finds_no_server_error(client: Client, services: Services,
                                            role: Role) -> None:
    schema = schemathesis.openapi.from_dict(_doc(client))
    auth = bearer(services, role, IdentityKind.STAFF, "contract")
    failures: list[str] = []
    stop = threading.Event()  # the read models follow the log, as in a running service
    follower = threading.Thread(target=services.follower.run, args=(stop,), daemon=True)
    follower.start()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if operation.path in STREAMS:
            continue

        @settings(max_examples=4, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver.local", headers=auth)
            body = kwargs.pop("data", None)
            resp = client.request(kwargs.pop("method"), kwargs.pop("url"),
                                  headers=kwargs.get("headers"), params=kwargs.get("params"),
                                  json=kwargs.get("json"), content=body)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {resp.status_code} "
                                f"{resp.text[:200]}")
                return
            try:
                case.validate_response(resp, checks=[response_schema_conformance])
            except Exception as exc:  # noqa: BLE001 -- collected and reported together
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

        call()
    stop.set()
    services.follower.poke()
    follower.join(timeout=10)
    assert failures == [], "\n".join(failures)
