"""Use cases of the cycle (五考两评): set-up, inputs with authorisation by role and assignment,
sealing, grading, publication, review and appeal.

Each use case reads: authorise, load, decide (domain), save. Phase rules are the cycle's;
assignment rules (who may score whom) are here, each refusal naming its rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.ballots import EvaluationSession
from domain.cases import Case, Channel
from domain.cycle import Cycle, Phase, RosterEntry, StreamHead, cadre_subject, team_subject
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleVersion
from domain.people import PostRole, post_weight
from domain.publication import (
    ResultsNotice,
    ResultsPool,
    pool_key,
    results_fingerprint,
    results_fingerprint_v1,
)
from domain.scheme import Component, Scheme, SubjectKind, check_score, check_share, grades_of
from domain.scoring import SCORE_FUNCTION_VERSION, PoolResult
from domain.subject_file import SubjectFile, missing_member_scores, pool_result
from service.cases import follow_up_hash
from service.clock import business_day
from service.guards import (
    Check,
    cycle_unchanged,
    guarded,
    heads_unchanged,
    previous_unchanged,
    quota_holds,
)
from service.ledger.reads import stream_heads
from service.policy import require_role
from service.principals import Identity, IdentityKind, Principal, Role
from service.published import Kept, PublishedResults, previous_ranks, published_as_of
from service.store import KeptRepository
from service.streams import END
from service.writes import Written, is_version_conflict, save

if TYPE_CHECKING:
    from service.clock import Clock
    from service.db import Database
    from service.reference import Reference
    from service.store import AfterAppend, EventStore

ROSTER_KINDS = {PostRole.PRINCIPAL: SubjectKind.PRINCIPAL, PostRole.DEPUTY: SubjectKind.DEPUTY}


class ObjectionState(msgspec.Struct, kw_only=True):
    case: str
    outcome: str | None  # None: undecided; dismissed | upheld


class NoticeStatus(msgspec.Struct, kw_only=True):
    """A grade the notice (公示) lists, its objections, and whether it is final."""

    subject: str
    name: str
    grade: str
    objections: list[ObjectionState]
    undecided: int
    final: bool


def count_objections(objections: Mapping[str, Mapping[str, str | None]]) -> tuple[int, int]:
    """(lodged, undecided) over subject -> case -> outcome (None while undecided)."""
    return (sum(len(o) for o in objections.values()),
            sum(1 for o in objections.values() for v in o.values() if v is None))


class Evaluation:
    def __init__(self, store: EventStore, reference: Reference, clock: Clock,
                 timezone: str, db: Database) -> None:
        self.store, self.reference, self.clock, self.db = store, reference, clock, db
        self.tz = ZoneInfo(timezone)
        # Inputs read their cycle (phase, roster, scheme) and never change it: this process
        # keeps each cycle and fast-forwards it from the store for each read (``current``),
        # instead of decoding its roster and scheme again; copy-on-write, so a cycle handed
        # out never changes under its reader. The save re-checks the cycle's version in its
        # transaction (cycle_unchanged), so an input never acts on a stale phase.
        self._cycles = KeptRepository(event_store=store.repository.event_store,
                                      cache_maxsize=16, fastforward=True)
        self._objections: Kept[dict[str, dict[str, str | None]]] = Kept(size=8)

    # --- loading ----------------------------------------------------------------------

    def cycle(self, year: int, version: int | None = None) -> Cycle:
        try:
            cycle: Cycle = self.store.repository.get(Cycle.id_for(year), version=version)
        except AggregateNotFoundError:
            msg = f"no cycle {year}"
            raise NotFound(msg, rule="cycle.exists", field="year") from None
        return cycle

    def current(self, year: int) -> Cycle:
        """The cycle as it stands, for reading only: this process's copy, fast-forwarded from
        the store (a command that changes the cycle loads its own with ``cycle``)."""
        try:
            cycle: Cycle = self._cycles.get(Cycle.id_for(year), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            msg = f"no cycle {year}"
            raise NotFound(msg, rule="cycle.exists", field="year") from None
        return cycle

    def file(self, year: int, subject: str, version: int | None = None) -> SubjectFile:
        try:
            file: SubjectFile = self.store.repository.get(SubjectFile.id_for(year, subject),
                                                          version=version)
        except AggregateNotFoundError:
            msg = f"{subject} has no file in cycle {year} (is scoring open?)"
            raise NotFound(msg, rule="subject.file-exists", field="subject") from None
        return file

    def _scheme(self, cycle: Cycle) -> Scheme:
        if cycle.scheme is None:
            msg = f"cycle {cycle.year} has no scheme yet"
            raise Conflict(msg, rule="cycle.scheme-set")
        return cycle.scheme

    def _save(self, aggregate: Any, after_append: AfterAppend | None, *more: Any) -> Written:
        try:
            return save(self.store, aggregate, *more, after_append=after_append,
                        stream_id=aggregate.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = "the record changed concurrently; read it again and retry"
                raise Conflict(msg, rule="concurrent-change") from None
            raise

    # --- set-up -----------------------------------------------------------------------

    def open_cycle(self, principal: Principal, year: int,
                   after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = Cycle(year=year, actor=principal.id)
        try:
            return save(self.store, cycle, after_append=after_append, stream_id=cycle.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = f"cycle {year} already exists"
                raise Conflict(msg, rule="cycle.unique", field="year") from None
            raise

    def set_scheme(self, principal: Principal, year: int, scheme: Scheme,
                   after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.set_scheme(scheme, principal.id)
        return self._save(cycle, after_append)

    def set_roster(self, principal: Principal, year: int, entries: list[RosterEntry],
                   after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.set_roster(entries, principal.id)
        return self._save(cycle, after_append)

    def roster_from(self, units: list[Any], cadres: list[Any]) -> list[RosterEntry]:
        """Every unit's team and every cadre in post, each in their unit's category's pool."""
        category = {u.code: u.category for u in units}
        entries = [RosterEntry(team_subject(u.code), u.code, u.name, SubjectKind.TEAM,
                               u.category, u.code) for u in units]
        entries += [RosterEntry(cadre_subject(c.code), c.code, c.name,
                                ROSTER_KINDS[PostRole(c.role)], category[c.unit_code],
                                c.unit_code)
                    for c in cadres if c.unit_code in category]
        return entries

    def freeze(self, principal: Principal, year: int,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.freeze(principal.id)
        return self._save(cycle, after_append)

    def amend(self, principal: Principal, year: int, scheme: Scheme, reason: str,
              authority: str, after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.amend(scheme, reason, authority, principal.id)
        return self._save(cycle, after_append)

    def announce(self, principal: Principal, year: int, *, team_members: list[str],
                 starts_on: str, ends_on: str, hotline: str, checkpoint: str,
                 after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.announce(team_members, starts_on, ends_on, hotline, checkpoint, principal.id)
        return self._save(cycle, after_append)

    def open_scoring(self, principal: Principal, year: int,
                     after_append: AfterAppend | None = None) -> Written:
        """Open scoring and every subject's file, in one transaction."""
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.open_scoring(principal.id)
        files = [SubjectFile(year=year, subject=e.subject, code=e.code, kind=e.kind.value,
                             group=e.group, actor=principal.id) for e in cycle.roster]
        return save(self.store, cycle, *files, after_append=after_append, stream_id=cycle.id)

    # --- inputs -------------------------------------------------------------------------

    def _input(self, year: int, subject: str, *phases: Phase) -> tuple[Cycle, RosterEntry,
                                                                        SubjectFile]:
        cycle = self.current(year)
        cycle.require_phase(*(phases or (Phase.SCORING,)))
        entry = cycle.entry(subject)
        return cycle, entry, self.file(year, subject)

    def _identity(self, principal: Principal, *kinds: IdentityKind) -> Identity:
        acts = principal.acts_as
        if acts is None or acts.kind not in kinds:
            allowed = " or ".join(k.value for k in kinds)
            msg = f"this input must come from a principal acting as {allowed}"
            raise Forbidden(msg, rule="rater.identity")
        return acts

    def _check_leader_assignment(self, principal: Principal, cycle: Cycle,
                                 entry: RosterEntry) -> str:
        require_role(principal, Role.LEADER)
        identity = self._identity(principal, IdentityKind.LEADER, IdentityKind.CADRE)
        ident = identity.id
        if identity.kind == IdentityKind.LEADER:
            if not self.reference.leader_exists(ident):
                msg = f"leader {ident} is not registered"
                raise Forbidden(msg, rule="rater.registered-leader")
            if entry.kind == SubjectKind.DEPUTY:
                msg = "city leaders score leadership teams and principals; deputies are " \
                      "scored by their unit's principal"
                raise Forbidden(msg, rule="rater.leader-scores-teams-and-principals")
            leader = self.reference.leader(ident)
            if entry.kind != SubjectKind.TEAM and entry.code == leader.code:
                msg = "no one scores themselves"
                raise Forbidden(msg, rule="rater.self")
            if entry.unit_code in leader.own_units():
                posts = ", ".join(p.title for p in leader.posts if p.unit_code == entry.unit_code)
                msg = (f"回避: leader {ident} holds a post in unit {entry.unit_code} ({posts}) "
                       "and does not score its team or cadres")
                raise Forbidden(msg, rule="rater.avoidance")
            return f"leader:{ident}"
        if entry.subject == cadre_subject(ident):
            msg = "no one scores themselves"
            raise Forbidden(msg, rule="rater.self")
        rater = cycle.entry(cadre_subject(ident))
        if rater.kind != SubjectKind.PRINCIPAL:
            msg = (f"cadre {ident} is a {rater.kind.value}, not a principal: among cadres, "
                   "only a unit's principal scores, and only its deputies")
            raise Forbidden(msg, rule="rater.principal-scores-own-deputies")
        if entry.kind != SubjectKind.DEPUTY or entry.unit_code != rater.unit_code:
            msg = "a principal scores only the deputies of their own unit"
            raise Forbidden(msg, rule="rater.principal-scores-own-deputies")
        return f"cadre:{ident}"

    def leader_score(self, principal: Principal, year: int, subject: str, *, score: Decimal,
                     comment: str, revision_of: int | None = None,
                     after_append: AfterAppend | None = None) -> Written:
        """A leader's 0–100 score; a second one is a revision and must name the file version
        it revises (If-Match), so two sheets cannot race."""
        cycle, entry, file = self._input(year, subject)
        rater = self._check_leader_assignment(principal, cycle, entry)
        check_score(score, "score")
        if rater in file.leader_scores and revision_of is None:
            msg = f"{rater} has already scored {subject}; revise it with If-Match"
            raise Conflict(msg, rule="leader-review.once-then-revise", field="score")
        if revision_of is not None and revision_of != file.version:
            msg = f"the file is at version {file.version}, not {revision_of}"
            raise StaleVersion(msg, current=file.version)
        post = None
        if rater.startswith("leader:"):
            post, _ = post_weight(self._scheme(cycle).leader_post_weights,
                                  self.reference.leader(rater.removeprefix("leader:")).posts)
        file.score_by_leader(rater, score, comment, principal.id, post)
        return self._save_input(cycle, entry, file, after_append)

    def indicator_score(self, principal: Principal, year: int, subject: str, *, indicator: str,
                        value: str, score: Decimal | None, evidence: str,
                        after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.DEPARTMENT)
        department = self._identity(principal, IdentityKind.DEPARTMENT).id
        definition = self._scheme(cycle).indicator(indicator)
        if definition.owner != department:
            msg = f"indicator {indicator} is owned by department {definition.owner}"
            raise Forbidden(msg, rule="indicator.owner")
        if entry.group not in definition.groups or entry.kind not in definition.kinds:
            msg = f"indicator {indicator} does not apply to {subject} ({entry.group})"
            raise Forbidden(msg, rule="indicator.scope")
        if entry.unit_code == department:
            msg = "a department does not verify its own unit"
            raise Forbidden(msg, rule="rater.own-unit")
        if score is not None:
            check_score(score, "score")
        file.score_indicator(indicator, department, value, score, evidence, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def team_member(self, principal: Principal, file: SubjectFile | None) -> str:
        """The member behind an assessment team's input on ``file``: a principal of the
        assessment-team role acting as a team member (so a cadre or a unit never enters the
        team's inputs, on itself or anyone) and, once the organizer has assigned the
        subject's team, one of its members. A file with no team assigned (cycles before
        assignments), or none at all, takes any team member's input, as the team's."""
        require_role(principal, Role.ASSESSMENT_TEAM)
        member = self._identity(principal, IdentityKind.TEAM_MEMBER).id
        if file is not None and file.team:
            file.require_member(member)
        return member

    def inspection_score(self, principal: Principal, year: int, subject: str, *,
                         score: Decimal, after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        self.team_member(principal, file)
        file.score_inspection(check_score(score, "score"), principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def inspection_note(self, principal: Principal, year: int, subject: str, *, activity: str,
                        notes: str, after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        self.team_member(principal, file)
        file.note_inspection(activity, notes, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def analysis_score(self, principal: Principal, year: int, subject: str, *, dimension: str,
                       score: Decimal, rationale: str,
                       after_append: AfterAppend | None = None) -> Written:
        """实绩分析: with a team assigned to the subject, the calling member's score of one
        dimension (集体议绩 aggregates them); without one (cycles before assignments), the
        team's score of the dimension, entered directly."""
        cycle, entry, file = self._input(year, subject)
        member = self.team_member(principal, file)
        check_score(score, "score")
        if file.team:
            file.score_dimension(self._scheme(cycle), member, dimension, score, rationale,
                                 principal.id)
        else:
            file.score_analysis(dimension, score, rationale, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def publish_targets(self, principal: Principal, year: int, subject: str, *,
                        targets: list[str], after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.ORGANIZER)
        if entry.kind != SubjectKind.TEAM:
            msg = "targets are committed by units (their leadership teams)"
            raise InvalidInput(msg, rule="commitment.team-only", field="subject")
        if file.targets:
            msg = "the targets were already published; they are not edited"
            raise Conflict(msg, rule="commitment.published-once", field="targets")
        if not targets or len(set(targets)) != len(targets):
            msg = "targets must be a non-empty list of distinct items"
            raise InvalidInput(msg, rule="commitment.targets", field="targets")
        file.publish_targets(targets, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def assess_target(self, principal: Principal, year: int, subject: str, *, target: str,
                      achieved: bool, evidence: str,
                      after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.ASSESSMENT_TEAM, Role.ORGANIZER)
        if principal.role == Role.ASSESSMENT_TEAM:
            self.team_member(principal, file)
        file.assess_target(target, achieved, evidence, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def record_evaluation(self, principal: Principal, year: int, subject: str, *, session: str,
                          democratic: Decimal | None, satisfaction: Decimal | None,
                          after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.ORGANIZER)
        if democratic is not None:
            check_score(democratic, "democratic")
        if satisfaction is not None:
            check_share(satisfaction, "satisfaction")
        # A result entered by hand is one counted elsewhere (a paper ballot): never one under
        # the name of a ballot session held here, nor over a score such a session's close set
        # (a verifier could not tell the override from the recount).
        try:
            self.store.repository.get(EvaluationSession.id_for(session))
        except AggregateNotFoundError:
            pass
        else:
            msg = (f"{session} is a ballot session held in this system: its result is "
                   "recorded in the subjects' files when it closes")
            raise Conflict(msg, rule="evaluation.ballot-session", field="session")
        for field, value in (("democratic", democratic), ("satisfaction", satisfaction)):
            if value is not None and field in file.from_ballots:
                msg = (f"{subject}'s {field} score came from ballot session "
                       f"{file.from_ballots[field]}; it is not replaced by hand (an "
                       "adjustment with a reason and an authority can change the result)")
                raise Conflict(msg, rule="evaluation.from-ballots", field=field)
        file.record_evaluation(session, democratic, satisfaction, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def rate_item(self, principal: Principal, year: int, subject: str, *, session: str,
                  item: str, satisfaction: Decimal,
                  after_append: AfterAppend | None = None) -> Written:
        """群众认可: the survey's satisfaction with one of the unit's committed targets or
        办实事 items (organizer, from a count); a new count for the item replaces it."""
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.ORGANIZER)
        if entry.kind != SubjectKind.TEAM:
            msg = "targets and 办实事 items are a unit's (its leadership team's)"
            raise InvalidInput(msg, rule="commitment.team-only", field="subject")
        check_share(satisfaction, "satisfaction")
        file.rate_item(session, item, satisfaction, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def record_sanction(self, principal: Principal, year: int, subject: str, *, code: str,
                        decided_on: str, source: str,
                        after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject, Phase.SCORING, Phase.SEALED,
                                         Phase.PUBLISHED)
        require_role(principal, Role.ORGANIZER)
        self._scheme(cycle).veto(code)
        file.record_sanction(code, decided_on, source, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def lift_sanction(self, principal: Principal, year: int, subject: str, *, code: str,
                      reason: str, after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject, Phase.SCORING, Phase.SEALED,
                                         Phase.PUBLISHED)
        require_role(principal, Role.ORGANIZER)
        file.lift_sanction(code, reason, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def propose_adjustment(self, principal: Principal, year: int, subject: str, *,
                           adjustment: str, delta: Decimal, component: Component | None,
                           reason: str, basis: str, evidence: str,
                           after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.ORGANIZER, Role.ASSESSMENT_TEAM)
        if principal.role == Role.ASSESSMENT_TEAM:
            self.team_member(principal, file)
        if not delta.is_finite() or delta == 0 or abs(delta) > 100:
            msg = "delta must be a non-zero number within ±100"
            raise InvalidInput(msg, rule="adjustment.delta", field="delta")
        file.propose_adjustment(adjustment, delta, component, reason, basis, evidence,
                                principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def approve_adjustment(self, principal: Principal, year: int, subject: str, *,
                           adjustment: str, after_append: AfterAppend | None = None) -> Written:
        cycle, entry, file = self._input(year, subject)
        require_role(principal, Role.ORGANIZER)
        file.approve_adjustment(adjustment, principal.id)
        return self._save_input(cycle, entry, file, after_append)

    # --- sealing, grading, publication -------------------------------------------------

    def heads(self, cycle: Cycle, head_of: Any) -> list[StreamHead]:
        ids = [SubjectFile.id_for(cycle.year, e.subject) for e in cycle.roster]
        return [StreamHead(str(sid), version, digest.hex())
                for sid, (version, digest) in zip(ids, head_of(ids), strict=True)]

    def seal(self, principal: Principal, year: int, head_of: Any,
             after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        cycle = self.cycle(year)
        cycle.require_phase(Phase.SCORING)
        heads = self.heads(cycle, head_of)
        version_of = {h.stream_id: h.version for h in heads}
        owed = missing_member_scores(
            [self.file(year, e.subject, version_of[str(SubjectFile.id_for(year, e.subject))])
             for e in cycle.roster], self._scheme(cycle))
        if owed:
            msg = (f"{len(owed)} 实绩分析 score(s) of assigned team members are missing: "
                   f"{'; '.join(owed[:20])}{' …' if len(owed) > 20 else ''}")
            raise Conflict(msg, rule="seal.analysis-scored")
        pools = self._pools_at(cycle, heads, {})
        incomplete = [r.subject for pool in pools for r in pool.results if r.missing]
        if incomplete:
            msg = (f"{len(incomplete)} subject(s) lack inputs, e.g. {incomplete[0]}; every "
                   "weighted component needs a score or an explicit not-applicable")
            raise Conflict(msg, rule="seal.inputs-complete")
        minimum = self._scheme(cycle).leader_raters_min
        version_of = {h.stream_id: h.version for h in heads}
        short = []
        for e in cycle.roster:
            if minimum.get(e.kind):
                got = len(self.file(year, e.subject, version_of[
                    str(SubjectFile.id_for(year, e.subject))]).leader_scores)
                if got < minimum[e.kind]:
                    short.append((e.subject, got, minimum[e.kind]))
        if short:
            subject, got, need = short[0]
            msg = (f"{len(short)} subject(s) have fewer leader raters than the scheme's "
                   f"minimum, e.g. {subject}: {got} of {need}")
            raise Conflict(msg, rule="seal.leader-raters-minimum")
        cycle.seal(heads, principal.id)
        return self._save(cycle, guarded(after_append, heads_unchanged(heads)))

    def pools(self, cycle: Cycle, *, previous: dict[str, int] | None = None) -> list[PoolResult]:
        """Every pool's working results from the files as they are now."""
        scheme = self._scheme(cycle)
        version = cycle.scoring_version(SCORE_FUNCTION_VERSION)
        return [self.pool(cycle, scheme, group, kind, previous or {}, version)
                for group, kind in sorted({(e.group, e.kind) for e in cycle.roster})]

    def pool(self, cycle: Cycle, scheme: Scheme, group: str, kind: SubjectKind,
             previous: dict[str, int], version: str = SCORE_FUNCTION_VERSION) -> PoolResult:
        files = [self.file(cycle.year, e.subject) for e in cycle.pool(group, kind)]
        return pool_result(scheme, group, kind, files, previous, version)

    def _pools_at(self, cycle: Cycle, heads: list[StreamHead], previous: dict[str, int],
                  pools: set[tuple[str, str]] | None = None) -> list[PoolResult]:
        """The pools (all, or those named) from the files at exactly these heads."""
        scheme = self._scheme(cycle)
        version_of = {h.stream_id: h.version for h in heads}
        out = []
        for group, kind in sorted({(e.group, e.kind) for e in cycle.roster}):
            if pools is not None and (group, kind.value) not in pools:
                continue
            files = [self.file(cycle.year, e.subject, version_of[
                str(SubjectFile.id_for(cycle.year, e.subject))]) for e in cycle.pool(group, kind)]
            out.append(pool_result(scheme, group, kind, files, previous,
                                   cycle.scoring_version(SCORE_FUNCTION_VERSION)))
        return out

    def previous_ranks(self, year: int) -> tuple[int | None, dict[str, int]]:
        """The previous cycle's results version in force now, and its ranks (位次进退 is
        measured against them)."""
        with self.db.read() as cur:
            return previous_ranks(cur, self.store.mapper, year, END)

    def published(self, year: int) -> PublishedResults | None:
        """The cycle's results as published (the version in force now), if published."""
        with self.db.read() as cur:
            return published_as_of(cur, self.store.mapper, year, END)

    def decide(self, principal: Principal, year: int, subject: str, *, grade: str,
               reason: str, minutes_ref: str,
               after_append: AfterAppend | None = None) -> Written:
        """A committee decision; the pool's quota is re-checked with it before it is stored."""
        require_role(principal, Role.COMMITTEE)
        cycle, entry, file = self._input(year, subject, Phase.SEALED)
        if not reason.strip() or not minutes_ref.strip():
            msg = "a committee decision needs a reason and a minutes reference"
            raise InvalidInput(msg, rule="committee.reason-and-minutes", field="reason")
        self._change_grade(cycle, entry, file, grade,
                           lambda: file.decide(grade, reason, minutes_ref, principal.id))
        return self._save_input(cycle, entry, file, after_append)

    def _change_grade(self, cycle: Cycle, entry: RosterEntry, file: SubjectFile, grade: str,
                      apply: Callable[[], None]) -> None:
        """Check a grade change against the grades, the vetoes and (after it) the quota."""
        subject = entry.subject
        scheme = self._scheme(cycle)
        rule = scheme.rule_for(entry.group, entry.kind)
        if grade not in grades_of(rule):
            msg = f"{grade!r} is not a grade of this pool: {', '.join(grades_of(rule))}"
            raise InvalidInput(msg, rule="grade.valid", field="grade")
        current = self._pool_with(cycle, entry, file).for_subject(subject)
        if current.no_grade_reason is not None:
            msg = (f"{subject} gets no grade ({current.no_grade_reason}) while its sanction or "
                   "case is in force; record the case outcome first")
            raise Conflict(msg, rule="grade.no-grade-in-force")
        capped = [scheme.veto(v) for v in current.vetoes_applied if scheme.veto(v).cap_at]
        grades = grades_of(rule)
        for veto in capped:
            if veto.cap_at and grades.index(grade) < grades.index(veto.cap_at):
                msg = f"{veto.code} allows at best {veto.cap_at}"
                raise Conflict(msg, rule="grade.veto-cap")
        apply()
        _refuse_violations([self._pool_with(cycle, entry, file)], field="grade")

    def _pool_with(self, cycle: Cycle, entry: RosterEntry, changed: SubjectFile) -> PoolResult:
        files = [changed if e.subject == changed.subject else self.file(cycle.year, e.subject)
                 for e in cycle.pool(entry.group, entry.kind)]
        return pool_result(self._scheme(cycle), entry.group, entry.kind, files, {},
                           cycle.scoring_version(SCORE_FUNCTION_VERSION))

    def _save_input(self, cycle: Cycle, entry: RosterEntry, file: SubjectFile,
                     after_append: AfterAppend | None, *more: Any) -> Written:
        """Save a change that can move a grade. From the seal on, the pool's quota is checked
        again inside the transaction, with every file as committed (the log's write lock is
        held): two decisions racing in one pool cannot both pass."""
        checks = [quota_holds(self.store.mapper, cycle, entry)] if cycle.phase in (
            Phase.SEALED, Phase.PUBLISHED) else []
        return self._save(file, guarded(after_append, cycle_unchanged(cycle), *checks), *more)

    # --- 审定 (the committee's approval of the whole proposal) ------------------------------

    def proposal(self, year: int, head_of: Any) -> tuple[Cycle, str]:
        """The cycle and the fingerprint of its grading proposal as it stands: every pool's
        results from the sealed evidence and the committee's decisions since (what 审定
        approves and publication publishes). After publication: the published one."""
        cycle = self.cycle(year)
        cycle.require_phase(Phase.SEALED, Phase.PUBLISHED)
        if cycle.phase == Phase.PUBLISHED:
            return cycle, cycle.results_fingerprint or ""
        _, previous = self.previous_ranks(year)
        return cycle, results_fingerprint(self._pools_at(cycle, self.heads(cycle, head_of),
                                                         previous))

    def _sealed_proposal(self, year: int, head_of: Any,
                         ) -> tuple[Cycle, list[StreamHead], int | None, list[PoolResult]]:
        """What 审定 approves and publication publishes: the sealed cycle, its evidence heads,
        the previous cycle's results version and every pool's results at those heads; refused
        while any pool breaks a quota."""
        cycle = self.cycle(year)
        cycle.require_phase(Phase.SEALED)
        heads = self.heads(cycle, head_of)
        previous_version, previous = self.previous_ranks(year)
        results = self._pools_at(cycle, heads, previous)
        _refuse_violations(results)
        return cycle, heads, previous_version, results

    def approve(self, principal: Principal, year: int, head_of: Any, *, fingerprint: str,
                minutes_ref: str, authority: str,
                after_append: AfterAppend | None = None) -> Written:
        """审定: the committee approves the proposal whose fingerprint it read; refused when
        the proposal has changed since. The evidence heads are checked unchanged inside the
        write, so a decision racing the approval makes one of them retry."""
        require_role(principal, Role.COMMITTEE)
        cycle, heads, previous_version, results = self._sealed_proposal(year, head_of)
        cycle.approve(fingerprint, results_fingerprint(results), minutes_ref, authority,
                      principal.id)
        return self._save(cycle, guarded(after_append, heads_unchanged(heads),
                                         previous_unchanged(year, previous_version)))

    def publish(self, principal: Principal, year: int, head_of: Any, *, notified_on: str,
                after_append: AfterAppend | None = None) -> Written:
        """Publish: every pool's results are recorded in full (the results notice), with
        their fingerprint, the score function's version and the evidence heads they were
        computed at; refused while any pool breaks a quota, and unless the committee approved
        exactly these results (审定, ``publication.approved``)."""
        require_role(principal, Role.ORGANIZER)
        cycle, heads, previous_version, results = self._sealed_proposal(year, head_of)
        digest = results_fingerprint(results)
        version = cycle.scoring_version(SCORE_FUNCTION_VERSION)
        cycle.publish(heads, digest, version, notified_on, principal.id,
                      legacy_fingerprint=results_fingerprint_v1(results))
        notice, pools = ResultsNotice.issue(year=year, pools=results, score_version=version,
                                            previous_version=previous_version,
                                            notified_on=notified_on, actor=principal.id)
        assert notice.fingerprint == digest  # noqa: S101 -- one fingerprint function
        return save(self.store, cycle, notice, *pools, stream_id=cycle.id,
                    after_append=guarded(after_append, heads_unchanged(heads),
                                         previous_unchanged(year, previous_version)))

    # --- corrections (更正) ---------------------------------------------------------------

    def pending(self, year: int, head_of: Any) -> tuple[PublishedResults, list[PoolResult]]:
        """The published version in force and the pools whose working results differ from
        it (what a correction would publish)."""
        cycle = self.cycle(year)
        cycle.require_phase(Phase.PUBLISHED)
        published = self.published(year)
        if published is None:  # pragma: no cover -- a published cycle has its results
            msg = f"cycle {year} has no published results"
            raise Conflict(msg, rule="results.published")
        _, previous = self.previous_ranks(year)
        working = self._pools_at(cycle, self.heads(cycle, head_of), previous)
        return published, [p for p in working if published.pools.get(pool_key(p)) != p]

    def correct(self, principal: Principal, year: int, head_of: Any, *, reason: str,
                authority: str, reference: str,
                after_append: AfterAppend | None = None) -> Written:
        """更正 by a committee act: publish, as a new results version, every pool whose
        working results differ from the version in force."""
        require_role(principal, Role.COMMITTEE)
        cycle = self.cycle(year)
        cycle.require_phase(Phase.PUBLISHED)
        made = self._correction(cycle, head_of, None, basis="committee",
                                reference=reference, reason=reason, authority=authority,
                                actor=principal.id)
        if made is None:
            msg = (f"nothing to correct: cycle {year}'s working results equal the published "
                   "ones")
            raise Conflict(msg, rule="correction.no-change")
        aggregates, checks = made
        return self._save(aggregates[0], guarded(after_append, *checks), *aggregates[1:])

    def _correction(self, cycle: Cycle, head_of: Any, changed: SubjectFile | None, *,
                    basis: str, reference: str, reason: str, authority: str,
                    actor: str) -> tuple[list[Any], list[Check]] | None:
        """The results notice with a correction appended (not saved), with the pools it
        restates in their own streams (the second format), and the checks their save must
        pass; or None when no pool changes. ``changed``: a file with events not
        yet saved, to count in (saved in the same transaction: its head records the version
        only, as its leaf is not known before the commit)."""
        heads = self.heads(cycle, head_of)
        if changed is not None:
            heads = [StreamHead(h.stream_id, changed.version, "") if h.stream_id == str(
                changed.id) else h for h in heads]
        previous_version, previous = self.previous_ranks(cycle.year)
        working = self._pools_at_with(cycle, heads, previous, changed)
        notice = self._notice(cycle)
        fresh = [p for p in working if notice.pools.get(pool_key(p)) != p]
        if not fresh:
            return None
        _refuse_violations(fresh)
        moved = {pool_key(p) for p in fresh}
        pool_heads = [h for h in heads if any(
            h.stream_id == str(SubjectFile.id_for(cycle.year, e.subject))
            for e in cycle.roster if (e.group, e.kind.value) in moved)]
        restated = notice.correct(fresh, pool_heads, previous_version, basis=basis,
                                  reference=reference, reason=reason, authority=authority,
                                  notified_on=self._today().isoformat(), actor=actor)
        pools = []
        for pool in restated:
            stream: ResultsPool = self.store.repository.get(
                ResultsPool.id_for(cycle.year, pool.group, pool.kind.value))
            stream.restate(pool, notice.version)
            pools.append(stream)
        return [notice, *pools], [heads_unchanged(heads),
                                  previous_unchanged(cycle.year, previous_version)]

    def _pools_at_with(self, cycle: Cycle, heads: list[StreamHead], previous: dict[str, int],
                       changed: SubjectFile | None) -> list[PoolResult]:
        if changed is None:
            return self._pools_at(cycle, heads, previous)
        scheme = self._scheme(cycle)
        version_of = {h.stream_id: h.version for h in heads}
        out = []
        for group, kind in sorted({(e.group, e.kind) for e in cycle.roster}):
            files = [changed if e.subject == changed.subject else self.file(
                cycle.year, e.subject, version_of[str(SubjectFile.id_for(cycle.year, e.subject))])
                for e in cycle.pool(group, kind)]
            out.append(pool_result(scheme, group, kind, files, previous,
                                   cycle.scoring_version(SCORE_FUNCTION_VERSION)))
        return out

    def _notice(self, cycle: Cycle) -> ResultsNotice:
        """The cycle's results notice; for a cycle published before notices were recorded,
        a new one holding its results as published (checked against their fingerprint)."""
        try:
            notice: ResultsNotice = self.store.repository.get(ResultsNotice.id_for(cycle.year))
        except AggregateNotFoundError:
            published = self.published(cycle.year)
            if published is None:  # pragma: no cover -- the caller checked the phase
                msg = f"cycle {cycle.year} is not published"
                raise Conflict(msg, rule="cycle.phase") from None
            legacy: ResultsNotice = ResultsNotice._create(
                ResultsNotice.Issued, id=ResultsNotice.id_for(cycle.year), year=cycle.year,
                pools=published.results(), results_fingerprint=published.fingerprint,
                score_version=published.score_version,
                previous_version=published.previous_version,
                notified_on=published.notified_on, actor="system:legacy")
            return legacy
        if notice.by_digest:  # its pools are in their own streams: the version in force
            published = self.published(cycle.year)
            if published is None or published.version != notice.version:
                msg = f"cycle {cycle.year}'s results notice changed concurrently; retry"
                raise Conflict(msg, rule="concurrent-change")
            notice.state(dict(published.pools))
        return notice

    def _today(self) -> date:
        return business_day() or self.clock.now().astimezone(self.tz).date()

    def today(self) -> date:
        """The jurisdiction's local date, from the injected clock."""
        return self._today()

    # --- 公示: objections to the grades the notice lists ------------------------------------

    def notice_window(self, cycle: Cycle) -> tuple[date, date]:
        """The 公示 window, local dates both included: ``notice_days`` from the written
        notification (the scheme's publication policy)."""
        if cycle.published_on is None:
            msg = f"cycle {cycle.year} is not published: there is no notice (公示) yet"
            raise Conflict(msg, rule="notice.window", field="year")
        opens = date.fromisoformat(cycle.published_on)
        return opens, opens + timedelta(days=self._scheme(cycle).publication.notice_days - 1)

    def listed(self, cycle: Cycle) -> dict[str, str]:
        """Subject -> grade, for every published grade the notice lists (notice_grades)."""
        return self._notice_subjects(cycle)[0]

    def _notice_subjects(self, cycle: Cycle) -> tuple[dict[str, str], set[str]]:
        """The grades the notice lists (subject -> grade), and every subject its objection
        counts cover: those, and the subjects of pools a correction changed (an upheld
        objection can take its subject off the list; its objection still counts)."""
        published = self.published(cycle.year)
        if published is None:
            return {}, set()
        grades = self._scheme(cycle).publication.notice_grades
        listed = {r.subject: r.final_grade for p in published.results() for r in p.results
                  if r.final_grade is not None and r.final_grade in grades}
        corrected = {p for c in published.corrections for p in c.pools}
        return listed, set(listed) | {
            r.subject for pool in published.results()
            if f"{pool.group}/{pool.kind.value}" in corrected for r in pool.results}

    def notice_objections(self, cycle: Cycle) -> tuple[dict[str, str],
                                                        dict[str, dict[str, str | None]]]:
        """The notice's listed grades, and the objections (case -> outcome, None while
        undecided) on every subject its counts cover: one walk shared by the public notice's
        counts and ``notice_status``. Kept per process by the heads (version, leaf hash) of
        those subjects' files, read in one query, and each file loaded at its head's version:
        a flood of public reads of the notice costs one query each, and a lodged or decided
        objection (a new head) is seen by the next read."""
        listed, subjects = self._notice_subjects(cycle)
        order = sorted(subjects)
        heads = stream_heads(self.db, [SubjectFile.id_for(cycle.year, s) for s in order])
        key = (cycle.year, tuple(order), tuple(heads))

        def walk() -> dict[str, dict[str, str | None]]:
            return {s: dict(self.file(cycle.year, s, version=v).objections) if v else {}
                    for s, (v, _) in zip(order, heads, strict=True)}

        return listed, self._objections.get(key, walk)

    def objection_counts(self, cycle: Cycle) -> tuple[int, int]:
        """(objections lodged, objections undecided) on the notice (``notice_objections``)."""
        return count_objections(self.notice_objections(cycle)[1])

    def lodge_objection(self, principal: Principal, year: int, subject: str, *,
                        channel: Channel, summary: str, reporter: str | None,
                        code: str | None, after_append: AfterAppend | None = None) -> Written:
        """公示异议: an objection to a grade the notice lists, taken in the notice window
        by intake (hotline, mailbox, website; anonymous allowed, as a report). It opens a case
        about the subject (investigated like any report) and is recorded on the subject's
        file, so the result is final only once every objection on it is decided."""
        require_role(principal, Role.INTAKE)
        cycle, entry, file = self._input(year, subject, Phase.PUBLISHED)
        opens, closes = self.notice_window(cycle)
        today = self._today()
        if not opens <= today <= closes:
            msg = f"objections to the notice (公示) of {year} are taken from {opens} to {closes}"
            raise Conflict(msg, rule="objection.window", field="year")
        if subject not in self.listed(cycle):
            msg = f"{subject}'s grade is not on the notice (公示); there is nothing to object to"
            raise InvalidInput(msg, rule="objection.listed-subject", field="subject")
        case = Case(channel=channel.value, year=year, subjects=[subject],
                    summary=f"公示异议: {summary}",
                    follow_up_hash=follow_up_hash(code) if code else None, actor=principal.id)
        if reporter:
            case.identify_reporter(reporter, principal.id)
        file.lodge_objection(str(case.id), today.isoformat(), principal.id)
        return self._save_input(cycle, entry, file, after_append, case)

    def decide_objection(self, principal: Principal, year: int, subject: str, case: str, *,
                         outcome: str, grade: str | None, reason: str, minutes_ref: str,
                         authority: str, head_of: Any,
                         after_append: AfterAppend | None = None) -> Written:
        """The committee decides an objection: dismissed, or upheld. An upheld objection
        with a grade is a committee decision, checked like one (grades, vetoes, quota) and
        published at once as a correction (更正, basis ``objection``) in the same
        transaction."""
        require_role(principal, Role.COMMITTEE)
        cycle, entry, file = self._input(year, subject, Phase.PUBLISHED)
        decided_on = self._today().isoformat()

        def apply() -> None:
            file.decide_objection(case, outcome, grade, reason, minutes_ref,
                                  decided_on=decided_on, authority=authority,
                                  actor=principal.id)

        if grade is None:
            apply()
            return self._save_input(cycle, entry, file, after_append)
        if outcome != "upheld":
            apply()  # refused by the domain: a dismissed objection sets no grade
        self._change_grade(cycle, entry, file, grade, apply)
        made = self._correction(cycle, head_of, file, basis="objection",
                                reference=f"{subject} objection {case}", reason=reason,
                                authority=authority, actor=principal.id)
        if made is None:
            return self._save_input(cycle, entry, file, after_append)
        aggregates, checks = made
        return self._save_input(cycle, entry, file, guarded(after_append, *checks), *aggregates)

    def notice_status(self, principal: Principal, year: int) -> list[NoticeStatus]:
        """Every grade the notice lists, with its objections and whether it is final: the
        window has closed and every objection on it is decided. (A grade the notice does not
        list is final at publication, subject to review and appeal.)"""
        require_role(principal, Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR)
        cycle = self.cycle(year)
        cycle.require_phase(Phase.PUBLISHED)
        _, closes = self.notice_window(cycle)
        closed = self._today() > closes
        listed, on = self.notice_objections(cycle)
        out = []
        for subject, grade in sorted(listed.items()):
            objections = on[subject]
            open_ = sum(1 for v in objections.values() if v is None)
            out.append(NoticeStatus(
                subject=subject, name=cycle.entry(subject).name, grade=grade,
                objections=[ObjectionState(case=c, outcome=o) for c, o in objections.items()],
                final=closed and open_ == 0, undecided=open_))
        return out

    # --- review (复核) and appeal (申诉) ---------------------------------------------------

    def request_review(self, principal: Principal, year: int, subject: str, *, kind: str,
                       reason: str, after_append: AfterAppend | None = None) -> Written:
        """复核 within review_days of notification; 申诉 within appeal_days of the review's
        decision (or of its deadline, when it was not decided in time), or within
        direct_appeal_days of notification when no review was asked (scheme deadlines, local
        dates). Each request records the date it must be decided by."""
        cycle, entry, file = self._input(year, subject, Phase.PUBLISHED)
        identity = self._identity(principal, IdentityKind.CADRE, IdentityKind.UNIT)
        own = (cadre_subject(identity.id) if identity.kind == IdentityKind.CADRE
               else team_subject(identity.id))
        if own != subject:
            msg = "only the subject itself may ask for a review or appeal of its result"
            raise Forbidden(msg, rule="review.own-result")
        if kind not in {"review", "appeal"}:
            msg = "kind is review (复核) or appeal (申诉)"
            raise InvalidInput(msg, rule="review.kind", field="kind")
        if kind in file.requests:
            msg = f"a {kind} was already filed on {file.requests[kind]}"
            raise Conflict(msg, rule="review.once", field="kind")
        scheme = self._scheme(cycle)
        today = self._today()
        notified = date.fromisoformat(cycle.published_on or today.isoformat())
        closes, counted_from = notified + timedelta(days=scheme.review_days), "notification"
        if kind == "appeal" and "review" in file.requests:
            decided = file.decided.get("review")
            deadline = file.deadlines.get("review")
            if not decided and (deadline is None or today <= date.fromisoformat(deadline)):
                msg = ("an appeal (申诉) after a review (复核) follows the review's decision "
                       "(or its deadline, if it is not decided in time)")
                raise Conflict(msg, rule="review.appeal-after-review", field="kind")
            start = date.fromisoformat(decided or deadline or today.isoformat())
            closes = start + timedelta(days=scheme.appeal_days)
            counted_from = "the review's decision" if decided else "the review's deadline"
        elif kind == "appeal":
            closes = notified + timedelta(days=scheme.direct_appeal_days)
        if today > closes:
            msg = f"the {kind} window closed on {closes} (counted from {counted_from})"
            raise InvalidInput(msg, rule="review.deadline", field="kind")
        days = scheme.review_decision_days if kind == "review" else scheme.appeal_decision_days
        file.request_review(kind, today.isoformat(), reason, principal.id,
                            (today + timedelta(days=days)).isoformat())
        return self._save_input(cycle, entry, file, after_append)

    def extend_review(self, principal: Principal, year: int, subject: str, *, kind: str,
                      days: int, reason: str,
                      after_append: AfterAppend | None = None) -> Written:
        """Extend an appeal's decision deadline once, before it passes, by at most the
        scheme's appeal_extension_days (a review's deadline is not extended); by the body
        that decides the appeal."""
        require_role(principal, Role.APPEAL_BODY)
        cycle, entry, file = self._input(year, subject, Phase.PUBLISHED)
        scheme = self._scheme(cycle)
        if kind != "appeal":
            msg = "only an appeal's (申诉) decision deadline can be extended"
            raise InvalidInput(msg, rule="review.extend-appeal-only", field="kind")
        if not 1 <= days <= scheme.appeal_extension_days:
            msg = f"an extension is 1 to {scheme.appeal_extension_days} days"
            raise InvalidInput(msg, rule="review.extension-days", field="days")
        deadline = file.deadlines.get(kind)
        if deadline is not None and self._today() > date.fromisoformat(deadline):
            msg = f"the decision deadline ({deadline}) has passed; it cannot be extended now"
            raise Conflict(msg, rule="review.extend-before-deadline", field="days")
        base = date.fromisoformat(deadline) if deadline else self._today()
        file.extend_review(kind, (base + timedelta(days=days)).isoformat(), reason,
                           principal.id)
        return self._save_input(cycle, entry, file, after_append)

    def decide_review(self, principal: Principal, year: int, subject: str, *, kind: str,
                      grade: str | None, reason: str, head_of: Any,
                      authority: str | None = None, late_reason: str | None = None,
                      after_append: AfterAppend | None = None) -> Written:
        """Decide a review or appeal. A changed grade is checked like a committee decision
        and published at once as a correction (更正) of the results, in the same
        transaction; a decision after its deadline must say why it is late. A review (复核)
        is decided by the committee that made the decision; an appeal (申诉) by a higher body
        (the appeal-body role: 同级公务员主管部门 or 上一级机关, 公务员法 Art. 95), never by the
        principal or authority that decided the review (``appeal.higher-body``)."""
        require_role(principal, Role.APPEAL_BODY if kind == "appeal" else Role.COMMITTEE)
        cycle, entry, file = self._input(year, subject, Phase.PUBLISHED)
        today = self._today()
        deadline = file.deadlines.get(kind)
        late = deadline is not None and today > date.fromisoformat(deadline)
        if late and not (late_reason or "").strip():
            msg = (f"the {kind} was due to be decided by {deadline}; a late decision must give "
                   "its late_reason")
            raise InvalidInput(msg, rule="review.decision-overdue", field="late_reason")
        by = authority or principal.id
        if grade is None:
            file.decide_review(kind, "upheld", None, reason, principal.id,
                               decided_on=today.isoformat(), authority=by,
                               late_reason=late_reason if late else None)
            return self._save_input(cycle, entry, file, after_append)
        self._change_grade(cycle, entry, file, grade, lambda: file.decide_review(
            kind, "changed", grade, reason, principal.id, decided_on=today.isoformat(),
            authority=by, late_reason=late_reason if late else None))
        made = self._correction(cycle, head_of, file, basis=kind,
                                reference=f"{subject} {kind}", reason=reason, authority=by,
                                actor=principal.id)
        if made is None:
            return self._save_input(cycle, entry, file, after_append)
        aggregates, checks = made
        return self._save_input(cycle, entry, file, guarded(after_append, *checks), *aggregates)


def _refuse_violations(pools: list[PoolResult], field: str | None = None) -> None:
    broken = [f"{p.group}/{p.kind.value}: {v}" for p in pools for v in p.quota_violations]
    if broken:
        msg = f"that would exceed a quota ({'; '.join(broken)})"
        raise Conflict(msg, rule="quota.exceeded", field=field)
