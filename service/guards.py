"""Checks that run inside a write's transaction, after its events and leaves are inserted.

A use case decides on what it read before the transaction; between that read and the commit,
another writer may have moved a stream the decision relied on but does not write (the cycle's
phase, a rival's file, the previous cycle's results). The recorder calls ``after_append`` while
the log's write lock is held (PostgreSQL: ``LOCK TABLE … IN EXCLUSIVE MODE``; SQLite: the one
writer), so these checks see every committed event, and raising rolls the write back. They
make cross-stream rules hold under any concurrency: no input lands after the seal, a sealed or
published pool never exceeds its quota, a publication's heads are exactly what it computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from domain.cycle import Cycle, RosterEntry, StreamHead
from domain.errors import Conflict
from domain.publication import ResultsNotice
from domain.scoring import SCORE_FUNCTION_VERSION
from domain.subject_file import SubjectFile, pool_result
from service.db import as_uuid
from service.streams import END, load_streams, project, stream_tip

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.persistence import Mapper

    from service.db import Cursor
    from service.store import AfterAppend, Leaf

Check = Callable[["Cursor"], None]


def guarded(after_append: AfterAppend | None, *checks: Check) -> AfterAppend | None:
    """``after_append`` preceded by ``checks``, all in the write's transaction."""
    if not checks:
        return after_append

    def run(cur: Cursor, leaves: list[Leaf]) -> None:
        for check in checks:
            check(cur)
        if after_append is not None:
            after_append(cur, leaves)

    return run


def _moved(what: str) -> Conflict:
    return Conflict(f"{what} changed while this was being decided; read it again and retry",
                    rule="concurrent-change")


def cycle_unchanged(cycle: Cycle) -> Check:
    """The cycle is still at the version the use case read (its phase has not moved)."""
    def check(cur: Cursor) -> None:
        tip = stream_tip(cur, cycle.id, END)
        if tip is None or tip[1] != cycle.version:
            raise _moved(f"cycle {cycle.year}")
    return check


def _versions(cur: Cursor, stream_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(stream_ids), 400):
        chunk = list(stream_ids[i:i + 400])
        marks = ", ".join(["%s"] * len(chunk))
        cur.execute("SELECT stream_id, max(stream_version) FROM kaoping_ledger "  # noqa: S608
                    f"WHERE stream_id IN ({marks}) GROUP BY stream_id",
                    [as_uuid(s) for s in chunk])
        out.update({str(as_uuid(sid)): int(v) for sid, v in cur.fetchall()})
    return out


def heads_unchanged(heads: Sequence[StreamHead]) -> Check:
    """Every evidence stream is still at the head the decision was computed from."""
    def check(cur: Cursor) -> None:
        now = _versions(cur, [h.stream_id for h in heads])
        for head in heads:
            if now.get(head.stream_id, 0) != head.version:
                raise _moved(f"evidence stream {head.stream_id}")
    return check


def previous_unchanged(year: int, version: int | None) -> Check:
    """The previous cycle's results are still at the version 位次进退 was measured on."""
    return results_unchanged(year - 1, version)


def results_unchanged(year: int, version: int | None) -> Check:
    """The cycle's published results are still at ``version`` (no correction since; a cycle
    published before results notices were recorded has no notice stream: version 1)."""
    def check(cur: Cursor) -> None:
        tip = stream_tip(cur, ResultsNotice.id_for(year), END)
        if tip is not None and tip[1] != version:
            raise _moved(f"the published results of {year}")
    return check


def quota_holds(mapper: Mapper[UUID], cycle: Cycle, entry: RosterEntry) -> Check:
    """The pool, with every file as it now stands in the log, keeps its quotas."""
    def check(cur: Cursor) -> None:
        assert cycle.scheme is not None  # noqa: S101 -- a sealed cycle has its scheme
        ids = [SubjectFile.id_for(cycle.year, e.subject)
               for e in cycle.pool(entry.group, entry.kind)]
        streams = load_streams(cur, mapper, ids, END)
        files: list[Any] = [f for sid in ids if isinstance(f := project(streams[sid]),
                                                           SubjectFile)]
        pool = pool_result(cycle.scheme, entry.group, entry.kind, files, {},
                           cycle.scoring_version(SCORE_FUNCTION_VERSION))
        if pool.quota_violations:
            msg = (f"that would exceed the quota of {entry.group}/{entry.kind.value} "
                   f"({'; '.join(pool.quota_violations)})")
            raise Conflict(msg, rule="quota.exceeded", field="grade")
    return check
