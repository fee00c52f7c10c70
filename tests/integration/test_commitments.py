"""责任承诺考实 through the use cases, on both stores: who may publish for a unit, what a target
must name, amendments as history, challenges as cases, and the opt-in derivation that credits
each 共绩 once (old schemes keep theirs)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgspec
import pytest

from domain.cases import Case
from domain.commitments import Target
from domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from domain.scheme import (
    CommitmentPolicy,
    Component,
    GradeBand,
    PoolRule,
    Scheme,
    SubjectKind,
    validate_scheme,
)
from service.cases import follow_up_hash
from service.explain import explain
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.integration.kit import GROUP, ORG, approve, person, register_city

_years = itertools.count(2060)
P1 = person(Role.LEADER, IdentityKind.CADRE, "P1")  # 正职 of E1
P2 = person(Role.LEADER, IdentityKind.CADRE, "P2")  # 正职 of E2
TEAM = person(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, "T1")
ANYONE = person(Role.DEPARTMENT, IdentityKind.DEPARTMENT, "F9")
INTAKE = person(Role.INTAKE, IdentityKind.STAFF, "xf-1")


def _scheme(year: int, *, derivation: str = "achieved-share", due: str = "03-31") -> Scheme:
    bands = [GradeBand("好", Decimal(90)), GradeBand("一般", Decimal(0))]
    cadre_bands = [GradeBand("优秀", Decimal(90)), GradeBand("称职", Decimal(0))]
    weights = {Component.COMMITMENTS: Decimal("0.5"), Component.LEADER_REVIEW: Decimal("0.5")}
    return Scheme(cycle=year, pools=[
        PoolRule(GROUP, SubjectKind.TEAM, weights, bands),
        PoolRule(GROUP, SubjectKind.PRINCIPAL, {Component.LEADER_REVIEW: Decimal(1)},
                 cadre_bands)],
        commitments=msgspec.convert({"due": due, "derivation": derivation}, CommitmentPolicy))


def frozen(services: Services, **scheme: str) -> int:
    from projections.cadres import list_cadres  # noqa: PLC0415
    from projections.units import list_units  # noqa: PLC0415

    ev, year = services.evaluation, next(_years)
    ev.open_cycle(ORG, year)
    ev.set_scheme(ORG, year, _scheme(year, **scheme))
    services.follower.catch_up()
    with services.db.read() as cur:
        roster = ev.roster_from(list_units(cur, after_code=None, limit=100),
                                list_cadres(cur, after_code=None, limit=100))
    ev.set_roster(ORG, year, roster)
    ev.freeze(ORG, year)
    return year


def target(code: str, value: str = "100", **more: object) -> Target:
    return msgspec.convert({"code": code, "measure": "新增就业", "unit_of_measure": "人",
                            "target_value": value, "responsible": ["P1"], **more}, Target)


def refused(kind: type[DomainError], rule: str, call: object) -> DomainError:
    with pytest.raises(kind) as info:
        call()  # type: ignore[operator]
    assert info.value.rule == rule, info.value
    return info.value


@pytest.fixture
def city(services: Services) -> Services:
    return register_city(services)


def test_a_unit_publishes_its_own_and_the_organizer_on_behalf(city: Services) -> None:
    year, c = frozen(city), city.commitments
    c.publish(P1, year, "E1", targets=[target("JY-1")])
    c.publish(ORG, year, "E2", targets=[target("JY-1", responsible=["P2"])])
    c.publish(person(Role.LEADER, IdentityKind.UNIT, "E3"), year, "E3",
              targets=[target("A", responsible=["P3"])])
    mine, theirs = c.require(year, "E1"), c.require(year, "E2")
    assert (mine.on_behalf, theirs.on_behalf) == (False, True)
    assert theirs.published_on == "2026-03-01"  # the injected clock, local date
    refused(Conflict, "commitment.published-once",
            lambda: c.publish(P1, year, "E1", targets=[target("JY-2")]))


def test_another_unit_cannot_publish_for_you(city: Services) -> None:
    year, c = frozen(city), city.commitments
    refused(Forbidden, "commitment.own-unit",
            lambda: c.publish(P2, year, "E1", targets=[target("JY-1")]))
    e2 = person(Role.LEADER, IdentityKind.UNIT, "E2")
    refused(Forbidden, "commitment.own-unit",
            lambda: c.publish(e2, year, "E1", targets=[target("JY-1")]))
    refused(Forbidden, "role", lambda: c.publish(TEAM, year, "E1", targets=[target("JY-1")]))
    assert c.of(year, "E1") is None


def test_a_target_names_cadres_of_the_unit_and_attributes_a_shared_achievement(
        city: Services) -> None:
    year, c = frozen(city), city.commitments
    refused(InvalidInput, "commitment.responsible-in-unit",
            lambda: c.publish(P1, year, "E1", targets=[target("A", responsible=["P2"])]))
    refused(InvalidInput, "commitment.responsible-in-unit",
            lambda: c.publish(P1, year, "E1", targets=[target("A", responsible=["ZZ"])]))
    refused(InvalidInput, "commitment.responsible",
            lambda: c.publish(P1, year, "E1", targets=[target("A", responsible=[])]))
    refused(InvalidInput, "commitment.attribution-sums-to-one", lambda: c.publish(
        P1, year, "E1", targets=[target("A", partners=["E2"],
                                        shares={"E1": "0.6", "E2": "0.3"})]))
    refused(InvalidInput, "commitment.attribution", lambda: c.publish(
        P1, year, "E1", targets=[target("A", partners=["E2"])]))  # neither lead nor shares
    refused(InvalidInput, "commitment.attribution", lambda: c.publish(
        P1, year, "E1", targets=[target("A", partners=["E2"], lead="E3")]))
    refused(InvalidInput, "commitment.attribution", lambda: c.publish(
        P1, year, "E1", targets=[target("A", partners=["E2"], shares={"E1": "1"})]))
    refused(InvalidInput, "commitment.partner-unit", lambda: c.publish(
        P1, year, "E1", targets=[target("A", partners=["X9"], lead="E1")]))
    refused(InvalidInput, "commitment.partners", lambda: c.publish(
        P1, year, "E1", targets=[target("A", partners=["E1"], lead="E1")]))
    refused(InvalidInput, "commitment.targets", lambda: c.publish(
        P1, year, "E1", targets=[target("A"), target("A")]))
    refused(InvalidInput, "commitment.target-value", lambda: c.publish(
        P1, year, "E1", targets=[target("A", value="-1")]))
    assert c.of(year, "E1") is None


def test_publication_is_due_by_the_schemes_day_and_before_scoring(city: Services) -> None:
    late = frozen(city, due="2026-02-28")  # the clock reads 2026-03-01
    refused(Conflict, "commitment.deadline",
            lambda: city.commitments.publish(P1, late, "E1", targets=[target("A")]))
    year = frozen(city)
    city.evaluation.open_scoring(ORG, year)
    refused(Conflict, "cycle.phase",
            lambda: city.commitments.publish(P1, year, "E1", targets=[target("A")]))


def test_amendments_are_history_and_challenges_are_cases(city: Services) -> None:
    year, c = frozen(city), city.commitments
    c.publish(P1, year, "E1", targets=[target("A"), target("B")])
    c.amend(P1, year, "E1", "A", target=target("A", value="120"), reason="任务调增")
    c.amend(ORG, year, "E1", "B", target=None, reason="任务取消")
    refused(Forbidden, "commitment.own-unit", lambda: c.amend(
        P2, year, "E1", "A", target=None, reason="x"))
    refused(InvalidInput, "commitment.amend-code", lambda: c.amend(
        P1, year, "E1", "A", target=target("C"), reason="x"))
    found = c.require(year, "E1")
    assert [t.code for t in found.targets.values()] == ["A"]
    assert found.targets["A"].target_value == Decimal(120)
    assert [(a.code, a.change, a.reason) for a in found.amendments] == [
        ("A", "changed", "任务调增"), ("B", "withdrawn", "任务取消")]
    assert found.amendments[0].before == target("A")
    written, code = c.challenge(ANYONE, year, "E1", "A", summary="就业人数虚报")
    assert code is None
    case: Case = city.store.repository.get(written.stream_id)
    assert (case.channel.value, case.subjects, case.reporter) == (
        "challenge", ["team:E1"], "department:F9")
    assert "E1/A" in case.summary
    assert c.require(year, "E1").challenges == {"A": [str(case.id)]}
    refused(InvalidInput, "commitment.target-published",
            lambda: c.challenge(ANYONE, year, "E1", "B", summary="已撤回的目标"))


def test_intake_enters_a_challenge_for_someone_else_or_anonymously(city: Services) -> None:
    """A challenge received by hotline, mailbox or website: intake enters it on the target,
    with the challenger's identity or, anonymous, with none and a follow-up code (as a
    report); no one else names a reporter."""
    year, c = frozen(city), city.commitments
    c.publish(P1, year, "E1", targets=[target("A")])
    refused(InvalidInput, "commitment.challenge-reporter", lambda: c.challenge(
        ANYONE, year, "E1", "A", summary="虚报", reporter="张三"))
    written, code = c.challenge(INTAKE, year, "E1", "A", summary="就业人数虚报",
                                follow_up="kept-code-123")
    assert code == "kept-code-123"
    case: Case = city.store.repository.get(written.stream_id)
    assert (case.channel.value, case.subjects, case.reporter) == ("challenge", ["team:E1"],
                                                                   None)
    assert case.follow_up_hash == follow_up_hash("kept-code-123")
    city.follower.catch_up()
    assert city.cases.status("kept-code-123").value == "received"
    named, none = c.challenge(INTAKE, year, "E1", "A", summary="复核一下", reporter="李四")
    assert none is None
    case = city.store.repository.get(named.stream_id)
    assert (case.reporter, case.follow_up_hash) == ("李四", None)
    _, made = c.challenge(INTAKE, year, "E1", "A", summary="第三件")
    assert made is not None and len(made) >= 16
    assert len(c.require(year, "E1").challenges["A"]) == 3


def _scores(city: Services, year: int) -> None:
    for subject in ("team:E1", "team:E2"):
        for rater in ("L1", "L2"):
            city.evaluation.leader_score(person(Role.LEADER, IdentityKind.LEADER, rater),
                                         year, subject, score=Decimal(80), comment="")


def test_a_shared_achievement_is_credited_once_under_an_opting_scheme(city: Services) -> None:
    year, c = frozen(city, derivation="attributed-completion"), city.commitments
    c.publish(P1, year, "E1", targets=[
        target("OWN", "100"),
        target("SHARED", "200", partners=["E2"], shares={"E1": "0.75", "E2": "0.25"})])
    c.publish(P2, year, "E2", targets=[target("LEAD", "10", direction="at-most",
                                              responsible=["P2"], partners=["E1"], lead="E2")])
    city.evaluation.open_scoring(ORG, year)
    refused(Forbidden, "role", lambda: c.assess(P1, year, "E1", "OWN", achieved=Decimal(1),
                                                evidence="自评"))
    c.assess(TEAM, year, "E1", "OWN", achieved=Decimal(80), evidence="统计年报")
    scheme = city.evaluation.cycle(year).scheme
    assert scheme is not None
    e1 = city.evaluation.file(year, "team:E1")
    assert e1.evidence(scheme).commitments is None  # the shared one is not assessed yet
    c.assess(TEAM, year, "E1", "SHARED", achieved=Decimal(300), evidence="招商台账")
    c.assess(TEAM, year, "E2", "LEAD", achieved=Decimal(20), evidence="应急局通报")
    e1, e2 = (city.evaluation.file(year, s) for s in ("team:E1", "team:E2"))
    # E1: OWN 0.8 × 1, SHARED 1 (capped) × 0.75; LEAD credits E1 nothing (E2 leads)
    assert e1.evidence(scheme).commitments == (Decimal("0.8") + Decimal("0.75")) * 100 / \
        Decimal("1.75")
    # E2: SHARED 1 × 0.25, LEAD 10/20 × 1
    assert e2.evidence(scheme).commitments == (Decimal("0.25") + Decimal("0.5")) * 100 / \
        Decimal("1.25")
    assert sorted((p.owner, p.target, p.credit) for p in e1.credits) == [
        ("E1", "OWN", Decimal(1)), ("E1", "SHARED", Decimal("0.75"))]
    _scores(city, year)
    card = city.evaluation.file(year, "team:E1").evidence(scheme)
    assert card.leader_scores == [Decimal(80), Decimal(80)]


def test_an_older_scheme_keeps_its_derivation(city: Services) -> None:
    year, c = frozen(city), city.commitments
    c.publish(P1, year, "E1", targets=[target("OWN")])
    city.evaluation.open_scoring(ORG, year)
    before = city.evaluation.file(year, "team:E1").version
    c.assess(TEAM, year, "E1", "OWN", achieved=Decimal(50), evidence="统计年报")
    file = city.evaluation.file(year, "team:E1")
    assert file.version == before and file.credits == []
    scheme = city.evaluation.cycle(year).scheme
    assert scheme is not None
    assert file.evidence(scheme).commitments is None  # as before: no targets in the file


def test_an_assessed_target_is_no_longer_amended_and_units_are_the_rosters(
        city: Services) -> None:
    year, c = frozen(city), city.commitments
    refused(NotFound, "commitment.unit-on-roster",
            lambda: c.publish(ORG, year, "X9", targets=[target("A")]))
    c.publish(P1, year, "E1", targets=[target("A")])
    city.evaluation.open_scoring(ORG, year)
    c.amend(P1, year, "E1", "B", target=target("B"), reason="年中新增任务")  # added in scoring
    c.assess(TEAM, year, "E1", "A", achieved=Decimal(100), evidence="统计年报")
    refused(Conflict, "commitment.amend-before-assessment", lambda: c.amend(
        P1, year, "E1", "A", target=target("A", value="50"), reason="调减"))
    assert [a.change for a in c.require(year, "E1").amendments] == ["added"]


def test_a_scheme_names_a_real_day_for_commitments() -> None:
    scheme = msgspec.convert({"cycle": 2030, "pools": [], "commitments": {"due": "02-30"}},
                             Scheme)
    refused(InvalidInput, "scheme.commitments-due", lambda: validate_scheme(scheme))


def test_an_opting_cycle_seals_and_publishes_the_attributed_score(city: Services) -> None:
    """Sealing waits for every credited target; the published component is the attributed
    one, and the file alone (the evidence stream) gives it."""
    year, c = frozen(city, derivation="attributed-completion"), city.commitments
    c.publish(P1, year, "E1", targets=[
        target("SHARED", "200", partners=["E2"], shares={"E1": "0.6", "E2": "0.4"})])
    for i in range(2, 6):
        unit = person(Role.LEADER, IdentityKind.UNIT, f"E{i}")
        c.publish(unit, year, f"E{i}", targets=[target("OWN", "10", responsible=[f"P{i}"])])
    city.evaluation.open_scoring(ORG, year)
    for i in range(1, 6):
        _leaders(city, year, f"team:E{i}")
        _leaders(city, year, f"cadre:P{i}")
    c.assess(TEAM, year, "E1", "SHARED", achieved=Decimal(100), evidence="台账")
    for i in range(2, 5):
        c.assess(TEAM, year, f"E{i}", "OWN", achieved=Decimal(i + 5), evidence="年报")
    refused(Conflict, "seal.inputs-complete",  # E5's own target is not assessed yet
            lambda: city.evaluation.seal(ORG, year, city.stream_heads))
    c.assess(TEAM, year, "E5", "OWN", achieved=Decimal(10), evidence="年报")
    city.evaluation.seal(ORG, year, city.stream_heads)
    approve(city, year)
    city.evaluation.publish(ORG, year, city.stream_heads, notified_on="2026-03-01")
    published = city.evaluation.published(year)
    assert published is not None
    e1, e2 = published.result_of("team:E1"), published.result_of("team:E2")
    assert e1 is not None and e2 is not None
    assert e1.components[Component.COMMITMENTS] == Decimal(50)  # 100/200, its 0.6 share
    # E2: the 共绩 at 0.4 × 0.5 and its own 7/10 at 1: (0.2 + 0.7) / 1.4, at the scheme's places
    assert e2.components[Component.COMMITMENTS] == Decimal("64.29")
    refused(Conflict, "cycle.phase", lambda: c.assess(TEAM, year, "E5", "OWN",
                                                      achieved=Decimal(1), evidence="x"))
    refused(Conflict, "cycle.phase", lambda: c.amend(P1, year, "E1", "SHARED", target=None,
                                                     reason="x"))


def _leaders(city: Services, year: int, subject: str) -> None:
    for rater in ("L1", "L2"):
        city.evaluation.leader_score(person(Role.LEADER, IdentityKind.LEADER, rater), year,
                                     subject, score=Decimal(80), comment="")


def test_a_target_the_survey_rates_below_the_threshold_is_not_counted(city: Services) -> None:
    """群众满意度达不到要求的，一律不算作政绩: the 群众认可 survey rates each published target; one
    rated below the scheme's threshold (0.6 by default) counts 0 for every team it credits, its
    credit staying in the denominator — the file's credits carry the gate, and the card
    shows the rate."""
    year, c = frozen(city, derivation="attributed-completion"), city.commitments
    c.publish(P1, year, "E1", targets=[
        target("OWN", "100"),
        target("SHARED", "200", partners=["E2"], shares={"E1": "0.75", "E2": "0.25"})])
    c.publish(P2, year, "E2", targets=[target("E2OWN", "10", responsible=["P2"])])
    refused(Conflict, "cycle.phase", lambda: c.rate(
        ORG, year, "E1", "OWN", session="QZRK-1", satisfaction=Decimal("0.5")))
    city.evaluation.open_scoring(ORG, year)
    refused(Forbidden, "role", lambda: c.rate(
        TEAM, year, "E1", "OWN", session="QZRK-1", satisfaction=Decimal("0.5")))
    refused(InvalidInput, "commitment.satisfaction", lambda: c.rate(
        ORG, year, "E1", "OWN", session="QZRK-1", satisfaction=Decimal("1.2")))
    refused(InvalidInput, "commitment.target-published", lambda: c.rate(
        ORG, year, "E1", "NONE", session="QZRK-1", satisfaction=Decimal("0.9")))
    c.assess(TEAM, year, "E1", "OWN", achieved=Decimal(80), evidence="统计年报")
    c.assess(TEAM, year, "E1", "SHARED", achieved=Decimal(200), evidence="招商台账")
    c.assess(TEAM, year, "E2", "E2OWN", achieved=Decimal(10), evidence="年报")
    scheme = city.evaluation.cycle(year).scheme
    assert scheme is not None and scheme.satisfaction_threshold == Decimal("0.6")

    def score(team: str) -> Decimal | None:
        return city.evaluation.file(year, team).evidence(scheme).commitments

    assert score("team:E1") == (Decimal("0.8") + Decimal("0.75")) * 100 / Decimal("1.75")
    c.rate(ORG, year, "E1", "OWN", session="QZRK-1", satisfaction=Decimal("0.6"))  # at: counts
    assert score("team:E1") == (Decimal("0.8") + Decimal("0.75")) * 100 / Decimal("1.75")
    c.rate(ORG, year, "E1", "SHARED", session="QZRK-1", satisfaction=Decimal("0.55"))
    # the shared target is gated for both units: E1 keeps OWN only, E2 its own only
    assert score("team:E1") == Decimal("0.8") * 100 / Decimal("1.75")
    assert score("team:E2") == Decimal(1) * 100 / Decimal("1.25")
    parts = {p.target: p for p in city.evaluation.file(year, "team:E1").credits}
    assert (parts["SHARED"].satisfaction, parts["SHARED"].gated) == (Decimal("0.55"), True)
    assert (parts["OWN"].satisfaction, parts["OWN"].gated) == (Decimal("0.6"), False)
    c.rate(ORG, year, "E1", "SHARED", session="QZRK-2", satisfaction=Decimal("0.7"))  # recount
    assert score("team:E2") == (Decimal("0.25") + 1) * 100 / Decimal("1.25")
    c.rate(ORG, year, "E1", "SHARED", session="QZRK-3", satisfaction=Decimal("0.3"))
    assert c.require(year, "E1").satisfaction == {"OWN": Decimal("0.6"),
                                                   "SHARED": Decimal("0.3")}
    _scores(city, year)
    city.follower.catch_up()
    with city.db.read() as cur:
        card = explain(cur, city.store.mapper, year, "team:E1", None, restricted_ok=False)
    shown = {t.code: (t.satisfaction, t.counted, t.completion) for t in card.commitments}
    assert shown == {"OWN": (Decimal("0.6"), True, Decimal("0.8")),
                     "SHARED": (Decimal("0.3"), False, Decimal(1))}


def test_the_gate_is_the_schemes_threshold_and_old_credits_encode_as_they_were() -> None:
    from domain.commitments import Credit, commitment_score  # noqa: PLC0415

    old = Credit(owner="E1", target="A", credit=Decimal(1), completion=Decimal("0.5"))
    assert b"gated" not in msgspec.json.encode(old)
    assert b"satisfaction" not in msgspec.json.encode(old)
    assert msgspec.json.decode(msgspec.json.encode(old), type=Credit) == old
    gated = Credit(owner="E1", target="B", credit=Decimal(1), completion=Decimal(1),
                   satisfaction=Decimal("0.4"), gated=True)
    assert commitment_score([old, gated]) == Decimal(25)
