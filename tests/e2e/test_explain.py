"""Explain, history and time travel, against the hand-computed scenario of the cycle test."""

from __future__ import annotations

import base64
from typing import Any

from litestar.testing import TestClient

from domain.subject_file import SubjectFile
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import BASE, People, ok, score_everything, setup_cycle

Client = TestClient[Any]


def _approval_position(services: Services) -> int:
    file = services.evaluation.file(2025, "team:E3")
    with services.db.read() as cur:
        cur.execute("SELECT l.position FROM kaoping_ledger l WHERE l.stream_id = %s "
                    "ORDER BY l.stream_version", (file.id,))
        positions = [int(p) for (p,) in cur.fetchall()]
    events = list(services.store.events.get(file.id))
    [index] = [i for i, e in enumerate(events) if isinstance(e, SubjectFile.AdjustmentApproved)]
    return positions[index]


def test_as_of_before_and_after_an_adjustment(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup")
    approved = _approval_position(services)
    url = f"{BASE}/subjects/team:E3/explain"
    # Before the approval the +2 does not count: 0.4*82 + 0.3*85 + 0.3*86 = 84.10 (see the
    # cycle test's table); from the approval on it does: 86.10.
    before = ok(client.get(f"{url}?as_of={approved - 1}", headers=supervisor), 200)
    after = ok(client.get(f"{url}?as_of={approved}", headers=supervisor), 200)
    assert (before["result"]["composite"], after["result"]["composite"]) == ("84.10", "86.10")
    assert before["as_of"] == approved - 1
    # At the head, time travel equals the live read model.
    services.follower.catch_up()
    now = ok(client.get(url, headers=supervisor), 200)
    live = ok(client.get(f"{BASE}/subjects/team:E3/result", headers=who.org), 200)
    assert (live.pop("results_version"), live.pop("as_of")) == (None, None)  # working
    assert now["result"] == live
    refused = client.get(f"{url}?as_of=yesterday", headers=supervisor)
    assert refused.status_code == 400
    assert refused.json()["rule"] == "as-of.format"


def test_explain_names_every_input_and_hides_notes(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/subjects/team:E1/inspections/notes",
                   json={"activity": "interview", "notes": "某某反映问题"}, headers=who.team))
    card = ok(client.get(f"{BASE}/subjects/team:E1/explain", headers=who.org), 200)
    leaders = [i for i in card["inputs"] if i["topic"] == SubjectFile.LeaderScored.TOPIC]
    assert {(i["actor"], i["facts"]["score"]) for i in leaders} == {
        ("person:leader:L1", "94"), ("person:leader:L2", "92")}
    assert all(len(i["leaf_hash"]) == 64 and i["position"] >= 0 for i in card["inputs"])
    # Explain writes hex (as the evidence bundle does), and base64 beside it, as the ledger
    # routes write it: the same bytes as the log's leaf at that position.
    first = card["inputs"][0]
    assert base64.b64decode(first["leaf_hash_base64"]).hex() == first["leaf_hash"]
    leaf = client.get(f"/api/v1/ledger/leaves?start={first['position']}"
                      f"&end={first['position'] + 1}").json()[0]
    assert leaf["leaf_hash_hex"] == first["leaf_hash"]
    note = next(i for i in card["inputs"] if i["topic"] == SubjectFile.InspectionNoted.TOPIC)
    assert note["facts"]["notes"] == "(restricted)"
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup")
    full = ok(client.get(f"{BASE}/subjects/team:E1/explain", headers=supervisor), 200)
    assert any(i["facts"].get("notes") == "某某反映问题" for i in full["inputs"])
    text = client.get(f"{BASE}/subjects/team:E1/explain?format=text", headers=who.org)
    assert text.headers["content-type"].startswith("text/plain")
    assert "leader-review" in text.text
    leader = bearer(services, Role.LEADER, IdentityKind.LEADER, "L1")
    assert client.get(f"{BASE}/subjects/team:E1/explain", headers=leader).status_code == 403


def test_history_says_what_each_event_changed(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    resp = client.get(f"{BASE}/subjects/team:E3/history", headers=who.org)
    assert resp.status_code == 200, resp.text
    changes: list[dict[str, Any]] = resp.json()
    approval = next(c for c in changes if c["topic"] == SubjectFile.AdjustmentApproved.TOPIC)
    assert approval["changed"]["composite"] == ["84.10", "86.10"]
    assert approval["actor"] == "person:staff:org-2"
    proposal = next(c for c in changes if c["topic"] == SubjectFile.AdjustmentProposed.TOPIC)
    assert "composite" not in proposal["changed"]  # a proposal alone changes nothing


def test_a_diff_between_two_points(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    approved = _approval_position(services)
    body = ok(client.get(f"{BASE}/subjects/team:E3/diff?from={approved - 1}&to={approved}",
                         headers=who.org), 200)
    assert body["changed"]["composite"] == ["84.10", "86.10"]
    assert (body["from_position"], body["to_position"]) == (approved - 1, approved)
    assert set(body["changed"]) <= {"composite", "components", "rank", "banded_grade",
                                    "proposed_grade", "final_grade", "quota_demoted"}


def test_history_names_every_change_and_who_made_it(client: Client, services: Services) -> None:
    """Each change's 'before' is the previous change's 'after' (nothing moves unseen), the last
    state is the live card, and a rank moved by a rival's event is attributed to that event."""
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    for team in ("team:E1", "team:E2", "team:E3"):
        resp = client.get(f"{BASE}/subjects/{team}/history", headers=who.org)
        assert resp.status_code == 200, resp.text
        changes: list[dict[str, Any]] = resp.json()
        state: dict[str, Any] = dict.fromkeys(
            ("composite", "rank", "proposed_grade", "final_grade", "no_grade_reason"))
        for change in changes:
            for field, (old, new) in change["changed"].items():
                assert state[field] == old, (team, change)
                state[field] = new
        card = client.get(f"{BASE}/subjects/{team}/explain", headers=who.org).json()["result"]
        assert state["composite"] == card["composite"]
        assert state["rank"] == card["rank"]
        assert state["final_grade"] == card["final_grade"]
        own = [c for c in changes if c["by"] == "self"]
        assert all(c["topic"].startswith("kaoping/SubjectFile.") for c in own)
        others = [c for c in changes if c["by"] != "self"]
        assert all(c["changed"] for c in others)  # another's event is listed only if it moved us
    e3 = client.get(f"{BASE}/subjects/team:E3/history", headers=who.org).json()
    rivals = {c["by"] for c in e3 if c["by"] not in ("self", "cycle")}
    assert rivals <= {"team:E1", "team:E2"}
    assert any("rank" in c["changed"] for c in e3 if c["by"] in rivals)
