"""共绩 attribution: properties of the credits (one achievement is credited once in total, to each
unit at most once) and of the completion rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.commitments import (
    Target,
    UnitCommitments,
    check_target,
    commitment_score,
    completion,
    credited,
    credits_of,
)
from domain.errors import InvalidInput

UNITS = [f"U{i}" for i in range(6)]


def _target(code: str, **more: Any) -> Target:
    return msgspec.convert({"code": code, "measure": "m", "unit_of_measure": "件",
                            "target_value": "10", "responsible": ["C1"], **more}, Target)


@st.composite
def shared_targets(draw: st.DrawFn, code: str, owner: str) -> Target:
    others = [u for u in UNITS if u != owner]
    partners = draw(st.lists(st.sampled_from(others), unique=True, max_size=4))
    value = draw(st.decimals(min_value=0, max_value=10_000, places=2))
    direction = draw(st.sampled_from(["at-least", "at-most"]))
    if not partners:
        return _target(code, target_value=str(value), direction=direction)
    units = [owner, *partners]
    if draw(st.booleans()):
        return _target(code, target_value=str(value), direction=direction, partners=partners,
                       lead=draw(st.sampled_from(units)))
    # shares in hundredths that sum to exactly 1
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(units) - 1,
                                max_size=len(units) - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    return _target(code, target_value=str(value), direction=direction, partners=partners,
                   shares={u: str(Decimal(p) / 100) for u, p in zip(units, parts, strict=True)})


@st.composite
def cities(draw: st.DrawFn) -> list[UnitCommitments]:
    out = []
    for owner in draw(st.lists(st.sampled_from(UNITS), unique=True, min_size=1)):
        targets = [draw(shared_targets(f"T{i}", owner)) for i in range(draw(st.integers(1, 4)))]
        c = UnitCommitments(year=2030, unit=owner, targets=targets, published_on="2030-01-10",
                            on_behalf=False, actor="a")
        for t in targets:
            if draw(st.booleans()):
                c.assess(t.code, draw(st.decimals(min_value=0, max_value=20_000, places=2)),
                         "e", "a")
        out.append(c)
    return out


@given(cities())
def test_one_achievement_is_credited_once_in_total(city: list[UnitCommitments]) -> None:
    for c in city:
        for t in c.targets.values():
            check_target(t, c.unit, "t")  # every generated attribution is a valid one
            assert sum(credited(t, c.unit).values()) == 1
    parts = {u: credits_of(u, city) for u in UNITS}
    for unit, mine in parts.items():  # each target at most once per unit, never at zero
        keys = [(p.owner, p.target) for p in mine]
        assert len(keys) == len(set(keys)) and all(p.credit > 0 for p in mine), unit
    for c in city:  # across all units, each target's credits sum to exactly 1
        for t in c.targets.values():
            total = sum(p.credit for mine in parts.values() for p in mine
                        if (p.owner, p.target) == (c.unit, t.code))
            assert total == 1, (c.unit, t.code)
    # the credited achievement over the whole city is the sum of the completions, once each
    credited_total = sum((p.credit * p.completion for mine in parts.values() for p in mine
                          if p.completion is not None), Decimal(0))
    assessed = sum((completion(c.targets[k], v) for c in city for k, v in c.achieved.items()),
                   Decimal(0))
    # equal up to the last of Decimal's 28 digits (a completion such as 1/3 is rounded there)
    assert abs(credited_total - assessed) < Decimal("1e-20")


@given(cities())
def test_a_units_score_is_a_credit_weighted_mean_of_completions(
        city: list[UnitCommitments]) -> None:
    for unit in UNITS:
        mine = credits_of(unit, city)
        score = commitment_score(mine)
        if not mine or any(p.completion is None for p in mine):
            assert score is None
        else:
            assert score is not None and 0 <= score <= 100
            low = min(p.completion or 0 for p in mine) * 100
            high = max(p.completion or 0 for p in mine) * 100
            slack = Decimal("1e-20")  # Decimal's 28th digit
            assert low - slack <= score <= high + slack


@given(st.decimals(min_value=0, max_value=1000, places=2),
       st.decimals(min_value=0, max_value=1000, places=2))
def test_completion_is_a_share_capped_at_one(target: Decimal, achieved: Decimal) -> None:
    up = completion(_target("a", target_value=str(target)), achieved)
    down = completion(_target("a", target_value=str(target), direction="at-most"), achieved)
    assert 0 <= up <= 1 and 0 <= down <= 1
    assert (up == 1) == (achieved >= target)
    assert (down == 1) == (achieved <= target)


@given(st.lists(st.integers(0, 100), min_size=2, max_size=5))
def test_shares_not_summing_to_one_are_refused(parts: list[int]) -> None:
    units = [f"U{i}" for i in range(len(parts))]
    shares = {u: str(Decimal(p) / 100) for u, p in zip(units, parts, strict=True)}
    t = _target("a", partners=units[1:], shares=shares)
    if sum(parts) == 100:
        check_target(t, units[0], "t")
    else:
        with pytest.raises(InvalidInput) as info:
            check_target(t, units[0], "t")
        assert info.value.rule == "commitment.attribution-sums-to-one"


RATES = st.decimals(min_value=0, max_value=1, places=2)


@given(cities(), st.data())
def test_the_survey_gate_never_raises_a_score_and_ignores_a_gated_achievement(
        city: list[UnitCommitments], data: st.DataObject) -> None:
    """Per target, the same rule as the v4 item gate: rated below the threshold, a target
    counts 0 (its credit kept); lowering a rating never raises a unit's score, and a gated
    target's achieved value does not matter."""
    threshold = Decimal("0.6")
    for c in city:
        for t in c.targets.values():
            if data.draw(st.booleans()):
                c.rate(t.code, "QZRK", data.draw(RATES), "a")
    pairs = [(i, k) for i, c in enumerate(city) for k in c.targets]
    index, code = pairs[data.draw(st.integers(0, len(pairs) - 1))]
    for unit in UNITS:
        before = commitment_score(credits_of(unit, city, threshold))
        ungated = commitment_score(credits_of(unit, city))
        if before is not None and ungated is not None:
            assert before <= ungated
    scores = {u: commitment_score(credits_of(u, city, threshold)) for u in UNITS}
    owner = city[index]
    owner.rate(code, "QZRK-2", Decimal("0.59"), "a")  # gated now, whatever it was
    for unit in UNITS:
        now = commitment_score(credits_of(unit, city, threshold))
        was = scores[unit]
        if was is not None:
            assert now is not None and now <= was
    if code in owner.achieved:  # its achievement no longer matters to anyone
        first = {u: commitment_score(credits_of(u, city, threshold)) for u in UNITS}
        owner.assess(code, owner.achieved[code] * 2 + 1, "e", "a")
        assert first == {u: commitment_score(credits_of(u, city, threshold)) for u in UNITS}
