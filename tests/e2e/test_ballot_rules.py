"""Issue 11, ballot sessions: quorum per class fails the session (and the seal says what is
missing), a second session never silently replaces a ballot-derived score, and a session rates
only the cycle's roster. Through HTTP on both stores."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.subject_file import SubjectFile
from service.runtime import Services
from tests.e2e.test_ballots import DEFINITION, S, ok
from tests.e2e.test_cycle_scenario import CADRES, SCHEME, UNITS, People, Y
from tests.e2e.test_refusals_scheme import log_length, refused_with

Client = TestClient[Any]
BASE = f"/api/v1/cycles/{Y}"
ANSWERS = {"team:E1": {"de": "good", "ji": "fair"}, "team:E2": {"de": "excellent", "ji": "good"}}
# The economic-management teams' 民主测评 weighs half of their composite here.
DEMOCRATIC_SCHEME = copy.deepcopy(SCHEME)
DEMOCRATIC_SCHEME["pools"][0] = {**SCHEME["pools"][0], "weights": {
    "leader-review": "0.5", "democratic": "0.5"}}


def democratic_cycle(client: Client, services: Services, who: People, *,
                     scoring: bool = True) -> None:
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    for code in ("L1", "L2"):
        ok(client.post("/api/v1/leaders", json={"code": code, "name": code}, headers=who.org))
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=DEMOCRATIC_SCHEME,
                  headers={**who.org, "If-Match": etag}), 200)
    services.follower.catch_up()
    ok(client.post(f"{BASE}/roster", json={}, headers=who.org))
    if not scoring:
        return
    ok(client.post(f"{BASE}/freeze", json={}, headers=who.org))
    ok(client.post(f"{BASE}/announcement", json={
        "team_members": ["考核组长 周某"], "starts_on": "2025-12-01", "ends_on": "2026-01-10",
        "hotline": "0371-12380"}, headers=who.org))
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))
    subjects = ("team:E1", "team:E2", "team:E3", "team:F1", "cadre:P1", "cadre:P2", "cadre:P3")
    for subject in subjects:
        for leader in (who.l1, who.l2):
            ok(client.post(f"{BASE}/subjects/{subject}/leader-reviews", json={"score": 85},
                           headers=leader))
    ok(client.post(f"{BASE}/subjects/cadre:D1/leader-reviews", json={"score": 85},
                   headers=who.p1))
    ok(client.post(f"{BASE}/subjects/team:E3/evaluations",
                   json={"session": "paper-2025", "democratic": "80"}, headers=who.org))


class Session:
    """One ballot session over team:E1 and team:E2 (10 cadres, 6 public eligible)."""

    def __init__(self, client: Client, who: People, code: str = S, **rules: Any) -> None:
        self.client, self.who, self.url = client, who, f"/api/v1/sessions/{code}"
        definition = copy.deepcopy(DEFINITION)
        definition["code"] = code
        definition["rules"] |= rules
        ok(client.post("/api/v1/sessions", json=definition, headers=who.org))
        ok(client.post(f"{self.url}/freeze", json={}, headers=who.org))
        self.codes = {cls: ok(client.post(f"{self.url}/credentials", headers=who.org, json={
            "rater_class": cls, "count": n}))["codes"] for cls, n in (("cadres", 10),
                                                                      ("public", 6))}
        ok(client.post(f"{self.url}/open", json={}, headers=who.org))

    def vote(self, cadres: int, public: int) -> None:
        for code in self.codes["cadres"][:cadres] + self.codes["public"][:public]:
            ok(self.client.post(f"{self.url}/ballots",
                                json={"credential": code, "answers": ANSWERS}))

    def close(self) -> Any:
        return self.client.post(f"{self.url}/close", json={}, headers=self.who.org)


def _withheld(services: Services, subject: str) -> list[Any]:
    file = services.evaluation.file(Y, subject)
    events = services.store.repository.event_store.get(file.id)
    return [e for e in events if isinstance(e, SubjectFile.EvaluationWithheld)]


def test_a_class_below_quorum_fails_the_session_and_the_seal_says_what_is_missing(
        client: Client, services: Services) -> None:
    who = People(services)
    democratic_cycle(client, services, who)
    session = Session(client, who)
    session.vote(cadres=10, public=3)  # every cadre; 3 of 6 public is half, not more than half
    ok(session.close())

    board = ok(client.get(f"{session.url}/board"), 200)
    failed = [{"rater_class": "public", "present": 3, "eligible": 6, "required": 4}]
    assert board["outcome"] == "quorum-failed"
    assert board["result"]["quorum_failed"] == failed
    for subject in board["result"]["subjects"]:  # the cadres' 10 ballots count for nobody
        assert (subject["withheld"], subject["withheld_reason"]) == (True, "quorum-failed")
        assert (subject["score"], subject["counts"], subject["class_scores"]) == (
            None, None, None)
    read = ok(client.get(session.url), 200)
    assert (read["state"], read["outcome"], read["quorum_failed"]) == (
        "closed", "quorum-failed", failed)

    # The files record why there is no score, and no score.
    for subject in ("team:E1", "team:E2"):
        assert services.evaluation.file(Y, subject).democratic is None
        [withheld] = _withheld(services, subject)
        assert (withheld.session, withheld.reason) == (S, "quorum-failed")
        assert withheld.source_version == services.sessions.session(S).version
    body = refused_with(client.post(f"{BASE}/seal", json={}, headers=who.org), 409, "conflict",
                        "seal.inputs-complete")
    assert "team:E1" in body["detail"]

    # Explain shows the missing component and the close that left it missing.
    card = ok(client.get(f"{BASE}/subjects/team:E1/explain", headers=who.org), 200)
    assert "democratic" in card["result"]["missing"]
    [line] = [i for i in card["inputs"] if i["topic"] == SubjectFile.EvaluationWithheld.TOPIC]
    assert line["facts"]["reason"] == "quorum-failed"
    assert line["source"]["topic"] == "kaoping/EvaluationSession.Closed.v1"
    assert line["source"]["facts"]["quorum_failed"] == failed
    text = client.get(f"{BASE}/subjects/team:E1/explain", params={"format": "text"},
                      headers=who.org).text
    assert "quorum failed: public 3/6 (needs 4), no result" in text

    # The organizer acts: a new session, with enough of both classes, gives the scores.
    again = Session(client, who, "mzcp-2025-e-2")
    again.vote(cadres=6, public=4)
    ok(again.close())
    assert services.evaluation.file(Y, "team:E1").democratic is not None
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))


def test_a_second_session_does_not_replace_a_ballot_score_until_the_first_is_voided(
        client: Client, services: Services) -> None:
    who = People(services)
    democratic_cycle(client, services, who)
    first = Session(client, who)
    first.vote(cadres=6, public=4)
    ok(first.close())
    score = services.evaluation.file(Y, "team:E1").democratic
    assert score is not None

    second = Session(client, who, "mzcp-2025-e-2")
    second.vote(cadres=10, public=6)
    before, version = log_length(services), services.sessions.session("mzcp-2025-e-2").version
    body = refused_with(second.close(), 409, "conflict", "session.earlier-ballot-score",
                        "subjects")
    assert S in body["detail"]
    assert log_length(services) == before  # nothing written: the session is still open
    assert services.sessions.session("mzcp-2025-e-2").version == version
    assert services.evaluation.file(Y, "team:E1").democratic == score

    # The recorded decision: the first session is voided, with its reason and authority,
    # which withdraws its scores; the second session's close then records its own.
    ok(client.post(f"{first.url}/void", headers=who.org, json={
        "reason": "核实存在拉票行为", "authority": "市委组织部部务会议〔2025〕12号"}))
    for subject in ("team:E1", "team:E2"):
        assert services.evaluation.file(Y, subject).democratic is None
        [withheld] = _withheld(services, subject)
        assert (withheld.session, withheld.reason) == (S, "session-voided")
    ok(second.close())
    board = ok(client.get(f"{second.url}/board", headers=who.org), 200)
    e1 = next(s for s in board["result"]["subjects"] if s["subject"] == "team:E1")
    assert services.evaluation.file(Y, "team:E1").democratic == pytest.approx(float(e1["score"]))
    assert services.evaluation.file(Y, "team:E1").from_ballots == {
        "democratic": "mzcp-2025-e-2"}
    # Explain tells the whole story: the first score, its withdrawal by the void, the second.
    card = ok(client.get(f"{BASE}/subjects/team:E1/explain", headers=who.org), 200)
    lines = [i for i in card["inputs"] if i["part"] == "democratic/survey"
             and i["source"] is not None]
    assert [(i["source"]["facts"]["session"], i["source"]["topic"].rsplit(".", 2)[1])
            for i in lines] == [(S, "Closed"), (S, "Voided"), ("mzcp-2025-e-2", "Closed")]
    assert lines[1]["source"]["facts"]["authority"] == "市委组织部部务会议〔2025〕12号"
    assert card["result"]["components"]["democratic"] == e1["score"]


def test_a_session_rates_only_the_cycle_s_roster(client: Client, services: Services) -> None:
    who = People(services)
    democratic_cycle(client, services, who)
    outside = copy.deepcopy(DEFINITION)
    outside["subjects"] = ["team:E1", "team:ZZ9"]
    outside["code"] = "outside"
    before = log_length(services)
    body = refused_with(client.post("/api/v1/sessions", json=outside, headers=who.org), 422,
                        "invalid-input", "session.subject-in-roster", "subjects")
    assert "team:ZZ9" in body["detail"]
    assert "team:E1" not in body["detail"]
    assert log_length(services) == before
    refused_with(client.get("/api/v1/sessions/outside"), 404, "not-found", "session.exists")


def test_a_session_defined_before_its_cycle_opens_only_within_the_roster(
        client: Client, services: Services) -> None:
    """A year without a cycle takes any subjects (a rehearsal, results go nowhere); once the
    cycle exists, opening the session checks its roster."""
    who = People(services)
    early = copy.deepcopy(DEFINITION)
    early["subjects"] = ["team:E1", "team:ZZ9"]
    ok(client.post("/api/v1/sessions", json=early, headers=who.org))
    ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=who.org))
    democratic_cycle(client, services, who, scoring=False)
    before, version = log_length(services), services.sessions.session(S).version
    refused_with(client.post(f"/api/v1/sessions/{S}/open", json={}, headers=who.org), 422,
                 "invalid-input", "session.subject-in-roster", "subjects")
    assert (log_length(services), services.sessions.session(S).version) == (before, version)
    assert services.sessions.session(S).state.value == "frozen"
