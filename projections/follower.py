"""The projection follower: pages of raw rows after a tracked position, many events per transaction.

The library's ProjectionRunner applies one event per transaction and needs ``subscribe()``, which
its SQLite recorder lacks, so we follow the ledger ourselves: read a page of (position, event)
rows after the projection's position, apply them all and move the position in one transaction.
Positions are dense and assigned under the log's write lock in commit order, so following them
never skips an event, and the position moving in the same transaction means none is applied twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import structlog
from eventsourcing.persistence import StoredEvent

from service.db import as_uuid, events_row_id

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor, Database

log = structlog.get_logger("kaoping.projections")


@dataclass
class LoggedEvent:
    """One event as read from the log, decoded on demand."""

    position: int
    leaf_hash: bytes
    stream_id: UUID
    version: int
    topic: str
    state: bytes
    _decode: Callable[[StoredEvent], Any] = field(repr=False)
    _event: Any = field(default=None, repr=False)

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
        "WHERE l.position > %s AND l.position <= %s ORDER BY l.position LIMIT %s",
        (after, 2**62 if stop_at is None else stop_at, limit),
    )
    return [
        LoggedEvent(int(p), bytes(h), as_uuid(sid), int(v), str(t), bytes(s),
                    mapper.to_domain_event)
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


class ConcurrentFollowerError(RuntimeError):
    """Another follower moved this projection's position: run one follower per projection."""


class Follower:
    def __init__(self, db: Database, mapper: Mapper[UUID], projections: Sequence[Projection],
                 *, page_size: int = 1000) -> None:
        self.db, self.mapper, self.page_size = db, mapper, page_size
        self.projections = list(projections)
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
        with self._step_lock, self.db.write() as cur:
            at = tracked_position(cur, projection.name)
            page = read_page(cur, at, self.page_size, self.mapper, stop_at)
            settle = getattr(projection, "settle", None)
            if not page:
                if settle is not None:  # a backlog's last page may have been a full one
                    settle(cur, at)
                return 0
            projection.apply(cur, page)
            if settle is not None and len(page) < self.page_size:
                # All there was has been read: work deferred across full pages (a backlog
                # being caught up) is done now, once, in the same transaction.
                settle(cur, page[-1].position)
            cur.execute(
                "UPDATE kaoping_projection_tracking SET position = %s "
                "WHERE name = %s AND position = %s",
                (page[-1].position, projection.name, at),
            )
            if cur.rowcount != 1:
                msg = f"projection {projection.name} moved under us from {at}"
                raise ConcurrentFollowerError(msg)
        return len(page)

    def catch_up(self) -> int:
        """Apply everything committed so far to every projection."""
        total = 0
        for projection in self.projections:
            while n := self.step(projection):
                total += n
        return total

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


def lag(db: Database, projections: Sequence[Projection]) -> dict[str, int]:
    """How many events each projection is behind the head of the log."""
    with db.read() as cur:
        head = head_position(cur)
        return {p.name: head - tracked_position(cur, p.name) for p in projections}
