"""The card gate: who may read a subject's score card, applied and recorded.

Every read of a subject's card (result, explain, history, diff) goes through ``CardGate.check``:
the scheme's publication policy (domain/audience.py) decides, after the case gate for
investigators (one of their open cases covers the subject) and the appeal check for the appeal
body (the subject has filed an appeal, 申诉). Investigators' and the appeal body's reads —
allowed or refused — and supervisors' reads of the detail are recorded in the access record,
with the case that allowed them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from domain.audience import Depth, ReaderKind, card_refusal, own_subject
from domain.cycle import Cycle, Phase
from domain.errors import Forbidden
from domain.scheme import PublicationPolicy
from service.principals import Principal, Role

if TYPE_CHECKING:
    from service.cases import Cases

EVALUATORS = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR})

_WHY = {
    "investigator.case-scope": "{subject} is not a subject of one of your open cases",
    "results.published": "{subject}'s result is not published; until then it is for the "
                         "organizer, the committee and supervisors",
    "appeal-body.appeal-filed": "{subject} has filed no appeal (申诉): the appeal body reads "
                                "the cards of subjects that did",
    "card.readers": "{subject}'s card is for the subject, the organizer, the committee, "
                    "supervisors and investigators whose case covers it",
}


def reader_kind(principal: Principal | None, subject: str | None = None) -> ReaderKind:
    if principal is None:
        return ReaderKind.ANONYMOUS
    if principal.role in EVALUATORS:
        return ReaderKind.EVALUATOR
    if principal.role == Role.INVESTIGATOR:
        return ReaderKind.INVESTIGATOR
    if principal.role == Role.APPEAL_BODY:
        return ReaderKind.APPEAL_BODY
    acts = principal.acts_as
    if subject is not None and acts is not None and own_subject(acts.kind.value,
                                                                acts.id) == subject:
        return ReaderKind.SELF
    return ReaderKind.OTHER


def policy_of(cycle: Cycle) -> PublicationPolicy:
    return cycle.scheme.publication if cycle.scheme is not None else PublicationPolicy()


# (year, subject) -> whether the subject has filed an appeal (申诉) in that cycle
Appealed = Callable[[int, str], bool]


class CardGate:
    def __init__(self, cases: Cases, appealed: Appealed | None = None) -> None:
        self.cases = cases
        self.appealed = appealed or (lambda _year, _subject: False)

    def check_appeal(self, principal: Principal, what: str, cycle: Cycle,
                     subject: str) -> None:
        """The appeal body reads a subject's material (the evidence bundle) only once the
        subject has filed an appeal. A refusal is recorded here; the caller records the read
        once it has been made."""
        cycle.entry(subject)  # 404 for a subject not on the roster
        if not self.appealed(cycle.year, subject):
            rule = "appeal-body.appeal-filed"
            self.cases.record(principal, what, cycle.year, subject, None, False, rule)
            raise Forbidden(_WHY[rule].format(subject=subject), rule=rule)

    def check(self, principal: Principal | None, what: str, cycle: Cycle, subject: str,
              depth: Depth) -> ReaderKind:
        """Refuse (403, naming the rule) unless ``principal`` may read ``subject``'s card."""
        entry = cycle.entry(subject)  # 404 for a subject not on the roster
        reader = reader_kind(principal, subject)
        case = None
        if principal is not None and reader == ReaderKind.INVESTIGATOR:
            case = self.cases.case_for(principal.id, cycle.year, subject)
        appeal = reader == ReaderKind.APPEAL_BODY and self.appealed(cycle.year, subject)
        rule = card_refusal(policy_of(cycle), reader=reader, kind=entry.kind, depth=depth,
                            published=cycle.phase == Phase.PUBLISHED,
                            in_case_scope=case is not None, appeal_filed=appeal)
        if principal is not None and (reader in {ReaderKind.INVESTIGATOR,
                                                 ReaderKind.APPEAL_BODY} or (
                principal.role == Role.SUPERVISOR and depth == "detail")):
            recorded = rule or ("investigator.case-scope" if case else
                                "appeal-body.appeal-filed" if appeal else "restricted.role")
            self.cases.record(principal, what, cycle.year, subject, case, rule is None, recorded)
        if rule is not None:
            raise Forbidden(_WHY[rule].format(subject=subject), rule=rule)
        return reader

    def export_scope(self, principal: Principal, cycle: Cycle) -> dict[str, str | None] | None:
        """Whose rows of a results export ``principal`` may read: None for every row
        (evaluators); else subject -> the case covering it (None for the subject's own row).
        Investigators' exports are recorded per subject, with the case."""
        reader = reader_kind(principal)
        if reader == ReaderKind.EVALUATOR:
            return None
        if reader == ReaderKind.INVESTIGATOR:
            covered = self.cases.covered(principal.id, cycle.year)
            for subject, case in covered.items():
                self.cases.record(principal, "export", cycle.year, subject, case, True,
                                  "investigator.case-scope")
            return dict(covered)
        acts = principal.acts_as
        own = own_subject(acts.kind.value, acts.id) if acts is not None else None
        if own is None or not policy_of(cycle).subject_reads_own_card:
            return {}
        return {own: None}
