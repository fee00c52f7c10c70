"""集体议绩: the assessment team's member scores of the 实绩分析 dimensions, aggregated.

Pure: the scheme's ``TeamReview`` says which dimensions a subject kind has, their relative
weights and the aggregation rule; ``team_analysis`` gives the subject's analysis score with
its breakdown (member, dimension, weight, rule) for the explain tree, or the missing
(dimension, member) pairs while the team has not scored everything.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import msgspec

from domain.scheme import Score, Share, SubjectKind, TeamReview


def aggregate(scores: list[Decimal], rule: str, trim_from: int) -> Decimal:
    """One dimension's team value: the mean, or (``trimmed-mean`` with at least
    ``trim_from`` scores) the mean without one highest and one lowest score."""
    if not scores:
        msg = "aggregate needs at least one score"
        raise ValueError(msg)
    kept = sorted(scores)
    if rule == "trimmed-mean" and len(kept) >= trim_from:
        kept = kept[1:-1]
    return sum(kept, Decimal(0)) / len(kept)


class DimensionValue(msgspec.Struct, frozen=True, kw_only=True):
    dimension: str
    name: str
    weight: Share
    source: str
    scores: dict[str, Score]  # member -> score
    dropped: list[str]  # members whose score the rule dropped (trimmed mean)
    value: Decimal


class TeamAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    trim_from: int
    members: list[str]
    dimensions: list[DimensionValue]
    missing: list[tuple[str, str]]  # (dimension, member) not scored yet
    value: Decimal | None  # None while anything is missing


def _dropped(scores: dict[str, Decimal], rule: str, trim_from: int) -> list[str]:
    if rule != "trimmed-mean" or len(scores) < trim_from:
        return []
    order = sorted(scores, key=lambda m: (scores[m], m))
    return [order[0], order[-1]]


def team_analysis(review: TeamReview, kind: SubjectKind, members: list[str],
                  scores: dict[tuple[str, str], Decimal], places: int) -> TeamAnalysis:
    """``scores``: (member, dimension) -> the member's latest score. Only ``members`` (the team
    assigned to the subject) count; each must score every dimension of ``kind``."""
    missing: list[tuple[str, str]] = []
    values: list[DimensionValue] = []
    for d in review.dimensions_for(kind):
        got = {m: scores[m, d.code] for m in members if (m, d.code) in scores}
        missing += [(d.code, m) for m in members if m not in got]
        if got:
            value = aggregate(list(got.values()), review.aggregation, review.trim_from)
            values.append(DimensionValue(
                dimension=d.code, name=d.name, weight=d.weight, source=d.source, scores=got,
                dropped=_dropped(got, review.aggregation, review.trim_from), value=value))
    total = None
    if not missing and members and values:
        weights = sum((v.weight for v in values), Decimal(0))
        exact = sum((v.weight * v.value for v in values), Decimal(0)) / weights
        total = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return TeamAnalysis(rule=review.aggregation, trim_from=review.trim_from,
                        members=list(members), dimensions=values, missing=missing, value=total)


def anonymous(analysis: TeamAnalysis | None) -> TeamAnalysis | None:
    """The breakdown without the members' names (for the subject itself): member 1, 2, …"""
    if analysis is None:
        return None
    alias = {m: f"member {i}" for i, m in enumerate(analysis.members, start=1)}
    return msgspec.structs.replace(
        analysis, members=list(alias.values()),
        missing=[(d, alias.get(m, m)) for d, m in analysis.missing],
        dimensions=[msgspec.structs.replace(
            v, scores={alias.get(m, m): x for m, x in v.scores.items()},
            dropped=[alias.get(m, m) for m in v.dropped]) for v in analysis.dimensions])
