"""Reading leaves back from the store (receipts for idempotent replays, proofs later)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
