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


def _bundle(services: Services, since: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode_bundle(build_bundle(services, 2025, SUBJECT,
                                                                 since)))
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
                                   .previous_ranks(2025))
    mine = next(r for p in result for r in p.results if r.subject == SUBJECT)
    assert f"composite {mine.composite}, rank {mine.rank}" in lines[-1]
    notes = [e for e in bundle["events"] if e["topic"] == SubjectFile.InspectionNoted.TOPIC]
    assert notes
    assert all(e["payload"] is None for e in notes)  # restricted: only the hash travels


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


SESSION = "mzcp-2025-xz"  # the demo's township teams' 民主测评, a real ballot session


def _ballot_events(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    streams: dict[str, list[dict[str, Any]]] = {}
    for e in bundle["events"]:
        if e["topic"].startswith("kaoping/Ballot."):
            streams.setdefault(e["stream_id"], []).append(e)
    return streams


def test_ballots_travel_in_the_bundle_and_are_recounted(city: Services) -> None:
    bundle = _bundle(city)
    session = city.sessions.session(SESSION)
    ballots = _ballot_events(bundle)
    assert session.result is not None
    assert len(ballots) == len(session.trackers) == sum(c.used for c in session.result.classes)
    assert {e[-1]["leaf_hash"] for e in ballots.values()} == set(session.trackers)
    lines = verify_bundle(json.dumps(bundle).encode(), [city.signer.vkey])
    assert (f"ballots: session {SESSION}: {len(ballots)} ballots on its board recounted; its "
            "tally and the scores recorded from it match") in lines
    # The township teams' satisfaction surveys were counted elsewhere and entered by hand.
    assert any("entered by hand" in line for line in lines)
    tally = next(t for t in session.result.subjects if t.subject == SUBJECT)
    assert city.evaluation.file(2025, SUBJECT).democratic == tally.score


def test_drill_one_ballot_dropped_from_a_session(city: Services) -> None:
    bundle = _bundle(city)
    dropped = next(iter(_ballot_events(bundle).values()))
    for event in dropped:
        bundle["events"].remove(event)
    message = _verify(city, bundle)
    assert message == (f"session {SESSION}: 1 ballot(s) on the board are missing from the bundle "
                       f"(e.g. tracker {dropped[-1]['leaf_hash']})")


def test_drill_a_ballot_session_omitted(city: Services) -> None:
    bundle = _bundle(city)
    sid = str(city.sessions.session(SESSION).id)
    bundle["events"] = [e for e in bundle["events"] if e["stream_id"] != sid]
    assert _verify(city, bundle) == (f"session {SESSION}: its stream is omitted, though a "
                                     "recorded score came from its close")


def test_drill_a_ballot_altered(city: Services) -> None:
    bundle = _bundle(city)
    cast = next(iter(_ballot_events(bundle).values()))[0]
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
        resp = client.get(url, headers=bearer(city, Role.SUPERVISOR))
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
