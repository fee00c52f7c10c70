"""The API contract: the OpenAPI document audited, then exercised by schemathesis."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any, get_args, get_origin

import jsonschema_rs
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar import Response
from litestar.testing import TestClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.contract import EXEMPT_FROM_IDEMPOTENCY
from api.examples import OPERATIONS
from api.problems import KINDS, PROBLEM_JSON, TYPE_BASE
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer

Client = TestClient[Any]
# Lists bounded by something other than the log's growth (one subject's events, the catalogue).
BOUNDED = {
    ("/api/v1/cycles/{year}/subjects/{subject}/history", "one subject's file"),
    ("/api/v1/events/catalogue", "the event types of this version"),
    ("/api/v1/cycles/{year}/subjects/{subject}/documents", "one per document kind (three)"),
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
    schemathesis.openapi.from_dict(doc).validate()  # against the OpenAPI 3.1 meta-schema
    assert doc["webhooks"]  # every event type other systems may receive
    for path, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("tags"), where
        assert set(op["tags"]) <= {t["name"] for t in doc["tags"]}, where
        refusals = [s for s in op["responses"] if s.startswith("4")]
        if path not in ("/health", "/ready", "/api/v1/ledger/key", "/api/v1/events/catalogue"):
            assert refusals, f"{where} documents no refusal"
        if path.startswith("/api/v1/"):
            assert "429" in refusals, f"{where} does not document its rate limit"
        if op.get("security"):
            assert "401" in refusals, f"{where} needs credentials but documents no 401"
        if "requestBody" in op:
            assert "400" in refusals, f"{where} takes a body but documents no 400"
        if method in ("put", "patch", "delete"):
            assert {"412", "428"} <= set(refusals), f"{where} updates without 412/428"
        for status in refusals:
            content = op["responses"][status].get("content", {})
            assert "application/problem+json" in content, f"{where} {status} is not a problem"


def _examples(media: dict[str, Any]) -> list[Any]:
    return [e["value"] for e in media.get("examples", {}).values()]


def test_every_operation_has_examples(client: Client) -> None:
    """A request example when it takes a body, a success example, a problem per refusal; and
    nothing in the table of examples that is not an operation."""
    doc = _doc(client)
    keys = set()
    for path, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        keys.add(where)
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            assert _examples(media), f"{where}: no example of its {media_type} body"
        for status, response in op["responses"].items():
            for media_type, media in response.get("content", {}).items():
                assert _examples(media), f"{where} {status}: no {media_type} example"
        assert any(s.startswith("2") and r.get("content") for s, r in op["responses"].items()
                   ), f"{where}: no success response with content"
    assert set(OPERATIONS) == keys, set(OPERATIONS) ^ keys


def _strict(schema: Any) -> Any:
    """The schema with ``unevaluatedProperties: false`` on every object that lists its
    properties, so an example with a misspelt or invented field fails too."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["unevaluatedProperties"] = False
    return out


def test_every_example_is_valid_against_its_schema(client: Client) -> None:
    doc = _doc(client)
    components = _strict(copy.deepcopy(doc["components"]))
    checked, failures = 0, []
    for path, method, op in _operations(doc):
        media_types = [("request", m) for m in op.get("requestBody", {}).get("content", {})
                       .values()]
        media_types += [(status, m) for status, r in op["responses"].items()
                        for m in r.get("content", {}).values()]
        for where, media in media_types:
            validator = jsonschema_rs.Draft202012Validator(
                {**_strict(media.get("schema", {})), "components": components})
            for value in _examples(media):
                checked += 1
                failures += [f"{method.upper()} {path} {where}: {e.message} at "
                             f"{'/'.join(map(str, e.instance_path))}"
                             for e in validator.iter_errors(value)]
    assert failures == [], "\n".join(failures)
    assert checked > 3 * len(_operations(doc))


def test_problem_examples_name_the_types_the_api_sends(client: Client) -> None:
    doc = _doc(client)
    for path, method, op in _operations(doc):
        for status, response in op["responses"].items():
            for problem in _examples(response.get("content", {}).get(PROBLEM_JSON, {})):
                kind = problem["type"].removeprefix(TYPE_BASE)
                where = f"{method.upper()} {path} {status}"
                assert KINDS[kind][:2] == (int(status), problem["title"]), where
                assert problem["status"] == int(status), where
                template = re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
                pattern = re.sub(r"\{\w+\}", "[^/]+", template)
                assert re.fullmatch(pattern, problem["instance"]), where


def _handlers(client: Client) -> dict[str, Any]:
    found = {}
    for route in client.app.routes:
        path = re.sub(r":\w+\}", "}", route.path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                found[f"{method} {path}"] = handler
    return found


def test_request_examples_pass_the_strict_decoders(client: Client) -> None:
    """What the handler itself would accept: strict msgspec decoding into its body type (no
    "1" for 1, no unknown field) — beyond what the document's schema can say; and each success
    example decodes into the type the handler returns."""
    handlers = _handlers(client)
    decoded = responses = 0
    for key, example in OPERATIONS.items():
        data = handlers[key].parsed_fn_signature.parameters.get("data")
        assert (data is None) == (example.request is None), key
        if data is not None:
            msgspec.json.decode(msgspec.json.encode(example.request), type=data.annotation,
                                strict=True)
            decoded += 1
        returned = handlers[key].parsed_fn_signature.return_type.annotation
        if get_origin(returned) is Response:
            returned = get_args(returned)[0] if get_args(returned) else Any
        text = isinstance(example.response, str)  # text/plain, text/event-stream
        if not text and returned not in (Any, bytes):  # bytes: a file (the evidence bundle)
            msgspec.json.decode(msgspec.json.encode(example.response), type=returned,
                                strict=True)
            responses += 1
    assert decoded > 40
    assert responses > 60


def test_every_write_and_list_uses_the_shared_mechanisms(client: Client) -> None:
    doc = _doc(client)
    exempt = {p for p, _ in EXEMPT_FROM_IDEMPOTENCY}
    bounded = {p for p, _ in BOUNDED}
    for path, method, op in _operations(doc):
        names = {p["name"] for p in op.get("parameters", [])}
        if method == "post" and path not in exempt:
            assert "Idempotency-Key" in names, f"POST {path} ignores Idempotency-Key"
        if method in ("put", "patch", "delete"):
            assert "If-Match" in names, f"{method.upper()} {path} has no If-Match"
        if method in ("put", "patch", "delete"):
            assert "Idempotency-Key" in names, f"{method.upper()} {path} ignores Idempotency-Key"
        if method == "get" and _returns_list(op) and path not in bounded:
            assert names & PAGING, f"GET {path} returns a list without a cursor"


# Writes that store no domain event, so have no stream or receipt: webhook subscriptions are
# integration plumbing kept in their own tables (docs/api.md, "Write responses"), and tokens
# are issued, not recorded.
NOT_EVENT_SOURCED = ("/api/v1/webhooks", "/api/v1/auth/")


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_write_answers_with_one_shape(client: Client) -> None:
    """Every write's answer starts the same: ``stream_id``, ``version`` and ``receipt``, all
    required; whatever else a write says comes after them (issue 16: one write shape)."""
    doc = _doc(client)
    checked = 0
    for path, method, op in _operations(doc):
        if method == "get" or path.startswith(NOT_EVENT_SOURCED):
            continue
        answers = [(code, r) for code, r in op["responses"].items() if code.startswith("2")]
        assert answers, f"{method.upper()} {path} documents no success"
        for code, answer in answers:
            media = answer.get("content", {}).get("application/json")
            assert media, f"{method.upper()} {path} {code} answers no JSON"
            schema = _schema(doc, media["schema"])
            first = list(schema.get("properties", {}))[:3]
            assert first == ["stream_id", "version", "receipt"], (method, path, first)
            assert {"stream_id", "version", "receipt"} <= set(schema.get("required", [])), (
                method, path)
            checked += 1
    assert checked >= 40


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
