"""Issue 12 (confidentiality): every GET route of the app, called as every kind of reader, on
a team and a cadre, before and after publication, answers as its declared audience says
(api/readers.py). The expectations below are written out here, by hand, from the policy in
docs/evaluation.md — not computed by the code under test."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from api.readers import AUDIENCES, Audience
from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e import test_cycle_scenario as scenario
from tests.e2e.test_cycle_scenario import BASE, People, ok, score_everything, setup_cycle

Client = TestClient[Any]
EVALUATORS = {"organizer", "committee", "supervisor"}
SELF = "cadre:P1"  # the subject the "self" reader is


def get_routes(client: Client) -> set[str]:
    """The API's GET routes; the console's pages have their own table and sweep
    (api/console/__init__.py PAGES, tests/e2e/test_console.py)."""
    return {r.path_format for r in client.app.routes
            if isinstance(r, HTTPRoute) and "GET" in r.methods
            and not r.path_format.startswith("/console")}


def test_every_get_route_declares_its_audience(client: Client) -> None:
    routes = get_routes(client)
    assert len(routes) > 40  # guards the guard: the app's routes were found
    assert not routes - set(AUDIENCES), "GET routes without a declared audience " \
        "(add them to api/readers.py)"
    assert not set(AUDIENCES) - routes, "declared audiences of routes that do not exist"


def expected(audience: Audience, reader: str, subject: str | None, published: bool) -> bool:
    """Whether ``reader`` may read a route of ``audience`` (docs/evaluation.md, "Who may read
    a result"); ``inv-in`` is the investigator whose open case covers the subject (and who is
    assigned the case read), ``inv-out`` one whose cases do not; ``appeal-body`` decides the
    appeal (申诉) SELF files once the results are published, and reads its card then."""
    team = subject is not None and subject.startswith("team:")
    appeal = published and reader == "appeal-body" and subject == SELF
    card = reader in EVALUATORS or reader == "inv-in" or appeal or (
        published and reader == "self" and subject == SELF)
    return {
        Audience.PUBLIC: True,
        Audience.SIGNED_IN: reader != "anonymous",
        Audience.EVALUATORS: reader in EVALUATORS,
        Audience.SUPERVISORS: reader == "supervisor",
        Audience.RESULTS: reader in EVALUATORS or published,
        Audience.SUBJECT_RESULT: card or (team and published),
        Audience.SUBJECT_DETAIL: card,
        Audience.EVIDENCE: reader in EVALUATORS or reader == "inv-in" or appeal,
        Audience.EXPORT_ROWS: reader in {*EVALUATORS, "inv-in", "inv-out", "self",
                                         "other-cadre"},
        Audience.CASE_FILE: reader in {"intake", "supervisor", "inv-in"},
        Audience.CASE_LIST: reader in {"supervisor", "inv-in", "inv-out"},
        # no team is assigned in this world; the city leader reviews teams and principals
        Audience.DOCUMENTS: reader in {*EVALUATORS, "leader"} or (
            reader == "self" and subject == SELF),
    }[audience]


class World:
    """The cycle of test_cycle_scenario, scored (P2 under 诫勉), with a case about cadre:P1
    and team:E1 assigned to inv-1, and one about team:E3 assigned to inv-2."""

    def __init__(self, client: Client, services: Services) -> None:
        self.who = People(services)
        setup_cycle(client, services, self.who)
        score_everything(client, self.who)
        supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")
        intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
        self.cases = {}
        for person, subjects in (("inv-1", ["cadre:P1", "team:E1"]), ("inv-2", ["team:E3"])):
            ok(client.post("/api/v1/investigators", headers=supervisor, json={
                "investigator": f"person:staff:{person}", "name": person}))
            case = ok(client.post("/api/v1/cases", headers=intake, json={
                "channel": "hotline", "year": 2025, "subjects": subjects,
                "summary": "反映问题"}))["case_id"]
            ok(client.post(f"/api/v1/cases/{case}/assignment", headers=intake,
                           json={"investigator": f"person:staff:{person}"}))
            self.cases[person] = case
        services.follower.catch_up()
        self.readers: dict[str, dict[str, str]] = {
            "anonymous": {},
            "organizer": self.who.org, "committee": self.who.committee,
            "supervisor": supervisor, "intake": intake,
            "leader": self.who.l1, "department": self.who.f1, "assessment-team": self.who.team,
            "inv-in": bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "inv-1"),
            "inv-out": bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "inv-2"),
            "self": self.who.p1, "other-cadre": self.who.p3,
            "appeal-body": bearer(services, Role.APPEAL_BODY, IdentityKind.STAFF, "ss-1"),
        }

    def publish(self, client: Client, services: Services) -> None:
        ok(client.post(f"{BASE}/seal", json={}, headers=self.who.org))
        scenario.approve(client, self.who)
        ok(client.post(f"{BASE}/publication", json={
            "notified_on": services.clock.now().date().isoformat()}, headers=self.who.org))
        ok(client.post(f"{BASE}/subjects/{SELF}/reviews", headers=self.who.p1,
                       json={"kind": "appeal", "reason": "对考核等次有异议，提出申诉"}))
        services.follower.catch_up()


QUERIES = {"/diff": "?from=0&to=1", "/events/stream": "?after=-1&limit=1",
           "/reports/status": "?code=no-such-code"}


def url(template: str, world: World, subject: str) -> str:
    code = "P1" if "/cadres/{code}" in template else "S-none"  # a real cadre
    values = {"year": "2025", "subject": subject, "code": code, "path": "nothing",
              "unit_id": "00000000-0000-4000-8000-000000000000", "unit": "E1",
              "case_id": world.cases["inv-1"], "type_name": "kaoping.unit.registered.v1",
              "subscription_id": "none", "file_path": "nothing", "sha256": "0" * 64}
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
    return path + next((q for end, q in QUERIES.items() if template.endswith(end)), "")


def sweep(client: Client, world: World, published: bool) -> list[str]:
    wrong = []
    for template in sorted(get_routes(client)):
        audience = AUDIENCES[template]
        subjects = (["team:E1", SELF] if "{subject}" in template else
                    [SELF] if template.startswith("/api/v1/cycles/") and "/cadres/{code}"
                    in template else [None])  # a cadre's own paper (the 考核登记表)
        for subject in subjects:
            for reader, headers in world.readers.items():
                resp = client.get(url(template, world, subject or ""), headers=headers)
                refused = resp.status_code in (401, 403)
                if refused == expected(audience, reader, subject, published):
                    wrong.append(f"{template} {subject or ''} as {reader}: {resp.status_code}"
                                 f" (declared {audience.value}) {resp.text[:160]}")
                elif refused:
                    assert resp.json()["rule"], resp.text  # a problem naming the rule
    return wrong


def test_every_get_route_answers_as_declared_to_every_reader(client: Client,
                                                             services: Services) -> None:
    world = World(client, services)
    before = sweep(client, world, published=False)
    world.publish(client, services)
    after = sweep(client, world, published=True)
    assert not before, "before publication:\n" + "\n".join(before)
    assert not after, "after publication:\n" + "\n".join(after)


@pytest.fixture
def world(client: Client, services: Services) -> World:
    return World(client, services)


def test_the_public_sees_team_results_and_never_a_cadre_s_vetoes(
        client: Client, services: Services, world: World) -> None:
    world.publish(client, services)
    public = ok(client.get(f"{BASE}/results"), 200)
    assert {i["kind"] for i in public["items"]} == {"team"}
    assert {i["result"]["subject"] for i in public["items"]} == {
        "team:E1", "team:E2", "team:E3", "team:F1"}
    everything = ok(client.get(f"{BASE}/results", headers=world.who.org), 200)
    assert {i["kind"] for i in everything["items"]} == {"team", "principal", "deputy"}
    body = client.get(f"{BASE}/results?kind=principal").json()
    assert (body["status"], body["rule"], body["field"]) == (403, "card.readers", "kind")
    refused = client.get(f"{BASE}/subjects/cadre:P2/result")
    assert (refused.status_code, refused.json()["rule"]) == (403, "card.readers")
    assert "admonishment" not in refused.text
    other = client.get(f"{BASE}/subjects/cadre:P2/result", headers=world.who.p1)
    assert (other.status_code, other.json()["rule"]) == (403, "card.readers")
    own = ok(client.get(f"{BASE}/subjects/cadre:P2/result",
                        headers=bearer(services, Role.LEADER, IdentityKind.CADRE, "P2")), 200)
    assert own["vetoes_applied"] == ["admonishment"]
    assert ok(client.get(f"{BASE}/subjects/team:E2/result"), 200)["subject"] == "team:E2"
    assert client.get("/api/v1/cadres/P1").status_code == 401
    assert client.get("/api/v1/cadres").status_code == 401
    assert ok(client.get("/api/v1/cadres/P1", headers=world.who.p3), 200)["name"] == "张一"


def test_a_cadre_reads_its_own_card_only_once_published(
        client: Client, services: Services, world: World) -> None:
    early = client.get(f"{BASE}/subjects/cadre:P1/explain", headers=world.who.p1)
    assert (early.status_code, early.json()["rule"]) == (403, "results.published")
    world.publish(client, services)
    card = ok(client.get(f"{BASE}/subjects/cadre:P1/explain", headers=world.who.p1), 200)
    assert card["subject"] == "cadre:P1"
    # Its own inputs, without who entered them (the two leaders' scores are there).
    reviews = [i for i in card["inputs"] if i["part"] == "leader-review"]
    assert len(reviews) == 2 and {i["actor"] for i in card["inputs"]} == {""}
    # ... nor in the facts: the rater's code, post or comment never reach the subject.
    assert all(not {"rater", "post", "comment"} & set(i["facts"]) for i in card["inputs"])
    assert {r["facts"]["score"] for r in reviews} and "leader:L1" not in str(card)
    staff = ok(client.get(f"{BASE}/subjects/cadre:P1/explain", headers=world.who.org), 200)
    assert {i["actor"] for i in staff["inputs"] if i["part"] == "leader-review"} == {
        "person:leader:L1", "person:leader:L2"}
    changes = rows(client.get(f"{BASE}/subjects/cadre:P1/history", headers=world.who.p1))
    # P2's 诫勉 moved P1 into the one 优秀 place: P1 sees that a rival's event moved its
    # card, not whose or what.
    rivals = [c for c in changes if c["by"] not in ("self", "cycle", "published")]
    assert rivals and all(c["by"] == "pool" and c["topic"] == "" for c in rivals)
    assert {c["actor"] for c in changes} == {""}
    full = rows(client.get(f"{BASE}/subjects/cadre:P1/history", headers=world.who.org))
    assert any(c["by"] == "cadre:P2" and "Sanction" in c["topic"] for c in full)
    assert [c["position"] for c in full] == [c["position"] for c in changes]


def _access(client: Client, services: Services, headers: dict[str, str],
            ) -> list[dict[str, Any]]:
    # Refused reads are counted per window and recorded once it has ended (flood of reads
    # must not flood the log): let the window end, record it, then read the record.
    assert isinstance(services.clock, FixedClock)
    services.clock.advance(timedelta(seconds=services.settings.refused_read_window_seconds + 5))
    services.refusals.flush()
    services.follower.catch_up()
    return rows(client.get("/api/v1/audit/access", headers=headers))


def rows(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


@pytest.mark.parametrize("what", ["history", "diff"])
def test_history_and_diff_go_through_the_case_gate_and_are_recorded(
        client: Client, services: Services, world: World, what: str) -> None:
    inv, sup = world.readers["inv-in"], world.readers["supervisor"]
    query = "?from=1000000&to=1000000" if what == "diff" else ""  # both: the head
    ok(client.get(f"{BASE}/subjects/cadre:P1/{what}{query}", headers=inv), 200)
    refused = client.get(f"{BASE}/subjects/cadre:P3/{what}{query}", headers=inv)
    assert (refused.status_code, refused.json()["rule"]) == (403, "investigator.case-scope")
    other = client.get(f"{BASE}/subjects/cadre:P1/{what}{query}", headers=world.readers[
        "inv-out"])
    assert (other.status_code, other.json()["rule"]) == (403, "investigator.case-scope")
    log = [(e["reader"], e["what"], e["subject"], e["case"], e["allowed"])
           for e in _access(client, services, sup) if e["what"] == what]
    assert log == [
        ("person:staff:inv-1", what, "cadre:P1", world.cases["inv-1"], True),
        ("person:staff:inv-1", what, "cadre:P3", None, False),
        ("person:staff:inv-2", what, "cadre:P1", None, False)]


def test_a_scheme_can_keep_investigators_out_until_publication(
        client: Client, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = {"investigators_before_publication": False, "public_kinds": ["team", "deputy"]}
    monkeypatch.setattr(scenario, "SCHEME", {**scenario.SCHEME, "publication": policy})
    world = World(client, services)
    inv = world.readers["inv-in"]
    early = client.get(f"{BASE}/subjects/cadre:P1/history", headers=inv)
    assert (early.status_code, early.json()["rule"]) == (403, "results.published")
    world.publish(client, services)
    ok(client.get(f"{BASE}/subjects/cadre:P1/history", headers=inv), 200)
    kinds = {i["kind"] for i in ok(client.get(f"{BASE}/results"), 200)["items"]}
    assert kinds == {"team", "deputy"}
    assert ok(client.get(f"{BASE}/subjects/cadre:D1/result"), 200)["subject"] == "cadre:D1"


def test_the_public_notice_lists_only_the_policy_s_grades_in_its_window(
        client: Client, services: Services, world: World, clock: FixedClock) -> None:
    body = client.get(f"{BASE}/notice").json()
    assert (body["status"], body["rule"]) == (409, "notice.window")  # not published yet
    world.publish(client, services)
    notice = ok(client.get(f"{BASE}/notice"), 200)
    # From the hand-computed table of test_cycle_scenario: E1 好 (first, within the quota),
    # P1 优秀 (P2's 96 is capped by 诫勉 to 称职). Nobody else, and no scores or vetoes.
    assert {(i["subject"], i["name"], i["grade"]) for i in notice["items"]} == {
        ("team:E1", "发改局", "好"), ("cadre:P1", "张一", "优秀")}
    assert "admonishment" not in str(notice) and "composite" not in str(notice)
    assert (notice["opens_on"], notice["results_version"]) == (
        services.clock.now().date().isoformat(), 1)
    clock.advance(timedelta(days=4))
    assert ok(client.get(f"{BASE}/notice"), 200)["closes_on"] == clock.now().date().isoformat()
    assert (notice["state"], notice["objections"], notice["undecided"], notice["final"]) == (
        "open", 0, 0, False)
    clock.advance(timedelta(days=1))
    # After the window the notice stays readable: closed, final (no objection is waiting for
    # a decision), how many it listed — and no names: it was a notice for its period.
    late = ok(client.get(f"{BASE}/notice"), 200)
    assert (late["state"], late["final"], late["listed"], late["items"]) == (
        "closed", True, len(notice["items"]), [])
    assert "张一" not in str(late) and "cadre:P1" not in str(late)


def test_the_case_list_by_reader(client: Client, services: Services, world: World) -> None:
    sup, inv = world.readers["supervisor"], world.readers["inv-in"]
    mine = ok(client.get("/api/v1/cases", headers=inv), 200)
    assert [(c["case_id"], c["subjects"]) for c in mine["items"]] == [
        (world.cases["inv-1"], ["cadre:P1", "team:E1"])]
    everything = []
    page = client.get("/api/v1/cases?limit=1", headers=sup)
    while True:
        assert page.status_code == 200
        everything += page.json()["items"]
        if "link" not in page.headers:
            break
        nxt = re.search(r"<([^>]+)>", page.headers["link"])
        assert nxt is not None
        page = client.get(nxt.group(1), headers=sup)
    assert sorted(c["case_id"] for c in everything) == sorted(world.cases.values())
    for reader in ("organizer", "intake", "self"):
        body = client.get("/api/v1/cases", headers=world.readers[reader]).json()
        assert (body["status"], body["rule"]) == (403, "case.list-readers")
    bad = client.get("/api/v1/cases?cursor=garbage!!", headers=sup).json()
    assert (bad["status"], bad["field"]) == (400, "cursor")


def test_an_export_holds_the_rows_the_reader_may_read(client: Client, services: Services,
                                                      world: World) -> None:
    world.publish(client, services)

    def subjects(reader: str) -> list[str]:
        return [r["subject"] for r in rows(client.get(f"{BASE}/exports/results",
                                                      headers=world.readers[reader]))]

    assert len(subjects("organizer")) == 8
    assert subjects("self") == [SELF]
    assert sorted(subjects("inv-in")) == ["cadre:P1", "team:E1"]
    assert subjects("inv-out") == ["team:E3"]
    csv_own = client.get(f"{BASE}/exports/results?format=csv", headers=world.readers["self"])
    assert "张一" in csv_own.text and "王二" not in csv_own.text
    for reader in ("leader", "department", "anonymous"):
        resp = client.get(f"{BASE}/exports/results", headers=world.readers[reader])
        assert resp.status_code in (401, 403)
        assert resp.json()["rule"] in ("authentication", "export.reader")
    exported = [(e["reader"], e["subject"], e["case"]) for e in _access(
        client, services, world.readers["supervisor"]) if e["what"] == "export"]
    assert sorted(exported) == sorted([
        ("person:staff:inv-1", "cadre:P1", world.cases["inv-1"]),
        ("person:staff:inv-1", "team:E1", world.cases["inv-1"]),
        ("person:staff:inv-2", "team:E3", world.cases["inv-2"])])


def test_the_appeal_body_reads_the_card_and_evidence_of_a_subject_that_appealed(
        client: Client, services: Services, world: World) -> None:
    """申诉: the body that decides an appeal reads the appellant's card and evidence bundle —
    only once the appeal is filed, only that subject's — and each read is recorded."""
    body, sup = world.readers["appeal-body"], world.readers["supervisor"]
    early = client.get(f"{BASE}/subjects/{SELF}/explain", headers=body)
    assert (early.status_code, early.json()["rule"]) == (403, "appeal-body.appeal-filed")
    world.publish(client, services)  # and cadre:P1 files an appeal
    card = ok(client.get(f"{BASE}/subjects/{SELF}/explain", headers=body), 200)
    assert card["subject"] == SELF and card["result"]["final_grade"]
    # who entered each input stays with the card (the body weighs the evidence)
    assert {i["actor"] for i in card["inputs"] if i["part"] == "leader-review"} == {
        "person:leader:L1", "person:leader:L2"}
    bundle = client.get(f"{BASE}/subjects/{SELF}/evidence", headers=body)
    assert bundle.status_code == 200 and SELF in bundle.text
    for what in ("explain", "evidence", "result"):
        refused = client.get(f"{BASE}/subjects/cadre:P3/{what}", headers=body)
        assert (refused.status_code, refused.json()["rule"]) == (
            403, "appeal-body.appeal-filed"), what
    sealed = client.get(f"{BASE}/subjects/{SELF}/evidence?ballots=true", headers=body)
    assert (sealed.status_code, sealed.json()["rule"]) == (403, "evidence.ballots-reader")
    log = [(e["what"], e["subject"], e["allowed"], e["rule"])
           for e in _access(client, services, sup) if e["reader"] == "person:staff:ss-1"]
    assert ("explain-notes", SELF, True, "appeal-body.appeal-filed") in log
    assert log.count(("evidence", SELF, True, "appeal-body.appeal-filed")) == 1
    assert ("evidence", "cadre:P3", False, "appeal-body.appeal-filed") in log
    assert all(not allowed for _, subject, allowed, _ in log if subject == "cadre:P3")
