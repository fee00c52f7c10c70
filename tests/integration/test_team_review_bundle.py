"""集体议绩 in the evidence (both stores): a subject whose analysis comes from member scores is
sealed, published and bundled; the bundle verifies offline and recomputes the same composite
from the member scores, the 听谈看议 finding travels as its hash only, and a member score
altered in the bundle fails the check."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from domain.scheme import Component, PoolRule
from domain.subject_file import SubjectFile
from service.evidence import build_bundle, encode_bundle
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.verify import VerifyError, verify_bundle
from tests.integration.kit import GROUP, LEADERS, ORG, _scheme, approve, person, register_city

YEAR = 2029
SUBJECT = "team:E1"
MEMBERS = [person(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, m) for m in ("M1", "M2")]


def _published(services: Services) -> None:
    from projections.cadres import list_cadres  # noqa: PLC0415
    from projections.units import list_units  # noqa: PLC0415

    ev = services.evaluation
    base = _scheme(YEAR)
    weights = {Component.LEADER_REVIEW: Decimal("0.5"), Component.ANALYSIS: Decimal("0.5")}
    pools = [msgspec.structs.replace(p, weights=weights) if p.kind.value == "team" else p
             for p in base.pools]
    assert any(isinstance(p, PoolRule) and p.group == GROUP for p in pools)
    ev.open_cycle(ORG, YEAR)
    ev.set_scheme(ORG, YEAR, msgspec.structs.replace(base, pools=pools))
    services.follower.catch_up()
    with services.db.read() as cur:
        roster = ev.roster_from(list_units(cur, after_code=None, limit=100),
                                list_cadres(cur, after_code=None, limit=100))
    ev.set_roster(ORG, YEAR, roster)
    ev.freeze(ORG, YEAR)
    ev.open_scoring(ORG, YEAR)
    team = services.team_reviews
    for entry in roster:
        for leader in LEADERS:
            ev.leader_score(leader, YEAR, entry.subject, score=Decimal(80), comment="")
        if entry.kind.value != "team":
            continue
        team.assign(ORG, YEAR, entry.subject, members=["M1", "M2"], leader="M1")
        for i, member in enumerate(MEMBERS):
            for d in ev.cycle(YEAR).scheme.team_review.dimensions_for(entry.kind):  # type: ignore[union-attr]
                ev.analysis_score(member, YEAR, entry.subject, dimension=d.code,
                                  score=Decimal(70 + 10 * i + int(entry.code[1:])),
                                  rationale="")
    team.submit_document(ORG, YEAR, SUBJECT, kind="work-summary", name="总结.txt",
                         content_type="text/plain", content="总结".encode())
    sha = next(iter(ev.file(YEAR, SUBJECT).document_hashes))
    team.record_finding(MEMBERS[1], YEAR, SUBJECT, activity="deliberate", summary="核实一致",
                        strengths=[], problems=["个别谈话反映的问题"], documents=[sha])
    team.remark(MEMBERS[0], YEAR, SUBJECT, remark="实绩突出")
    ev.seal(ORG, YEAR, services.stream_heads)
    approve(services, YEAR)
    ev.publish(ORG, YEAR, services.stream_heads, notified_on="2030-01-20")
    services.follower.catch_up()


def _bundle(services: Services) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode_bundle(build_bundle(services, YEAR, SUBJECT, None,
                                                                 ballots=False)))
    return data


def test_a_bundle_with_collective_scoring_verifies_and_recomputes(services: Services) -> None:
    register_city(services)
    _published(services)
    mine = services.evaluation.published(YEAR)
    assert mine is not None
    result = mine.result_of(SUBJECT)
    assert result is not None
    # two members (no trim): mean of 71 and 81 on every dimension = 76; composite (80 + 76) / 2
    assert result.components[Component.ANALYSIS] == Decimal("76.00")
    assert result.composite == Decimal("78.00")
    bundle = _bundle(services)
    lines = verify_bundle(json.dumps(bundle).encode(), [services.signer.vkey], None)
    assert f"composite {result.composite}" in lines[-1]
    sid = str(SubjectFile.id_for(YEAR, SUBJECT))
    findings = [e for e in bundle["events"] if e["stream_id"] == sid
                and e["topic"] == SubjectFile.FindingRecorded.TOPIC]
    assert len(findings) == 1
    assert findings[0]["payload"] is None  # restricted: only its hash travels
    scored = next(e for e in bundle["events"] if e["stream_id"] == sid
                  and e["topic"] == SubjectFile.MemberScored.TOPIC)
    payload = json.loads(base64.b64decode(scored["payload"]))
    payload["score"] = "100"
    scored["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(VerifyError):
        verify_bundle(json.dumps(bundle).encode(), [services.signer.vkey], None)
