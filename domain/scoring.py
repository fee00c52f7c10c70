"""The one score function (综合确认评档): a comparison pool's evidence in, its results out.

Ranks and quotas depend on the whole pool, so the pool is the unit of computation. The live
projection, as-of replays, the rebuild check and the offline verifier all call ``score_pool``;
its version is recorded with every published result. Pure: no I/O, no clock.

Order of work (docs/scoring.md has the arithmetic):
1. normalise each component to 0–100 and apply approved component adjustments (clamped);
2. the satisfaction gate: below the scheme's threshold the gated components count zero;
3. composite = Σ weight × component (missing components count zero and are listed; the
   weights of components formally not applicable are shared out pro rata) plus approved
   total adjustments, rounded half-up to the scheme's places. From ``kaoping-score/3`` on,
   each component is itself rounded half-up to the scheme's places before it is weighted, so
   the card a person reads (components with the scheme's places) adds up to its composite;
4. rank within the pool: equal composites share a rank (1, 2, 2, 4);
5. grade by bands, then vetoes in severity order (no-grade > force-lowest > cap);
6. quotas, best grade first: over-quota candidates are demoted one grade, lowest in the pool
   order first. The pool order breaks ties: composite, then leader review, then democratic
   evaluation (higher first), then the subject's code (ascending). From
   ``kaoping-score/2`` on, a grade the committee decided takes its place in the quota first,
   and proposals share what is left; so an event that only moves proposals (a sanction
   lifted, an adjustment) can never push a pool over its quota;
7. committee decisions replace the proposal; ``quota_violations`` lists any quota they break
   (only decisions themselves can; the service refuses them, so a stored pool never has one).

From ``kaoping-score/4`` on (docs/scoring.md, "Leader review" and "The satisfaction gate"):
the leader review is the mean of the leaders' scores weighted by the scheme's weight of the post
each scored in; and the satisfaction gate is per item — a committed target or 办实事 item the
群众认可 survey rates below the threshold counts as not achieved in the commitments component
(it stays in the count of items, so failing an item never raises a score). The whole-component
gate of step 2 applies only when the scheme sets ``component_gate``, and only to the subject
kinds it names. The result lists the excluded items with their rates (``satisfaction_gate``).

Every published result records the version it was computed with, and a cycle keeps the
version it was published with: ``score_pool(..., version=...)`` still computes the older ones
so that a result published years ago verifies, and replays, as it was published.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

import msgspec

from domain.scheme import Component, PoolRule, Scheme, Score, Share, SubjectKind, Veto, grades_of

SCORE_FUNCTION_VERSION = "kaoping-score/4"
SCORE_VERSIONS = ("kaoping-score/1", "kaoping-score/2", "kaoping-score/3",
                  "kaoping-score/4")  # all computed here
_BEFORE_4 = frozenset(SCORE_VERSIONS[:3])
_HUNDRED = Decimal(100)
_EFFECT_ORDER = {"no-grade": 0, "force-lowest": 1, "cap": 2}
_ROUNDING = {"half-up": ROUND_HALF_UP, "floor": ROUND_FLOOR, "ceiling": ROUND_CEILING}

Delta = Decimal  # within ±100; checked where adjustments are proposed


class IndicatorScore(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    indicator: str
    weight: Share
    score: Score | None  # None: explicitly not applicable to this subject


class TargetItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A committed target or 办实事 item: how far it was achieved (0–100; a yes/no target is
    100 or 0; None until assessed) and the 群众认可 survey's satisfaction with it, if rated."""

    item: str
    achieved: Score | None
    satisfaction: Share | None = None


class Adjustment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An approved 加减分: on one component, or on the total when ``component`` is None."""

    delta: Delta
    component: Component | None = None


class CommitteeDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    grade: str


class SubjectEvidence(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    subject: str
    code: str  # stable order key for the last tie-break
    commitments: Score | None = None
    leader_scores: list[Score] = []
    democratic: Score | None = None
    survey_satisfaction: Share | None = None
    indicators: list[IndicatorScore] = []
    inspection: Score | None = None
    analysis: list[Score] = []
    vetoes: list[str] = []
    adjustments: list[Adjustment] = []
    committee: CommitteeDecision | None = None
    # Components formally not applicable to this subject (e.g. no indicator applies to a
    # department that owns the only one): their weight is shared out among the others.
    not_applicable: list[Component] = []
    # kaoping-score/4: the items behind ``commitments`` (the per-item satisfaction gate; when
    # empty, ``commitments`` is used as it is), and the weight of the post each leader score
    # was given in, in the order of ``leader_scores`` (empty: every score weighs 1). Earlier
    # versions read neither.
    targets: list[TargetItem] = []
    leader_weights: list[Decimal] = []


class PoolEvidence(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    group: str
    kind: SubjectKind
    subjects: list[SubjectEvidence]
    previous_ranks: dict[str, int] = {}


class GatedItem(msgspec.Struct, frozen=True, kw_only=True):
    item: str
    satisfaction: Decimal


class SatisfactionGate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the satisfaction gate did to a subject (kaoping-score/4 on): the threshold, the
    items rated below it (not counted as achieved), and whether the whole-component gate
    applied (the subject's overall satisfaction below the threshold, the scheme's option)."""

    threshold: Decimal
    excluded_items: list[GatedItem] = []
    satisfaction: Decimal | None = None  # the subject's overall 民意调查 rate, if any
    component_gate: bool = False


class SubjectResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    subject: str
    code: str
    components: dict[Component, Decimal]
    missing: list[Component]
    gate_failed: bool
    composite: Decimal
    rank: int
    previous_rank: int | None
    rank_change: int | None  # positive: moved up (位次进退)
    banded_grade: str
    vetoes_applied: list[str]
    proposed_grade: str | None
    quota_demoted: bool
    no_grade_reason: str | None
    final_grade: str | None
    decided_by_committee: bool
    # From kaoping-score/4; absent (and not encoded) in results of earlier versions, so their
    # published fingerprints are unchanged.
    satisfaction_gate: SatisfactionGate | None = None


class PoolResult(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    group: str
    kind: SubjectKind
    quota_limits: dict[str, int]
    quota_violations: list[str]
    results: list[SubjectResult]  # in pool order (rank, then the tie-break)

    def for_subject(self, subject: str) -> SubjectResult:
        for result in self.results:
            if result.subject == subject:
                return result
        raise KeyError(subject)


def _mean(values: list[Decimal]) -> Decimal | None:
    return sum(values, Decimal(0)) / len(values) if values else None


def _indicators(items: list[IndicatorScore]) -> Decimal | None:
    applicable = [i for i in items if i.score is not None and i.weight > 0]
    total = sum((i.weight for i in applicable), Decimal(0))
    if not applicable or total == 0:
        return None
    return sum((i.weight * i.score for i in applicable if i.score is not None),
               Decimal(0)) / total


def weighted_mean(scores: list[Decimal], weights: list[Decimal]) -> Decimal | None:
    """Σ weight × score / Σ weight (None without scores); no weights: every score weighs 1."""
    if not weights:
        weights = [Decimal(1)] * len(scores)
    if len(weights) != len(scores):
        msg = f"{len(scores)} leader score(s) but {len(weights)} weight(s)"
        raise ValueError(msg)
    total = sum(weights, Decimal(0))
    if not scores or total <= 0:
        return None
    return sum((w * s for s, w in zip(scores, weights, strict=True)), Decimal(0)) / total


def gated_commitments(items: list[TargetItem], threshold: Decimal) -> tuple[
        Decimal | None, list[GatedItem]]:
    """The commitments component under the per-item gate: the mean achievement over every
    item, an item rated below ``threshold`` counting zero; None until every item is assessed.
    Also the excluded items with their rates."""
    excluded = [GatedItem(item=i.item, satisfaction=i.satisfaction) for i in items
                if i.satisfaction is not None and i.satisfaction < threshold]
    if not items or any(i.achieved is None for i in items):
        return None, excluded
    out = {g.item for g in excluded}
    total = sum((i.achieved for i in items if i.achieved is not None and i.item not in out),
                Decimal(0))
    return total / len(items), excluded


def normalise(evidence: SubjectEvidence, version: str = SCORE_FUNCTION_VERSION,
              ) -> dict[Component, Decimal | None]:
    satisfaction = evidence.survey_satisfaction
    before_4 = version in _BEFORE_4
    return {
        Component.COMMITMENTS: evidence.commitments,
        Component.LEADER_REVIEW: _mean(list(evidence.leader_scores)) if before_4 else (
            weighted_mean(list(evidence.leader_scores), list(evidence.leader_weights))),
        Component.DEMOCRATIC: evidence.democratic,
        Component.SURVEY: None if satisfaction is None else satisfaction * _HUNDRED,
        Component.INDICATORS: _indicators(evidence.indicators),
        Component.INSPECTION: evidence.inspection,
        Component.ANALYSIS: _mean(list(evidence.analysis)),
    }


def _clamp(value: Decimal) -> Decimal:
    return min(max(value, Decimal(0)), _HUNDRED)


class _Scored(msgspec.Struct, kw_only=True):
    evidence: SubjectEvidence
    components: dict[Component, Decimal]
    missing: list[Component]
    gate_failed: bool
    composite: Decimal
    gate: SatisfactionGate | None = None


def _score_subject(scheme: Scheme, rule: PoolRule, evidence: SubjectEvidence,
                   version: str) -> _Scored:
    places = Decimal(1).scaleb(-scheme.composite_places)
    round_components = version not in {"kaoping-score/1", "kaoping-score/2"}
    before_4 = version in _BEFORE_4
    raw = normalise(evidence, version)
    excluded: list[GatedItem] = []
    if not before_4 and evidence.targets:
        raw[Component.COMMITMENTS], excluded = gated_commitments(
            list(evidence.targets), scheme.satisfaction_threshold)
    deltas: dict[Component, Decimal] = {}
    for adj in evidence.adjustments:  # summed first, clamped once: order does not matter
        if adj.component is not None:
            deltas[adj.component] = deltas.get(adj.component, Decimal(0)) + adj.delta
    for component, delta in deltas.items():
        value = raw.get(component)
        if value is not None:
            raw[component] = _clamp(value + delta)
    satisfaction = evidence.survey_satisfaction
    gate_failed = satisfaction is not None and satisfaction < scheme.satisfaction_threshold
    if not before_4:
        gate_failed = gate_failed and scheme.component_gate and (
            rule.kind in scheme.component_gate_kinds)
    components: dict[Component, Decimal] = {}
    missing: list[Component] = []
    total = Decimal(0)
    weights = {c: w for c, w in rule.weights.items() if c not in evidence.not_applicable}
    share = sum(weights.values(), Decimal(0))
    for component, weight in sorted(weights.items()):
        value = raw.get(component)
        if value is None:
            missing.append(component)
            value = Decimal(0)
        if gate_failed and component in scheme.gated_components:
            value = Decimal(0)
        if round_components:
            value = value.quantize(places, rounding=ROUND_HALF_UP)
        components[component] = value
        total += weight / share * value if share else Decimal(0)
    total += sum((a.delta for a in evidence.adjustments if a.component is None), Decimal(0))
    composite = max(total, Decimal(0)).quantize(places, rounding=ROUND_HALF_UP)
    gate = None if before_4 else SatisfactionGate(
        threshold=scheme.satisfaction_threshold, excluded_items=excluded,
        satisfaction=satisfaction, component_gate=gate_failed)
    return _Scored(evidence=evidence, components=components, missing=missing,
                   gate_failed=gate_failed, composite=composite, gate=gate)


def _order_key(s: _Scored) -> tuple[Decimal, Decimal, Decimal, str]:
    leader = s.components.get(Component.LEADER_REVIEW, Decimal(0))
    democratic = s.components.get(Component.DEMOCRATIC, Decimal(0))
    return (-s.composite, -leader, -democratic, s.evidence.code)


def _band(rule: PoolRule, composite: Decimal) -> str:
    for band in rule.bands:
        if composite >= band.min_score:
            return band.grade
    return rule.bands[-1].grade


def _apply_vetoes(rule: PoolRule, grade: str, vetoes: list[Veto]) -> tuple[str | None, str | None]:
    """(grade, no-grade reason) after the vetoes in force, most severe first."""
    grades = grades_of(rule)
    for veto in sorted(vetoes, key=lambda v: _EFFECT_ORDER[v.effect]):
        if veto.effect == "no-grade":
            return None, veto.reason_code
        if veto.effect == "force-lowest":
            grade = grades[-1]
        elif veto.cap_at in grades and grades.index(grade) < grades.index(veto.cap_at):
            grade = veto.cap_at
    return grade, None


def quota_limit(share: Decimal, size: int, rounding: str, hard_cap: int | None) -> int:
    limit = int((share * size).to_integral_value(rounding=_ROUNDING[rounding]))
    return min(limit, hard_cap) if hard_cap is not None else limit


def score_pool(scheme: Scheme, pool: PoolEvidence, *,
               version: str = SCORE_FUNCTION_VERSION) -> PoolResult:
    """The pool's results: components, composites, ranks, grades under vetoes and quotas,
    computed as score function ``version`` does (see the module's docstring)."""
    if version not in SCORE_VERSIONS:
        msg = f"unknown score function version {version!r}"
        raise ValueError(msg)
    rule = scheme.rule_for(pool.group, pool.kind)
    grades = grades_of(rule)
    for attr in ("subject", "code"):
        values = [getattr(e, attr) for e in pool.subjects]
        if len(values) != len(set(values)):
            msg = f"a {attr} appears twice in pool {pool.group}/{pool.kind.value}"
            raise ValueError(msg)
    scored = sorted((_score_subject(scheme, rule, e, version) for e in pool.subjects),
                    key=_order_key)
    ranks: dict[str, int] = {}
    for position, s in enumerate(scored):
        same = position > 0 and s.composite == scored[position - 1].composite
        ranks[s.evidence.subject] = ranks[scored[position - 1].evidence.subject] if same else (
            position + 1)
    proposed: dict[str, str | None] = {}
    reasons: dict[str, str | None] = {}
    applied: dict[str, list[str]] = {}
    for s in scored:
        vetoes = [scheme.veto(code) for code in s.evidence.vetoes]
        grade, reason = _apply_vetoes(rule, _band(rule, s.composite), vetoes)
        proposed[s.evidence.subject], reasons[s.evidence.subject] = grade, reason
        applied[s.evidence.subject] = [v.code for v in vetoes]
    limits = {q.grade: quota_limit(q.share, len(scored), q.rounding, q.hard_cap)
              for q in rule.quotas}
    decided = {s.evidence.subject: s.evidence.committee.grade for s in scored
               if s.evidence.committee is not None and proposed[s.evidence.subject] is not None}
    reserve = version != "kaoping-score/1"  # decided grades hold their quota places first
    demoted: set[str] = set()
    for grade in grades:  # best first, so a demotion can meet the next grade's quota
        if grade not in limits:
            continue
        taken = sum(1 for g in decided.values() if g == grade) if reserve else 0
        holders = [s.evidence.subject for s in scored if proposed[s.evidence.subject] == grade
                   and not (reserve and s.evidence.subject in decided)]
        for subject in holders[max(limits[grade] - taken, 0):]:
            proposed[subject] = grades[min(grades.index(grade) + 1, len(grades) - 1)]
            demoted.add(subject)
    results = []
    for s in scored:
        subject = s.evidence.subject
        final = decided.get(subject, proposed[subject])
        previous = pool.previous_ranks.get(subject)
        results.append(SubjectResult(
            subject=subject, code=s.evidence.code, components=s.components, missing=s.missing,
            gate_failed=s.gate_failed, composite=s.composite, rank=ranks[subject],
            previous_rank=previous,
            rank_change=None if previous is None else previous - ranks[subject],
            banded_grade=_band(rule, s.composite), vetoes_applied=applied[subject],
            proposed_grade=proposed[subject], quota_demoted=subject in demoted,
            no_grade_reason=reasons[subject], final_grade=final,
            decided_by_committee=subject in decided, satisfaction_gate=s.gate))
    violations = [
        f"{grade}: {count} > {limits[grade]}"
        for grade in grades if grade in limits
        and (count := sum(1 for r in results if r.final_grade == grade)) > limits[grade]
    ]
    return PoolResult(version=version, group=pool.group, kind=pool.kind,
                      quota_limits=limits, quota_violations=violations, results=results)
