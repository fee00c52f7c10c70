"""Use cases of evaluation sessions: define, freeze, issue credentials, open, cast, close, void.

Casting needs no login: the credential is the key, and its hash is the ballot's stream. Nothing
about the caster is stored or logged (no principal, address, agent or precise time).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.ballots import (
    Ballot,
    CountedBallot,
    EvaluationSession,
    SessionDefinition,
    SessionState,
    ballot_id,
    cast_event,
    check_answers,
    credential_hash,
    replaced_event,
    tally,
    validate_definition,
)
from domain.errors import Conflict, DomainError, InvalidInput, NotFound
from projections.follower import head_position
from service.group_commit import GroupCommitter, VersionTaken
from service.guards import cycle_unchanged, guarded
from service.ledger.reads import read_leaves
from service.policy import require_role
from service.principals import Principal, Role
from service.session_files import (
    check_roster,
    closed_in_files,
    scoring_cycle,
    voided_in_files,
)
from service.writes import Written, is_version_conflict, save

REFRESH = 0.5  # seconds between checks that a cached session is current
T = TypeVar("T")

if TYPE_CHECKING:
    from domain.cycle import Cycle
    from service.clock import Clock
    from service.db import Database
    from service.evaluation import Evaluation
    from service.store import AfterAppend, EventStore, Leaf


def coarse(now: datetime, seconds: int) -> datetime:
    """Round a time down to the session's granularity: a ballot's time says no more."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


class Sessions:
    def __init__(self, store: EventStore, db: Database, clock: Clock,
                 evaluation: Evaluation, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store, self.db, self.clock, self.evaluation = store, db, clock, evaluation
        self._writer: GroupCommitter | None = None
        self.monotonic = monotonic
        self._cache: dict[str, tuple[int, EvaluationSession | None]] = {}  # None: no such code
        self._checked: dict[str, float] = {}
        self._views: dict[tuple[str, str], tuple[int, Any, Callable[[EvaluationSession], Any]]] = {}
        # A session's subjects whose tallies the public board shows, once its cycle is
        # published (final); kept by api/routes/sessions.py.
        self.public_subjects: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self._refresh_locks = [threading.Lock() for _ in range(16)]

    @property
    def writer(self) -> GroupCommitter:
        with self._lock:
            if self._writer is None:
                self._writer = GroupCommitter(self.store)
            return self._writer

    def close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()

    # --- loading --------------------------------------------------------------------------

    def session(self, code: str) -> EvaluationSession:
        try:
            found: EvaluationSession = self.store.repository.get(EvaluationSession.id_for(code))
        except AggregateNotFoundError:
            msg = f"no evaluation session {code}"
            raise NotFound(msg, rule="session.exists", field="session") from None
        return found

    def _session_for_casting(self, code: str) -> EvaluationSession:
        return self.current(code)[1]

    def current(self, code: str) -> tuple[int, EvaluationSession]:
        """The session and its version. Sessions hold every credential hash: re-read one only
        when it has changed, and look at most every REFRESH seconds (one process's own writes
        are seen at once). A ballot accepted just after a close is still safe: it lands after
        the close's cut and is counted late; a revocation applies within REFRESH."""
        fresh = self._fresh(code)
        if fresh is not None:
            return fresh
        with self._refresh_locks[hash(code) % len(self._refresh_locks)]:  # one reader re-checks
            # the code; a flood of others waits for its answer instead of asking again
            fresh = self._fresh(code)
            if fresh is not None:
                return fresh
            sid = EvaluationSession.id_for(code)
            with self.db.read() as cur:
                cur.execute("SELECT max(stream_version) FROM kaoping_ledger "
                            "WHERE stream_id = %s", (sid,))
                row = cur.fetchone()
            version = int(row[0]) if row and row[0] is not None else 0
            cached = self._cache.get(code)
            if cached is None or cached[0] != version:
                if version == 0 and len(self._cache) > 10_000:  # unknown codes are cached too
                    self._cache = {k: v for k, v in self._cache.items() if v[0]}
                    self._checked = {k: t for k, t in self._checked.items() if k in self._cache}
                cached = (version, self.session(code) if version else None)
                self._cache[code] = cached
            self._checked[code] = self.monotonic()
            return self._fresh(code) or self._unknown(code)

    def _fresh(self, code: str) -> tuple[int, EvaluationSession] | None:
        """The cached session if checked within REFRESH (no I/O); raises NotFound for a code
        known not to exist; None when it must be checked again."""
        cached = self._cache.get(code)
        if cached is None or self.monotonic() - self._checked.get(code, -REFRESH) >= REFRESH:
            return None
        if cached[1] is None:
            return self._unknown(code)
        return cached[0], cached[1]

    @staticmethod
    def _unknown(code: str) -> tuple[int, EvaluationSession]:
        msg = f"no evaluation session {code}"
        raise NotFound(msg, rule="session.exists", field="session")

    # --- public views ------------------------------------------------------------------------

    def cached_view(self, code: str, name: str, build: Callable[[EvaluationSession], T]
                    ) -> T | None:
        """A public view (the session, its board, its ballot page) from memory, without I/O;
        None when the session must be re-checked first (then call ``public_view`` off the
        event loop)."""
        fresh = self._fresh(code)
        return None if fresh is None else self._view(fresh, code, name, build)

    def public_view(self, code: str, name: str, build: Callable[[EvaluationSession], T]) -> T:
        """A public view, built once per version of the session and served from memory until
        an event of the session changes it (define, freeze, issue, revoke, open, close, void;
        ballots are streams of their own and change no view before the close)."""
        return self._view(self.current(code), code, name, build)

    def _view(self, fresh: tuple[int, EvaluationSession], code: str, name: str,
              build: Callable[[EvaluationSession], T]) -> T:
        version, session = fresh
        hit = self._views.get((code, name))
        if hit is not None and hit[0] == version:
            found: T = hit[1]
            return found
        value = build(session)
        self._views[(code, name)] = (version, value, build)
        return value

    def _changed(self, session: EvaluationSession) -> None:
        """After a commit of the session: cache it, and rebuild the views that have readers
        (at freeze, open, close, void...), so that readers find them built."""
        code = session.definition.code
        self._cache[code] = (session.version, session)
        self._checked[code] = self.monotonic()
        for (view_code, name), (_, _, build) in list(self._views.items()):
            if view_code == code:
                try:
                    self._views[(code, name)] = (session.version, build(session), build)
                except DomainError:  # e.g. the board before the close: built when asked
                    self._views.pop((code, name), None)

    def _save(self, aggregate: Any, after_append: AfterAppend | None) -> Written:
        written = save(self.store, aggregate, after_append=after_append, stream_id=aggregate.id)
        if isinstance(aggregate, EvaluationSession):  # this process sees its own changes now
            self._changed(aggregate)
        return written

    # --- organiser --------------------------------------------------------------------------

    def define(self, principal: Principal, definition: SessionDefinition,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        validate_definition(definition)
        check_roster(self.evaluation, definition)
        session = EvaluationSession(definition=definition, actor=principal.id)
        try:
            return self._save(session, after_append)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = f"session {definition.code} already exists"
                raise Conflict(msg, rule="session.unique", field="code") from None
            raise

    def freeze(self, principal: Principal, code: str,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        session = self.session(code)
        session.freeze(principal.id)
        return self._save(session, after_append)

    def issue(self, principal: Principal, code: str, rater_class: str,
              count: int) -> tuple[Written, list[str]]:
        """N one-time codes (128 bits each); they are returned here once and never stored."""
        require_role(principal, Role.ORGANIZER)
        if not 1 <= count <= 5000:
            msg = "count must be from 1 to 5000"
            raise InvalidInput(msg, rule="credentials.count", field="count")
        session = self.session(code)
        codes = [secrets.token_urlsafe(16) for _ in range(count)]
        session.issue(rater_class, [credential_hash(code, c) for c in codes], principal.id)
        return self._save(session, None), codes

    def revoke(self, principal: Principal, code: str, credential: str, reason: str,
               after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        session = self.session(code)
        if ballot_id(code, credential) in self.store.repository:
            # Its ballot is cast and counts: a revocation would seem to undo it and not.
            msg = ("this credential has been used: its ballot stays counted; a revocation "
                   "stops a slip that has not voted")
            raise Conflict(msg, rule="credential.unused", field="credential")
        session.revoke(credential, reason, principal.id)
        return self._save(session, after_append)

    def open(self, principal: Principal, code: str,
             after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        session = self.session(code)
        check_roster(self.evaluation, session.definition)  # the cycle may be newer
        session.open(principal.id)
        return self._save(session, after_append)

    def void(self, principal: Principal, code: str, reason: str, authority: str,
             after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        session = self.session(code)
        session.void(reason, authority, principal.id)
        cycle = scoring_cycle(self.evaluation, session.definition.year)
        files = voided_in_files(self.evaluation, session, principal.id, cycle)
        return self._save_with_files(session, files, cycle, after_append)

    # --- voters -----------------------------------------------------------------------------

    def prepare(self, code: str, credential: str,
                answers: dict[str, dict[str, str]]) -> tuple[Any, EvaluationSession, datetime]:
        """Check the credential and build the ballot event (no I/O while the session is
        cached, so the API calls it on its event loop)."""
        session = self._session_for_casting(code)
        if session.state != SessionState.OPEN:
            msg = f"session {code} is not open for ballots ({session.state.value})"
            raise Conflict(msg, rule="ballot.session-open")
        digest = credential_hash(code, credential)
        rater_class = session.class_of(digest)
        check_answers(session.definition, answers)
        at = coarse(self.clock.now(), session.definition.rules.granularity_seconds)
        return cast_event(ballot_id(code, digest), at, code, rater_class, digest, answers), \
            session, at

    def settle_used(self, session: EvaluationSession, event: Any,
                    answers: dict[str, dict[str, str]], at: datetime) -> Leaf:
        """The credential's stream existed: refuse, or revote."""
        return self._already_cast(session, event.originator_id, answers, at)

    def cast(self, code: str, credential: str, answers: dict[str, dict[str, str]]) -> Leaf:
        """Store a ballot (a used credential: refused, or a revote)."""
        session = self._session_for_casting(code)
        if session.state != SessionState.OPEN:
            msg = f"session {code} is not open for ballots ({session.state.value})"
            raise Conflict(msg, rule="ballot.session-open")
        digest = credential_hash(code, credential)
        rater_class = session.class_of(digest)
        check_answers(session.definition, answers)
        stream = ballot_id(code, digest)
        at = coarse(self.clock.now(), session.definition.rules.granularity_seconds)
        cast = cast_event(stream, at, code, rater_class, digest, answers)
        try:
            return self.writer.submit(cast).result(timeout=30)
        except VersionTaken:
            return self._already_cast(session, stream, answers, at)

    def _already_cast(self, session: EvaluationSession, stream: Any,
                      answers: dict[str, dict[str, str]], at: datetime) -> Leaf:
        """A used credential, whatever the answers, gets the same answer: refused, or (with
        ``revote``) a new ballot that replaces the last. Never a look at what it was: a
        receipt given back for the same answers only told whoever holds the slip after the
        vote which answers it was cast with (try each until one is not refused)."""
        if not session.definition.rules.revote:
            msg = ("this credential has already been used: its ballot was recorded when first "
                   "cast (keep the tracker that answer gave)")
            raise Conflict(msg, rule="ballot.credential-used", field="credential")
        ballot: Ballot = self.store.repository.get(stream)
        replaced = replaced_event(stream, ballot.version + 1, at, answers)
        try:
            return self.writer.submit(replaced).result(timeout=30)
        except VersionTaken:
            msg = "this credential was used again at the same moment; retry"
            raise Conflict(msg, rule="ballot.concurrent-revote", field="credential") from None

    # --- closing --------------------------------------------------------------------------

    def ballots(self, session: EvaluationSession,
                up_to: int | None = None) -> list[tuple[CountedBallot, Leaf]]:
        """Every ballot of the session with its leaf (its tracker): as it stood at log position
        ``up_to`` (the close's cut) -- its last event at or before it, so a revote committed
        later changes nothing -- or, for a ballot first cast after ``up_to``, its latest
        event (the tally counts it late). Without ``up_to``: each ballot's latest event."""
        from service.db import as_uuid  # noqa: PLC0415

        ids = [ballot_id(session.definition.code, h) for h in session.credentials]
        limit = 2**62 if up_to is None else up_to
        out: list[tuple[CountedBallot, Leaf]] = []
        for i in range(0, len(ids), 400):
            chunk = ids[i:i + 400]
            marks = ", ".join(["%s"] * len(chunk))
            latest = ("SELECT l.position FROM kaoping_ledger l WHERE l.stream_id IN "  # noqa: S608
                      f"({marks}) AND l.stream_version = (SELECT max(m.stream_version) FROM "
                      "kaoping_ledger m WHERE m.stream_id = l.stream_id{})")
            with self.db.read() as cur:
                cur.execute(latest.format(" AND m.position <= %s"), [*chunk, limit])
                positions = [int(p) for (p,) in cur.fetchall()]
                if up_to is not None:  # ballots with nothing by the cut: late as a whole
                    cur.execute(latest.format("") + " AND NOT EXISTS (SELECT 1 FROM "  # noqa: S608
                                "kaoping_ledger e WHERE e.stream_id = l.stream_id AND "
                                "e.position <= %s)", [*chunk, up_to])
                    positions += [int(p) for (p,) in cur.fetchall()]
            for leaf in read_leaves(self.db, positions):
                ballot: Ballot = self.store.repository.get(as_uuid(leaf.stream_id),
                                                           version=leaf.stream_version)
                out.append((CountedBallot(ballot.rater_class, ballot.answers, leaf.position),
                            leaf))
        return sorted(out, key=lambda pair: pair[1].position)

    def close(self, principal: Principal, code: str,
              after_append: AfterAppend | None = None) -> Written:
        """Cut at the log's head: ballots committed after it are kept but late. The tally goes
        into the close event; where the session belongs to a cycle in scoring, each subject's
        score -- or why it has none -- is recorded in its file in the same transaction."""
        require_role(principal, Role.ORGANIZER)
        session = self.session(code)
        session.require(SessionState.OPEN)
        check_roster(self.evaluation, session.definition)
        with self.db.read() as cur:
            cut = head_position(cur)
        pairs = self.ballots(session, up_to=cut)
        issued: dict[str, int] = {}
        for rater_class in session.credentials.values():
            issued[rater_class] = issued.get(rater_class, 0) + 1
        result = tally(session.definition, issued, [b for b, _ in pairs], cut)
        trackers = [leaf.leaf_hash.hex() for _, leaf in pairs if leaf.position <= cut]
        session.close(cut, result, trackers, principal.id)
        cycle = scoring_cycle(self.evaluation, session.definition.year)
        files = closed_in_files(self.evaluation, session, principal.id, cycle)
        return self._save_with_files(session, files, cycle, after_append)

    def _save_with_files(self, session: EvaluationSession, files: list[Any],
                         cycle: Cycle | None, after_append: AfterAppend | None) -> Written:
        if files and cycle is not None:  # the files take these events only while scoring
            after_append = guarded(after_append, cycle_unchanged(cycle))
        try:
            written = save(self.store, session, *files, after_append=after_append,
                           stream_id=session.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = "the session or a subject's file changed concurrently; retry"
                raise Conflict(msg, rule="concurrent-change") from None
            raise
        self._changed(session)
        return written
