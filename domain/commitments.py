"""责任承诺考实: a unit's public commitments for the year, broken down to responsible cadres.

At the start of the year each unit (its leadership team) publishes its targets — measure, unit of
measure, target value — each with the cadres responsible for it (责任到人) and, for a shared
achievement (共绩), the other units that share it and how it is attributed: shares per unit that
sum to 1, or one lead unit that takes it all. One achievement is thus credited once in total,
never claimed in full by every unit that worked on it (seed method: 防止…任意侵占"共绩").
The commitments are public; changes after publication are amendments with a reason; anyone
may challenge a target (the challenge is a case, linked here by its id). The achieved value is
assessed in the scoring phase, and its completion share follows ``completion``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput
from domain.text import text

Code = Annotated[str, text(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Direction = Literal["at-least", "at-most"]
ONE = Decimal(1)


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """目标: one quantified commitment and who answers for it."""

    code: Code  # the target's id within its unit's commitments
    measure: Annotated[str, text(min_length=1, max_length=500)]  # 指标, e.g. 新增城镇就业
    unit_of_measure: Annotated[str, text(min_length=1, max_length=50)]  # 人, 万元, %
    target_value: Decimal
    # "at-least": more is better (就业, 投资); "at-most": less is better (事故起数, 能耗)
    direction: Direction = "at-least"
    responsible: list[Code]  # cadre codes of the committing unit (责任到人)
    partners: list[Code] = []  # other units sharing the achievement (共绩)
    lead: Code | None = None  # 共绩 attributed wholly to one unit (the owner or a partner)
    shares: dict[Code, Decimal] = {}  # or per unit (owner and partners), summing to 1


def _fail(msg: str, rule: str, field: str) -> InvalidInput:
    return InvalidInput(msg, rule=rule, field=field)


def check_target(target: Target, owner: str, where: str) -> None:
    """A target's own consistency (the roster check is the service's)."""
    if not target.target_value.is_finite() or target.target_value < 0:
        msg = f"{where}.target_value must be a finite number ≥ 0"
        raise _fail(msg, "commitment.target-value", f"{where}.target_value")
    if not target.responsible or len(set(target.responsible)) != len(target.responsible):
        msg = f"{where}.responsible must name at least one cadre, each once (责任到人)"
        raise _fail(msg, "commitment.responsible", f"{where}.responsible")
    units = [owner, *target.partners]
    if len(set(units)) != len(units):
        msg = f"{where}.partners must be other units, each named once"
        raise _fail(msg, "commitment.partners", f"{where}.partners")
    if not target.partners:
        if target.lead is not None or target.shares:
            msg = f"{where}: lead and shares attribute a shared achievement; name partners"
            raise _fail(msg, "commitment.attribution", f"{where}.partners")
        return
    if (target.lead is None) == (not target.shares):
        msg = f"{where}: a shared achievement (共绩) states either one lead unit or shares"
        raise _fail(msg, "commitment.attribution", f"{where}.shares")
    if target.lead is not None and target.lead not in units:
        msg = f"{where}.lead must be {owner} or one of the partners"
        raise _fail(msg, "commitment.attribution", f"{where}.lead")
    if target.shares:
        check_shares(target.shares, units, f"{where}.shares")


def check_shares(shares: dict[str, Decimal], units: list[str], field: str) -> None:
    if set(shares) != set(units):
        msg = f"{field} must give a share to each of {', '.join(units)} and to no one else"
        raise _fail(msg, "commitment.attribution", field)
    if any(not s.is_finite() or not 0 <= s <= 1 for s in shares.values()):
        msg = f"{field}: every share is a number from 0 to 1"
        raise _fail(msg, "commitment.attribution", field)
    total = sum(shares.values(), Decimal(0))
    if total != 1:
        msg = f"{field} sum to {total}, not 1: one achievement is credited once in total"
        raise _fail(msg, "commitment.attribution-sums-to-one", field)


def credited(target: Target, owner: str) -> dict[str, Decimal]:
    """Each unit's credit for the target's achievement; the credits sum to 1."""
    if not target.partners:
        return {owner: ONE}
    if target.lead is not None:
        return {u: ONE if u == target.lead else Decimal(0) for u in [owner, *target.partners]}
    return dict(target.shares)


def completion(target: Target, achieved: Decimal) -> Decimal:
    """完成率, the stated rule: for "at-least", achieved ÷ target; for "at-most", target ÷
    achieved (1 when achieved ≤ target); never below 0 and capped at 1, so over-achievement
    earns no extra credit. A target of 0 "at-least" is met by any achieved value ≥ 0."""
    if target.direction == "at-least":
        share = ONE if target.target_value == 0 else achieved / target.target_value
    else:
        share = ONE if achieved <= target.target_value else target.target_value / achieved
    return min(max(share, Decimal(0)), ONE)


class Credit(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
             omit_defaults=True):
    """One unit's part of one target: the credit and, once assessed, the completion.

    The 群众认可 survey's satisfaction with the target, once rated, and ``gated``: rated below
    the scheme's threshold, so the target does not count as 实绩 (its completion counts 0, its
    credit stays in the denominator). Both are omitted when unset, so credits recorded before
    the survey was linked encode (and hash) as they were."""

    owner: str  # the unit that committed the target
    target: str
    credit: Decimal
    completion: Decimal | None
    satisfaction: Decimal | None = None
    gated: bool = False


def below(satisfaction: Decimal | None, threshold: Decimal | None) -> bool:
    """The per-item gate: a rate below the threshold (an unrated target is never gated)."""
    return satisfaction is not None and threshold is not None and satisfaction < threshold


def credits_of(unit: str, commitments: Iterable[UnitCommitments],
               threshold: Decimal | None = None) -> list[Credit]:
    """Every target a unit has a non-zero credit in — its own and the 共绩 it shares — once each,
    with the survey's rate of it and, given the scheme's ``threshold``, the per-item gate (the
    same rule for every unit sharing the target: the gate is the target's, not a unit's)."""
    out = []
    for c in commitments:
        for target in c.targets.values():
            share = credited(target, c.unit).get(unit, Decimal(0))
            if share > 0:
                achieved = c.achieved.get(target.code)
                rate = c.satisfaction.get(target.code)
                out.append(Credit(owner=c.unit, target=target.code, credit=share,
                                  completion=None if achieved is None
                                  else completion(target, achieved),
                                  satisfaction=rate, gated=below(rate, threshold)))
    return out


def commitment_score(parts: list[Credit]) -> Decimal | None:
    """The attributed-completion score (0–100): Σ credit × completion ÷ Σ credit, a gated
    target's completion counting 0; None until every credited target is assessed, or when the
    unit has none."""
    total = sum((c.credit for c in parts), Decimal(0))
    if total == 0 or any(c.completion is None for c in parts):
        return None
    return sum((c.credit * (c.completion or 0) for c in parts if not c.gated),
               Decimal(0)) * 100 / total


class Amendment(msgspec.Struct, frozen=True, kw_only=True):
    """One change after publication, as the public history shows it."""

    code: str
    change: Literal["added", "changed", "withdrawn"]
    before: Target | None
    after: Target | None
    reason: str
    amended_on: str


class UnitCommitments(Aggregate):
    """责任承诺: one unit's public commitments in one cycle, with amendments and challenges."""

    TOPIC = "kaoping/UnitCommitments"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/UnitCommitments.Created"  # base only; never stored

    class Published(Created):
        TOPIC = "kaoping/UnitCommitments.Published.v1"
        year: int
        unit: str
        targets: list[Target]
        published_on: str
        on_behalf: bool  # entered by the organizer for the unit (the actor says who)
        actor: str

    class Amended(Aggregate.Event):
        """A target added, changed (same code) or withdrawn (``target`` None), with a reason."""

        TOPIC = "kaoping/UnitCommitments.Amended.v1"
        code: str
        target: Target | None
        reason: str
        amended_on: str
        actor: str

    class Challenged(Aggregate.Event):
        """A challenge of a target entered as a case (its id); who challenged is the case's."""

        TOPIC = "kaoping/UnitCommitments.Challenged.v1"
        code: str
        case: str
        actor: str

    class TargetRated(Aggregate.Event):
        """群众认可: the survey's satisfaction (0–1) with one target, from a count held in a
        named session; a later count replaces it. Below the scheme's threshold the target
        does not count as 实绩 in the attributed-completion derivation."""

        TOPIC = "kaoping/UnitCommitments.TargetRated.v1"
        code: str
        session: str
        satisfaction: Decimal
        actor: str

    class AchievementAssessed(Aggregate.Event):
        TOPIC = "kaoping/UnitCommitments.AchievementAssessed.v1"
        code: str
        achieved: Decimal
        evidence: str
        actor: str

    @staticmethod
    def id_for(year: int, unit: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:commitments:{year}:{unit}")

    @classmethod
    def create_id(cls, year: int, unit: str, **_: object) -> UUID:
        return cls.id_for(year, unit)

    @staticmethod
    def check(targets: list[Target], unit: str) -> None:
        if not targets:
            msg = "a unit commits at least one target"
            raise _fail(msg, "commitment.targets", "targets")
        codes = [t.code for t in targets]
        if len(set(codes)) != len(codes):
            msg = "target codes must be distinct"
            raise _fail(msg, "commitment.targets", "targets")
        for i, target in enumerate(targets):
            check_target(target, unit, f"targets[{i}]")

    @event(Published)
    def __init__(self, year: int, unit: str, targets: list[Target], published_on: str,
                 on_behalf: bool, actor: str) -> None:
        self.year, self.unit, self.published_on = year, unit, published_on
        self.on_behalf = on_behalf
        self.targets = {t.code: t for t in targets}
        self.achieved: dict[str, Decimal] = {}
        self.satisfaction: dict[str, Decimal] = {}  # code -> the survey's latest rate
        self.challenges: dict[str, list[str]] = {}
        self.amendments: list[Amendment] = []

    def target(self, code: str) -> Target:
        if code not in self.targets:
            msg = f"{self.unit} has no target {code!r}"
            raise _fail(msg, "commitment.target-published", "target")
        return self.targets[code]

    def amend(self, code: str, target: Target | None, reason: str, amended_on: str,
              actor: str) -> None:
        if target is None:
            self.target(code)
        elif target.code != code:
            msg = "an amended target keeps its code"
            raise _fail(msg, "commitment.amend-code", "target.code")
        else:
            check_target(target, self.unit, "target")
        if code in self.achieved:
            msg = f"target {code} is already assessed; it is no longer amended"
            raise Conflict(msg, rule="commitment.amend-before-assessment", field="target")
        self._amended(code=code, target=target, reason=reason, amended_on=amended_on,
                      actor=actor)

    @event(Amended)
    def _amended(self, code: str, target: Target | None, reason: str, amended_on: str,
                 actor: str) -> None:
        before = self.targets.get(code)
        self.satisfaction.pop(code, None)  # the survey rated the target as it stood
        change: Literal["added", "changed", "withdrawn"] = "changed"
        if target is None:
            del self.targets[code]
            change = "withdrawn"
        else:
            self.targets[code] = target  # a changed target keeps its place
            change = "changed" if before else "added"
        self.amendments.append(Amendment(code=code, change=change, before=before,
                                         after=target, reason=reason, amended_on=amended_on))

    def challenge(self, code: str, case: str, actor: str) -> None:
        self.target(code)
        self._challenged(code=code, case=case, actor=actor)

    @event(Challenged)
    def _challenged(self, code: str, case: str, actor: str) -> None:
        self.challenges.setdefault(code, []).append(case)

    def rate(self, code: str, session: str, satisfaction: Decimal, actor: str) -> None:
        self.target(code)
        if not satisfaction.is_finite() or not 0 <= satisfaction <= 1:
            msg = "satisfaction is a share from 0 to 1"
            raise _fail(msg, "commitment.satisfaction", "satisfaction")
        self._rated(code=code, session=session, satisfaction=satisfaction, actor=actor)

    @event(TargetRated)
    def _rated(self, code: str, session: str, satisfaction: Decimal, actor: str) -> None:
        self.satisfaction[code] = satisfaction

    def assess(self, code: str, achieved: Decimal, evidence: str, actor: str) -> None:
        self.target(code)
        if not achieved.is_finite() or achieved < 0:
            msg = "achieved must be a finite number ≥ 0"
            raise _fail(msg, "commitment.achieved", "achieved")
        self._assessed(code=code, achieved=achieved, evidence=evidence, actor=actor)

    @event(AchievementAssessed)
    def _assessed(self, code: str, achieved: Decimal, evidence: str, actor: str) -> None:
        self.achieved[code] = achieved
