"""kaoping-score/4: the post-weighted leader review and the per-item satisfaction gate.

Hand-computed examples first (the arithmetic is in the comments), then Hypothesis properties:
the weighted mean stays between the lowest and highest score and ignores a common factor of the
weights; an item the survey rates below the threshold never counts, whatever its achievement; a
lower rating never raises a composite; and versions 1–3 read none of the new evidence, so results
published with them recompute exactly as before.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cycle import Cycle
from domain.errors import InvalidInput
from domain.people import LeaderBody, LeaderPost, post_weight
from domain.scheme import Component, Scheme, SubjectKind, validate_scheme
from domain.scoring import (
    SCORE_VERSIONS,
    SubjectEvidence,
    TargetItem,
    gated_commitments,
    score_pool,
    weighted_mean,
)
from tests.unit.test_scoring import (
    COMPETENT,
    INCOMPETENT,
    PROPS,
    _hand_result,
    _hand_scheme,
    _hand_subjects,
    _pool,
    _scheme,
    full_evidence,
    satisfactions,
    scores,
)

D = Decimal
C = Component
V4 = "kaoping-score/4"


# --- leader review: the post-weighted mean --------------------------------------------------


def test_post_weighted_mean_by_hand() -> None:
    # 书记 92 (weight 2), 副市长 80 (weight 1), 常委 86 (weight 1.5):
    # (2·92 + 1·80 + 1.5·86) / 4.5 = (184 + 80 + 129) / 4.5 = 393 / 4.5 = 87.333… → 87.33
    scheme = msgspec.structs.replace(
        _scheme({C.LEADER_REVIEW: D(1)}),
        leader_post_weights={"书记": D(2), "常委": D("1.5")})
    subject = SubjectEvidence(subject="t", code="t", leader_scores=[D(92), D(80), D(86)],
                              leader_weights=[D(2), D(1), D("1.5")])
    result = score_pool(scheme, _pool([subject])).for_subject("t")
    assert result.components[C.LEADER_REVIEW] == D("87.33")
    assert result.composite == D("87.33")
    # The same scores as kaoping-score/3 read them: the plain mean (92 + 80 + 86) / 3 = 86
    old = score_pool(scheme, _pool([subject]), version="kaoping-score/3").for_subject("t")
    assert old.components[C.LEADER_REVIEW] == D(86)


def test_post_weight_picks_the_heaviest_post_held() -> None:
    weights = {"书记": D(2), "常委": D("1.5")}
    posts = [LeaderPost(body=LeaderBody.GOVERNMENT, title="副市长"),
             LeaderPost(body=LeaderBody.PARTY_COMMITTEE, title="常委")]
    assert post_weight(weights, posts) == ("常委", D("1.5"))
    assert post_weight(weights, posts[:1]) == ("副市长", D(1))  # not listed: weight 1
    assert post_weight(weights, []) == (None, D(1))


def test_leader_post_weights_must_be_positive() -> None:
    for bad in (D(0), D(-1), D(101), D("NaN")):
        scheme = msgspec.structs.replace(_hand_scheme(), leader_post_weights={"书记": bad})
        with pytest.raises(InvalidInput) as caught:
            validate_scheme(scheme)
        assert caught.value.rule == "scheme.leader-post-weight"
        assert caught.value.field == "leader_post_weights.书记"


weights = st.integers(1, 400).map(lambda n: D(n) / 100)  # 0.01 … 4.00


@PROPS
@given(pairs=st.lists(st.tuples(scores, weights), min_size=1, max_size=6),
       factor=st.integers(1, 9).map(D))
def test_weighted_mean_is_between_the_scores_and_scale_free(
        pairs: list[tuple[Decimal, Decimal]], factor: Decimal) -> None:
    values, ws = [p[0] for p in pairs], [p[1] for p in pairs]
    mean = weighted_mean(values, ws)
    assert mean is not None
    assert min(values) <= mean <= max(values)
    assert weighted_mean(values, [w * factor for w in ws]) == pytest.approx(mean)
    # Equal weights are the plain mean, as in kaoping-score/3.
    assert weighted_mean(values, [D(1)] * len(values)) == sum(values) / len(values)
    assert weighted_mean(values, []) == sum(values) / len(values)


@PROPS
@given(pairs=st.lists(st.tuples(scores, weights), min_size=2, max_size=6), data=st.data())
def test_more_weight_on_a_score_moves_the_mean_towards_it(
        pairs: list[tuple[Decimal, Decimal]], data: st.DataObject) -> None:
    values, ws = [p[0] for p in pairs], [p[1] for p in pairs]
    mean = weighted_mean(values, ws)
    assert mean is not None
    i = data.draw(st.integers(0, len(values) - 1))
    heavier = [w + D(1) if j == i else w for j, w in enumerate(ws)]
    moved = weighted_mean(values, heavier)
    assert moved is not None
    assert abs(moved - values[i]) <= abs(mean - values[i])


# --- the satisfaction gate per item ------------------------------------------------------------


def _items(*rows: tuple[str, int | None, str | None]) -> list[TargetItem]:
    return [TargetItem(item=i, achieved=None if a is None else D(a),
                       satisfaction=None if s is None else D(s)) for i, a, s in rows]


def test_an_item_rated_below_the_threshold_does_not_count() -> None:
    # Four items, three achieved; 办实事 "菜市场改造" achieved but rated 0.55 < 0.6:
    # (100 + 100 + 0 + 0) / 4 = 50, not 75. At exactly the threshold an item counts.
    items = _items(("招商引资 10 亿", 100, "0.6"), ("新建学校 2 所", 100, None),
                   ("菜市场改造", 100, "0.55"), ("河道整治", 0, "0.9"))
    value, excluded = gated_commitments(items, D("0.6"))
    assert value == D(50)
    assert [(g.item, g.satisfaction) for g in excluded] == [("菜市场改造", D("0.55"))]
    # Not yet assessed: no value, but the excluded item is already known.
    value, excluded = gated_commitments(_items(("a", None, "0.1"), ("b", 100, None)), D("0.6"))
    assert value is None
    assert [g.item for g in excluded] == ["a"]


def test_hand_pool_under_v4_has_no_whole_component_cliff() -> None:
    # D's survey is 0.55 < 0.6. Under v4 with the default scheme the commitments still count:
    # 0.4·80 + 0.3·82.75 + 0.2·75 + 0.1·55 = 32 + 24.825 + 15 + 5.5 = 77.325 → 77.33, 称职.
    result = _hand_result(version=V4)
    d = result.for_subject("D")
    assert d.gate_failed is False
    assert d.composite == D("77.33")
    assert d.banded_grade == COMPETENT
    assert d.satisfaction_gate is not None
    assert d.satisfaction_gate.satisfaction == D("0.55")
    assert d.satisfaction_gate.component_gate is False
    assert d.satisfaction_gate.threshold == D("0.6")
    # The others are as under v3 (no targets, no post weights given).
    v3 = _hand_result(version="kaoping-score/3")
    for subject in "ABCE":
        assert result.for_subject(subject).composite == v3.for_subject(subject).composite
    assert [r.subject for r in result.results] == ["A", "B", "C", "D", "E"]


def test_the_whole_component_gate_is_an_explicit_option_per_kind() -> None:
    on_for_teams = msgspec.structs.replace(_hand_scheme(), component_gate=True)
    d = score_pool(on_for_teams, _pool(_hand_subjects()), version=V4).for_subject("D")
    assert d.gate_failed is False  # the pool is of principals: never a cliff by default
    on_for_principals = msgspec.structs.replace(
        _hand_scheme(), component_gate=True, component_gate_kinds=[SubjectKind.PRINCIPAL])
    d = score_pool(on_for_principals, _pool(_hand_subjects()), version=V4).for_subject("D")
    assert d.gate_failed is True
    assert d.composite == D("45.33")  # as kaoping-score/3 computed it
    assert d.banded_grade == INCOMPETENT
    assert d.satisfaction_gate is not None and d.satisfaction_gate.component_gate is True


def test_items_drive_the_commitments_component_under_v4_only() -> None:
    items = _items(("a", 100, "0.9"), ("b", 100, "0.3"))
    subject = SubjectEvidence(subject="t", code="t", commitments=D(100), targets=items)
    scheme = _scheme({C.COMMITMENTS: D(1)})
    now = score_pool(scheme, _pool([subject]), version=V4).for_subject("t")
    assert now.components[C.COMMITMENTS] == D(50)
    assert now.satisfaction_gate is not None
    assert [g.item for g in now.satisfaction_gate.excluded_items] == ["b"]
    old = score_pool(scheme, _pool([subject]), version="kaoping-score/3").for_subject("t")
    assert old.components[C.COMMITMENTS] == D(100)


def test_results_of_earlier_versions_encode_as_before() -> None:
    """Published fingerprints hash the encoded results: a v1–v3 result must not gain a key."""
    for version in SCORE_VERSIONS[:3]:
        result = _hand_result(version=version)
        assert b"satisfaction_gate" not in msgspec.json.encode(result)
    assert b"satisfaction_gate" in msgspec.json.encode(_hand_result(version=V4))


def test_schemes_stored_before_v4_keep_the_whole_component_gate() -> None:
    state = {"scheme": {"cycle": 2024, "pools": []}, "actor": "x"}
    Cycle.SchemeSet.upcast_v1_v2(state)
    old = msgspec.convert(state["scheme"], Scheme)
    assert old.component_gate is True
    assert old.component_gate_kinds == list(SubjectKind)
    assert Scheme(cycle=2026, pools=[]).component_gate is False  # new schemes: off


item_rows = st.lists(st.tuples(st.sampled_from([0, 40, 100]), st.none() | satisfactions),
                     min_size=1, max_size=5)
thresholds = st.integers(0, 100).map(lambda n: D(n) / 100)


def _as_items(rows: list[tuple[int, Decimal | None]]) -> list[TargetItem]:
    return [TargetItem(item=f"i{n}", achieved=D(a), satisfaction=s)
            for n, (a, s) in enumerate(rows)]


@PROPS
@given(rows=item_rows, threshold=thresholds, data=st.data())
def test_excluded_items_never_count(rows: list[tuple[int, Decimal | None]],
                                    threshold: Decimal, data: st.DataObject) -> None:
    items = _as_items(rows)
    value, excluded = gated_commitments(items, threshold)
    assert value is not None
    out = {g.item for g in excluded}
    assert out == {i.item for i in items if i.satisfaction is not None
                   and i.satisfaction < threshold}
    counted = [i.achieved for i in items if i.item not in out and i.achieved is not None]
    assert value == sum(counted, D(0)) / len(items)
    # Whatever an excluded item achieved, the value is the same.
    if out:
        name = data.draw(st.sampled_from(sorted(out)))
        other = data.draw(st.sampled_from([D(0), D(55), D(100)]))
        changed = [msgspec.structs.replace(i, achieved=other) if i.item == name else i
                   for i in items]
        assert gated_commitments(changed, threshold)[0] == value


@PROPS
@given(rows=item_rows, threshold=thresholds, data=st.data())
def test_a_lower_rating_never_raises_the_composite(rows: list[tuple[int, Decimal | None]],
                                                   threshold: Decimal,
                                                   data: st.DataObject) -> None:
    scheme = msgspec.structs.replace(
        _scheme({C.COMMITMENTS: D("0.6"), C.SURVEY: D("0.4")}), satisfaction_threshold=threshold,
        component_gate=data.draw(st.booleans()), component_gate_kinds=list(SubjectKind))
    items = _as_items(rows)
    survey = data.draw(satisfactions)
    before = SubjectEvidence(subject="t", code="t", targets=items, survey_satisfaction=survey)
    i = data.draw(st.integers(0, len(items) - 1))
    cap = items[i].satisfaction
    lower = data.draw(satisfactions if cap is None else st.decimals(
        min_value=D(0), max_value=cap, places=3))
    lowered = list(items)
    lowered[i] = msgspec.structs.replace(items[i], satisfaction=lower)
    survey_lower = data.draw(st.decimals(min_value=D(0), max_value=survey, places=3))
    after = msgspec.structs.replace(before, targets=lowered, survey_satisfaction=survey_lower)
    a = score_pool(scheme, _pool([before]), version=V4).for_subject("t").composite
    b = score_pool(scheme, _pool([after]), version=V4).for_subject("t").composite
    assert b <= a


@PROPS
@given(evidence=full_evidence(), rows=item_rows,
       leader_weights=st.lists(weights, min_size=3, max_size=3))
def test_earlier_versions_read_none_of_the_new_evidence(
        evidence: SubjectEvidence, rows: list[tuple[int, Decimal | None]],
        leader_weights: list[Decimal]) -> None:
    scheme = msgspec.structs.replace(
        _scheme({C.COMMITMENTS: D("0.3"), C.LEADER_REVIEW: D("0.4"), C.SURVEY: D("0.3")}),
        leader_post_weights={"书记": D(3)}, component_gate=False)
    richer = msgspec.structs.replace(
        evidence, targets=_as_items(rows),
        leader_weights=leader_weights[:len(evidence.leader_scores)])
    for version in SCORE_VERSIONS[:3]:
        assert score_pool(scheme, _pool([richer]), version=version) == score_pool(
            scheme, _pool([evidence]), version=version)

