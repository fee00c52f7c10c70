"""The tally against a naive recount, and the thresholds that must never leak a result."""

from __future__ import annotations

import json
import math
from collections import Counter
from decimal import Decimal
from fractions import Fraction

from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ballots import (
    CountedBallot,
    EvaluationSession,
    Item,
    Option,
    QuorumRule,
    RaterClass,
    Rules,
    SessionDefinition,
    SessionKind,
    Withheld,
    ballot_problem,
    quorum_required,
    tally,
)
from service.mapper import MsgspecMapper, NoTranscoder

OPTIONS = [Option("a", "优秀", Decimal(100)), Option("b", "称职", Decimal(80)),
           Option("c", "基本称职", Decimal(60)), Option("d", "不称职", Decimal(0)),
           Option("u", "不了解", Decimal(0), counted=False)]
SUBJECTS = ["s1", "s2"]
ITEMS = [Item("x", "德"), Item("y", "能")]


def definition(min_valid: int, quorum: str, max_top: int | None,
               rule: QuorumRule = QuorumRule.MORE_THAN) -> SessionDefinition:
    return SessionDefinition(
        code="t", year=2025, kind=SessionKind.DEMOCRATIC, title="t", subjects=SUBJECTS,
        items=ITEMS, options=OPTIONS,
        classes=[RaterClass("k1", "一", Decimal("0.7"), 12),
                 RaterClass("k2", "二", Decimal("0.3"), 8)],
        rules=Rules(quorum=Decimal(quorum), quorum_rule=rule, min_valid=min_valid,
                    top_option="a", max_top=max_top, identical_invalid=True,
                    identical_min_subjects=2))


def _met(used: int, share: Fraction, eligible: int, rule: QuorumRule) -> bool:
    """实到 against 应到 × share, in exact fractions (no shared code with the tally)."""
    if rule == QuorumRule.MORE_THAN:
        return used > share * eligible
    return used >= share * eligible


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
    share = Fraction(d.rules.quorum)
    if not all(_met(used[k.code], share, k.eligible, d.rules.quorum_rule) for k in d.classes):
        return dict.fromkeys(d.subjects)  # one class below quorum: no result at all
    out: dict[str, Decimal | None] = {}
    for subject in d.subjects:
        mine = valid
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


@settings(max_examples=200, deadline=None)
@given(cast=ballots, cut=st.integers(0, 100), min_valid=st.integers(1, 6),
       quorum=st.sampled_from(["0", "0.25", "0.5"]), max_top=st.one_of(st.none(),
                                                                     st.integers(0, 2)),
       rule=st.sampled_from(QuorumRule))
def test_the_tally_equals_a_naive_recount(cast: list[tuple[str, dict[str, dict[str, str]], int]],
                                          cut: int, min_valid: int, quorum: str,
                                          max_top: int | None, rule: QuorumRule) -> None:
    d = definition(min_valid, quorum, max_top, rule)
    result = tally(d, {"k1": 12, "k2": 8}, [CountedBallot(c, a, p) for c, a, p in cast], cut)
    expected = naive(d, cast, cut)
    assert {s.subject: s.score for s in result.subjects} == expected
    late = sum(1 for _, _, p in cast if p > cut)
    assert sum(c.late for c in result.classes) == late
    assert sum(c.used for c in result.classes) == len(cast) - late
    assert sum(c.valid + c.invalid for c in result.classes) == len(cast) - late


@settings(max_examples=200, deadline=None)
@given(cast=ballots, min_valid=st.integers(1, 8), quorum=st.sampled_from(["0.25", "0.5",
                                                                          "0.75"]),
       rule=st.sampled_from(QuorumRule))
def test_thresholds_never_leak_a_result(cast: list[tuple[str, dict[str, dict[str, str]], int]],
                                        min_valid: int, quorum: str, rule: QuorumRule) -> None:
    d = definition(min_valid, quorum, None, rule)
    result = tally(d, {"k1": 12, "k2": 8}, [CountedBallot(c, a, 0) for c, a, _ in cast], 100)
    for c in result.classes:
        assert c.quorum_met == _met(c.used, Fraction(quorum), c.eligible, rule)
    failed = [c for c in result.classes if not c.quorum_met]
    assert [(f.rater_class, f.present, f.eligible, f.required) for f in result.quorum_failed] \
        == [(c.rater_class, c.used, c.eligible, c.required) for c in failed]
    for subject in result.subjects:
        if failed:  # one class below quorum: no subject has a result, whatever the others say
            assert subject.withheld_reason == Withheld.QUORUM_FAILED
        elif subject.valid_ballots < min_valid:
            assert subject.withheld_reason == Withheld.TOO_FEW_VALID
        if subject.withheld:
            assert subject.counts is None
            assert subject.score is None
            assert subject.class_scores is None
        else:
            assert not failed
            assert subject.valid_ballots >= min_valid


@given(quorum=st.fractions(0, 1, max_denominator=100), eligible=st.integers(1, 5000),
       rule=st.sampled_from(QuorumRule))
def test_required_is_the_fewest_ballots_that_meet_quorum(quorum: Fraction, eligible: int,
                                                         rule: QuorumRule) -> None:
    share = Decimal(quorum.numerator) / Decimal(quorum.denominator)
    share = share.quantize(Decimal("0.0001"))
    required = quorum_required(Rules(quorum=share, quorum_rule=rule), eligible)
    assert _met(required, Fraction(share), eligible, rule)
    assert required == 0 or not _met(required - 1, Fraction(share), eligible, rule)


def test_the_default_quorum_is_more_than_half() -> None:
    """实到 > 应到的半数 (reference/domain-notes.md §1.6): 5 of 10 is not enough, 6 is; 4 of 7
    is (3.5), 3 is not."""
    rules = Rules()
    assert (rules.quorum, rules.quorum_rule) == (Decimal("0.5"), QuorumRule.MORE_THAN)
    assert "实到人数超过应到人数的半数" in rules.quorum_source
    assert quorum_required(rules, 10) == 6
    assert quorum_required(rules, 7) == 4
    assert quorum_required(rules, 1) == 1
    exactly_half = tally(definition(1, "0.5", None), {}, [
        CountedBallot(k, {s: {"x": "a", "y": "b"} for s in SUBJECTS}, 0)
        for k, n in (("k1", 6), ("k2", 4)) for _ in range(n)], 0)
    assert [(f.rater_class, f.present, f.eligible, f.required)
            for f in exactly_half.quorum_failed] == [("k1", 6, 12, 7), ("k2", 4, 8, 5)]


def test_a_class_below_quorum_fails_the_session_not_just_itself() -> None:
    """Before tally/2 the class was dropped and the other re-weighted to a score; now the
    session says which class failed (实到/应到) and gives no subject a result."""
    good = {s: {"x": "a", "y": "b"} for s in SUBJECTS}
    cast = [CountedBallot("k1", good, 0) for _ in range(12)] + [CountedBallot("k2", good, 0)]
    result = tally(definition(1, "0.5", None), {"k1": 12, "k2": 8}, cast, 0)
    assert [(f.rater_class, f.present, f.eligible, f.required)
            for f in result.quorum_failed] == [("k2", 1, 8, 5)]
    assert result.outcome == "quorum-failed"
    for subject in result.subjects:
        assert (subject.withheld, subject.withheld_reason) == (True, Withheld.QUORUM_FAILED)
        assert (subject.score, subject.counts, subject.class_scores) == (None, None, None)


def test_late_ballots_are_kept_but_not_counted() -> None:
    d = definition(1, "0", None)
    good = {"s1": {"x": "b", "y": "c"}, "s2": {"x": "b", "y": "b"}}
    result = tally(d, {"k1": 2}, [CountedBallot("k1", good, 5), CountedBallot("k1", good, 9)],
                   cut_position=7)
    k1 = next(c for c in result.classes if c.rater_class == "k1")
    assert (k1.used, k1.valid, k1.late) == (1, 1, 1)
    assert result.subjects[0].valid_ballots == 1


# --- per-ballot validity limits ----------------------------------------------------------

def _session(subjects: int, items: int, rules: Rules) -> SessionDefinition:
    return SessionDefinition(
        code="v", year=2025, kind=SessionKind.DEMOCRATIC, title="v",
        subjects=[f"s{i}" for i in range(subjects)],
        items=[Item(f"i{i}", f"项{i}") for i in range(items)], options=OPTIONS,
        classes=[RaterClass("k", "一", Decimal(1), 10)], rules=rules)


def test_a_sincere_all_top_ballot_on_a_one_subject_session_is_valid_by_default() -> None:
    """Today's failure, from the new-user report: 德能勤绩廉 all 优秀 for the only subject was
    thrown out as 'identical'."""
    all_top = {"s0": {f"i{i}": "a" for i in range(5)}}
    assert ballot_problem(_session(1, 5, Rules()), all_top) is None
    capped = Rules(top_option="a", max_top_share=Decimal("0.3"))  # 30 % of 1 subject, rounded up
    assert ballot_problem(_session(1, 5, capped), all_top) is None
    # With ten subjects the same cap allows three 优秀, and the identical rule applies.
    ten = _session(10, 5, capped)
    three = {f"s{s}": {f"i{i}": "a" if s < 3 else "b" for i in range(5)} for s in range(10)}
    assert ballot_problem(ten, three) is None
    assert ballot_problem(ten, {**three, "s3": all_top["s0"]}) == "too-many-top"
    same = {f"s{s}": {f"i{i}": "b" for i in range(5)} for s in range(10)}
    assert ballot_problem(ten, same) == "identical"


shares = st.one_of(st.none(), st.decimals(Decimal("0.01"), Decimal(1), places=2))


@settings(max_examples=300, deadline=None)
@given(items=st.integers(1, 6), option=st.sampled_from([o.code for o in OPTIONS]),
       share=shares, max_top=st.one_of(st.none(), st.integers(1, 5)),
       min_subjects=st.integers(2, 6))
def test_one_subject_one_option_everywhere_is_always_valid(items: int, option: str,
                                                           share: Decimal | None,
                                                           max_top: int | None,
                                                           min_subjects: int) -> None:
    d = _session(1, items, Rules(top_option="a", max_top=max_top, max_top_share=share,
                                 identical_min_subjects=min_subjects))
    assert ballot_problem(d, {"s0": {f"i{i}": option for i in range(items)}}) is None


@settings(max_examples=300, deadline=None)
@given(data=st.data(), subjects=st.integers(1, 12), share=shares,
       max_top=st.one_of(st.none(), st.integers(0, 12)))
def test_the_top_limit_is_the_share_rounded_up_and_the_count(data: st.DataObject, subjects: int,
                                                             share: Decimal | None,
                                                             max_top: int | None) -> None:
    d = _session(subjects, 2, Rules(top_option="a", max_top=max_top, max_top_share=share,
                                    identical_invalid=False))
    tops = data.draw(st.integers(0, subjects))
    answers = {f"s{i}": {"i0": "a" if i < tops else "b", "i1": "c"} for i in range(subjects)}
    limits = [] if max_top is None else [max_top]
    if share is not None:
        limits.append(math.ceil(Fraction(share) * subjects))
    over = bool(limits) and tops > min(limits)
    assert (ballot_problem(d, answers) == "too-many-top") == over
    if max_top is None and tops <= 1:
        assert not over  # a share cap, rounded up, never refuses a ballot's only 优秀


@settings(max_examples=300, deadline=None)
@given(subjects=st.integers(1, 8), items=st.integers(1, 4), min_subjects=st.integers(1, 8),
       option=st.sampled_from([o.code for o in OPTIONS]))
def test_identical_ballots_are_invalid_only_with_enough_subjects(subjects: int, items: int,
                                                                 min_subjects: int,
                                                                 option: str) -> None:
    d = _session(subjects, items, Rules(identical_min_subjects=min_subjects))
    same = {f"s{s}": {f"i{i}": option for i in range(items)} for s in range(subjects)}
    expected = "identical" if subjects >= min_subjects and subjects * items > 1 else None
    assert ballot_problem(d, same) == expected


def test_a_stored_v1_definition_keeps_the_rules_it_was_published_with() -> None:
    """Definitions stored before tally/2 had no quorum rule (at least the share applied) and
    an identical rule for any ballot; reading one back must not silently tighten or loosen
    a session already frozen with a published fingerprint."""
    mapper = MsgspecMapper(transcoder=NoTranscoder())
    session = EvaluationSession(definition=definition(5, "0.5", None), actor="org")
    [defined] = session.collect_events()
    stored = mapper.to_stored_event(defined)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    for key in ("quorum_rule", "quorum_source", "identical_min_subjects", "max_top_share"):
        del state["definition"]["rules"][key]
    old = StoredEvent(stored.originator_id, 1, stored.topic, json.dumps(state).encode())
    rules = mapper.to_domain_event(old).definition.rules
    assert (rules.quorum_rule, rules.identical_min_subjects) == (QuorumRule.AT_LEAST, 1)
    assert rules.max_top_share is None
    assert mapper.to_domain_event(stored).definition.rules.quorum_rule == QuorumRule.MORE_THAN
