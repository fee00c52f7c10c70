"""Who may read a subject's score card (公开范围): the publication policy of the scheme applied.

Pure: the caller says who reads (``ReaderKind``), what (the summary ``result`` or the
``detail`` behind it: explain, history, diff), whether the results are published, and — for
an investigator — whether one of their open cases covers the subject, and for the appeal body
whether the subject has filed an appeal (申诉). The answer is ``None`` (allowed) or the rule
that refuses.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from domain.scheme import PublicationPolicy, SubjectKind


class ReaderKind(StrEnum):
    ANONYMOUS = "anonymous"  # no credentials
    EVALUATOR = "evaluator"  # organizer, committee, supervisor
    INVESTIGATOR = "investigator"  # case-scoped
    APPEAL_BODY = "appeal-body"  # 申诉受理机关: the subjects with an appeal (申诉) filed
    SELF = "self"  # the subject itself (a cadre's own token, a unit for its team)
    OTHER = "other"  # any other principal: another cadre, a leader, a department...


Depth = Literal["result", "detail"]
# Readers scoped to some subjects: the rule refusing them the others
SCOPED = {ReaderKind.INVESTIGATOR: "investigator.case-scope",
          ReaderKind.APPEAL_BODY: "appeal-body.appeal-filed"}


def own_subject(kind: str, ident: str) -> str | None:
    """The subject a principal acting as ``kind:ident`` is: cadre:X is cadre:X, unit:X is
    team:X; other identities are no subject."""
    return {"cadre": f"cadre:{ident}", "unit": f"team:{ident}"}.get(kind)


def card_refusal(policy: PublicationPolicy, *, reader: ReaderKind, kind: SubjectKind,
                 depth: Depth, published: bool, in_case_scope: bool = False,
                 appeal_filed: bool = False) -> str | None:
    """The rule refusing ``reader`` the card of a subject of ``kind``, or None if allowed.
    An investigator outside their cases, and the appeal body for a subject that filed no
    appeal, read what the public reads, no more."""
    if reader == ReaderKind.INVESTIGATOR and in_case_scope:
        early = policy.investigators_before_publication
        return None if published or early else "results.published"
    if reader == ReaderKind.EVALUATOR or (
            reader == ReaderKind.APPEAL_BODY and appeal_filed and published):
        return None
    if published and depth == "result" and kind in policy.public_kinds:
        return None
    if reader in SCOPED:
        return SCOPED[reader]
    if not published:
        return "results.published"
    own = reader == ReaderKind.SELF and policy.subject_reads_own_card
    return None if own else "card.readers"


def public_kinds(policy: PublicationPolicy, reader: ReaderKind) -> set[SubjectKind] | None:
    """The kinds whose rows a results list shows ``reader`` once published (None: all)."""
    return None if reader == ReaderKind.EVALUATOR else set(policy.public_kinds)
