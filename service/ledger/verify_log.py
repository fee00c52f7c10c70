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

The log is checked in aligned blocks of ``BLOCK`` leaves. Each block's rows are read, their
leaves recomputed and compared, and its perfect subtree (every stored node inside it) hashed
and compared by one task, which runs in a worker process when ``workers`` > 1 and the log is
large enough (hashing holds the interpreter lock, so more threads would not help), or on one
of two threads beside the caller.
The caller takes the blocks in order: it folds each block's root (or, where a checkpoint falls
inside a block, its leaves one by one) into a compact range, checks the checkpoints, and
compares the few nodes above the blocks. Both ways run the same task; only where differs.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import struct
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any, cast

from service.db import as_uuid, events_row_id, reopen_database, reopenable
from service.ledger import merkle
from service.ledger.checkpoint import CheckpointError, open_checkpoint_within
from service.ledger.envelope import FORMAT, ZERO_HASH
from service.ledger.log import leaf_rows, row_envelope
from service.ledger.tree import head_size

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from service.db import Database, Engine
    from service.ledger.checkpoint import Checkpoint
    from service.ledger.signer import StoredCheckpoint

PAGE = 5000  # checkpoints read at a time
BLOCK_LEVEL = 12
BLOCK = 1 << BLOCK_LEVEL  # leaves checked by one task: aligned, so each is a perfect subtree
AHEAD = 2  # tasks in flight per worker: memory stays bounded, the workers never wait
PROCESS_BLOCKS = 32  # below this many blocks, starting worker processes does not pay
DEFAULT_WORKERS = min(os.cpu_count() or 1, 8)  # kaoping verify-log --workers


class CompactRange:
    """The right edge of a growing tree: enough to compute its RFC 9162 root at any size."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    def append(self, leaf: bytes) -> list[tuple[merkle.NodeId, bytes]]:
        """Add a leaf; return the perfect nodes (level >= 1) it completes."""
        return self.append_subtree(0, leaf)

    def append_subtree(self, level: int, digest: bytes) -> list[tuple[merkle.NodeId, bytes]]:
        """Add the next ``2**level`` leaves as their perfect subtree's root (the size must be a
        multiple of ``2**level``); return the perfect nodes above it that it completes."""
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a subtree of level {level} cannot start at leaf {self.size}")
        at, added = self.size, 1 << level
        completed: list[tuple[merkle.NodeId, bytes]] = []
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            digest = merkle.node_hash(left, digest)
            level += 1
            completed.append(((level, at >> level), digest))
        self._stack.append((level, digest))
        self.size = at + added
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
    processes: int = 0  # worker processes that checked blocks (0: threads of the caller did)
    root: bytes = merkle.EMPTY_ROOT
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the check ran, when not as asked

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


_NODE_END = "(idx + 1) * (CAST(1 AS bigint) << level)"  # one past the last leaf a node covers


def _stored_nodes(db: Database, bound: int) -> tuple[int, int]:
    """(how many tree nodes are stored that end at or before leaf ``bound``, the leaves all
    stored nodes reach: the largest end of any)."""
    with db.read() as cur:
        cur.execute(f"SELECT sum(CASE WHEN {_NODE_END} <= %s THEN 1 ELSE 0 END), "  # noqa: S608
                    f"max({_NODE_END}) FROM kaoping_tree_nodes", (bound,))
        row = cur.fetchone()
    return (0, 0) if row is None else (int(row[0] or 0), int(row[1] or 0))


def _node_reach(db: Database) -> int:
    return _stored_nodes(db, 0)[1]


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


def _relabelled(row: tuple[Any, ...]) -> bool:
    """The event row's stream and version are not the ledger row's. Checked on every row, a
    matching leaf or not: the reads by stream (``service.streams``) select by the ledger's
    columns, so a ledger row relabelled to another stream would graft its event there, and a
    stream's first event (previous leaf: zeros) would not show it in its leaf."""
    sid, version, state, written_sid, written_version = row[2], row[3], row[5], row[7], row[8]
    if state is None:
        return False  # the event row is gone: reported as such
    return bool(version != written_version or (
        sid != written_sid and as_uuid(sid) != as_uuid(written_sid)))


def _row_problem(row: tuple[Any, ...], stored_leaf: bytes) -> str | None:
    """What is wrong with a leaf row whose recomputed leaf is not the stored one, or whose
    event row and ledger row name another stream or version."""
    position, sid, version, written_sid, written_version = row[0], row[2], row[3], row[7], row[8]
    envelope = row_envelope(row)
    if envelope is None:
        return f"position {position}: its event row is missing (deleted)"
    if _relabelled(row):
        return (f"position {position}: its event row is stream {as_uuid(sid)} version "
                f"{version}, but its ledger row says stream {as_uuid(written_sid)} version "
                f"{written_version}: the event was moved to another stream or renumbered, or "
                "its ledger row relabelled")
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
_NODE_PREFIX = b"\x01"  # RFC 9162 2.1.1, as merkle.node_hash (inlined: a call per node costs)


def _recomputed_leaf(row: tuple[Any, ...]) -> bytes | None:
    """The leaf hash of the envelope rebuilt from the stored event (None: the row is gone);
    the same bytes as ``Envelope.leaf_hash()``, without building one per event."""
    position, _, sid, version, topic, state, prev, _, _ = row
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


def _stored_nodes_for(db: Database,
                      nodes: list[tuple[merkle.NodeId, bytes]]) -> dict[merkle.NodeId, bytes]:
    """The stored tree nodes among ``nodes`` (recomputed from one page of leaves: at each
    level a run of consecutive indices), read as one index range per level."""
    bounds: dict[int, tuple[int, int]] = {}
    for (level, idx), _ in nodes:
        low, high = bounds.get(level, (idx, idx))
        bounds[level] = (min(low, idx), max(high, idx))
    return {(level, idx): digest for level, idx, digest in _stored_node_rows(db, bounds)}


def _stored_node_rows(db: Database,
                      bounds: Mapping[int, tuple[int, int]]) -> list[tuple[int, int, bytes]]:
    """The stored nodes (level, index, hash) with low <= index <= high at each level."""
    if not bounds:
        return []
    sql = " UNION ALL ".join(
        ["SELECT level, idx, hash FROM kaoping_tree_nodes WHERE level = %s AND idx >= %s "
         "AND idx <= %s"] * len(bounds))
    with db.read() as cur:
        cur.execute(sql, [v for level, (low, high) in bounds.items() for v in (level, low, high)])
        return cur.fetchall()  # ints and bytes from both drivers


@dataclass
class _Block:
    """One task's findings on leaves [start, end) (end: where it stopped, see ``gap``)."""

    start: int
    leaves: bytes  # the folded leaves (recomputed; the stored one where the event is gone)
    problems: list[tuple[int, str]]  # (position, what is wrong), in order
    gap: int | None = None  # the first missing position: the check stopped there
    next_present: int | None = None  # the first position after the gap, when in the block
    root: bytes | None = None  # the block's perfect subtree, when whole and aligned
    node_problems: list[str] = field(default_factory=list)
    nodes_checked: int = 0

    @property
    def size(self) -> int:
        return len(self.leaves) // merkle.HASH_SIZE


def _check_block(db: Database, start: int, end: int, stop_after: int, bound: int) -> _Block:
    """Recompute and compare the leaves [start, end); when they are a whole aligned block, hash
    its subtree level by level and compare every stored node inside it."""
    with db.read() as cur:
        rows = leaf_rows(cur, start, end)
    folded: list[bytes] = []
    block = _Block(start, b"", [])
    expected = start
    for row in rows:
        position = row[0]
        if position != expected:
            block.gap, block.next_present = expected, position
            break
        leaf = _recomputed_leaf(row)
        stored = bytes(row[1])
        # The raw columns first: a call per leaf for the rare rows whose columns differ only.
        if leaf != stored or ((row[2] != row[7] or row[3] != row[8]) and _relabelled(row)):
            problem = _row_problem(row, stored)
            if problem:
                block.problems.append((position, problem))
                if len(block.problems) >= stop_after:
                    break
        folded.append(leaf or stored)
        expected = position + 1
    else:
        if expected < end:
            block.gap = expected
    block.leaves = b"".join(folded)
    if len(folded) == BLOCK and start % BLOCK == 0:
        _check_subtree(db, block, folded, bound)
    return block


def _check_subtree(db: Database, block: _Block, leaves: list[bytes], bound: int) -> None:
    """Compare every stored node inside the block; count those ending at or before ``bound``
    (the nodes stored when the check began: see ``_Verifier.node_bound``)."""
    levels = [leaves]  # levels[k][i]: node (k, (start >> k) + i)
    for _ in range(BLOCK_LEVEL):
        below = levels[-1]
        levels.append([sha256(_NODE_PREFIX + below[i] + below[i + 1]).digest()
                       for i in range(0, len(below), 2)])
    block.root = levels[-1][0]
    bounds = {level: (block.start >> level, (block.start + BLOCK - 1) >> level)
              for level in range(1, BLOCK_LEVEL + 1)}
    for level, idx, digest in _stored_node_rows(db, bounds):
        block.nodes_checked += (idx + 1) << level <= bound
        if levels[level][idx - (block.start >> level)] != digest:
            block.node_problems.append(_node_problem((level, idx)))


def _node_problem(node: merkle.NodeId) -> str:
    level, idx = node
    return (f"tree node level {level} index {idx} (leaves {idx << level}.."
            f"{((idx + 1) << level) - 1}) does not match the hash of its leaves: a stored node "
            "was changed, and proofs served from it are wrong")


def _worker(conn: Connection, engine: Engine, where: str) -> None:
    """A worker process: check each block it is sent, send back what it found (or the error),
    until its pipe closes or it is sent None. Ctrl-C reaches the whole process group: the
    caller handles it and closes the pipes, which ends the workers without a traceback each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    db = reopen_database(engine, where)
    try:
        while (task := conn.recv()) is not None:
            try:
                found: _Block | Exception = _check_block(db, *task)
            except Exception as exc:  # noqa: BLE001 -- handed to the caller, who raises it
                found = exc if _picklable(exc) else RuntimeError(
                    f"a verify-log worker failed: {exc!r}")
            conn.send(found)
    except (EOFError, OSError):
        pass  # the caller stopped early (closed its end with answers unread), or is gone
    finally:
        db.close()


def _picklable(exc: Exception) -> bool:
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001 -- any failure to pickle means: send a plain error
        return False
    return True


def _worker_context() -> multiprocessing.context.ForkServerContext:
    """Workers forked from a forkserver: a fresh single-threaded interpreter (nothing of the
    caller's threads, locks or connections is copied), started once per process with this
    module and the main one imported, so each worker starts in milliseconds. Spawning each
    worker instead imported the caller's main module in every one: 0.3-0.65 s here."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


class WorkerStopped(Exception):
    """A worker process ended without answering (killed, out of memory)."""


class _Processes:
    """Worker processes, each with a pipe of its own; blocks are dealt round-robin and each
    worker answers in the order it was sent them.

    Written here rather than with ``concurrent.futures.ProcessPoolExecutor``: the executor's
    workers share one result pipe, and a worker killed while writing a block's result (128 KiB)
    left a part-message in it; the executor's thread then waited for the rest for ever, and
    the command hung. A pipe of one's own ends when its worker does, so reading it fails at
    once (EOFError) and the caller goes on with threads.
    """

    def __init__(self, count: int, engine: Engine, where: str) -> None:
        context = _worker_context()
        self._workers: list[tuple[BaseProcess, Connection]] = []
        self._dealt = 0
        try:
            for _ in range(count):
                ours, theirs = context.Pipe()
                process = context.Process(target=_worker, args=(theirs, engine, where),
                                          name="kaoping-verify", daemon=True)
                self._workers.append((process, ours))
                process.start()
                theirs.close()  # the worker's end is the worker's alone: its death closes it
        except BaseException:
            self.close()
            raise

    def submit(self, start: int, end: int, stop_after: int, bound: int) -> Callable[[], _Block]:
        process, conn = self._workers[self._dealt % len(self._workers)]
        self._dealt += 1
        try:
            conn.send((start, end, stop_after, bound))
        except OSError as exc:
            return _stopped(process, exc)
        return lambda: self._answer(process, conn)

    @staticmethod
    def _answer(process: BaseProcess, conn: Connection) -> _Block:
        try:
            found = conn.recv()
        except (EOFError, OSError) as exc:
            return _stopped(process, exc)()
        if isinstance(found, Exception):
            raise found
        return cast("_Block", found)

    def close(self) -> None:
        for _, conn in self._workers:
            conn.close()  # a worker reading or writing its pipe then stops
        for process, _ in self._workers:
            if process.pid is None:
                continue  # never started
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


def _stopped(process: BaseProcess, exc: BaseException) -> Callable[[], _Block]:
    def fail() -> _Block:
        process.join(timeout=1)
        raise WorkerStopped(f"worker process {process.pid} ended (exit code "
                            f"{process.exitcode}) before answering") from exc
    return fail


class _Blocks:
    """Runs ``_check_block`` over ranges, a few in flight, yielding the results in order: in
    ``workers`` worker processes, or in two threads of the caller's (PostgreSQL and SQLite
    read while the other thread hashes). Not both: threads busy hashing hold the interpreter
    lock the caller needs to feed and read the processes."""

    def __init__(self, db: Database, workers: int, stop_after: int, bound: int, *,
                 processes: bool) -> None:
        self.db, self.stop_after, self.bound = db, stop_after, bound
        self._threads = ThreadPoolExecutor(2, thread_name_prefix="kaoping-verify")
        spec = reopenable(db) if workers > 1 and processes else None
        self._processes = _Processes(workers, *spec) if spec is not None else None
        self.processes = workers if spec is not None else 0
        self._depth = AHEAD * max(self.processes, 2)
        self.notes: list[str] = []

    def _submit(self, start: int, end: int) -> Callable[[], _Block]:
        if self._processes is not None:
            return self._processes.submit(start, end, self.stop_after, self.bound)
        return self._threads.submit(_check_block, self.db, start, end, self.stop_after,
                                    self.bound).result

    def over(self, start: int, end: int) -> Iterator[_Block]:
        """Blocks covering [start, end), cut at multiples of ``BLOCK``."""
        bounds = iter(range(start - start % BLOCK, end, BLOCK))
        pending: deque[tuple[int, int, Callable[[], _Block]]] = deque()

        def submit() -> None:
            low = next(bounds, None)
            if low is not None:
                first, last = max(low, start), min(low + BLOCK, end)
                pending.append((first, last, self._submit(first, last)))

        for _ in range(self._depth):
            submit()
        while pending:
            try:
                block = pending[0][2]()
            except WorkerStopped as exc:
                self._to_threads(exc)
                pending = deque((a, b, self._submit(a, b)) for a, b, _ in pending)
                continue
            pending.popleft()
            submit()
            yield block

    def _to_threads(self, exc: WorkerStopped) -> None:
        """A worker process died: every block in flight is checked again, by threads, and so
        is the rest; the report notes it."""
        if self._processes is not None:
            self._processes.close()
            self._processes = None
        self.notes.append(f"{exc}; the blocks in flight and the rest were checked by threads")

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.close()


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
        # The stored nodes are counted up to where they reached when the check began: the
        # signer may store more while it runs, after their block was read, and those are not
        # nodes "inserted by hand". Every node ending before that was there to be compared.
        self.node_bound = _node_reach(db)

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
        for node, digest in self._nodes:
            if found.get(node, digest) != digest and self.fail(_node_problem(node)):
                return True
        self.report.nodes_checked += sum(
            (idx + 1) << level <= self.node_bound for level, idx in found)
        self._nodes.clear()
        return False

    def walk(self, progress: Callable[[int], None] | None, workers: int,
             processes_from: int) -> bool:
        """Check every leaf in order, to the log's end (read again until it stays); True if
        stopped early."""
        end = _log_end(self.db)
        blocks = _Blocks(self.db, workers, self.stop_after, self.node_bound,
                         processes=end >= processes_from)
        self.report.processes = blocks.processes
        try:
            while end > self.tree.size:
                for block in blocks.over(self.tree.size, end):
                    if self.take(block):
                        return True
                    if progress is not None:
                        progress(self.report.events)
                end = _log_end(self.db)
        finally:
            blocks.close()
            self.report.notes += blocks.notes
        return False

    def take(self, block: _Block) -> bool:
        """Fold one block's findings in; True when stopping."""
        whole = block.root is not None
        inside = any(block.start < size < block.start + block.size for size in self._watch())
        if whole and not inside:
            for _, problem in block.problems:
                if self.fail(problem):
                    return True
            self._nodes += self.tree.append_subtree(BLOCK_LEVEL, block.root or b"")
            self.report.events += block.size
            if self.tree.size in self._watch() and self.settle_checkpoints():
                return True
        elif self._fold_leaves(block, whole):
            return True
        self.report.nodes_checked += block.nodes_checked
        for problem in block.node_problems:
            if self.fail(problem):
                return True
        if block.gap is not None:
            self.fail(self._gap(block))
            return True
        return self.compare_nodes()

    def _fold_leaves(self, block: _Block, whole: bool) -> bool:
        """Fold a block leaf by leaf, settling the checkpoints inside it. The nodes inside a
        whole block were compared by its task; a part-block's are compared here."""
        problems = iter(block.problems)
        problem = next(problems, None)
        watch = self._watch()
        for offset in range(0, len(block.leaves), merkle.HASH_SIZE):
            while problem is not None and problem[0] == self.tree.size:
                if self.fail(problem[1]):
                    return True
                problem = next(problems, None)
            completed = self.tree.append(block.leaves[offset:offset + merkle.HASH_SIZE])
            self._nodes += [n for n in completed if n[0][0] > BLOCK_LEVEL] if whole else completed
            self.report.events += 1
            if self.tree.size in watch:
                if self.settle_checkpoints():
                    return True
                watch = self._watch()
        # A problem that stopped the block's task is on the leaf it was not folded past.
        return problem is not None and self.fail(problem[1])

    def _gap(self, block: _Block) -> str:
        missing = block.gap
        after = block.next_present
        if after is None:  # the rows run out before the block's end: where do they resume?
            after = _next_position(self.db, block.start + block.size)
        last = f"{after - 1}" if after is not None else "the end"
        return f"positions {missing}..{last} are missing from the ledger (leaf rows deleted)"

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
        count, reach = _stored_nodes(self.db, self.node_bound)
        if reach > self.tree.size:
            self.fail(f"tree nodes are stored for leaves up to {reach - 1}, beyond the log's "
                      f"{self.tree.size} leaves")
        elif count > self.report.nodes_checked:
            self.fail(f"{count - self.report.nodes_checked} stored tree node(s) are not nodes "
                      "of the tree the leaves give (inserted by hand)")
        dangling = _dangling_events(self.db)
        if dangling:
            self.fail(dangling)


def _log_end(db: Database) -> int:
    """One past the last position in the ledger now (0 when it is empty)."""
    with db.read() as cur:
        return head_size(cur)


def _next_position(db: Database, at: int) -> int | None:
    with db.read() as cur:
        cur.execute("SELECT min(position) FROM kaoping_ledger WHERE position >= %s", (at,))
        row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])

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
               stop_after: int = 20, signed: Checkpoint | None = None,
               workers: int = 1, processes_from: int = PROCESS_BLOCKS * BLOCK) -> Report:
    """``retired``: verifier keys that sign checkpoints only up to the given size (their
    handover), as ``open_checkpoint_within``. ``signed``: the signer's last signed checkpoint
    (``LedgerSigner.last_signed``), which the log must reach with the same root. ``workers``:
    processes that check blocks, started when the log has ``processes_from`` leaves or more
    (1, or a smaller log: two threads of this process do)."""
    verifier = _Verifier(db, vkeys, retired or {}, origin, stop_after, signed)
    if verifier.settle_checkpoints() or verifier.walk(progress, workers, processes_from):
        return verifier.report
    verifier.finish()
    return verifier.report
