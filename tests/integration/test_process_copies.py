"""What a process keeps between writes — a cycle for its inputs, a year's feedback record —
is fast-forwarded from the store, so another process's writes are seen and a refused write
leaves nothing behind; a member's 实绩分析 sheet is one write of the same events; a business
day holds only inside its block. Both stores."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.commitments import Target
from domain.errors import Conflict, Forbidden, InvalidInput
from domain.subject_file import SubjectFile
from service.clock import FixedClock, on_business_day
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.integration.kit import (
    ORG,
    _scheme,
    approve,
    cadre,
    person,
    register_city,
    scoring_cycle,
)

TEAM = [person(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, m) for m in ("M1", "M2", "M3")]


def test_an_input_sees_a_phase_another_process_changed(
        services: Services, settings: Settings, clock: FixedClock) -> None:
    year = scoring_cycle(register_city(services), [95, 85, 75, 65, 55])
    # This process now holds the cycle in its scoring phase.
    services.evaluation.record_sanction(ORG, year, cadre(1), code="admonishment",
                                        decided_on=f"{year}-05-01", source="通报")
    other = Services(settings, clock=clock)
    try:
        other.evaluation.seal(ORG, year, other.stream_heads)
    finally:
        other.close()
    with pytest.raises(Conflict) as refused:
        services.evaluation.leader_score(person(Role.LEADER, IdentityKind.LEADER, "L1"), year,
                                         cadre(2), score=Decimal(90), comment="",
                                         revision_of=None)
    assert refused.value.rule == "cycle.phase"


def test_feedback_sees_another_process_and_a_refused_write_leaves_nothing(
        services: Services, settings: Settings, clock: FixedClock) -> None:
    year = scoring_cycle(register_city(services), [95, 85, 75, 65, 55])
    ev = services.evaluation
    ev.seal(ORG, year, services.stream_heads)
    approve(services, year)
    today = clock.now().date().isoformat()
    ev.publish(ORG, year, services.stream_heads, notified_on=today)
    notes = services.notifications
    notes.feed_back(ORG, year, cadre(1), kind="notification", on=today, by="组织部",
                    summary="书面通知")
    assert len(notes.due(ORG, year)) == 10  # kept in this process from here on
    other = Services(settings, clock=clock)
    try:
        other.notifications.feed_back(ORG, year, cadre(2), kind="notification", on=today,
                                      by="组织部", summary="书面通知")
    finally:
        other.close()
    # This process's copy is fast-forwarded: its next write follows the other's, no conflict.
    notes.feed_back(ORG, year, cadre(3), kind="notification", on=today, by="组织部",
                    summary="书面通知")
    notified = {d.subject for d in notes.due(ORG, year) if d.notified}
    assert notified == {cadre(1), cadre(2), cadre(3)}
    with pytest.raises(Conflict) as twice:
        notes.feed_back(ORG, year, cadre(1), kind="notification", on=today, by="组织部",
                        summary="again")
    assert twice.value.rule == "feedback.notified-once"
    assert [g.summary for g in notes.of(year, cadre(1))[1]] == ["书面通知"]
    notes.feed_back(ORG, year, cadre(1), kind="feedback", on=today, by="组织部",
                    summary="个别反馈")
    assert [g.kind for g in notes.of(year, cadre(1))[1]] == ["notification", "feedback"]


def test_a_member_s_sheet_is_one_write_of_every_dimension(services: Services) -> None:
    year = scoring_cycle(register_city(services), [95, 85, 75, 65, 55])
    reviews, subject = services.team_reviews, "team:E1"
    reviews.assign(ORG, year, subject, members=["M1", "M2", "M3"], leader="M1")
    scheme = services.evaluation.cycle(year).scheme
    assert scheme is not None
    dimensions = [d.code for d in scheme.team_review.dimensions_for(
        services.evaluation.cycle(year).entry(subject).kind)]
    sheet = {d: Decimal(80 + i) for i, d in enumerate(dimensions)}
    written = reviews.score_sheet(TEAM[0], year, subject, scores=sheet, rationale="集体议绩")
    assert [lf.stream_version for lf in written.leaves] == list(
        range(written.version - len(dimensions) + 1, written.version + 1))
    file: SubjectFile = services.evaluation.file(year, subject)
    assert {d: file.member_scores["M1", d] for d in dimensions} == sheet
    # All or nothing: one unknown dimension or one bad score refuses the whole sheet.
    for bad, rule in (({**sheet, "sports": Decimal(90)}, "analysis.dimension"),
                      ({**sheet, dimensions[0]: Decimal(101)}, "score.range")):
        with pytest.raises(InvalidInput) as refused:
            reviews.score_sheet(TEAM[1], year, subject, scores=bad, rationale="r")
        assert refused.value.rule == rule
    with pytest.raises(Forbidden):
        reviews.score_sheet(person(Role.ASSESSMENT_TEAM, IdentityKind.TEAM_MEMBER, "M9"), year,
                            subject, scores=sheet, rationale="r")
    assert services.evaluation.file(year, subject).version == file.version


def test_a_business_day_holds_only_inside_its_block(services: Services,
                                                   clock: FixedClock) -> None:
    ev = services.evaluation
    assert ev.today() == clock.now().date()
    with on_business_day(date(2025, 3, 20)):
        assert ev.today() == date(2025, 3, 20)
        with on_business_day(date(2026, 1, 21)):
            assert ev.today() == date(2026, 1, 21)
        assert ev.today() == date(2025, 3, 20)
    assert ev.today() == clock.now().date()


def test_the_commitments_list_follows_another_process(
        services: Services, settings: Settings, clock: FixedClock) -> None:
    from projections.cadres import list_cadres  # noqa: PLC0415
    from projections.units import list_units  # noqa: PLC0415

    ev, year = services.evaluation, 2040
    register_city(services)
    ev.open_cycle(ORG, year)
    ev.set_scheme(ORG, year, _scheme(year))
    services.follower.catch_up()
    with services.db.read() as cur:
        ev.set_roster(ORG, year, ev.roster_from(list_units(cur, after_code=None, limit=100),
                                                list_cadres(cur, after_code=None, limit=100)))
    ev.freeze(ORG, year)

    def target(value: int, cadre_code: str) -> Target:
        return Target(code="T1", measure="新增就业", unit_of_measure="人",
                      target_value=Decimal(value), responsible=[cadre_code])

    services.commitments.publish(ORG, year, "E1", targets=[target(3, "P1")])
    assert [c.unit for c in services.commitments.all_of(ev.cycle(year))] == ["E1"]
    other = Services(settings, clock=clock)
    try:
        other.commitments.publish(ORG, year, "E2", targets=[target(4, "P2")])
        other.commitments.amend(ORG, year, "E1", "T1", target=target(5, "P1"), reason="调整")
    finally:
        other.close()
    listed = services.commitments.all_of(ev.cycle(year))
    assert [(c.unit, c.targets["T1"].target_value) for c in listed] == [
        ("E1", Decimal(5)), ("E2", Decimal(4))]


def test_a_kept_cycle_handed_out_never_changes_under_its_reader(
        services: Services) -> None:
    """``current`` hands out the process's kept cycle without a copy, and fast-forwards it
    copy-on-write: a reader still holding the old one sees it whole and unchanged after the
    cycle moved on; the next read gets the new one, kept in its turn."""
    year = scoring_cycle(register_city(services), [95, 85, 75, 65, 55])
    ev = services.evaluation
    held = ev.current(year)
    phase, version, roster = held.phase, held.version, list(held.roster)
    assert ev.current(year) is held  # nothing new: no copy made
    ev.seal(ORG, year, services.stream_heads)
    now = ev.current(year)
    assert now is not held and now.version > version and now.phase != phase
    assert (held.phase, held.version, held.roster) == (phase, version, roster)
    assert ev.current(year) is now
