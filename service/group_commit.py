"""Group commit: concurrent ballots committed together, each caller answered after its commit.

The library's PostgreSQL recorder serialises every save on a table lock, so throughput comes
from putting many events in one transaction (eventsourcing-notes §0). One writer thread takes
whatever is queued (up to ``max_batch``), shuffles the batch (so log order within it says
nothing about arrival order), saves it as one transaction with its ledger leaves, and resolves
each request with its own leaf. If the batch fails on a stream version (a credential used
twice), it retries the requests one by one so only the duplicate fails. Events are held by the
requests, never by aggregates, so a failed save cannot silently drop them
(group-commit-notes pitfall 1).
"""

from __future__ import annotations

import queue
import random
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import structlog
from eventsourcing.persistence import IntegrityError

from service.writes import is_version_conflict

if TYPE_CHECKING:
    from service.store import EventStore, Leaf

log = structlog.get_logger("kaoping.group_commit")


class VersionTaken(Exception):
    """The event's stream already has that version (e.g. the credential was used)."""


class GroupCommitter:
    def __init__(self, store: EventStore, *, max_batch: int = 256) -> None:
        self.store, self.max_batch = store, max_batch
        self._queue: queue.Queue[tuple[Any, Future[Leaf]] | None] = queue.Queue()
        self._rng = random.SystemRandom()
        self._thread = threading.Thread(target=self._run, name="kaoping-group-commit",
                                        daemon=True)
        self._thread.start()

    def submit(self, domain_event: Any) -> Future[Leaf]:
        future: Future[Leaf] = Future()
        self._queue.put((domain_event, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _take(self) -> list[tuple[Any, Future[Leaf]]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._rng.shuffle(batch)
            try:
                self._commit(batch)
            except IntegrityError as exc:
                if not is_version_conflict(exc) or len(batch) == 1:
                    self._fail(batch, exc)
                else:
                    for one in batch:
                        try:
                            self._commit([one])
                        except Exception as single:  # noqa: BLE001 -- handed to its caller
                            self._fail([one], single)
            except Exception as exc:
                log.exception("group_commit.failed", size=len(batch))
                self._fail(batch, exc)

    def _commit(self, batch: list[tuple[Any, Future[Leaf]]]) -> None:
        leaves: list[Leaf] = []
        # Straight to the event store: Application.save() adds snapshot and notification
        # work, and runtime Protocol checks that cost more than the insert (group-commit-notes).
        self.store.events.put([event for event, _ in batch], receipt=leaves)
        by_stream = {(lf.stream_id, lf.stream_version): lf for lf in leaves}
        for event, future in batch:
            future.set_result(by_stream[(event.originator_id, event.originator_version)])

    @staticmethod
    def _fail(batch: list[tuple[Any, Future[Leaf]]], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                if isinstance(exc, IntegrityError) and is_version_conflict(exc):
                    future.set_exception(VersionTaken(str(exc)))
                else:
                    future.set_exception(exc)
