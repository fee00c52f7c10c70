"""Issue 11: the offline verifier and what ballot sessions put in the subjects' files -- a
session that failed quorum, a score replaced after a void (accepted), and a server that wrote
below its own rules (a silent replacement, a result hidden as "no result"), each caught."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient

import service.ballots as ballots_module
from service.evidence import build_bundle, encode_bundle
from service.runtime import Services
from service.verify import VerifyError, verify_bundle
from tests.e2e.test_ballot_rules import BASE, Session, democratic_cycle
from tests.e2e.test_ballots import S, ok
from tests.e2e.test_cycle_scenario import People, Y, approve

Client = TestClient[Any]
SECOND = "mzcp-2025-e-2"


def _publish(client: Client, services: Services, who: People) -> None:
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    approve(client, who, BASE)
    ok(client.post(f"{BASE}/publication", json={"notified_on": "2026-01-20"}, headers=who.org))


def _verify(services: Services, *, ballots: bool) -> list[str]:
    bundle = encode_bundle(build_bundle(services, Y, "team:E1", ballots=ballots))
    return verify_bundle(bundle, [services.signer.vkey])


def _refused(services: Services, *, ballots: bool) -> str:
    with pytest.raises(VerifyError) as err:
        _verify(services, ballots=ballots)
    return str(err.value)


def test_a_session_that_failed_quorum_verifies_as_no_result(client: Client,
                                                            services: Services) -> None:
    who = People(services)
    democratic_cycle(client, services, who)
    failed = Session(client, who)
    failed.vote(cadres=10, public=3)
    ok(failed.close())
    again = Session(client, who, SECOND)
    again.vote(cadres=6, public=4)
    ok(again.close())
    _publish(client, services, who)
    for ballots in (False, True):
        lines = _verify(services, ballots=ballots)
        assert (f"ballots: session {S}: quorum failed (public 3/6 (needs 4)); no result, as 2 "
                "file(s) record") in lines
        assert any(line.startswith(f"ballots: session {SECOND}: ") for line in lines)
    assert f"ballots: session {SECOND}: 10 ballots on its board recounted; its tally and the " \
           "scores recorded from it match" in _verify(services, ballots=True)


def test_a_score_replaced_after_a_void_verifies(client: Client, services: Services) -> None:
    who = People(services)
    democratic_cycle(client, services, who)
    first = Session(client, who)
    first.vote(cadres=6, public=4)
    ok(first.close())
    second = Session(client, who, SECOND)
    second.vote(cadres=10, public=6)
    ok(client.post(f"{first.url}/void", headers=who.org, json={
        "reason": "核实存在拉票行为", "authority": "市委组织部部务会议〔2025〕12号"}))
    ok(second.close())
    _publish(client, services, who)
    for ballots in (False, True):
        lines = _verify(services, ballots=ballots)
        [voided] = [line for line in lines if line.startswith(f"ballots: session {S} was voided")]
        assert voided.endswith("its scores were withdrawn from 2 file(s)")
        assert not any(line.startswith("WARNING") for line in lines)


def test_drill_a_second_close_that_silently_replaces_a_score(
        client: Client, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server below its own rules: the second close overwrites the first's scores without
    a void. The verifier names the replacement, with or without the ballots."""
    def overwrite(evaluation: Any, session: Any, actor: str, cycle: Any) -> Any:
        files = []
        for tally in session.result.subjects:
            file = evaluation.file(Y, tally.subject)
            file.from_ballots.clear()  # forget where the standing score came from
            file.record_evaluation(session.definition.code, tally.score, None, actor,
                                   session.version)
            files.append(file)
        return files

    who = People(services)
    democratic_cycle(client, services, who)
    first = Session(client, who)
    first.vote(cadres=6, public=4)
    ok(first.close())
    monkeypatch.setattr(ballots_module, "closed_in_files", overwrite)
    second = Session(client, who, SECOND)
    second.vote(cadres=10, public=6)
    ok(second.close())
    monkeypatch.undo()
    _publish(client, services, who)
    for ballots in (False, True):
        message = _refused(services, ballots=ballots)
        assert message.startswith(f"team:E1: the democratic score from session {SECOND}'s "
                                  "close (position ")
        assert message.endswith(f"silently replaces the one session {S}'s close recorded, "
                                "which no void withdrew")


def test_drill_a_result_hidden_as_no_result(client: Client, services: Services,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A server below its own rules records "quorum failed" for a session that met quorum,
    and then a count of its liking by hand: the close's own tally gives it away."""
    def hide(evaluation: Any, session: Any, actor: str, cycle: Any) -> Any:
        files = []
        for tally in session.result.subjects:
            file = evaluation.file(Y, tally.subject)
            file.withhold_evaluation(session.definition.code, session.version,
                                     "quorum-failed", actor)
            files.append(file)
        return files

    who = People(services)
    democratic_cycle(client, services, who)
    session = Session(client, who)
    session.vote(cadres=6, public=4)
    monkeypatch.setattr(ballots_module, "closed_in_files", hide)
    ok(session.close())
    monkeypatch.undo()
    for subject in ("team:E1", "team:E2"):
        ok(client.post(f"{BASE}/subjects/{subject}/evaluations",
                       json={"session": "paper-2025-b", "democratic": "99"}, headers=who.org))
    _publish(client, services, who)
    board = ok(client.get(f"{session.url}/board"), 200)
    score = next(s["score"] for s in board["result"]["subjects"] if s["subject"] == "team:E1")
    for ballots in (False, True):
        message = _refused(services, ballots=ballots)
        assert message.startswith(f"team:E1: its file says session {S} gave it no result "
                                  "(quorum-failed, position ")
        assert message.endswith(f"its close's tally gives {score}")


def test_bundles_name_the_sessions_behind_a_no_result(client: Client,
                                                      services: Services) -> None:
    """The bundle carries the stream of a session that only withheld results (no score came
    from it), so the verifier can read its close."""
    who = People(services)
    democratic_cycle(client, services, who)
    failed = Session(client, who)
    failed.vote(cadres=10, public=3)
    ok(failed.close())
    for subject in ("team:E1", "team:E2"):  # a count held elsewhere, entered by hand
        ok(client.post(f"{BASE}/subjects/{subject}/evaluations",
                       json={"session": "paper-2025-b", "democratic": "88"}, headers=who.org))
    _publish(client, services, who)
    bundle = json.loads(encode_bundle(build_bundle(services, Y, "team:E1", ballots=True)))
    sid = str(services.sessions.session(S).id)
    assert any(e["stream_id"] == sid for e in bundle["events"])
    assert sum(1 for e in bundle["events"] if e["topic"] == "kaoping/Ballot.Cast.v1") == 13
    lines = verify_bundle(json.dumps(bundle).encode(), [services.signer.vkey])
    assert any("quorum failed (public 3/6 (needs 4))" in line for line in lines)
    assert any("entered by hand" in line for line in lines)
