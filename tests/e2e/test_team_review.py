"""Issue 13 (documents, 听谈看议, 实绩分析): the assessment team's work on a subject through HTTP
on both stores — documents uploaded as bytes and stored by SHA-256, read by assignment with
every read recorded; findings citing documents; member scores aggregated by 集体议绩 into the
analysis component (checked against a hand computation); the 评语 on the card; the seal refused
while an assigned member owes a score. team:E2 and team:E3 keep the analysis entered directly
(no team assigned): their numbers do not move."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import msgspec
from litestar.testing import TestClient

from api import create_app
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import (
    BASE,
    SCHEME,
    People,
    Y,
    _events,
    ok,
    refused,
    score_everything,
    setup_cycle,
)

Client = TestClient[Any]
E1 = f"{BASE}/subjects/team:E1"
PDF = b"%PDF-1.7\n% 2025\xe5\xb9\xb4\xe5\xb7\xa5\xe4\xbd\x9c\xe6\x80\xbb\xe7\xbb\x93\n%%EOF\n"
MEMBERS = ["T1", "T2", "T3", "T4", "T5"]
TEAM_DIMENSIONS = ["economy", "social-undertakings", "civilisation", "cadre-team", "innovation",
                   "rank-change", "effort", "coordination"]


def member(services: Services, code: str) -> dict[str, str]:
    return bearer(services, Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, code)


def upload(client: Client, headers: dict[str, str], content: bytes, *,
           kind: str = "work-summary", name: str = "2025年度工作总结.pdf",
           media: str = "application/pdf", subject: str = "team:E1") -> Any:
    return client.post(f"{BASE}/subjects/{subject}/documents/{kind}/{name}", content=content,
                       headers={**headers, "Content-Type": media})


def test_documents_are_stored_by_hash_read_by_assignment_and_every_read_recorded(
        client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    unit_e1 = bearer(services, Role.LEADER, IdentityKind.UNIT, "E1")
    digest = hashlib.sha256(PDF).hexdigest()
    written = ok(upload(client, unit_e1, PDF))
    assert [r["topic"] for r in written["receipt"]] == ["kaoping/SubjectFile.DocumentSubmitted.v1"]
    # the organizer for a cadre; the wrong subject, kind, type or body are refused
    ok(upload(client, who.org, b"2025 self evaluation", kind="self-evaluation", name="自评.txt",
              media="text/plain; charset=utf-8", subject="cadre:P1"))
    refused(upload(client, who.p3, PDF), 403, "document.own-subject")
    refused(upload(client, unit_e1, PDF, kind="self-evaluation"), 422, "document.kind")
    refused(upload(client, unit_e1, PDF, media="image/png"), 422, "document.media-type")
    refused(upload(client, unit_e1, b"not a pdf"), 422, "document.media-type")
    refused(upload(client, unit_e1, b"\xff\xfe", media="text/plain"), 422, "document.media-type")
    refused(upload(client, unit_e1, b""), 422, "document.size")
    refused(upload(client, unit_e1, PDF, name="%01.pdf"), 422, "document.name")
    listed = client.get(f"{E1}/documents", headers=who.org)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [{"kind": "work-summary", "sha256": digest, "size": len(PDF),
                     "media_type": "application/pdf", "name": "2025年度工作总结.pdf"}]

    ok(client.post(f"{E1}/team", json={"members": ["T1", "T2"], "leader": "T1"},
                   headers=who.org))
    got = client.get(f"{E1}/documents/{digest}", headers=member(services, "T2"))
    assert got.status_code == 200, got.text
    assert got.content == PDF
    assert hashlib.sha256(got.content).hexdigest() == got.headers["x-content-sha256"] == digest
    assert got.headers["content-type"].startswith("application/pdf")
    assert client.get(f"{E1}/documents/{digest}", headers=who.l1).content == PDF  # reviews it
    refused(client.get(f"{E1}/documents/{digest}", headers=member(services, "T9")), 403,
            "team.assigned-member")
    # a principal reviews only the deputies of their own unit; a department does not review
    # (both told the reading rule)
    refused(client.get(f"{E1}/documents/{digest}", headers=who.p3), 403, "document.reader")
    refused(client.get(f"{E1}/documents/{digest}", headers=who.f1), 403, "document.reader")
    refused(client.get(f"{E1}/documents/{'0' * 64}", headers=who.org), 404, "document.exists")
    refused(client.get(f"{E1}/documents/NOTAHASH", headers=who.org), 422, "document.hash")

    services.follower.catch_up()
    refused(client.get(f"{E1}/document-reads", headers=member(services, "T2")), 403,
            "document.reads-readers")
    read_log = client.get(f"{E1}/document-reads", headers=who.org)
    assert read_log.status_code == 200, read_log.text
    reads: list[dict[str, Any]] = read_log.json()
    allowed = [(r["reader"], r["rule"]) for r in reads if r["allowed"]]
    assert allowed == [("person:team-member:T2", "document.assigned-member"),
                       ("person:leader:L1", "document.reviewing-leader")]
    assert all(r["at"] for r in reads)
    # the bytes are written once: the same document again is one row
    ok(upload(client, unit_e1, PDF, name="工作总结(重传).pdf"))
    with services.db.read() as cur:
        cur.execute("SELECT count(*), min(size) FROM kaoping_documents WHERE sha256 = %s",
                    (digest,))
        assert tuple(cur.fetchone() or ()) == (1, len(PDF))


def test_a_document_above_the_setting_is_refused_unread(client: Client, services: Services,
                                                        settings: Settings) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    small = msgspec.structs.replace(settings, document_max_bytes=2048)
    with TestClient(app=create_app(small, services=services)) as c:
        big = upload(c, who.org, b"%PDF-" + b"x" * 3000)
        assert big.status_code == 413, big.text
        assert big.headers["content-type"].startswith("application/problem+json")
        ok(upload(c, who.org, PDF))


def _scores(member_index: int, dimension_index: int) -> int:
    return 70 + 3 * member_index + 2 * dimension_index  # distinct per member: trimming shows


def test_collective_scoring_feeds_the_analysis_and_blocks_the_seal_until_complete(
        client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)  # team:E1..E3 analysis entered directly (88, 91, 86)
    ok(upload(client, who.org, PDF))
    digest = hashlib.sha256(PDF).hexdigest()
    refused(client.post(f"{E1}/team", json={"members": MEMBERS, "leader": "T9"},
                        headers=who.org), 422, "team.leader-member")
    refused(client.post(f"{E1}/team", json={"members": ["T1", "T1"], "leader": "T1"},
                        headers=who.org), 422, "team.members")
    refused(client.post(f"{E1}/team", json={"members": MEMBERS, "leader": "T1"},
                        headers=member(services, "T1")), 403, "role")
    ok(client.post(f"{E1}/team", json={"members": MEMBERS, "leader": "T1"}, headers=who.org))

    # 听谈看议 findings by assigned members, citing the subject's documents by hash
    finding = {"activity": "deliberate", "summary": "工作总结所列目标与核实情况一致",
               "strengths": ["项目落地快"], "problems": ["招商引资后劲不足"],
               "documents": [digest]}
    ok(client.post(f"{E1}/findings", json=finding, headers=member(services, "T2")))
    refused(client.post(f"{E1}/findings", json=finding, headers=member(services, "T9")), 403,
            "team.assigned-member")
    refused(client.post(f"{E1}/findings", json={**finding, "documents": ["a" * 64]},
                        headers=member(services, "T2")), 422, "finding.document")
    refused(client.post(f"{E1}/findings", json={**finding, "activity": "gossip"},
                        headers=member(services, "T2")), 422, "finding.activity")

    # 评语 by the team's leader only
    refused(client.post(f"{E1}/remark", json={"remark": "实绩突出"},
                        headers=member(services, "T2")), 403, "team.leader-remarks")
    refused(client.post(f"{E1}/remark", json={"remark": "  "}, headers=member(services, "T1")),
            422, "team.remark")
    ok(client.post(f"{E1}/remark", json={"remark": "班子团结，实绩突出，后劲有待增强"},
                   headers=member(services, "T1")))

    refused(client.post(f"{E1}/analysis", json={"dimension": "economy", "score": 80},
                        headers=member(services, "T9")), 403, "team.assigned-member")
    refused(client.post(f"{E1}/analysis", json={"dimension": "workload", "score": 80},
                        headers=member(services, "T1")), 422, "analysis.dimension")
    for i, code in enumerate(MEMBERS):
        for j, dimension in enumerate(TEAM_DIMENSIONS):
            if (code, dimension) == ("T5", "innovation"):
                continue  # owed: the seal names it
            ok(client.post(f"{E1}/analysis", json={"dimension": dimension,
                                                   "score": _scores(i, j)},
                           headers=member(services, code)))
    body = refused(client.post(f"{BASE}/seal", json={}, headers=who.org), 409,
                   "seal.analysis-scored")
    assert "team:E1 innovation (T5)" in body["detail"]
    assert ok(client.get(BASE), 200)["phase"] == "scoring"
    ok(client.post(f"{E1}/analysis", json={"dimension": "innovation", "score": _scores(4, 4)},
                   headers=member(services, "T5")))

    # by hand: five members, so each dimension drops its highest (T5) and lowest (T1) score
    # and averages T2..T4: 70 + 3*2 + 2j; equal weights: the mean over j = 0..7 is 76 + 7
    card = ok(client.get(f"{E1}/explain", headers=who.org), 200)
    analysis = card["analysis"]
    assert analysis["rule"] == "trimmed-mean"
    assert Decimal(analysis["value"]) == Decimal("83.00")
    assert Decimal(card["result"]["components"]["analysis"]) == Decimal("83.00")
    economy = next(d for d in analysis["dimensions"] if d["dimension"] == "economy")
    assert sorted(economy["dropped"]) == ["T1", "T5"]
    assert Decimal(economy["value"]) == 76
    assert economy["name"] == "经济建设" and economy["source"].startswith("seed method")
    assert card["remark"] == "班子团结，实绩突出，后劲有待增强"
    finding_line = next(line for line in card["inputs"]
                        if line["topic"] == "kaoping/SubjectFile.FindingRecorded.v1")
    assert finding_line["facts"]["summary"] == "(restricted)"  # organizer: not restricted_ok
    # a cycle entered directly keeps its value
    e2 = ok(client.get(f"{BASE}/subjects/team:E2/explain", headers=who.org), 200)
    assert e2["analysis"] is None
    assert Decimal(e2["result"]["components"]["analysis"]) == 91
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))


def test_the_schemes_dimensions_are_checked(client: Client, services: Services) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))

    def put(team_review: dict[str, Any]) -> Any:
        etag = client.get(BASE).headers["etag"]
        return client.put(f"{BASE}/scheme", json={**SCHEME, "team_review": team_review},
                          headers={**who.org, "If-Match": etag})

    dimension = {"code": "economy", "name": "经济建设", "weight": "1",
                 "kinds": ["team", "principal", "deputy"], "source": "本市考核办法第六条"}
    refused(put({"dimensions": [dimension, dimension]}), 422, "scheme.dimension-unique")
    refused(put({"dimensions": [{**dimension, "weight": "-1"}]}), 422, "scheme.dimension-weight")
    refused(put({"dimensions": [{**dimension, "kinds": ["team"]}]}), 422,
            "scheme.dimension-weight")  # the cadres would have no dimension
    ok(put({"dimensions": [dimension], "aggregation": "mean"}), 200)
    assert ok(client.get(f"{BASE}/scheme"), 200)["scheme"]["team_review"]["aggregation"] == "mean"


def test_the_teams_other_inputs_come_only_from_its_assigned_members(
        client: Client, services: Services) -> None:
    """组织系统考核 (the inspection's score and notes), a target's assessment and a proposed
    adjustment are the assessment team's too: once a subject's team is assigned, only its
    members enter them; a principal of the role acting as anything but a team member (a
    cadre on itself, a unit on its own team) never does, assigned or not. Every refusal
    leaves the file as it was."""
    who = People(services)
    setup_cycle(client, services, who)
    ok(client.post(f"{E1}/team", json={"members": ["T1", "T2"], "leader": "T1"},
                   headers=who.org))
    ok(client.post(f"{E1}/targets", json={"targets": ["招商引资十亿元"]}, headers=who.org))
    as_self = bearer(services, Role.ASSESSMENT_TEAM, IdentityKind.CADRE, "P1")
    as_unit = bearer(services, Role.ASSESSMENT_TEAM, IdentityKind.UNIT, "E1")
    writes = [("inspections/score", {"score": "100"}),
              ("inspections/notes", {"activity": "interview", "notes": "谈话记录"}),
              ("targets/assessments", {"target": "招商引资十亿元", "achieved": True,
                                       "evidence": "统计年报"}),
              ("adjustments", {"adjustment": "adj-1", "delta": "5", "reason": "专项",
                               "basis": "办法第十二条", "evidence": "文件"}),
              ("analysis", {"dimension": "economy", "score": "100"})]
    events = _events(services)
    for path, body in writes:
        refused(client.post(f"{E1}/{path}", json=body, headers=member(services, "T3")),
                403, "team.assigned-member")
        refused(client.post(f"{E1}/{path}", json=body, headers=as_unit), 403, "rater.identity")
        # unassigned file: any team member, as before; never a cadre on itself
        refused(client.post(f"{BASE}/subjects/cadre:P1/{path}", json=body, headers=as_self),
                403, "rater.identity")
    assert _events(services) == events  # nothing of the refused writes was appended
    written = ok(client.post(f"{E1}/inspections/score", json={"score": "88"},
                             headers=member(services, "T2")))
    assert [r["topic"] for r in written["receipt"]] == [
        "kaoping/SubjectFile.InspectionScored.v1"]
    written = ok(client.post(f"{E1}/targets/assessments", json=writes[2][1],
                             headers=member(services, "T1")))
    assert [r["topic"] for r in written["receipt"]] == ["kaoping/SubjectFile.TargetAssessed.v1"]
    file = services.evaluation.file(Y, "team:E1")
    assert (file.inspection, file.targets) == (Decimal(88), {"招商引资十亿元": True})


def test_a_download_carries_the_type_its_subject_recorded_and_is_not_sniffed(
        client: Client, services: Services) -> None:
    """Bytes are stored once by their hash: the same bytes uploaded by two subjects under two
    types are served to each with its own; a leader who does not review the subject is told
    the reading rule, not a scoring one."""
    who = People(services)
    setup_cycle(client, services, who)
    poly = b"%PDF-1.7 polyglot\n"
    ok(upload(client, who.org, poly, kind="self-evaluation", name="自评.txt",
              media="text/plain; charset=utf-8", subject="cadre:P1"))
    ok(upload(client, bearer(services, Role.LEADER, IdentityKind.UNIT, "E1"), poly,
              name="总结.pdf"))
    digest = hashlib.sha256(poly).hexdigest()
    got = client.get(f"{E1}/documents/{digest}", headers=who.org)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    mine = client.get(f"{BASE}/subjects/cadre:P1/documents/{digest}", headers=who.org)
    assert mine.headers["content-type"].startswith("text/plain")
    refused(client.get(f"{BASE}/subjects/cadre:P1/documents/{digest}", headers=who.p3), 403,
            "document.reader")
