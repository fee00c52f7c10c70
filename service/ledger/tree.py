"""The Merkle tree on storage: a batched node reader, and extending the stored nodes.

Level-0 nodes are the leaves (``kaoping_ledger.leaf_hash``); perfect subtrees of level >= 1 live
in ``kaoping_tree_nodes``. A proof or a root needs O(log n) of them, read in one query each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from service.ledger import merkle

if TYPE_CHECKING:
    from service.db import Cursor

_CHUNK = 400  # row-value pairs per IN (...) list; well under both engines' parameter limits


def node_reader(cur: Cursor) -> merkle.NodeReader:
    def read(ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        found: dict[merkle.NodeId, bytes] = {}
        leaves = [idx for level, idx in ids if level == 0]
        inner = [(level, idx) for level, idx in ids if level > 0]
        for i in range(0, len(leaves), _CHUNK):
            chunk = leaves[i:i + _CHUNK]
            cur.execute(
                "SELECT position, leaf_hash FROM kaoping_ledger WHERE position IN "  # noqa: S608
                f"({', '.join(['%s'] * len(chunk))})", chunk)
            found |= {(0, int(p)): bytes(h) for p, h in cur.fetchall()}
        for i in range(0, len(inner), _CHUNK):
            chunk2 = inner[i:i + _CHUNK]
            cur.execute(
                "SELECT level, idx, hash FROM kaoping_tree_nodes WHERE (level, idx) IN "  # noqa: S608
                f"({', '.join(['(%s, %s)'] * len(chunk2))})", [v for n in chunk2 for v in n])
            found |= {(int(lv), int(ix)): bytes(h) for lv, ix, h in cur.fetchall()}
        return found

    return read


def head_size(cur: Cursor) -> int:
    cur.execute("SELECT max(position) FROM kaoping_ledger")
    row = cur.fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


def head_leaf(cur: Cursor) -> tuple[int, bytes] | None:
    """The last leaf (position, leaf hash), None for an empty log: what names the log as it
    stands, where a size alone could name two logs (one restored, or failed over)."""
    cur.execute("SELECT position, leaf_hash FROM kaoping_ledger ORDER BY position DESC LIMIT 1")
    row = cur.fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))


def extend_nodes(cur: Cursor, from_size: int, to_size: int, *, batch: int = 10_000) -> None:
    """Store every perfect node completed by leaves [from_size, to_size)."""
    read = node_reader(cur)
    size = from_size
    while size < to_size:
        end = min(size + batch, to_size)
        cur.execute("SELECT leaf_hash FROM kaoping_ledger WHERE position >= %s AND position < %s "
                    "ORDER BY position", (size, end))
        leaves = [bytes(h) for (h,) in cur.fetchall()]
        if len(leaves) != end - size:
            msg = f"ledger positions {size}..{end - 1} are not all present"
            raise LookupError(msg)
        nodes = merkle.new_perfect_nodes(size, leaves, read)
        cur.executemany("INSERT INTO kaoping_tree_nodes (level, idx, hash) VALUES (%s, %s, %s)",
                        [(lv, ix, h) for lv, ix, h in nodes if lv > 0])
        size = end
