"""The assessment cycle (考核周期): scheme, roster, and the phases that run in order.

setup → frozen (scheme and roster fixed; amendments only with reason and authority) →
scoring (inputs accepted) → sealed (inputs closed; the head of every evidence stream
recorded; the committee may approve the whole proposal, 审定, bound to its fingerprint) →
published (results, their fingerprint and the score function's version recorded; only as
approved).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput
from domain.scheme import Scheme, SubjectKind, fingerprint, validate_scheme


class Phase(StrEnum):
    SETUP = "setup"
    FROZEN = "frozen"
    SCORING = "scoring"
    SEALED = "sealed"
    PUBLISHED = "published"



class RosterEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One subject (被考核对象) of the cycle, in its comparison group (比较组)."""

    subject: str  # "team:<unit code>" or "cadre:<cadre code>"
    code: str
    name: str
    kind: SubjectKind
    group: str
    unit_code: str


class StreamHead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An evidence stream's head when a phase closed: its version and leaf hash (hex)."""

    stream_id: str
    version: int
    leaf_hash: str


def team_subject(unit_code: str) -> str:
    return f"team:{unit_code}"


def cadre_subject(cadre_code: str) -> str:
    return f"cadre:{cadre_code}"


def _old_gate(scheme: dict[str, Any]) -> None:
    scheme.setdefault("component_gate", True)
    scheme.setdefault("component_gate_kinds", [k.value for k in SubjectKind])


class Cycle(Aggregate):
    """考核周期: one year's evaluation. Its id is derived from the year."""

    TOPIC = "kaoping/Cycle"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Cycle.Created"  # base only; never stored

    class Opened(Created):
        TOPIC = "kaoping/Cycle.Opened.v1"
        year: int
        actor: str

    class SchemeSet(Aggregate.Event):
        TOPIC = "kaoping/Cycle.SchemeSet.v1"
        scheme: Scheme
        actor: str

        # v2: schemes gained the per-item satisfaction gate (kaoping-score/4) with the whole-
        # component gate as an option, off for new schemes. A scheme stored before read with
        # the whole-component gate on for every subject kind, as it was scored then.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _old_gate(state["scheme"])

    class RosterSet(Aggregate.Event):
        TOPIC = "kaoping/Cycle.RosterSet.v1"
        entries: list[RosterEntry]
        actor: str

    class SchemeFrozen(Aggregate.Event):
        TOPIC = "kaoping/Cycle.SchemeFrozen.v1"
        fingerprint: str
        actor: str

    class SchemeAmended(Aggregate.Event):
        TOPIC = "kaoping/Cycle.SchemeAmended.v1"
        scheme: Scheme
        fingerprint: str
        reason: str
        authority: str
        actor: str

        # v2: schemes gained the per-item satisfaction gate (kaoping-score/4) with the whole-
        # component gate as an option, off for new schemes. A scheme stored before read with
        # the whole-component gate on for every subject kind, as it was scored then.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _old_gate(state["scheme"])

    class Announced(Aggregate.Event):
        """考核公告: the public year-end announcement — subjects, team, dates, report hotline —
        with the ledger checkpoint it was issued at, so anyone can later check the log."""

        TOPIC = "kaoping/Cycle.Announced.v1"
        team_members: list[str]
        starts_on: str
        ends_on: str
        hotline: str
        checkpoint: str
        actor: str

    class ScoringOpened(Aggregate.Event):
        TOPIC = "kaoping/Cycle.ScoringOpened.v1"
        actor: str

    class Sealed(Aggregate.Event):
        TOPIC = "kaoping/Cycle.Sealed.v1"
        heads: list[StreamHead]
        actor: str

    class ProposalApproved(Aggregate.Event):
        """审定: the committee (市委) approves the whole grading proposal — every pool's
        results as they stand after the seal and its decisions — bound to their fingerprint
        (seed method 7: 提出初步评价建议，报市委审核研究后，确定…等次)."""

        TOPIC = "kaoping/Cycle.ProposalApproved.v1"
        results_fingerprint: str
        minutes_ref: str
        authority: str
        actor: str

    class Published(Aggregate.Event):
        TOPIC = "kaoping/Cycle.Published.v1"
        # v2 adds results_notice: the results themselves are recorded, in full, by the
        # cycle's results notice (domain/publication.py), written in the same transaction.
        # Stored v1 events read as False: their results are those the score function gives
        # at the recorded heads (and can be checked only against the fingerprint).
        class_version = 2
        heads: list[StreamHead]
        results_fingerprint: str
        score_version: str
        notified_on: str
        actor: str
        results_notice: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["results_notice"] = False

    @staticmethod
    def id_for(year: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:cycle:{year}")

    @classmethod
    def create_id(cls, year: int, **_: object) -> UUID:
        return cls.id_for(year)

    @event(Opened)
    def __init__(self, year: int, actor: str) -> None:
        self.year = year
        self.phase = Phase.SETUP
        self.scheme: Scheme | None = None
        self.scheme_fingerprint: str | None = None
        self.roster: list[RosterEntry] = []
        self.sealed_heads: list[StreamHead] = []
        self.published_on: str | None = None
        self.score_version: str | None = None  # the score function it was published with
        self.results_fingerprint: str | None = None
        self.announcement: dict[str, object] | None = None
        self.approved_fingerprint: str | None = None  # 审定: the proposal last approved

    def require_phase(self, *phases: Phase) -> None:
        if self.phase not in phases:
            allowed = ", ".join(p.value for p in phases)
            msg = f"cycle {self.year} is in phase {self.phase.value}; this needs {allowed}"
            raise Conflict(msg, rule="cycle.phase")

    def scoring_version(self, current: str) -> str:
        """The score function this cycle is computed with: the one it was published with,
        else the current one."""
        return self.score_version or current

    def entry(self, subject: str) -> RosterEntry:
        for item in self.roster:
            if item.subject == subject:
                return item
        msg = f"{subject} is not a subject of cycle {self.year}"
        raise InvalidInput(msg, rule="cycle.subject-in-roster", field="subject")

    def pool(self, group: str, kind: SubjectKind) -> list[RosterEntry]:
        return [e for e in self.roster if e.group == group and e.kind == kind]

    def set_scheme(self, scheme: Scheme, actor: str) -> None:
        self.require_phase(Phase.SETUP)
        if scheme.cycle != self.year:
            msg = f"the scheme is for cycle {scheme.cycle}, not {self.year}"
            raise InvalidInput(msg, rule="scheme.cycle", field="cycle")
        validate_scheme(scheme)
        self._scheme_set(scheme=scheme, actor=actor)

    @event(SchemeSet)
    def _scheme_set(self, scheme: Scheme, actor: str) -> None:
        self.scheme = scheme

    def set_roster(self, entries: list[RosterEntry], actor: str) -> None:
        self.require_phase(Phase.SETUP)
        subjects = [e.subject for e in entries]
        if len(subjects) != len(set(subjects)):
            msg = "a subject appears twice in the roster"
            raise InvalidInput(msg, rule="roster.unique", field="entries")
        self._roster_set(entries=entries, actor=actor)

    @event(RosterSet)
    def _roster_set(self, entries: list[RosterEntry], actor: str) -> None:
        self.roster = list(entries)

    def freeze(self, actor: str) -> None:
        self.require_phase(Phase.SETUP)
        if self.scheme is None or not self.roster:
            msg = "set the scheme and the roster before freezing"
            raise Conflict(msg, rule="cycle.freeze-needs-scheme-and-roster")
        for entry in self.roster:
            self.scheme.rule_for(entry.group, entry.kind)  # every subject has a pool rule
        self._frozen(fingerprint=fingerprint(self.scheme), actor=actor)

    @event(SchemeFrozen)
    def _frozen(self, fingerprint: str, actor: str) -> None:
        self.scheme_fingerprint = fingerprint
        self.phase = Phase.FROZEN

    def amend(self, scheme: Scheme, reason: str, authority: str, actor: str) -> None:
        self.require_phase(Phase.FROZEN)
        if scheme.cycle != self.year:
            msg = f"the scheme is for cycle {scheme.cycle}, not {self.year}"
            raise InvalidInput(msg, rule="scheme.cycle", field="cycle")
        validate_scheme(scheme)
        self._amended(scheme=scheme, fingerprint=fingerprint(scheme), reason=reason,
                      authority=authority, actor=actor)

    @event(SchemeAmended)
    def _amended(self, scheme: Scheme, fingerprint: str, reason: str, authority: str,
                 actor: str) -> None:
        self.scheme, self.scheme_fingerprint = scheme, fingerprint

    def announce(self, team_members: list[str], starts_on: str, ends_on: str, hotline: str,
                 checkpoint: str, actor: str) -> None:
        self.require_phase(Phase.FROZEN, Phase.SCORING)
        if not team_members or not hotline.strip() or ends_on < starts_on:
            msg = "an announcement names the team, a report hotline, and dates in order"
            raise InvalidInput(msg, rule="announcement.complete", field="team_members")
        self._announced(team_members=team_members, starts_on=starts_on, ends_on=ends_on,
                        hotline=hotline, checkpoint=checkpoint, actor=actor)

    @event(Announced)
    def _announced(self, team_members: list[str], starts_on: str, ends_on: str, hotline: str,
                   checkpoint: str, actor: str) -> None:
        self.announcement = {"team_members": team_members, "starts_on": starts_on,
                             "ends_on": ends_on, "hotline": hotline, "checkpoint": checkpoint}

    def open_scoring(self, actor: str) -> None:
        self.require_phase(Phase.FROZEN)
        self._scoring_opened(actor=actor)

    @event(ScoringOpened)
    def _scoring_opened(self, actor: str) -> None:
        self.phase = Phase.SCORING

    def seal(self, heads: list[StreamHead], actor: str) -> None:
        self.require_phase(Phase.SCORING)
        self._sealed(heads=heads, actor=actor)

    @event(Sealed)
    def _sealed(self, heads: list[StreamHead], actor: str) -> None:
        self.sealed_heads = list(heads)
        self.phase = Phase.SEALED

    def approve(self, results_fingerprint: str, proposed: str, minutes_ref: str,
                authority: str, actor: str) -> None:
        """审定 of the proposal the committee saw (``results_fingerprint``), which must be
        the proposal as it stands (``proposed``)."""
        self.require_phase(Phase.SEALED)
        if results_fingerprint != proposed:
            msg = (f"the proposal changed: it is now {proposed}, not {results_fingerprint}; "
                   "read it again before approving")
            raise Conflict(msg, rule="approval.current-proposal", field="results_fingerprint")
        self._approved(results_fingerprint=results_fingerprint, minutes_ref=minutes_ref,
                       authority=authority, actor=actor)

    @event(ProposalApproved)
    def _approved(self, results_fingerprint: str, minutes_ref: str, authority: str,
                  actor: str) -> None:
        self.approved_fingerprint = results_fingerprint

    def publish(self, heads: list[StreamHead], results_fingerprint: str, score_version: str,
                notified_on: str, actor: str, *, legacy_fingerprint: str | None = None) -> None:
        """``legacy_fingerprint``: the same results' fingerprint in the first notice format
        (domain/publication.py), which an approval recorded before the upgrade bound."""
        self.require_phase(Phase.SEALED)
        if self.approved_fingerprint is None:
            msg = f"cycle {self.year}'s proposal has not been approved by the committee (审定)"
            raise Conflict(msg, rule="publication.approved")
        if self.approved_fingerprint not in (results_fingerprint, legacy_fingerprint):
            msg = (f"the proposal changed after the committee approved it (approved "
                   f"{self.approved_fingerprint}, now {results_fingerprint}); it must be "
                   "approved again (审定)")
            raise Conflict(msg, rule="publication.approved-unchanged")
        self._published(heads=heads, results_fingerprint=results_fingerprint,
                        score_version=score_version, notified_on=notified_on, actor=actor,
                        results_notice=True)

    @event(Published)
    def _published(self, heads: list[StreamHead], results_fingerprint: str, score_version: str,
                   notified_on: str, actor: str, results_notice: bool) -> None:
        self.phase = Phase.PUBLISHED
        self.published_on = notified_on
        self.published_heads = list(heads)
        self.score_version = score_version
        self.results_fingerprint = results_fingerprint
