"""``kaoping verify-log``: recompute the whole ledger from the stored events and check it.

For every position in order it rebuilds the envelope from the event row as stored now
(payload hash, topic, stream, version) and the stream's previous leaf, and compares the leaf
hash; it folds the recomputed leaves into a compact range (O(log n) hashes) to recompute the
root at every stored checkpoint, and checks each checkpoint's signature, origin, size and root.
Every stored tree node (``kaoping_tree_nodes``, which proofs are built from) is compared with the
node recomputed from the leaves, and none may be stored that the leaves do not give. Given the
signer's last signed checkpoint (kept beside its key, outside the database), a log shorter than
it (its tail deleted, or restored from an old backup, checkpoints and all) or with another root
at its size fails. Work is streamed in pages: memory does not grow with the log.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from service.db import as_uuid, events_row_id
from service.ledger import merkle
from service.ledger.checkpoint import CheckpointError, open_checkpoint_within
from service.ledger.envelope import FORMAT, ZERO_HASH, Envelope, payload_hash
from service.ledger.log import leaf_rows

if TYPE_CHECKING:
    from service.db import Database
    from service.ledger.checkpoint import Checkpoint
    from service.ledger.signer import StoredCheckpoint

PAGE = 5000


class CompactRange:
    """The right edge of a growing tree: enough to compute its RFC 9162 root at any size."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    def append(self, leaf: bytes) -> list[tuple[merkle.NodeId, bytes]]:
        """Add a leaf; return the perfect nodes (level >= 1) it completes."""
        level, digest = 0, leaf
        completed: list[tuple[merkle.NodeId, bytes]] = []
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            digest = merkle.node_hash(left, digest)
            level += 1
            completed.append(((level, self.size >> level), digest))
        self._stack.append((level, digest))
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = merkle.node_hash(left, digest)
        return digest


@dataclass
class Report:
    events: int = 0
    checkpoints: int = 0
    nodes_checked: int = 0
    signed_size: int | None = None  # the signer's last checkpoint, when it was compared
    root: bytes = merkle.EMPTY_ROOT
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _checkpoints(db: Database) -> Iterator[StoredCheckpoint]:
    from service.ledger.signer import StoredCheckpoint  # noqa: PLC0415 -- runtime use only

    after = -1
    while True:
        with db.read() as cur:
            cur.execute("SELECT size, root, note FROM kaoping_checkpoints WHERE size > %s "
                        "ORDER BY size LIMIT %s", (after, PAGE))
            rows = cur.fetchall()
        if not rows:
            return
        for size, root, note in rows:
            yield StoredCheckpoint(int(size), bytes(root), bytes(note))
        after = int(rows[-1][0])


def _check_checkpoint(cp: StoredCheckpoint, tree: CompactRange, vkeys: list[str],
                      retired: Mapping[str, int], origin: str | None) -> str | None:
    try:
        opened = open_checkpoint_within(cp.note, vkeys, retired, origin=origin)
    except CheckpointError as exc:
        return f"checkpoint at size {cp.size}: {exc}"
    root = tree.root()
    if opened.size != cp.size or opened.root != cp.root:
        return f"checkpoint at size {cp.size}: its signed note says size {opened.size}"
    if root != cp.root:
        return (f"checkpoint at size {cp.size}: the leaves now stored give another root; an "
                f"event before position {cp.size} was changed after it was signed")
    return None


def perfect_nodes(size: int) -> int:
    """How many perfect subtrees of level >= 1 a tree of ``size`` leaves has."""
    count, level = 0, 1
    while size >> level:
        count += size >> level
        level += 1
    return count


def _stored_nodes(db: Database) -> tuple[int, int]:
    """(how many tree nodes are stored, the leaves they reach: the largest end of any)."""
    with db.read() as cur:
        cur.execute("SELECT count(*), max((idx + 1) * (CAST(1 AS bigint) << level)) "
                    "FROM kaoping_tree_nodes")
        row = cur.fetchone()
    return (0, 0) if row is None else (int(row[0] or 0), int(row[1] or 0))


def _dangling_events(db: Database) -> str | None:
    rid = events_row_id(db.engine)
    with db.read() as cur:
        cur.execute(f"SELECT e.originator_id, e.originator_version FROM kaoping_events e "  # noqa: S608
                    f"WHERE NOT EXISTS (SELECT 1 FROM kaoping_ledger l WHERE l.notification_id "
                    f"= e.{rid}) LIMIT 1")
        row = cur.fetchone()
    if row is None:
        return None
    return f"stream {row[0]} version {row[1]} is stored without a ledger leaf"


def _row_problem(position: int, stored_leaf: bytes, envelope: Envelope | None) -> str | None:
    if envelope is None:
        return f"position {position}: its event row is missing (deleted)"
    if envelope.stream_version > 1 and envelope.previous_leaf == b"":
        return (f"position {position}: stream {envelope.stream_id} version "
                f"{envelope.stream_version - 1} has no leaf (deleted)")
    if envelope.leaf_hash() != stored_leaf:
        return (f"position {position}: stream {envelope.stream_id} version "
                f"{envelope.stream_version} ({envelope.topic}) does not match its leaf hash: "
                "its payload, topic, stream, version or order was changed")
    return None


_ENVELOPE_HEAD = struct.Struct(">BQ16sQH")
_LEAF_PREFIX = b"\x00"


class _PageReader:
    """Pages of ``leaf_rows``; the next page is read on another connection while this one is
    checked (the database works while Python hashes: psycopg and sqlite3 release the GIL)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaoping-verify")
        self._ahead: tuple[int, Future[list[tuple[Any, ...]]]] | None = None

    def _read(self, start: int) -> list[tuple[Any, ...]]:
        with self.db.read() as cur:
            return leaf_rows(cur, start, start + PAGE)

    def read(self, start: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] | None = None
        if self._ahead is not None:
            at, future = self._ahead
            self._ahead = None
            ahead = future.result()
            if at == start:
                rows = ahead
        if rows is None:
            rows = self._read(start)
        if rows:  # the next page starts where a dense page ends; used only if it does
            nxt = int(rows[-1][0]) + 1
            self._ahead = (nxt, self._pool.submit(self._read, nxt))
        return rows

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _recomputed_leaf(row: tuple[Any, ...]) -> bytes | None:
    """The leaf hash of the envelope rebuilt from the stored event (None: the row is gone);
    the same bytes as ``Envelope.leaf_hash()``, without building one per event."""
    position, _, sid, version, topic, state, prev = row
    if state is None:
        return None
    version = int(version)
    previous = ZERO_HASH if version == 1 else (bytes(prev) if prev is not None else b"")
    encoded = _topics.get(topic)
    if encoded is None:
        encoded = _topics.setdefault(topic, str(topic).encode())
    return sha256(_LEAF_PREFIX + _ENVELOPE_HEAD.pack(
        FORMAT, int(position), as_uuid(sid).bytes, version, len(encoded))
        + encoded + sha256(bytes(state)).digest() + previous).digest()


_topics: dict[str, bytes] = {}  # topic -> UTF-8; event types are few


def _envelope(row: tuple[Any, ...]) -> Envelope | None:
    position, _, sid, version, topic, state, prev = row
    if state is None:
        return None
    previous = ZERO_HASH if int(version) == 1 else (bytes(prev) if prev else b"")
    return Envelope(int(position), as_uuid(sid), int(version), str(topic),
                    payload_hash(bytes(state)), previous)


def _stored_nodes_for(db: Database,
                      nodes: list[tuple[merkle.NodeId, bytes]]) -> dict[merkle.NodeId, bytes]:
    """The stored tree nodes among ``nodes`` (recomputed from one page of leaves: at each
    level a run of consecutive indices), read as one index range per level."""
    if not nodes:
        return {}
    bounds: dict[int, tuple[int, int]] = {}
    for (level, idx), _ in nodes:
        low, high = bounds.get(level, (idx, idx))
        bounds[level] = (min(low, idx), max(high, idx))
    sql = " UNION ALL ".join(
        ["SELECT level, idx, hash FROM kaoping_tree_nodes WHERE level = %s AND idx >= %s "
         "AND idx <= %s"] * len(bounds))
    with db.read() as cur:
        cur.execute(sql, [v for level, (low, high) in bounds.items() for v in (level, low, high)])
        return {(int(lv), int(ix)): bytes(h) for lv, ix, h in cur.fetchall()}


class _Verifier:
    def __init__(self, db: Database, vkeys: list[str], retired: Mapping[str, int],
                 origin: str | None, stop_after: int, signed: Checkpoint | None) -> None:
        self.db, self.vkeys, self.origin, self.stop_after = db, vkeys, origin, stop_after
        self.retired, self.signed = retired, signed
        self.report = Report()
        self.tree = CompactRange()
        self._nodes: list[tuple[merkle.NodeId, bytes]] = []  # recomputed, not yet compared
        self._checkpoints = _checkpoints(db)
        self._pending = next(self._checkpoints, None)

    def fail(self, message: str) -> bool:
        """Record a failure; True when enough have been found to stop."""
        self.report.failures.append(message)
        return len(self.report.failures) >= self.stop_after

    def settle_checkpoints(self) -> bool:
        while self._pending is not None and self._pending.size == self.tree.size:
            problem = _check_checkpoint(self._pending, self.tree, self.vkeys, self.retired,
                                        self.origin)
            self.report.checkpoints += 1
            if problem and self.fail(problem):
                return True
            self._pending = next(self._checkpoints, None)
        signed = self.signed
        if signed is not None and signed.size == self.tree.size:
            self.report.signed_size = signed.size
            if self.tree.root() != signed.root and self.fail(
                    f"the signer's last signed checkpoint (size {signed.size}, kept beside its "
                    "key) has another root than the leaves stored now: the log was forked or "
                    "rewritten"):
                return True
        return False

    def compare_nodes(self) -> bool:
        """Compare the stored nodes with the ones just recomputed; True when stopping."""
        found = _stored_nodes_for(self.db, self._nodes)
        for (level, idx), digest in self._nodes:
            stored = found.get((level, idx))
            if stored is not None and stored != digest and self.fail(
                    f"tree node level {level} index {idx} (leaves {idx << level}.."
                    f"{((idx + 1) << level) - 1}) does not match the hash of its leaves: a "
                    "stored node was changed, and proofs served from it are wrong"):
                return True
        self.report.nodes_checked += len(found)
        self._nodes.clear()
        return False

    def walk(self, progress: Callable[[int], None] | None) -> bool:
        """Check every leaf in order; True if stopped early."""
        expected = 0
        pages = _PageReader(self.db)
        watch = self._watch()
        try:
            while rows := pages.read(expected):
                for row in rows:
                    position = row[0]
                    gap = position != expected and self.fail(
                        f"positions {expected}..{position - 1} are missing from the ledger "
                        "(leaf rows deleted)")
                    leaf = _recomputed_leaf(row)
                    problem = None if leaf == row[1] else _row_problem(
                        position, row[1], _envelope(row))
                    if gap or (problem and self.fail(problem)):
                        return True
                    expected = position + 1
                    # Fold in the recomputed leaf when there is one, so later roots are the
                    # truth.
                    self._nodes += self.tree.append(leaf or row[1])
                    self.report.events += 1
                    if self.tree.size in watch:
                        if self.settle_checkpoints():
                            return True
                        watch = self._watch()
                if self.compare_nodes():
                    return True
                if progress is not None:
                    progress(self.report.events)
        finally:
            pages.close()
        return False

    def _watch(self) -> tuple[int, int]:
        """The tree sizes at which something is compared (a stored checkpoint, the signer's)."""
        return (-1 if self._pending is None else self._pending.size,
                -1 if self.signed is None else self.signed.size)

    def finish(self) -> None:
        self.report.root = self.tree.root()
        if self._pending is not None:
            self.fail(f"checkpoint at size {self._pending.size} is beyond the log's "
                      f"{self.tree.size} leaves (events were removed from the end)")
        if self.signed is not None and self.signed.size > self.tree.size:
            self.fail(f"the log holds {self.tree.size} leaves but this deployment's signer "
                      f"signed a tree of size {self.signed.size} (its last checkpoint, kept "
                      "beside its key): events were removed from the end, or the store was "
                      "restored from an old backup")
        count, reach = _stored_nodes(self.db)
        if reach > self.tree.size:
            self.fail(f"tree nodes are stored for leaves up to {reach - 1}, beyond the log's "
                      f"{self.tree.size} leaves")
        elif count > self.report.nodes_checked:
            self.fail(f"{count - self.report.nodes_checked} stored tree node(s) are not nodes "
                      "of the tree the leaves give (inserted by hand)")
        dangling = _dangling_events(self.db)
        if dangling:
            self.fail(dangling)


def logged_handovers(db: Database, origin: str) -> dict[str, int]:
    """Each key the log records as retired (``LedgerKeys.Rotated``) with the size of its
    handover: the first checkpoint after the rotation event (none yet: the event's position
    plus one, the smallest tree that could hold it)."""
    from eventsourcing.persistence import StoredEvent  # noqa: PLC0415

    from domain.ledger_keys import LedgerKeys  # noqa: PLC0415
    from service.mapper import MsgspecMapper, NoTranscoder  # noqa: PLC0415
    from service.streams import stream_rows  # noqa: PLC0415

    mapper = MsgspecMapper(transcoder=NoTranscoder())
    stream = LedgerKeys.id_for(origin)
    bounds: dict[str, int] = {}
    with db.read() as cur:
        for position, version, topic, state, _ in stream_rows(cur, stream, 2**62):
            if str(topic) != LedgerKeys.Rotated.TOPIC:
                continue
            event: LedgerKeys.Rotated = mapper.to_domain_event(
                StoredEvent(stream, int(version), str(topic), bytes(state)))
            cur.execute("SELECT MIN(size) FROM kaoping_checkpoints WHERE size > %s",
                        (int(position),))
            row = cur.fetchone()
            at = int(row[0]) if row is not None and row[0] is not None else int(position) + 1
            bounds[event.retired_key] = min(at, bounds.get(event.retired_key, at))
    return bounds


def verify_log(db: Database, vkeys: list[str], *, retired: Mapping[str, int] | None = None,
               origin: str | None = None, progress: Callable[[int], None] | None = None,
               stop_after: int = 20, signed: Checkpoint | None = None) -> Report:
    """``retired``: verifier keys that sign checkpoints only up to the given size (their
    handover), as ``open_checkpoint_within``. ``signed``: the signer's last signed checkpoint
    (``LedgerSigner.last_signed``), which the log must reach with the same root."""
    verifier = _Verifier(db, vkeys, retired or {}, origin, stop_after, signed)
    if not verifier.settle_checkpoints() and not verifier.walk(progress):
        verifier.finish()
    return verifier.report
