"""Wiring: everything a process needs, built from one Settings object (the composition root's
service half; ``api.create_app`` adds HTTP on top, the CLI uses it directly)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import structlog

from domain.cycle import Phase
from domain.errors import NotFound
from domain.units import Unit
from projections.cadres import CadresView
from projections.cases import CasesView
from projections.event_counts import EventCounts
from projections.follower import Follower, Projection, head_position
from projections.results import ResultsView
from projections.units import UnitsView
from service.audience import CardGate
from service.ballots import Sessions
from service.cases import Cases
from service.clock import Clock, SystemClock
from service.commitments import Commitments
from service.db import Database, open_database
from service.demo import TOWNSHIPS, DemoCity, Progress
from service.demo import YEARS as DEMO_YEARS
from service.evaluation import Evaluation
from service.feedback import Notifications
from service.idempotency import IdempotencyStore
from service.ledger.guard import LedgerGuard
from service.ledger.log import LedgerLog
from service.ledger.reads import stream_heads
from service.ledger.signer import LedgerSigner, RotationPending, SignerLease, SignerRefused
from service.reference import Reference
from service.refusals import RefusedReadCounter
from service.store import (
    EventStore,
    PostgresLedgerRecorder,
    SQLiteLedgerRecorder,
    open_event_store,
)
from service.team_review import TeamReviews
from service.throttle import forget_full_buckets, forget_old_refusals
from service.tokens import TokenIssuer, TokenKeys
from service.units import Units
from service.uses import Uses
from service.webhooks import Webhooks

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.settings import Settings

log = structlog.get_logger("kaoping.runtime")


def all_projections(mapper: Mapper[UUID]) -> list[Projection]:
    return [EventCounts(), UnitsView(), CadresView(), ResultsView(mapper), CasesView()]


class Services:
    """The process's long-lived parts. ``start()`` runs the in-process follower if configured."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db: Database = open_database(settings)
        self.store: EventStore = open_event_store(settings)
        self.projections = all_projections(self.store.mapper)
        self.follower = Follower(self.db, self.store.mapper, self.projections,
                                 page_size=settings.projection_page_size,
                                 bulk_min_events=settings.projection_bulk_min_events)
        self.tokens = TokenIssuer(
            TokenKeys(settings.token_key_path, jwks_path=settings.token_jwks_path),
            issuer=settings.token_issuer, audience=settings.token_audience,
            ttl=timedelta(seconds=settings.token_ttl_seconds))
        self.idempotency = IdempotencyStore(
            self.db, lease=timedelta(seconds=settings.idempotency_lease_seconds))
        self.signer = LedgerSigner(settings.signing_key_path, settings.ledger_origin)
        self.guard = LedgerGuard(self.signer)
        recorder = self.store.recorder
        if isinstance(recorder, (PostgresLedgerRecorder, SQLiteLedgerRecorder)):
            recorder.ledger_guard = self.guard
        self.ledger = LedgerLog(self.db)
        self.units = Units(self.store)
        self.reference = Reference(self.store)
        self.evaluation = Evaluation(self.store, self.reference, self.clock, settings.timezone,
                                     self.db)
        self.sessions = Sessions(self.store, self.db, self.clock, self.evaluation)
        self.refusals = RefusedReadCounter(self.store, self.db, self.clock,
                                           window_seconds=settings.refused_read_window_seconds,
                                           subjects_per_window=settings.refused_read_scopes)
        self.cases = Cases(self.store, self.db, self.evaluation.cycle, self.refusals)
        self.cards = CardGate(self.cases, self._appealed)
        self.uses = Uses(self.store, self.evaluation)
        self.commitments = Commitments(self.store, self.evaluation)
        self.notifications = Notifications(self.store, self.evaluation)
        self.team_reviews = TeamReviews(self.evaluation, self.db, self.cases,
                                        settings.document_max_bytes)
        self.webhooks = Webhooks(self.db, self.store.mapper, settings, self.clock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.demo_progress = Progress()

    def start(self, *, demo: bool = False) -> None:
        """Run the background work in this process (embedded default: the API process);
        ``demo``: load the demo city if the log is empty (Settings.demo_on_serve)."""
        if self._threads:
            return
        work: list[tuple[str, Callable[[threading.Event], None]]] = [
            ("kaoping-follower", self.follower.run), ("kaoping-signer", self.run_signer),
            ("kaoping-webhooks", self.webhooks.run), ("kaoping-housekeeping", self.housekeep),
            ("kaoping-refusals", self.refusals.run)]
        if demo and self._log_is_empty():
            work.append(("kaoping-demo", self.load_demo))
        elif demo:
            state, step = self._demo_found()
            with self.demo_progress.lock:  # loaded on an earlier start (or real data)
                self.demo_progress.state, self.demo_progress.step = state, step
        for name, target in work:
            thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _demo_found(self) -> tuple[str, str]:
        """What an earlier start left: the whole demo (its last cycle published), a demo load
        that was interrupted (its first township registered, its last cycle not published:
        /ready says so, since the demo's loader cannot resume a half-written city), or data
        that is not the demo's."""
        try:
            last = self.evaluation.cycle(DEMO_YEARS[-1])
        except NotFound:
            last = None
        if last is not None and last.phase == Phase.PUBLISHED:
            return "present", "the store already holds the demo city; nothing to load"
        try:
            first = self.units.get(Unit.id_for("T01"))
        except NotFound:
            return "present", "the store already holds data; nothing to load"
        if first.name != TOWNSHIPS[0][0]:
            return "present", "the store already holds data; nothing to load"
        return "incomplete", (
            f"a demo load was interrupted (cycle {DEMO_YEARS[-1]} is not published) and cannot "
            "resume: its events stay in this log. Stop the server, move ./var aside and start "
            "again for a whole demo city")

    def _log_is_empty(self) -> bool:
        with self.db.read() as cur:
            return head_position(cur) < 0

    def load_demo(self, _stop: threading.Event) -> None:
        """First start of an empty embedded store: load the demo city in the background."""
        log.warning("demo.loading", engine=self.settings.engine,
                    explicit=self.settings.demo is True,
                    note="the demo city's events stay in this log for ever; set "
                         "KAOPING_DEMO=false on a store meant for real data")
        try:
            DemoCity(self, progress=self.demo_progress).run()
            log.info("demo.loaded", steps=self.demo_progress.done)
        except Exception as exc:
            self.demo_progress.state, self.demo_progress.error = "failed", type(exc).__name__
            log.exception("demo.failed")

    def run_signer(self, stop: threading.Event) -> None:
        """Sign a checkpoint every few seconds while the log grows; never while the guard finds
        the store rolled back or forked (it re-checks every round, so /ready stays current).
        On PostgreSQL only the holder of the signer lease signs (SignerLease): a second worker
        started against the same primary waits as a standby and takes over if the first dies."""
        lease = SignerLease(self.settings.database_url) if self.db.engine == "postgres" else None
        try:
            self._sign_rounds(stop, lease)
        finally:
            if lease is not None:
                lease.close()

    def _sign_rounds(self, stop: threading.Event, lease: SignerLease | None) -> None:
        while not stop.is_set():
            if lease is not None and not lease.hold():
                stop.wait(self.settings.checkpoint_interval_seconds)
                continue
            try:
                halted = self.guard.check(self.db)
                if halted is not None:
                    log.critical("ledger.guard_tripped", rule=halted.rule, detail=halted.detail)
                    stop.wait(self.settings.checkpoint_interval_seconds)
                    continue
                self.signer.sign(self.db, self.clock.now())
            except RotationPending:
                log.warning("ledger.rotation_pending", key=str(self.signer.next_path))
            except SignerRefused:
                log.critical("ledger.signer_refused", exc_info=True)
                self.guard.check(self.db)  # writes stop too; the next round reports it
            except Exception:
                log.exception("ledger.sign_failed")
            stop.wait(self.settings.checkpoint_interval_seconds)

    def housekeep(self, stop: threading.Event) -> None:
        """Periodic clean-up of operational state (never of the log or the ledger)."""
        while not stop.is_set():
            try:
                purged = self.idempotency.purge(self.clock.now())
                if purged:
                    log.info("idempotency.purged", keys=purged)
                if self.db.engine == "postgres":  # whoever wrote them, whatever this process uses
                    forget_full_buckets(self.db)
                    forget_old_refusals(self.db, self.settings.ballot_refusal_window_seconds)
            except Exception:
                log.exception("housekeeping.failed")
            stop.wait(self.settings.housekeeping_interval_seconds)

    def _appealed(self, year: int, subject: str) -> bool:
        """Whether ``subject`` has filed an appeal (申诉) in cycle ``year`` (the card gate's
        question for the appeal body)."""
        try:
            return "appeal" in self.evaluation.file(year, subject).requests
        except NotFound:
            return False

    def stream_heads(self, stream_ids: list[UUID]) -> list[tuple[int, bytes]]:
        return stream_heads(self.db, stream_ids)

    def written(self) -> None:
        """Called after a local write: wakes the in-process follower and deliverer."""
        self.follower.poke()
        self.webhooks.poke()

    def close(self) -> None:
        self._stop.set()
        self.follower.poke()
        self.webhooks.poke()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.sessions.close_writer()
        self.follower.close()
        self.store.close()
        self.db.close()
