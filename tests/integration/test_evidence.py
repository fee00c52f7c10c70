"""Evidence bundles verified offline, and the drills each caught with a specific message."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.cycle import Cycle
from domain.publication import ResultsPool
from domain.subject_file import SubjectFile
from service.demo import DemoCity
from service.evidence import build_bundle, encode_bundle
from service.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from service.migrate import migrate
from service.runtime import Services
from service.settings import Settings
from service.verify import VerifyError, verify_bundle

SUBJECT = "team:T02"


@pytest.fixture
def city(services: Services) -> Services:
    DemoCity(services, units=16, cadres=16, seed=5).run()
    return services


def _bundle(services: Services, since: int | None = None, *,
            ballots: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode_bundle(build_bundle(services, 2025, SUBJECT,
                                                                 since, ballots=ballots)))
    return data


def _verify(services: Services, bundle: dict[str, Any], trusted: bytes | None = None) -> str:
    with pytest.raises(VerifyError) as err:
        verify_bundle(json.dumps(bundle).encode(), [services.signer.vkey], trusted)
    return str(err.value)


def _announcement_checkpoint(services: Services) -> bytes:
    announcement = services.evaluation.cycle(2025).announcement
    assert announcement is not None
    return str(announcement["checkpoint"]).encode()


def _file_events(bundle: dict[str, Any], subject: str) -> list[dict[str, Any]]:
    sid = str(SubjectFile.id_for(2025, subject))
    return [e for e in bundle["events"] if e["stream_id"] == sid]


def test_a_bundle_verifies_offline(city: Services) -> None:
    bundle = _bundle(city)
    lines = verify_bundle(json.dumps(bundle).encode(), [city.signer.vkey],
                          _announcement_checkpoint(city))
    assert lines[0].startswith("checkpoint: ")
    assert lines[-1].startswith(f"{SUBJECT}: composite ")
    result = city.evaluation.pools(city.evaluation.cycle(2025), previous=city.evaluation
                                   .previous_ranks(2025)[1])
    mine = next(r for p in result for r in p.results if r.subject == SUBJECT)
    assert f"composite {mine.composite}, rank {mine.rank}" in lines[-1]
    notes = [e for e in bundle["events"] if e["topic"] == SubjectFile.InspectionNoted.TOPIC]
    assert notes
    assert all(e["payload"] is None for e in notes)  # restricted: only the hash travels


def _results_in(value: Any) -> set[str]:
    """Every subject a published result (a dict with ``final_grade``) in ``value`` names."""
    if isinstance(value, dict):
        found = {str(value["subject"])} if "final_grade" in value and "subject" in value else set()
        return found.union(*(_results_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_results_in(v) for v in value))
    return set()


def test_a_bundle_discloses_no_other_pool_s_results(city: Services) -> None:
    """The second notice format: the bundle carries its own pool's results, last year's pools
    that ranked its subjects, and the digests — no other subject's published result."""
    bundle = _bundle(city)
    cycle, before = city.evaluation.cycle(2025), city.evaluation.cycle(2024)
    entry = cycle.entry(SUBJECT)
    own = (entry.group, entry.kind.value)
    mine = {e.subject for e in cycle.pool(entry.group, entry.kind)}
    ranked = {(e.group, e.kind.value) for e in before.roster if e.subject in mine}
    allowed = mine | {e.subject for e in before.roster if (e.group, e.kind.value) in ranked}
    assert [(p["group"], p["kind"]) for p in bundle["results"]] == [own]
    everyone = {e.subject for e in cycle.roster}
    assert len(everyone - allowed) > len(allowed)  # most of the city is elsewhere
    payloads = [json.loads(base64.b64decode(e["payload"])) for e in bundle["events"]
                if e["payload"] is not None]
    disclosed = _results_in(payloads) | _results_in(bundle["results"])
    assert mine <= disclosed
    assert disclosed <= allowed, sorted(disclosed - allowed)[:5]
    streams = {e["stream_id"] for e in bundle["events"]}
    assert str(ResultsPool.id_for(2025, *own)) in streams
    assert {str(ResultsPool.id_for(2024, *k)) for k in ranked} <= streams
    assert not any(str(ResultsPool.id_for(2025, e.group, e.kind.value)) in streams
                   for e in cycle.roster if e.subject not in mine)
    lines = verify_bundle(json.dumps(bundle).encode(), [city.signer.vkey])
    assert lines[-1].startswith(f"{SUBJECT}: composite ")


def test_drill_the_pool_s_published_results_omitted(city: Services) -> None:
    bundle = _bundle(city)
    entry = city.evaluation.cycle(2025).entry(SUBJECT)
    sid = str(ResultsPool.id_for(2025, entry.group, entry.kind.value))
    bundle["events"] = [e for e in bundle["events"] if e["stream_id"] != sid]
    assert f"the published results of the pool {entry.group}/{entry.kind.value}" in _verify(
        city, bundle)


def test_drill_last_year_s_ranking_pool_omitted(city: Services) -> None:
    bundle = _bundle(city)
    entry = city.evaluation.cycle(2025).entry(SUBJECT)
    sid = str(ResultsPool.id_for(2024, entry.group, entry.kind.value))
    assert any(e["stream_id"] == sid for e in bundle["events"])
    bundle["events"] = [e for e in bundle["events"] if e["stream_id"] != sid]
    assert "that ranked this pool's subjects" in _verify(city, bundle)


def test_drill_one_payload_changed(city: Services) -> None:
    bundle = _bundle(city)
    event = next(e for e in _file_events(bundle, "team:T03")
                 if e["topic"] == SubjectFile.LeaderScored.TOPIC)
    doc = json.loads(base64.b64decode(event["payload"]))
    doc["score"] = "99.9"
    event["payload"] = base64.b64encode(json.dumps(doc).encode()).decode()
    message = _verify(city, bundle)
    assert message == (f"event at position {event['position']} ({event['topic']}): its payload "
                       "was altered")


def test_drill_one_event_removed_from_a_stream(city: Services) -> None:
    bundle = _bundle(city)
    events = _file_events(bundle, "team:T04")
    bundle["events"].remove(events[2])
    assert "version 3 is missing" in _verify(city, bundle)


def test_drill_one_event_put_in_twice(city: Services) -> None:
    bundle = _bundle(city)
    events = _file_events(bundle, "team:T04")
    bundle["events"].append(dict(events[2]))
    sid = events[2]["stream_id"]
    assert _verify(city, bundle) == f"stream {sid}: version 3 is in the bundle twice"


def test_drill_the_last_event_of_a_stream_removed(city: Services) -> None:
    bundle = _bundle(city)
    last = _file_events(bundle, "team:T05")[-1]
    bundle["events"].remove(last)
    message = _verify(city, bundle)
    assert message.startswith("the evidence stream of team:T05")
    assert "events withheld" in message


def test_drill_a_whole_evidence_stream_omitted(city: Services) -> None:
    bundle = _bundle(city)
    for event in _file_events(bundle, "team:T06"):
        bundle["events"].remove(event)
    assert _verify(city, bundle).startswith("the evidence stream of team:T06")


def test_drill_an_evaluation_result_dropped(city: Services) -> None:
    """Dropping the ballot tally recorded in a file (its 民主测评 input) breaks the chain."""
    bundle = _bundle(city)
    recorded = next(e for e in _file_events(bundle, SUBJECT)
                    if e["topic"] == SubjectFile.EvaluationRecorded.TOPIC)
    bundle["events"].remove(recorded)
    assert "is missing" in _verify(city, bundle)


SESSION = "bz-2025-t02"  # the 民主测评 of SUBJECT (东城街道's team), a real ballot session


def _ballot_events(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    streams: dict[str, list[dict[str, Any]]] = {}
    for e in bundle["events"]:
        if e["topic"].startswith("kaoping/Ballot."):
            streams.setdefault(e["stream_id"], []).append(e)
    return streams


def _session_ballots(bundle: dict[str, Any], city: Services) -> dict[str, list[dict[str, Any]]]:
    """The ballots of SESSION (the pool's bundle carries each of its teams' sessions)."""
    trackers = set(city.sessions.session(SESSION).trackers)
    return {stream: events for stream, events in _ballot_events(bundle).items()
            if events[-1]["leaf_hash"] in trackers}


def test_a_bundle_carries_ballots_only_when_asked(city: Services) -> None:
    bundle = _bundle(city)
    assert bundle["ballots"] is False
    assert _ballot_events(bundle) == {}
    session = city.sessions.session(SESSION)
    assert any(e["stream_id"] == str(session.id) for e in bundle["events"])  # its close, board
    lines = verify_bundle(json.dumps(bundle).encode(), [city.signer.vkey])
    assert (f"ballots: session {SESSION}: the scores recorded from it match the tally its "
            f"close recorded ({len(session.trackers)} ballots on its board; not recounted: "
            "this bundle carries no ballots)") in lines


def test_drill_a_recorded_score_that_is_not_the_close_s_tally(city: Services) -> None:
    # The bundle's file event says 83.65 came from the session; a forger who changes it (and
    # its payload hash) breaks the chain; so does one who changes the close's tally.
    bundle = _bundle(city)
    sid = str(city.sessions.session(SESSION).id)
    closed = next(e for e in bundle["events"] if e["stream_id"] == sid
                  and e["topic"].endswith("Closed.v1"))
    doc = json.loads(base64.b64decode(closed["payload"]))
    doc["result"]["subjects"][0]["score"] = "12.34"
    payload = json.dumps(doc).encode()
    closed["payload"] = base64.b64encode(payload).decode()
    closed["payload_hash"] = hashlib.sha256(payload).hexdigest()
    assert "does not match its leaf hash" in _verify(city, bundle)


def test_ballots_travel_in_the_bundle_and_are_recounted(city: Services) -> None:
    bundle = _bundle(city, ballots=True)
    session = city.sessions.session(SESSION)
    ballots = _session_ballots(bundle, city)
    assert session.result is not None
    assert len(ballots) == len(session.trackers) == sum(c.used for c in session.result.classes)
    assert len(_ballot_events(bundle)) > len(ballots)  # the other teams' sessions travel too
    lines = verify_bundle(json.dumps(bundle).encode(), [city.signer.vkey])
    assert (f"ballots: session {SESSION}: {len(ballots)} ballots on its board recounted; its "
            "tally and the scores recorded from it match") in lines
    # The township teams' satisfaction surveys were counted elsewhere and entered by hand.
    assert any("entered by hand" in line for line in lines)
    tally = next(t for t in session.result.subjects if t.subject == SUBJECT)
    assert city.evaluation.file(2025, SUBJECT).democratic == tally.score


def test_drill_one_ballot_dropped_from_a_session(city: Services) -> None:
    bundle = _bundle(city, ballots=True)
    dropped = next(iter(_session_ballots(bundle, city).values()))
    for event in dropped:
        bundle["events"].remove(event)
    message = _verify(city, bundle)
    assert message == (f"session {SESSION}: 1 ballot(s) on the board are missing from the bundle "
                       f"(e.g. tracker {dropped[-1]['leaf_hash']})")


def test_drill_a_ballot_session_omitted(city: Services) -> None:
    bundle = _bundle(city, ballots=True)
    sid = str(city.sessions.session(SESSION).id)
    bundle["events"] = [e for e in bundle["events"] if e["stream_id"] != sid]
    assert _verify(city, bundle) == (f"session {SESSION}: its stream is omitted, though a "
                                     "recorded score came from its close")


def test_drill_a_ballot_altered(city: Services) -> None:
    bundle = _bundle(city, ballots=True)
    cast = next(iter(_session_ballots(bundle, city).values()))[0]
    doc = json.loads(base64.b64decode(cast["payload"]))
    doc["answers"][SUBJECT] = dict.fromkeys(doc["answers"][SUBJECT], "poor")
    payload = json.dumps(doc).encode()
    cast["payload"] = base64.b64encode(payload).decode()
    cast["payload_hash"] = hashlib.sha256(payload).hexdigest()
    assert "does not match its leaf hash" in _verify(city, bundle)


def test_drill_the_scheme_swapped(city: Services) -> None:
    bundle = _bundle(city)
    cycle_sid = str(Cycle.id_for(2025))
    event = next(e for e in bundle["events"] if e["stream_id"] == cycle_sid
                 and e["topic"] == Cycle.SchemeSet.TOPIC)
    doc = json.loads(base64.b64decode(event["payload"]))
    doc["scheme"]["satisfaction_threshold"] = "0.1"
    payload = json.dumps(doc).encode()
    event["payload"] = base64.b64encode(payload).decode()
    event["payload_hash"] = hashlib.sha256(payload).hexdigest()  # a careful forger
    message = _verify(city, bundle)
    assert message == (f"event at position {event['position']} ({event['topic']}): it does not "
                       "match its leaf hash (altered, reordered or out of its stream's chain)")


def test_drill_a_checkpoint_from_another_key(city: Services) -> None:
    bundle = _bundle(city)
    cp = Checkpoint.parse_body(bundle["checkpoint"].split("\n\n")[0].encode() + b"\n")
    bundle["checkpoint"] = sign_checkpoint(cp, cp.origin, Ed25519PrivateKey.generate()).decode()
    assert _verify(city, bundle).startswith("checkpoint: ")


def test_drill_the_claimed_score_changed(city: Services) -> None:
    bundle = _bundle(city)
    for pool in bundle["results"]:
        for result in pool["results"]:
            if result["subject"] == SUBJECT:
                result["composite"] = "99.99"
    assert _verify(city, bundle).startswith("the claimed results are not the published ones")


def test_drill_the_score_function_claimed_changed(city: Services) -> None:
    bundle = _bundle(city)
    published = bundle["score_version"]
    bundle["score_version"] = "kaoping-score/3"
    assert _verify(city, bundle) == (
        f"the bundle says score function kaoping-score/3, but the cycle was "
        f"published with {published}")


def test_drill_a_rewritten_log_resigned_with_the_right_key(city: Services, settings: Settings,
                                                           tmp_path: Path) -> None:
    trusted = _announcement_checkpoint(city)
    size = open_checkpoint(trusted, [city.signer.vkey]).size
    # The operator rebuilds the store from scratch with one input changed and re-signs it with
    # the same key (but not the signer's memory of what it signed).
    other_key = tmp_path / "rewritten.key"
    shutil.copy(settings.signing_key_path, other_key)
    other = Settings(database_url=f"sqlite:///{tmp_path / 'rewritten.db'}",
                     signing_key_path=str(other_key), token_key_path=str(tmp_path / "t.key"),
                     ledger_origin=settings.ledger_origin)
    migrate(other)
    forged = Services(other)
    try:
        DemoCity(forged, units=16, cadres=16, seed=6).run()
        bundle = _bundle(forged, since=size)
        # Internally consistent and signed with the published key …
        verify_bundle(json.dumps(bundle).encode(), [city.signer.vkey])
        # … but not an extension of the checkpoint the investigator already holds.
        message = _verify(city, bundle, trusted)
        assert "is not an extension of the trusted checkpoint" in message
    finally:
        forged.close()


def test_bundles_over_http_need_a_reader_role(city: Services, settings: Settings) -> None:
    from litestar.testing import TestClient  # noqa: PLC0415

    from api import create_app  # noqa: PLC0415
    from service.principals import IdentityKind, Role  # noqa: PLC0415
    from tests.conftest import bearer  # noqa: PLC0415

    with TestClient[Any](app=create_app(settings, services=city)) as client:
        url = f"/api/v1/cycles/2025/subjects/{SUBJECT}/evidence"
        leader = bearer(city, Role.LEADER, IdentityKind.LEADER, "L01")
        assert client.get(url, headers=leader).status_code == 403
        organizer = bearer(city, Role.ORGANIZER, IdentityKind.STAFF, "zzb-01")
        refused = client.get(url, params={"ballots": "true"}, headers=organizer)
        assert refused.status_code == 403
        assert refused.json()["rule"] == "evidence.ballots-reader"
        supervisor = bearer(city, Role.SUPERVISOR)
        with_ballots = client.get(url, params={"ballots": "true"}, headers=supervisor)
        assert with_ballots.status_code == 200
        assert msgspec.json.decode(with_ballots.content)["ballots"] is True
        assert any("ballots on its board recounted" in line
                   for line in verify_bundle(with_ballots.content, [city.signer.vkey]))
        city.follower.catch_up()
        with city.db.read() as cur:
            cur.execute("SELECT what, reader, role FROM rm_access_log ORDER BY position")
            reads = [tuple(r) for r in cur.fetchall()]
        assert ("evidence+ballots", "supervisor") in {(what, role) for what, _, role in reads}
        assert ("evidence+ballots", "organizer") not in {(w, r) for w, _, r in reads}
        resp = client.get(url, headers=supervisor)
        assert resp.status_code == 200
        assert "attachment" in resp.headers["content-disposition"]
        lines = verify_bundle(resp.content, [city.signer.vkey])
        assert lines[-1].startswith(SUBJECT)
        bundle = msgspec.json.decode(resp.content)
        assert bundle["subject"] == SUBJECT


def test_explain_traces_a_democratic_score_to_the_session_close(city: Services) -> None:
    from service.explain import explain, render  # noqa: PLC0415

    with city.db.read() as cur:
        card = explain(cur, city.store.mapper, 2025, SUBJECT, None, restricted_ok=False)
    [line] = [i for i in card.inputs if i.topic == SubjectFile.EvaluationRecorded.TOPIC
              and i.facts["closed_version"] is not None]
    session = city.sessions.session(SESSION)
    assert session.result is not None
    tally = next(t for t in session.result.subjects if t.subject == SUBJECT)
    assert line.source is not None
    assert line.source.topic == "kaoping/EvaluationSession.Closed.v1"
    assert line.source.version == session.version == line.facts["closed_version"]
    assert line.source.facts["ballots_on_board"] == len(session.trackers)
    assert line.source.facts["tally"]["score"] == tally.score
    assert line.facts["democratic"] == tally.score == card.result.components[
        next(c for c in card.result.components if c.value == "democratic")]
    assert (f"{len(session.trackers)} ballots on the board, {tally.valid_ballots} valid for "
            f"this subject, score {tally.score}") in render(card)


def test_a_ballot_committed_after_the_cut_leaves_an_honest_bundle_valid(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection for two races the close cannot exclude: a ballot committed between the
    cut and the close's read of the ballots (counted late), and a revote committed just after
    the close (the board keeps the ballot as it stood at the cut)."""
    import service.ballots as ballots_module  # noqa: PLC0415
    from domain.ballots import replaced_event  # noqa: PLC0415

    real_head = getattr(ballots_module, "head_position")  # noqa: B009 -- imported there
    real_close = ballots_module.Sessions.close

    def cut_before_the_last(cur: Any) -> int:
        return int(real_head(cur)) - 1

    def close_then_revote(self: Any, principal: Any, code: str, after_append: Any = None) -> Any:
        written = real_close(self, principal, code, after_append)
        _, leaf = self.ballots(self.session(code))[0]  # a ballot on the board
        stream = leaf.stream_id
        ballot = self.store.repository.get(stream)
        self.writer.submit(replaced_event(stream, ballot.version + 1, ballot.modified_on,
                                          ballot.answers)).result(30)
        return written

    monkeypatch.setattr(ballots_module, "head_position", cut_before_the_last)
    monkeypatch.setattr(ballots_module.Sessions, "close", close_then_revote)
    DemoCity(services, units=16, cadres=16, seed=5).run()
    session = services.sessions.session(SESSION)
    assert session.result is not None
    assert sum(c.late for c in session.result.classes) == 1
    bundle = _bundle(services, ballots=True)
    lines = verify_bundle(json.dumps(bundle).encode(), [services.signer.vkey])
    assert any(f"session {SESSION}: {len(session.trackers)} ballots on its board recounted"
               in line for line in lines)


def test_drill_a_hand_entry_over_a_ballot_result(services: Services,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The service refuses it (tests/e2e/test_ballots.py); a server that wrote one anyway,
    below its own rules, is caught by the verifier, with or without the ballots."""
    from decimal import Decimal  # noqa: PLC0415

    import service.ballots as ballots_module  # noqa: PLC0415

    real_close = ballots_module.Sessions.close

    def close_then_override(self: Any, principal: Any, code: str,
                            after_append: Any = None) -> Any:
        written = real_close(self, principal, code, after_append)
        if code == SESSION:
            file = services.evaluation.file(2025, SUBJECT)
            file.record_evaluation("paper-2025", Decimal("99.99"), None, principal.id)
            services.store.save(file)
        return written

    monkeypatch.setattr(ballots_module.Sessions, "close", close_then_override)
    DemoCity(services, units=16, cadres=16, seed=5).run()
    for ballots in (False, True):
        bundle = _bundle(services, ballots=ballots)
        override = [e for e in _file_events(bundle, SUBJECT)
                    if e["topic"] == SubjectFile.EvaluationRecorded.TOPIC][-1]
        assert _verify(services, bundle) == (
            f"{SUBJECT}: a result entered by hand (position {override['position']}) replaces "
            "the democratic a ballot session's close recorded")
