"""公示 objections, the higher body that decides an appeal (申诉), and notification and
feedback (书面通知, 个别反馈, 集中点评) — through HTTP on both stores, as every role that might
try. The scenario's published cycle: team:E1 好 and cadre:P1 优秀 are on the notice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.errors import InvalidInput
from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_corrections import _grades
from tests.e2e.test_cycle_scenario import (
    BASE,
    Client,
    People,
    _events,
    approve,
    ok,
    refused,
    score_everything,
    setup_cycle,
)
from tests.integration.kit import ORG

OBJECTION = {"channel": "hotline", "summary": "分管领域发生安全事故，评为优秀不妥"}


def published_today(client: Client, services: Services) -> People:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    approve(client, who)
    ok(client.post(f"{BASE}/publication", json={
        "notified_on": services.clock.now().date().isoformat()}, headers=who.org))
    services.follower.catch_up()
    return who


def _status(client: Client, who: People) -> dict[str, dict[str, Any]]:
    body = ok(client.get(f"{BASE}/notice/status", headers=who.org), 200)
    return {i["subject"]: i for i in body["items"]}


def test_objections_hold_a_grade_until_decided_and_an_upheld_one_corrects_it(
        client: Client, services: Services, clock: FixedClock) -> None:
    who = published_today(client, services)
    notice = ok(client.get(f"{BASE}/notice"), 200)  # public: names and grades only
    assert {i["subject"]: i["grade"] for i in notice["items"]} == {"team:E1": "好",
                                                                    "cadre:P1": "优秀"}
    assert all(set(i) == {"subject", "name", "kind", "group", "unit_code", "grade"}
               for i in notice["items"])
    url = f"{BASE}/subjects/cadre:P1/objections"
    before = _events(services)
    # Intake takes objections, as it takes reports; not the organizer, not the public.
    refused(client.post(url, json=OBJECTION, headers=who.org), 403, "role")
    refused(client.post(url, json=OBJECTION), 401, "authentication")
    # Only a grade the notice lists can be objected to.
    refused(client.post(f"{BASE}/subjects/cadre:P3/objections", json=OBJECTION,
                        headers=who.intake), 422, "objection.listed-subject")
    assert _events(services) == before
    keyed = {**who.intake, "Idempotency-Key": "objection-1"}
    lodged = ok(client.post(url, json=OBJECTION, headers=keyed))
    assert lodged["follow_up_code"]  # anonymous: a follow-up code, shown once
    length = _events(services)
    again = client.post(url, json=OBJECTION, headers=keyed)  # a retry: the same answer
    assert (again.status_code, again.json()) == (201, lodged)
    assert _events(services) == length
    case = lodged["case_id"]
    assert {r["topic"] for r in lodged["receipt"]} == {
        "kaoping/SubjectFile.ObjectionLodged.v1", "kaoping/Case.Reported.v1"}
    named = ok(client.post(f"{BASE}/subjects/team:E1/objections",
                           json={**OBJECTION, "reporter": "市民 张某"}, headers=who.intake))
    assert named["follow_up_code"] is None
    services.follower.catch_up()
    status = ok(client.get("/api/v1/reports/status",
                           params={"code": lodged["follow_up_code"]}), 200)
    assert status["state"] == "received"
    # The objection is a case: the intake reads it, the objector's name only the intake.
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")
    file = ok(client.get(f"/api/v1/cases/{named['case_id']}", headers=supervisor), 200)
    assert "张某" not in str(file) and "公示异议" in file["summary"]

    # The public notice counts the objections, and names nobody who objected or on whom.
    public = ok(client.get(f"{BASE}/notice"), 200)
    assert (public["state"], public["objections"], public["undecided"], public["final"]) == (
        "open", 2, 2, False)
    assert "张某" not in str(public) and case not in str(public)
    # In the window nothing is final; the status is for evaluators only.
    refused(client.get(f"{BASE}/notice/status", headers=who.p3), 403, "role")
    assert {s: (i["undecided"], i["final"]) for s, i in _status(client, who).items()} == {
        "cadre:P1": (1, False), "team:E1": (1, False)}

    # After the window (5 days from notification): no more objections; E1's dismissed
    # objection makes it final; P1 waits for its decision.
    clock.advance(timedelta(days=5))
    who = People(services)
    refused(client.post(url, json=OBJECTION, headers=who.intake), 409, "objection.window")
    decision = {"outcome": "dismissed", "reason": "反映问题不属实", "minutes_ref": "纪要5",
                "authority": "市委常委会"}
    refused(client.post(f"{BASE}/subjects/team:E1/objections/{named['case_id']}/decision",
                        json=decision, headers=who.org), 403, "role")
    refused(client.post(f"{BASE}/subjects/team:E1/objections/{named['case_id']}/decision",
                        json={**decision, "grade": "较好"}, headers=who.committee), 422,
            "objection.outcome")
    refused(client.post(f"{BASE}/subjects/team:E1/objections/{case}/decision",
                        json=decision, headers=who.committee), 422, "objection.exists")
    ok(client.post(f"{BASE}/subjects/team:E1/objections/{named['case_id']}/decision",
                   json=decision, headers=who.committee))
    assert {s: i["final"] for s, i in _status(client, who).items()} == {
        "cadre:P1": False, "team:E1": True}
    # After the window the public notice is still readable (lodging is what the window
    # closes): closed, one objection undecided, so not final.
    closed = ok(client.get(f"{BASE}/notice"), 200)
    assert (closed["state"], closed["objections"], closed["undecided"], closed["final"]) == (
        "closed", 2, 1, False)

    # Upheld with a grade: a committee decision, published at once as a correction.
    before_grades = _grades(client, services)
    upheld = {**decision, "outcome": "upheld", "grade": "称职", "reason": "经核实属实"}
    ok(client.post(f"{BASE}/subjects/cadre:P1/objections/{case}/decision", json=upheld,
                   headers=who.committee))
    after = _grades(client, services)
    assert (before_grades["grades"]["cadre:P1"], after["grades"]["cadre:P1"]) == ("优秀", "称职")
    assert after["version"] == 2
    assert (after["corrections"][0]["basis"], after["corrections"][0]["authority"]) == (
        "objection", "市委常委会")
    refused(client.post(f"{BASE}/subjects/cadre:P1/objections/{case}/decision", json=upheld,
                        headers=who.committee), 409, "objection.decided-once")
    card = ok(client.get(f"{BASE}/subjects/cadre:P1/explain", headers=who.org), 200)
    parts = {line["topic"]: line["part"] for line in card["inputs"]}
    assert (parts["kaoping/SubjectFile.ObjectionLodged.v1"],
            parts["kaoping/SubjectFile.ObjectionDecided.v1"]) == ("notice", "grading")
    # P1 is no longer on the notice (no longer 优秀): nothing of the list is left undecided.
    assert all(i["final"] for i in _status(client, who).values())
    final = ok(client.get(f"{BASE}/notice"), 200)
    assert (final["objections"], final["undecided"], final["final"]) == (2, 0, True)
    assert (final["listed"], final["items"]) == (1, [])  # team:E1 alone; named no more


def test_the_notice_counts_are_kept_until_an_objection_changes_them(
        client: Client, services: Services) -> None:
    """The public notice's objection counts come from one walk of the listed subjects'
    files, kept by their heads: repeated public reads reuse it (a flood costs one query a
    read, not a file per listed grade), and a lodged objection is a new head, seen at once."""
    who = published_today(client, services)
    ev = services.evaluation
    first = ok(client.get(f"{BASE}/notice"), 200)
    listed, walk = ev.notice_objections(ev.current(2025))
    assert set(listed) == {"team:E1", "cadre:P1"} and walk == {"team:E1": {}, "cadre:P1": {}}
    assert ev.notice_objections(ev.current(2025))[1] is walk  # kept, not walked again
    ok(client.get(f"{BASE}/notice"), 200)
    assert ev.notice_objections(ev.current(2025))[1] is walk
    lodged = ok(client.post(f"{BASE}/subjects/cadre:P1/objections", json=OBJECTION,
                            headers=who.intake))
    after = ev.notice_objections(ev.current(2025))[1]
    assert after is not walk and after["cadre:P1"] == {lodged["case_id"]: None}
    public = ok(client.get(f"{BASE}/notice"), 200)
    assert ((first["objections"], first["undecided"]),
            (public["objections"], public["undecided"])) == ((0, 0), (1, 1))
    # The route keeps each view by (year, date, log head): a read with nothing new is the
    # same view, and the write above made a new one.
    views = client.app.state.notice_views
    again = ok(client.get(f"{BASE}/notice"), 200)
    assert again == public and len(views._items) == 2  # before and after the objection


def test_an_upheld_objection_sets_only_a_grade_of_its_pool(client: Client,
                                                           services: Services) -> None:
    who = published_today(client, services)
    case = ok(client.post(f"{BASE}/subjects/team:E1/objections", json=OBJECTION,
                          headers=who.intake))["case_id"]
    upheld = {"outcome": "upheld", "grade": "优秀", "reason": "r", "minutes_ref": "m",
              "authority": "市委常委会"}
    before = _events(services)
    refused(client.post(f"{BASE}/subjects/team:E1/objections/{case}/decision", json=upheld,
                        headers=who.committee), 422, "grade.valid")  # a cadre's grade
    assert _events(services) == before
    # Upheld without a change of grade: recorded, nothing corrected.
    ok(client.post(f"{BASE}/subjects/team:E1/objections/{case}/decision",
                   json={**upheld, "grade": None}, headers=who.committee))
    assert ok(client.get(f"{BASE}/corrections"), 200)["results_version"] == 1


def test_an_appeal_is_decided_by_a_higher_body_than_the_review(
        client: Client, services: Services) -> None:
    who = published_today(client, services)
    url = f"{BASE}/subjects/cadre:P3/reviews"
    ok(client.post(url, json={"kind": "review", "reason": "不服"}, headers=who.p3))
    # The review (复核) is the committee's, not the appeal body's.
    review = {"grade": None, "reason": "维持", "authority": "市委常委会"}
    refused(client.post(f"{url}/review/decision", json=review, headers=who.appeals), 403, "role")
    ok(client.post(f"{url}/review/decision", json=review, headers=who.committee))
    ok(client.post(url, json={"kind": "appeal", "reason": "仍不服"}, headers=who.p3))
    appeal = {"grade": None, "reason": "维持原复核决定", "authority": "省委组织部"}
    before = _events(services)
    # Not the committee that decided the review; not the appeal body under its authority.
    refused(client.post(f"{url}/appeal/decision", json=appeal, headers=who.committee), 403,
            "role")
    refused(client.post(f"{url}/appeal/decision", json={**appeal, "authority": "市委常委会"},
                        headers=who.appeals), 403, "appeal.higher-body")
    assert _events(services) == before
    ok(client.post(f"{url}/appeal/decision", json=appeal, headers=who.appeals))


def test_notification_and_feedback_per_subject(client: Client, services: Services,
                                               clock: FixedClock) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    review = {"on": "2026-01-01", "by": "市委组织部部长 李某", "summary": "共性问题：作风不实"}
    refused(client.post(f"{BASE}/feedback/reviews", json=review, headers=who.org), 409,
            "cycle.phase")
    score_everything(client, who)
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    approve(client, who)
    today = clock.now().date()
    ok(client.post(f"{BASE}/publication", json={"notified_on": today.isoformat()},
                   headers=who.org))
    clock.advance(timedelta(days=2))
    who = People(services)
    on = (today + timedelta(days=1)).isoformat()
    due = ok(client.get(f"{BASE}/feedback/due", headers=who.committee), 200)["items"]
    assert len(due) == 8 and not any(i["notified"] or i["fed_back"] for i in due)
    refused(client.get(f"{BASE}/feedback/due", headers=who.p3), 403, "role")

    # 集中点评: by the organizer, once per cycle and once per group, dated in the window.
    review = {**review, "on": on}
    refused(client.post(f"{BASE}/feedback/reviews", json=review, headers=who.committee), 403,
            "role")
    refused(client.post(f"{BASE}/feedback/reviews", json={**review, "group": "nowhere"},
                        headers=who.org), 422, "feedback.group")
    refused(client.post(f"{BASE}/feedback/reviews", json={**review, "on": "2020-01-01"},
                        headers=who.org), 422, "feedback.date")
    ok(client.post(f"{BASE}/feedback/reviews", json=review, headers=who.org))
    refused(client.post(f"{BASE}/feedback/reviews", json=review, headers=who.org), 409,
            "feedback.review-once")
    ok(client.post(f"{BASE}/feedback/reviews", json={**review, "group": "party-government"},
                   headers=who.org))

    # Per subject: the written notification once, 个别反馈 as given.
    notice = {"kind": "notification", "on": on, "by": "干部一科", "summary": "书面通知：称职"}
    url = f"{BASE}/subjects/cadre:P3/feedback"
    refused(client.post(url, json=notice, headers=who.p3), 403, "role")
    ok(client.post(url, json=notice, headers=who.org))
    refused(client.post(url, json=notice, headers=who.org), 409, "feedback.notified-once")
    ok(client.post(url, json={**notice, "kind": "feedback", "by": "副部长 王某",
                              "summary": "个别反馈：加强学习"}, headers=who.org))
    due = {i["subject"] for i in ok(client.get(f"{BASE}/feedback/due", headers=who.org),
                                    200)["items"]}
    assert "cadre:P3" not in due and len(due) == 7

    # The subject reads its own (with the reviews of its group and the cycle's), not a
    # rival's; the public reads none.
    own = ok(client.get(url, headers=who.p3), 200)
    assert [f["kind"] for f in own["feedback"]] == ["notification", "feedback"]
    assert [r["group"] for r in own["reviews"]] == [None]  # P3 is in economic-management
    refused(client.get(f"{BASE}/subjects/cadre:P1/feedback", headers=who.p3), 403,
            "card.readers")
    refused(client.get(url), 401, "authentication")
    team = ok(client.get(f"{BASE}/subjects/team:F1/feedback", headers=who.org), 200)
    assert [r["group"] for r in team["reviews"]] == [None, "party-government"]
    # The service refuses a kind the HTTP schema cannot send (the demo calls it directly).
    with pytest.raises(InvalidInput) as wrong:
        services.notifications.feed_back(ORG, 2025, "cadre:P3", kind="talk", on=on, by="x",
                                         summary="x")
    assert wrong.value.rule == "feedback.kind"
