"""Reading streams from the log as they stood at a position: the one place that turns rows of
``kaoping_events`` joined to ``kaoping_ledger`` into decoded events and aggregates.

Explain, history, as-of reads, evidence bundles, the published results and the results read
model all replay streams "as of" a log position with these; they take any cursor (a read, or
the follower's transaction), so what they see is exactly that transaction's view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from service.db import as_uuid, events_row_id

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor

END = 2**62  # "no upper bound" for a position


def project_events(aggregate: Any, events: Iterable[Any]) -> Any:
    """Each event mutates the aggregate in turn: the library's ``project_aggregate`` without
    its ``assert isinstance(event, CanMutateProtocol)`` — a check against a runtime Protocol
    costs ~50 µs an event, a quarter of the demo city's load; our events are the library's
    aggregate events, which all mutate."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def stream_rows(cur: Cursor, stream_id: UUID, below: int) -> list[tuple[Any, ...]]:
    """(position, version, topic, state, leaf_hash) of the stream's events before ``below``."""
    rid = events_row_id(cur.engine)
    cur.execute(
        "SELECT l.position, e.originator_version, e.topic, e.state, l.leaf_hash FROM "  # noqa: S608
        f"kaoping_ledger l JOIN kaoping_events e ON e.{rid} = l.notification_id WHERE "
        "l.stream_id = %s AND l.position < %s ORDER BY l.stream_version", (stream_id, below))
    return cur.fetchall()


def decode_rows(mapper: Mapper[UUID], stream_id: UUID,
                rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    return [mapper.to_domain_event(StoredEvent(stream_id, int(v), str(t), bytes(s)))
            for _, v, t, s, _ in rows]


def replay_as_of(cur: Cursor, mapper: Mapper[UUID], stream_id: UUID, position: int) -> Any:
    """The aggregate as of log position ``position`` (inclusive); None before it existed."""
    events = decode_rows(mapper, stream_id, stream_rows(cur, stream_id, position + 1))
    return project_events(None, events) if events else None


def load_stream(cur: Cursor, mapper: Mapper[UUID], stream_id: UUID, up_to: int) -> list[Any]:
    """The stream's events whose log position is at most ``up_to``, decoded."""
    return decode_rows(mapper, stream_id, stream_rows(cur, stream_id, up_to + 1))


def load_streams(cur: Cursor, mapper: Mapper[UUID], stream_ids: Sequence[UUID],
                 up_to: int) -> dict[UUID, list[Any]]:
    """Many streams' events up to ``up_to``, in one query per 400 streams."""
    rid = events_row_id(cur.engine)
    out: dict[UUID, list[Any]] = {sid: [] for sid in stream_ids}
    for i in range(0, len(stream_ids), 400):
        chunk = list(stream_ids[i:i + 400])
        marks = ", ".join(["%s"] * len(chunk))
        cur.execute(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM "  # noqa: S608
            f"kaoping_events e JOIN kaoping_ledger l ON l.notification_id = e.{rid} WHERE "
            f"e.originator_id IN ({marks}) AND l.position <= %s "
            "ORDER BY e.originator_id, e.originator_version", [*chunk, up_to])
        for o, v, t, s in cur.fetchall():
            sid = as_uuid(o)
            out[sid].append(mapper.to_domain_event(StoredEvent(sid, int(v), str(t), bytes(s))))
    return out


def stream_versions(cur: Cursor, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
    """Each stream's last version, in one query per 400 streams (a stream with no event is
    left out)."""
    out: dict[UUID, int] = {}
    for i in range(0, len(stream_ids), 400):
        chunk = list(stream_ids[i:i + 400])
        marks = ", ".join(["%s"] * len(chunk))
        cur.execute(
            "SELECT originator_id, max(originator_version) FROM kaoping_events "  # noqa: S608
            f"WHERE originator_id IN ({marks}) GROUP BY originator_id", chunk)
        out.update((as_uuid(o), int(v)) for o, v in cur.fetchall())
    return out


def project(events: list[Any]) -> Any:
    return project_events(None, events) if events else None


def topic_position(cur: Cursor, stream_id: UUID, topic: str) -> int | None:
    """The position of the stream's (first) event of ``topic``, if any."""
    cur.execute("SELECT min(l.position) FROM kaoping_ledger l JOIN kaoping_events e ON "  # noqa: S608
                f"e.{events_row_id(cur.engine)} = l.notification_id WHERE l.stream_id = %s "
                "AND e.topic = %s", (stream_id, topic))
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def stream_tip(cur: Cursor, stream_id: UUID, up_to: int) -> tuple[int, int, bytes] | None:
    """(position, version, leaf hash) of the stream's last event at or before ``up_to``."""
    cur.execute("SELECT position, stream_version, leaf_hash FROM kaoping_ledger WHERE "
                "stream_id = %s AND position <= %s ORDER BY stream_version DESC LIMIT 1",
                (stream_id, up_to))
    row = cur.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))



def stream_leaf(cur: Cursor, stream_id: UUID, version: int) -> tuple[int, int, bytes] | None:
    """(position, version, leaf hash) of the stream's event at ``version``, if any."""
    cur.execute("SELECT position, stream_version, leaf_hash FROM kaoping_ledger WHERE "
                "stream_id = %s AND stream_version = %s", (stream_id, version))
    row = cur.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))
