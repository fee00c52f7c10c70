"""A small city for integration tests of the cycle: five departments in one comparison group,
their principals, two city leaders; cycles opened, scored and sealed through the use cases."""

from __future__ import annotations

import itertools
from decimal import Decimal

from domain.scheme import Component, GradeBand, PoolRule, Quota, Scheme, SubjectKind, Veto
from service.principals import Identity, IdentityKind, Principal, Role
from service.runtime import Services

GROUP = "economic-management"
GRADES = ("优秀", "称职", "基本称职", "不称职")
CODES = ("admonishment", "open-case")
SIZE = 5
_years = itertools.count(2030)


def person(role: Role, kind: IdentityKind, ident: str) -> Principal:
    return Principal(id=f"person:{kind.value}:{ident}", name=ident, role=role,
                     acts_as=Identity(kind, ident), via="test")


ORG = person(Role.ORGANIZER, IdentityKind.STAFF, "org")
COMMITTEE = person(Role.COMMITTEE, IdentityKind.STAFF, "committee")
LEADERS = [person(Role.LEADER, IdentityKind.LEADER, code) for code in ("L1", "L2")]


def _scheme(year: int) -> Scheme:
    bands = [GradeBand(g, Decimal(m)) for g, m in zip(GRADES, (90, 70, 60, 0), strict=True)]
    team_bands = [GradeBand(g, Decimal(m)) for g, m in zip(("好", "较好", "一般", "较差"),
                                                          (90, 80, 60, 0), strict=True)]
    weights = {Component.LEADER_REVIEW: Decimal(1)}
    return Scheme(cycle=year, pools=[
        PoolRule(GROUP, SubjectKind.PRINCIPAL, weights, bands,
                 [Quota("优秀", Decimal("0.4"), "floor"), Quota("称职", Decimal("0.6"), "floor")]),
        PoolRule(GROUP, SubjectKind.TEAM, weights, team_bands)],
        vetoes=[Veto("admonishment", "cap", cap_at="称职", label="诫勉"),
                Veto("open-case", "no-grade", reason_code="5B", label="立案")])


def register_city(services: Services) -> Services:
    services.reference.import_rows(ORG, units=[
        {"code": f"E{i}", "name": f"局{i}", "kind": "department", "category": GROUP}
        for i in range(1, SIZE + 1)], cadres=[
        {"code": f"P{i}", "name": f"干部{i}", "unit_code": f"E{i}", "role": "principal",
         "since": "2020-01-01"} for i in range(1, SIZE + 1)])
    for leader in ("L1", "L2"):
        services.reference.register_leader(ORG, code=leader, name=leader)
    return services


def scoring_cycle(services: Services, scores: list[int]) -> int:
    """A new cycle of the five principals (and their teams), open for scoring and scored."""
    from projections.cadres import list_cadres  # noqa: PLC0415
    from projections.units import list_units  # noqa: PLC0415

    ev, year = services.evaluation, next(_years)
    ev.open_cycle(ORG, year)
    ev.set_scheme(ORG, year, _scheme(year))
    services.follower.catch_up()
    with services.db.read() as cur:
        roster = ev.roster_from(list_units(cur, after_code=None, limit=100),
                                list_cadres(cur, after_code=None, limit=100))
    ev.set_roster(ORG, year, roster)
    ev.freeze(ORG, year)
    ev.open_scoring(ORG, year)
    for entry in roster:
        score = scores[int(entry.code[1:]) - 1]
        for leader in LEADERS:
            ev.leader_score(leader, year, entry.subject, score=Decimal(score), comment="")
    return year


def approve(services: Services, year: int) -> None:
    """审定: the committee approves the proposal as it stands."""
    _, fingerprint = services.evaluation.proposal(year, services.stream_heads)
    services.evaluation.approve(COMMITTEE, year, services.stream_heads, fingerprint=fingerprint,
                                minutes_ref="常委会纪要", authority="市委常委会")


def sealed_cycle(services: Services, scores: list[int]) -> int:
    year = scoring_cycle(services, scores)
    services.evaluation.seal(ORG, year, services.stream_heads)
    return year




def cadre(i: int) -> str:
    return f"cadre:P{i}"
