"""Quotas always hold: from the seal on, no stored working pool and no published version ever
exceeds a quota, whatever happens after — decisions, sanctions recorded and lifted, reviews,
corrections — and however writers interleave (the check runs again inside the transaction,
under the log's write lock)."""

from __future__ import annotations

import threading
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.cycle import Phase
from domain.errors import Conflict, DomainError
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.integration.kit import (
    CODES,
    COMMITTEE,
    GRADES,
    ORG,
    SIZE,
    approve,
    cadre,
    person,
    scoring_cycle,
    sealed_cycle,
)


def assert_quotas_hold(services: Services, year: int) -> None:
    ev = services.evaluation
    cycle = ev.cycle(year)
    for pool in ev.pools(cycle):
        assert pool.quota_violations == [], pool
    published = ev.published(year)
    if published is not None:
        for pool in published.results():
            assert pool.quota_violations == [], pool


Op = tuple[Any, ...]
ops = st.one_of(
    st.tuples(st.just("decide"), st.integers(1, SIZE), st.sampled_from(GRADES)),
    # On two subjects only, so that lifts often find the sanction they lift.
    st.tuples(st.just("sanction"), st.integers(1, 2), st.sampled_from(CODES)),
    st.tuples(st.just("lift"), st.integers(1, 2), st.sampled_from(CODES)),
    st.tuples(st.just("publish")),
    st.tuples(st.just("correct")),
    st.tuples(st.just("review"), st.integers(1, SIZE), st.none() | st.sampled_from(GRADES)),
)


def _apply(services: Services, year: int, op: Op) -> None:
    ev, name = services.evaluation, op[0]
    if name == "decide":
        ev.decide(COMMITTEE, year, cadre(op[1]), grade=op[2], reason="r", minutes_ref="m")
    elif name == "sanction":
        ev.record_sanction(ORG, year, cadre(op[1]), code=op[2], decided_on="2025-06-01",
                           source="纪委")
    elif name == "lift":
        ev.lift_sanction(ORG, year, cadre(op[1]), code=op[2], reason="撤销")
    elif name == "publish":
        approve(services, year)
        ev.publish(ORG, year, services.stream_heads,
                   notified_on=services.clock.now().date().isoformat())
    elif name == "correct":
        ev.correct(COMMITTEE, year, services.stream_heads, reason="r", authority="a",
                   reference="m")
    else:
        subject = person(Role.LEADER, IdentityKind.CADRE, f"P{op[1]}")
        ev.request_review(subject, year, cadre(op[1]), kind="review", reason="不服")
        ev.decide_review(COMMITTEE, year, cadre(op[1]), kind="review", grade=op[2],
                         reason="复核", head_of=services.stream_heads)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scores=st.lists(st.integers(55, 99), min_size=SIZE, max_size=SIZE),
       sequence=st.lists(ops, max_size=16))
def test_no_stored_or_published_pool_ever_exceeds_a_quota(city: Services, scores: list[int],
                                                          sequence: list[Op]) -> None:
    year = sealed_cycle(city, scores)
    assert_quotas_hold(city, year)
    for op in sequence:
        try:
            _apply(city, year, op)
            event(f"{op[0]} accepted")
        except DomainError as refused:  # nothing written (the refusal tests check that)
            event(f"{op[0]} refused: {refused.rule}")
        assert_quotas_hold(city, year)


def test_two_decisions_racing_in_one_pool_cannot_both_take_the_last_place(
        city: Services) -> None:
    """The interleaving that a check before the transaction alone would let through: both
    decisions pass it (each sees the other's file as it was), then both save."""
    ev = city.evaluation
    year = sealed_cycle(city, [95, 93, 80, 78, 60])  # 优秀: 2 places (0.4 × 5)
    ev.decide(COMMITTEE, year, cadre(5), grade="优秀", reason="r", minutes_ref="m")
    cycle, e3, f3 = ev._input(year, cadre(3), Phase.SEALED)
    _, e4, f4 = ev._input(year, cadre(4), Phase.SEALED)
    for entry, file in ((e3, f3), (e4, f4)):
        ev._change_grade(cycle, entry, file, "优秀", partial(
            file.decide, "优秀", "r", "m", COMMITTEE.id))
    ev._save_input(cycle, e3, f3, None)
    with pytest.raises(Conflict) as refused:
        ev._save_input(cycle, e4, f4, None)
    assert refused.value.rule == "quota.exceeded"
    assert ev.file(year, cadre(4)).committee is None  # rolled back
    assert_quotas_hold(city, year)


def test_decisions_racing_on_threads_keep_the_quota(city: Services) -> None:
    ev = city.evaluation
    year = sealed_cycle(city, [95, 93, 80, 78, 60])
    ev.decide(COMMITTEE, year, cadre(5), grade="优秀", reason="r", minutes_ref="m")
    start, outcomes = threading.Barrier(3), []

    def decide(i: int) -> None:
        start.wait()
        try:
            ev.decide(COMMITTEE, year, cadre(i), grade="优秀", reason="r", minutes_ref="m")
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.rule)

    threads = [threading.Thread(target=decide, args=(i,)) for i in (2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok", "quota.exceeded", "quota.exceeded"], outcomes
    assert_quotas_hold(city, year)


def test_no_input_lands_after_the_seal_even_when_it_raced_it(city: Services) -> None:
    """An input decided while scoring was open, saved after the seal committed, is refused
    (the cycle moved under it)."""
    ev = city.evaluation
    year = scoring_cycle(city, [80] * SIZE)
    cycle, entry, file = ev._input(year, cadre(1))
    file.score_by_leader("leader:L9", Decimal(50), "", "person:leader:L9")
    ev.seal(ORG, year, city.stream_heads)
    with pytest.raises(Conflict) as refused:
        ev._save_input(cycle, entry, file, None)
    assert refused.value.rule == "concurrent-change"
    assert "leader:L9" not in ev.file(year, cadre(1)).leader_scores
