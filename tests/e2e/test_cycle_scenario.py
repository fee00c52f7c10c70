"""A complete cycle through HTTP on both stores, against a table computed by hand; and the abuse
cases of domain-notes §5.4 (items 11–25) that the cycle covers, each refused with a problem
document naming its rule, with nothing stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.subject_file import SubjectFile
from service.clock import FixedClock
from service.ledger.checkpoint import open_checkpoint
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer

Client = TestClient[Any]
Y = 2025
BASE = f"/api/v1/cycles/{Y}"

SCHEME: dict[str, Any] = {
    "cycle": Y,
    "pools": [
        {"group": "economic-management", "kind": "team",
         "weights": {"leader-review": "0.4", "indicators": "0.3", "analysis": "0.3"},
         "bands": [{"grade": "好", "min_score": "90"}, {"grade": "较好", "min_score": "80"},
                   {"grade": "一般", "min_score": "60"}, {"grade": "较差", "min_score": "0"}],
         "quotas": [{"grade": "好", "share": "0.34", "rounding": "floor"}]},
        {"group": "party-government", "kind": "team", "weights": {"leader-review": "1"},
         "bands": [{"grade": "好", "min_score": "90"}, {"grade": "较好", "min_score": "80"},
                   {"grade": "一般", "min_score": "60"}, {"grade": "较差", "min_score": "0"}]},
        *[{"group": "economic-management", "kind": kind, "weights": {"leader-review": "1"},
           "bands": [{"grade": "优秀", "min_score": "90"}, {"grade": "称职", "min_score": "70"},
                     {"grade": "基本称职", "min_score": "60"},
                     {"grade": "不称职", "min_score": "0"}],
           "quotas": [{"grade": "优秀", "share": "0.34", "rounding": "floor"}]}
          for kind in ("principal", "deputy")],
    ],
    "vetoes": [
        {"code": "admonishment", "effect": "cap", "cap_at": "称职", "label": "诫勉"},
        {"code": "open-case", "effect": "no-grade", "reason_code": "5B", "label": "立案未结"},
    ],
    "indicators": [{"code": "growth", "name": "经济增长", "owner": "F1", "weight": "1",
                    "groups": ["economic-management"]}],
}

UNITS = [
    {"code": "E1", "name": "发改局", "kind": "department", "category": "economic-management"},
    {"code": "E2", "name": "工信局", "kind": "department", "category": "economic-management"},
    {"code": "E3", "name": "商务局", "kind": "department", "category": "economic-management"},
    {"code": "F1", "name": "统计局", "kind": "department", "category": "party-government"},
]
CADRES = [
    {"code": "P1", "name": "张一", "unit_code": "E1", "role": "principal", "since": "2020-01-01"},
    {"code": "P2", "name": "王二", "unit_code": "E2", "role": "principal", "since": "2021-03-01"},
    {"code": "P3", "name": "李三", "unit_code": "E3", "role": "principal", "since": "2019-07-01"},
    {"code": "D1", "name": "赵四", "unit_code": "E1", "role": "deputy", "since": "2022-05-01"},
]


class People:
    def __init__(self, services: Services) -> None:
        self.org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
        self.org2 = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-2")
        self.l1 = bearer(services, Role.LEADER, IdentityKind.LEADER, "L1")
        self.l2 = bearer(services, Role.LEADER, IdentityKind.LEADER, "L2")
        self.p1 = bearer(services, Role.LEADER, IdentityKind.CADRE, "P1")
        self.f1 = bearer(services, Role.DEPARTMENT, IdentityKind.DEPARTMENT, "F1")
        self.e1 = bearer(services, Role.DEPARTMENT, IdentityKind.DEPARTMENT, "E1")
        self.team = bearer(services, Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, "T1")
        self.committee = bearer(services, Role.COMMITTEE, IdentityKind.STAFF, "c-1")
        self.appeals = bearer(services, Role.APPEAL_BODY, IdentityKind.STAFF, "sw-1")
        self.intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
        self.p3 = bearer(services, Role.LEADER, IdentityKind.CADRE, "P3")


def ok(resp: Any, status: int = 201) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def refused(resp: Any, status: int, rule: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["rule"] == rule, body
    return body


def _events(services: Services) -> int:
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def frozen_cycle(client: Client, services: Services, who: People, *,
                 leaders: bool = True) -> None:
    """Reference data, the cycle, its scheme and roster, frozen (before the announcement)."""
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    for code in ("L1", "L2") if leaders else ():
        ok(client.post("/api/v1/leaders", json={"code": code, "name": code}, headers=who.org))
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}), 200)
    services.follower.catch_up()
    ok(client.post(f"{BASE}/roster", json={}, headers=who.org))
    ok(client.post(f"{BASE}/freeze", json={}, headers=who.org))


def setup_cycle(client: Client, services: Services, who: People) -> None:
    frozen_cycle(client, services, who)
    ok(client.post(f"{BASE}/announcement", json={
        "team_members": ["考核组长 周某", "组员 吴某"], "starts_on": "2025-12-01",
        "ends_on": "2026-01-10", "hotline": "0371-12380"}, headers=who.org))
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))


def score_everything(client: Client, who: People) -> None:
    def post(subject: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        ok(client.post(f"{BASE}/subjects/{subject}/{path}", json=body, headers=headers))

    leader_scores = {"team:E1": (94, 92), "team:E2": (85, 87), "team:E3": (80, 84),
                     "team:F1": (78, 80), "cadre:P1": (95, 93), "cadre:P2": (96, 96),
                     "cadre:P3": (70, 72)}
    for subject, (s1, s2) in leader_scores.items():
        post(subject, "leader-reviews", {"score": s1}, who.l1)
        post(subject, "leader-reviews", {"score": s2}, who.l2)
    post("cadre:D1", "leader-reviews", {"score": "88"}, who.p1)
    for subject, score, analysis in (("team:E1", 90, 88), ("team:E2", 95, 91),
                                     ("team:E3", 85, 86)):
        post(subject, "indicators", {"indicator": "growth", "value": "7.1%", "score": score,
                                     "evidence": "统计公报"}, who.f1)
        post(subject, "analysis", {"dimension": "economy", "score": analysis}, who.team)
    post("team:E3", "adjustments", {"adjustment": "bonus-1", "delta": "2", "reason": "省级表彰",
                                    "basis": "考核办法第十条", "evidence": "表彰文件"}, who.org)
    post("team:E3", "adjustments/bonus-1/approval", {}, who.org2)
    post("cadre:P2", "sanctions", {"code": "admonishment", "decided_on": "2025-06-01",
                                   "source": "纪委"}, who.org)


def approve(client: Client, who: People, base: str = BASE) -> str:
    """审定: the committee reads the proposal's fingerprint and approves it."""
    proposal = ok(client.get(f"{base}/proposal", headers=who.committee), 200)
    fingerprint: str = proposal["results_fingerprint"]
    ok(client.post(f"{base}/approval", json={
        "results_fingerprint": fingerprint, "minutes_ref": "常委会纪要2026-2",
        "authority": "市委常委会"}, headers=who.committee))
    return fingerprint


def _table(results: dict[str, Any]) -> dict[str, tuple[str, int, str | None, bool]]:
    return {i["result"]["subject"]: (i["result"]["composite"], i["result"]["rank"],
                                     i["result"]["final_grade"], i["result"]["quota_demoted"])
            for i in results["items"]}


def _results(client: Client, services: Services, headers: dict[str, str] | None = None,
             ) -> dict[str, Any]:
    services.follower.catch_up()  # the results read model follows the log
    return ok(client.get(f"{BASE}/results", headers=headers or {}), 200)


def test_a_complete_cycle_matches_the_hand_computed_table(client: Client, services: Services,
                                                          clock: FixedClock) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    announcement = ok(client.get(f"{BASE}/announcement"), 200)  # public, with a checkpoint
    assert announcement["hotline"] == "0371-12380"
    assert {s["subject"] for s in announcement["subjects"]} >= {"team:E1", "cadre:P1"}
    checkpoint = open_checkpoint(announcement["checkpoint"].encode(), [services.signer.vkey])
    assert checkpoint.size > 0
    score_everything(client, who)
    refused(client.get(f"{BASE}/results"), 403, "results.published")  # not public yet
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))

    # Hand computation (weights 0.4 leader / 0.3 indicators / 0.3 analysis for the teams):
    #   E1: 0.4*(94+92)/2 + 0.3*90 + 0.3*88 = 37.2 + 27.0 + 26.4        = 90.60 → 好
    #   E2: 0.4*(85+87)/2 + 0.3*95 + 0.3*91 = 34.4 + 28.5 + 27.3        = 90.20 → 好, but the
    #       quota of 好 is floor(0.34*3) = 1 and E1 ranks first: demoted to 较好
    #   E3: 0.4*(80+84)/2 + 0.3*85 + 0.3*86 = 32.8 + 25.5 + 25.8 = 84.10, +2 approved → 86.10
    #   F1 (alone in its pool, leader review only): (78+80)/2 = 79.00 → 一般
    #   P1 (95+93)/2 = 94.00 → 优秀; P2 (96+96)/2 = 96.00 → 优秀 capped by 诫勉 to 称职 (so P1
    #   holds the one 优秀 place); P3 (70+72)/2 = 71.00 → 称职; D1 88.00 → 称职.
    expected = {
        "team:E1": ("90.60", 1, "好", False), "team:E2": ("90.20", 2, "较好", True),
        "team:E3": ("86.10", 3, "较好", False), "team:F1": ("79.00", 1, "一般", False),
        "cadre:P2": ("96.00", 1, "称职", False), "cadre:P1": ("94.00", 2, "优秀", False),
        "cadre:P3": ("71.00", 3, "称职", False), "cadre:D1": ("88.00", 1, "称职", False),
    }
    assert _table(_results(client, services, who.org)) == expected

    # Committee (kaoping-score/2): E2 raised to 好 takes the one 好 place first; E1's
    # proposal of 好 is then over the quota and demoted to 较好. A second decision of 好 in
    # the pool would break the quota: refused.
    decision = {"grade": "好", "reason": "群众公认度高", "minutes_ref": "常委会纪要2026-3"}
    ok(client.post(f"{BASE}/subjects/team:E2/decisions", json=decision, headers=who.committee))
    after = _table(_results(client, services, who.org))
    assert after["team:E1"] == ("90.60", 1, "较好", True)  # demoted by the quota
    refused(client.post(f"{BASE}/subjects/team:E1/decisions", json=decision,
                        headers=who.committee), 409, "quota.exceeded")

    notified = clock.now().date().isoformat()
    approve(client, who)
    ok(client.post(f"{BASE}/publication", json={"notified_on": notified}, headers=who.org))
    final = _table(_results(client, services))  # public now
    assert final["team:E1"][2] == "较好"
    assert final["team:E2"][2] == "好"
    one = ok(client.get(f"{BASE}/subjects/team:E2/result"), 200)
    assert one["decided_by_committee"] is True
    cycle = ok(client.get(BASE), 200)
    assert cycle["phase"] == "published"

    # 复核 within 30 days of notification; the 申诉 follows its decision (tests/e2e/
    # test_corrections.py has the deadlines); after 30 + 15 days without one, it is too late.
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews", json={"kind": "review",
                                                              "reason": "不服"}, headers=who.p3))
    clock.advance(timedelta(days=46))
    who = People(services)  # fresh tokens: the clock moved past the old ones' expiry
    refused(client.post(f"{BASE}/subjects/cadre:P3/reviews",
                        json={"kind": "appeal", "reason": "不服"}, headers=who.p3),
            422, "review.deadline")
    # Only the subject itself may ask.
    refused(client.post(f"{BASE}/subjects/cadre:P1/reviews",
                        json={"kind": "review", "reason": "x"}, headers=who.p3),
            403, "review.own-result")


# --- abuse cases (domain-notes §5.4) --------------------------------------------------------

@pytest.fixture
def scoring(client: Client, services: Services) -> People:
    who = People(services)
    setup_cycle(client, services, who)
    return who


@pytest.mark.parametrize(
    ("score", "status", "rule"),
    [(101, 422, "score.range"), (-1, 422, "score.range"), ("NaN", 400, "decimal.plain"),
     ("88.123", 422, "score.precision"), (True, 400, "type"), ("eighty", 400, "decimal.plain")])
def test_abuse_11_scores_outside_0_to_100(client: Client, services: Services, scoring: People,
                                          score: Any, status: int, rule: str) -> None:
    before = _events(services)
    refused(client.post(f"{BASE}/subjects/team:E1/leader-reviews", json={"score": score},
                        headers=scoring.l1), status, rule)
    assert _events(services) == before


def test_abuse_12_indicators_only_by_their_owner_and_in_scope(
        client: Client, services: Services, scoring: People) -> None:
    body = {"indicator": "growth", "value": "1", "score": 80, "evidence": "x"}
    before = _events(services)
    refused(client.post(f"{BASE}/subjects/team:E2/indicators", json=body, headers=scoring.e1),
            403, "indicator.owner")
    refused(client.post(f"{BASE}/subjects/team:F1/indicators", json=body, headers=scoring.f1),
            403, "indicator.scope")
    refused(client.post(f"{BASE}/subjects/team:E2/indicators", json=body, headers=scoring.l1),
            403, "role")
    assert _events(services) == before


def test_abuse_13_missing_inputs_block_the_seal(client: Client, services: Services,
                                                scoring: People) -> None:
    ok(client.post(f"{BASE}/subjects/team:E1/leader-reviews", json={"score": 90},
                   headers=scoring.l1))
    body = refused(client.post(f"{BASE}/seal", json={}, headers=scoring.org), 409,
                   "seal.inputs-complete")
    assert "lack inputs" in body["detail"]
    assert ok(client.get(BASE), 200)["phase"] == "scoring"


def test_abuse_14_weights_and_frozen_schemes(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    bad = {**SCHEME, "pools": [{**SCHEME["pools"][0], "weights": {"leader-review": "0.5",
                                                                  "analysis": "0.4"}}]}
    etag = client.get(BASE).headers["etag"]
    body = refused(client.put(f"{BASE}/scheme", json=bad, headers={**who.org, "If-Match": etag}),
                   422, "scheme.weights-sum-to-one")
    assert body["field"] == "pools[0].weights"
    refused(client.put(f"{BASE}/scheme", json=SCHEME, headers=who.org), 428,
            "if-match.required")
    ok(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}), 200)
    refused(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}),
            412, "if-match")
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    services.follower.catch_up()
    ok(client.post(f"{BASE}/roster", json={}, headers=who.org))
    ok(client.post(f"{BASE}/freeze", json={}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    refused(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}),
            409, "cycle.phase")
    amended = {"scheme": SCHEME, "reason": "市委常委会决定", "authority": "市委组织部〔2025〕3号"}
    ok(client.post(f"{BASE}/amendments", json=amended, headers=who.org))
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))
    refused(client.post(f"{BASE}/amendments", json=amended, headers=who.org), 409,
            "cycle.phase")


def test_abuse_15_16_no_input_after_the_seal(client: Client, services: Services,
                                             scoring: People) -> None:
    score_everything(client, scoring)
    ok(client.post(f"{BASE}/seal", json={}, headers=scoring.org))
    before = _events(services)
    refused(client.post(f"{BASE}/subjects/team:E3/analysis",
                        json={"dimension": "economy", "score": 99}, headers=scoring.team),
            409, "cycle.phase")
    services.follower.catch_up()
    e3 = ok(client.get(f"{BASE}/subjects/team:E3/result", headers=scoring.org), 200)
    assert e3["rank"] == 3
    refused(client.put(f"{BASE}/subjects/team:E3/leader-reviews", json={"score": 100},
                       headers={**scoring.l1, "If-Match": '"9"'}), 409, "cycle.phase")
    assert _events(services) == before


def test_abuse_17_one_sheet_per_leader_then_revisions(client: Client, services: Services,
                                                      scoring: People) -> None:
    url = f"{BASE}/subjects/team:E1/leader-reviews"
    first = ok(client.post(url, json={"score": 90}, headers=scoring.l1))
    refused(client.post(url, json={"score": 91}, headers=scoring.l1), 409,
            "leader-review.once-then-revise")
    version = first["version"]
    refused(client.put(url, json={"score": 92}, headers={**scoring.l1,
                                                         "If-Match": f'"{version - 1}"'}),
            412, "if-match")
    ok(client.put(url, json={"score": 92}, headers={**scoring.l1, "If-Match": f'"{version}"'}),
       200)
    file = services.evaluation.file(Y, "team:E1")
    assert file.leader_scores == {"leader:L1": 92}
    history = [e for e in services.store.events.get(file.id)
               if isinstance(e, SubjectFile.LeaderScored)]
    assert [e.score for e in history] == [90, 92]  # the first score stays in the history


def test_abuse_7_raters_score_only_whom_they_are_assigned(client: Client, services: Services,
                                                         scoring: People) -> None:
    before = _events(services)
    url = f"{BASE}/subjects/{{}}/leader-reviews"
    refused(client.post(url.format("cadre:D1"), json={"score": 90}, headers=scoring.l1), 403,
            "rater.leader-scores-teams-and-principals")
    refused(client.post(url.format("cadre:P1"), json={"score": 90}, headers=scoring.p1), 403,
            "rater.self")
    refused(client.post(url.format("team:E1"), json={"score": 90}, headers=scoring.p1), 403,
            "rater.principal-scores-own-deputies")
    refused(client.post(url.format("cadre:D1"), json={"score": 90}, headers=scoring.p3), 403,
            "rater.principal-scores-own-deputies")
    deputy = bearer(services, Role.LEADER, IdentityKind.CADRE, "D1")  # says why: not a principal
    body = refused(client.post(url.format("team:E1"), json={"score": 90}, headers=deputy), 403,
                   "rater.principal-scores-own-deputies")
    assert "D1 is a deputy, not a principal" in body["detail"]
    stranger = bearer(services, Role.LEADER, IdentityKind.LEADER, "L9")
    refused(client.post(url.format("team:E1"), json={"score": 90}, headers=stranger), 403,
            "rater.registered-leader")
    assert _events(services) == before


def test_abuse_18_19_grades_only_by_the_committee_with_reasons(
        client: Client, services: Services, scoring: People) -> None:
    score_everything(client, scoring)
    ok(client.post(f"{BASE}/seal", json={}, headers=scoring.org))
    decision = {"grade": "好", "reason": "r", "minutes_ref": "m-1"}
    before = _events(services)
    refused(client.post(f"{BASE}/subjects/team:E3/decisions", json=decision,
                        headers=scoring.org), 403, "role")
    refused(client.post(f"{BASE}/subjects/team:E3/decisions", json={**decision, "reason": " "},
                        headers=scoring.committee), 422, "committee.reason-and-minutes")
    refused(client.post(f"{BASE}/subjects/team:E3/decisions", json={**decision, "grade": "A"},
                        headers=scoring.committee), 422, "grade.valid")
    assert _events(services) == before
    # The pool's one 好 place: a decision takes it; a second decision of 好 cannot.
    ok(client.post(f"{BASE}/subjects/team:E3/decisions", json=decision,
                   headers=scoring.committee))
    before = _events(services)
    refused(client.post(f"{BASE}/subjects/team:E2/decisions", json=decision,
                        headers=scoring.committee), 409, "quota.exceeded")
    assert _events(services) == before


def test_abuse_20_sanctions_cap_and_open_cases_suppress_grades(
        client: Client, services: Services, scoring: People) -> None:
    score_everything(client, scoring)
    ok(client.post(f"{BASE}/subjects/cadre:P1/sanctions",
                   json={"code": "open-case", "decided_on": "2025-09-01", "source": "监委"},
                   headers=scoring.org))
    ok(client.post(f"{BASE}/seal", json={}, headers=scoring.org))
    results = _table(_results(client, services, scoring.org))
    assert results["cadre:P1"][2] is None  # open case: no grade (A1517 5B)
    assert results["cadre:P2"][2] == "称职"  # 诫勉: not 优秀
    p1 = ok(client.get(f"{BASE}/subjects/cadre:P1/result", headers=scoring.org), 200)
    assert p1["no_grade_reason"] == "5B"
    decision = {"grade": "优秀", "reason": "r", "minutes_ref": "m"}
    refused(client.post(f"{BASE}/subjects/cadre:P1/decisions", json=decision,
                        headers=scoring.committee), 409, "grade.no-grade-in-force")
    refused(client.post(f"{BASE}/subjects/cadre:P2/decisions", json=decision,
                        headers=scoring.committee), 409, "grade.veto-cap")


def test_abuse_25_no_publication_before_the_seal(client: Client, services: Services,
                                                 scoring: People) -> None:
    refused(client.post(f"{BASE}/publication", json={"notified_on": "2026-01-10"},
                        headers=scoring.org), 409, "cycle.phase")


def test_adjustments_need_a_second_person(client: Client, services: Services,
                                          scoring: People) -> None:
    ok(client.post(f"{BASE}/subjects/team:E1/adjustments",
                   json={"adjustment": "a1", "delta": "-3", "component": "analysis",
                         "reason": "安全事故", "basis": "办法第12条", "evidence": "通报"},
                   headers=scoring.org))
    refused(client.post(f"{BASE}/subjects/team:E1/adjustments/a1/approval", json={},
                        headers=scoring.org), 403, "adjustment.four-eyes")
    ok(client.post(f"{BASE}/subjects/team:E1/adjustments/a1/approval", json={},
                   headers=scoring.org2))
    refused(client.post(f"{BASE}/subjects/team:E1/adjustments/a1/approval", json={},
                        headers=scoring.org2), 409, "adjustment.approved-once")


def test_bulk_import_reports_every_bad_row_and_stores_nothing(client: Client,
                                                              services: Services) -> None:
    who = People(services)
    rows = {"units": [*UNITS, {"code": "E1", "name": "dup", "kind": "department",
                               "category": "economic-management"},
                      {"code": "X9", "name": "x", "kind": "township", "category": "vertical"}],
            "cadres": [*CADRES, {"code": "Q1", "name": "q", "unit_code": "NOPE",
                                 "role": "principal", "since": "2020-01-01"},
                       {"code": "Q2", "name": "q", "unit_code": "E1", "role": "deputy",
                        "since": "2020-13-01"}]}
    body = refused(client.post("/api/v1/imports", json=rows, headers=who.org), 422,
                   "import.rows")
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [
        ("units[5].code", "unit.code-unique"), ("units[6].category", "unit.category"),
        ("cadres[5].unit_code", "cadre.unit-exists"), ("cadres[6].since", "date.iso")]
    assert _events(services) == 0


def test_published_results_export_with_a1517_codes(client: Client, services: Services,
                                                   clock: FixedClock) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/subjects/cadre:P1/sanctions", json={
        "code": "open-case", "decided_on": "2025-09-01", "source": "监委"}, headers=who.org))
    refused(client.get(f"{BASE}/exports/results", headers=who.org), 409, "export.published")
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    approve(client, who)
    ok(client.post(f"{BASE}/publication", json={"notified_on": "2026-01-20"}, headers=who.org))
    services.follower.catch_up()
    resp = client.get(f"{BASE}/exports/results", headers=who.org)
    assert resp.status_code == 200
    rows = {r["subject"]: r for r in resp.json()}
    assert (rows["cadre:P2"]["final_grade"], rows["cadre:P2"]["a1517"]) == ("称职", "2")
    assert (rows["cadre:P1"]["final_grade"], rows["cadre:P1"]["a1517"]) == (None, "5B")
    assert rows["team:E1"]["a1517"] is None  # A1517 codes individuals, not teams
    assert rows["team:E1"]["name"] == "发改局"
    csv_resp = client.get(f"{BASE}/exports/results?format=csv", headers=who.org)
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("year,results_version,subject,code,name")
    assert any(line.startswith("2025,1,cadre:P1,P1,张一") and ",5B," in line for line in lines)
    assert client.get(f"{BASE}/exports/results", headers=who.l1).status_code == 403
    too_big = client.post("/api/v1/units", content=b"{" + b" " * 5_000_000 + b"}",
                          headers={**who.org, "content-type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.headers["content-type"].startswith("application/problem+json")
