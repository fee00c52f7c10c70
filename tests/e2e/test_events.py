"""The event feed: CloudEvents in log order, role-filtered, nothing confidential; SSE resume."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import TestClient

from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_ballots import DEFINITION, S
from tests.e2e.test_cycle_scenario import BASE, People, ok, score_everything, setup_cycle

Client = TestClient[Any]
HIDDEN = ("kaoping.ballot.", "kaoping.case.", "kaoping.accessrecord.",
          "kaoping.subjectfile.inspectionnoted", "kaoping.evaluationsession.credentials")


def _all(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = -1
    for _ in range(100):
        body = ok(client.get(f"/api/v1/events?after={after}&limit=50", headers=headers), 200)
        items += body["items"]
        if body["next_after"] == after:
            return items
        after = body["next_after"]
    raise AssertionError("the feed did not end")


def _busy_log(client: Client, services: Services) -> People:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/subjects/team:E1/inspections/notes",
                   json={"activity": "interview", "notes": "保密"}, headers=who.team))
    ok(client.post("/api/v1/sessions", json=DEFINITION, headers=who.org))
    ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=who.org))
    codes = ok(client.post(f"/api/v1/sessions/{S}/credentials",
                           json={"rater_class": "cadres", "count": 2}, headers=who.org))["codes"]
    ok(client.post(f"/api/v1/sessions/{S}/open", json={}, headers=who.org))
    answers = {s: {"de": "good", "ji": "fair"} for s in DEFINITION["subjects"]}
    ok(client.post(f"/api/v1/sessions/{S}/ballots", json={"credential": codes[0],
                                                          "answers": answers}))
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf")
    ok(client.post("/api/v1/cases", json={"channel": "hotline", "year": 2025,
                                           "subjects": ["team:E1"], "summary": "x"},
                   headers=intake))
    return who


def test_the_feed_is_the_log_as_cloudevents_minus_what_is_confidential(
        client: Client, services: Services) -> None:
    who = _busy_log(client, services)
    events = _all(client, who.org)
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    types = {e["type"] for e in events}
    assert "kaoping.unit.registered.v1" in types
    assert "kaoping.subjectfile.leaderscored.v1" in types
    assert not [t for t in types if t.startswith(HIDDEN)]
    first = events[0]
    assert first["specversion"] == "1.0"
    assert first["id"] == f"{services.settings.ledger_origin}/{first['position']}"
    assert first["dataschema"] == f"/api/v1/events/schemas/{first['type']}"
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger WHERE position = %s",
                    (first["position"],))
        row = cur.fetchone()
    assert row is not None
    assert bytes(row[0]).hex() == first["leafhash"]
    unit = next(e for e in events if e["type"] == "kaoping.unit.registered.v1")
    assert unit["data"]["code"] == "E1"
    # Another role sees less: a department system gets no scores of the subjects' files.
    department = bearer(services, Role.DEPARTMENT, IdentityKind.DEPARTMENT, "F1")
    seen = {e["type"] for e in _all(client, department)}
    assert "kaoping.unit.registered.v1" in seen
    assert not [t for t in seen if t.startswith("kaoping.subjectfile.")
                and t != "kaoping.subjectfile.opened.v1"]
    assert client.get("/api/v1/events").status_code == 401


def test_the_stream_resumes_from_last_event_id(client: Client, services: Services) -> None:
    who = _busy_log(client, services)
    events = _all(client, who.org)

    def stream(headers: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        query = "limit=3" if "Last-Event-ID" in headers else "after=-1&limit=3"
        with client.stream("GET", f"/api/v1/events/stream?{query}", headers=headers) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            ident = ""
            for line in resp.iter_lines():
                if line.startswith("id:"):
                    ident = line[3:].strip()
                elif line.startswith("data:"):
                    out.append((ident, json.loads(line[5:].strip())))
        return out

    first = stream(who.org)
    assert [int(i) for i, _ in first] == [e["position"] for e in events[:3]]
    resumed = stream({**who.org, "Last-Event-ID": first[-1][0]})
    assert [d["position"] for _, d in resumed] == [e["position"] for e in events[3:6]]


def test_the_stream_says_where_it_starts(client: Client, services: Services) -> None:
    """``after`` and ``Last-Event-ID`` choose the start, and the first line names it. (Without
    either the stream starts at the head; the test client cannot close an idle stream, so that
    case is left to a live-server test.)"""
    who = _busy_log(client, services)

    def stream(query: str, headers: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
        start, data = -2, []
        with client.stream("GET", f"/api/v1/events/stream?{query}", headers=headers) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith(":"):
                    start = int(line.removeprefix(": after "))
                elif line.startswith("data:"):
                    data.append(json.loads(line[5:]))
        return start, data

    start, data = stream("after=-1&limit=1", who.org)
    assert (start, [d["position"] for d in data]) == (-1, [0])
    start, data = stream("limit=1", {**who.org, "Last-Event-ID": "5"})
    assert start == 5
    assert data[0]["position"] > 5


def test_every_published_type_has_a_schema(client: Client) -> None:
    catalogue = ok(client.get("/api/v1/events/catalogue"), 200)
    assert "kaoping.unit.registered.v1" in catalogue
    assert not [t for t in catalogue if t.startswith(HIDDEN)]
    schema = ok(client.get("/api/v1/events/schemas/kaoping.unit.registered.v1"), 200)
    text = json.dumps(schema)
    assert "code" in text and "category" in text
    assert client.get("/api/v1/events/schemas/kaoping.ballot.cast.v1").status_code == 404


def test_a_cycles_seal_gives_its_files_heads_only_to_those_who_read_the_files(
        client: Client, services: Services) -> None:
    """Sealing (and publishing) records every subject file's head. A file's stream id is
    computable from its year and subject and a sanction adds an event to it, so its version
    points at who was sanctioned: a role that does not receive the files' events gets the
    seal without the heads, and the catalogue says so."""
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/subjects/cadre:P1/sanctions", json={
        "code": "admonishment", "decided_on": "2025-06-15", "source": "市纪委监委通报"},
        headers=who.org))
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    for headers in (who.org, who.committee, who.team):
        seal = next(e for e in _all(client, headers) if e["type"] == "kaoping.cycle.sealed.v1")
        heads = {h["stream_id"]: h["version"] for h in seal["data"]["heads"]}
        assert heads[str(services.evaluation.file(2025, "cadre:P1").id)] == (
            services.evaluation.file(2025, "cadre:P1").version)
    for headers in (bearer(services, Role.DEPARTMENT, IdentityKind.DEPARTMENT, "F1"),
                    who.l1, bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "jw")):
        seal = next(e for e in _all(client, headers) if e["type"] == "kaoping.cycle.sealed.v1")
        assert "heads" not in seal["data"]
        assert seal["data"]["actor"]
        assert "cadre:P1" not in json.dumps(seal) and "version" not in json.dumps(seal["data"])
    catalogue = ok(client.get("/api/v1/events/catalogue"), 200)
    entry = catalogue["kaoping.cycle.sealed.v1"]
    assert entry["restricted_fields"] == {
        "heads": ["assessment-team", "committee", "organizer", "supervisor"]}
    assert "heads" not in entry["schema"]["$defs"]["kaoping.cycle.sealed.v1"]["required"]
