"""Use cases of report-line cases, and the gate (with its record) to restricted material."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.cases import AccessRecord, Case, CaseState, Channel
from domain.errors import Forbidden, InvalidInput, NotFound
from projections.cases import CasesView, open_subjects
from projections.follower import tracked_position
from service.policy import require_role
from service.principals import Principal, Role
from service.writes import Written, save

if TYPE_CHECKING:
    from service.db import Database
    from service.store import AfterAppend, EventStore


def follow_up_hash(code: str) -> str:
    return hashlib.sha256(f"kaoping-report:{code}".encode()).hexdigest()


def follow_up_code() -> str:
    """A new anonymous reporter's follow-up code (96 bits)."""
    return secrets.token_urlsafe(12)


class Cases:
    def __init__(self, store: EventStore, db: Database) -> None:
        self.store, self.db = store, db

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
        if not subjects:
            msg = "a report names at least one subject"
            raise InvalidInput(msg, rule="case.subjects", field="subjects")
        if not 2000 <= year <= 2100:  # as the API's Year; the read models hold 32-bit years
            msg = "year must be from 2000 to 2100"
            raise InvalidInput(msg, rule="case.year", field="year")
        code = None if reporter else (code or follow_up_code())
        case = Case(channel=channel.value, year=year, subjects=subjects, summary=summary,
                    follow_up_hash=follow_up_hash(code) if code else None, actor=principal.id)
        if reporter:
            case.identify_reporter(reporter, principal.id)
        return save(self.store, case, after_append=after_append, stream_id=case.id), code

    def assign(self, principal: Principal, case_id: UUID, investigator: str,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.INTAKE, Role.ORGANIZER)
        case = self.case(case_id)
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

    def _scope(self, investigator: str) -> set[tuple[int, str]]:
        """The investigator's open cases' subjects, once the cases read model has caught up
        with the log as it was when asked (access records themselves excepted: reading must
        not wait for the record of earlier reads). Waits at most 5 s."""
        rid = "e.notification_id" if self.db.engine == "postgres" else "e.rowid"
        with self.db.read() as cur:
            cur.execute("SELECT l.position FROM kaoping_ledger l JOIN kaoping_events e ON "  # noqa: S608
                        f"{rid} = l.notification_id WHERE e.topic <> %s "
                        "ORDER BY l.position DESC LIMIT 1", (AccessRecord.Recorded.TOPIC,))
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
            in_scope = year is not None and subject is not None and (
                (year, subject) in self._scope(principal.id))
            allowed, rule = in_scope, "investigator.case-scope"
        if record_allowed or not allowed:
            self.record(principal, what, year, subject, case, allowed, rule)
        if principal.role == Role.INVESTIGATOR and not allowed:
            msg = f"{subject} is not a subject of one of your open cases"
            raise Forbidden(msg, rule="investigator.case-scope")
        return allowed

    def record(self, principal: Principal, what: str, year: int | None, subject: str | None,
               case: str | None, allowed: bool, rule: str) -> None:
        entry = AccessRecord(reader=principal.id, role=principal.role.value, what=what,
                             year=year, subject=subject, case=case, allowed=allowed, rule=rule)
        self.store.save(entry)
