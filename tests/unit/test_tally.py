"""The tally against a naive recount, and the thresholds that must never leak a result."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ballots import (
    CountedBallot,
    Item,
    Option,
    RaterClass,
    Rules,
    SessionDefinition,
    SessionKind,
    ballot_problem,
    tally,
)

OPTIONS = [Option("a", "优秀", Decimal(100)), Option("b", "称职", Decimal(80)),
           Option("c", "基本称职", Decimal(60)), Option("d", "不称职", Decimal(0)),
           Option("u", "不了解", Decimal(0), counted=False)]
SUBJECTS = ["s1", "s2"]
ITEMS = [Item("x", "德"), Item("y", "能")]


def definition(min_valid: int, quorum: str, max_top: int | None) -> SessionDefinition:
    return SessionDefinition(
        code="t", year=2025, kind=SessionKind.DEMOCRATIC, title="t", subjects=SUBJECTS,
        items=ITEMS, options=OPTIONS,
        classes=[RaterClass("k1", "一", Decimal("0.7"), 12),
                 RaterClass("k2", "二", Decimal("0.3"), 8)],
        rules=Rules(quorum=Decimal(quorum), min_valid=min_valid, top_option="a",
                    max_top=max_top, identical_invalid=True))


answers = st.fixed_dictionaries({s: st.fixed_dictionaries(
    {i.code: st.sampled_from([o.code for o in OPTIONS]) for i in ITEMS}) for s in SUBJECTS})
ballots = st.lists(st.tuples(st.sampled_from(["k1", "k2"]), answers,
                             st.integers(0, 100)), max_size=25)


def naive(d: SessionDefinition, cast: list[tuple[str, dict[str, dict[str, str]], int]],
          cut: int) -> dict[str, Decimal | None]:
    """Recount from scratch: the obvious loops, no shared code with the tally."""
    values = {o.code: o.value for o in d.options if o.counted}
    in_time = [(c, a) for c, a, p in cast if p <= cut]
    valid = [(c, a) for c, a in in_time if ballot_problem(d, a) is None]
    used = Counter(c for c, _ in in_time)
    quorate = {k.code for k in d.classes if used[k.code] >= d.rules.quorum * k.eligible}
    out: dict[str, Decimal | None] = {}
    for subject in d.subjects:
        mine = [(c, a) for c, a in valid if c in quorate]
        if len(mine) < d.rules.min_valid:
            out[subject] = None
            continue
        weighted, weight = Decimal(0), Decimal(0)
        for k in d.classes:
            item_scores = []
            for item in d.items:
                marks = [values[a[subject][item.code]] for c, a in mine
                         if c == k.code and a[subject][item.code] in values]
                if marks:
                    item_scores.append(sum(marks, Decimal(0)) / len(marks))
            if item_scores:
                weighted += k.weight * sum(item_scores, Decimal(0)) / len(item_scores)
                weight += k.weight
        out[subject] = (weighted / weight).quantize(Decimal("0.01")) if weight else None
    return out


@settings(max_examples=150, deadline=None)
@given(cast=ballots, cut=st.integers(0, 100), min_valid=st.integers(1, 6),
       quorum=st.sampled_from(["0", "0.25", "0.5"]), max_top=st.one_of(st.none(),
                                                                     st.integers(0, 2)))
def test_the_tally_equals_a_naive_recount(cast: list[tuple[str, dict[str, dict[str, str]], int]],
                                          cut: int, min_valid: int, quorum: str,
                                          max_top: int | None) -> None:
    d = definition(min_valid, quorum, max_top)
    result = tally(d, {"k1": 12, "k2": 8}, [CountedBallot(c, a, p) for c, a, p in cast], cut)
    expected = naive(d, cast, cut)
    assert {s.subject: s.score for s in result.subjects} == expected
    late = sum(1 for _, _, p in cast if p > cut)
    assert sum(c.late for c in result.classes) == late
    assert sum(c.used for c in result.classes) == len(cast) - late
    assert sum(c.valid + c.invalid for c in result.classes) == len(cast) - late


@settings(max_examples=150, deadline=None)
@given(cast=ballots, min_valid=st.integers(1, 8), quorum=st.sampled_from(["0.25", "0.5",
                                                                          "0.75"]))
def test_thresholds_never_leak_a_result(cast: list[tuple[str, dict[str, dict[str, str]], int]],
                                        min_valid: int, quorum: str) -> None:
    d = definition(min_valid, quorum, None)
    result = tally(d, {"k1": 12, "k2": 8}, [CountedBallot(c, a, 0) for c, a, _ in cast], 100)
    quorate = {c.rater_class for c in result.classes if c.quorum_met}
    for c in result.classes:
        assert c.quorum_met == (Decimal(c.used) >= Decimal(quorum) * c.eligible)
    for subject in result.subjects:
        if subject.valid_ballots < min_valid:
            assert subject.withheld
            assert subject.counts is None
            assert subject.score is None
            assert subject.class_scores is None
        if subject.class_scores is not None:
            assert set(subject.class_scores) <= quorate  # no class below quorum is counted


def test_late_ballots_are_kept_but_not_counted() -> None:
    d = definition(1, "0", None)
    good = {"s1": {"x": "b", "y": "c"}, "s2": {"x": "b", "y": "b"}}
    result = tally(d, {"k1": 2}, [CountedBallot("k1", good, 5), CountedBallot("k1", good, 9)],
                   cut_position=7)
    k1 = next(c for c in result.classes if c.rater_class == "k1")
    assert (k1.used, k1.valid, k1.late) == (1, 1, 1)
    assert result.subjects[0].valid_ballots == 1
