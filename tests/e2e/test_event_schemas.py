"""Every event the demo city sends matches the schema the API publishes for it: the catalogue's
JSON Schema of ``data`` (``/api/v1/events/schemas/{type}``) and the OpenAPI ``webhooks`` entry
for the whole delivered CloudEvent. Subject-file events name their subject (``team:T02``)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
from litestar.testing import TestClient

from service.demo import DemoCity
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer

Client = TestClient[Any]
SUBJECT = re.compile(r"^(team|cadre):[A-Z0-9-]+$")


def _feed(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = -1
    while True:
        resp = client.get(f"/api/v1/events?after={after}&limit=1000", headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        if not body["items"]:
            return items
        after = body["next_after"]


def test_every_demo_event_matches_its_published_schemas(client: Client,
                                                        services: Services) -> None:
    DemoCity(services, units=18, cadres=36, seed=5).run()
    events = _feed(client, bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1"))
    openapi = client.get("/schema/openapi.json").json()
    catalogue = client.get("/api/v1/events/catalogue").json()
    assert events
    data_validators: dict[str, Any] = {}
    for event in events:
        kind = event["type"]
        assert kind in catalogue and kind in openapi["webhooks"], kind
        if kind not in data_validators:
            resp = client.get(event["dataschema"])
            assert resp.status_code == 200, resp.text
            assert resp.json() == catalogue[kind]["schema"]
            data_validators[kind] = jsonschema_rs.validator_for(resp.json())
        errors = [e.message for e in data_validators[kind].iter_errors(event["data"])]
        assert not errors, f"{kind} at {event['position']}: {errors}"
        delivered = openapi["webhooks"][kind]["post"]["requestBody"]["content"]
        envelope = jsonschema_rs.validator_for(delivered["application/json"]["schema"])
        errors = [e.message for e in envelope.iter_errors(event)]
        assert not errors, f"{kind} at {event['position']} (webhook schema): {errors}"


def test_a_subject_files_events_carry_its_code_not_only_a_stream_id(
        client: Client, services: Services) -> None:
    DemoCity(services, units=18, cadres=36, seed=5).run()
    events = _feed(client, bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1"))
    files = [e for e in events if e["type"].startswith("kaoping.subjectfile.")]
    assert {e["type"] for e in files} - {"kaoping.subjectfile.opened.v1"}
    roster = {(year, entry["subject"])
              for year in (2024, 2025)
              for entry in client.get(f"/api/v1/cycles/{year}/roster").json()}
    for event in files:
        data = event["data"]
        assert SUBJECT.match(data["subject"]), data
        assert event["subject"] == data["subject"]
        assert (data["year"], data["subject"]) in roster
    others = [e for e in events if not e["type"].startswith("kaoping.subjectfile.")]
    prefixes = {e["subject"].split(":", 1)[0] for e in others}
    assert {"unit", "cadre", "cycle"} <= prefixes
    assert not [e for e in others if re.fullmatch(r"[0-9a-f-]{36}", e["subject"])]
