"""集体议绩 (domain/team_review.py): the aggregation rule as properties, and the subject's
analysis from member scores by the scheme's dimensions and weights."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.scheme import AnalysisDimension, SubjectKind, TeamReview
from domain.team_review import aggregate, anonymous, team_analysis

SCORES = st.lists(st.decimals(min_value=0, max_value=100, places=2), min_size=1, max_size=15)
RULES = st.sampled_from(["mean", "trimmed-mean"])
TRIM = st.integers(min_value=3, max_value=9)


def mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


@given(SCORES, RULES, TRIM)
def test_the_team_value_lies_within_the_members_scores(scores: list[Decimal], rule: str,
                                                       trim_from: int) -> None:
    assert min(scores) <= aggregate(scores, rule, trim_from) <= max(scores)


@given(SCORES, RULES, TRIM, st.randoms(use_true_random=False))
def test_the_order_of_the_members_does_not_matter(scores: list[Decimal], rule: str,
                                                  trim_from: int, rnd: object) -> None:
    shuffled = list(scores)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert aggregate(shuffled, rule, trim_from) == aggregate(scores, rule, trim_from)


@given(SCORES, TRIM)
def test_below_the_trim_threshold_the_trimmed_mean_is_the_mean(scores: list[Decimal],
                                                               trim_from: int) -> None:
    if len(scores) < trim_from:
        assert aggregate(scores, "trimmed-mean", trim_from) == mean(scores)
    assert aggregate(scores, "mean", trim_from) == mean(scores)


@given(SCORES, TRIM, st.decimals(min_value=0, max_value=100, places=2))
def test_one_extreme_member_cannot_move_a_trimmed_mean(scores: list[Decimal], trim_from: int,
                                                       extreme: Decimal) -> None:
    """With the trim in force, replacing the highest score by anything at least as high (or
    the lowest by anything as low) leaves the value unchanged: 去掉一个最高分和一个最低分."""
    if len(scores) < trim_from:
        return
    ordered = sorted(scores)
    before = aggregate(ordered, "trimmed-mean", trim_from)
    if extreme >= ordered[-1]:
        assert aggregate([*ordered[:-1], extreme], "trimmed-mean", trim_from) == before
    if extreme <= ordered[0]:
        assert aggregate([extreme, *ordered[1:]], "trimmed-mean", trim_from) == before
    assert before == mean(ordered[1:-1])


def test_no_score_is_no_value() -> None:
    with pytest.raises(ValueError, match="at least one"):
        aggregate([], "mean", 5)


REVIEW = TeamReview(dimensions=[
    AnalysisDimension(code="a", name="甲", weight=Decimal(3), kinds=[SubjectKind.TEAM]),
    AnalysisDimension(code="b", name="乙", weight=Decimal(1), kinds=[SubjectKind.TEAM]),
    AnalysisDimension(code="c", name="丙", weight=Decimal(1), kinds=[SubjectKind.DEPUTY]),
], aggregation="mean")


@given(st.dictionaries(st.tuples(st.sampled_from(["m1", "m2", "m3"]), st.sampled_from("ab")),
                       st.decimals(min_value=0, max_value=100, places=2)))
def test_the_subject_value_is_the_weighted_mean_once_every_member_scored(
        scores: dict[tuple[str, str], Decimal]) -> None:
    members = ["m1", "m2"]  # m3 is not assigned: its scores never count
    got = team_analysis(REVIEW, SubjectKind.TEAM, members, scores, 2)
    owed = sorted((d, m) for d in "ab" for m in members if (m, d) not in scores)
    assert sorted(got.missing) == owed
    if owed:
        assert got.value is None
        return
    a = mean([scores["m1", "a"], scores["m2", "a"]])
    b = mean([scores["m1", "b"], scores["m2", "b"]])
    assert got.value == ((3 * a + b) / 4).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert [d.dimension for d in got.dimensions] == ["a", "b"]  # the deputy's is not a team's
    hidden = anonymous(got)
    assert hidden is not None
    assert hidden.members == ["member 1", "member 2"]
    assert all(set(d.scores) == {"member 1", "member 2"} for d in hidden.dimensions)
