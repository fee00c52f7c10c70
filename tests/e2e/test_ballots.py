"""Anonymous ballots through HTTP on both stores, and domain-notes §5.4 items 1–10."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from domain.ballots import Ballot, SessionDefinition, ballot_id, credential_hash
from service.ledger import merkle
from service.ledger.checkpoint import open_checkpoint
from service.principals import Identity, IdentityKind, Principal, Role
from service.runtime import Services
from tests.conftest import bearer

Client = TestClient[Any]
S = "mzcp-2025-e"
SUBJECTS = ["team:E1", "team:E2"]
DEFINITION: dict[str, Any] = {
    "code": S, "year": 2025, "kind": "democratic", "title": "2025年度领导班子民主测评",
    "subjects": SUBJECTS,
    "items": [{"code": "de", "label": "德"}, {"code": "ji", "label": "绩"}],
    "options": [{"code": "excellent", "label": "优秀", "value": "100"},
                {"code": "good", "label": "称职", "value": "80"},
                {"code": "fair", "label": "基本称职", "value": "60"},
                {"code": "poor", "label": "不称职", "value": "0"},
                {"code": "unknown", "label": "不了解", "value": "0", "counted": False}],
    "classes": [{"code": "cadres", "label": "干部", "weight": "0.6", "eligible": 10},
                {"code": "public", "label": "群众", "weight": "0.4", "eligible": 6}],
    "rules": {"quorum": "0.5", "min_valid": 3, "top_option": "excellent", "max_top": 1,
              "identical_invalid": True, "identical_min_subjects": 2},
}


def _answers(e1: tuple[str, str], e2: tuple[str, str]) -> dict[str, dict[str, str]]:
    return {"team:E1": {"de": e1[0], "ji": e1[1]}, "team:E2": {"de": e2[0], "ji": e2[1]}}


def ok(resp: Any, status: int = 201) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def refused(resp: Any, status: int, rule: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    if rule is not None:
        assert body["rule"] == rule, body
    return body


class Box:
    def __init__(self, client: Client, services: Services) -> None:
        self.client, self.services = client, services
        self.org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
        ok(client.post("/api/v1/sessions", json=DEFINITION, headers=self.org))
        ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=self.org))
        self.cadres = ok(client.post(f"/api/v1/sessions/{S}/credentials",
                                     json={"rater_class": "cadres", "count": 8},
                                     headers=self.org))["codes"]
        self.public = ok(client.post(f"/api/v1/sessions/{S}/credentials",
                                     json={"rater_class": "public", "count": 4},
                                     headers=self.org))["codes"]

    def open(self) -> None:
        ok(self.client.post(f"/api/v1/sessions/{S}/open", json={}, headers=self.org))

    def cast(self, code: str, answers: dict[str, dict[str, str]]) -> Any:
        return self.client.post(f"/api/v1/sessions/{S}/ballots",
                                json={"credential": code, "answers": answers})

    def close(self) -> dict[str, Any]:
        ok(self.client.post(f"/api/v1/sessions/{S}/close", json={}, headers=self.org))
        public = ok(self.client.get(f"/api/v1/sessions/{S}/board"), 200)
        # Before publication the public board shows no subject's tally, only the counts.
        assert all(t["withheld"] and t["score"] is None and t["counts"] is None
                   for t in public["result"]["subjects"])
        board = ok(self.client.get(f"/api/v1/sessions/{S}/board", headers=self.org), 200)
        assert (board["trackers"], board["result"]["classes"]) == (
            public["trackers"], public["result"]["classes"])
        return board


@pytest.fixture
def box(client: Client, services: Services) -> Box:
    return Box(client, services)


def _ballot_rows(services: Services) -> list[dict[str, Any]]:
    with services.db.read() as cur:
        cur.execute("SELECT state FROM kaoping_events WHERE topic = %s", (Ballot.Cast.TOPIC,))
        return [json.loads(bytes(s)) for (s,) in cur.fetchall()]


def test_a_session_from_definition_to_board(box: Box, services: Services) -> None:
    box.open()
    g, e, f = "good", "excellent", "fair"
    valid = [  # (E1 de, E1 ji), (E2 de, E2 ji)
        (box.cadres[0], _answers((e, g), (g, g))), (box.cadres[1], _answers((g, g), (f, g))),
        (box.cadres[2], _answers((e, e), (g, f))), (box.cadres[3], _answers((g, f), (g, g))),
        (box.public[0], _answers((g, g), (f, f))), (box.public[1], _answers((e, g), (g, f))),
        (box.public[2], _answers((g, "unknown"), (f, g))),
        (box.public[3], _answers((f, f), (g, g))),
    ]
    receipts = {code: ok(box.cast(code, answers)) for code, answers in valid}
    invalid_identical = box.cast(box.cadres[4], _answers((g, g), (g, g)))
    invalid_two_top = box.cast(box.cadres[5], _answers((e, g), (e, g)))
    assert invalid_identical.status_code == invalid_two_top.status_code == 201  # kept, counted
    board = box.close()

    result = board["result"]
    classes = {c["rater_class"]: c for c in result["classes"]}
    assert (classes["cadres"]["issued"], classes["cadres"]["used"], classes["cadres"]["valid"],
            classes["cadres"]["invalid"]) == (8, 6, 4, 2)
    # 实到 > 应到的半数: 6 of 10 and 4 of 6 (3 of 6 would not be enough)
    assert (classes["cadres"]["quorum_met"], classes["cadres"]["required"]) == (True, 6)
    assert (classes["public"]["used"], classes["public"]["quorum_met"],
            classes["public"]["required"]) == (4, True, 4)
    assert result["quorum_failed"] == []
    assert result["invalid_reasons"] == {"identical": 1, "too-many-top": 1}
    # Hand tally for team:E1 (values: excellent 100, good 80, fair 60; unknown not counted):
    #   cadres: de = (100+80+100+80)/4 = 90; ji = (80+80+100+60)/4 = 80  → class 85
    #   public: de = (80+100+80+60)/4 = 80; ji = (80+80+60)/3 = 73.33    → class 76.67
    #   score = 0.6*85 + 0.4*76.666… = 51 + 30.666… = 81.67
    e1 = next(s for s in result["subjects"] if s["subject"] == "team:E1")
    assert e1["valid_ballots"] == 8
    assert e1["counts"]["de"] == {"excellent": 3, "fair": 1, "good": 4}
    assert e1["class_scores"] == {"cadres": "85.00", "public": "76.67"}
    assert e1["score"] == "81.67"
    # The board lists every counted ballot's tracker, sorted, and each one is provably in the log.
    trackers = [r["tracker"] for r in receipts.values()]
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger l JOIN kaoping_events e ON "
                    + ("e.notification_id" if services.db.engine == "postgres" else "e.rowid")
                    + " = l.notification_id WHERE e.topic = %s", (Ballot.Cast.TOPIC,))
        all_ballots = sorted(base64.b64encode(bytes(h)).decode() for (h,) in cur.fetchall())
    assert board["trackers"] == all_ballots == sorted(board["trackers"])
    assert set(trackers) <= set(board["trackers"])
    cp = open_checkpoint(services.signer.sign(services.db, services.clock.now()).note,
                         [services.signer.vkey])
    for receipt in receipts.values():
        leaf, proof = services.ledger.inclusion(receipt["position"], cp.size)
        assert base64.b64encode(leaf).decode() == receipt["tracker"]
        assert merkle.verify_inclusion(receipt["position"], cp.size, leaf, proof, cp.root)


def test_abuse_1_a_credential_counts_once(box: Box, services: Services) -> None:
    box.open()
    answers = _answers(("good", "fair"), ("good", "good"))
    ok(box.cast(box.cadres[0], answers))
    # The same refusal whatever the answers: a receipt for the same answers would tell whoever
    # holds the slip after the vote how it was cast (try answers until one is not refused).
    same = refused(box.cast(box.cadres[0], answers), 409, "ballot.credential-used")
    other = refused(box.cast(box.cadres[0], _answers(("poor", "poor"), ("fair", "good"))), 409,
                    "ballot.credential-used")
    assert {k: v for k, v in same.items() if k not in ("request_id", "instance")} == {
        k: v for k, v in other.items() if k not in ("request_id", "instance")}
    assert len(_ballot_rows(services)) == 1
    # and the slip that voted is not revoked (its ballot counts): said so, nothing written
    refused(box.client.post(f"/api/v1/sessions/{S}/credentials/revocations", headers=box.org,
                            json={"credential": box.cadres[0], "reason": "lost"}), 409,
            "credential.unused")


def test_a_ballot_names_only_its_sheets_subjects_items_and_options(
        box: Box, services: Services) -> None:
    box.open()
    good = _answers(("good", "fair"), ("good", "good"))
    subject = next(iter(good))
    for answers, field in (
            ({**good, "team:X9": {"de": "good"}}, "answers"),
            ({**good, subject: {**good[subject], "junk" * 10: "good"}}, f"answers.{subject}"),
            ({**good, subject: {**good[subject], "de": "写入的文字"}}, f"answers.{subject}.de"),
            ({f"team:Z{i}": {f"q{j}": "x" * 60 for j in range(10)} for i in range(300)},
             "answers")):
        body = refused(box.cast(box.cadres[1], answers), 422, "ballot.answers")
        assert body["field"] == field, body
    assert _ballot_rows(services) == []
    ok(box.cast(box.cadres[1], good))
    assert len(_ballot_rows(services)) == 1


def test_abuse_2_credentials_from_elsewhere_are_not_valid(box: Box, services: Services) -> None:
    box.open()
    refused(box.cast("x" * 22, _answers(("good", "good"), ("good", "fair"))), 422,
            "credential.valid")
    other = {**DEFINITION, "code": "other-session"}
    ok(box.client.post("/api/v1/sessions", json=other, headers=box.org))
    ok(box.client.post("/api/v1/sessions/other-session/freeze", json={}, headers=box.org))
    foreign = ok(box.client.post("/api/v1/sessions/other-session/credentials",
                                 json={"rater_class": "cadres", "count": 1},
                                 headers=box.org))["codes"][0]
    refused(box.cast(foreign, _answers(("good", "good"), ("good", "fair"))), 422,
            "credential.valid")
    assert _ballot_rows(services) == []


def test_abuse_3_never_more_ballots_than_credentials(box: Box) -> None:
    body = refused(box.client.post(f"/api/v1/sessions/{S}/credentials",
                                   json={"rater_class": "cadres", "count": 3}, headers=box.org),
                   422, "credentials.not-more-than-eligible")
    assert "10 eligible" in body["detail"]
    # Each ballot is the stream of its credential's hash: a ballot without an issued
    # credential cannot be stored, and two ballots cannot share one (see abuse 1).
    session = box.services.sessions.session(S)
    assert len(session.credentials) == 12


def test_abuse_4_a_class_below_quorum_gives_no_result(box: Box) -> None:
    """实到 must be more than half of 应到 in every class; one class short fails the session
    (the other class's ballots are not counted on their own, re-weighted)."""
    box.open()
    for code in box.cadres[:8] + box.public[:3]:  # 8 of 10 cadres; 3 of 6 public is not > half
        ok(box.cast(code, _answers(("good", "fair"), ("good", "excellent"))))
    board = box.close()
    result = board["result"]
    classes = {c["rater_class"]: c for c in result["classes"]}
    assert (classes["cadres"]["quorum_met"], classes["public"]["quorum_met"]) == (True, False)
    assert board["outcome"] == "quorum-failed"
    assert result["quorum_failed"] == [
        {"rater_class": "public", "present": 3, "eligible": 6, "required": 4}]
    for subject in result["subjects"]:  # nothing counted, all withheld
        assert (subject["withheld"], subject["withheld_reason"]) == (True, "quorum-failed")
        assert subject["counts"] is None
        assert subject["score"] is None
    assert board["trackers"]  # the ballots themselves stay on the board, checkable


def test_abuse_5_invalid_ballots_are_counted_as_invalid(box: Box) -> None:
    box.open()
    ok(box.cast(box.cadres[0], _answers(("excellent", "good"), ("excellent", "good"))))
    ok(box.cast(box.cadres[1], _answers(("good", "good"), ("good", "good"))))
    ok(box.cast(box.cadres[2], {"team:E1": {"de": "good", "ji": "good"}}))
    result = box.close()["result"]
    cadres = next(c for c in result["classes"] if c["rater_class"] == "cadres")
    assert (cadres["used"], cadres["valid"], cadres["invalid"]) == (3, 0, 3)
    assert result["invalid_reasons"] == {"identical": 1, "subjects": 1, "too-many-top": 1}


def test_abuse_6_no_ballots_before_open_or_after_close(box: Box, services: Services) -> None:
    answers = _answers(("good", "fair"), ("good", "good"))
    refused(box.cast(box.cadres[0], answers), 409, "ballot.session-open")
    box.open()
    box.close()
    refused(box.cast(box.cadres[1], answers), 409, "ballot.session-open")
    assert _ballot_rows(services) == []


def test_abuse_8_nothing_links_a_ballot_to_a_person(box: Box, services: Services,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    box.open()
    code = box.cadres[0]
    answers = _answers(("good", "fair"), ("good", "good"))
    ok(box.cast(code, answers))
    [row] = _ballot_rows(services)
    assert set(row) == {"session", "rater_class", "credential_hash", "answers", "timestamp",
                        "originator_topic"}
    assert row["credential_hash"] == credential_hash(S, code)  # the code itself is not stored
    assert row["timestamp"].endswith(":00:00Z") or row["timestamp"].endswith(":00:00+00:00")
    logged = caplog.text + repr([r.msg for r in caplog.records])
    assert code not in logged
    assert "testclient" not in logged  # no client address
    assert "fair" not in logged  # no answers
    # Results for fewer than k valid ballots are withheld (k = 3 here).
    result = box.close()["result"]
    assert all(s["withheld"] and s["counts"] is None for s in result["subjects"])
    # The stream id is derived from the hash, not from any person or time.
    stream = ballot_id(S, credential_hash(S, code))
    assert services.store.repository.get(stream).rater_class == "cadres"


def test_abuse_9_a_session_is_voided_never_edited(box: Box, services: Services) -> None:
    box.open()
    ok(box.cast(box.cadres[0], _answers(("good", "fair"), ("good", "good"))))
    student = bearer(services, Role.LEADER, IdentityKind.LEADER, "L1")
    refused(box.client.post(f"/api/v1/sessions/{S}/void",
                            json={"reason": "拉票", "authority": "纪委"}, headers=student),
            403, "role")
    ok(box.client.post(f"/api/v1/sessions/{S}/void",
                       json={"reason": "发现拉票", "authority": "市委组织部〔2025〕9号"},
                       headers=box.org))
    assert ok(box.client.get(f"/api/v1/sessions/{S}"), 200)["state"] == "voided"
    assert len(_ballot_rows(services)) == 1  # the ballot is still there, untouched


def test_abuse_10_credential_guessing_is_throttled(box: Box) -> None:
    box.open()
    answers = _answers(("good", "fair"), ("good", "good"))
    statuses = [box.cast(f"guess-{i:016d}", answers).status_code for i in range(25)]
    assert statuses[:20] == [422] * 20
    assert statuses[20:] == [429] * 5
    body = refused(box.cast(box.cadres[0], answers), 429, "ballot.refusals-per-client")
    assert body["field"] == "credential"


def test_issued_codes_are_shown_once(box: Box) -> None:
    headers = {**box.org, "Idempotency-Key": "issue-1"}
    first = ok(box.client.post(f"/api/v1/sessions/{S}/credentials",
                               json={"rater_class": "public", "count": 1}, headers=headers))
    assert len(first["codes"][0]) >= 22  # 16 random bytes, base64url: 128 bits
    assert first["sheet_svg"].startswith("<svg")
    assert first["vote_urls"][0].endswith(f"/vote/{S}#c={first['codes'][0]}")
    refused(box.client.post(f"/api/v1/sessions/{S}/credentials",
                            json={"rater_class": "public", "count": 1}, headers=headers),
            409, "credentials.shown-once")
    assert len(box.services.sessions.session(S).credentials) == 13


def test_closing_records_the_scores_in_the_subjects_files(client: Client,
                                                         services: Services) -> None:
    from tests.e2e.test_cycle_scenario import People, setup_cycle  # noqa: PLC0415

    setup_cycle(client, services, People(services))
    box = Box(client, services)
    box.open()
    for code in box.cadres[:6] + box.public[:4]:  # more than half of each class
        ok(box.cast(code, _answers(("good", "fair"), ("excellent", "good"))))
    board = box.close()
    e2 = next(s for s in board["result"]["subjects"] if s["subject"] == "team:E2")
    assert services.evaluation.file(2025, "team:E2").democratic == pytest.approx(
        float(e2["score"]))
    # A result counted here is never replaced, nor imitated, by one entered by hand.
    url = "/api/v1/cycles/2025/subjects/team:E2/evaluations"
    version = services.evaluation.file(2025, "team:E2").version
    refused(client.post(url, json={"session": "paper-2025", "democratic": "99.99"},
                        headers=box.org), 409, "evaluation.from-ballots")
    refused(client.post(url, json={"session": S, "satisfaction": "0.9"}, headers=box.org), 409,
            "evaluation.ballot-session")
    assert services.evaluation.file(2025, "team:E2").version == version  # nothing written
    ok(client.post(url, json={"session": "myd-paper", "satisfaction": "0.9"}, headers=box.org))


def test_concurrent_ballots_on_postgres(pg_services: Services) -> None:
    """200 distinct voters at once: all counted; 20 requests with one credential: one ballot,
    the other 19 refused."""
    org = Principal(id="person:staff:o", name="o", role=Role.ORGANIZER,
                    acts_as=Identity(IdentityKind.STAFF, "o"), via="test")
    sessions = pg_services.sessions
    definition = json.loads(json.dumps(DEFINITION))
    definition["classes"][0]["eligible"] = 300
    sessions.define(org, msgspec.convert(definition, SessionDefinition))
    sessions.freeze(org, S)
    _, codes = sessions.issue(org, S, "cadres", 220)
    sessions.open(org, S)
    answers = _answers(("good", "fair"), ("excellent", "good"))
    errors: list[BaseException] = []
    receipts: list[int] = []

    def vote(code: str) -> None:
        try:
            receipts.append(sessions.cast(S, code, answers).position)
        except BaseException as exc:  # noqa: BLE001 -- asserted below
            errors.append(exc)

    threads = [threading.Thread(target=vote, args=(c,)) for c in codes[:200]]
    threads += [threading.Thread(target=vote, args=(codes[200],)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the shared credential: one ballot; the 19 others refused alike (never a second ballot)
    assert [getattr(e, "rule", e) for e in errors] == ["ballot.credential-used"] * 19
    assert len(set(receipts)) == len(receipts) == 201  # 200 voters + the shared credential's
    assert len(_ballot_rows(pg_services)) == 201


def test_revoting_when_allowed_counts_the_last_ballot(client: Client, services: Services) -> None:
    definition = json.loads(json.dumps(DEFINITION))
    definition["rules"] |= {"revote": True, "min_valid": 1, "quorum": "0",
                            "quorum_rule": "at-least"}  # no quorum at all
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    ok(client.post("/api/v1/sessions", json=definition, headers=org))
    ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=org))
    [code] = ok(client.post(f"/api/v1/sessions/{S}/credentials",
                            json={"rater_class": "cadres", "count": 1}, headers=org))["codes"]
    ok(client.post(f"/api/v1/sessions/{S}/open", json={}, headers=org))
    cast = f"/api/v1/sessions/{S}/ballots"
    first = ok(client.post(cast, json={"credential": code,
                                       "answers": _answers(("poor", "poor"), ("fair", "good"))}))
    second = ok(client.post(cast, json={
        "credential": code, "answers": _answers(("good", "good"), ("fair", "good"))}))
    assert second["position"] > first["position"]
    ok(client.post(f"/api/v1/sessions/{S}/close", json={}, headers=org))
    board = ok(client.get(f"/api/v1/sessions/{S}/board", headers=org), 200)
    e1 = next(s for s in board["result"]["subjects"] if s["subject"] == "team:E1")
    assert e1["counts"] == {"de": {"good": 1}, "ji": {"good": 1}}  # only the last counts
    assert board["trackers"] == [second["tracker"]]


def test_a_ballot_committed_after_the_cut_is_late(box: Box, services: Services) -> None:
    from domain.ballots import tally  # noqa: PLC0415
    from projections.follower import head_position  # noqa: PLC0415

    box.open()
    answers = _answers(("good", "fair"), ("good", "good"))
    for code in box.cadres[:3]:
        ok(box.cast(code, answers))
    with services.db.read() as cur:
        cut = head_position(cur)  # the close's cut, taken while a ballot is still in flight
    ok(box.cast(box.cadres[3], answers))
    session = services.sessions.session(S)
    counted = [b for b, _ in services.sessions.ballots(session)]
    result = tally(session.definition, {"cadres": 8}, counted, cut)
    cadres = next(c for c in result.classes if c.rater_class == "cadres")
    assert (cadres.used, cadres.late) == (3, 1)
    assert len(_ballot_rows(services)) == 4  # kept, never dropped
