"""The projection follower: pages of raw rows after a tracked position, many events per transaction.

The library's ProjectionRunner applies one event per transaction and needs ``subscribe()``, which
its SQLite recorder lacks, so we follow the ledger ourselves: read a page of (position, event)
rows after the projection's position, apply them all and move the position in one transaction.
Positions are dense and assigned under the log's write lock in commit order, so following them
never skips an event, and the position moving in the same transaction means none is applied twice.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import structlog
from eventsourcing.persistence import StoredEvent

from projections import bulk
from service.db import as_uuid, events_row_id
from service.mapper import V, decode_fields

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor, Database

log = structlog.get_logger("kaoping.projections")


class LoggedEvent:
    """One event as read from the log, decoded on demand (a rebuild reads millions of these:
    a slotted class, not a dataclass, and most projections never decode most of them)."""

    __slots__ = ("_decode", "_event", "leaf_hash", "position", "state", "stream_id", "topic",
                 "version")

    def __init__(self, position: int, leaf_hash: bytes, stream_id: UUID, version: int,
                 topic: str, state: bytes, decode: Callable[[StoredEvent], Any]) -> None:
        self.position, self.leaf_hash, self.stream_id = position, leaf_hash, stream_id
        self.version, self.topic, self.state = version, topic, state
        self._decode = decode
        self._event: Any = None

    def __repr__(self) -> str:
        return f"LoggedEvent({self.position}, {self.topic!r}, {self.stream_id}, v{self.version})"

    def fields(self, view: type[V]) -> V:
        """Just the payload fields a projection needs (``service.mapper.decode_fields``)."""
        if self._event is not None:
            return view(**{name: getattr(self._event, name) for name in view.__struct_fields__})
        return decode_fields(self.topic, self.state, view, lambda: self.event)

    @property
    def event(self) -> Any:
        if self._event is None:
            self._event = self._decode(
                StoredEvent(self.stream_id, self.version, self.topic, self.state))
        return self._event


class Projection(Protocol):
    name: str  # also the tracking key; bump its version suffix to rebuild blue/green
    tables: tuple[str, ...]

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None: ...


def read_page(cur: Cursor, after: int, limit: int, mapper: Mapper[UUID],
              stop_at: int | None = None) -> list[LoggedEvent]:
    rid = events_row_id(cur.engine)
    cur.execute(
        "SELECT l.position, l.leaf_hash, e.originator_id, e.originator_version, e.topic, e.state "  # noqa: S608 -- rid is a column name from code
        f"FROM kaoping_ledger l JOIN kaoping_events e ON e.{rid} = l.notification_id "
        "WHERE l.position > %s AND l.position <= %s ORDER BY l.position",
        # Positions are dense, so a page is a range of them: the planner then knows the page's
        # size (an open upper bound made PostgreSQL plan a parallel scan of the whole log).
        (after, after + limit if stop_at is None else min(after + limit, stop_at)),
    )
    decode = mapper.to_domain_event
    if cur.engine == "postgres":  # psycopg gives int, bytes, UUID, int, str, bytes already
        return [LoggedEvent(p, h, sid, v, t, s, decode) for p, h, sid, v, t, s in cur.fetchall()]
    return [
        LoggedEvent(int(p), bytes(h), as_uuid(sid), int(v), str(t), bytes(s), decode)
        for p, h, sid, v, t, s in cur.fetchall()
    ]


def head_position(cur: Cursor) -> int:
    cur.execute("SELECT max(position) FROM kaoping_ledger")
    row = cur.fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


def tracked_position(cur: Cursor, name: str) -> int:
    cur.execute("SELECT position FROM kaoping_projection_tracking WHERE name = %s", (name,))
    row = cur.fetchone()
    return -1 if row is None else int(row[0])


FAILURE_PAUSE_S = 1.0  # a failed read model sits out this long, doubling per failure in a row,
FAILURE_PAUSE_MAX_S = 300.0  # up to this: retries keep trying a fix, rarely enough to be cheap


class ReadAhead:
    """Reads the next page of the log on its own connection while the current page is applied.

    A rebuild spends about as long waiting for PostgreSQL (reading pages, copying rows in) as
    computing in Python; reading page n+1 while page n is applied lets the two overlap (psycopg
    releases the GIL while it waits). Only a *full* page read ahead is used: committed
    positions are dense and never change, so a full page of them is exactly what a read inside
    the applying transaction would return; a short one might have missed a commit since, so it
    is read again there. Needs a database whose connections are safe to use from two threads
    (the pooled PostgreSQL one and the per-thread SQLite one are).
    """

    def __init__(self, db: Database, mapper: Mapper[UUID], page_size: int) -> None:
        self.db, self.mapper, self.page_size = db, mapper, page_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaoping-read-ahead")
        self._ahead: tuple[tuple[int, int | None], Future[list[LoggedEvent]]] | None = None

    def _read(self, after: int, stop_at: int | None) -> list[LoggedEvent]:
        with self.db.read() as cur:
            return read_page(cur, after, self.page_size, self.mapper, stop_at)

    def page(self, cur: Cursor, after: int, stop_at: int | None) -> list[LoggedEvent]:
        """The page after ``after``; starts reading the one after it if this one is full."""
        page: list[LoggedEvent] | None = None
        if self._ahead is not None:
            (was_after, was_stop), future = self._ahead
            self._ahead = None
            ahead = future.result()
            if (was_after, was_stop) == (after, stop_at) and len(ahead) == self.page_size:
                page = ahead
        if page is None:
            page = read_page(cur, after, self.page_size, self.mapper, stop_at)
        if len(page) == self.page_size:
            nxt = page[-1].position
            self._ahead = ((nxt, stop_at), self._pool.submit(self._read, nxt, stop_at))
        return page

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _part(page: Sequence[LoggedEvent], positions: Sequence[int], at: int, stop: int | None,
          *, exhausted: bool) -> tuple[Sequence[LoggedEvent], bool]:
    """A read model's part of a page (after ``at``, up to ``stop``), and whether all there
    was for it is read: the log is exhausted (a short page), its stop lies inside this page,
    or this page ends exactly at its stop. Then it settles, and a read model loaded without
    its indexes gets them."""
    mine_from = bisect.bisect_right(positions, at)
    mine_to = len(page) if stop is None else bisect.bisect_right(positions, stop)
    mine = page[mine_from:mine_to]
    reached = mine[-1].position if mine else at
    return mine, exhausted or mine_to < len(page) or (stop is not None and reached >= stop)


class _BulkPlan:
    """A read model's indexes around one page: tables to defer before it, to build before it
    (the page needs them), or to build after it commits (the head is reached)."""

    __slots__ = ("backlog", "defer", "restore_after", "restore_before")

    def __init__(self, *, defer: Sequence[str] = (), restore_before: Sequence[str] = (),
                 restore_after: Sequence[str] = (), backlog: int = 0) -> None:
        self.defer, self.restore_before = list(defer), list(restore_before)
        self.restore_after, self.backlog = list(restore_after), backlog

    @property
    def before(self) -> bool:
        return bool(self.defer or self.restore_before)


class ConcurrentFollowerError(RuntimeError):
    """Another follower moved this projection's position: run one follower per projection."""


class Follower:
    def __init__(self, db: Database, mapper: Mapper[UUID], projections: Sequence[Projection],
                 *, page_size: int = 1000, read_ahead: bool = True,
                 bulk_min_events: int | None = None) -> None:
        """``bulk_min_events``: build a read model that starts from zero with this many events
        or more to read without its indexes, and index it once at the head (projections/bulk.py;
        PostgreSQL). None: never, and leave any deferral alone (the rebuild check's follower,
        which writes temporary copies of the tables)."""
        self.db, self.mapper, self.page_size = db, mapper, page_size
        self.bulk_min_events = bulk_min_events
        # (read model, seconds) of each index build after a bulk load, for the benchmark
        self.index_builds: list[tuple[str, float]] = []
        self.projections = list(projections)
        self._read_ahead = ReadAhead(db, mapper, page_size) if read_ahead else None
        self._paused: dict[str, tuple[float, float]] = {}  # name -> (until, pause) after a failure
        self._wake = threading.Event()
        # One page at a time per process: the background thread and an explicit catch_up()
        # (the demo loader, tests) must not race each other's positions.
        self._step_lock = threading.Lock()
        self._ensure_tracking()

    def _ensure_tracking(self) -> None:
        with self.db.write() as cur:
            for p in self.projections:
                if tracked_position(cur, p.name) == -1:
                    cur.execute(
                        "INSERT INTO kaoping_projection_tracking (name, position) "
                        "VALUES (%s, -1) ON CONFLICT (name) DO NOTHING", (p.name,))

    def step(self, projection: Projection, stop_at: int | None = None) -> int:
        """Apply one page to one projection (up to ``stop_at``); return how many it applied."""
        stops = {} if stop_at is None else {projection.name: stop_at}
        return self._step([projection], stops)[1]

    def catch_up(self, stops: Mapping[str, int] | None = None) -> int:
        """Apply everything committed so far (or up to each projection's position in
        ``stops``) to every projection; return how many events were applied in all.

        One shared read pass: each page of the log is read once and applied to every
        projection that has not seen it, all in one transaction with their positions.
        """
        total = 0
        while True:
            try:
                read, applied = self._step(self.projections, stops or {})
            except Exception:  # noqa: BLE001 -- the page again, each read model isolated
                read, applied = self._step(self.projections, stops or {}, isolate=True)
            total += applied
            if read < self.page_size:
                return total

    def _step(self, projections: Sequence[Projection], stops: Mapping[str, int], *,
              isolate: bool = False) -> tuple[int, int]:
        """Read one page after the lowest position among ``projections`` and apply to each
        the part it has not seen; return (events read, events applied in all).

        A failure rolls the whole page back; ``catch_up`` then steps again with ``isolate``:
        each projection applies its part under a savepoint, and one that fails (a bug, an
        event it cannot hold) is rolled back alone, keeps its position, and sits out a growing
        pause (FAILURE_PAUSE_S, doubling to FAILURE_PAUSE_MAX_S) while the others go on; then
        its error is raised to the caller. Without this, one poisoned read model would stop
        all. (Savepoints only after a failure: they cost two round trips per read model and
        page, about a tenth of a rebuild's time.)
        """
        failed: BaseException | None = None
        with self._step_lock, self.db.write() as cur:
            if cur.engine == "postgres":
                # A read model is derived: if the server crashes before this commit reaches
                # the disk, the rows and the position are lost together and the page is simply
                # applied again. Not waiting for the flush saves a disk sync per page.
                cur.execute("SET LOCAL synchronous_commit TO off")
            cur.execute("SELECT name, position FROM kaoping_projection_tracking")
            at = {str(n): int(p) for n, p in cur.fetchall()}
            now = time.monotonic()
            todo = [p for p in projections
                    if (p.name not in stops or at.get(p.name, -1) < stops[p.name])
                    and self._paused.get(p.name, (0.0, 0.0))[0] <= now]
            if not todo:
                return 0, 0
            low = min(at.get(p.name, -1) for p in todo)
            limit = None if any(p.name not in stops for p in todo) else max(
                stops[p.name] for p in todo)
            page = (read_page(cur, low, self.page_size, self.mapper, limit)
                    if self._read_ahead is None else self._read_ahead.page(cur, low, limit))
            exhausted = len(page) < self.page_size  # all there was (up to limit) is read
            positions = [e.position for e in page]
            deferred = self._deferred(cur)
            builds: list[tuple[str, list[str]]] = []  # indexes to build once this page commits
            applied = 0
            moves: list[tuple[str, int, int]] = []  # (name, from, to): moved together below
            for p in todo:
                was = at.get(p.name, -1)
                mine, done = _part(page, positions, was, stops.get(p.name), exhausted=exhausted)
                settles = getattr(p, "settle", None) is not None and done
                plan = self._bulk_plan(cur, p, mine, was, done, deferred)
                if plan is not None and plan.restore_after:
                    builds.append((p.name, plan.restore_after))
                if not mine and not settles and (plan is None or not plan.before):
                    continue
                if not isolate:
                    self._apply(cur, p, mine, was, settles, moves, plan)
                    self._paused.pop(p.name, None)
                    applied += len(mine)
                    continue
                cur.execute("SAVEPOINT projection")
                try:
                    self._apply(cur, p, mine, was, settles, None, plan)
                except Exception as exc:  # noqa: BLE001 -- contained, logged and re-raised below
                    cur.execute("ROLLBACK TO SAVEPOINT projection")
                    failed = failed or exc
                    self._pause(p.name, exc)
                    record_stop(cur, p.name, exc)
                    continue
                finally:
                    cur.execute("RELEASE SAVEPOINT projection")
                self._paused.pop(p.name, None)
                applied += len(mine)
            self._move_all(cur, moves)
        for name, tables in builds:
            self._build(name, tables)
        if failed is not None:
            raise failed
        return len(page), applied

    def _deferred(self, cur: Cursor) -> set[str] | None:
        """Tables loaded without their indexes now; None where this follower does no bulk
        loads (SQLite, or ``bulk_min_events`` None)."""
        if self.bulk_min_events is None or cur.engine != "postgres":
            return None
        return bulk.deferred(cur)

    def _bulk_plan(self, cur: Cursor, p: Projection, mine: Sequence[LoggedEvent], at: int,
                   done: bool, deferred: set[str] | None) -> _BulkPlan | None:
        """What to do with ``p``'s indexes around this page (projections/bulk.py), or None."""
        if deferred is None or self.bulk_min_events is None:
            return None
        held = [t for t in p.tables if t in deferred]
        tables = bulk.bulk_tables(p)
        if held:
            # Finished whatever the read model's code says now: one that no longer opts in
            # (or never did) gets its indexes before it applies anything.
            if not tables or bulk.needs_indexes(p, mine):
                return _BulkPlan(restore_before=held)
            return _BulkPlan(restore_after=held) if done else None
        if not tables or at != -1 or done or not mine or bulk.needs_indexes(p, mine):
            return None
        backlog = head_position(cur) - at
        if backlog < self.bulk_min_events or not all(bulk.empty(cur, t) for t in tables):
            return None
        return _BulkPlan(defer=list(tables), backlog=backlog)

    def _apply(self, cur: Cursor, p: Projection, mine: Sequence[LoggedEvent], at: int,
               settles: bool, moves: list[tuple[str, int, int]] | None = None,
               plan: _BulkPlan | None = None) -> None:
        """Apply and settle; move the position now, or add the move to ``moves`` (the
        page's moves are then made in one statement: a round trip per read model and page
        was a tenth of a rebuild). ``plan``: defer the read model's indexes before the page,
        or build them before it (the page needs them), in its transaction."""
        if plan is not None:
            if plan.defer:
                self._defer(cur, p, plan)
            if plan.restore_before:
                with bulk.lock_timeout(cur):
                    self._index(cur, p.name, plan.restore_before)
        if mine:
            p.apply(cur, mine)
            if moves is None:
                self._move(cur, p.name, at, mine[-1].position)
            else:
                moves.append((p.name, at, mine[-1].position))
        if settles:
            # All there was for it has been read: work deferred across full pages (a backlog
            # being caught up) is done now, once, in this transaction.
            getattr(p, "settle")(cur, mine[-1].position if mine else at)  # noqa: B009

    @staticmethod
    def _defer(cur: Cursor, p: Projection, plan: _BulkPlan) -> None:
        """Drop the indexes under a savepoint: if that fails (a lock not granted in time, a
        table the functions refuse), the read model is simply loaded with them."""
        cur.execute("SAVEPOINT bulk_defer")
        try:
            with bulk.lock_timeout(cur):
                bulk.defer(cur, plan.defer)
        except Exception as exc:  # noqa: BLE001 -- logged; loading with the indexes is correct
            cur.execute("ROLLBACK TO SAVEPOINT bulk_defer")
            log.warning("projection.bulk.not_deferred", projection=p.name,
                        error=f"{type(exc).__name__}: {exc}")
        else:
            log.info("projection.bulk", projection=p.name, tables=plan.defer,
                     events=plan.backlog)
        finally:
            cur.execute("RELEASE SAVEPOINT bulk_defer")

    def _build(self, name: str, tables: Sequence[str]) -> None:
        """Build the deferred indexes in a transaction of their own, after the page that
        reached the head: the keys' exclusive lock then lasts a moment, not the rest of a
        page. A failure (a reader holding the table past the lock timeout, rows that break a
        key) pauses the read model and is recorded; the next step tries again."""
        try:
            with self.db.write() as cur, bulk.lock_timeout(cur):
                self._index(cur, name, tables)
                cur.execute("UPDATE kaoping_projection_tracking SET error = NULL "
                            "WHERE name = %s", (name,))
        except Exception as exc:  # noqa: BLE001 -- recorded, retried after a pause
            self._pause(name, exc)
            with self.db.write() as cur:
                record_stop(cur, name, exc)

    def _index(self, cur: Cursor, name: str, tables: Sequence[str]) -> None:
        started = time.perf_counter()
        bulk.restore(cur, tables)
        seconds = time.perf_counter() - started
        self.index_builds.append((name, seconds))
        log.info("projection.bulk.indexed", projection=name, tables=list(tables),
                 seconds=round(seconds, 3))

    def _pause(self, name: str, exc: BaseException) -> None:
        last = self._paused.get(name, (0.0, 0.0))[1]
        pause = min(FAILURE_PAUSE_MAX_S, last * 2 if last else FAILURE_PAUSE_S)
        self._paused[name] = (time.monotonic() + pause, pause)
        log.error("projection.paused", projection=name, pause_s=pause,
                  error=f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _move(cur: Cursor, name: str, was: int, to: int) -> None:
        cur.execute("UPDATE kaoping_projection_tracking SET position = %s, error = NULL "
                    "WHERE name = %s AND position = %s", (to, name, was))
        if cur.rowcount != 1:
            msg = f"projection {name} moved under us from {was}"
            raise ConcurrentFollowerError(msg)

    @classmethod
    def _move_all(cls, cur: Cursor, moves: list[tuple[str, int, int]]) -> None:
        """Every move of a page in one statement; each only from where it was read."""
        if len(moves) <= 1:
            for name, was, to in moves:
                cls._move(cur, name, was, to)
            return
        cur.execute(
            "UPDATE kaoping_projection_tracking SET position = CASE name "  # noqa: S608 -- placeholders only
            + " ".join(["WHEN %s THEN %s"] * len(moves)) + " END, error = NULL WHERE "
            + " OR ".join(["(name = %s AND position = %s)"] * len(moves)),
            [*(v for name, _, to in moves for v in (name, to)),
             *(v for name, was, _ in moves for v in (name, was))])
        if cur.rowcount != len(moves):
            msg = (f"projections {', '.join(n for n, _, _ in moves)}: a position moved under "
                   "us")
            raise ConcurrentFollowerError(msg)

    def close(self) -> None:
        if self._read_ahead is not None:
            self._read_ahead.close()

    def poke(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event, *, idle: float = 0.2) -> None:
        """Follow the log until ``stop`` is set; a poke (a local write) wakes it at once."""
        while not stop.is_set():
            try:
                applied = self.catch_up()
            except Exception:
                log.exception("projection.failed")
                applied = 0
                stop.wait(1.0)
            if applied:
                log.debug("projection.applied", events=applied)
            self._wake.wait(idle)
            self._wake.clear()

    def reset(self, projection: Projection) -> None:
        with self.db.write() as cur:
            for table in projection.tables:
                cur.execute(f"DELETE FROM {table}")  # noqa: S608 -- names from code, not input
            cur.execute("UPDATE kaoping_projection_tracking SET position = -1 WHERE name = %s",
                        (projection.name,))


def record_stop(cur: Cursor, name: str, exc: BaseException) -> None:
    """Say (in the tracking row, for /ready and rebuild --check) why ``name`` stopped."""
    cur.execute("UPDATE kaoping_projection_tracking SET error = %s WHERE name = %s",
                (f"{type(exc).__name__}: {exc}"[:500], name))


def stopped(cur: Cursor) -> dict[str, tuple[int, str]]:
    """Read models stopped on an event they could not apply: name -> (position, error)."""
    cur.execute("SELECT name, position, error FROM kaoping_projection_tracking "
                "WHERE error IS NOT NULL ORDER BY name")
    return {str(n): (int(p), str(e)) for n, p, e in cur.fetchall()}


def lag(db: Database, projections: Sequence[Projection]) -> dict[str, int]:
    """How many events each projection is behind the head of the log."""
    with db.read() as cur:
        head = head_position(cur)
        return {p.name: head - tracked_position(cur, p.name) for p in projections}
