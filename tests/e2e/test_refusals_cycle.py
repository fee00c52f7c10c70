"""Issue 7: refusals of the cycle, its inputs and its readers, each over HTTP with its problem
type, rule and field, and with nothing written; the few rules no request can reach are
provoked on the service, asserting the exception's rule."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.cycle import RosterEntry
from domain.errors import Conflict, InvalidInput, NotFound
from domain.scheme import SubjectKind
from service.principals import Identity, IdentityKind, Principal, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import (
    BASE,
    CADRES,
    SCHEME,
    UNITS,
    People,
    Y,
    approve,
    frozen_cycle,
    ok,
    score_everything,
    setup_cycle,
)
from tests.e2e.test_refusals_scheme import log_length, refused_with

Client = TestClient[Any]
ORG = Principal(id="staff:org-1", name="org-1", role=Role.ORGANIZER,
                acts_as=Identity(IdentityKind.STAFF, "org-1"), via="token")


@pytest.fixture
def scoring(client: Client, services: Services) -> People:
    who = People(services)
    setup_cycle(client, services, who)
    return who


def subject_version(services: Services, subject: str) -> int:
    return services.evaluation.file(Y, subject).version


# --- the cycle itself ----------------------------------------------------------------------

def test_a_cycle_opens_once(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    before = log_length(services)
    refused_with(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org), 409,
                 "conflict", "cycle.unique", "year")
    assert log_length(services) == before
    assert services.evaluation.cycle(Y).version == 1


def test_an_unknown_cycle_is_not_found(client: Client, services: Services) -> None:
    who = People(services)
    refused_with(client.get(f"/api/v1/cycles/{Y}"), 404, "not-found", "cycle.exists", "year")
    refused_with(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org,
                                                                    "If-Match": '"1"'}),
                 404, "not-found", "cycle.exists", "year")
    assert log_length(services) == 0


def test_freezing_needs_a_scheme_and_a_roster(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    before = log_length(services)
    refused_with(client.post(f"{BASE}/freeze", json={}, headers=who.org), 409, "conflict",
                 "cycle.freeze-needs-scheme-and-roster")
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}), 200)
    refused_with(client.post(f"{BASE}/freeze", json={}, headers=who.org), 409, "conflict",
                 "cycle.freeze-needs-scheme-and-roster")  # a scheme, but no roster yet
    assert log_length(services) == before + 1
    assert ok(client.get(BASE), 200)["phase"] == "setup"


def test_the_roster_lists_each_subject_once(services: Services) -> None:
    """The roster route builds entries from unique unit and cadre codes; the rule guards the
    service below it."""
    services.evaluation.open_cycle(ORG, Y)
    entry = RosterEntry("team:E1", "E1", "发改局", SubjectKind.TEAM, "economic-management",
                        "E1")
    with pytest.raises(InvalidInput) as caught:
        services.evaluation.set_roster(ORG, Y, [entry, entry])
    assert (caught.value.rule, caught.value.field) == ("roster.unique", "entries")
    assert services.evaluation.cycle(Y).roster == []
    assert services.evaluation.cycle(Y).version == 1


def test_results_need_a_scheme(services: Services) -> None:
    """No request reaches scoring without a scheme; the service refuses to score without one."""
    services.evaluation.open_cycle(ORG, Y)
    with pytest.raises(Conflict) as caught:
        services.evaluation.pools(services.evaluation.cycle(Y))
    assert caught.value.rule == "cycle.scheme-set"


def test_a_subject_has_no_file_before_scoring_opens(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    with pytest.raises(NotFound) as caught:
        services.evaluation.file(Y, "team:E1")
    assert (caught.value.rule, caught.value.field) == ("subject.file-exists", "subject")


def test_announcements_are_complete_and_read_once_made(client: Client,
                                                       services: Services) -> None:
    who = People(services)
    frozen_cycle(client, services, who, leaders=False)
    refused_with(client.get(f"{BASE}/announcement"), 404, "not-found", "announcement.exists",
                 "year")
    good = {"team_members": ["组长 周某"], "starts_on": "2025-12-01", "ends_on": "2026-01-10",
            "hotline": "12380"}
    before = log_length(services)
    for bad in ({**good, "team_members": []}, {**good, "hotline": "   "},
                {**good, "ends_on": "2025-11-30"}):
        refused_with(client.post(f"{BASE}/announcement", json=bad, headers=who.org), 422,
                     "invalid-input", "announcement.complete", "team_members")
    assert log_length(services) == before
    assert services.evaluation.cycle(Y).announcement is None


# --- inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "rule", "field"), [
    ("analysis", {"dimension": "workload", "score": 80}, "analysis.dimension", "dimension"),
    ("inspections/notes", {"activity": "gossip", "notes": "n"}, "inspection.activity",
     "activity"),
    ("targets/assessments", {"target": "GDP +7%", "achieved": True, "evidence": "e"},
     "commitment.target-published", "target"),
    ("targets", {"targets": []}, "commitment.targets", "targets"),
    ("targets", {"targets": ["a", "a"]}, "commitment.targets", "targets"),
    ("sanctions/admonishment/lift", {"reason": "r"}, "sanction.in-force", "code"),
    ("adjustments/nope/approval", {}, "adjustment.proposed", "adjustment"),
    ("indicators", {"indicator": "nope", "value": "1", "score": 80, "evidence": "x"},
     "scheme.indicator-defined", "indicator"),
])
def test_bad_inputs_on_a_team_file(client: Client, services: Services, scoring: People,
                                   path: str, body: dict[str, Any], rule: str,
                                   field: str) -> None:
    who = {"analysis": scoring.team, "inspections/notes": scoring.team,
           "targets/assessments": scoring.team, "indicators": scoring.f1}.get(path, scoring.org)
    version = subject_version(services, "team:E1")
    before = log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:E1/{path}", json=body, headers=who), 422,
                 "invalid-input", rule, field)
    assert log_length(services) == before
    assert subject_version(services, "team:E1") == version


@pytest.mark.parametrize("delta", ["0", "100.5", "-101"])  # "Infinity": test_input_hygiene
def test_an_adjustment_moves_the_score_by_a_non_zero_amount_within_100(
        client: Client, services: Services, scoring: People, delta: str) -> None:
    before = log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:E1/adjustments", headers=scoring.org, json={
        "adjustment": "a1", "delta": delta, "reason": "r", "basis": "b", "evidence": "e"}),
        422, "invalid-input", "adjustment.delta", "delta")
    assert log_length(services) == before
    assert services.evaluation.file(Y, "team:E1").proposed == {}


def test_an_adjustment_id_is_proposed_once(client: Client, services: Services,
                                           scoring: People) -> None:
    body = {"adjustment": "a1", "delta": "2", "reason": "r", "basis": "b", "evidence": "e"}
    ok(client.post(f"{BASE}/subjects/team:E1/adjustments", json=body, headers=scoring.org))
    version, before = subject_version(services, "team:E1"), log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:E1/adjustments",
                             json={**body, "delta": "-5"}, headers=scoring.org), 409,
                 "conflict", "adjustment.unique", "adjustment")
    assert (subject_version(services, "team:E1"), log_length(services)) == (version, before)
    assert services.evaluation.file(Y, "team:E1").proposed["a1"][0] == Decimal(2)


def test_targets_are_a_teams_and_published_once(client: Client, services: Services,
                                                scoring: People) -> None:
    before = log_length(services)
    refused_with(client.post(f"{BASE}/subjects/cadre:P1/targets", json={"targets": ["t"]},
                             headers=scoring.org), 422, "invalid-input",
                 "commitment.team-only", "subject")
    assert log_length(services) == before
    ok(client.post(f"{BASE}/subjects/team:E1/targets", json={"targets": ["t1", "t2"]},
                   headers=scoring.org))
    version, before = subject_version(services, "team:E1"), log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:E1/targets", json={"targets": ["t3"]},
                             headers=scoring.org), 409, "conflict",
                 "commitment.published-once", "targets")
    assert (subject_version(services, "team:E1"), log_length(services)) == (version, before)
    assert list(services.evaluation.file(Y, "team:E1").targets) == ["t1", "t2"]


def test_inputs_name_a_subject_of_the_roster(client: Client, services: Services,
                                             scoring: People) -> None:
    before = log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:ZZ/leader-reviews", json={"score": 90},
                             headers=scoring.l1), 422, "invalid-input",
                 "cycle.subject-in-roster", "subject")
    assert log_length(services) == before


def test_a_leader_review_comes_from_a_leader_or_cadre_identity(
        client: Client, services: Services, scoring: People) -> None:
    staff_as_leader = bearer(services, Role.LEADER, IdentityKind.STAFF, "s9")
    before = log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:E1/leader-reviews", json={"score": 90},
                             headers=staff_as_leader), 403, "forbidden", "rater.identity")
    assert log_length(services) == before
    assert services.evaluation.file(Y, "team:E1").leader_scores == {}


def test_a_department_does_not_verify_its_own_unit(client: Client, services: Services) -> None:
    """An indicator owned by E1 applies to its group, E1 included: E1 may not score itself."""
    who = People(services)
    scheme = copy.deepcopy(SCHEME)
    scheme["indicators"] = [{**SCHEME["indicators"][0], "owner": "E1"}]
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=scheme, headers={**who.org, "If-Match": etag}), 200)
    services.follower.catch_up()
    for step in ("roster", "freeze", "scoring"):
        ok(client.post(f"{BASE}/{step}", json={}, headers=who.org))
    body = {"indicator": "growth", "value": "7%", "score": 90, "evidence": "x"}
    before = log_length(services)
    refused_with(client.post(f"{BASE}/subjects/team:E1/indicators", json=body,
                             headers=who.e1), 403, "forbidden", "rater.own-unit")
    assert log_length(services) == before
    assert services.evaluation.file(Y, "team:E1").version == 1
    ok(client.post(f"{BASE}/subjects/team:E2/indicators", json=body, headers=who.e1))


def test_a_stale_file_is_not_saved_over_a_newer_one(client: Client, services: Services,
                                                    scoring: People,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers load the same version; the second save is refused, not merged."""
    stale = services.evaluation.file(Y, "team:E1")
    ok(client.post(f"{BASE}/subjects/team:E1/analysis",
                   json={"dimension": "economy", "score": 80}, headers=scoring.team))
    before = log_length(services)
    monkeypatch.setattr(services.evaluation, "file", lambda *_a, **_k: stale)
    refused_with(client.post(f"{BASE}/subjects/team:E1/analysis",
                             json={"dimension": "economy", "score": 10},
                             headers=scoring.team), 409, "conflict", "concurrent-change")
    monkeypatch.undo()
    assert log_length(services) == before
    assert services.evaluation.file(Y, "team:E1").analysis == {"economy": Decimal(80)}


# --- results, their readers and the review --------------------------------------------------

def test_results_before_scoring_opens_and_before_the_read_model(
        client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    refused_with(client.get(f"{BASE}/results", headers=who.org), 409, "conflict",
                 "results.scoring-open")
    refused_with(client.get(f"{BASE}/subjects/team:E1/result", headers=who.org), 409,
                 "conflict", "results.scoring-open")


def test_a_subject_result_waits_for_the_read_model(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)  # files opened; the results view has not followed yet
    refused_with(client.get(f"{BASE}/subjects/team:E1/result", headers=who.org), 404,
                 "not-found", "results.subject", "subject")
    services.follower.catch_up()
    ok(client.get(f"{BASE}/subjects/team:E1/result", headers=who.org), 200)


@pytest.mark.parametrize(("path", "rule"), [
    # A card's detail before publication: the card gate (docs/evaluation.md, "Who may read").
    ("subjects/team:E1/explain", "results.published"),
    ("subjects/team:E1/diff?from=1&to=2", "results.published"),
    ("subjects/team:E1/history", "results.published"),
    ("subjects/team:E1/evidence", "evidence.reader"),
    ("exports/results", "export.reader"),
])
def test_readers_of_evidence_and_exports(client: Client, services: Services, scoring: People,
                                         path: str, rule: str) -> None:
    before = log_length(services)
    refused_with(client.get(f"{BASE}/{path}", headers=scoring.l1), 403, "forbidden", rule)
    assert log_length(services) == before


def test_evidence_bundles_are_of_published_results(client: Client, services: Services,
                                                   scoring: People) -> None:
    before = log_length(services)
    refused_with(client.get(f"{BASE}/subjects/team:E1/evidence", headers=scoring.org), 409,
                 "conflict", "evidence.published")
    # Nothing was read, so no access is recorded (a bundle's read is recorded once it exists;
    # building it signs a checkpoint, which adds no event).
    assert log_length(services) == before


def test_explain_as_of_before_the_scheme_or_the_files(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    no_scheme = log_length(services) - 1  # positions count from 0
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}), 200)
    services.follower.catch_up()
    for step in ("roster", "freeze"):
        ok(client.post(f"{BASE}/{step}", json={}, headers=who.org))
    no_files = log_length(services) - 1
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))
    url = f"{BASE}/subjects/team:E1/explain"
    refused_with(client.get(url, params={"as_of": str(no_scheme)}, headers=who.org), 404,
                 "not-found", "as-of.cycle", "as_of")
    refused_with(client.get(url, params={"as_of": str(no_files)}, headers=who.org), 404,
                 "not-found", "as-of.file", "as_of")
    ok(client.get(url, headers=who.org), 200)


def test_reviews_name_their_kind_and_decisions_a_filed_review(
        client: Client, services: Services, scoring: People) -> None:
    score_everything(client, scoring)
    ok(client.post(f"{BASE}/seal", json={}, headers=scoring.org))
    notified = services.clock.now().date().isoformat()
    approve(client, scoring)
    ok(client.post(f"{BASE}/publication", json={"notified_on": notified}, headers=scoring.org))
    version, before = subject_version(services, "cadre:P3"), log_length(services)
    refused_with(client.post(f"{BASE}/subjects/cadre:P3/reviews",
                             json={"kind": "complaint", "reason": "不服"}, headers=scoring.p3),
                 422, "invalid-input", "review.kind", "kind")
    refused_with(client.post(f"{BASE}/subjects/cadre:P3/reviews/review/decision",
                             json={"reason": "维持"}, headers=scoring.committee),
                 422, "invalid-input", "review.filed", "kind")
    assert (subject_version(services, "cadre:P3"), log_length(services)) == (version, before)
    assert services.evaluation.file(Y, "cadre:P3").requests == {}
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews", json={"kind": "review", "reason": "不服"},
                   headers=scoring.p3))
    version, before = subject_version(services, "cadre:P3"), log_length(services)
    refused_with(client.post(f"{BASE}/subjects/cadre:P3/reviews",
                             json={"kind": "review", "reason": "再次"}, headers=scoring.p3),
                 409, "conflict", "review.once", "kind")
    assert (subject_version(services, "cadre:P3"), log_length(services)) == (version, before)
