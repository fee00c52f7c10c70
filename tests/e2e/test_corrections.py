"""Published means fixed: after publication, a lifted sanction, a review (复核) or appeal (申诉)
decision moves the working results only; the public results, exports and bundles keep the
published version until a correction (更正) publishes a new one, with its basis, reason and
authority. Deadlines of reviews and appeals are recorded and enforced."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.verify import verify_bundle
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import (
    BASE,
    Client,
    People,
    _events,
    _table,
    approve,
    ok,
    refused,
    score_everything,
    setup_cycle,
)

CORRECTION = {"reason": "纪委撤销诫勉处理", "authority": "市委常委会",
              "reference": "常委会纪要2026-7"}


def published_cycle(client: Client, services: Services) -> People:
    """The scenario's cycle (P2 under 诫勉, so P1 holds the principals' one 优秀 place),
    sealed and published."""
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    approve(client, who)
    ok(client.post(f"{BASE}/publication", json={"notified_on": "2026-03-01"}, headers=who.org))
    return who


def _grades(client: Client, services: Services, **query: str) -> dict[str, Any]:
    """The published grades of every kind: a supervisor reads them (the public reads the
    teams' only: tests/e2e/test_audiences.py)."""
    services.follower.catch_up()
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-grades")
    body = ok(client.get(f"{BASE}/results", params=query, headers=supervisor), 200)
    return {"version": body["results_version"], "corrections": body["corrections"],
            "grades": {s: g for s, (_, _, g, _) in _table(body).items()}}


def _verify(client: Client, services: Services, subject: str, headers: dict[str, str]) -> str:
    resp = client.get(f"{BASE}/subjects/{subject}/evidence", headers=headers)
    assert resp.status_code == 200, resp.text
    return "\n".join(verify_bundle(resp.content, [services.signer.vkey]))


def test_a_change_after_publication_stays_out_of_the_public_results_until_corrected(
        client: Client, services: Services) -> None:
    who = published_cycle(client, services)
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup")
    published = _grades(client, services)
    assert published["version"] == 1
    assert (published["grades"]["cadre:P1"], published["grades"]["cadre:P2"]) == ("优秀", "称职")
    export = ok(client.get(f"{BASE}/exports/results", headers=who.org), 200)

    # The 诫勉 is lifted after publication: a fact, recorded -- and nothing public moves.
    ok(client.post(f"{BASE}/subjects/cadre:P2/sanctions/admonishment/lift",
                   json={"reason": "复查撤销"}, headers=who.org))
    assert _grades(client, services) == published
    assert ok(client.get(f"{BASE}/exports/results", headers=who.org), 200) == export
    one = ok(client.get(f"{BASE}/subjects/cadre:P1/result", headers=who.p1), 200)  # own card
    assert (one["final_grade"], one["results_version"]) == ("优秀", 1)

    # Explain shows both: what the evidence gives now, and what was published (differs).
    card = ok(client.get(f"{BASE}/subjects/cadre:P1/explain", headers=supervisor), 200)
    assert card["result"]["final_grade"] == "称职"  # P2 (96) now takes the one 优秀 place
    assert card["published"]["result"]["final_grade"] == "优秀"
    assert (card["published"]["version"], card["published"]["differs"]) == (1, True)

    # What a correction would publish: the principals' pool, P1 and P2.
    refused(client.get(f"{BASE}/corrections/pending"), 401, "authentication")
    pending = ok(client.get(f"{BASE}/corrections/pending", headers=who.committee), 200)
    assert [(p["group"], p["kind"]) for p in pending["pools"]] == [
        ("economic-management", "principal")]
    assert {c["subject"]: (c["published"]["final_grade"], c["working"]["final_grade"])
            for c in pending["pools"][0]["changes"]} == {"cadre:P1": ("优秀", "称职"),
                                                         "cadre:P2": ("称职", "优秀")}

    # Only the committee publishes a correction, with reason, authority and reference.
    before = _events(services)
    refused(client.post(f"{BASE}/corrections", json=CORRECTION, headers=who.org), 403, "role")
    assert _events(services) == before
    receipt = ok(client.post(f"{BASE}/corrections", json=CORRECTION, headers=who.committee))
    # the notice (digests), then the changed pool restated in its own stream
    assert [r["topic"] for r in receipt["receipt"]] == ["kaoping/ResultsNotice.Corrected.v2",
                                                        "kaoping/ResultsPool.Restated.v1"]
    corrected = _grades(client, services)
    assert corrected["version"] == 2
    assert (corrected["grades"]["cadre:P1"], corrected["grades"]["cadre:P2"]) == ("称职", "优秀")
    assert {k: v for k, v in corrected["grades"].items() if not k.startswith(("cadre:P1",
                                                                              "cadre:P2"))} == {
        k: v for k, v in published["grades"].items() if not k.startswith(("cadre:P1",
                                                                          "cadre:P2"))}
    [correction] = corrected["corrections"]
    assert (correction["version"], correction["basis"], correction["authority"],
            correction["pools"]) == (2, "committee", "市委常委会",
                                     ["economic-management/principal"])
    listed = ok(client.get(f"{BASE}/corrections"), 200)  # public
    assert (listed["results_version"], len(listed["corrections"])) == (2, 1)

    # Nothing more to correct; the record of what was published then stays readable.
    refused(client.post(f"{BASE}/corrections", json=CORRECTION, headers=who.committee), 409,
            "correction.no-change")
    then = _grades(client, services, as_of="publication")
    assert (then["version"], then["grades"]["cadre:P1"]) == (1, "优秀")
    assert _grades(client, services, as_of="correction-2")["version"] == 2
    refused(client.get(f"{BASE}/results", params={"as_of": "correction-3"}), 404, "as-of.point")

    # History shows the published card's change, by the correction.
    resp = client.get(f"{BASE}/subjects/cadre:P1/history", headers=supervisor)
    assert resp.status_code == 200, resp.text
    shown = [h for h in resp.json() if h["by"] == "published"]
    assert [h["changed"].get("published_final_grade") for h in shown] == [
        [None, "优秀"], ["优秀", "称职"]]

    # Offline, the bundle proves both versions from the evidence each names.
    lines = _verify(client, services, "cadre:P1", supervisor)
    assert "results version(s) 1, 2, each equal to what it published" in lines
    assert "correction (更正) 2" in lines
    assert lines.endswith("grade 称职 (results version 2)")


def test_a_review_decision_publishes_its_correction_at_once(client: Client, services: Services,
                                                           clock: FixedClock) -> None:
    who = published_cycle(client, services)
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews",
                   json={"kind": "review", "reason": "不服"}, headers=who.p3))
    # Upheld: recorded, nothing to correct.
    before = _grades(client, services)
    decision = {"grade": "基本称职", "reason": "复核认定履职不到位", "authority": "市委组织部"}
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews/review/decision", json=decision,
                   headers=who.committee))
    after = _grades(client, services)
    assert after["version"] == 2
    assert (before["grades"]["cadre:P3"], after["grades"]["cadre:P3"]) == ("称职", "基本称职")
    assert (after["corrections"][0]["basis"], after["corrections"][0]["reference"]) == (
        "review", "cadre:P3 review")
    refused(client.post(f"{BASE}/subjects/cadre:P3/reviews/review/decision", json=decision,
                        headers=who.committee), 409, "review.decided-once")
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup")
    lines = _verify(client, services, "cadre:P3", supervisor)
    assert "review 'cadre:P3 review' by 市委组织部" in lines


def test_review_and_appeal_deadlines(client: Client, services: Services,
                                     clock: FixedClock) -> None:
    who = published_cycle(client, services)
    review = {"kind": "review", "reason": "不服"}
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews", json=review, headers=who.p3))
    before = _events(services)
    # An appeal after a review follows the review's decision (or its lapsed deadline).
    refused(client.post(f"{BASE}/subjects/cadre:P3/reviews", json={**review, "kind": "appeal"},
                        headers=who.p3), 409, "review.appeal-after-review")
    # The review is due within 30 days of filing; late, a decision must say why.
    clock.advance(timedelta(days=31))
    who = People(services)
    decision = {"grade": None, "reason": "维持"}
    refused(client.post(f"{BASE}/subjects/cadre:P3/reviews/review/decision", json=decision,
                        headers=who.committee), 422, "review.decision-overdue")
    assert _events(services) == before
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews/review/decision",
                   json={**decision, "late_reason": "材料补充"}, headers=who.committee))
    # The appeal: within 15 days of the review's decision (today); decided within 60 days,
    # extendable once, before its deadline, by at most 30 days.
    ok(client.post(f"{BASE}/subjects/cadre:P3/reviews", json={**review, "kind": "appeal"},
                   headers=who.p3))
    extension = {"days": 30, "reason": "案情复杂"}
    url = f"{BASE}/subjects/cadre:P3/reviews"
    refused(client.post(f"{url}/review/extension", json=extension, headers=who.appeals), 422,
            "review.extend-appeal-only")
    refused(client.post(f"{url}/appeal/extension", json={**extension, "days": 31},
                        headers=who.appeals), 422, "review.extension-days")
    # The body that decides the appeal (申诉) extends it: not the committee that decided the
    # review (复核).
    refused(client.post(f"{url}/appeal/extension", json=extension, headers=who.committee), 403,
            "role")
    ok(client.post(f"{url}/appeal/extension", json=extension, headers=who.appeals))
    refused(client.post(f"{url}/appeal/extension", json=extension, headers=who.appeals), 409,
            "review.extend-once")
    clock.advance(timedelta(days=80))  # filed on day 31: due day 91, extended to day 121
    who = People(services)
    ok(client.post(f"{url}/appeal/decision", json={"grade": None, "reason": "维持"},
                   headers=who.appeals))
    refused(client.post(f"{url}/appeal/extension", json=extension, headers=who.appeals), 409,
            "review.extend-undecided")
    # A direct appeal (no review): within 30 days of notification only.
    p1 = bearer(services, Role.LEADER, IdentityKind.CADRE, "P1")
    refused(client.post(f"{BASE}/subjects/cadre:P1/reviews", json={**review, "kind": "appeal"},
                        headers=p1), 422, "review.deadline")


def test_an_overdue_appeal_cannot_be_extended(client: Client, services: Services,
                                              clock: FixedClock) -> None:
    who = published_cycle(client, services)
    url = f"{BASE}/subjects/cadre:P3/reviews"
    ok(client.post(url, json={"kind": "appeal", "reason": "直接申诉"}, headers=who.p3))
    clock.advance(timedelta(days=61))
    who = People(services)
    refused(client.post(f"{url}/appeal/extension", json={"days": 10, "reason": "迟"},
                        headers=who.appeals), 409, "review.extend-before-deadline")


def test_published_results_are_read_from_the_log_not_from_a_table(
        client: Client, services: Services) -> None:
    """A row of the working results table changed behind the service's back (any role that
    can write read models) does not change what is served as published."""
    published_cycle(client, services)
    before = _grades(client, services)
    with services.db.write() as cur:
        cur.execute("UPDATE rm_results SET result = %s WHERE year = 2025 AND subject = %s",
                    (json.dumps({"forged": True}).encode(), "cadre:P3"))
    assert _grades(client, services) == before
