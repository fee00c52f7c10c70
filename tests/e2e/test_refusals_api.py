"""Issue 7: refusals of the API's mechanisms (If-Match, min_position, the event catalogue,
webhook deliveries) and of the reference data (units, cadres), each over HTTP with its problem
type, rule and field, and with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from service.runtime import Services
from service.webhooks import Webhooks
from tests.e2e.test_cycle_scenario import BASE, CADRES, UNITS, People, ok, setup_cycle
from tests.e2e.test_refusals_scheme import log_length, refused_with

Client = TestClient[Any]
SUBS = "/api/v1/webhooks/subscriptions"


@pytest.mark.parametrize("header", ["3", "W/\"3\"", '"three"', "*", '"-1"'])
def test_if_match_must_name_a_version(client: Client, services: Services, header: str) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": 2025}, headers=who.org))
    before = log_length(services)
    body = refused_with(client.put(f"{BASE}/scheme", json={"cycle": 2025, "pools": []},
                                   headers={**who.org, "If-Match": header}),
                        400, "validation", "if-match.format", "If-Match")
    assert body["errors"] == [{"field": "If-Match", "rule": "if-match.format",
                               "message": body["detail"].removeprefix("If-Match: ")}]
    assert log_length(services) == before


def test_min_position_beyond_the_head_is_a_bad_argument(client: Client,
                                                        services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    services.follower.catch_up()
    head = log_length(services) - 1
    url = f"{BASE}/subjects/team:E1/result"
    refused_with(client.get(url, params={"min_position": head + 1}, headers=who.org), 400,
                 "validation", "min-position.beyond-head", "min_position")
    ok(client.get(url, params={"min_position": head}, headers=who.org), 200)


def test_an_unknown_event_type_has_no_schema(client: Client) -> None:
    refused_with(client.get("/api/v1/events/schemas/kaoping.NoSuchThing.v1"), 404,
                 "not-found", "events.type", "type_name")
    catalogue = ok(client.get("/api/v1/events/catalogue"), 200)
    assert catalogue  # the known types are listed; the refused one is not among them


def test_redelivering_an_unknown_delivery(client: Client, services: Services,
                                          organizer: dict[str, str]) -> None:
    services.webhooks = Webhooks(services.db, services.store.mapper,
                                 services.settings.with_overrides(webhook_allow_loopback=True),
                                 services.clock)
    sub = ok(client.post(SUBS, json={"url": "http://127.0.0.1:9/hooks"},
                         headers=organizer))["subscription"]["id"]
    for delivery in (0, 2**63, 12345):  # out of any id's range, and simply not there
        refused_with(client.post(f"{SUBS}/{sub}/deliveries/{delivery}/redelivery",
                                 headers=organizer), 404, "not-found",
                     "webhook.delivery.exists")
    deliveries = ok(client.get(f"{SUBS}/{sub}/deliveries", headers=organizer), 200)
    assert deliveries["items"] == []


def test_an_import_refuses_a_cadre_code_already_registered(client: Client,
                                                           services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    before = log_length(services)
    again = {"code": "P1", "name": "另一个张一", "unit_code": "E2", "role": "deputy",
             "since": "2024-01-01"}
    twice = {**again, "code": "Q7"}
    body = refused_with(client.post("/api/v1/imports", json={"cadres": [again, twice, twice]},
                                    headers=who.org), 422, "invalid-input", "import.rows",
                        "cadres[1].code")
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [
        ("cadres[1].code", "cadre.code-unique"), ("cadres[3].code", "cadre.code-unique")]
    assert log_length(services) == before


def test_a_post_change_changes_the_post(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    services.follower.catch_up()
    cadre = ok(client.get("/api/v1/cadres/P1", headers=who.org), 200)
    before = log_length(services)
    refused_with(client.patch("/api/v1/cadres/P1", headers={
        **who.org, "If-Match": f'"{cadre["version"]}"'}, json={
        "unit_code": "E1", "role": "principal", "since": "2025-01-01", "reason": "r"}),
        422, "invalid-input", "cadre.post-changes", "unit_code")
    assert log_length(services) == before
    assert services.reference.cadre("P1").version == cadre["version"]


def test_a_rename_changes_the_name(client: Client, services: Services) -> None:
    who = People(services)
    unit = ok(client.post("/api/v1/units", json=UNITS[0], headers=who.org))["unit"]
    etag = client.get(f"/api/v1/units/{unit['id']}").headers["etag"]
    before = log_length(services)
    refused_with(client.patch(f"/api/v1/units/{unit['id']}", json={
        "name": UNITS[0]["name"], "reason": "r"}, headers={**who.org, "If-Match": etag}),
        422, "invalid-input", "unit.rename-changes-name", "name")
    assert log_length(services) == before
    assert client.get(f"/api/v1/units/{unit['id']}").headers["etag"] == etag
