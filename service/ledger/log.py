"""Reading the ledger: checkpoints, leaves (with envelopes for supervisors), and proofs.

Proofs are served for sizes the stored tree covers, i.e. up to the latest signed checkpoint:
a proof is only useful against a root the verifier trusts, and that root is a checkpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.errors import BadArgument, NotFound
from service.db import as_uuid, events_row_id
from service.ledger import merkle
from service.ledger.envelope import ZERO_HASH, Envelope, payload_hash
from service.ledger.signer import StoredCheckpoint, checkpoint_at, latest_checkpoint
from service.ledger.tree import node_reader

if TYPE_CHECKING:
    from service.db import Cursor, Database

MAX_LEAVES = 1000


@dataclass(frozen=True)
class LeafView:
    index: int
    leaf_hash: bytes
    envelope: bytes | None = None


def leaf_rows(cur: Cursor, start: int, end: int) -> list[tuple[Any, ...]]:
    """Leaves [start, end) with what their envelopes are rebuilt from: (position, leaf hash,
    stream id, version, topic, payload, the stream's previous leaf, the stream id and version
    the leaf was written for). Stream id, version, topic and payload are the event row's as
    stored now (None when it is gone): an event moved to another stream, or renumbered, no
    longer gives its leaf. The previous leaf follows the ledger's own chain (None for a
    version 1, or when that leaf is gone)."""
    rid = events_row_id(cur.engine)
    # An open range with a LIMIT: PostgreSQL walks the position index in order (a closed range
    # was planned as a bitmap scan and a sort). The previous leaf is looked up only for a
    # version > 1: a stream's first event has none.
    cur.execute(
        "SELECT l.position, l.leaf_hash, e.originator_id, e.originator_version, e.topic, "  # noqa: S608
        "e.state, CASE WHEN l.stream_version > 1 THEN (SELECT p.leaf_hash FROM kaoping_ledger p "
        "WHERE p.stream_id = l.stream_id AND p.stream_version = l.stream_version - 1) END, "
        f"l.stream_id, l.stream_version FROM kaoping_ledger l LEFT JOIN kaoping_events e ON "
        f"e.{rid} = l.notification_id WHERE l.position >= %s ORDER BY l.position LIMIT %s",
        (start, max(end - start, 0)))
    rows = cur.fetchall()
    while rows and rows[-1][0] >= end:  # past a gap, the LIMIT reaches beyond the range
        rows.pop()
    return rows


def row_envelope(row: tuple[Any, ...]) -> Envelope | None:
    """The envelope of a ``leaf_rows`` row, rebuilt from the stored event (None if it is gone;
    a previous leaf that is gone is empty)."""
    position, _, sid, version, topic, state, prev, _, _ = row
    if state is None:
        return None
    previous = ZERO_HASH if int(version) == 1 else (bytes(prev) if prev else b"")
    return Envelope(int(position), as_uuid(sid), int(version), str(topic),
                    payload_hash(bytes(state)), previous)


def envelope_rows(cur: Cursor, start: int, end: int) -> list[tuple[int, bytes, Envelope | None]]:
    """Leaves [start, end) with the envelope rebuilt from the stored event (None if it is gone)."""
    return [(int(row[0]), bytes(row[1]), row_envelope(row)) for row in leaf_rows(cur, start, end)]


class LedgerLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        with self.db.read() as cur:
            found = latest_checkpoint(cur) if size is None else checkpoint_at(cur, size)
        if found is None:
            what = "no checkpoint has been signed yet" if size is None else (
                f"no checkpoint was signed at size {size}")
            raise NotFound(what, rule="ledger.checkpoint-exists", field="size")
        return found

    def _covered(self, cur: Cursor, size: int, field: str) -> None:
        latest = latest_checkpoint(cur)
        covered = latest.size if latest else 0
        if size > covered:
            msg = (f"{field}={size} is beyond the latest checkpoint (size {covered}); proofs are "
                   "served for signed tree sizes")
            raise NotFound(msg, rule="ledger.size-covered", field=field)

    def leaves(self, start: int, end: int, *, envelopes: bool) -> list[LeafView]:
        if end <= start:
            msg = f"end ({end}) must be greater than start ({start})"
            raise BadArgument(msg, rule="ledger.range", field="end")
        end = min(end, start + MAX_LEAVES)
        with self.db.read() as cur:
            if not envelopes:
                cur.execute("SELECT position, leaf_hash FROM kaoping_ledger WHERE position >= %s "
                            "AND position < %s ORDER BY position", (start, end))
                return [LeafView(int(p), bytes(h)) for p, h in cur.fetchall()]
            return [LeafView(p, h, env.encode() if env else None)
                    for p, h, env in envelope_rows(cur, start, end)]

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        if not 0 <= index < size:
            msg = f"index must be in [0, size); got index={index}, size={size}"
            raise BadArgument(msg, rule="ledger.index-in-tree", field="index")
        with self.db.read() as cur:
            self._covered(cur, size, "size")
            read = node_reader(cur)
            leaf = read([(0, index)])[(0, index)]
            return leaf, merkle.inclusion_proof(index, size, read)

    def consistency(self, old: int, new: int) -> list[bytes]:
        if not 1 <= old <= new:
            msg = f"need 1 <= from <= to; got from={old}, to={new}"
            raise BadArgument(msg, rule="ledger.consistency-sizes", field="from")
        with self.db.read() as cur:
            self._covered(cur, new, "to")
            return merkle.consistency_proof(old, new, node_reader(cur))
