"""Reading leaves back from the store (receipts for idempotent replays, proofs later)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from service.db import as_uuid, events_row_id
from service.store import Leaf

if TYPE_CHECKING:
    from service.db import Database


def read_leaves(db: Database, positions: Sequence[int]) -> list[Leaf]:
    if not positions:
        return []
    rid = events_row_id(db.engine)
    marks = ", ".join(["%s"] * len(positions))
    with db.read() as cur:
        cur.execute(
            "SELECT l.position, l.notification_id, l.stream_id, l.stream_version, e.topic, "  # noqa: S608 -- placeholders and a column name from code
            f"l.leaf_hash FROM kaoping_ledger l JOIN kaoping_events e ON e.{rid} = "
            f"l.notification_id WHERE l.position IN ({marks}) ORDER BY l.position",
            list(positions),
        )
        return [Leaf(int(p), int(n), as_uuid(s), int(v), str(t), bytes(h))
                for p, n, s, v, t, h in cur.fetchall()]


def stream_heads(db: Database, stream_ids: Sequence[UUID]) -> list[tuple[int, bytes]]:
    """Each stream's head (version, leaf hash), in the order asked; (0, zeros) if empty."""
    heads: dict[UUID, tuple[int, bytes]] = {}
    ids = list(stream_ids)
    with db.read() as cur:
        for i in range(0, len(ids), 400):
            chunk = ids[i:i + 400]
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute(
                "SELECT l.stream_id, l.stream_version, l.leaf_hash FROM kaoping_ledger l "  # noqa: S608
                f"WHERE l.stream_id IN ({marks}) AND l.stream_version = (SELECT "
                "max(m.stream_version) FROM kaoping_ledger m WHERE m.stream_id = l.stream_id)",
                chunk)
            heads |= {as_uuid(s): (int(v), bytes(h)) for s, v, h in cur.fetchall()}
    return [heads.get(sid, (0, bytes(32))) for sid in ids]
