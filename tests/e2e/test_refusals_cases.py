"""Issue 7: refusals of report-line cases, over HTTP with their problem documents and with
nothing written; below the API where the request body already bounds the input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.cases import Channel, case_id
from domain.errors import InvalidInput
from service.principals import Identity, IdentityKind, Principal, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import People, frozen_cycle, ok
from tests.e2e.test_refusals_scheme import log_length, refused_with

Client = TestClient[Any]
INTAKE = Principal(id="person:staff:xf-1", name="xf-1", role=Role.INTAKE,
                   acts_as=Identity(IdentityKind.STAFF, "xf-1"), via="token")


class Desk:
    def __init__(self, client: Client, services: Services) -> None:
        frozen_cycle(client, services, People(services))  # reports name subjects of a cycle
        self.intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
        self.inv = bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "inv-1")
        self.supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")
        for person in ("inv-1", "inv-2"):
            ok(client.post("/api/v1/investigators", headers=self.supervisor, json={
                "investigator": f"person:staff:{person}", "name": person}))
        self.case = ok(client.post("/api/v1/cases", headers=self.intake, json={
            "channel": "hotline", "year": 2025, "subjects": ["team:E1"],
            "summary": "反映发改局虚报项目进度"}))["case_id"]
        self.url = f"/api/v1/cases/{self.case}"


@pytest.fixture
def desk(client: Client, services: Services) -> Desk:
    return Desk(client, services)


def test_a_report_names_a_subject(client: Client, services: Services) -> None:
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    refused_with(client.post("/api/v1/cases", headers=intake, json={
        "channel": "hotline", "year": 2025, "subjects": [], "summary": "s"}), 422,
        "invalid-input", "case.subjects", "subjects")
    assert log_length(services) == 0


def test_a_challenge_is_not_taken_by_the_report_line(client: Client,
                                                     services: Services) -> None:
    """A challenge (channel ``challenge``) is always linked to a published target: it comes
    only through the commitments route, never as a free-standing report."""
    frozen_cycle(client, services, People(services))
    before = log_length(services)
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    refused_with(client.post("/api/v1/cases", headers=intake, json={
        "channel": "challenge", "year": 2025, "subjects": ["team:E1"],
        "summary": "就业目标完成数虚报"}), 422, "invalid-input",
        "case.challenge-via-commitments", "channel")
    assert log_length(services) == before


@pytest.mark.parametrize("year", [1999, 2101])
def test_a_report_year_is_bounded_below_the_api(services: Services, year: int) -> None:
    """The request body's Year type refuses these first; the service refuses them too."""
    with pytest.raises(InvalidInput) as caught:
        services.cases.report(INTAKE, channel=Channel.HOTLINE, year=year, subjects=["team:E1"],
                              summary="s", reporter=None)
    assert (caught.value.rule, caught.value.field) == ("case.year", "year")
    assert log_length(services) == 0


def test_an_unknown_case_and_an_unknown_follow_up_code(client: Client,
                                                       services: Services) -> None:
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    refused_with(client.get(f"/api/v1/cases/{uuid.uuid4()}", headers=intake), 404,
                 "not-found", "case.exists", "case")
    refused_with(client.get("/api/v1/reports/status", params={"code": "no-such-code"}), 404,
                 "not-found", "report.code", "code")


def test_case_files_are_for_their_readers_only(client: Client, services: Services,
                                               desk: Desk) -> None:
    leader = bearer(services, Role.LEADER, IdentityKind.LEADER, "L1")
    for headers in (leader, desk.inv):  # inv-1 is not (yet) assigned to the case
        refused_with(client.get(desk.url, headers=headers), 403, "forbidden", "case.readers")
    ok(client.get(desk.url, headers=desk.intake), 200)


def test_work_needs_an_assigned_open_case(client: Client, services: Services,
                                          desk: Desk) -> None:
    before = log_length(services)
    refused_with(client.post(f"{desk.url}/findings", json={"finding": "f"}, headers=desk.inv),
                 409, "conflict", "case.open")  # reported, not assigned yet
    assert log_length(services) == before
    ok(client.post(f"{desk.url}/assignment", json={"investigator": "person:staff:inv-1"},
                   headers=desk.intake))
    before = log_length(services)
    refused_with(client.post(f"{desk.url}/outcomes", headers=desk.inv, json={
        "kind": "fine", "subject": "team:E1", "reference": "r"}), 422, "invalid-input",
        "case.outcome-kind", "kind")
    refused_with(client.post(f"{desk.url}/outcomes", headers=desk.inv, json={
        "kind": "adjustment", "subject": "team:E2", "reference": "r"}), 422, "invalid-input",
        "case.subject", "subject")
    assert log_length(services) == before
    ok(client.post(f"{desk.url}/closure", json={"conclusion": "c"}, headers=desk.inv))
    before = log_length(services)
    refused_with(client.post(f"{desk.url}/assignment",
                             json={"investigator": "person:staff:inv-2"}, headers=desk.intake),
                 409, "conflict", "case.open")
    refused_with(client.post(f"{desk.url}/findings", json={"finding": "f"}, headers=desk.inv),
                 409, "conflict", "case.open")
    assert log_length(services) == before
    case = services.cases.case(uuid.UUID(desk.case))
    assert (case.findings, case.outcomes, case.investigator) == ([], [], "person:staff:inv-1")


def test_a_case_id_is_a_uuid() -> None:
    assert case_id("6f1c2d3e-0000-4000-8000-000000000001") == uuid.UUID(
        "6f1c2d3e-0000-4000-8000-000000000001")
    with pytest.raises(InvalidInput) as caught:
        case_id("case-17")
    assert (caught.value.rule, caught.value.field) == ("case.id", "case")


def test_a_report_names_subjects_of_the_cycle(client: Client, services: Services,
                                              desk: Desk) -> None:
    before = log_length(services)
    refused_with(client.post("/api/v1/cases", headers=desk.intake, json={
        "channel": "hotline", "year": 2025, "subjects": ["team:E1", "team:ZZ"],
        "summary": "s"}), 422, "invalid-input", "case.subject-unknown", "subjects[1]")
    refused_with(client.post("/api/v1/cases", headers=desk.intake, json={
        "channel": "hotline", "year": 2031, "subjects": ["team:E1"], "summary": "s"}), 422,
        "invalid-input", "case.subject-unknown", "subjects[0]")  # no cycle 2031
    assert log_length(services) == before


def test_cases_go_to_registered_investigators_only(client: Client, services: Services,
                                                   desk: Desk) -> None:
    before = log_length(services)
    refused_with(client.post(f"{desk.url}/assignment", headers=desk.intake,
                             json={"investigator": "person:staff:inv-9"}), 422,
                 "invalid-input", "case.investigator-registered", "investigator")
    refused_with(client.post("/api/v1/investigators", headers=desk.supervisor, json={
        "investigator": "person:staff:inv-1", "name": "again"}), 409, "conflict",
        "investigator.registered-once", "investigator")
    refused_with(client.post("/api/v1/investigators", headers=desk.intake, json={
        "investigator": "person:staff:inv-9", "name": "x"}), 403, "forbidden", "role", None)
    assert log_length(services) == before
    assert services.cases.case(uuid.UUID(desk.case)).investigator is None
