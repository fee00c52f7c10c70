"""Use cases of 责任承诺考实: a unit publishes its commitments, amends them with a reason,
anyone challenges a target (a case), the assessment team assesses what was achieved.

Who may publish for a unit: its own principal (a leader principal acting as the unit, or as the
cadre who is the unit's 正职 on the cycle's roster), or the organizer on its behalf (recorded).
Under an "attributed-completion" scheme every assessment or amendment also writes, in the file
of each team it credits, that team's credits as they now stand: the file stays the complete
evidence of the team's result (DESIGN §2, enumerable evidence).
"""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.cases import Case, Channel
from domain.commitments import (
    Target,
    UnitCommitments,
    below,
    completion,
    credited,
    credits_of,
)
from domain.cycle import Cycle, Phase, cadre_subject, team_subject
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.scheme import SubjectKind, commitments_due
from domain.subject_file import SubjectFile
from service.cases import follow_up_code, follow_up_hash
from service.guards import cycle_unchanged, guarded
from service.policy import require_role
from service.principals import IdentityKind, Principal, Role
from service.streams import END, load_streams, project, stream_versions
from service.writes import Written, is_version_conflict, save

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor
    from service.evaluation import Evaluation
    from service.store import AfterAppend, EventStore

BEFORE_SCORING = (Phase.SETUP, Phase.FROZEN)
KEPT_YEARS = 4  # years whose commitments a process keeps (a cycle and the ones it compares)
AMENDABLE = (Phase.SETUP, Phase.FROZEN, Phase.SCORING)


class Commitments:
    def __init__(self, store: EventStore, evaluation: Evaluation) -> None:
        self.store, self.evaluation = store, evaluation
        # see all_of: year -> stream -> copy, for the few most recently read years
        self._copies: dict[int, dict[UUID, UnitCommitments]] = {}
        self._copies_lock = threading.Lock()

    def of(self, year: int, unit: str) -> UnitCommitments | None:
        try:
            found: UnitCommitments = self.store.repository.get(UnitCommitments.id_for(year, unit))
        except AggregateNotFoundError:
            return None
        return found

    def require(self, year: int, unit: str) -> UnitCommitments:
        found = self.of(year, unit)
        if found is None:
            msg = f"{unit} has published no commitments for {year}"
            raise NotFound(msg, rule="commitment.exists", field="unit")
        return found

    def all_of(self, cycle: Cycle) -> list[UnitCommitments]:
        """Every unit's commitments of the cycle, in roster order."""
        ids = [UnitCommitments.id_for(cycle.year, e.code) for e in cycle.roster
               if e.kind == SubjectKind.TEAM]
        # A 共绩 credit needs every unit's commitments at each assessment: this process keeps
        # them (read-only, shared) and decodes again, in one query, only the streams whose
        # version moved since.
        with self._copies_lock:
            copies = self._copies.pop(cycle.year, {})
            self._copies[cycle.year] = copies  # the most recently read year last
            while len(self._copies) > KEPT_YEARS:
                del self._copies[next(iter(self._copies))]
        with self.evaluation.db.read() as cur:
            heads = stream_versions(cur, ids)
            stale = [sid for sid in heads if getattr(copies.get(sid), "version",
                                                     None) != heads[sid]]
            streams = load_streams(cur, self.store.mapper, stale, END) if stale else {}
        for sid in stale:
            made = project(streams[sid])
            with self._copies_lock:  # a slower thread never puts back an older copy
                kept = copies.get(sid)
                if kept is None or getattr(kept, "version", 0) < getattr(made, "version", 0):
                    copies[sid] = made  # replaced whole: a kept copy is never changed
        return [c for sid in ids if sid in heads
                and isinstance(c := copies.get(sid), UnitCommitments)]

    def _today(self) -> date:
        return self.evaluation.today()

    # --- who and when -------------------------------------------------------------------

    def _on_behalf(self, principal: Principal, cycle: Cycle, unit: str) -> bool:
        """True for the organizer writing for the unit; False for the unit's own principal."""
        if principal.role == Role.ORGANIZER:
            return True
        require_role(principal, Role.ORGANIZER, Role.LEADER)
        acts = principal.acts_as
        own = acts is not None and (
            (acts.kind == IdentityKind.UNIT and acts.id == unit)
            or (acts.kind == IdentityKind.CADRE and any(
                e.subject == cadre_subject(acts.id) and e.kind == SubjectKind.PRINCIPAL
                and e.unit_code == unit for e in cycle.roster)))
        if not own:
            msg = f"only {unit}'s own principal (or the organizer on its behalf) commits for it"
            raise Forbidden(msg, rule="commitment.own-unit", field="unit")
        return False

    def _check_roster(self, cycle: Cycle, unit: str, targets: list[Target],
                      where: str = "targets") -> None:
        teams = {e.code for e in cycle.roster if e.kind == SubjectKind.TEAM}
        cadres = {e.code: e.unit_code for e in cycle.roster if e.kind != SubjectKind.TEAM}
        for i, target in enumerate(targets):
            at = f"{where}[{i}]" if where == "targets" else where
            for cadre in target.responsible:
                if cadres.get(cadre) != unit:
                    msg = f"{cadre} is not a cadre of {unit} on the {cycle.year} roster"
                    raise InvalidInput(msg, rule="commitment.responsible-in-unit",
                                       field=f"{at}.responsible")
            for partner in target.partners:
                if partner not in teams:
                    msg = f"{partner} is not a unit of the {cycle.year} roster"
                    raise InvalidInput(msg, rule="commitment.partner-unit",
                                       field=f"{at}.partners")

    def _unit(self, cycle: Cycle, unit: str) -> None:
        if team_subject(unit) not in {e.subject for e in cycle.roster}:
            msg = f"{unit} is not a unit of the {cycle.year} roster"
            raise NotFound(msg, rule="commitment.unit-on-roster", field="unit")

    # --- use cases ----------------------------------------------------------------------

    def publish(self, principal: Principal, year: int, unit: str, *, targets: list[Target],
                after_append: AfterAppend | None = None) -> Written:
        cycle = self.evaluation.cycle(year)
        on_behalf = self._on_behalf(principal, cycle, unit)
        cycle.require_phase(*BEFORE_SCORING)
        self._unit(cycle, unit)
        today = self._today()
        if cycle.scheme is None:
            msg = f"cycle {year} has no scheme yet: it sets when commitments are due"
            raise Conflict(msg, rule="cycle.scheme-set")
        due = commitments_due(cycle.scheme)
        if today > due:
            msg = f"commitments for {year} were due by {due}; change them by amendment"
            raise Conflict(msg, rule="commitment.deadline", field="targets")
        UnitCommitments.check(targets, unit)
        self._check_roster(cycle, unit, targets)
        commitments = UnitCommitments(year=year, unit=unit, targets=targets,
                                      published_on=today.isoformat(), on_behalf=on_behalf,
                                      actor=principal.id)
        try:
            return save(self.store, commitments, stream_id=commitments.id,
                        after_append=guarded(after_append, cycle_unchanged(cycle)))
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = f"{unit} has already published its commitments; amend them instead"
                raise Conflict(msg, rule="commitment.published-once", field="unit") from None
            raise

    def amend(self, principal: Principal, year: int, unit: str, code: str, *,
              target: Target | None, reason: str,
              after_append: AfterAppend | None = None) -> Written:
        """A target added, changed or withdrawn (``target`` None) after publication."""
        cycle = self.evaluation.cycle(year)
        self._on_behalf(principal, cycle, unit)
        cycle.require_phase(*AMENDABLE)
        commitments = self.require(year, unit)
        before = credited(commitments.targets[code], unit) if code in commitments.targets else {}
        if target is not None:
            self._check_roster(cycle, unit, [target], "target")
        commitments.amend(code, target, reason, self._today().isoformat(),
                          principal.id)
        after = credited(target, unit) if target is not None else {}
        return self._save(cycle, commitments, set(before) | set(after), principal,
                          after_append)

    def challenge(self, principal: Principal, year: int, unit: str, code: str, *,
                  summary: str, reporter: str | None = None, follow_up: str | None = None,
                  after_append: AfterAppend | None = None) -> tuple[Written, str | None]:
        """Anyone signed in may challenge a published target: it becomes a case (channel
        "challenge") about the unit's team, with the challenger's identity kept as a
        reporter's (intake only); the commitments record the case's id, not who.

        The intake role enters a challenge received by hotline, mailbox or the website for
        someone else: with ``reporter`` (who, kept as the reporter's identity) or without —
        anonymous, as a report: no identity, and a follow-up code (``follow_up``, made
        beforehand so a retry answers with it; else a new one), returned once, of which only
        the hash is kept. Returns what was written and that code (None if not anonymous)."""
        commitments = self.require(year, unit)
        commitments.target(code)
        intake = principal.role == Role.INTAKE
        if reporter is not None and not intake:
            msg = ("only the intake role enters a challenge for someone else; a signed-in "
                   "challenger is the reporter")
            raise InvalidInput(msg, rule="commitment.challenge-reporter", field="reporter")
        anonymous = intake and reporter is None
        kept = (follow_up or follow_up_code()) if anonymous else None
        case = Case(channel=Channel.CHALLENGE.value, year=year, subjects=[team_subject(unit)],
                    summary=f"[{unit}/{code}] {summary}",
                    follow_up_hash=follow_up_hash(kept) if kept else None, actor=principal.id)
        if not anonymous:
            case.identify_reporter(reporter or str(principal.acts_as or principal.id),
                                   principal.id)
        # The commitments stream is public (and in everyone's feed): it names the case, never
        # who challenged — that stays in the case, which only intake reads.
        commitments.challenge(code, str(case.id), "challenge")
        written = save(self.store, case, commitments, stream_id=case.id,
                       after_append=after_append)
        return written, kept

    def rate(self, principal: Principal, year: int, unit: str, code: str, *, session: str,
             satisfaction: Decimal, after_append: AfterAppend | None = None) -> Written:
        """群众认可: the survey's satisfaction with one published target (organizer, from the
        count of a named session, scoring phase); a later count replaces it. Under an
        "attributed-completion" scheme a target rated below ``satisfaction_threshold`` counts
        0 as 实绩 for every team it credits (its credit stays in the denominator)."""
        require_role(principal, Role.ORGANIZER)
        cycle = self.evaluation.cycle(year)
        cycle.require_phase(Phase.SCORING)
        commitments = self.require(year, unit)
        commitments.rate(code, session, satisfaction, principal.id)
        teams = set(credited(commitments.targets[code], unit))
        return self._save(cycle, commitments, teams, principal, after_append)

    def assess(self, principal: Principal, year: int, unit: str, code: str, *,
               achieved: Decimal, evidence: str,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ASSESSMENT_TEAM, Role.ORGANIZER)
        cycle = self.evaluation.cycle(year)
        cycle.require_phase(Phase.SCORING)
        commitments = self.require(year, unit)
        if principal.role == Role.ASSESSMENT_TEAM:
            self._assessor(principal, year, unit)
        commitments.assess(code, achieved, evidence, principal.id)
        teams = set(credited(commitments.targets[code], unit))
        return self._save(cycle, commitments, teams, principal, after_append)

    def _assessor(self, principal: Principal, year: int, unit: str) -> None:
        """An assessment team's member assesses a unit's achievements: one assigned to the
        unit's leadership team, once the organizer has assigned it (Evaluation.team_member);
        a unit not on the roster has no file, so any team member."""
        try:
            file: SubjectFile | None = self.evaluation.file(year, team_subject(unit))
        except NotFound:
            file = None
        self.evaluation.team_member(principal, file)

    def _save(self, cycle: Cycle, commitments: UnitCommitments, teams: set[str],
              principal: Principal, after_append: AfterAppend | None) -> Written:
        """Save the commitments and, when the scheme counts them and scoring is open, each
        affected team's credits in its file (a concurrent change to one of them conflicts)."""
        files: list[SubjectFile] = []
        scheme = cycle.scheme
        if (cycle.phase == Phase.SCORING and scheme is not None
                and scheme.commitments.derivation == "attributed-completion"):
            everyone = [commitments if c.unit == commitments.unit else c
                        for c in self.all_of(cycle)]
            for team in sorted(teams):
                file = self.evaluation.file(cycle.year, team_subject(team))
                file.credit_commitments(
                    credits_of(team, everyone, scheme.satisfaction_threshold), principal.id)
                files.append(file)
        try:
            return save(self.store, commitments, *files, stream_id=commitments.id,
                        after_append=guarded(after_append, cycle_unchanged(cycle)))
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = "the commitments changed concurrently; read them again and retry"
                raise Conflict(msg, rule="concurrent-change") from None
            raise


class CardTarget(msgspec.Struct, kw_only=True):
    """A target on a score card: for a cadre, one they answer for (责任到人); for a team, each
    target it has a credit in (its own and its 共绩 shares), once, with that credit."""

    unit: str  # the unit that committed it
    code: str
    measure: str
    unit_of_measure: str
    target_value: Decimal
    direction: str
    responsible: list[str]
    credit: Decimal  # the team's share of the achievement (for a cadre: their unit's)
    achieved: Decimal | None
    completion: Decimal | None
    # 群众认可: the survey's rate of the target, and whether it counts as 实绩 (False: rated
    # below the scheme's satisfaction_threshold, so its completion counts 0)
    satisfaction: Decimal | None = None
    counted: bool = True


def card_targets(cur: Cursor, mapper: Mapper[UUID], cycle: Cycle, subject: str,
                 position: int) -> list[CardTarget]:
    """The targets behind ``subject`` as of log ``position``."""
    entry = cycle.entry(subject)
    ids = [UnitCommitments.id_for(cycle.year, e.code) for e in cycle.roster
           if e.kind == SubjectKind.TEAM]
    streams = load_streams(cur, mapper, ids, position)
    everyone = [c for sid in ids if isinstance(c := project(streams[sid]), UnitCommitments)]
    threshold = None if cycle.scheme is None else cycle.scheme.satisfaction_threshold
    out = []
    for c in everyone:
        for target in c.targets.values():
            if entry.kind == SubjectKind.TEAM:
                credit = credited(target, c.unit).get(entry.code, Decimal(0))
                if credit == 0:
                    continue
            elif entry.code in target.responsible and c.unit == entry.unit_code:
                credit = credited(target, c.unit)[c.unit]
            else:
                continue
            achieved = c.achieved.get(target.code)
            rate = c.satisfaction.get(target.code)
            out.append(CardTarget(
                unit=c.unit, code=target.code, measure=target.measure,
                unit_of_measure=target.unit_of_measure, target_value=target.target_value,
                direction=target.direction, responsible=list(target.responsible),
                credit=credit, achieved=achieved,
                completion=None if achieved is None else completion(target, achieved),
                satisfaction=rate, counted=not below(rate, threshold)))
    return out
