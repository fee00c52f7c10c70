"""责任承诺考实 through HTTP on both stores: a unit publishes its commitments (another unit
cannot), each target names cadres of the unit and attributes a 共绩 once; the public reads every
unit's commitments without a single achieved value or score; amendments show as history; a
challenge becomes a case; the assessment team's achievement shows on the cadre's card."""

from __future__ import annotations

import json
from typing import Any

from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import (
    BASE,
    CADRES,
    SCHEME,
    UNITS,
    Client,
    People,
    ok,
    refused,
)

C = f"{BASE}/commitments"
# The tests' clock reads 2026-03-01, after 31 March 2025: the scheme gives this cycle a later day.
LATE_SCHEME = {**SCHEME, "commitments": {"due": "2026-03-31"}}
JOBS = {"code": "JY-1", "measure": "新增城镇就业", "unit_of_measure": "人", "target_value": "1200",
        "responsible": ["P1", "D1"]}
SHARED = {"code": "ZS-2", "measure": "招商引资到位资金", "unit_of_measure": "万元",
          "target_value": "50000", "responsible": ["P1"], "partners": ["E2"],
          "shares": {"E1": "0.7", "E2": "0.3"}}


def frozen(client: Client, services: Services, who: People) -> None:
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    ok(client.post("/api/v1/cycles", json={"year": 2025}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=LATE_SCHEME, headers={**who.org, "If-Match": etag}),
       200)
    services.follower.catch_up()
    ok(client.post(f"{BASE}/roster", json={}, headers=who.org))
    ok(client.post(f"{BASE}/freeze", json={}, headers=who.org))


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_a_unit_publishes_and_the_public_reads_without_scores(client: Client,
                                                              services: Services) -> None:
    who = People(services)
    frozen(client, services, who)
    written = ok(client.post(f"{C}/E1", json={"targets": [JOBS, SHARED]},
                             headers={**who.p1, "Idempotency-Key": "c-1"}))
    assert written["receipt"][0]["topic"] == "kaoping/UnitCommitments.Published.v1"
    # another unit's principal cannot publish for E1 (nor for a unit already published)
    refused(client.post(f"{C}/E3", json={"targets": [{**JOBS, "responsible": ["P3"]}]},
                        headers=who.p1), 403, "commitment.own-unit")
    refused(client.post(f"{C}/E1", json={"targets": [JOBS]}, headers=who.p3), 403,
            "commitment.own-unit")
    # a cadre of another unit, and shares that do not sum to 1, are refused, naming the field
    body = refused(client.post(f"{C}/E3", json={"targets": [{**JOBS, "responsible": ["P1"]}]},
                               headers=who.p3), 422, "commitment.responsible-in-unit")
    assert body["field"] == "targets[0].responsible"
    refused(client.post(f"{C}/E3", json={"targets": [  # shares for a unit not a partner
        {**SHARED, "responsible": ["P3"], "shares": {"E3": "0.7", "E1": "0.3"}}]},
        headers=who.p3), 422, "commitment.attribution")
    refused(client.post(f"{C}/E3", json={"targets": [  # shares without partners
        {**SHARED, "responsible": ["P3"], "shares": {"E3": "1"}, "partners": []}]},
        headers=who.p3), 422, "commitment.attribution")
    body = refused(client.post(f"{C}/E3", json={"targets": [
        {**SHARED, "responsible": ["P3"], "shares": {"E3": "0.7", "E1": "0.2"},
         "partners": ["E1"]}]}, headers=who.p3), 422, "commitment.attribution-sums-to-one")
    assert body["field"] == "targets[0].shares"
    # the organizer may enter E2's commitments on its behalf (recorded)
    ok(client.post(f"{C}/E2", json={"targets": [{**JOBS, "responsible": ["P2"]}]},
                   headers=who.org))
    services.follower.catch_up()
    listing = ok(client.get(C), 200)  # no credentials: public
    assert [(u["unit"], u["on_behalf"]) for u in listing["units"]] == [
        ("E1", False), ("E2", True)]
    e1 = ok(client.get(f"{C}/E1"), 200)
    assert [t["code"] for t in e1["targets"]] == ["JY-1", "ZS-2"]
    assert e1["targets"][1]["shares"] == {"E1": "0.7", "E2": "0.3"}
    refused(client.get(f"{C}/E3"), 404, "commitment.exists")
    # achievement, completion and scores are never in the public read, even once assessed
    ok(client.post(f"{BASE}/announcement", json={
        "team_members": ["周某"], "starts_on": "2025-12-01", "ends_on": "2026-01-10",
        "hotline": "0371-12380"}, headers=who.org))
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))
    refused(client.post(f"{C}/E1/targets/JY-1/achievement",
                        json={"achieved": "1265", "evidence": "统计年报"}, headers=who.p1),
            403, "role")
    # the assessment team's input: once E1's team is assigned, only its members; never a
    # principal of the role acting as a cadre (here E1's own principal)
    ok(client.post(f"{BASE}/subjects/team:E1/team", json={"members": ["T1"], "leader": "T1"},
                   headers=who.org))
    achieved = {"achieved": "1265", "evidence": "统计年报"}
    refused(client.post(f"{C}/E1/targets/JY-1/achievement", json=achieved, headers=bearer(
        services, Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, "T9")), 403,
        "team.assigned-member")
    refused(client.post(f"{C}/E1/targets/JY-1/achievement", json=achieved, headers=bearer(
        services, Role.ASSESSMENT_TEAM, IdentityKind.CADRE, "P1")), 403, "rater.identity")
    ok(client.post(f"{C}/E1/targets/JY-1/achievement", json=achieved, headers=who.team))
    public = ok(client.get(C), 200)
    assert not _keys(public) & {"achieved", "completion", "score", "credit", "composite"}
    assert "1265" not in json.dumps(public)
    # the responsible cadre's card shows the target, with their unit's credit
    card = ok(client.get(f"{BASE}/subjects/cadre:D1/explain", headers=who.org), 200)
    assert [(t["unit"], t["code"], t["achieved"], t["completion"], t["credit"])
            for t in card["commitments"]] == [("E1", "JY-1", "1265", "1", "1")]
    team = ok(client.get(f"{BASE}/subjects/team:E2/explain", headers=who.org), 200)
    assert [(t["unit"], t["code"], t["credit"]) for t in team["commitments"]] == [
        ("E1", "ZS-2", "0.3"), ("E2", "JY-1", "1")]  # the 共绩 once, at E2's share


def test_amendments_are_public_history_and_a_challenge_is_a_case(client: Client,
                                                                 services: Services) -> None:
    who = People(services)
    frozen(client, services, who)
    ok(client.post(f"{C}/E1", json={"targets": [JOBS]}, headers=who.p1))
    refused(client.post(f"{C}/E1/amendments", json={
        "code": "JY-1", "target": {**JOBS, "target_value": "1300"}, "reason": "调增"},
        headers=who.p3), 403, "commitment.own-unit")
    ok(client.post(f"{C}/E1/amendments", json={
        "code": "JY-1", "target": {**JOBS, "target_value": "1300"},
        "reason": "市政府下达任务调增"}, headers=who.p1))
    e1 = ok(client.get(f"{C}/E1"), 200)
    assert e1["targets"][0]["target_value"] == "1300"
    (amendment,) = e1["amendments"]
    assert (amendment["change"], amendment["before"]["target_value"], amendment["reason"]) == (
        "changed", "1200", "市政府下达任务调增")
    citizen = bearer(services, Role.LEADER, IdentityKind.CADRE, "P2")
    case = ok(client.post(f"{C}/E1/targets/JY-1/challenges",
                          json={"summary": "就业人数含往年已统计人员"},
                          headers={**citizen, "Idempotency-Key": "ch-1"}))
    refused(client.post(f"{C}/E1/targets/XX/challenges", json={"summary": "无此目标"},
                        headers=citizen), 422, "commitment.target-published")
    assert ok(client.get(f"{C}/E1"), 200)["challenges"] == {"JY-1": 1}
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    services.follower.catch_up()
    found = ok(client.get(f"/api/v1/cases/{case['stream_id']}", headers=intake), 200)
    assert (found["channel"], found["subjects"], found["reporter"]) == (
        "challenge", ["team:E1"], "cadre:P2")
    assert "E1/JY-1" in found["summary"]
    # the public history and the public feed never name who challenged
    assert "P2" not in json.dumps(ok(client.get(C), 200))
    feed = ok(client.get("/api/v1/events?after=-1&limit=500", headers=who.p3), 200)
    challenged = [e for e in feed["items"]
                  if e["type"] == "kaoping.unitcommitments.challenged.v1"]
    assert challenged and all("P2" not in json.dumps(e) for e in challenged)
    assert not [e for e in feed["items"] if e["type"].startswith("kaoping.case.")]


def test_intake_enters_an_anonymous_challenge_with_a_follow_up_code(
        client: Client, services: Services) -> None:
    """A challenge by hotline or letter, anonymous: intake enters it on the target; the answer
    carries a follow-up code (shown once, replayed to the same Idempotency-Key), the case keeps
    no identity, and the challenger follows it with the code alone."""
    who = People(services)
    frozen(client, services, who)
    ok(client.post(f"{C}/E1", json={"targets": [JOBS]}, headers=who.p1))
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    headers = {**intake, "Idempotency-Key": "anon-1"}
    body = {"summary": "就业人数含往年已统计人员"}
    first = ok(client.post(f"{C}/E1/targets/JY-1/challenges", json=body, headers=headers))
    code = first["follow_up_code"]
    assert code and first["case_id"] == first["stream_id"]
    again = client.post(f"{C}/E1/targets/JY-1/challenges", json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["follow_up_code"] == code
    assert again.json()["case_id"] == first["case_id"]
    services.follower.catch_up()
    case = ok(client.get(f"/api/v1/cases/{first['case_id']}", headers=intake), 200)
    assert (case["channel"], case["reporter"]) == ("challenge", None)
    assert ok(client.get(f"/api/v1/reports/status?code={code}"), 200)["state"] == "received"
    assert ok(client.get(f"{C}/E1"), 200)["challenges"] == {"JY-1": 1}
    named = ok(client.post(f"{C}/E1/targets/JY-1/challenges",
                           json={**body, "reporter": "王某（来信）"}, headers=intake))
    assert named["follow_up_code"] is None
    # a signed-in challenger is the reporter: naming someone else is refused
    refused(client.post(f"{C}/E1/targets/JY-1/challenges", json={**body, "reporter": "张三"},
                        headers=who.p3), 422, "commitment.challenge-reporter")
    own = ok(client.post(f"{C}/E1/targets/JY-1/challenges", json=body, headers=who.p3))
    assert own["follow_up_code"] is None


def test_the_survey_rates_a_target_and_the_card_shows_it(client: Client,
                                                         services: Services) -> None:
    who = People(services)
    frozen(client, services, who)
    ok(client.post(f"{C}/E1", json={"targets": [JOBS]}, headers=who.p1))
    ok(client.post(f"{BASE}/announcement", json={
        "team_members": ["周某"], "starts_on": "2025-12-01", "ends_on": "2026-01-10",
        "hotline": "0371-12380"}, headers=who.org))
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))
    rate = f"{C}/E1/targets/JY-1/satisfaction"
    refused(client.post(rate, json={"session": "QZRK-1", "satisfaction": "0.5"},
                        headers=who.team), 403, "role")
    refused(client.post(rate, json={"session": "QZRK-1", "satisfaction": "-0.1"},
                        headers=who.org), 422, "commitment.satisfaction")
    written = ok(client.post(rate, json={"session": "QZRK-1", "satisfaction": "0.5"},
                             headers=who.org))
    assert written["receipt"][0]["topic"] == "kaoping/UnitCommitments.TargetRated.v1"
    ok(client.post(f"{C}/E1/targets/JY-1/achievement",
                   json={"achieved": "1265", "evidence": "统计年报"}, headers=who.team))
    card = ok(client.get(f"{BASE}/subjects/team:E1/explain", headers=who.org), 200)
    assert [(t["code"], t["satisfaction"], t["counted"], t["completion"])
            for t in card["commitments"]] == [("JY-1", "0.5", False, "1")]
    text = client.get(f"{BASE}/subjects/team:E1/explain?format=text", headers=who.org).text
    assert "群众满意度 0.5 — not counted as 实绩" in text
    # the rate feeds a score: neither the public read nor the public feed carries it
    assert "satisfaction" not in json.dumps(ok(client.get(C), 200))
    feed = ok(client.get("/api/v1/events?after=-1&limit=500", headers=who.p3), 200)
    assert not [e for e in feed["items"] if e["type"].endswith("targetrated.v1")]
