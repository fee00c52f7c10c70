"""Report-line cases: intake, case-scoped investigators, reporter confidentiality, and the
record of every read of restricted material."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import TestClient

from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import BASE, People, ok, score_everything, setup_cycle

Client = TestClient[Any]


def test_an_investigation_from_report_to_closure(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/subjects/team:E1/inspections/notes",
                   json={"activity": "interview", "notes": "谈话记录：反映工程问题"},
                   headers=who.team))
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-1")
    inv = bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "inv-1")
    other_inv = bearer(services, Role.INVESTIGATOR, IdentityKind.STAFF, "inv-2")
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup-1")

    anonymous = ok(client.post("/api/v1/cases", json={
        "channel": "hotline", "year": 2025, "subjects": ["team:E1"],
        "summary": "反映发改局虚报项目进度"}, headers=intake))
    assert anonymous["follow_up_code"]
    named = ok(client.post("/api/v1/cases", json={
        "channel": "mailbox", "year": 2025, "subjects": ["team:E2"], "summary": "实名举报",
        "reporter": "张某 13800000000"}, headers=intake))
    assert named["follow_up_code"] is None
    case = anonymous["case_id"]
    for person in ("inv-1", "inv-2"):
        ok(client.post("/api/v1/investigators", json={"investigator": f"person:staff:{person}",
                                                      "name": person}, headers=supervisor))
    ok(client.post(f"/api/v1/cases/{case}/assignment",
                   json={"investigator": "person:staff:inv-1"}, headers=intake))
    services.follower.catch_up()
    status = ok(client.get(f"/api/v1/reports/status?code={anonymous['follow_up_code']}"), 200)
    assert status == {"state": "assigned"}

    # The investigator sees restricted notes of E1 (their case) but nothing of E2.
    card = ok(client.get(f"{BASE}/subjects/team:E1/explain", headers=inv), 200)
    assert any(i["facts"].get("notes") == "谈话记录：反映工程问题" for i in card["inputs"])
    refused = client.get(f"{BASE}/subjects/team:E2/explain", headers=inv)
    assert refused.status_code == 403
    assert refused.json()["rule"] == "investigator.case-scope"
    assert client.get(f"{BASE}/subjects/team:E2/evidence", headers=inv).status_code == 403

    # Reporter identity: intake only.
    named_file = ok(client.get(f"/api/v1/cases/{named['case_id']}", headers=intake), 200)
    assert named_file["reporter"] == "张某 13800000000"
    assert ok(client.get(f"/api/v1/cases/{named['case_id']}", headers=supervisor),
              200)["reporter"] is None
    assert client.get(f"/api/v1/cases/{named['case_id']}", headers=other_inv).status_code == 403

    # Work, link the outcome, close: access ends with the case.
    ok(client.post(f"/api/v1/cases/{case}/findings", json={"finding": "进度虚报属实"},
                   headers=inv))
    assert client.post(f"/api/v1/cases/{case}/findings", json={"finding": "x"},
                       headers=other_inv).json()["rule"] == "case.assigned-investigator"
    ok(client.post(f"/api/v1/cases/{case}/outcomes", json={
        "kind": "adjustment", "subject": "team:E1", "reference": "adj-case-1"}, headers=inv))
    ok(client.post(f"/api/v1/cases/{case}/closure", json={"conclusion": "建议扣分"},
                   headers=inv))
    services.follower.catch_up()
    assert client.get(f"{BASE}/subjects/team:E1/explain", headers=inv).status_code == 403

    # Every read of restricted material, allowed or not, is on the record for supervisors
    # (refusals as counts per window, recorded once the window has ended).
    assert isinstance(services.clock, FixedClock)
    services.clock.advance(timedelta(seconds=services.settings.refused_read_window_seconds + 5))
    services.refusals.flush()
    services.follower.catch_up()
    log = client.get("/api/v1/audit/access?subject=team:E2", headers=supervisor)
    assert log.status_code == 200
    entries: list[dict[str, Any]] = log.json()
    assert [(e["reader"], e["what"], e["allowed"]) for e in entries] == [
        ("person:staff:inv-1", "explain-notes", False), ("person:staff:inv-1", "evidence", False)]
    everything: list[dict[str, Any]] = client.get("/api/v1/audit/access",
                                                  headers=supervisor).json()
    assert ("person:staff:inv-1", "explain-notes", "team:E1", True) in {
        (e["reader"], e["what"], e["subject"], e["allowed"]) for e in everything}
    assert any(e["what"] == "case" and not e["allowed"] for e in everything)
    assert client.get("/api/v1/audit/access", headers=inv).status_code == 403
