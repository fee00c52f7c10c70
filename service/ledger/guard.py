"""The rollback guard: no write is accepted into a log that is not an extension of the last
checkpoint this deployment signed.

The signer keeps that checkpoint beside its key, outside the database (``signer.py``). A store
restored from an old backup holds fewer leaves than it: a new write would re-issue positions
already acknowledged to someone (a voter's receipt names its position and leaf hash) under
another event. A store whose leaves give another root at that size was forked or rewritten.
Either way the service refuses every write (503 ``ledger.rolled-back`` / ``ledger.forked`` /
``ledger.node-changed``) and ``/ready`` says why, until an operator restores the right store
(docs/operations.md, "When the ledger guard trips").

Cost on the write path: one ``stat`` of the state file per batch (re-read only when it
changes) and an integer comparison under the log's write lock; the full check (head size, the
root at the signed size) runs on the first write of the process, on every signer round and on
``/ready``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from domain.errors import Unavailable
from service.keys import file_stamp
from service.ledger import merkle
from service.ledger.signer import SignerRefused
from service.ledger.tree import head_size, node_reader

if TYPE_CHECKING:
    from service.db import Cursor, Database
    from service.ledger.checkpoint import Checkpoint
    from service.ledger.signer import LedgerSigner


class LedgerHalted(Unavailable):
    """The store is not an extension of the last signed checkpoint; writes are refused."""


def _leaf_root(cur: Cursor, size: int) -> bytes:
    """The root at ``size`` folded from the leaves alone (O(size)), ignoring stored nodes."""
    from service.ledger.verify_log import CompactRange  # noqa: PLC0415 -- avoids a cycle

    tree, start = CompactRange(), 0
    while start < size:
        end = min(start + 10_000, size)
        cur.execute("SELECT leaf_hash FROM kaoping_ledger WHERE position >= %s AND position < %s "
                    "ORDER BY position", (start, end))
        for (leaf,) in cur.fetchall():
            tree.append(bytes(leaf))
        start = end
    return tree.root()


def inspect(cur: Cursor, last: Checkpoint) -> LedgerHalted | None:
    """Compare the store with ``last``, the signer's last signed checkpoint."""
    size = head_size(cur)
    if size < last.size:
        return LedgerHalted(
            f"the log holds {size} leaves but this deployment signed a tree of {last.size} "
            f"(its last checkpoint, kept beside the signing key): positions {size}.."
            f"{last.size - 1} were acknowledged and are gone (restored from an old backup?); "
            "writing now would re-issue them", rule="ledger.rolled-back", field="ledger")
    try:
        from_nodes: bytes | None = merkle.tree_root(last.size, node_reader(cur))
    except LookupError:
        # Nodes not stored: the signer remembers a checkpoint before its transaction commits,
        # so a crash there leaves the file ahead of the nodes. The leaves decide; the next
        # signing stores the nodes again.
        from_nodes = None
    if from_nodes == last.root:
        return None
    if _leaf_root(cur, last.size) != last.root:
        return LedgerHalted(
            f"the log's first {last.size} leaves give another root than the checkpoint this "
            "deployment signed at that size: the log was forked or rewritten",
            rule="ledger.forked", field="ledger")
    if from_nodes is None:
        return None
    return LedgerHalted(
        f"the stored tree nodes give another root at size {last.size} than its leaves and the "
        "signed checkpoint: a stored node was changed (proofs served from it would be wrong)",
        rule="ledger.node-changed", field="ledger")


class LedgerGuard:
    """Per process: the last full check's finding, and the signed size writes must not undercut."""

    def __init__(self, signer: LedgerSigner) -> None:
        self.signer = signer
        self._lock = threading.Lock()
        self._checked = False
        self._halted: LedgerHalted | None = None
        self._floor_stamp: tuple[object, ...] = ()
        self._floor: Checkpoint | None = None

    def _last(self) -> Checkpoint | None:
        return self.signer.last_signed()

    def inspect(self, cur: Cursor) -> LedgerHalted | None:
        try:
            last = self._last()
        except SignerRefused as exc:
            return LedgerHalted(str(exc), rule="ledger.forked", field="ledger")
        return None if last is None else inspect(cur, last)

    def check(self, db: Database) -> LedgerHalted | None:
        """Run the full check now and remember its finding (writes follow it)."""
        with db.read() as cur:
            found = self.inspect(cur)
        with self._lock:
            self._halted, self._checked = found, True
        return found

    def _signed(self) -> Checkpoint | None:
        """The last signed checkpoint, re-read only when its file changes."""
        stamp = file_stamp(self.signer.state_path)
        if stamp != self._floor_stamp:
            try:
                self._floor = self._last()
            except SignerRefused:
                self._floor = None  # the full check reports it
            self._floor_stamp = stamp
        return self._floor

    def admit(self, cur: Cursor, next_position: int) -> None:
        """Called under the log's write lock before leaves from ``next_position`` are written."""
        with self._lock:
            if not self._checked:
                self._halted, self._checked = self.inspect(cur), True
            signed = self._signed()
            if self._halted is None and signed is not None and next_position < signed.size:
                self._halted = inspect(cur, signed)
            halted = self._halted
        if halted is not None:
            raise LedgerHalted(halted.detail, rule=halted.rule, field=halted.field)
