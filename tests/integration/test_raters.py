"""领导把关考评 and the satisfaction gate through the use cases, on both stores: leaders' posts
and charges as events, 回避 by post, the post-weighted leader review, the minimum of leader
raters at the seal, and items the 群众认可 survey rates below the threshold left out of 实绩."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from domain.cycle import Phase, cadre_subject, team_subject
from domain.errors import Conflict, Forbidden, InvalidInput, StaleVersion
from domain.people import Charge, Leader, LeaderBody, LeaderCharge, LeaderPost
from domain.scheme import Component, GradeBand, PoolRule, Scheme, SubjectKind
from domain.scoring import SCORE_FUNCTION_VERSION, SubjectResult
from service.explain import explain, render
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.integration.kit import GRADES, GROUP, LEADERS, ORG, person

D = Decimal
L1, L2 = LEADERS
_years = itertools.count(2060)


def _scheme(year: int, **options: object) -> Scheme:
    bands = [GradeBand(g, D(m)) for g, m in zip(GRADES, (90, 70, 60, 0), strict=True)]
    team_bands = [GradeBand(g, D(m)) for g, m in zip(("好", "较好", "一般", "较差"),
                                                    (90, 80, 60, 0), strict=True)]
    team = {Component.LEADER_REVIEW: D("0.5"), Component.COMMITMENTS: D("0.5")}
    return Scheme(cycle=year, pools=[
        PoolRule(GROUP, SubjectKind.PRINCIPAL, {Component.LEADER_REVIEW: D(1)}, bands),
        PoolRule(GROUP, SubjectKind.TEAM, team, team_bands)],
        leader_post_weights={"书记": D(3)}, **options)  # type: ignore[arg-type]


def _posts(services: Services) -> None:
    """L1: 市委常委 and head of unit E1 (say, 组织部长), 分管 E2, 联系 E3; L2: 市委书记."""
    ref = services.reference
    ref.set_leader_posts(ORG, "L1", posts=[
        LeaderPost(body=LeaderBody.PARTY_COMMITTEE, title="常委", unit_code="E1")],
        charges=[LeaderCharge(unit_code="E2", relation=Charge.IN_CHARGE),
                 LeaderCharge(unit_code="E3", relation=Charge.LIAISON)],
        since="2021-06-01", reason="市委任命", expected_version=1)
    ref.set_leader_posts(ORG, "L2", posts=[
        LeaderPost(body=LeaderBody.PARTY_COMMITTEE, title="书记")], charges=[],
        since="2021-06-01", reason="市委任命", expected_version=1)


def _scoring(services: Services, **options: object) -> int:
    from projections.cadres import list_cadres  # noqa: PLC0415
    from projections.units import list_units  # noqa: PLC0415

    ev, year = services.evaluation, next(_years)
    ev.open_cycle(ORG, year)
    ev.set_scheme(ORG, year, _scheme(year, **options))
    services.follower.catch_up()
    with services.db.read() as cur:
        roster = ev.roster_from(list_units(cur, after_code=None, limit=100),
                                list_cadres(cur, after_code=None, limit=100))
    ev.set_roster(ORG, year, roster)
    ev.freeze(ORG, year)
    ev.open_scoring(ORG, year)
    return year


def test_posts_and_charges_are_events_the_organizer_reads(city: Services) -> None:
    _posts(city)
    leader = city.reference.read_leader(ORG, "L1")
    assert leader.posts == [LeaderPost(body=LeaderBody.PARTY_COMMITTEE, title="常委",
                                       unit_code="E1")]
    assert [(c.unit_code, c.relation) for c in leader.charges] == [
        ("E2", Charge.IN_CHARGE), ("E3", Charge.LIAISON)]
    assert (leader.since, leader.version) == ("2021-06-01", 2)
    with pytest.raises(Forbidden):  # a leader does not read the roster of posts
        city.reference.read_leader(L1, "L1")
    with pytest.raises(StaleVersion):
        city.reference.set_leader_posts(ORG, "L1", posts=[], charges=[], since="2022-01-01",
                                        reason="调任", expected_version=1)
    with pytest.raises(InvalidInput) as caught:
        city.reference.set_leader_posts(ORG, "L2", posts=[
            LeaderPost(body=LeaderBody.GOVERNMENT, title="市长", unit_code="NOPE")],
            charges=[], since="2022-01-01", reason="r", expected_version=2)
    assert (caught.value.rule, caught.value.field) == ("leader.unit-exists",
                                                       "posts[0].unit_code")
    with pytest.raises(InvalidInput) as caught:
        city.reference.set_leader_posts(ORG, "L2", posts=[], charges=[
            LeaderCharge(unit_code="E2", relation=Charge.IN_CHARGE),
            LeaderCharge(unit_code="E2", relation=Charge.LIAISON)],
            since="2022-01-01", reason="r", expected_version=2)
    assert caught.value.rule == "leader.charges-distinct"
    with pytest.raises(InvalidInput) as caught:
        city.reference.set_leader_posts(ORG, "L2", posts=[
            LeaderPost(body=LeaderBody.PARTY_COMMITTEE, title="书记")], charges=[],
            since="2022-01-01", reason="r", expected_version=2)
    assert caught.value.rule == "leader.posts-change"
    # Leaving every post is a new fact; the earlier set stays in the stream.
    city.reference.set_leader_posts(ORG, "L1", posts=[], charges=[], since="2022-01-01",
                                    reason="调任", expected_version=2)
    history: Leader = city.store.repository.get(city.reference.leader("L1").id, version=2)
    assert history.own_units() == {"E1"}
    assert city.reference.leader("L1").own_units() == set()


def test_avoidance_and_the_post_weighted_review(city: Services) -> None:
    _posts(city)
    year = _scoring(city)
    ev = city.evaluation
    for subject in (team_subject("E1"), cadre_subject("P1")):
        with pytest.raises(Forbidden) as caught:
            ev.leader_score(L1, year, subject, score=D(90), comment="")
        assert caught.value.rule == "rater.avoidance"
        assert "E1" in caught.value.detail
    # E2: L1 (常委, weight 1) 90, L2 (书记, weight 3) 70 → (90 + 3·70) / 4 = 300 / 4 = 75.
    ev.leader_score(L1, year, team_subject("E2"), score=D(90), comment="")
    ev.leader_score(L2, year, team_subject("E2"), score=D(70), comment="")
    file = ev.file(year, team_subject("E2"))
    assert file.leader_posts == {"leader:L1": "常委", "leader:L2": "书记"}
    pool = ev.pool(ev.cycle(year), _scheme(year), GROUP, SubjectKind.TEAM, {})
    assert pool.version == SCORE_FUNCTION_VERSION == "kaoping-score/4"
    assert pool.for_subject(team_subject("E2")).components[Component.LEADER_REVIEW] == D(75)
    # The same file under kaoping-score/3: the plain mean (90 + 70) / 2 = 80.
    old = ev.pool(ev.cycle(year), _scheme(year), GROUP, SubjectKind.TEAM, {},
                  "kaoping-score/3")
    assert old.for_subject(team_subject("E2")).components[Component.LEADER_REVIEW] == D(80)


def test_a_leader_registered_as_the_cadre_scored_is_refused(city: Services) -> None:
    city.reference.register_leader(ORG, code="P2", name="兼任")
    year = _scoring(city)
    with pytest.raises(Forbidden) as caught:
        city.evaluation.leader_score(person(Role.LEADER, IdentityKind.LEADER, "P2"), year,
                                     cadre_subject("P2"), score=D(80), comment="")
    assert caught.value.rule == "rater.self"


def _score_everything(services: Services, year: int, *, skip: set[str]) -> None:
    ev = services.evaluation
    for entry in ev.cycle(year).roster:
        for leader in LEADERS:
            if (leader.acts_as and f"{leader.acts_as.id}:{entry.unit_code}" in skip):
                continue
            ev.leader_score(leader, year, entry.subject, score=D(85), comment="")
        if entry.kind == SubjectKind.TEAM:
            ev.publish_targets(ORG, year, entry.subject, targets=["t1"])
            ev.assess_target(ORG, year, entry.subject, target="t1", achieved=True,
                             evidence="e")


def test_the_seal_needs_the_minimum_of_leader_raters(city: Services) -> None:
    _posts(city)
    year = _scoring(city, leader_raters_min={SubjectKind.TEAM: 2, SubjectKind.PRINCIPAL: 2})
    # L1 avoids E1, so E1's team and principal have one leader rater each.
    _score_everything(city, year, skip={"L1:E1"})
    with pytest.raises(Conflict) as caught:
        city.evaluation.seal(ORG, year, city.stream_heads)
    assert caught.value.rule == "seal.leader-raters-minimum"
    assert "1 of 2" in caught.value.detail
    assert city.evaluation.cycle(year).phase == Phase.SCORING


def test_the_seal_passes_at_the_minimum(city: Services) -> None:
    year = _scoring(city, leader_raters_min={SubjectKind.TEAM: 2})
    _score_everything(city, year, skip=set())
    city.evaluation.seal(ORG, year, city.stream_heads)
    assert city.evaluation.cycle(year).phase == Phase.SEALED


def test_an_item_below_the_threshold_is_not_achievement(city: Services) -> None:
    year = _scoring(city)
    ev, subject = city.evaluation, team_subject("E4")
    ev.publish_targets(ORG, year, subject, targets=["招商引资", "菜市场改造"])
    for target in ("招商引资", "菜市场改造"):
        ev.assess_target(ORG, year, subject, target=target, achieved=True, evidence="台账")
    for leader in LEADERS:
        ev.leader_score(leader, year, subject, score=D(80), comment="")

    def result() -> SubjectResult:
        return ev.pool(ev.cycle(year), _scheme(year), GROUP, SubjectKind.TEAM,
                       {}).for_subject(subject)

    before = result()
    assert before.components[Component.COMMITMENTS] == D(100)
    ev.rate_item(ORG, year, subject, session="qzrk-2060", item="菜市场改造",
                 satisfaction=D("0.52"))
    after = result()
    # (100 + 0) / 2 = 50; composite 0.5·80 + 0.5·50 = 65.
    assert after.components[Component.COMMITMENTS] == D(50)
    assert after.composite == D(65)
    gate = after.satisfaction_gate
    assert gate is not None
    assert [(g.item, g.satisfaction) for g in gate.excluded_items] == [("菜市场改造",
                                                                        D("0.52"))]
    assert gate.threshold == D("0.6")
    with city.db.read() as cur:  # the card, as `kaoping explain` prints it
        text = render(explain(cur, city.store.mapper, year, subject, None, restricted_ok=True))
    assert "not counted as 实绩: 菜市场改造 (群众满意度 0.52 < 0.6)" in text
    # A later count at the threshold replaces it: the item counts again.
    ev.rate_item(ORG, year, subject, session="qzrk-2060b", item="菜市场改造",
                 satisfaction=D("0.6"))
    assert result().components[Component.COMMITMENTS] == D(100)
    with pytest.raises(InvalidInput) as caught:
        ev.rate_item(ORG, year, subject, session="s", item="不存在", satisfaction=D("0.9"))
    assert caught.value.rule == "satisfaction.item-published"
    with pytest.raises(InvalidInput) as caught:
        ev.rate_item(ORG, year, subject, session="s", item="招商引资", satisfaction=D("1.2"))
    assert caught.value.rule == "share.range"
    with pytest.raises(InvalidInput) as caught:
        ev.rate_item(ORG, year, cadre_subject("P4"), session="s", item="x",
                     satisfaction=D("0.9"))
    assert caught.value.rule == "commitment.team-only"
