"""The use of results (考核结果运用): what the organization did with a published grade.

The seed method's fourth effect (成效 四): the results are used "for the selection and
appointment of cadres and for their education and management" — 优秀 cadres are promoted or
moved to important posts (提拔或转任重要岗位); 基本称职 or 不称职 cadres have their post adjusted,
are demoted, removed or moved to a non-leadership post (岗位调整、降职、免职或改任非领导职务);
common problems are reviewed at a meeting (集中点评), individual ones fed back (个别反馈), and a
cadre with many problems gives a written explanation (书面说明) and an admonishment talk
(诫勉谈话). Rewards (嘉奖) follow 优秀 (reference/domain-notes.md §1.5).

Each use is an event on the subject's uses stream for the year, linked to the published grade it
rests on: the results version in force and its fingerprint, so the evidence bundle of that
version proves the grade the decision cited. A use the grade does not support is refused;
multi-year rules (连续两年不称职, 连续三年优秀) are computed from the published results of
consecutive cycles and listed as due until a use answering them is recorded.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput


class UseKind(StrEnum):
    PROMOTION = "promotion"  # 提拔
    IMPORTANT_POST = "important-post"  # 转任重要岗位
    REWARD = "reward"  # 奖励 / 嘉奖
    POST_ADJUSTMENT = "post-adjustment"  # 岗位调整
    DEMOTION = "demotion"  # 降职
    REMOVAL = "removal"  # 免职
    NON_LEADERSHIP = "non-leadership"  # 改任非领导职务
    WRITTEN_EXPLANATION = "written-explanation"  # 书面说明
    ADMONISHMENT_TALK = "admonishment-talk"  # 诫勉谈话
    FEEDBACK = "feedback"  # 个别反馈


class Fit(StrEnum):
    """Which published grades a use may rest on, by the grade's place in its pool's grade list
    (best first), so that one table serves teams (好 … 差) and cadres (优秀 … 不称职)."""

    BEST = "best"  # the best grade only
    LOWER_TWO = "lower-two"  # the two lowest grades
    ANY_GRADE = "any-grade"  # any grade, but a grade (not 不定等次)
    ANY = "any"  # also a result with no grade


# Seed 成效 四: "对…优秀干部进行提拔或转任重要岗位, 对基本称职或不称职的干部进行岗位调整、降职、
# 免职或改任非领导职务"; 嘉奖 follows 优秀 (domain-notes §1.5); 书面说明 + 诫勉谈话 and 个别反馈
# answer problems found, whatever the grade.
FITS: dict[UseKind, Fit] = {
    UseKind.PROMOTION: Fit.BEST,
    UseKind.IMPORTANT_POST: Fit.BEST,
    UseKind.REWARD: Fit.BEST,
    UseKind.POST_ADJUSTMENT: Fit.LOWER_TWO,
    UseKind.DEMOTION: Fit.LOWER_TWO,
    UseKind.REMOVAL: Fit.LOWER_TWO,
    UseKind.NON_LEADERSHIP: Fit.LOWER_TWO,
    UseKind.WRITTEN_EXPLANATION: Fit.ANY,
    UseKind.ADMONISHMENT_TALK: Fit.ANY,
    UseKind.FEEDBACK: Fit.ANY,
}
# Personnel actions on a person: never on a leadership team as a whole.
CADRE_ONLY = frozenset({UseKind.PROMOTION, UseKind.IMPORTANT_POST, UseKind.POST_ADJUSTMENT,
                        UseKind.DEMOTION, UseKind.REMOVAL, UseKind.NON_LEADERSHIP,
                        UseKind.WRITTEN_EXPLANATION, UseKind.ADMONISHMENT_TALK})


def fits(kind: UseKind, grade: str | None, grades: list[str]) -> bool:
    """Whether a use of ``kind`` may rest on the published ``grade`` (of ``grades``)."""
    fit = FITS[kind]
    if fit is Fit.ANY:
        return True
    if grade is None or grade not in grades:
        return False
    place = grades.index(grade)
    if fit is Fit.BEST:
        return place == 0
    if fit is Fit.LOWER_TWO:
        return place >= len(grades) - 2
    return True


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """A multi-year rule: the best (or the worst) grade of its pool in ``years`` consecutive
    published cycles makes one of the uses in ``answers`` due."""

    code: str
    title: str
    worst: bool  # True: the lowest grade; False: the best
    years: int
    answers: tuple[UseKind, ...]
    source: str


# domain-notes §1.5: 连续两年不称职 → 辞退 (a county plan citing 公务员法); 连续 3 年优秀 → 三等功
# (泰兴) and 晋升时优先. The organization's answer is recorded as one of ``answers``.
RULES: tuple[Rule, ...] = (
    Rule(code="two-years-lowest", title="连续两年最低等次 (连续两年不称职)", worst=True,
         years=2, answers=(UseKind.POST_ADJUSTMENT, UseKind.DEMOTION, UseKind.REMOVAL,
                           UseKind.NON_LEADERSHIP),
         source="reference/domain-notes.md §1.5 (连续两年不称职 → 辞退)"),
    Rule(code="three-years-best", title="连续三年最高等次 (连续三年优秀)", worst=False,
         years=3, answers=(UseKind.REWARD, UseKind.PROMOTION, UseKind.IMPORTANT_POST),
         source="reference/domain-notes.md §1.5 (连续 3 年优秀 → 三等功, 晋升时优先)"),
)


class Use(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    grade: str | None
    results_version: int
    results_fingerprint: str
    decided_on: str
    authority: str
    document: str
    reason: str
    actor: str


class ResultUses(Aggregate):
    """One subject's uses of its published result of one cycle."""

    TOPIC = "kaoping/ResultUses"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/ResultUses.Created"  # base only; never stored

    class Opened(Created):
        TOPIC = "kaoping/ResultUses.Opened.v1"
        year: int
        subject: str

    class UseRecorded(Aggregate.Event):
        """A decision that used the published result: what, on which grade (the results
        version in force and its fingerprint), by whose authority and under which document."""

        TOPIC = "kaoping/ResultUses.UseRecorded.v1"
        kind: str
        grade: str | None
        results_version: int
        results_fingerprint: str
        decided_on: str
        authority: str
        document: str
        reason: str
        actor: str

    @staticmethod
    def id_for(year: int, subject: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:result-uses:{year}:{subject}")

    @classmethod
    def create_id(cls, year: int, subject: str, **_: object) -> UUID:
        return cls.id_for(year, subject)

    @event(Opened)
    def __init__(self, year: int, subject: str) -> None:
        self.year = year
        self.subject = subject
        self.uses: list[Use] = []

    def record(self, *, kind: UseKind, grade: str | None, grades: list[str], cadre: bool,
               results_version: int, results_fingerprint: str, decided_on: str,
               authority: str, document: str, reason: str, actor: str) -> None:
        if kind in CADRE_ONLY and not cadre:
            msg = f"{kind.value} is a personnel action on a cadre, not on a leadership team"
            raise InvalidInput(msg, rule="use.cadre-only", field="kind")
        if not fits(kind, grade, grades):
            allowed = {Fit.BEST: grades[:1], Fit.LOWER_TWO: grades[-2:],
                       Fit.ANY_GRADE: grades}.get(FITS[kind], grades)
            msg = (f"{kind.value} rests on a published grade of {' or '.join(allowed)}; "
                   f"this result's published grade is {grade or '不定等次 (none)'}")
            raise InvalidInput(msg, rule="use.grade-fits", field="kind")
        for name, value in (("authority", authority), ("document", document),
                            ("reason", reason)):
            if not value.strip():
                msg = f"a use of results needs its {name}"
                raise InvalidInput(msg, rule="use.reasoned", field=name)
        self._record(kind=kind.value, grade=grade, results_version=results_version,
                     results_fingerprint=results_fingerprint, decided_on=decided_on,
                     authority=authority, document=document, reason=reason, actor=actor)

    @event(UseRecorded)
    def _record(self, kind: str, grade: str | None, results_version: int,
                results_fingerprint: str, decided_on: str, authority: str, document: str,
                reason: str, actor: str) -> None:
        self.uses.append(Use(
            kind=kind, grade=grade, results_version=results_version,
            results_fingerprint=results_fingerprint, decided_on=decided_on,
            authority=authority, document=document, reason=reason, actor=actor))
