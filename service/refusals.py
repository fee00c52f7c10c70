"""Refused reads of restricted material, counted per reader, material, rule and window.

A refused read used to append one permanent event each: a principal retrying in a loop grew
the log at its own pace (~1,000 events in 10 s from one key). Now each refusal adds one to a
row of ``kaoping_refused_reads`` (operational state: one small upsert, no ledger lock), and a
window that has ended is recorded as one ``RefusedReads.Counted`` event (reader, role,
material, rule, count, window start and end, first and last refusal).

Complete, and exactly once: the row is marked with the event's position in the same
transaction as the event, and only if its count is still the one the event carries (else the
transaction rolls back and the window is recorded on the next pass). A refusal that arrives
for a window already recorded (a slow request, two processes' clocks) is counted in the next
window. Rows are durable, so a crash loses no count: whichever process flushes next records it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from domain.cases import RefusedReads

if TYPE_CHECKING:
    from service.clock import Clock
    from service.db import Cursor, Database
    from service.principals import Principal
    from service.store import EventStore, Leaf

log = structlog.get_logger("kaoping.refusals")

GRACE = 2  # seconds after a window's end before it is recorded (requests still in flight)
BATCH = 500  # windows recorded per transaction

_COUNT = (
    "INSERT INTO kaoping_refused_reads (reader, role, what, rule, scope, year, subject, "
    "case_id, window_start, window_end, count, first_at, last_at) VALUES (%s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s, 1, %s, %s) "
    "ON CONFLICT (reader, what, rule, window_start, scope) DO UPDATE SET "
    "count = kaoping_refused_reads.count + 1, "
    "first_at = CASE WHEN excluded.first_at < kaoping_refused_reads.first_at "
    "THEN excluded.first_at ELSE kaoping_refused_reads.first_at END, "
    "last_at = CASE WHEN excluded.last_at > kaoping_refused_reads.last_at "
    "THEN excluded.last_at ELSE kaoping_refused_reads.last_at END "
    "WHERE kaoping_refused_reads.recorded_position IS NULL")


class _CountMoved(Exception):
    """A window's count changed (or was recorded elsewhere) while it was being recorded."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _epoch_iso(seconds: int) -> str:
    return _iso(datetime.fromtimestamp(seconds, tz=UTC))


class RefusedReadCounter:
    def __init__(self, store: EventStore, db: Database, clock: Clock, *,
                 window_seconds: int, subjects_per_window: int) -> None:
        self.store, self.db, self.clock, self.window = store, db, clock, window_seconds
        self.subjects_per_window = subjects_per_window
        self._due = 0.0  # when closed windows may next be waiting to be recorded
        self._lock = threading.Lock()

    def count(self, principal: Principal, what: str, rule: str, year: int | None,
              subject: str | None, case: str | None) -> None:
        """Count one refused read (durably, before the refusal is answered)."""
        now = self.clock.now()
        start = int(now.timestamp()) // self.window * self.window
        at = _iso(now)
        for window_start in (start, start + self.window):  # the next one if already recorded
            with self.db.write() as cur:
                about = self._scope(cur, principal.id, what, rule, window_start,
                                    (year, subject, case))
                cur.execute(_COUNT, (principal.id, principal.role.value, what, rule, about[0],
                                     *about[1], window_start, window_start + self.window, at,
                                     at))
                if cur.rowcount:
                    break
        if now.timestamp() >= self._due:
            self.flush()

    def _scope(self, cur: Cursor, reader: str, what: str, rule: str, window_start: int,
               asked: tuple[int | None, str | None, str | None],
               ) -> tuple[str, tuple[int | None, str | None, str | None]]:
        """What was asked for, as the count's key; ``*`` (nothing named) once the window holds
        ``subjects_per_window`` others: a caller varying the path gets no event per variant."""
        scope = "|".join("" if part is None else str(part) for part in asked)
        cur.execute("SELECT scope FROM kaoping_refused_reads WHERE reader = %s AND what = %s "
                    "AND rule = %s AND window_start = %s AND scope <> '*'",
                    (reader, what, rule, window_start))
        seen = {str(r[0]) for r in cur.fetchall()}
        if scope in seen or len(seen) < self.subjects_per_window:
            return scope, asked
        return "*", (None, None, None)

    def flush(self) -> int:
        """Record every window that ended (GRACE seconds ago); return how many."""
        recorded = 0
        with self._lock:
            while True:
                cutoff = int(self.clock.now().timestamp()) - GRACE
                with self.db.read() as cur:
                    cur.execute("SELECT reader, role, what, rule, window_start, window_end, "
                                "count, first_at, last_at, scope, year, subject, case_id "
                                "FROM kaoping_refused_reads WHERE "
                                "recorded_position IS NULL AND window_end <= %s "
                                "ORDER BY window_start, first_at LIMIT %s", (cutoff, BATCH))
                    rows = cur.fetchall()
                    cur.execute("SELECT min(window_end) FROM kaoping_refused_reads WHERE "
                                "recorded_position IS NULL AND window_end > %s", (cutoff,))
                    nxt = cur.fetchone()
                self._due = float(nxt[0]) + GRACE if nxt and nxt[0] is not None else (
                    cutoff + GRACE + self.window)
                if not rows:
                    return recorded
                try:
                    self._record(rows)
                except _CountMoved:
                    log.info("refusals.count_moved")  # recorded on the next pass
                    return recorded
                recorded += len(rows)

    def _record(self, rows: list[tuple[Any, ...]]) -> None:
        records = [RefusedReads(reader=str(r[0]), role=str(r[1]), what=str(r[2]),
                                rule=str(r[3]), year=None if r[10] is None else int(r[10]),
                                subject=r[11], case=r[12], count=int(r[6]),
                                window_start=_epoch_iso(int(r[4])),
                                window_end=_epoch_iso(int(r[5])), first=str(r[7]),
                                last=str(r[8])) for r in rows]
        by_stream = {str(rec.id): row for rec, row in zip(records, rows, strict=True)}

        def mark(cur: Cursor, leaves: list[Leaf]) -> None:
            for leaf in leaves:
                row = by_stream[str(leaf.stream_id)]
                cur.execute("UPDATE kaoping_refused_reads SET recorded_position = %s WHERE "
                            "reader = %s AND what = %s AND rule = %s AND window_start = %s AND "
                            "scope = %s AND count = %s AND recorded_position IS NULL "
                            "RETURNING 1",  # (the library's cursor may not report rowcount)
                            (leaf.position, row[0], row[2], row[3], row[4], row[9], row[6]))
                if len(cur.fetchall()) != 1:
                    raise _CountMoved

        self.store.save(*records, receipt=[], after_append=mark)

    def run(self, stop: threading.Event) -> None:
        """Background: record ended windows even when no refusal comes to trigger it."""
        while not stop.is_set():
            try:
                self.flush()
            except Exception:
                log.exception("refusals.flush_failed")
            stop.wait(min(5.0, float(self.window)))
