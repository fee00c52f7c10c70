"""Report-line cases (举报) and the record of every read of restricted material.

A report comes in by hotline, mailbox or website, about one or more subjects of a cycle, with
the reporter's identity optional (kept in its own event, which only the intake role reads) and
a follow-up code for anonymous reporters (only its hash is stored). An investigator is assigned,
records findings and outcomes (linked to the adjustments, sanctions or grade changes they
caused), and closes the case. While a case is open, its investigator may read the restricted
material of its subjects — and every such read, allowed or refused, is itself an event.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput


class Channel(StrEnum):
    HOTLINE = "hotline"
    MAILBOX = "mailbox"
    WEBSITE = "website"
    CHALLENGE = "challenge"  # a challenge of a unit's public commitment (domain/commitments.py)


class CaseState(StrEnum):
    RECEIVED = "received"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class Case(Aggregate):
    """举报件: one report and its investigation."""

    TOPIC = "kaoping/Case"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Case.Created"  # base only; never stored

    class Reported(Created):
        TOPIC = "kaoping/Case.Reported.v1"
        channel: str
        year: int
        subjects: list[str]
        summary: str
        follow_up_hash: str | None
        actor: str

    class ReporterIdentified(Aggregate.Event):
        """Readable by the intake role only: not by supervisors, investigators or units."""

        TOPIC = "kaoping/Case.ReporterIdentified.v1"
        identity: str
        actor: str

    class Assigned(Aggregate.Event):
        TOPIC = "kaoping/Case.Assigned.v1"
        investigator: str
        actor: str

    class FindingRecorded(Aggregate.Event):
        TOPIC = "kaoping/Case.FindingRecorded.v1"
        finding: str
        actor: str

    class OutcomeLinked(Aggregate.Event):
        TOPIC = "kaoping/Case.OutcomeLinked.v1"
        kind: str  # adjustment | sanction | grade-change | none
        subject: str
        reference: str  # e.g. the adjustment id, the sanction code, the decision's minutes
        actor: str

    class Closed(Aggregate.Event):
        TOPIC = "kaoping/Case.Closed.v1"
        conclusion: str
        actor: str

    @event(Reported)
    def __init__(self, channel: str, year: int, subjects: list[str], summary: str,
                 follow_up_hash: str | None, actor: str) -> None:
        self.channel, self.year, self.subjects = Channel(channel), year, list(subjects)
        self.summary, self.follow_up_hash = summary, follow_up_hash
        self.state = CaseState.RECEIVED
        self.investigator: str | None = None
        self.findings: list[str] = []
        self.outcomes: list[tuple[str, str, str]] = []
        self.reporter: str | None = None

    @event(ReporterIdentified)
    def identify_reporter(self, identity: str, actor: str) -> None:
        self.reporter = identity

    def assign(self, investigator: str, actor: str) -> None:
        if self.state == CaseState.CLOSED:
            msg = "the case is closed"
            raise Conflict(msg, rule="case.open")
        self._assigned(investigator=investigator, actor=actor)

    @event(Assigned)
    def _assigned(self, investigator: str, actor: str) -> None:
        self.investigator, self.state = investigator, CaseState.ASSIGNED

    def record_finding(self, finding: str, actor: str) -> None:
        self._require_open_by(actor)
        self._finding(finding=finding, actor=actor)

    @event(FindingRecorded)
    def _finding(self, finding: str, actor: str) -> None:
        self.findings.append(finding)

    def link_outcome(self, kind: str, subject: str, reference: str, actor: str) -> None:
        self._require_open_by(actor)
        if kind not in {"adjustment", "sanction", "grade-change", "none"}:
            msg = "kind is adjustment, sanction, grade-change or none"
            raise InvalidInput(msg, rule="case.outcome-kind", field="kind")
        if subject not in self.subjects:
            msg = f"{subject} is not a subject of this case"
            raise InvalidInput(msg, rule="case.subject", field="subject")
        self._outcome(kind=kind, subject=subject, reference=reference, actor=actor)

    @event(OutcomeLinked)
    def _outcome(self, kind: str, subject: str, reference: str, actor: str) -> None:
        self.outcomes.append((kind, subject, reference))

    def close(self, conclusion: str, actor: str) -> None:
        self._require_open_by(actor)
        self._closed(conclusion=conclusion, actor=actor)

    @event(Closed)
    def _closed(self, conclusion: str, actor: str) -> None:
        self.state = CaseState.CLOSED

    def _require_open_by(self, actor: str) -> None:
        if self.state != CaseState.ASSIGNED:
            msg = f"the case is {self.state.value}; it must be assigned and open"
            raise Conflict(msg, rule="case.open")
        if actor != self.investigator:
            msg = "only the assigned investigator works on a case"
            raise Conflict(msg, rule="case.assigned-investigator")


class AccessRecord(Aggregate):
    """One read of restricted material (notes, case files, evidence), allowed or refused."""

    TOPIC = "kaoping/AccessRecord"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/AccessRecord.Created"  # base only; never stored

    class Recorded(Created):
        TOPIC = "kaoping/AccessRecord.Recorded.v1"
        reader: str
        role: str
        what: str  # explain-notes | evidence | case
        year: int | None
        subject: str | None
        case: str | None
        allowed: bool
        rule: str

    @event(Recorded)
    def __init__(self, reader: str, role: str, what: str, year: int | None,
                 subject: str | None, case: str | None, allowed: bool, rule: str) -> None:
        self.reader, self.allowed = reader, allowed


class RefusedReads(Aggregate):
    """Refused reads of restricted material by one reader, counted over one window: the log
    keeps every refusal without growing by one event per refusal at the caller's pace."""

    TOPIC = "kaoping/RefusedReads"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/RefusedReads.Created"  # base only; never stored

    class Counted(Created):
        TOPIC = "kaoping/RefusedReads.Counted.v1"
        reader: str
        role: str
        what: str  # explain-notes | evidence | case
        rule: str
        year: int | None  # what was asked for; all None for the refusals past the cap on
        subject: str | None  # distinct (year, subject, case) per window: a caller varying
        case: str | None  # the path must not get one event per variant
        count: int
        window_start: str  # ISO 8601, UTC: the window [start, end)
        window_end: str
        first: str  # the first and the last refusal counted
        last: str

    @event(Counted)
    def __init__(self, reader: str, role: str, what: str, rule: str, year: int | None,
                 subject: str | None, case: str | None, count: int, window_start: str,
                 window_end: str, first: str, last: str) -> None:
        if count < 1:
            msg = "a count of refused reads is at least 1"
            raise InvalidInput(msg, rule="refused-reads.count", field="count")
        self.reader, self.count = reader, count


class Investigator(Aggregate):
    """办案人员: a person designated by the supervisors to investigate reports. Only a
    registered investigator can be assigned a case (by their principal id)."""

    TOPIC = "kaoping/Investigator"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Investigator.Created"  # base only; never stored

    class Registered(Created):
        TOPIC = "kaoping/Investigator.Registered.v1"
        principal: str
        name: str
        actor: str

    @staticmethod
    def id_for(principal: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:investigator:{principal}")

    @classmethod
    def create_id(cls, principal: str, **_: object) -> UUID:
        return cls.id_for(principal)

    @event(Registered)
    def __init__(self, principal: str, name: str, actor: str) -> None:
        self.principal, self.name = principal, name


def case_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        msg = f"{value!r} is not a case id"
        raise InvalidInput(msg, rule="case.id", field="case") from None
