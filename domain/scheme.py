"""The scheme (考核方案): every number of the method, frozen before scoring opens.

Weights, grade bands, quotas and their rounding, vetoes, the satisfaction gate and the review
and appeal windows are configuration with a source (docs/scheme.md cites each default), never
constants in code. A scheme is validated as a whole and fingerprinted (SHA-256 of its canonical
JSON) when frozen; the fingerprint is published with the results.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from domain.errors import InvalidInput
from domain.text import Text, text


class SubjectKind(StrEnum):
    TEAM = "team"  # 领导班子
    PRINCIPAL = "principal"  # 党政正职
    DEPUTY = "deputy"  # 副职


class Component(StrEnum):
    """The seven inputs of 五考两评, each normalised to 0–100 before weighting."""

    COMMITMENTS = "commitments"  # 责任承诺考实: share of committed targets achieved
    LEADER_REVIEW = "leader-review"  # 领导把关考评: mean of assigned leaders' scores
    DEMOCRATIC = "democratic"  # 民主测评: tally of a closed evaluation session
    SURVEY = "survey"  # 民意调查: satisfaction rate × 100
    INDICATORS = "indicators"  # 部门核对考证: weighted indicator scores
    INSPECTION = "inspection"  # 组织系统考核: the assessment team's score
    ANALYSIS = "analysis"  # 实绩分析评估: mean of the dimension scores


# msgspec cannot bound a Decimal (Meta(ge=...) is for int/float), so ranges are checked by
# check_score/check_share here and by validate_scheme; Decimals keep the arithmetic exact.
Score = Decimal
Share = Decimal
Rounding = Literal["half-up", "floor", "ceiling"]


class GradeBand(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    grade: Text
    min_score: Score


class Quota(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """At most ``share`` of a pool (rounded as said, never above ``hard_cap``) may get ``grade``."""

    grade: Text
    share: Share
    rounding: Rounding = "floor"
    hard_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Veto(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a sanction or an open case in the year does to the grade (domain-notes §1.4).

    ``no-grade`` gives no grade with an A1517 ``reason_code``; ``force-lowest`` gives the lowest
    grade; ``cap`` allows at best ``cap_at``. Several apply in severity order (no-grade first).
    """

    code: Text
    effect: Literal["no-grade", "force-lowest", "cap"]
    cap_at: Text | None = None
    reason_code: Text | None = None
    label: Text = ""


class IndicatorDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A 部门核对考证 indicator, owned (and scored) by one functional department."""

    code: Text
    name: Text
    owner: Text  # the owning department's unit code
    weight: Share
    groups: list[Text]
    kinds: list[SubjectKind] = msgspec.field(default_factory=lambda: [SubjectKind.TEAM])


Days = Annotated[int, msgspec.Meta(ge=1, le=366)]

_CADRES = [SubjectKind.PRINCIPAL, SubjectKind.DEPUTY]
_SEED_6 = "seed method 一.6 (实绩分析评估)"
_SEED_THINK = "seed method 三.一 (看位次进退、看主观努力、看协调发展)"


class AnalysisDimension(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A 实绩分析 dimension that each assessment-team member scores 0–100 (集体议绩).

    ``weight`` is relative: a subject's analysis is Σ weight × the team's value of each of its
    kind's dimensions / Σ weight. ``source`` says where the dimension and its weight come from.
    """

    code: Text
    name: Text
    weight: Share
    kinds: list[SubjectKind]
    source: Text = ""


def _dimension(code: str, name: str, kinds: list[SubjectKind], source: str) -> AnalysisDimension:
    # Equal weights [inference]: the seed names the dimensions but gives them no weights.
    return AnalysisDimension(code=code, name=name, weight=Decimal(1), kinds=kinds,
                             source=f"{source}; equal weight [inference]")


def _default_dimensions() -> list[AnalysisDimension]:
    team, both = [SubjectKind.TEAM], [SubjectKind.TEAM, *_CADRES]
    return [
        _dimension("economy", "经济建设", team, _SEED_6),
        _dimension("social-undertakings", "社会事业发展", team, _SEED_6),
        _dimension("civilisation", "政治文明和精神文明建设", team, _SEED_6),
        _dimension("cadre-team", "干部队伍建设", team, _SEED_6),
        _dimension("innovation", "创新工作", team, _SEED_6),
        _dimension("workload", "承担的工作量", _CADRES, _SEED_6),
        _dimension("difficulty", "工作难易程度", _CADRES, _SEED_6),
        _dimension("effect", "工作效率和效果", _CADRES, _SEED_6),
        _dimension("personal-role", "本人所发挥的作用", _CADRES, _SEED_6),
        _dimension("rank-change", "位次进退", both, _SEED_THINK),
        _dimension("effort", "主观努力", both, _SEED_THINK),
        _dimension("coordination", "协调发展", both, _SEED_THINK),
    ]


class TeamReview(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """集体议绩: how the assessment team's member scores become the 实绩分析 component.

    Each member assigned to a subject scores every dimension of its kind; per dimension the
    members' scores are aggregated by ``aggregation``: ``mean``, or ``trimmed-mean`` (the
    highest and the lowest score dropped when at least ``trim_from`` members scored, else the
    mean) — the usual 去掉一个最高分和一个最低分 of collective scoring [inference: the seed says
    only 集体议绩]. The weighted result, rounded half-up to the scheme's places, is the
    subject's analysis score (domain/team_review.py).
    """

    dimensions: list[AnalysisDimension] = msgspec.field(default_factory=_default_dimensions)
    aggregation: Literal["mean", "trimmed-mean"] = "trimmed-mean"
    trim_from: Annotated[int, msgspec.Meta(ge=3, le=100)] = 5

    def dimensions_for(self, kind: SubjectKind) -> list[AnalysisDimension]:
        return [d for d in self.dimensions if kind in d.kinds]


class PoolRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Weights, bands and quotas for one comparison group (比较组) and subject kind."""

    group: Text
    kind: SubjectKind
    weights: dict[Component, Share]
    bands: list[GradeBand]  # best grade first; the last band's grade is the lowest
    quotas: list[Quota] = []


class PublicationPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Who may read which results (公开范围); the defaults and their sources are in
    docs/evaluation.md ("Who may read a result").

    The public sees the published results of the subject kinds in ``public_kinds`` (by
    default the leadership teams' grades and ranks per group); an individual cadre's card is
    for the cadre, the evaluators and the investigators whose open case covers the cadre. The
    公示 (public notice) lists, for ``notice_days`` days from the written notification, only the
    names and grades in ``notice_grades`` (拟定优秀 → 公示, domain-notes §1.8); sanctions and
    vetoes are never public.
    """

    public_kinds: list[SubjectKind] = msgspec.field(
        default_factory=lambda: [SubjectKind.TEAM])
    subject_reads_own_card: bool = True  # results in writing to the person (公务员法 Art. 38)
    notice_grades: list[Text] = msgspec.field(default_factory=lambda: ["优秀", "好"])
    # The 公示 period: open in domain-notes §6; 5 days as the usual 任前公示 (at least 5
    # working days) [inference]; calendar days here, from the written notification.
    notice_days: Days = 5
    # Reports arrive from the announcement's hotline while the cycle runs (domain-notes §1.8):
    # an investigator's case may need the working results before publication.
    investigators_before_publication: bool = True


# "MM-DD" (that day of the cycle's year) or "YYYY-MM-DD" (that day, e.g. a first cycle whose
# commitments are entered late)
DueDay = Annotated[str, text(pattern=r"^(\d{4}-)?(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


class CommitmentPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """责任承诺考实 (domain/commitments.py): when units publish and how the component counts."""

    # 每年初…向社会各界进行公开承诺 (seed method, 责任承诺考实): the last day (local time) a
    # unit may publish, by default 31 March of the cycle's year — "年初" read as the first
    # quarter [inference]. Later changes are amendments with a reason.
    due: DueDay = "03-31"
    # How the commitments component is derived. "achieved-share": the share of the targets
    # published in the subject's file that were assessed achieved (every cycle before this
    # option; the default, so older cycles recompute identically). "attributed-completion":
    # Σ credit × completion ÷ Σ credit over the unit's public commitments and its 共绩 shares
    # (domain/commitments.py), recorded in the team's file as the targets are assessed.
    derivation: Literal["achieved-share", "attributed-completion"] = "achieved-share"


class Scheme(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    cycle: int
    pools: list[PoolRule]
    vetoes: list[Veto] = []
    indicators: list[IndicatorDef] = []
    # 群众满意度达不到要求的，一律不算作政绩 (seed method). From kaoping-score/4 on the gate is
    # per item: a committed target or 办实事 item the 群众认可 survey rates below the threshold
    # does not count as achieved (docs/scoring.md). Up to kaoping-score/3, and from 4 only when
    # ``component_gate`` is set, a subject's overall satisfaction below the threshold makes the
    # gated components count zero, for the subject kinds in ``component_gate_kinds``.
    satisfaction_threshold: Share = Decimal("0.6")  # checked by validate_scheme
    gated_components: list[Component] = msgspec.field(
        default_factory=lambda: [Component.COMMITMENTS, Component.ANALYSIS])
    component_gate: bool = False  # off for new schemes; schemes stored before v4 read True
    component_gate_kinds: list[SubjectKind] = msgspec.field(
        default_factory=lambda: [SubjectKind.TEAM])  # never individual cadres by default
    # 领导把关考评 (seed method: 市四大班子有关领导审阅评议): a leader's score weighs by the
    # title of the post they score in; a title not listed weighs 1, so the default (none
    # listed) is the plain mean the seed's 百分制 implies. Weights are relative (> 0).
    leader_post_weights: dict[Text, Decimal] = {}
    # The fewest leader raters a subject kind needs before the cycle can be sealed (none by
    # default: the seed names no number; a scheme sets e.g. {"team": 3, "principal": 3}).
    leader_raters_min: dict[SubjectKind, Annotated[int, msgspec.Meta(ge=0, le=100)]] = {}
    composite_places: Annotated[int, msgspec.Meta(ge=0, le=6)] = 2
    # Deadlines of 复核 and 申诉 (公务员法 Art. 95-96; domain-notes §1.8), in days, counted in
    # the jurisdiction's time zone from an injected clock.
    review_days: Days = 30  # 复核: within 30 days of notification
    appeal_days: Days = 15  # 申诉: within 15 days of the review decision
    direct_appeal_days: Days = 30  # 申诉 without review: within 30 days of notification
    review_decision_days: Days = 30  # a 复核 is decided within 30 days of filing
    appeal_decision_days: Days = 60  # a 申诉 within 60 days of acceptance (filing here)
    appeal_extension_days: Days = 30  # ... extendable once, by at most 30 days
    publication: PublicationPolicy = msgspec.field(default_factory=PublicationPolicy)
    commitments: CommitmentPolicy = msgspec.field(default_factory=CommitmentPolicy)
    team_review: TeamReview = msgspec.field(default_factory=TeamReview)

    def rule_for(self, group: str, kind: SubjectKind) -> PoolRule:
        for rule in self.pools:
            if rule.group == group and rule.kind == kind:
                return rule
        msg = f"the scheme has no rule for group {group!r} and kind {kind.value!r}"
        raise InvalidInput(msg, rule="scheme.pool-rule", field="group")

    def indicator(self, code: str) -> IndicatorDef:
        for item in self.indicators:
            if item.code == code:
                return item
        msg = f"the scheme defines no indicator {code!r}"
        raise InvalidInput(msg, rule="scheme.indicator-defined", field="indicator")

    def indicators_for(self, group: str, kind: SubjectKind,
                       unit_code: str | None = None) -> list[IndicatorDef]:
        """The indicators that apply to a subject: a department's own indicator never applies
        to its own unit (it does not verify itself)."""
        return [i for i in self.indicators
                if group in i.groups and kind in i.kinds and i.owner != unit_code]

    def veto(self, code: str) -> Veto:
        for veto in self.vetoes:
            if veto.code == code:
                return veto
        msg = f"the scheme defines no veto {code!r}"
        raise InvalidInput(msg, rule="scheme.veto-defined", field="kind")


def commitments_due(scheme: Scheme) -> date:
    """The last day a unit may publish its commitments for the scheme's cycle."""
    due = scheme.commitments.due
    return date.fromisoformat(due if len(due) == 10 else f"{scheme.cycle}-{due}")


def check_score(value: Decimal, field: str, *, places: int = 2) -> Decimal:
    """A 0–100 score with at most ``places`` decimals (no NaN, no infinity, no 99.999)."""
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(100):
        msg = f"{field} must be a number from 0 to 100, not {value}"
        raise InvalidInput(msg, rule="score.range", field=field)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        msg = f"{field} may have at most {places} decimal places, not {value}"
        raise InvalidInput(msg, rule="score.precision", field=field)
    return value


def check_share(value: Decimal, field: str) -> Decimal:
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
        msg = f"{field} must be a number from 0 to 1, not {value}"
        raise InvalidInput(msg, rule="share.range", field=field)
    return value


def grades_of(rule: PoolRule) -> list[str]:
    return [band.grade for band in rule.bands]


def _validate_pool(where: str, rule: PoolRule) -> None:
    for component, weight in rule.weights.items():
        check_share(weight, f"{where}.weights.{component.value}")
    total = sum(rule.weights.values(), Decimal(0))
    if total != 1:
        msg = f"{where}.weights sum to {total}, not 1"
        raise InvalidInput(msg, rule="scheme.weights-sum-to-one", field=f"{where}.weights")
    for j, band in enumerate(rule.bands):
        check_score(band.min_score, f"{where}.bands[{j}].min_score")
    mins = [band.min_score for band in rule.bands]
    if not rule.bands or mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
        msg = f"{where}.bands must list grades best first with strictly falling min_score"
        raise InvalidInput(msg, rule="scheme.bands-ordered", field=f"{where}.bands")
    if rule.bands[-1].min_score != 0:
        msg = f"{where}.bands: the lowest band must start at 0 so every score has a grade"
        raise InvalidInput(msg, rule="scheme.bands-cover", field=f"{where}.bands")
    for j, quota in enumerate(rule.quotas):
        check_share(quota.share, f"{where}.quotas[{j}].share")
        if quota.grade not in grades_of(rule):
            msg = f"{where}.quotas: {quota.grade!r} is not a grade of this pool"
            raise InvalidInput(msg, rule="scheme.quota-grade", field=f"{where}.quotas")
        if quota.grade == grades_of(rule)[-1]:
            msg = f"{where}.quotas: the lowest grade {quota.grade!r} cannot have a quota " \
                  "(no one can be demoted below it)"
            raise InvalidInput(msg, rule="scheme.quota-lowest-grade", field=f"{where}.quotas")


def validate_scheme(scheme: Scheme) -> None:
    """Refuse a scheme that cannot be applied, naming the first problem."""
    seen: set[tuple[str, SubjectKind]] = set()
    for i, rule in enumerate(scheme.pools):
        where = f"pools[{i}]"
        if (rule.group, rule.kind) in seen:
            msg = f"{where}: group {rule.group!r} / {rule.kind.value} is defined twice"
            raise InvalidInput(msg, rule="scheme.pool-unique", field=where)
        seen.add((rule.group, rule.kind))
        _validate_pool(where, rule)
    check_share(scheme.satisfaction_threshold, "satisfaction_threshold")
    try:
        commitments_due(scheme)
    except ValueError:
        msg = f"commitments.due {scheme.commitments.due} is not a day of {scheme.cycle}"
        raise InvalidInput(msg, rule="scheme.commitments-due", field="commitments.due") from None
    for title, weight in scheme.leader_post_weights.items():
        if not weight.is_finite() or not Decimal(0) < weight <= Decimal(100):
            msg = f"leader_post_weights.{title} must be a number above 0 and at most 100, " \
                  f"not {weight}"
            raise InvalidInput(msg, rule="scheme.leader-post-weight",
                               field=f"leader_post_weights.{title}")
    for i, item in enumerate(scheme.indicators):
        check_share(item.weight, f"indicators[{i}].weight")
    codes = [i.code for i in scheme.indicators]
    if len(codes) != len(set(codes)):
        msg = "indicator codes must be unique"
        raise InvalidInput(msg, rule="scheme.indicator-unique", field="indicators")
    _validate_team_review(scheme.team_review)
    for veto in scheme.vetoes:
        all_grades = {g for rule in scheme.pools for g in grades_of(rule)}
        if veto.effect == "cap" and veto.cap_at not in all_grades:
            msg = f"veto {veto.code!r}: a cap needs cap_at, a grade of some pool"
            raise InvalidInput(msg, rule="scheme.veto-cap", field="vetoes")
        if veto.effect == "no-grade" and not veto.reason_code:
            msg = f"veto {veto.code!r}: no-grade needs an A1517 reason_code"
            raise InvalidInput(msg, rule="scheme.veto-reason", field="vetoes")


def _validate_team_review(review: TeamReview) -> None:
    codes = [d.code for d in review.dimensions]
    if len(codes) != len(set(codes)):
        msg = "team_review.dimensions: each code once"
        raise InvalidInput(msg, rule="scheme.dimension-unique", field="team_review.dimensions")
    for i, d in enumerate(review.dimensions):
        weight = d.weight
        if not weight.is_finite() or weight < 0 or weight > 100:
            msg = f"team_review.dimensions[{i}].weight must be from 0 to 100, not {weight}"
            raise InvalidInput(msg, rule="scheme.dimension-weight",
                               field=f"team_review.dimensions[{i}].weight")
    for kind in SubjectKind:
        if sum((d.weight for d in review.dimensions_for(kind)), Decimal(0)) <= 0:
            msg = f"team_review.dimensions: the {kind.value} dimensions need a positive weight"
            raise InvalidInput(msg, rule="scheme.dimension-weight",
                               field="team_review.dimensions")


def fingerprint(scheme: Scheme) -> str:
    """SHA-256 of the scheme's canonical JSON (sorted keys, msgspec encoding); hex."""
    return hashlib.sha256(msgspec.json.encode(scheme, order="sorted")).hexdigest()
