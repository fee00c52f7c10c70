"""Use cases of report-line cases, and the gate (with its record) to restricted material."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.cases import AccessRecord, Case, CaseState, Channel, Investigator, RefusedReads
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from projections.cases import CasesView, list_cases, open_subjects
from projections.follower import tracked_position
from service.policy import require_role
from service.principals import Principal, Role
from service.writes import Written, is_version_conflict, save

if TYPE_CHECKING:
    from domain.cycle import Cycle
    from service.db import Database
    from service.refusals import RefusedReadCounter
    from service.store import AfterAppend, EventStore


def follow_up_hash(code: str) -> str:
    return hashlib.sha256(f"kaoping-report:{code}".encode()).hexdigest()


def follow_up_code() -> str:
    """A new anonymous reporter's follow-up code (96 bits)."""
    return secrets.token_urlsafe(12)


class Cases:
    def __init__(self, store: EventStore, db: Database,
                 cycle: Callable[[int], Cycle],
                 refusals: RefusedReadCounter | None = None) -> None:
        self.store, self.db, self._cycle, self.refusals = store, db, cycle, refusals

    def case(self, case_id: UUID) -> Case:
        try:
            found: Case = self.store.repository.get(case_id)
        except AggregateNotFoundError:
            msg = f"no case {case_id}"
            raise NotFound(msg, rule="case.exists", field="case") from None
        return found

    def report(self, principal: Principal, *, channel: Channel, year: int,
               subjects: list[str], summary: str, reporter: str | None,
               after_append: AfterAppend | None = None,
               code: str | None = None) -> tuple[Written, str | None]:
        """Take a report; an anonymous reporter gets a follow-up code, shown once (``code``:
        one made beforehand with ``follow_up_code()``, so a retry can be answered with it)."""
        require_role(principal, Role.INTAKE)
        if channel == Channel.CHALLENGE:
            msg = ("a challenge of a public commitment is entered on its target (POST "
                   "/cycles/{year}/commitments/{unit}/targets/{code}/challenges), which links "
                   "the case to the target; the report line takes hotline, mailbox and "
                   "website reports")
            raise InvalidInput(msg, rule="case.challenge-via-commitments", field="channel")
        if not subjects:
            msg = "a report names at least one subject"
            raise InvalidInput(msg, rule="case.subjects", field="subjects")
        if not 2000 <= year <= 2100:  # as the API's Year; the read models hold 32-bit years
            msg = "year must be from 2000 to 2100"
            raise InvalidInput(msg, rule="case.year", field="year")
        self._require_subjects(year, subjects)
        code = None if reporter else (code or follow_up_code())
        case = Case(channel=channel.value, year=year, subjects=subjects, summary=summary,
                    follow_up_hash=follow_up_hash(code) if code else None, actor=principal.id)
        if reporter:
            case.identify_reporter(reporter, principal.id)
        return save(self.store, case, after_append=after_append, stream_id=case.id), code

    def _require_subjects(self, year: int, subjects: list[str]) -> None:
        """A report is about subjects of the cycle's roster (as the announcement lists them)."""
        try:
            roster = {e.subject for e in self._cycle(year).roster}
        except NotFound:
            roster = set()
        for i, subject in enumerate(subjects):
            if subject not in roster:
                msg = f"{subject} is not a subject of cycle {year}"
                raise InvalidInput(msg, rule="case.subject-unknown", field=f"subjects[{i}]")

    def register_investigator(self, principal: Principal, investigator: str, name: str,
                              after_append: AfterAppend | None = None) -> Written:
        """Supervisors designate who may be assigned cases (their principal id)."""
        require_role(principal, Role.SUPERVISOR)
        found = Investigator(principal=investigator, name=name, actor=principal.id)
        try:
            return save(self.store, found, after_append=after_append, stream_id=found.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = f"{investigator} is already registered"
                raise Conflict(msg, rule="investigator.registered-once",
                               field="investigator") from None
            raise

    def assign(self, principal: Principal, case_id: UUID, investigator: str,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.INTAKE, Role.ORGANIZER)
        case = self.case(case_id)
        if Investigator.id_for(investigator) not in self.store.repository:
            msg = f"{investigator} is not a registered investigator (POST /api/v1/investigators)"
            raise InvalidInput(msg, rule="case.investigator-registered", field="investigator")
        case.assign(investigator, principal.id)
        return save(self.store, case, after_append=after_append, stream_id=case.id)

    def work(self, principal: Principal, case_id: UUID, action: str, **fields: Any) -> Written:
        require_role(principal, Role.INVESTIGATOR)
        case = self.case(case_id)
        after = fields.pop("after_append", None)
        actions: dict[str, Any] = {"finding": case.record_finding,
                                   "outcome": case.link_outcome, "close": case.close}
        actions[action](**fields, actor=principal.id)
        return save(self.store, case, after_append=after, stream_id=case.id)

    def listing(self, principal: Principal, *, after: str | None, limit: int,
                ) -> list[dict[str, Any]]:
        """Investigators: the cases assigned to them; supervisors: every case. The listing is
        recorded (it names the subjects under investigation)."""
        if principal.role not in (Role.INVESTIGATOR, Role.SUPERVISOR):
            self.record(principal, "cases", None, None, None, False, "case.list-readers")
            msg = "the case list is for investigators (their cases) and supervisors"
            raise Forbidden(msg, rule="case.list-readers")
        mine = principal.id if principal.role == Role.INVESTIGATOR else None
        with self.db.read() as cur:
            rows = list_cases(cur, investigator=mine, after=after, limit=limit)
        self.record(principal, "cases", None, None, None, True, "case.list-readers")
        return rows

    def status(self, code: str) -> CaseState:
        """What an anonymous reporter may learn with their code: the state, nothing else."""
        with self.db.read() as cur:
            cur.execute("SELECT state FROM rm_cases WHERE follow_up_hash = %s",
                        (follow_up_hash(code),))
            row = cur.fetchone()
        if row is None:
            msg = "no report has this follow-up code (or it is not yet registered; retry)"
            raise NotFound(msg, rule="report.code", field="code")
        return CaseState(str(row[0]))

    # --- restricted material ---------------------------------------------------------------

    def case_for(self, investigator: str, year: int | None, subject: str | None) -> str | None:
        """The id of an open case of ``investigator`` that covers ``subject`` in ``year``."""
        if year is None or subject is None:
            return None
        return self._scope(investigator).get((year, subject))

    def covered(self, investigator: str, year: int) -> dict[str, str]:
        """The subjects of ``year`` that ``investigator``'s open cases cover -> the case."""
        return {s: c for (y, s), c in self._scope(investigator).items() if y == year}

    def _scope(self, investigator: str) -> dict[tuple[int, str], str]:
        """The investigator's open cases by (year, subject), once the cases read model has caught up
        with the log as it was when asked (access records themselves excepted: reading must
        not wait for the record of earlier reads). Waits at most 5 s."""
        rid = "e.notification_id" if self.db.engine == "postgres" else "e.rowid"
        with self.db.read() as cur:
            cur.execute("SELECT l.position FROM kaoping_ledger l JOIN kaoping_events e ON "  # noqa: S608
                        f"{rid} = l.notification_id WHERE e.topic NOT IN (%s, %s) "
                        "ORDER BY l.position DESC LIMIT 1",
                        (AccessRecord.Recorded.TOPIC, RefusedReads.Counted.TOPIC))
            row = cur.fetchone()
        target = -1 if row is None else int(row[0])
        deadline = time.monotonic() + 5
        while True:
            with self.db.read() as cur:
                if tracked_position(cur, CasesView.name) >= target or (
                        time.monotonic() > deadline):
                    return open_subjects(cur, investigator)
            time.sleep(0.02)

    def gate(self, principal: Principal, what: str, year: int | None, subject: str | None,
             case: str | None = None, *, record_allowed: bool = True) -> bool:
        """Whether ``principal`` may read restricted ``what`` about ``subject``; the answer is
        recorded either way (an allowed read only later, by the caller, when it may still
        fail before anything is read: ``record_allowed=False``). Investigators: only subjects
        of their open cases (403 otherwise); supervisors and the assessment team: yes; anyone
        else: no (the caller hides it)."""
        allowed, rule = False, "restricted.role"
        if principal.role in (Role.SUPERVISOR, Role.ASSESSMENT_TEAM):
            allowed, rule = True, "restricted.role"
        elif principal.role == Role.INVESTIGATOR:
            case = case or self.case_for(principal.id, year, subject)
            allowed, rule = case is not None, "investigator.case-scope"
        if record_allowed or not allowed:
            self.record(principal, what, year, subject, case, allowed, rule)
        if principal.role == Role.INVESTIGATOR and not allowed:
            msg = f"{subject} is not a subject of one of your open cases"
            raise Forbidden(msg, rule="investigator.case-scope")
        return allowed

    def record(self, principal: Principal, what: str, year: int | None, subject: str | None,
               case: str | None, allowed: bool, rule: str) -> None:
        """An allowed read is one event; refused reads are counted per reader, material, rule
        and window, and recorded as one event per window (service/refusals.py)."""
        if not allowed and self.refusals is not None:
            self.refusals.count(principal, what, rule, year, subject, case)
            return
        entry = AccessRecord(reader=principal.id, role=principal.role.value, what=what,
                             year=year, subject=subject, case=case, allowed=allowed, rule=rule)
        self.store.save(entry)
